"""``python -m seqvae`` runs the seqvae command (also under torchrun)."""

import sys

from .cli import main

sys.exit(main())
