"""The model core: encoders, decoders and the SequenceVAE that joins them."""

from .vae import Generated, LatentDraw, SequenceVAE, VAEOutput, grow_vocabulary

__all__ = ["Generated", "LatentDraw", "SequenceVAE", "VAEOutput", "grow_vocabulary"]
