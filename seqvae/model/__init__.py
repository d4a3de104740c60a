"""The model core: encoders, decoders and the SequenceVAE that joins them."""

from .vae import Generated, SequenceVAE, VAEOutput, grow_vocabulary

__all__ = ["Generated", "SequenceVAE", "VAEOutput", "grow_vocabulary"]
