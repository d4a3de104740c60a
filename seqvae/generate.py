"""Deprecated module, kept for one release: the user-facing model is now
``seqvae.trained.TrainedModel`` (``seqvae.load`` returns one); ``VAEModel`` is its old name.
Tables of generated strings come from the model's domain (``model.domain.table``)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

from .trained import TrainedModel, check_sampling, load, slerp

__all__ = ["VAEModel", "load", "check_sampling", "slerp", "sample_table"]

warnings.warn("seqvae.generate is deprecated: use seqvae.trained (TrainedModel, load)",
              DeprecationWarning, stacklevel=2)

VAEModel = TrainedModel


def sample_table(strings: Sequence[str], nll: Sequence[float] | None, molecular: bool) -> pd.DataFrame:
    """Deprecated: ``domain_for(kind).table(strings, nll)``."""
    from .domains import domain_for
    return domain_for("smiles" if molecular else "word").table(strings, nll)
