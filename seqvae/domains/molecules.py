"""Molecules written as SMILES or SELFIES: RDKit checks inputs and outputs, tables hold
canonical SMILES and validity, samples are drawn as molecule grids.

Strings go in and out as SMILES for both representations (the SELFIES conversion happens in
the tokenizer). RDKit is imported where it is used (through seqvae.chem), never when this
module is.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import MOLECULAR_REPRESENTATIONS
from ..errors import DataError, SeqVAEError
from ..tokenizers import min_model_tokens
from .base import Domain, Log, Prepared

# rows read, checked and tokenized at a time while building the token cache (10,000: a chunk
# of Hugging Face encodings is ~40 MB; 100,000 rows took the peak to 1 GB)
CACHE_CHUNK = 10_000


class Molecules(Domain):
    """SMILES and SELFIES models."""

    name = "molecules"
    kinds = MOLECULAR_REPRESENTATIONS
    column = "SMILES"
    unit = "mol"
    strict_tokens = True  # a molecule must be spelled in known tokens: the model cannot <unk>
    draws = True  # a grid of the valid molecules

    def precheck(self, text: str, tokenizer: Any, max_tokens: int) -> str | None:
        """Too long by a cheap lower bound (a runaway line costs no parsing time), or not
        parsed by RDKit."""
        from ..chem import is_valid

        least = min_model_tokens(text, tokenizer.kind)
        if least > max_tokens - 2:
            return f"at least {least} tokens, more than the model's limit of {max_tokens - 2}"
        if not is_valid(text):
            return "RDKit cannot parse it as SMILES"
        return None

    def table(self, strings: Sequence[str], nll: Sequence[float] | None = None) -> pd.DataFrame:
        """SMILES (canonical where valid), NLL when given, valid."""
        from ..chem import canonicalize_many

        canonical = canonicalize_many(list(strings))
        columns: dict[str, list] = {
            "SMILES": [c if c is not None else s for s, c in zip(strings, canonical)]}
        if nll is not None:
            columns["NLL"] = [float(x) for x in nll]
        columns["valid"] = [c is not None for c in canonical]
        return pd.DataFrame(columns)

    def usable(self, table: pd.DataFrame) -> pd.Series:
        """The valid molecules."""
        return table["valid"].astype(bool)

    def same(self, inputs: Sequence[str], outputs: Sequence[str], tokenizer: Any) -> dict[str, list]:
        """valid (the output parses), exact (the same canonical molecule) and similarity
        (Tanimoto of Morgan fingerprints, radius 2, 2,048 bits, of input and output; 0.0 where
        the output is not a molecule, NaN where the input is not)."""
        from ..chem import to_mol, to_smiles
        from ..search.objectives import fingerprint, tanimoto

        # each string parsed once: its canonical form and its fingerprint from the same Mol
        mols_in, mols_out = [to_mol(x) for x in inputs], [to_mol(y) for y in outputs]
        canon_in = [None if m is None else to_smiles(m) for m in mols_in]
        canon_out = [None if m is None else to_smiles(m) for m in mols_out]
        similarity = []
        for a, b, mol_a, mol_b in zip(canon_in, canon_out, mols_in, mols_out):
            if a is None:
                similarity.append(float("nan"))
            elif b is None:
                similarity.append(0.0)
            else:
                similarity.append(1.0 if a == b else
                                  tanimoto(fingerprint(mol_a), fingerprint(mol_b)))
        return {"valid": [c is not None for c in canon_out],
                "exact": [a is not None and a == b for a, b in zip(canon_in, canon_out)],
                "similarity": similarity}

    def summary(self, table: pd.DataFrame) -> dict[str, float]:
        """valid: share of valid molecules; unique: distinct share among the valid ones."""
        valid = table.loc[self.usable(table), "SMILES"]
        return {"valid": float(table["valid"].mean()) if len(table) else 0.0,
                "unique": valid.nunique() / len(valid) if len(valid) else 0.0}

    def draw(self, table: pd.DataFrame, path: str | Path, legends: Sequence[str] | None = None,
             per_row: int = 6) -> Path | None:
        """A PNG grid of the valid molecules (None when there is none)."""
        from ..chem import molecule_grid

        valid = table[self.usable(table)]
        if not len(valid):
            return None
        return molecule_grid(list(valid["SMILES"]), path, legends=legends,
                             mols_per_row=min(per_row, len(valid)))

    def standardized(self, strings: Sequence[str], keep_stereo: bool = True) -> list[str]:
        """Each input's standardised parent (seqvae.standardize); an input that cannot be
        standardised stays as given, so the check that follows names its reason."""
        from ..standardize import standardize
        table = standardize(list(strings), keep_stereo=keep_stereo)
        return [s if s is not None else x for s, x in zip(table["SMILES"], strings)]

    def new_tokens(self, config: Any, tokenizer: Any) -> list[str]:
        """Tokens of the cleaned training rows that ``tokenizer`` lacks, most frequent first."""
        from collections import Counter

        from ..data import clean_molecules, read_strings, resolve_data
        d = config.data
        strings, _ = clean_molecules(read_strings(resolve_data(d.train), d.csv_column),
                                     d.representation, d.max_length,
                                     standardize=d.standardize_mode)
        counts = Counter(t for s in strings for t in tokenizer.unknown_tokens(s))
        return [token for token, _ in counts.most_common()]

    # -- data ------------------------------------------------------------------------------
    def prepare(self, config: Any, tokenizer: Any = None, log: Log = print,
                progress: bool = False) -> Prepared:
        """Read, check and tokenize molecules. With train.token_cache (and no property head,
        whose targets are computed from the strings a cached run never reads) the result is
        cached: the first run streams the files through the checks and the tokenizer into the
        cache a chunk at a time (flat memory whatever the file's size); a later run on the
        same files with the same settings memory-maps the tokenized splits."""
        if (not config.train.token_cache or config.model.computed_properties
                or config.data.label_names or config.data.condition_column):
            return _prepare_in_memory(config, tokenizer, log)
        return _prepare_cached(config, tokenizer, log, progress)


def _prepare_cached(config: Any, tokenizer: Any, log: Log, progress: bool) -> Prepared:
    from ..cache import TokenArray, cache_key, file_digest, read_entry
    from ..data import resolve_data
    from ..tokenizers import TOKENIZERS, load_tokenizer

    dcfg = config.data
    train_path, valid_path = resolve_data(dcfg.train), resolve_data(dcfg.valid)
    for path in (train_path, valid_path):
        if not Path(path).is_file():
            raise DataError(f"data file {path} does not exist")
    given = (None if tokenizer is None
             else hashlib.sha256(tokenizer.hf.to_str().encode()).hexdigest())
    settings = {"representation": dcfg.representation, "column": dcfg.csv_column,
                "max_length": dcfg.max_length, "valid": file_digest(valid_path),
                "tokenizer": given}
    if dcfg.standardize_mode is not None:  # (absent otherwise: earlier entries stay valid)
        settings["standardize"] = dcfg.standardize_mode
    key = cache_key(train_path, settings)
    # a run given its tokenizer (resumed, fine-tuned) also reads the entry its first part built
    # from the data, when the tokenizer built there is the one given
    candidates = [key] + ([cache_key(train_path, {**settings, "tokenizer": None})]
                          if given else [])
    for candidate in candidates:
        entry = read_entry(candidate)
        if entry is None:
            continue
        folder, meta = entry
        try:
            stored = load_tokenizer(folder / "tokenizer.json", TOKENIZERS[dcfg.representation].kind)
            if given and hashlib.sha256(stored.hf.to_str().encode()).hexdigest() != given:
                continue  # an entry built with another vocabulary
            train_ids, valid_ids = TokenArray.load(folder, "train"), TokenArray.load(folder, "valid")
        except (OSError, ValueError, SeqVAEError) as error:
            log(f"token cache {folder} unreadable ({error}); rebuilding it")
            break
        log(f"train and valid: tokenized {len(train_ids):,} and {len(valid_ids):,} rows read "
            f"from the token cache {folder}")
        return Prepared(tokenizer or stored, train_ids, valid_ids, meta["reports"])
    folder, tokenizer, reports = _build_cache(
        config, key, {"train": str(train_path), "valid": str(valid_path), "settings": settings},
        tokenizer, log, progress)
    log(f"tokenized data cached in {folder} (train.token_cache = false to not cache)")
    return Prepared(tokenizer, TokenArray.load(folder, "train"), TokenArray.load(folder, "valid"),
                    reports)


def _build_cache(config: Any, key: str, meta: dict[str, Any], tokenizer: Any, log: Log,
                 progress: bool) -> tuple[Path, Any, dict[str, Any]]:
    """Stream the training and validation files into a token cache entry: read a chunk,
    check it (a process pool for large files), write the kept strings to a scratch file and
    count their tokens; build the tokenizer from the counts; tokenize the scratch files a
    chunk at a time into the entry's arrays. Memory holds a few chunks, never the file."""
    from tqdm.auto import tqdm

    from ..cache import EntryBuilder, TokenWriter
    from ..data import SkipTally, check_molecules, iter_strings
    from ..tokenizers import TOKENIZERS

    dcfg = config.data
    reports: dict[str, Any] = {}
    with EntryBuilder(key) as entry:
        for split in ("train", "valid"):
            path = meta[split]
            tally = SkipTally(path, standardized=dcfg.standardize_mode is not None)
            counts: Counter[str] = Counter()
            bar = tqdm(desc=f"checking {split} rows", unit=" rows", unit_scale=True,
                       disable=not progress, dynamic_ncols=True, mininterval=2.0)
            with open(entry.folder / f"{split}.kept.txt", "w", encoding="utf-8") as out, bar:
                chunks = iter_strings(path, dcfg.csv_column, rows=CACHE_CHUNK)
                # rows with tokens the training data never had are skipped: the model cannot
                # produce them
                vocabulary = None if tokenizer is None else tokenizer.vocab
                for results, chunk_counts, changed in check_molecules(
                        chunks, dcfg.representation, dcfg.max_length, vocabulary,
                        count_tokens=split == "train" and tokenizer is None,
                        standardize=dcfg.standardize_mode):
                    kept = tally.add(results, changed)
                    out.writelines(f"{value}\n" for value in kept)
                    if chunk_counts:
                        counts.update(chunk_counts)
                    bar.update(len(results))
            report = tally.report()
            reports[split] = report.to_dict()
            log(f"{split}: {report.summary()}")
            if split == "train":
                if not report.n_kept:
                    raise DataError(f"no usable training rows in {dcfg.train}: {report.summary()}")
                if tokenizer is None:
                    tokenizer = TOKENIZERS[dcfg.representation].from_counts(counts)
        for split in ("train", "valid"):
            scratch = entry.folder / f"{split}.kept.txt"
            with open(scratch, encoding="utf-8") as lines, \
                    TokenWriter(entry.folder, split) as writer:
                while chunk := [line[:-1] for line in itertools.islice(lines, CACHE_CHUNK)]:
                    writer.add(tokenizer.encode_batch(chunk))
            scratch.unlink()
        folder = entry.commit({"reports": reports, **meta},
                              {"tokenizer.json": tokenizer.hf.to_str(pretty=True)})
    return folder, tokenizer, reports


def _prepare_in_memory(config: Any, tokenizer: Any, log: Log) -> Prepared:
    """Read, check and tokenize molecules without the cache (and their properties, for a
    model with a property head)."""
    from ..cache import tokenize_to_array
    from ..data import load_molecules, resolve_data
    from ..tokenizers import TOKENIZERS

    dcfg = config.data
    train_rows: list[int] = []
    valid_rows: list[int] = []
    train_strings, train_report = load_molecules(resolve_data(dcfg.train), column=dcfg.csv_column,
                                                 representation=dcfg.representation,
                                                 max_length=dcfg.max_length,
                                                 standardize=dcfg.standardize_mode,
                                                 rows=train_rows)
    log(f"train: {train_report.summary()}")
    if not train_strings:
        raise DataError(f"no usable training rows in {dcfg.train}: {train_report.summary()}")
    if tokenizer is None:
        tokenizer = TOKENIZERS[dcfg.representation].build(train_strings)
    # rows with tokens the training data never had are skipped: the model cannot produce them
    valid_strings, valid_report = load_molecules(resolve_data(dcfg.valid), column=dcfg.csv_column,
                                                 representation=dcfg.representation,
                                                 max_length=dcfg.max_length,
                                                 vocabulary=tokenizer.vocab,
                                                 standardize=dcfg.standardize_mode,
                                                 rows=valid_rows)
    log(f"valid: {valid_report.summary()}")
    categories, category_index, unlabelled = None, {}, {}
    if dcfg.condition_column:  # each molecule's category (a compound series, say)
        from ..data import select_categories
        for split, spec, rows, report in (("train", dcfg.train, train_rows, train_report),
                                          ("valid", dcfg.valid, valid_rows, valid_report)):
            kept, names = select_categories(resolve_data(spec), dcfg.condition_column, rows,
                                            report, categories,
                                            keep_unlabelled=config.model.use_latent)
            unlabelled[split] = names.count("")
            if split == "train":
                categories = sorted(set(names) - {""})
                if not categories:
                    raise DataError(f"data.condition_column {dcfg.condition_column!r}: no "
                                    f"usable training row of {dcfg.train} has a label")
                train_strings = [train_strings[i] for i in kept]
                train_rows[:] = [train_rows[i] for i in kept]
            else:
                valid_strings = [valid_strings[i] for i in kept]
                valid_rows[:] = [valid_rows[i] for i in kept]
            index = {c: i for i, c in enumerate(categories)}
            category_index[split] = np.array([[index.get(c, -1)] for c in names],
                                             dtype=np.float32)
        log(f"conditioned on {dcfg.condition_column}: {len(categories)} categories")
    prepared = Prepared(tokenizer, tokenize_to_array(tokenizer, train_strings),
                        tokenize_to_array(tokenizer, valid_strings),
                        {"train": train_report.to_dict(), "valid": valid_report.to_dict()})
    labels = None
    if dcfg.label_names:
        from ..data import read_labels
        labels = {split: read_labels(resolve_data(path), dcfg.label_names)[rows]
                  for split, path, rows in (("train", dcfg.train, train_rows),
                                            ("valid", dcfg.valid, valid_rows))}
        for split, values in labels.items():
            known = np.isfinite(values).sum(0)
            prepared.reports[split]["labelled"] = dict(zip(dcfg.label_names, known.tolist()))
            log(f"{split}: labels " + ", ".join(f"{name} on {n:,} rows" for name, n in
                                                  zip(dcfg.label_names, known)))
        empty = [n for n, k in zip(dcfg.label_names, np.isfinite(labels["train"]).sum(0)) if not k]
        if empty:
            raise DataError(f"data.label_columns {empty}: no usable training row of "
                            f"{dcfg.train} has a value; label some rows or leave the column out")
    if categories is not None:  # the category's index follows the labels
        labels = {split: np.concatenate([labels[split], category_index[split]], axis=1)
                  if labels is not None else category_index[split]
                  for split in ("train", "valid")}
        prepared.categories = categories
        for split, count in unlabelled.items():
            prepared.reports[split]["unlabelled_rows"] = count
    if config.model.computed_properties or labels is not None:
        _add_properties(prepared, train_strings, valid_strings, config.model.computed_properties,
                        log, labels, cache=config.train.token_cache)
    return prepared


def _add_properties(prepared: Prepared, train_strings: list[str], valid_strings: list[str],
                    names: list[str], log: Log,
                    labels: dict[str, np.ndarray] | None = None, cache: bool = False) -> None:
    """Compute model.properties of every molecule with RDKit (with ``cache``, read from
    seqvae.cache when these molecules' properties were computed before: a resumed run does
    not pay for them again); molecules where one cannot be computed are dropped and counted
    (report "property_failed"). The data's labels (NaN where missing) follow as further
    columns."""
    from ..cache import cached_properties
    from ..chem import rdkit_version
    from ..search.objectives import compute_properties

    tok = prepared.tokenizer
    for split, strings in (("train", train_strings), ("valid", valid_strings)):
        smiles = [tok.from_model_string(s) for s in strings]

        def compute(smiles=smiles, split=split) -> np.ndarray:
            return compute_properties(smiles, names, progress=len(smiles) >= 20000,
                                      desc=f"{split} properties").to_numpy(dtype=np.float32)

        values = (np.zeros((len(smiles), 0), dtype=np.float32) if not names
                  else cached_properties(smiles, names, compute, log, rdkit_version())
                  if cache else compute())
        ok = np.isfinite(values).all(axis=1)
        if labels is not None:
            values = np.concatenate([values, labels[split]], axis=1)
        ids = prepared.train if split == "train" else prepared.valid
        kept = [x for x, keep in zip(ids, ok) if keep]
        dropped = int((~ok).sum())
        prepared.reports[split]["property_failed"] = dropped
        if split == "train":
            prepared.train, prepared.train_properties = kept, values[ok]
        else:
            prepared.valid, prepared.valid_properties = kept, values[ok]
        if names:
            log(f"{split}: {', '.join(names)} computed for {int(ok.sum()):,} molecules"
                + (f"; {dropped} dropped (a property could not be computed)" if dropped else ""))
    if not prepared.train:
        raise DataError(f"no training molecule has all of {', '.join(names)}")


DOMAIN = Molecules()
