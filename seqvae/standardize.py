"""Molecule standardisation before a model reads a molecule, with RDKit's own MolStandardize
(never hand-written rules): what a chemist pastes in (salts, charged forms, stereo a model's
vocabulary lacks) becomes the parent molecule a model trained on MOSES-like data can read.

The steps, in RDKit's order (rdMolStandardize):

1. ``Cleanup``: explicit hydrogens removed, bonds to metals broken, functional groups written
   one way (nitro, N-oxides, ...), charges re-balanced between acidic groups;
2. the largest organic fragment kept (``LargestFragmentChooser``): counter-ions, salts and
   solvents out;
3. charges neutralised where a neutral form exists (``Uncharger``): a carboxylate gets its
   proton back, a quaternary ammonium stays charged;
4. stereo dropped when asked (``keep_stereo=False``): for models whose vocabulary has no
   [C@@H]-style atoms;
5. the canonical SMILES.

Each result says which steps changed the molecule ("normalized", "fragments", "charges",
"stereo"), or why it failed ("invalid": RDKit cannot parse it;
"empty_after_standardization": nothing left; "standardization_failed": RDKit raised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

CHANGES = ("normalized", "fragments", "charges", "stereo")


@dataclass(frozen=True)
class Standardized:
    """One molecule's standardisation: the canonical SMILES of its parent (None when it
    failed), what changed, and why it failed."""

    smiles: str | None
    changes: tuple[str, ...] = ()
    reason: str | None = None


class Standardizer:
    """RDKit's standardisation steps, built once and applied to many molecules."""

    def __init__(self, keep_stereo: bool = True):
        from rdkit.Chem.MolStandardize import rdMolStandardize

        self.keep_stereo = keep_stereo
        self._chooser = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
        self._uncharger = rdMolStandardize.Uncharger()
        self._cleanup = rdMolStandardize.Cleanup

    def __call__(self, smiles: str) -> Standardized:
        from .chem import rdkit_quiet, to_mol

        with rdkit_quiet():
            mol = to_mol(smiles)
            if mol is None:
                return Standardized(None, (), "invalid")
            try:
                return self._standardize(mol)
            except Exception:  # RDKit raises on a few odd valences during cleanup
                return Standardized(None, (), "standardization_failed")

    def _standardize(self, mol) -> Standardized:
        from rdkit import Chem

        changes = []
        before = Chem.MolToSmiles(mol)
        mol = self._cleanup(mol)
        if Chem.MolToSmiles(mol) != before:
            changes.append("normalized")
        if len(Chem.GetMolFrags(mol)) > 1:
            mol = self._chooser.choose(mol)
            changes.append("fragments")
        charged = Chem.MolToSmiles(mol)
        mol = self._uncharger.uncharge(mol)
        if Chem.MolToSmiles(mol) != charged:
            changes.append("charges")
        if not self.keep_stereo:
            with_stereo = Chem.MolToSmiles(mol)
            mol = Chem.Mol(mol)
            Chem.RemoveStereochemistry(mol)
            if Chem.MolToSmiles(mol) != with_stereo:
                changes.append("stereo")
        if mol.GetNumAtoms() == 0:
            return Standardized(None, tuple(changes), "empty_after_standardization")
        # canonical SMILES of the parent, read back once so it is the canonical form of
        # itself (as seqvae.chem.canonical_smiles writes any molecule)
        out = Chem.MolToSmiles(mol)
        again = Chem.MolFromSmiles(out)
        return Standardized(Chem.MolToSmiles(again) if again is not None else out, tuple(changes))


@lru_cache(maxsize=2)
def standardizer(keep_stereo: bool = True) -> Standardizer:
    """The process's Standardizer for keep_stereo; RDKit's objects are built once in each
    process that standardises, never pickled."""
    return Standardizer(keep_stereo)


@lru_cache(maxsize=1 << 16)
def standardized_parent(smiles: str, keep_stereo: bool = True) -> Standardized:
    """One input's standardisation, remembered: an input standardised twice in a process (a
    command that checks its inputs and then reads them, a fine-tuning run that counts new
    tokens and then tokenizes) costs RDKit's work once."""
    return standardizer(keep_stereo)(smiles)


def standardize(smiles: Sequence[str], keep_stereo: bool = True) -> pd.DataFrame:
    """Standardise molecules (see the module's steps); one row per input, in order: input,
    SMILES (the canonical parent, None where it failed), changed (the parent's canonical
    SMILES differs from the input's own canonical SMILES), changes (the steps that changed it,
    joined by ','), reason (why it failed, else None)."""
    from .chem import canonical_smiles

    rows = []
    for text in smiles:
        result = standardized_parent(text, keep_stereo)
        own = canonical_smiles(text) if result.smiles is not None else None
        rows.append({"input": text, "SMILES": result.smiles,
                     "changed": result.smiles is not None and result.smiles != own,
                     "changes": ",".join(result.changes), "reason": result.reason})
    return pd.DataFrame(rows, columns=["input", "SMILES", "changed", "changes", "reason"])
