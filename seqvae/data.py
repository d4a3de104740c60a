"""Reading sequence files, cleaning molecule lists, and length-bucketed batches.

Bulk paths never stop on a bad row: they skip it and count why in a ``SkipReport``.
Chemistry goes through ``seqvae.chem`` (imported where it is used, so reading text files never
loads RDKit).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import itertools
import multiprocessing
import os
import sys
from collections import Counter, deque
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import torch

from seqvae.cache import TokenArray
from seqvae.standardize import standardized_parent
from seqvae.config import MOLECULAR_REPRESENTATIONS
from seqvae.errors import DataError
from seqvae.tokenizers import min_model_tokens, split_selfies, split_smiles

__all__ = [
    "SkipReport",
    "SkipTally",
    "pad_rows",
    "read_strings",
    "iter_strings",
    "check_molecules",
    "clean_molecules",
    "load_molecules",
    "clean_sentences",
    "load_sentences",
    "drop_long",
    "moses_path",
    "default_data_path",
    "resolve_data",
    "SequenceBatches",
    "DEFAULT_DATA",
    "MOSES_SPLITS",
]

SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".smi", ".smi.gz", ".txt", ".txt.gz")
MOSES_SPLITS = ("train", "test", "test_scaffolds")
DEFAULT_DATA = {
    "moses_train": "moses_train.csv.gz",
    "moses_valid": "moses_valid.csv.gz",
    "moses_test": "moses_test.csv.gz",
    "brown_train": "brown_train.txt.gz",
    "brown_valid": "brown_valid.txt.gz",
    "brown_test": "brown_test.txt.gz",
    # the same sentences with their genre: columns text, genre, category, document
    "brown_genres_train": "brown_genres_train.csv.gz",
    "brown_genres_valid": "brown_genres_valid.csv.gz",
    "brown_genres_test": "brown_genres_test.csv.gz",
    # raw English as people write it (data/make_raw_text.py): Wikipedia sentences, KJV verses
    **{f"{corpus}_{split}": f"{corpus}_{split}.txt.gz"
       for corpus in ("enwiki", "kjv") for split in ("train", "valid", "test")},
    # measured aqueous solubility (Huuskonen 2000): columns SMILES, logS, name, split
    "solubility": "solubility.csv.gz",
}
_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
_N_EXAMPLES = 10  # skipped rows remembered in a SkipReport
# a row standardisation changed: (index in its chunk, input, standardised, the changes)
Changed = tuple[int, str, str, tuple[str, ...]]
_EXAMPLE_CHARS = 80  # characters of a skipped value kept in a SkipReport
# Below this many molecules a process pool costs more to start than it saves; above it,
# RDKit parsing (5-30k/s per core) and above all SELFIES encoding (~3.6k/s) are worth
# spreading over cores.
_POOL_MIN_MOLECULES = 20_000
_MAX_WORKERS = 8


@dataclass
class SkipReport:
    """How many rows a bulk read kept, and how many it skipped for which reason."""

    n_rows: int
    n_kept: int
    reasons: dict[str, int] = field(default_factory=dict)  # reason -> count, skipped rows only
    # The first skipped rows: (row number counted from 1, value cut to 80 characters, reason).
    examples: list[tuple[int, str, str]] = field(default_factory=list)
    source: str = ""
    # With standardisation (data.standardize): rows it changed, how often each step changed
    # one, and the first such rows; None when the rows were read as given.
    standardized: dict[str, Any] | None = None

    @property
    def n_skipped(self) -> int:
        """Rows not kept."""
        return self.n_rows - self.n_kept

    def summary(self) -> str:
        """One line: rows read, kept, skipped by reason, and the first few skipped rows."""
        origin = f" from {self.source}" if self.source else ""
        line = f"read {self.n_rows} rows{origin}: kept {self.n_kept}, skipped {self.n_skipped}"
        if self.reasons:
            by_count = sorted(self.reasons.items(), key=lambda item: -item[1])
            line += " (" + ", ".join(f"{reason} {n}" for reason, n in by_count) + ")"
        if self.examples:
            first = self.examples[:3]
            line += "; first: " + ", ".join(f"row {r} {value!r} {why}" for r, value, why in first)
        if self.standardized is not None:
            steps = self.standardized["changes"]
            line += (f"; standardised: {self.standardized['rows_changed']} rows changed"
                     + (" (" + ", ".join(f"{k} {n}" for k, n in steps.items()) + ")"
                        if steps else ""))
        return line

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return {
            "source": self.source,
            "n_rows": self.n_rows,
            "n_kept": self.n_kept,
            "n_skipped": self.n_skipped,
            "reasons": dict(self.reasons),
            "examples": [
                {"row": row, "value": value, "reason": reason}
                for row, value, reason in self.examples
            ],
            **({} if self.standardized is None else {"standardized": self.standardized}),
        }


def _file_kind(path: Path) -> str:
    """"csv", "smi" or "txt" from the file name, which may end in .gz."""
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix.split(".")[1]
    raise DataError(
        f"cannot read {path}: unsupported file type; supported: {', '.join(SUPPORTED_SUFFIXES)}"
    )


def _opener(path: Path) -> Any:
    """gzip.open for a .gz file, else open (the same arguments work for both)."""
    return gzip.open if path.name.lower().endswith(".gz") else open


_BOMS = (  # longest first: the UTF-32 little-endian mark begins with the UTF-16 one
    (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"),
)


def _encoding(path: Path) -> str:
    """UTF-16 or UTF-32 where the file starts with their byte-order mark (as Excel's "Unicode
    text" does), or UTF-16 without one where every other byte of the start is NUL (text never
    holds NUL otherwise); else UTF-8 (utf-8-sig: a UTF-8 byte-order mark is dropped, not read
    as part of the first value)."""
    try:
        with _opener(path)(path, "rb") as handle:
            head = handle.read(1024)
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}") from error
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    pairs = len(head) // 2
    if pairs >= 2:
        even, odd = head[0:2 * pairs:2], head[1:2 * pairs:2]
        if odd.count(0) == pairs and even.count(0) < pairs:
            return "utf-16-le"
        if even.count(0) == pairs and odd.count(0) < pairs:
            return "utf-16-be"
    return "utf-8-sig"


def _open_text(path: Path) -> TextIO:
    """Open a (possibly gzipped) text file; bad bytes become U+FFFD instead of raising."""
    return _opener(path)(path, "rt", encoding=_encoding(path), errors="replace")


def _csv_chunks(path: Path, column: str, rows: int) -> Iterator[list[str]]:
    """The values of one CSV column as strings, ``rows`` at a time; empty cells and blank
    lines become ""."""
    options: dict[str, Any] = {"encoding": _encoding(path), "encoding_errors": "replace"}
    try:
        columns = list(pd.read_csv(path, nrows=0, **options).columns)
        if column not in columns:
            same_but_case = [c for c in columns if c.lower() == column.lower()]
            hint = f" (did you mean {same_but_case[0]!r}?)" if same_but_case else ""
            raise DataError(
                f"{path} has no column {column!r}{hint}; its columns are: "
                f"{', '.join(map(repr, columns))}. Pass column= (--column) to choose one"
            )
        # na_filter=False keeps empty cells as "" (not NaN) and skip_blank_lines=False keeps
        # blank lines, so the validation step sees and counts them.
        reader = pd.read_csv(path, usecols=[column], dtype=str, na_filter=False,
                             skip_blank_lines=False, chunksize=rows, **options)
        with reader:
            for frame in reader:
                yield frame[column].tolist()
    except pd.errors.EmptyDataError as error:
        raise DataError(
            f"{path} is empty; expected a header line naming column {column!r}"
        ) from error
    except (pd.errors.ParserError, OSError, EOFError) as error:
        raise DataError(f"cannot read {path} as CSV: {error}") from error


def _line_chunks(path: Path, kind: str, rows: int) -> Iterator[list[str]]:
    """The lines of a .txt (whole) or .smi (first field; a SMILES header line dropped) file,
    ``rows`` at a time."""
    try:
        with _open_text(path) as handle:
            first = True
            while lines := [line.rstrip("\r\n") for line in itertools.islice(handle, rows)]:
                if kind == "smi":
                    lines = [fields[0] if (fields := line.split()) else "" for line in lines]
                    if first and lines[0] in ("SMILES", "smiles"):
                        lines = lines[1:]
                first = False
                yield lines
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}") from error


def iter_strings(
    path: str | Path, column: str | None = None, rows: int = 100_000
) -> Iterator[list[str]]:
    """``read_strings`` a chunk of up to ``rows`` rows at a time, so a file of any size is
    read in flat memory; the chunks joined are exactly ``read_strings(path, column)``."""
    path = user_path(path)
    if not path.is_file():
        raise DataError(f"no such data file: {path}")
    kind = _file_kind(path)
    # column= only applies to CSV files; .smi and .txt have one value per line.
    if kind == "csv":
        return _csv_chunks(path, column or "SMILES", rows)
    return _line_chunks(path, kind, rows)


def read_strings(path: str | Path, column: str | None = None) -> list[str]:
    """Read one string per row from .csv/.smi/.txt (optionally .gz); empty rows stay as ""."""
    return list(itertools.chain.from_iterable(iter_strings(path, column)))


def _check_molecule(
    text: str, representation: str, max_length: int | None, vocabulary: Collection[str] | None,
    standardize: str | None = None,
) -> tuple[str, str | None, list[str], tuple[str, ...]]:
    """(string in the model's representation, None, its tokens, standardisation changes) if
    usable, else (stripped input, reason, [], changes). standardize: None (read as given),
    "keep" or "drop" (stereo): the row is standardised first (seqvae.standardize)."""

    text = text.strip()
    if not text:
        return text, "empty", [], ()
    if " " in text or not text.isprintable():
        # RDKit would read "CCO name" as CCO and keep the model string with its blank and
        # name; tabs, newlines and control characters are never part of a molecule either.
        return text, "bad_characters", [], ()
    changes: tuple[str, ...] = ()
    if standardize is not None:
        result = standardized_parent(text, standardize == "keep")
        if result.smiles is None:
            return text, result.reason, [], result.changes
        text, changes = result.smiles, result.changes
    value, reason, tokens = _check_parsed(text, representation, max_length, vocabulary)
    return value, reason, tokens, changes


def _check_parsed(
    text: str, representation: str, max_length: int | None, vocabulary: Collection[str] | None
) -> tuple[str, str | None, list[str]]:
    """The checks of a printable, non-empty SMILES: length, parse, conversion, vocabulary."""
    from seqvae import chem

    tokens = split_smiles(text)
    if max_length is not None and min_model_tokens(tokens, representation) > max_length:
        return text, "too_long", []  # known without parsing: a runaway line costs no time
    if chem.to_mol(text) is None:
        return text, "invalid", []
    converted = text
    if representation == "selfies":
        converted = chem.smiles_to_selfies(text)
        if converted is None:
            return text, "unconvertible", []
        tokens = split_selfies(converted)
    if vocabulary is not None and any(token not in vocabulary for token in tokens):
        return text, "unknown_tokens", []
    if max_length is not None and len(tokens) > max_length:
        return text, "too_long", []
    return converted, None, tokens


def _check_chunk(
    texts: Sequence[str],
    representation: str,
    max_length: int | None,
    vocabulary: Collection[str] | None,
    count_tokens: bool = False,
    standardize: str | None = None,
) -> tuple[list[tuple[str, str | None]], Counter[str] | None, list[Changed]]:
    """_check_molecule over a chunk (the unit of work of the process pool): (value, reason)
    per row; how often each token occurs in the kept rows when ``count_tokens``; and the rows
    standardisation changed, as (index in the chunk, input, standardised, changes)."""
    results = []
    counts: Counter[str] | None = Counter() if count_tokens else None
    changed: list[Changed] = []
    for index, text in enumerate(texts):
        text = text if isinstance(text, str) else ""
        value, reason, tokens, changes = _check_molecule(
            text, representation, max_length, vocabulary, standardize)
        results.append((value, reason))
        if changes:
            changed.append((index, text.strip(), value if reason is None else "", changes))
        if counts is not None:
            counts.update(tokens)
    return results, counts, changed


# Rows per unit of work sent to a checking process, and units in flight per process.
_POOL_CHUNK = 5_000
_POOL_AHEAD = 3


def check_molecules(
    chunks: Iterable[Sequence[str]],
    representation: str = "smiles",
    max_length: int | None = 120,
    vocabulary: Collection[str] | None = None,
    count_tokens: bool = False,
    standardize: str | None = None,
) -> Iterator[tuple[list[tuple[str, str | None]], Counter[str] | None, list[Changed]]]:
    """Check molecules a chunk at a time: for each chunk, in order, the (value, reason) pair
    of each row (``_check_molecule``), when ``count_tokens`` the token counts of its kept
    rows, and the rows standardisation changed (``standardize``: None, "keep" or "drop"
    stereo; see seqvae.standardize). Over ``_POOL_MIN_MOLECULES`` rows the work is spread over a process pool, a bounded
    number of chunks ahead, so a file of any length is checked in flat memory."""
    if representation not in MOLECULAR_REPRESENTATIONS:
        raise DataError(
            f"unknown molecular representation {representation!r}; choose one of "
            f"{', '.join(MOLECULAR_REPRESENTATIONS)}"
        )
    # A set makes the per-token membership test O(1) whatever the caller passed (a dict, a list).
    vocabulary = None if vocabulary is None else frozenset(vocabulary)
    check = partial(_check_chunk, representation=representation, max_length=max_length,
                    vocabulary=vocabulary, count_tokens=count_tokens, standardize=standardize)
    pieces = (c[i:i + _POOL_CHUNK] for c in chunks for i in range(0, len(c), _POOL_CHUNK))
    # Look ahead far enough to know whether a pool pays for itself.
    ahead: list[Sequence[str]] = []
    for piece in pieces:
        ahead.append(piece)
        if sum(map(len, ahead)) >= _POOL_MIN_MOLECULES:
            break
    n_workers = _n_workers(sum(map(len, ahead)))
    if n_workers == 1:
        for piece in itertools.chain(ahead, pieces):
            yield check(piece)
        return
    # fork on Linux: workers start at once, and scripts without a __main__ guard still work
    # (spawn / forkserver would re-import the caller's script in every worker).
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
    with context.Pool(n_workers) as pool:
        pending: deque[Any] = deque()
        for piece in itertools.chain(ahead, pieces):
            pending.append(pool.apply_async(check, (piece,)))
            if len(pending) >= n_workers * _POOL_AHEAD:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _n_workers(n_items: int) -> int:
    """How many processes to check n_items molecules with (1: stay in this process)."""
    if n_items < _POOL_MIN_MOLECULES:
        return 1
    return max(1, min(os.cpu_count() or 1, _MAX_WORKERS))


def clean_molecules(
    strings: Sequence[str],
    representation: str = "smiles",
    max_length: int | None = 120,
    source: str = "",
    vocabulary: Collection[str] | None = None,
    standardize: str | None = None,
    rows: list[int] | None = None,
) -> tuple[list[str], SkipReport]:
    """Keep the usable molecules (in the model's representation) and report the skipped rows;
    with ``rows`` (a list), the 0-based index of each kept row is appended to it.

    Skip reasons: "empty", "bad_characters" (a blank, tab, newline or control character
    inside the value), "invalid" (RDKit cannot parse it), "unconvertible" (SMILES -> SELFIES
    failed), "unknown_tokens" (a token outside ``vocabulary``, when one is given) and
    "too_long" (more than ``max_length`` tokens of the representation); with ``standardize``
    ("keep" or "drop" stereo: each row standardised first, seqvae.standardize) also
    "empty_after_standardization" and "standardization_failed", and the report counts the
    rows standardisation changed.
    """
    tally = SkipTally(source, standardized=standardize is not None, rows=rows)
    kept: list[str] = []
    for results, _, changed in check_molecules([strings], representation, max_length,
                                               vocabulary, standardize=standardize):
        kept.extend(tally.add(results, changed))
    return kept, tally.report()


class SkipTally:
    """Builds a SkipReport from (value, reason-or-None) pairs given a chunk at a time."""

    def __init__(self, source: str = "", standardized: bool = False,
                 rows: list[int] | None = None) -> None:
        self.source = source
        self.rows = rows  # when a list: the 0-based index of each kept row is appended
        self.n_rows = 0
        self.reasons: Counter[str] = Counter()
        self.examples: list[tuple[int, str, str]] = []
        self.standardized = standardized  # whether the rows were standardised first
        self.n_changed = 0
        self.changes: Counter[str] = Counter()
        self.changed_examples: list[dict[str, Any]] = []

    def add(self, results: Iterable[tuple[str, str | None]],
            changed: Iterable[Changed] = ()) -> list[str]:
        """Count a chunk's rows (and the rows standardisation changed in it); return its kept
        values."""
        first_row = self.n_rows + 1
        for index, before, after, steps in changed:
            self.n_changed += 1
            self.changes.update(steps)
            if len(self.changed_examples) < _N_EXAMPLES:
                self.changed_examples.append({"row": first_row + index,
                                              "input": before[:_EXAMPLE_CHARS],
                                              "standardized": after[:_EXAMPLE_CHARS],
                                              "changes": list(steps)})
        kept: list[str] = []
        for value, reason in results:
            self.n_rows += 1
            if reason is None:
                kept.append(value)
                if self.rows is not None:
                    self.rows.append(self.n_rows - 1)
                continue
            self.reasons[reason] += 1
            if len(self.examples) < _N_EXAMPLES:
                self.examples.append((self.n_rows, value[:_EXAMPLE_CHARS], reason))
        return kept

    def report(self) -> SkipReport:
        n_skipped = sum(self.reasons.values())
        standardized = None if not self.standardized else {
            "rows_changed": self.n_changed,
            "changes": {k: self.changes[k] for k in sorted(self.changes)},
            "examples": list(self.changed_examples)}
        return SkipReport(n_rows=self.n_rows, n_kept=self.n_rows - n_skipped,
                          reasons=dict(self.reasons), examples=list(self.examples),
                          source=self.source, standardized=standardized)


def load_molecules(
    path: str | Path,
    column: str | None = None,
    representation: str = "smiles",
    max_length: int | None = 120,
    vocabulary: Collection[str] | None = None,
    standardize: str | None = None,
    rows: list[int] | None = None,
) -> tuple[list[str], SkipReport]:
    """Read a molecule file and clean it: ``read_strings`` then ``clean_molecules`` (``rows``:
    see there)."""
    strings = read_strings(path, column)
    return clean_molecules(
        strings, representation, max_length, source=str(path), vocabulary=vocabulary,
        standardize=standardize, rows=rows,
    )


def select_categories(path: str | Path, column: str, rows: list[int], report: Any,
                      categories: Sequence[str] | None = None,
                      keep_unlabelled: bool = False) -> tuple[list[int], list[str]]:
    """The category labels (data.condition_column) of the kept rows of a CSV: which of the
    positions in ``rows`` stay, and their labels. A row without one is skipped and counted
    ("unlabelled"), or with ``keep_unlabelled`` kept with the label ""; with ``categories`` given (the training split's), one whose
    label is not among them is skipped ("unseen_category")."""
    path = user_path(path)
    if _file_kind(path) != "csv":
        raise DataError(f"data.condition_column is read from a CSV file; {path} is not one")
    options: dict[str, Any] = {"encoding": _encoding(path), "encoding_errors": "replace"}
    present = list(pd.read_csv(path, nrows=0, **options).columns)
    if column not in present:
        raise DataError(f"{path} has no column {column!r} (data.condition_column); its columns "
                        f"are: {', '.join(map(repr, present))}")
    values = pd.read_csv(path, usecols=[column], dtype=str, na_filter=False,
                         skip_blank_lines=False, **options)[column].str.strip().tolist()
    known = set(categories) if categories is not None else None
    kept, labels = [], []
    for position, row in enumerate(rows):
        label = values[row]
        if not label and keep_unlabelled:
            kept.append(position)
            labels.append("")
            continue
        reason = ("unlabelled" if not label else
                  "unseen_category" if known is not None and label not in known else None)
        if reason:
            report.reasons[reason] = report.reasons.get(reason, 0) + 1
            report.n_kept -= 1
            continue
        kept.append(position)
        labels.append(label)
    return kept, labels


def read_labels(path: str | Path, columns: Sequence[str]) -> np.ndarray:
    """Numeric label columns of a CSV, one row per data row (as read_strings counts them):
    (N, L) floats, NaN where a cell is empty. A missing column, or a cell that is not a
    number, is a DataError naming the column and rows."""
    path = user_path(path)
    if _file_kind(path) != "csv":
        raise DataError(f"data.label_columns are read from a CSV file; {path} is not one")
    options: dict[str, Any] = {"encoding": _encoding(path), "encoding_errors": "replace"}
    present = list(pd.read_csv(path, nrows=0, **options).columns)
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataError(f"{path} has no label column(s) {missing}; its columns are: "
                        f"{', '.join(map(repr, present))}")
    frame = pd.read_csv(path, usecols=list(columns), dtype=str, na_filter=False,
                        skip_blank_lines=False, **options)
    out = np.full((len(frame), len(columns)), np.nan, dtype=np.float32)
    for j, column in enumerate(columns):
        text = frame[column].str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        bad = np.flatnonzero((text != "").to_numpy() & ~np.isfinite(numbers.to_numpy(float)))
        if len(bad):
            shown = ", ".join(f"row {i + 1} {frame[column][i]!r}" for i in bad[:5])
            raise DataError(f"{path}: label column {column!r} holds {len(bad)} entries that are "
                            f"not numbers ({shown}); leave a cell empty for a missing label")
        out[:, j] = numbers.to_numpy(dtype=np.float32)
    return out


def _check_sentence(text: str, max_chars: int | None) -> tuple[str, str | None]:
    """(the sentence, None) if usable, else (stripped input, reason)."""
    text = " ".join(text.split())  # strip, and one space between words
    if not text:
        return text, "empty"
    if "\ufffd" in text:  # a byte that was not UTF-8 (read with errors="replace")
        return text, "not_utf8"
    if not any(ch.isalnum() for ch in text):
        return text, "no_words"
    if max_chars is not None and len(text) > max_chars:
        return text, "too_long"
    return text, None


def clean_sentences(
    strings: Sequence[str], max_chars: int | None = None, source: str = "",
    rows: list[int] | None = None,
) -> tuple[list[str], SkipReport]:
    """Keep the usable sentences (whitespace normalised) and report the skipped lines.

    Skip reasons: "empty" (blank), "not_utf8" (bytes that are not UTF-8, read as U+FFFD),
    "no_words" (no letter or digit: only punctuation or symbols), "too_long" (more than
    ``max_chars`` characters; the limit in tokens is applied after tokenizing, ``drop_long``).
    """
    tally = SkipTally(source, rows=rows)
    kept = tally.add(_check_sentence(raw if isinstance(raw, str) else "", max_chars)
                     for raw in strings)
    return kept, tally.report()


def load_sentences(
    path: str | Path, column: str | None = None, max_chars: int | None = None,
    rows: list[int] | None = None,
) -> tuple[list[str], SkipReport]:
    """Read sentences (a .txt with one per line, or a CSV column, default "text") and clean
    them: ``read_strings`` then ``clean_sentences`` (``rows``: see clean_molecules)."""
    return clean_sentences(read_strings(path, column or "text"), max_chars, source=str(path),
                           rows=rows)


def drop_long(
    strings: list[str], ids: list[list[int]], max_length: int, report: SkipReport,
    rows: list[int] | None = None,
) -> tuple[list[str], list[list[int]]]:
    """Drop sequences of more than ``max_length`` tokens (BOS and EOS not counted) and count
    them in ``report`` as "too_long"; ``rows`` (their row numbers), when given, is filtered
    alike in place."""
    keep = [len(x) - 2 <= max_length for x in ids]
    if rows is not None:
        rows[:] = [r for r, k in zip(rows, keep) if k]
    n_long = keep.count(False)
    if n_long:
        report.reasons["too_long"] = report.reasons.get("too_long", 0) + n_long
        report.n_kept -= n_long
    return ([t for t, k in zip(strings, keep) if k], [x for x, k in zip(ids, keep) if k])


def moses_path(split: str) -> Path:
    """Path of a MOSES split ("train", "test", "test_scaffolds") inside the molsets wheel."""
    if split not in MOSES_SPLITS:
        raise DataError(f"unknown MOSES split {split!r}; choose one of {', '.join(MOSES_SPLITS)}")
    install = "install with: pip install --no-deps molsets==0.3.1"
    # Located through the package metadata: importing `moses` itself fails on current
    # RDKit/pandas, and the data files are all we need from it.
    try:
        distribution = importlib.metadata.distribution("molsets")
    except importlib.metadata.PackageNotFoundError as error:
        raise DataError(
            f"the MOSES data come with the molsets package, which is missing; {install}"
        ) from error
    path = Path(str(distribution.locate_file(f"moses/dataset/data/{split}.csv.gz")))
    if not path.is_file():
        raise DataError(f"molsets is installed but has no {path}; reinstall it ({install})")
    return path


def default_data_path(name: str) -> Path:
    """Path of a dataset shipped in the repository's data/ folder ("moses_train", ...)."""
    if name not in DEFAULT_DATA:
        raise DataError(f"no shipped dataset {name!r}; choose one of {', '.join(DEFAULT_DATA)}")
    path = _DATA_DIR / DEFAULT_DATA[name]
    if not path.is_file():
        raise DataError(
            f"the shipped dataset {name!r} is missing at {path}; it lives in the source "
            "repository's data/ folder (regenerate it with: python data/make_default_data.py)"
        )
    return path


def user_path(path: str | Path) -> Path:
    """A path a user typed, "~" and "~user" expanded where they name a home (os.path's rule: an
    unknown user's "~name" stays as written, so it fails later as a missing file, not as
    pathlib's RuntimeError)."""
    return Path(os.path.expanduser(os.fspath(path)))


def resolve_data(spec: str | Path) -> Path:
    """A data path from "moses:SPLIT", "default:NAME" or a filesystem path."""
    text = str(spec)
    if text.startswith("moses:"):
        return moses_path(text.removeprefix("moses:"))
    if text.startswith("default:"):
        return default_data_path(text.removeprefix("default:"))
    return user_path(text)


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id rows as one batch: tokens (B, T) int64 padded with pad_id to the longest row,
    and lengths (B,) int64 (as SequenceBatches gives them)."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64)
    tokens = torch.full((len(rows), int(lengths.max())), pad_id, dtype=torch.int64)
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = torch.as_tensor(r, dtype=torch.int64)
    return tokens, lengths


class SequenceBatches:
    """Length-bucketed batches over a list of token-id sequences (each already holds BOS..EOS).

    With ``shuffle``, each epoch shuffles the sequences, cuts them into chunks of
    ``bucket_size_in_batches`` batches, sorts each chunk by length, splits it into batches
    and shuffles the batch order: batches hold sequences of similar length (little padding)
    while their order stays random. Without ``shuffle``, batches follow the input order.

    Under DDP (``world_size`` > 1) ``batch_size`` stays the global batch: every rank follows
    the same plan and takes rows r, r + world_size, ... of each batch, so one optimisation
    step sees the same sequences as a single process would, every rank gets the same number
    of batches (no rank waits forever on the others' all-reduce), and a batch with fewer rows
    than ranks is dropped. ``with_indices(shares=True)`` also gives each rank's share of the
    batch's rows, to weight its loss so that the averaged gradients equal the single-process
    gradient of the whole batch.
    """

    def __init__(
        self,
        sequences: Sequence[Sequence[int]] | Sequence[np.ndarray],
        batch_size: int,
        pad_id: int,
        shuffle: bool = True,
        seed: int = 0,
        bucket_size_in_batches: int = 50,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        """Store the sequences as one flat int32 array plus offsets."""
        if batch_size < 1 or bucket_size_in_batches < 1:
            raise ValueError(
                f"batch_size ({batch_size}) and bucket_size_in_batches "
                f"({bucket_size_in_batches}) must be at least 1"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} must be in 0..world_size-1 (world_size {world_size})")
        # One flat array instead of a Python list per sequence: 1.6M molecules would otherwise
        # cost ~100 bytes of object overhead per token. A TokenArray (seqvae.cache, possibly
        # memory-mapped) already is one and is used as it is.
        if not isinstance(sequences, TokenArray):
            sequences = TokenArray.from_sequences(sequences)
        self.offsets = np.asarray(sequences.offsets, dtype=np.int64)
        self.tokens = sequences.tokens
        self.lengths = np.diff(self.offsets)
        if len(self.lengths) and self.lengths.min() < 1:
            raise DataError(
                f"sequence {int(np.argmin(self.lengths))} is empty; every sequence needs at "
                "least one token (BOS ... EOS)"
            )
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_size_in_batches = bucket_size_in_batches
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose plan ``__iter__`` follows (the shuffle depends on it)."""
        self.epoch = epoch

    def _n_batches(self) -> int:
        """Batches in one epoch (the same for every rank)."""
        n, size = len(self.lengths), self.batch_size
        if self.drop_last:
            return n // size
        # a last batch with fewer rows than ranks would leave a rank with nothing
        return n // size + (1 if n % size >= self.world_size else 0)

    def __len__(self) -> int:
        """Batches per epoch (for every rank)."""
        return self._n_batches()

    def batch_indices(self, epoch: int | None = None) -> list[list[int]]:
        """This rank's batches for ``epoch`` (default: the current one) as lists of indices."""
        return [batch.tolist() for batch in self._plan(self.epoch if epoch is None else epoch)]

    def _plan(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches for ``epoch`` as index arrays."""
        return [batch[self.rank :: self.world_size] for batch in self._global_plan(epoch)]

    def _global_plan(self, epoch: int) -> list[np.ndarray]:
        """The whole batches of ``epoch``, before they are split among ranks."""
        n, size = len(self.lengths), self.batch_size
        if self.shuffle:
            # A (seed, epoch) pair, not seed + epoch, so seed 1 epoch 0 differs from seed 0 epoch 1.
            rng = np.random.default_rng((self.seed, epoch))
            order = rng.permutation(n)
            chunk = self.bucket_size_in_batches * size
            batches: list[np.ndarray] = []
            for start in range(0, n, chunk):
                part = order[start : start + chunk]
                # Stable sort keeps the random order among sequences of equal length.
                part = part[np.argsort(self.lengths[part], kind="stable")]
                batches.extend(part[i : i + size] for i in range(0, len(part), size))
            if batches and len(batches) > self._n_batches():
                batches.pop()  # drop_last, or too few rows for every rank to get one
            batches = [batches[i] for i in rng.permutation(len(batches))]
        else:
            batches = [np.arange(i * size, min((i + 1) * size, n)) for i in range(self._n_batches())]
        return batches

    def _collate(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens (B, T) padded with pad_id to the longest in the batch, and lengths (B,)."""
        lengths = self.lengths[indices]  # (B,)
        width = int(lengths.max())
        steps = np.arange(width)  # (T,)
        inside = steps[None, :] < lengths[:, None]  # (B, T)
        # Gather every (row, step) at once; positions past a row's end are clipped into the
        # array and then replaced by pad_id.
        positions = self.offsets[indices][:, None] + steps[None, :]  # (B, T)
        positions = np.minimum(positions, len(self.tokens) - 1)
        tokens = np.where(inside, self.tokens[positions], self.pad_id).astype(np.int64)  # (B, T)
        return torch.from_numpy(tokens), torch.from_numpy(lengths.copy())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (tokens (B, T) int64 padded with pad_id, lengths (B,) int64) per batch."""
        for batch in self._plan(self.epoch):
            yield self._collate(batch)

    def with_indices(self, shares: bool = False) -> Iterator[tuple[Any, ...]]:
        """As ``__iter__``, with the indices of each batch's sequences (for per-sequence data
        such as property targets); with ``shares``, also this rank's fraction of the whole
        batch's rows."""
        for batch in self._global_plan(self.epoch):
            mine = batch[self.rank :: self.world_size]
            if shares:
                yield (*self._collate(mine), mine, len(mine) / len(batch))
            else:
                yield (*self._collate(mine), mine)
