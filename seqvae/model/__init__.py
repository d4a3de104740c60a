"""The model core: encoders, decoders and the SequenceVAE that joins them."""

from .vae import (Generated, LatentDraw, SequenceVAE, VAEOutput, grow_vocabulary,
                  warm_start_decoder)

__all__ = ["Generated", "LatentDraw", "SequenceVAE", "VAEOutput", "grow_vocabulary",
           "warm_start_decoder"]
