"""Tokenized data, cached on disk and memory-mapped, so a second run on the same file starts
in seconds and its memory does not grow with the data.

A split is stored as two flat arrays in raw little-endian files, ``tokens`` (int32, every
sequence one after another) and ``offsets`` (int64, where each begins, then the end), plus
JSON (the tokenizer, the skip report). They are written a chunk at a time (``TokenWriter``),
so building an entry for millions of rows takes no more memory than a chunk. The
cache key is the SHA-256 of the data file's bytes with every setting that changes the
result (representation, column, max_length, the tokenizer). Entries live under
``$SEQVAE_CACHE_DIR`` (default ``~/.cache/seqvae/tokens``); deleting them is always safe.
Nothing is pickled: the arrays are bare numbers, their length read from the file size.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CACHE_FORMAT = 2
_TOKENS, _OFFSETS = np.dtype("<i4"), np.dtype("<i8")


def _map(path: Path, dtype: np.dtype) -> np.ndarray:
    """A raw little-endian array file, memory-mapped read-only (an empty one as an empty array)."""
    size = path.stat().st_size
    if size % dtype.itemsize:
        raise ValueError(f"{path} is {size} bytes, not a whole number of {dtype} values")
    if size == 0:
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r")


class TokenArray(Sequence):
    """Many token-id sequences in two flat arrays (possibly memory-mapped): ``len``, indexing
    (one sequence: an int32 view; a slice: a TokenArray) and iteration, like a list."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray):
        if offsets.ndim != 1 or len(offsets) < 1 or int(offsets[-1]) != len(tokens):
            raise ValueError("offsets must be 1-D, start the sequences and end at len(tokens)")
        self.tokens = tokens
        self.offsets = offsets

    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]]) -> "TokenArray":
        """Copy sequences (lists or arrays of ids) into flat arrays, without a Python or numpy
        object per sequence on the way."""
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        tokens = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int32,
                             count=int(offsets[-1]))
        return cls(tokens, offsets)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return TokenArray.from_sequences([self[i] for i in range(start, stop, step)])
            stop = max(start, stop)
            lo, hi = int(self.offsets[start]), int(self.offsets[stop])
            return TokenArray(self.tokens[lo:hi], self.offsets[start:stop + 1] - lo)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"sequence {index} of {len(self)}")
        return self.tokens[int(self.offsets[index]):int(self.offsets[index + 1])]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def save(self, folder: Path, name: str) -> None:
        with TokenWriter(folder, name) as writer:
            writer.add(self)

    @classmethod
    def load(cls, folder: Path, name: str) -> "TokenArray":
        """Memory-mapped: pages are read as batches touch them. A file cut short raises
        ValueError (its offsets no longer end at its number of tokens)."""
        return cls(_map(folder / f"{name}.tokens.i32", _TOKENS),
                   _map(folder / f"{name}.offsets.i64", _OFFSETS))


class TokenWriter:
    """Appends sequences to the two files of a TokenArray, a chunk at a time."""

    def __init__(self, folder: Path, name: str) -> None:
        self._tokens = open(folder / f"{name}.tokens.i32", "wb")
        self._offsets = open(folder / f"{name}.offsets.i64", "wb")
        self.rows = self.n_tokens = 0
        self._offsets.write(np.zeros(1, _OFFSETS).tobytes())

    def add(self, sequences: Sequence[Sequence[int]]) -> None:
        """Append sequences of token ids (lists, arrays, or a TokenArray)."""
        array = sequences if isinstance(sequences, TokenArray) else TokenArray.from_sequences(sequences)
        self._tokens.write(np.ascontiguousarray(array.tokens, _TOKENS).tobytes())
        self._offsets.write((np.asarray(array.offsets[1:], _OFFSETS) + self.n_tokens).tobytes())
        self.rows += len(array)
        self.n_tokens += len(array.tokens)

    def close(self) -> None:
        self._tokens.close()
        self._offsets.close()

    def __enter__(self) -> "TokenWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def tokenize_to_array(tokenizer: Any, strings: Sequence[str], chunk: int = 100_000) -> TokenArray:
    """Tokenize in chunks straight into flat arrays (a list of lists of Python ints for
    millions of rows would take gigabytes)."""
    tokens: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    for start in range(0, len(strings), chunk):
        ids = tokenizer.encode_batch(strings[start:start + chunk])
        lengths.append(np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)))
        tokens.append(np.fromiter((t for x in ids for t in x), dtype=np.int32,
                                  count=int(lengths[-1].sum())))
    offsets = np.zeros(len(strings) + 1, dtype=np.int64)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
    return TokenArray(np.concatenate(tokens) if tokens else np.zeros(0, np.int32), offsets)


