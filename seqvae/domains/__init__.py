"""Kinds of sequence: one object per domain (molecules, text) at the edge of the system.

The model core works on token ids and knows nothing of chemistry or English. What differs
between molecules and sentences (which inputs can be encoded, how training data are read and
cleaned, what a table of generated strings holds, what is measured on prior samples during
training, which pictures are drawn) is a ``Domain``, chosen from the tokenizer kind (the
config's ``data.representation``). The trainer, the user-facing model and the CLI ask the
domain and hold no molecule/text branches of their own.

A new kind of sequence (proteins, reactions) is one new module here: a ``Domain`` subclass
listing its representations in ``kinds``, named in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from ..errors import ConfigError
from .base import Domain

__all__ = ["Domain", "domain_for", "all_domains"]

# the modules that define a domain each (a module-level DOMAIN); imported on first use, so a
# text user never imports the molecule domain (nor RDKit through it)
_MODULES = ("molecules", "text")


@lru_cache(maxsize=None)
def _load(module: str) -> Domain:
    return importlib.import_module(f"{__name__}.{module}").DOMAIN


def all_domains() -> list[Domain]:
    """Every domain seqvae knows (importing each module)."""
    return [_load(module) for module in _MODULES]


def domain_for(kind: str) -> Domain:
    """The domain of a tokenizer kind / data representation ("smiles", "selfies", "word",
    "bpe"); ConfigError naming the kinds there are for any other."""
    for module in _MODULES:
        domain = _load(module)
        if kind in domain.kinds:
            return domain
    known = ", ".join(k for d in all_domains() for k in d.kinds)
    raise ConfigError(f"no domain handles the representation {kind!r}; known: {known}")
