"""Latent-space property search: objectives to maximise, property heads on z, and optimisers
(prior sampling, gradient ascent, Bayesian optimisation) behind one interface, LatentSearch;
``optimize`` runs a whole search (the ``seqvae optimize`` verb)."""

from seqvae.search import objectives
from seqvae.search.heads import HeadReport, PropertyHead, compute_properties, fit_property_head
from seqvae.search.latent import (METHODS, LatentSearch, Oracle, ascend, head_target,
                                  parse_stages)
from seqvae.search.constrained import improve_molecules, summarise_improvements
from seqvae.search.optimize import OptimizeResult, build_objective, optimize

__all__ = ["objectives", "PropertyHead", "HeadReport", "fit_property_head", "compute_properties",
           "LatentSearch", "Oracle", "METHODS", "ascend", "head_target", "parse_stages",
           "improve_molecules", "summarise_improvements", "optimize", "OptimizeResult",
           "build_objective"]
