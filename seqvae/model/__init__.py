"""The model core: encoders, decoders and the SequenceVAE that joins them."""

from .vae import Generated, SequenceVAE, VAEOutput

__all__ = ["Generated", "SequenceVAE", "VAEOutput"]
