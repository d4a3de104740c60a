"""English sentences, word-level or BPE: a word the vocabulary lacks reads as <unk>, tables
hold the text, samples are marked novel when no training sentence is the same."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..config import TEXT_REPRESENTATIONS
from ..errors import DataError
from .base import Domain, Log, Prepared

# Lines longer than this many characters per allowed token are skipped before tokenizing:
# no sentence of max_length words or BPE pieces comes near it, and a runaway line (a whole
# file without newlines) never reaches the tokenizer.
MAX_CHARS_PER_TOKEN = 50


class Text(Domain):
    """Word-level and BPE sentence models."""

    name = "text"
    kinds = TEXT_REPRESENTATIONS
    column = "text"
    unit = "seq"
    strict_tokens = False  # an unknown word is <unk>, not a reason to refuse a sentence

    def precheck(self, text: str, tokenizer: Any, max_tokens: int) -> str | None:
        """A sentence needs a word: a letter or a digit."""
        if not any(ch.isalnum() for ch in text):
            return "no words: only punctuation or symbols"
        return None

    def same(self, inputs: Sequence[str], outputs: Sequence[str], tokenizer: Any) -> dict[str, list]:
        """exact: the output is the input as the tokenizer reads it (<unk>, lower case)."""
        read = tokenizer.decode_batch(tokenizer.encode_batch([" ".join(s.split()) for s in inputs]))
        return {"exact": [a == b for a, b in zip(read, outputs)]}

    def annotate_samples(self, table: pd.DataFrame, config: Any, tokenizer: Any) -> pd.DataFrame:
        """Add novel (no training sentence is the same, as the tokenizer reads it) when the
        training file is here."""
        seen = self.training_strings(config, tokenizer)
        if seen is None:
            return table
        return table.assign(novel=[t not in seen for t in table["text"]])

    def training_strings(self, config: Any, tokenizer: Any) -> frozenset[str] | None:
        """The training sentences as the tokenizer reads them (to flag samples that copy one
        verbatim); None when the training file is not here."""
        return _read_training(config.data.train, config.data.csv_column, tokenizer)

    def summary(self, table: pd.DataFrame) -> dict[str, float]:
        """unique, and novel when the table has that column."""
        figures = super().summary(table)
        if "novel" in table and len(table):
            figures["novel"] = float(table["novel"].mean())
        return figures

    def prepare(self, config: Any, tokenizer: Any = None, log: Log = print,
                progress: bool = False) -> Prepared:
        """Clean the sentences, build the word / BPE tokenizer on the training split,
        tokenize, and drop sequences over data.max_length tokens. Words the vocabulary lacks
        read as <unk> (counted in the report, never a reason to skip)."""
        from ..data import drop_long, load_sentences, resolve_data, select_categories
        from ..tokenizers import TOKENIZERS

        dcfg = config.data
        max_chars = MAX_CHARS_PER_TOKEN * dcfg.max_length
        splits = {}
        categories: list[str] | None = None
        labels: dict[str, np.ndarray] = {}
        report_extra: dict[str, int] = {}  # rows kept without a category
        for name, spec in (("train", dcfg.train), ("valid", dcfg.valid)):
            rows: list[int] = []
            strings, report = load_sentences(resolve_data(spec), dcfg.csv_column, max_chars,
                                             rows=rows)
            if name == "train":
                if not strings:
                    raise DataError(f"no usable training sentences in {spec}: {report.summary()}")
                if tokenizer is None:
                    tokenizer = TOKENIZERS[dcfg.representation].build(
                        strings, min_frequency=dcfg.min_frequency,
                        max_vocab=dcfg.max_vocab or None, lowercase=dcfg.lowercase,
                        split=dcfg.text_split, numbers_as_token=dcfg.numbers_as_token)
            ids = tokenizer.encode_batch(strings)
            strings, ids = drop_long(strings, ids, dcfg.max_length, report, rows=rows)
            if dcfg.condition_column:  # each sentence's category (a genre, say)
                kept, names = select_categories(
                    resolve_data(spec), dcfg.condition_column, rows, report, categories,
                    keep_unlabelled=config.model.use_latent)  # M2 learns from them
                if name == "train":
                    categories = sorted(set(names) - {""})
                strings, ids = [strings[i] for i in kept], [ids[i] for i in kept]
                index = {c: i for i, c in enumerate(categories)}
                labels[name] = np.array([[index.get(c, -1)] for c in names], dtype=np.float32)
                report_extra[name] = names.count("")
            n_tokens = sum(len(x) - 2 for x in ids)
            n_unk = sum(x.count(tokenizer.unk_id) for x in ids)
            log(f"{name}: {report.summary()}; {n_tokens:,} tokens, "
                f"{n_unk / max(n_tokens, 1):.2%} <unk>")
            splits[name] = ([np.asarray(x, dtype=np.int32) for x in ids],
                            {**report.to_dict(), "tokens": n_tokens, "unk_tokens": n_unk})
        prepared = Prepared(tokenizer, splits["train"][0], splits["valid"][0],
                            {name: split[1] for name, split in splits.items()})
        if dcfg.condition_column:
            if not categories:
                raise DataError(f"data.condition_column {dcfg.condition_column!r}: no usable "
                                f"training row of {dcfg.train} has a label")
            prepared.categories = categories
            prepared.train_properties, prepared.valid_properties = labels["train"], labels["valid"]
            for name, count in report_extra.items():
                prepared.reports[name]["unlabelled_rows"] = count
            log(f"conditioned on {dcfg.condition_column}: {len(categories)} categories")
        return prepared


@lru_cache(maxsize=4)
def _read_training(spec: str, column: str, tokenizer: Any) -> frozenset[str] | None:
    from ..data import load_sentences, resolve_data

    try:
        strings, _ = load_sentences(resolve_data(spec), column)
    except DataError:
        return None
    return frozenset(tokenizer.decode_batch(tokenizer.encode_batch(strings)))


DOMAIN = Text()
