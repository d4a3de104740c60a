"""Data preparation: the config's training and validation files read, cleaned and tokenized
by the run's domain (seqvae.domains), before any training starts.

    from seqvae.prepare import prepare_data
    prepared = prepare_data(config)     # tokenizer, train / valid token ids, skip reports
"""

from __future__ import annotations

from typing import Any

import torch

from .distributed import World, any_rank
from .domains import domain_for
from .domains.base import Log, Prepared
from .errors import DataError, SeqVAEError

__all__ = ["Prepared", "prepare_data", "prepare_data_distributed"]


def prepare_data(config: Any, tokenizer: Any = None, log: Log = print,
                 progress: bool = False) -> Prepared:
    """Read, clean and tokenize the data as the config says; build the tokenizer on the
    training split when none is given (a resumed run passes its own)."""
    return domain_for(config.data.representation).prepare(config, tokenizer, log, progress)


def prepare_data_distributed(config: Any, tokenizer: Any, world: World, device: torch.device,
                             log: Log = print, progress: bool = False) -> Prepared:
    """prepare_data in each process of a run. Under DDP with a token cache, the first process
    of each node builds the cache while the others wait, then they read it (rather than each
    checking and tokenizing the whole file at once); an error there stops every process."""
    if not (world.distributed and config.train.token_cache):
        return prepare_data(config, tokenizer, log, progress=progress)
    data, error = None, None
    if world.local_rank == 0:
        try:
            data = prepare_data(config, tokenizer, log, progress=progress)
        except SeqVAEError as caught:
            error = caught
    if any_rank(error is not None, world, device):
        raise error or DataError("the data could not be prepared: see the error of the "
                                 "first process of a node")
    return data or prepare_data(config, tokenizer, log, progress=False)
