"""seqvae: variational autoencoders over sequences (SMILES, SELFIES, sentences).

The public API, re-exported here; heavy modules (RDKit, training) load on first use.
"""

__version__ = "0.1.0"

from .config import Config, DataConfig, ModelConfig, TrainConfig, load_config  # noqa: E402
from .errors import CheckpointError, ConfigError, DataError, SeqVAEError, TokenizerError  # noqa: E402
from .generate import VAEModel, load  # noqa: E402
from .model import SequenceVAE  # noqa: E402
from .trainer import Trainer, train  # noqa: E402


__all__ = ["CheckpointError", "Config", "ConfigError", "DataConfig", "DataError", "ModelConfig",
           "SeqVAEError", "SequenceVAE", "TokenizerError", "TrainConfig", "Trainer", "VAEModel", "load",
           "load_config", "train"]