def cache_root() -> Path:
    return Path(os.environ.get("SEQVAE_CACHE_DIR") or Path.home() / ".cache" / "seqvae") / "tokens"


def file_digest(path: str | Path, block: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(path: str | Path, settings: dict[str, Any]) -> str:
    """The entry name for a data file read with these settings."""
    text = json.dumps({"format": CACHE_FORMAT, "file": file_digest(path), **settings},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def read_entry(key: str) -> tuple[Path, dict[str, Any]] | None:
    """The folder and metadata of a complete cache entry, or None (absent or unreadable:
    then it is simply rebuilt)."""
    folder = cache_root() / key
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != CACHE_FORMAT:
        return None
    return folder, meta


class EntryBuilder:
    """A cache entry being written: files go into a temporary folder (``folder``) and
    ``commit`` renames it into place, so a crash leaves no half entry and two runs writing
    the same entry at once both end with a whole one. Leaving the ``with`` block without a
    commit removes the temporary folder."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.root = cache_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.folder = self.root / f".{key}.tmp-{os.getpid()}"
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir()

    def commit(self, meta: dict[str, Any], files: dict[str, str] | None = None) -> Path:
        for name, text in (files or {}).items():
            (self.folder / name).write_text(text)
        (self.folder / "meta.json").write_text(json.dumps({"format": CACHE_FORMAT, **meta}, indent=1))
        final = self.root / self.key
        trash = self.root / f".{self.key}.old-{os.getpid()}"
        if final.exists():  # an entry that could not be read: set it aside
            try:
                final.rename(trash)
            except OSError:
                pass
        try:
            self.folder.rename(final)
        except OSError:  # another process got there first: keep its entry
            pass
        shutil.rmtree(trash, ignore_errors=True)
        return final

    def __enter__(self) -> "EntryBuilder":
        return self

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # gone already if committed


def write_entry(key: str, arrays: dict[str, TokenArray], meta: dict[str, Any],
                files: dict[str, str] | None = None) -> Path:
    """Write a whole entry from arrays in memory (see EntryBuilder)."""
    with EntryBuilder(key) as entry:
        for name, array in arrays.items():
            array.save(entry.folder, name)
        return entry.commit(meta, files)


# -- computed properties ---------------------------------------------------------------------
# RDKit properties of a training set (model.properties, model.conditions) cost about a
# millisecond a molecule: half an hour for MOSES's 1.6 million, paid again by every resumed
# sitting. They are cached beside the tokens: one raw little-endian float32 file (rows x
# properties) and a JSON file written after it, keyed by the SHA-256 of the strings, the
# property names and the RDKit version (a newer RDKit may compute a property differently).
PROPERTY_FORMAT = 1
_VALUES = np.dtype("<f4")


def properties_root() -> Path:
    return cache_root().parent / "properties"


def strings_digest(strings: Sequence[str]) -> str:
    """SHA-256 of the strings in order (each ended by a newline)."""
    digest = hashlib.sha256()
    for s in strings:
        digest.update(s.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def cached_properties(strings: Sequence[str], names: Sequence[str], compute: Any,
                      log: Any = None, version: str = "") -> np.ndarray:
    """``compute()`` (a float32 array, one row per string, one column per name), read from the
    cache when these strings' properties were computed before by the same ``version`` of the
    code that computes them (the RDKit version, for molecules); a missing, partial or
    unreadable entry is simply computed again and rewritten."""
    names = list(names)
    key = hashlib.sha256(json.dumps({"format": PROPERTY_FORMAT, "strings": strings_digest(strings),
                                     "names": names, "version": version},
                                    sort_keys=True).encode()).hexdigest()[:32]
    root = properties_root()
    data, meta = root / f"{key}.f32", root / f"{key}.json"
    try:
        stored = json.loads(meta.read_text())
        values = np.fromfile(data, dtype=_VALUES)
        if stored.get("rows") == len(strings) and stored.get("names") == names and \
                values.size == len(strings) * len(names):
            if log:
                log(f"{', '.join(names)} of {len(strings):,} molecules read from the cache {data}")
            return values.reshape(len(strings), len(names)).astype(np.float32)
    except (OSError, ValueError):
        pass
    values = np.asarray(compute(), dtype=np.float32).reshape(len(strings), len(names))
    try:  # data, then the JSON that says it is whole; each renamed into place
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{key}.tmp-{os.getpid()}"
        values.astype(_VALUES).tofile(tmp)
        os.replace(tmp, data)
        tmp.write_text(json.dumps({"format": PROPERTY_FORMAT, "rows": len(strings),
                                   "names": names, "version": version}))
        os.replace(tmp, meta)
    except OSError as error:  # a read-only cache: the run goes on without it
        if log:
            log(f"could not cache the properties in {root} ({error})")
    return values
