"""seqvae: variational autoencoders over sequences (SMILES, SELFIES, sentences).

The public API, re-exported here. Configuration and errors load with the package; the model,
the trainer and torch load on first use of a name that needs them (``seqvae.load``,
``seqvae.train``), so ``import seqvae`` stays cheap.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

__version__ = "0.1.0"

from .config import Config, DataConfig, ModelConfig, TrainConfig, load_config  # noqa: E402
from .errors import CheckpointError, ConfigError, DataError, SeqVAEError, TokenizerError  # noqa: E402

# name -> module that defines it, imported on first use
_LAZY = {"load": "trained", "TrainedModel": "trained", "SequenceVAE": "model",
         "Trainer": "trainer", "train": "trainer", "prepare_data": "prepare"}
_RENAMED = {"VAEModel": ("trained", "TrainedModel")}  # old name -> new, kept for one release

__all__ = ["CheckpointError", "Config", "ConfigError", "DataConfig", "DataError", "ModelConfig",
           "SeqVAEError", "SequenceVAE", "TokenizerError", "TrainConfig", "TrainedModel", "Trainer",
           "load", "load_config", "prepare_data", "train"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    elif name in _RENAMED:
        module, new = _RENAMED[name]
        warnings.warn(f"seqvae.{name} is now seqvae.{new}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"{__name__}.{module}"), new)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
