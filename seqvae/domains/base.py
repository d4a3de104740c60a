"""What every domain offers, and what the trainer gets from data preparation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, TokenizerError

Log = Callable[[str], Any]
Encoded = tuple[list[int] | None, str | None]  # token ids, or None and why not


@dataclass
class Prepared:
    """Tokenized training and validation data, ready for batching."""

    tokenizer: Any
    train: Sequence[np.ndarray]
    valid: Sequence[np.ndarray]
    reports: dict[str, Any] = field(default_factory=dict)  # per split: rows read, kept, skipped
    # model.properties of each training / validation sequence, (N, P) float32; None if none
    train_properties: np.ndarray | None = None
    valid_properties: np.ndarray | None = None
    # data.condition_column's categories, from the training split (their index is the last
    # column of the properties above); None without one
    categories: list[str] | None = None


class Domain:
    """A kind of sequence. Subclasses set the class attributes and override the methods whose
    default does not fit; the defaults are those of plain text-like sequences."""

    name = ""  # "molecules", "text"
    kinds: tuple[str, ...] = ()  # tokenizer kinds / data representations it handles
    column = "text"  # the column of the strings in tables and CSV files
    unit = "seq"  # progress bars
    strict_tokens = False  # True: a token outside the vocabulary makes an input unusable
    draws = False  # True where draw() makes a picture (then a run draws its samples)

    def __repr__(self) -> str:
        return f"<seqvae {self.name} domain: {', '.join(self.kinds)}>"

    # -- input ----------------------------------------------------------------------------
    def precheck(self, text: str, tokenizer: Any, max_tokens: int) -> str | None:
        """Why a stripped, non-empty input cannot be encoded, from cheap checks made before
        tokenizing (None: go on)."""
        return None

    def encode(self, strings: Sequence[str], tokenizer: Any, max_length: int) -> list[Encoded]:
        """Token ids of each string (BOS..EOS, at most max_length of them), or None and the
        reason it cannot be encoded: empty, the domain's own checks, unknown tokens, too long."""
        if isinstance(strings, str):
            raise TypeError("pass a list of strings, not a single string")
        encoded: list[Encoded] = []
        for text in strings:
            if not isinstance(text, str) or not text.strip():
                encoded.append((None, "empty"))
                continue
            text = text.strip()
            reason = self.precheck(text, tokenizer, max_length)
            if reason is not None:
                encoded.append((None, reason))
                continue
            try:
                ids = tokenizer.encode(tokenizer.to_model_string(text), strict=self.strict_tokens)
            except TokenizerError as exc:
                encoded.append((None, str(exc)))
                continue
            if len(ids) > max_length:
                encoded.append((None, f"{len(ids) - 2} tokens, more than the model's limit of "
                                      f"{max_length - 2}"))
                continue
            encoded.append((ids, None))
        return encoded

    # -- output tables --------------------------------------------------------------------
    def table(self, strings: Sequence[str], nll: Sequence[float] | None = None) -> pd.DataFrame:
        """Generated strings as a table: the strings, then NLL when given."""
        columns: dict[str, list] = {self.column: list(strings)}
        if nll is not None:
            columns["NLL"] = [float(x) for x in nll]
        return pd.DataFrame(columns)

    def usable(self, table: pd.DataFrame) -> pd.Series:
        """Which rows of a table count as real outputs (for unique sampling and summaries)."""
        return pd.Series(True, index=table.index)

    def same(self, inputs: Sequence[str], outputs: Sequence[str], tokenizer: Any) -> dict[str, list]:
        """Columns comparing reconstructions with their inputs: exact (and more per domain)."""
        raise NotImplementedError

    def summary(self, table: pd.DataFrame) -> dict[str, float]:
        """Headline figures of a table of generated strings (the CLI prints them)."""
        return {"unique": table[self.column].nunique() / max(len(table), 1)}

    def sample_metrics(self, strings: Sequence[str]) -> dict[str, float]:
        """Figures of prior samples logged during training (log.csv columns sample_*)."""
        summary = self.summary(self.table(strings))
        return {f"sample_{key}": value for key, value in summary.items()}

    def annotate_samples(self, table: pd.DataFrame, config: Any, tokenizer: Any) -> pd.DataFrame:
        """Columns added to sampled tables that need the training data (novelty); as is."""
        return table

    def training_strings(self, config: Any, tokenizer: Any) -> frozenset[str] | None:
        """The training strings as the tokenizer reads them, where the domain compares
        outputs with them (None: it does not, or the training file is not here)."""
        return None

    # -- data ------------------------------------------------------------------------------
    def standardized(self, strings: Sequence[str], keep_stereo: bool = True) -> list[str]:
        """What a model reads of each input when asked to standardise it (molecules: the
        standardised parent); other domains refuse."""
        raise DataError(f"standardize=True standardises molecules; a {self.name} model reads "
                        "its inputs as given")

    def new_tokens(self, config: Any, tokenizer: Any) -> list[str]:
        """Tokens of the training rows (config.data) that ``tokenizer`` lacks, most frequent
        first: what train.extend_vocab appends; domains whose vocabulary cannot grow token by
        token refuse."""
        raise ConfigError(f"train.extend_vocab appends tokens to a SMILES / SELFIES vocabulary; "
                          f"a {self.name} model's vocabulary is learned with its words or merges")

    def prepare(self, config: Any, tokenizer: Any = None, log: Log = print,
                progress: bool = False) -> Prepared:
        """Read, clean and tokenize the config's training and validation data; build the
        tokenizer on the training split when none is given."""
        raise NotImplementedError

    # -- pictures --------------------------------------------------------------------------
    def draw(self, table: pd.DataFrame, path: str | Path, legends: Sequence[str] | None = None,
             per_row: int = 6) -> Path | None:
        """A picture of the usable rows of a table at path (None: this domain draws none)."""
        return None

    def sample_legends(self, table: pd.DataFrame) -> list[str]:
        """A legend per usable row of a sampled table."""
        usable = table[self.usable(table)]
        return [f"NLL {x:.1f}" for x in usable["NLL"]] if "NLL" in usable else []
