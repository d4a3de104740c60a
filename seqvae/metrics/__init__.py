"""Metrics of generated samples: the MOSES set and GuacaMol's scores for molecules.

    from seqvae.metrics import molecular_metrics
    molecular_metrics(smiles, reference="moses")   # the keys of molsets' get_all_metrics, and more
"""

from .molecules import MoleculeReport, evaluate_molecules, molecular_metrics, novelty
from .reference import MolecularReference, load_reference

__all__ = ["MolecularReference", "MoleculeReport", "evaluate_molecules", "load_reference",
           "molecular_metrics", "novelty"]
