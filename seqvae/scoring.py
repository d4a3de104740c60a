"""Scores per sequence: how likely a trained model finds each input, and, for molecules, the
figures a chemist triages candidates by (``TrainedModel.score``, ``seqvae score``).

Per row, in the input's order (a row the model cannot read keeps its place, with NaN scores
and its ``reason``):

- ``neg_elbo`` = ``recon`` + ``kl``: the negative ELBO in nats, its reconstruction term
  E_q[-log p(x|z)] (the mean over the k codes drawn) and KL(q(z|x) || N(0, I)) (exact);
- ``iw_nll``: the importance-weighted estimate of -log p(x) with ``k`` codes (Burda et al.
  2016; seqvae.metrics.text.importance_weighted), an upper bound on the NLL that tightens as k
  grows (a language model's is exact, a deterministic autoencoder has none: NaN);
- ``bits_per_char``: iw_nll in bits per character of the string read, plus one for its end,
  so models of other tokenizers (SMILES, SELFIES) compare on the same molecule;
- molecules (``triage``): ``SMILES`` (canonical), ``novel`` (not in the model's training set),
  ``nn_similarity`` (the largest Tanimoto similarity of its Morgan radius-2 1024-bit
  fingerprint to any training molecule's, by the sparse index of seqvae.metrics, never a
  Python loop), ``QED``, ``SA``, ``MW``, ``logP`` (as MOSES computes them), ``filters`` (passes
  the MOSES MCF / PAINS filters) and ``alert`` (the first rule it breaks: a named MCF or PAINS
  pattern, a charged atom, ...);
- text: ``novel`` (not a training sentence, as the tokenizer reads it).

The training set's index (canonical SMILES and fingerprints) is built once per training file
and cached under $SEQVAE_CACHE (safetensors + text, never pickle).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .errors import DataError

INDEX_FORMAT = 1


class TrainingIndex:
    """A reference set for triage: its canonical SMILES (novelty) and its fingerprints laid out
    for the nearest-neighbour search."""

    def __init__(self, canonical: frozenset[str], neighbours: Any, source: str):
        self.canonical, self.neighbours, self.source = canonical, neighbours, source

    @classmethod
    def build(cls, strings: Sequence[str], source: str = "given molecules",
              progress: bool = False) -> TrainingIndex:
        """The index of a list of SMILES (invalid ones left out)."""
        from .metrics._compute import NeighbourIndex, Workers, canonical_forms, packed_rows

        with Workers(_jobs(len(strings))) as workers:
            forms = canonical_forms(list(strings), workers, "canonical", progress)
            canonical = sorted({p[1] for p in forms.values() if p is not None})
            fps = packed_rows([f for chunk in workers.map(_fingerprints, canonical,
                                                          "fingerprints", progress)
                               for f in chunk])
        return cls(frozenset(canonical), NeighbourIndex.build(fps), source)

    @classmethod
    def for_file(cls, path: Path, column: str, progress: bool = False) -> TrainingIndex:
        """The index of a molecule file, cached by the file's content."""
        from safetensors.numpy import load_file, save_file

        from .cache import file_digest
        from .data import read_strings
        from .metrics._compute import NeighbourIndex
        from .metrics.reference import _versions, cache_dir

        key = hashlib.sha256(f"{file_digest(path)}|{column}|{INDEX_FORMAT}|"
                             f"{sorted(_versions().items())}".encode()).hexdigest()[:24]
        folder = cache_dir() / "train-index" / key
        try:
            arrays = load_file(str(folder / "index.safetensors"))
            canonical = (folder / "canonical.txt").read_text(encoding="utf-8").split("\n")[1:]
            return cls(frozenset(canonical), NeighbourIndex(arrays["counts"], arrays["cols"],
                                                            int(arrays["width"][0])), str(path))
        except (OSError, ValueError, KeyError):
            pass  # absent or damaged: build it
        index = cls.build(read_strings(path, column), str(path), progress)
        tmp = folder.with_name(f"{folder.name}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        n = index.neighbours
        save_file({"counts": n.counts, "cols": n.cols, "width": np.array([n.width])},
                  str(tmp / "index.safetensors"))
        (tmp / "canonical.txt").write_text("\n".join(["seqvae training index",
                                                      *sorted(index.canonical)]),
                                           encoding="utf-8")
        if folder.exists():
            import shutil
            shutil.rmtree(folder)
        tmp.rename(folder)
        return index


def _jobs(n: int) -> int:
    import os
    return 1 if n < 20_000 else max(1, min(os.cpu_count() or 1, 8))


def _fingerprints(smiles: list[str]) -> list[bytes]:
    """Packed Morgan radius-2 1024-bit fingerprints of valid canonical SMILES (a worker's
    chunk)."""
    from .metrics._features import MORGAN_BITS, _morgan, parse_as_molsets
    morgan = _morgan(MORGAN_BITS)
    return [np.packbits(morgan.GetFingerprintAsNumPy(parse_as_molsets(s)).astype(np.uint8))
            .tobytes() for s in smiles]


@torch.no_grad()
def likelihoods(model: Any, encoded: Sequence[Sequence[int]], read: Sequence[str], k: int,
                seed: int, batch_size: int,
                conditions: torch.Tensor | None = None) -> pd.DataFrame:
    """neg_elbo, recon, kl, iw_nll (k codes each) and bits_per_char of strings the model can
    read, given as their token ids and as read, batched by length. A conditional model's are
    of p(x | y): under ``conditions`` (N, C) when given, else each molecule's own properties
    (and an unknown category)."""
    from .metrics.text import importance_weighted

    net = model.model.eval()
    if conditions is None:
        conditions = model.conditions_of(read)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    order = np.argsort([len(x) for x in encoded], kind="stable")
    columns = {name: np.full(len(read), np.nan) for name in ("recon", "kl", "iw_nll")}
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        (tokens, lengths), = model._batches([encoded[i] for i in chosen], len(chosen))
        out = importance_weighted(net, tokens, lengths, k, generator, condition=(
            None if conditions is None else conditions[torch.as_tensor(chosen)]))
        for name, key in (("recon", "recon"), ("kl", "kl"), ("iw_nll", "nll")):
            columns[name][chosen] = out[key].double().cpu().numpy()
    table = pd.DataFrame({"neg_elbo": columns["recon"] + columns["kl"], **columns})
    chars = np.array([len(s) + 1 for s in read], dtype=np.float64)
    table["bits_per_char"] = table["iw_nll"] / math.log(2) / chars
    return table


def molecule_triage(smiles: Sequence[str], index: TrainingIndex | None) -> pd.DataFrame:
    """SMILES, novel, nn_similarity, QED, SA, MW, logP, filters, alert of valid SMILES."""
    from .metrics._compute import nearest_neighbour_similarity
    from .metrics._features import (MORGAN_BITS, _morgan, canonical_pairs, filter_alert,
                                    parse_as_molsets, properties)

    pairs = canonical_pairs(list(smiles))
    rows = []
    morgan = _morgan(MORGAN_BITS)
    fps = []
    for pair in pairs:
        if pair is None:
            rows.append({"SMILES": None})
            continue
        mol = parse_as_molsets(pair[1])
        logp, sa, qed, mw = properties(mol)
        alert = filter_alert(mol)
        rows.append({"SMILES": pair[0], "QED": qed, "SA": sa, "MW": mw, "logP": logp,
                     "filters": alert == "", "alert": alert})
        fps.append(np.packbits(morgan.GetFingerprintAsNumPy(mol).astype(np.uint8)))
    table = pd.DataFrame(rows, columns=["SMILES", "QED", "SA", "MW", "logP", "filters", "alert"])
    valid = np.array([p is not None for p in pairs])
    table.insert(1, "novel", pd.array([None] * len(pairs), dtype="boolean"))
    table.insert(2, "nn_similarity", np.nan)
    if index is not None and valid.any():
        table.loc[valid, "novel"] = [p[1] not in index.canonical for p in pairs if p is not None]
        table.loc[valid, "nn_similarity"] = nearest_neighbour_similarity(
            np.stack(fps), index.neighbours)
    return table


def triage_columns(model: Any, smiles: Sequence[str],
                   reference: Sequence[str] | str | Path | None = None,
                   progress: bool = False) -> pd.DataFrame:
    """The triage columns of score (novel, nn_similarity, QED, SA, MW, logP, filters, alert)
    for molecules a model made (sample, optimize), one row per input, in order."""
    if not model.molecular:
        raise DataError("triage columns are molecular (QED, filters, ...); this is a text model")
    table = molecule_triage([s if isinstance(s, str) else "" for s in smiles],
                            _reference_index(model, reference, progress))
    return table.drop(columns="SMILES")


def score(model: Any, strings: Sequence[str], k: int = 32, seed: int = 0,
          batch_size: int = 64, standardize: bool = False, keep_stereo: bool = True,
          triage: bool = True, reference: Sequence[str] | str | Path | None = None,
          progress: bool = False, condition: dict[str, Any] | None = None) -> pd.DataFrame:
    """The table of the module docstring (TrainedModel.score documents the arguments)."""
    strings = list(strings)
    for name, value in (("k", k), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DataError(f"{name} must be an integer of at least 1, got {value!r}")
    read = model.standardized(strings, standardize, keep_stereo)
    encoded = model._encode_all(read)  # (ids, None) or (None, why it cannot be read)
    reasons = [reason for _, reason in encoded]
    ok = np.array([r is None for r in reasons], dtype=bool)
    cfg = model.model.config
    k_used = k if (cfg.use_latent and cfg.variational) else 1  # exact without a posterior
    table = pd.DataFrame({"input": strings})
    if standardize:
        table["standardized"] = read
    table["reason"] = reasons
    scores = pd.DataFrame(np.nan, index=range(len(strings)),
                          columns=["neg_elbo", "recon", "kl", "iw_nll", "bits_per_char"])
    if ok.any():
        kept = [s for s, good in zip(read, ok) if good]
        given = None if condition is None else model.condition(len(kept), {
            name: (np.asarray(value)[ok] if np.ndim(value) else value)
            for name, value in condition.items()})
        got = likelihoods(model, [ids for ids, reason in encoded if reason is None], kept,
                          k_used, seed, batch_size, given)
        scores.loc[ok, :] = got.to_numpy()
    table = pd.concat([table, scores], axis=1)
    table["k"] = k_used
    if not triage:
        return table
    if model.molecular:
        index = _reference_index(model, reference, progress)
        # properties of every molecule RDKit reads, the model's or not
        return pd.concat([table, molecule_triage(read, index)], axis=1)
    train = model.training_sentences()
    if train is not None:  # compared as the tokenizer reads both (case, <unk>)
        tok = model.tokenizer
        as_read = tok.decode_batch(tok.encode_batch([s if good else "" for s, good in
                                                     zip(read, ok)]))
        table["novel"] = pd.array([(t not in train) if good else None
                                   for t, good in zip(as_read, ok)], dtype="boolean")
    return table


def _reference_index(model: Any, reference: Sequence[str] | str | Path | None,
                     progress: bool) -> TrainingIndex:
    """The index of the given reference (SMILES, or a file), else of the model's training
    file; DataError with the fix when that file is not here."""
    if reference is not None and not isinstance(reference, (str, Path)):
        return TrainingIndex.build(list(reference), progress=progress)
    if reference is not None:
        path = Path(reference)
        if not path.is_file():
            raise DataError(f"reference file {path} does not exist")
        return TrainingIndex.for_file(path, model.config.data.csv_column, progress)
    from .data import resolve_data
    spec = model.config.data.train
    try:
        path = resolve_data(spec)
    except Exception as error:  # a moses: split without molsets, a default: name unknown
        raise DataError(f"the model's training data ({spec}) is not available here ({error}); "
                        "pass reference=FILE (seqvae score --reference FILE) for novelty and "
                        "nearest-neighbour similarity, or triage=False") from None
    if not Path(path).is_file():
        raise DataError(f"the model's training data ({spec}: {path}) is not here; pass "
                        "reference=FILE (seqvae score --reference FILE), or triage=False")
    return TrainingIndex.for_file(Path(path), model.config.data.csv_column, progress)


# -- anomaly detection ------------------------------------------------------------------------

# higher is more unusual for each: the likelihood scores of the module docstring, and the
# Tanimoto distance to the nearest training molecule (1 - nn_similarity, molecules only)
ANOMALY_SCORES = ("bits_per_char", "iw_nll", "neg_elbo", "nn_distance")


def anomaly_scores(model: Any, strings: Sequence[str], score: str = "bits_per_char",
                   k: int = 32, seed: int = 0, **options: Any) -> np.ndarray:
    """One anomaly score per input (higher: more unusual), NaN where the model cannot read
    the row (score() says why). options go to score() (standardize, keep_stereo, reference)."""
    if score not in ANOMALY_SCORES:
        raise DataError(f"score must be one of {', '.join(ANOMALY_SCORES)}, got {score!r}")
    if score == "nn_distance" and not model.molecular:
        raise DataError("nn_distance is a Tanimoto distance between molecules; a text model "
                        "has bits_per_char, iw_nll and neg_elbo")
    table = model.score(strings, k=k, seed=seed, triage=score == "nn_distance", **options)
    values = 1.0 - table["nn_similarity"] if score == "nn_distance" else table[score]
    values = values.to_numpy(dtype=float, copy=True)
    if score == "nn_distance":  # a molecule the model cannot read has no score either
        values[table["reason"].notna().to_numpy()] = np.nan
    return values


class AnomalyDetector:
    """A threshold on one anomaly score, calibrated on held-out data of the training
    distribution so that a chosen share of such data (the false-positive rate) is flagged.
    ``flag`` marks what lies above it, and every row the model cannot read."""

    def __init__(self, score: str, threshold: float, fpr: float, n_calibration: int, k: int,
                 seed: int, options: dict[str, Any] | None = None):
        self.score, self.threshold, self.fpr = score, threshold, fpr
        self.n_calibration, self.k, self.seed = n_calibration, k, seed
        self.options = dict(options or {})

    @classmethod
    def calibrate(cls, model: Any, normal: Sequence[str], fpr: float = 0.05,
                  score: str = "bits_per_char", k: int = 32, seed: int = 0,
                  **options: Any) -> AnomalyDetector:
        """The threshold flagging a share ``fpr`` of ``normal`` (held-out data like the
        training data: never the training rows themselves, whose scores are optimistic)."""
        if not 0.0 < fpr < 1.0:
            raise DataError(f"fpr must be in (0, 1), got {fpr}")
        values = anomaly_scores(model, normal, score, k, seed, **options)
        finite = values[np.isfinite(values)]
        if len(finite) < max(20, math.ceil(1 / fpr)):
            raise DataError(f"{len(finite)} readable calibration rows are too few for a "
                            f"false-positive rate of {fpr}: give at least "
                            f"{max(20, math.ceil(1 / fpr))}")
        threshold = float(np.quantile(finite, 1.0 - fpr, method="higher"))
        return cls(score, threshold, fpr, len(finite), k, seed, options)

    def flag(self, model: Any, strings: Sequence[str]) -> pd.DataFrame:
        """input, score, anomalous (above the threshold, or unreadable) per row, in order."""
        values = anomaly_scores(model, strings, self.score, self.k, self.seed, **self.options)
        return pd.DataFrame({"input": list(strings), "score": values,
                             "anomalous": self.flags(values)})

    def flags(self, values: np.ndarray) -> np.ndarray:
        """Which of already computed scores lie above the threshold; NaN (an unreadable
        row) is flagged."""
        return ~(np.asarray(values, dtype=float) <= self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """The detector's settings (JSON-ready), for the record."""
        return {"score": self.score, "threshold": self.threshold, "fpr": self.fpr,
                "n_calibration": self.n_calibration, "k": self.k, "seed": self.seed,
                "options": {k: v for k, v in self.options.items() if k != "reference"}}
