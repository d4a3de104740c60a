"""The MOSES metric set (and GuacaMol's KL-divergence and FCD scores) for generated molecules.

`molecular_metrics(samples, reference="moses")` returns the numbers molsets'
`get_all_metrics` returns for the same samples (same keys, same definitions, checked against
molsets itself in tests/test_metrics.py and benchmarks/moses_metrics.py), plus Wasserstein
distances of the properties against the scaffold-test split and GuacaMol's two scores.

How it is faster than molsets on the same CPU, without changing any definition:
- every molecule is parsed, canonicalised and described once, in worker processes (both
  cores, started only when the input is larger than one chunk), instead of once per metric;
  repeated strings are computed once;
- ChemNet (FCD) is loaded once per process and runs once over the samples, not once per
  reference split;
- Tanimoto similarities come from exact counts of common bits, a sparse-by-dense matrix
  product (the fingerprints have about 40 of 1,024 bits set), and the nearest-neighbour
  search (SNN) takes the largest count within each group of reference molecules with the same
  number of bits, where Tanimoto grows with the count (seqvae.metrics._compute).

Where molsets' definitions are unusual they are followed and said so at the function that
implements them (unique@k and novelty on twice-canonicalised SMILES, novelty against the
training SMILES as written in MOSES, Scaf without single-ring scaffolds, IntDiv with each
molecule's similarity to itself included).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import entropy, gaussian_kde, wasserstein_distance

from ..errors import DataError
from . import _compute, _features
from ._compute import (ChemNet, Workers, canonical_forms, dedupe, describe, frechet_distance,
                       gaussian_stats, internal_similarity_sums, max_internal_similarity, merge,
                       nearest_neighbour_similarity, packed_rows)
from ._features import PROPERTIES
from .reference import MolecularReference, load_reference

# -- counts and distributions -------------------------------------------------------------------

def cosine_similarity(ref: dict[str, int], gen: dict[str, int]) -> float:
    """molsets' cos_similarity of two count tables (absent keys count 0); NaN if one is empty.

    Computed in float64. molsets passes int64 count vectors to scipy's cosine, which (SciPy
    1.17) multiplies the two int64 squared norms and overflows once their product passes
    2**63: against the MOSES test split that happens from about 20,000 valid samples, and
    molsets' Frag then comes out wrong (by 0.04 on 30,000 MOSES training molecules,
    benchmarks/results/moses_metrics.md); seqvae gives the true cosine."""
    if not ref or not gen:
        return float("nan")
    keys = sorted(set(ref) | set(gen))
    r = np.array([ref.get(k, 0) for k in keys], dtype=np.float64)
    g = np.array([gen.get(k, 0) for k in keys], dtype=np.float64)
    return float(r.dot(g) / np.sqrt(r.dot(r) * g.dot(g)))


def continuous_kldiv(baseline: np.ndarray, sampled: np.ndarray) -> float:
    """GuacaMol's continuous_kldiv: KL of Gaussian kernel density estimates on 1000 points.

    Samples that all share one value (a model that has collapsed onto a handful of
    molecules) have no kernel density: GuacaMol's own code stops there with scipy's
    LinAlgError. Their distribution is a point mass, and the divergence of the reference
    from it is infinite, so that term of the KL score is exp(-inf) = 0."""
    sampled = np.asarray(sampled, dtype=np.float64)
    if sampled.size < 2 or np.ptp(sampled) == 0:
        return float("inf")
    both = np.hstack([baseline, sampled])
    x = np.linspace(both.min(), both.max(), num=1000)
    p = gaussian_kde(baseline)(x) + 1e-10
    q = gaussian_kde(sampled)(x) + 1e-10
    return float(entropy(p, q))


def discrete_kldiv(baseline: np.ndarray, sampled: np.ndarray) -> float:
    """GuacaMol's discrete_kldiv: KL of 10-bin density histograms on the baseline's bins."""
    p, bins = np.histogram(baseline, bins=10, density=True)
    q, _ = np.histogram(sampled, bins=bins, density=True)
    return float(entropy(p + 1e-10, q + 1e-10))


def kl_score(ref_descriptors: np.ndarray, ref_max_sim: np.ndarray,
             gen_descriptors: np.ndarray, gen_max_sim: np.ndarray) -> tuple[float, dict[str, float]]:
    """GuacaMol's KL-divergence score: mean over its nine descriptors and the internal
    similarity of exp(-KL(reference || samples)); the per-term KL values beside it."""
    names = _features.GUACAMOL_DESCRIPTORS
    kldivs: dict[str, float] = {}
    for i, name in enumerate(names):
        kind = continuous_kldiv if i < 4 else discrete_kldiv  # the first four are real-valued
        kldivs[name] = kind(ref_descriptors[:, i], gen_descriptors[:, i])
    kldivs["internal_similarity"] = continuous_kldiv(ref_max_sim, gen_max_sim)
    return float(np.mean([np.exp(-v) for v in kldivs.values()])), kldivs


# -- the metric set -------------------------------------------------------------------------------

@dataclasses.dataclass
class MoleculeReport:
    """What evaluate_molecules measured: the metrics, the reference they were measured
    against, and one row per valid sample (canonical SMILES, logP, SA, QED, weight)."""

    metrics: dict[str, float]
    reference: MolecularReference
    properties: pd.DataFrame


def molecular_metrics(samples: Sequence[str], reference: Any = "moses", *,
                      k: Sequence[int] = (1000, 10000), n_jobs: int | None = None,
                      device: str = "cpu", progress: bool = True) -> dict[str, float]:
    """The metrics of evaluate_molecules alone (see there)."""
    return evaluate_molecules(samples, reference, k=k, n_jobs=n_jobs, device=device,
                              progress=progress).metrics


def evaluate_molecules(samples: Sequence[str], reference: Any = "moses", *,
                       k: Sequence[int] = (1000, 10000), n_jobs: int | None = None,
                       device: str = "cpu", progress: bool = True) -> MoleculeReport:
    """The MOSES metrics of generated SMILES against a reference, with molsets' keys:
    valid, unique@k, FCD / SNN / Frag / Scaf against each reference split (/Test, /TestSF),
    IntDiv, IntDiv2, Filters, Wasserstein distances of logP, SA, QED and weight to the test
    split (and `logP/TestSF` ... to the scaffold split), Novelty; then GuacaMol's `KL score` and
    `FCD score`, and the counts `n_samples` and `n_invalid`.

    samples: SMILES strings as generated, invalid ones included (None and NaN count as
    invalid). reference: "moses", a test-set file, or a MolecularReference (load_reference).
    Invalid samples are counted, never an error; RDKit's log stays quiet.
    """
    n_jobs = n_jobs or min(os.cpu_count() or 1, 8)
    reference = load_reference(reference, n_jobs=n_jobs, device=device, progress=progress)
    strings = [s if isinstance(s, str) else "" for s in samples]
    if not strings:
        raise DataError("no samples to evaluate")
    with Workers(n_jobs) as workers:
        pairs = canonical_forms(strings, workers, "parse", progress)
        valid = [pairs[s] for s in strings if pairs[s] is not None]
        gen = [p[0] for p in valid]  # molsets' `remove_invalid(gen, canonize=True)`
        again = [p[1] for p in valid]  # its canonic_smiles(get_mol(...)) of those
        metrics: dict[str, float] = {"valid": len(valid) / len(strings)}
        for size in k:
            metrics[f"unique@{size}"] = _fraction_unique(again, size)
        if len(gen) < 2:
            warnings.warn(f"only {len(gen)} valid samples: the other metrics are NaN")
            return MoleculeReport(_finish(metrics, reference, len(strings), len(valid), nan=True),
                                  reference, pd.DataFrame(columns=["SMILES", *PROPERTIES]))
        described = describe(gen, workers, "describe", progress)
        fps, index = described.fps, described.index
        chemnet = ChemNet(device)
        unique_again = dedupe(again)
        acts = chemnet.activations(unique_again, progress=progress)
        where_again = {s: i for i, s in enumerate(unique_again)}
        acts = acts[[where_again[s] for s in again]]
        gen_fcd = gaussian_stats(acts)
        props = described.props
        for name, split in reference.splits.items():
            metrics[f"FCD/{name}"] = frechet_distance(split.fcd_mu, split.fcd_sigma,
                                                      gen_fcd["mu"], gen_fcd["sigma"])
            nearest = nearest_neighbour_similarity(fps, split.neighbours or split.fps,
                                                   progress=progress, desc=f"SNN/{name}")
            metrics[f"SNN/{name}"] = float(nearest[index].mean())
            metrics[f"Frag/{name}"] = cosine_similarity(split.frag, described.frag)
            metrics[f"Scaf/{name}"] = cosine_similarity(split.scaf, described.scaf)
        sums, squares = internal_similarity_sums(fps[index], progress=progress)
        metrics["IntDiv"] = float(1 - np.mean(sums / len(index)))
        metrics["IntDiv2"] = float(1 - np.mean(np.sqrt(squares / len(index))))
        metrics["Filters"] = float(np.mean(described.passes))
        for name, split in reference.splits.items():
            suffix = "" if name == "Test" else f"/{name}"
            for j, prop in enumerate(PROPERTIES):
                metrics[f"{prop}{suffix}"] = float(wasserstein_distance(split.props[prop],
                                                                        props[:, j]))
        if reference.train is not None:
            metrics["Novelty"] = novelty(again, reference.train)
        if reference.guacamol is not None:
            metrics.update(_guacamol_scores(gen, acts, reference.guacamol, workers, progress))
    table = pd.DataFrame(props, columns=list(PROPERTIES))
    table.insert(0, "SMILES", gen)
    return MoleculeReport(_finish(metrics, reference, len(strings), len(valid)), reference, table)


def _fraction_unique(canonical: list[str], k: int) -> float:
    """molsets' unique@k: distinct among the first k valid samples (all of them, with a
    warning, when fewer than k are valid)."""
    if len(canonical) < k:
        warnings.warn(f"unique@{k}: only {len(canonical)} valid samples; computed on those")
    head = canonical[:k]
    return len(set(head)) / len(head) if head else float("nan")


def novelty(canonical: Sequence[str], train: frozenset[str]) -> float:
    """molsets' novelty: the fraction of distinct valid samples whose canonical SMILES is not
    among the training SMILES. As molsets does, the training SMILES are compared as written in
    the training file (MOSES ships them canonical), not canonicalised again."""
    distinct = set(canonical)
    return len(distinct - train) / len(distinct) if distinct else float("nan")


def _guacamol_scores(gen: list[str], acts: np.ndarray, ref, workers: Workers,
                     progress: bool) -> dict[str, float]:
    """GuacaMol's KL-divergence score on the first 10,000 distinct valid samples (canonical
    without stereochemistry, deduplicated again) and its FCD score, exp(-0.2 FCD), on the first
    10,000 valid samples, each against the reference's GuacaMol subset."""
    distinct = dedupe(gen)[:_compute.GUACAMOL_SAMPLES]
    stripped = [s for chunk in workers.map(_features.strip_stereo, distinct, "GuacaMol", progress)
                for s in chunk if s is not None]
    feats = merge(workers.map(_features.guacamol_features, dedupe(stripped),
                               "GuacaMol descriptors", progress))
    out: dict[str, float] = {}
    if len(feats.get("fps", [])) >= 2:
        score, _ = kl_score(ref.descriptors, ref.max_similarity, np.asarray(feats["descriptors"]),
                            max_internal_similarity(packed_rows(feats["fps"])))
        out["KL score"] = score
    else:  # one distinct molecule is a point mass in every term; none leaves nothing to score
        out["KL score"] = 0.0 if feats.get("fps") else float("nan")
    first = gaussian_stats(acts[:_compute.GUACAMOL_SAMPLES])
    out["FCD score"] = float(np.exp(-0.2 * frechet_distance(ref.fcd_mu, ref.fcd_sigma,
                                                            first["mu"], first["sigma"])))
    return out


def _finish(metrics: dict[str, float], reference: MolecularReference, n: int, n_valid: int,
            nan: bool = False) -> dict[str, float]:
    if nan:
        for name in reference.splits:
            for metric in ("FCD", "SNN", "Frag", "Scaf"):
                metrics[f"{metric}/{name}"] = float("nan")
        for metric in ("IntDiv", "IntDiv2", "Filters", *PROPERTIES):
            metrics[metric] = float("nan")
        if reference.train is not None:
            metrics["Novelty"] = float("nan")
    metrics["n_samples"] = n
    metrics["n_invalid"] = n - n_valid
    return {key: float(value) for key, value in metrics.items()}


__all__ = ["MoleculeReport", "evaluate_molecules", "molecular_metrics", "novelty",
           "cosine_similarity", "continuous_kldiv", "discrete_kldiv", "kl_score",
           # computed in _compute, named here as before: tests and benchmarks/moses.py use them
           "ChemNet", "gaussian_stats", "frechet_distance", "nearest_neighbour_similarity",
           "internal_similarity_sums"]
