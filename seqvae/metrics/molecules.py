"""The MOSES metric set (and GuacaMol's KL-divergence and FCD scores) for generated molecules.

`molecular_metrics(samples, reference="moses")` returns the numbers molsets'
`get_all_metrics` returns for the same samples (same keys, same definitions, checked against
molsets itself in tests/test_metrics.py and benchmarks/moses_metrics.py), plus Wasserstein
distances of the properties against the scaffold-test split and GuacaMol's two scores.

How it is faster than molsets on the same CPU, without changing any definition:
- every molecule is parsed, canonicalised and described once, in worker processes (both
  cores), instead of once per metric in one process; repeated strings are computed once;
- ChemNet (FCD) runs once over the samples, not once per reference split;
- Tanimoto similarities come from exact counts of common bits, one matrix product of the bit
  vectors in the fastest exact form the CPU offers (int8 with int32 sums; else bfloat16 where
  it is native and the counts stay <= 256; else float32), and the nearest-neighbour search
  (SNN) takes the largest count within each group of reference molecules with the same
  number of bits, where Tanimoto grows with the count.

Where molsets' definitions are unusual they are followed and said so at the function that
implements them (unique@k and novelty on twice-canonicalised SMILES, novelty against the
training SMILES as written in MOSES, Scaf without single-ring scaffolds, IntDiv with each
molecule's similarity to itself included).
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import linalg
from scipy.stats import entropy, gaussian_kde, wasserstein_distance
from tqdm.auto import tqdm

from ..errors import DataError
from . import _features
from ._features import PROPERTIES

GUACAMOL_SAMPLES = 10_000  # GuacaMol's number_samples for its KL and FCD benchmarks
GUACAMOL_SEED = 42  # GuacaMol's get_random_subset seed for the reference subset
CHUNK = 256  # strings per task sent to a worker


# -- running RDKit work on both cores ------------------------------------------------------------

class _Workers:
    """A pool of worker processes for the RDKit feature functions (or none when n_jobs is 1).

    Workers are forked where the platform can (Linux), so they start in milliseconds and a
    user's script needs no `if __name__ == "__main__"` guard; they run RDKit and numpy only,
    never torch, so the parent's torch threads do not matter to them. Elsewhere they are
    spawned (and then the calling script needs that guard, as for any multiprocessing)."""

    def __init__(self, n_jobs: int):
        self.n_jobs = max(1, n_jobs)
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Workers:
        if self.n_jobs > 1:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self.executor = ProcessPoolExecutor(self.n_jobs, mp_context=context)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def map(self, func: Callable[[list[str]], Any], items: Sequence[str], desc: str,
            progress: bool) -> list[Any]:
        """func over items in chunks, in order; one result per chunk."""
        chunks = [list(items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)]
        bar = tqdm(total=len(items), desc=desc, unit="mol", disable=not progress or not items,
                   leave=False)
        results = []
        with bar:
            if self.executor is None:  # the feature functions block RDKit's log themselves
                for chunk in chunks:
                    results.append(func(chunk))
                    bar.update(len(chunk))
            else:
                for chunk, result in zip(chunks, self.executor.map(func, chunks)):
                    results.append(result)
                    bar.update(len(chunk))
        return results


def _merge(results: list[dict[str, list]]) -> dict[str, list]:
    merged: dict[str, list] = {}
    for result in results:
        for key, values in result.items():
            merged.setdefault(key, []).extend(values)
    return merged


def packed_rows(fps: list[bytes]) -> np.ndarray:
    """Packed fingerprints from the workers as one (N, bytes) uint8 array."""
    return np.frombuffer(b"".join(fps), dtype=np.uint8).reshape(len(fps), -1)


def canonical_forms(strings: Sequence[str], workers: _Workers, desc: str,
                    progress: bool) -> dict[str, tuple[str, str] | None]:
    """For each distinct string, _features.canonical_pairs' answer (None if invalid)."""
    unique = _dedupe(strings)
    return dict(zip(unique, (p for chunk in workers.map(_features.canonical_pairs, unique, desc,
                                                        progress) for p in chunk)))


@dataclasses.dataclass
class Described:
    """molecule_features of a list of molecules, each distinct one computed once."""

    fps: np.ndarray  # (distinct molecules, 128) packed Morgan bits
    index: np.ndarray  # for each molecule as listed, its row in fps
    frag: Counter  # BRICS fragment counts over the list
    scaf: Counter  # scaffold counts over the list (scaffolds of under two rings left out)
    props: np.ndarray  # (listed molecules, 4): logP, SA, QED, weight
    passes: np.ndarray  # (listed molecules,): passes the MOSES filters


def describe(molecules: Sequence[str], workers: _Workers, desc: str,
             progress: bool) -> Described:
    """Fingerprints, fragment and scaffold counts, properties and filters of valid SMILES."""
    unique = _dedupe(molecules)
    feats = _merge(workers.map(_features.molecule_features, unique, desc, progress))
    where = {s: i for i, s in enumerate(unique)}
    index = np.array([where[s] for s in molecules])
    frag: Counter = Counter()
    for i in index:
        frag.update(feats["frags"][i])
    scaf = Counter(feats["scaffolds"][i] for i in index)
    scaf.pop(None, None)
    return Described(packed_rows(feats["fps"]), index, frag, scaf,
                     np.asarray(feats["props"], dtype=np.float64)[index],
                     np.asarray(feats["passes"])[index])


# -- FCD ----------------------------------------------------------------------------------------

class ChemNet:
    """fcd_torch's ChemNet (the network and weights fcd_torch ships) with its exact input
    encoding, run over many SMILES in large batches with a progress bar."""

    PAD_LEN = 350  # fcd_torch pads (and truncates) every SMILES to 350 symbols

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 1024):
        try:
            from fcd_torch import FCD
            from fcd_torch import utils as fcd_utils
        except ImportError as error:
            raise DataError("FCD needs fcd_torch: pip install fcd_torch") from error
        self.model = FCD(device="cpu", n_jobs=1).model.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = batch_size
        vocabulary = getattr(fcd_utils, "__vocab")  # a module-level name, so not mangled
        self.index = {symbol: i for i, symbol in enumerate(vocabulary)}
        self.width = len(vocabulary)

    def encode(self, smiles: str) -> list[int]:
        """fcd_torch's get_one_hot as symbol indices: 'Cl', 'Br', 'Si' (a letter followed by
        r, i or l) are one symbol, unknown symbols map to 'X', and '.' ends the string."""
        text = smiles + "."
        unknown, end = self.index["X"], self.index["."]
        out: list[int] = []
        src = 0
        while True:
            if text[src + 1] in "ril":
                symbol, src = text[src:src + 2], src + 2
            else:
                symbol, src = text[src], src + 1
            out.append(self.index.get(symbol, unknown))
            if text[src] == "." or len(out) == self.PAD_LEN - 1:
                out.append(end)
                return out

    @torch.inference_mode()
    def activations(self, smiles: Sequence[str], progress: bool = False) -> np.ndarray:
        """(N, 512) float32 activations of ChemNet's last layer, as fcd_torch computes them
        for already-canonical SMILES."""
        out = np.zeros((len(smiles), 512), dtype=np.float32)
        scale = 1.0 / self.width  # fcd_torch divides the one-hot rows by the vocabulary size
        bar = tqdm(total=len(smiles), desc="FCD (ChemNet)", unit="mol", leave=False,
                   disable=not progress or not smiles)
        with bar:
            for start in range(0, len(smiles), self.batch_size):
                batch = smiles[start:start + self.batch_size]
                ids = torch.full((len(batch), self.PAD_LEN), -1, dtype=torch.long)
                for row, s in enumerate(batch):
                    encoded = self.encode(s)
                    ids[row, :len(encoded)] = torch.tensor(encoded)
                x = torch.zeros(len(batch), self.PAD_LEN, self.width + 1)
                x.scatter_(2, (ids % (self.width + 1)).unsqueeze(2), scale)
                x = x[:, :, :self.width].transpose(1, 2).to(self.device)  # (B, 35, 350)
                out[start:start + len(batch)] = self.model(x).float().cpu().numpy()
                bar.update(len(batch))
        return out


def gaussian_stats(activations: np.ndarray) -> dict[str, np.ndarray]:
    """fcd_torch's precalc: the mean (in the activations' float32) and covariance (float64)."""
    return {"mu": activations.mean(0), "sigma": np.cov(activations.T)}


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """The Fréchet distance of two Gaussians, computed as fcd_torch computes it."""
    diff = np.atleast_1d(mu1) - np.atleast_1d(mu2)
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FCD: imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


# -- Tanimoto similarity on packed bit vectors --------------------------------------------------

def _bits(packed: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.unpackbits(packed, axis=1))


@functools.lru_cache(maxsize=None)
def _fastest_product(bf16_exact: bool) -> torch.dtype:
    """The fastest exact way to count common bits with a matrix product on this CPU, timed once
    on a product of the size the metrics use: int8 (torch._int_mm, int32 counts, exact), else
    bfloat16 (exact while counts stay <= 256, and fast only where the CPU has it natively),
    else float32."""
    from ..runtime import native_bf16

    candidates = [torch.float32]
    if bf16_exact and native_bf16(torch.device("cpu")):
        candidates.append(torch.bfloat16)
    if hasattr(torch, "_int_mm"):
        candidates.append(torch.int8)
    x = (torch.rand(512, 1024) < 0.04).float()
    y = (torch.rand(1024, 4096) < 0.04).float()
    timings = {}
    for dtype in candidates:
        try:
            a, b = x.to(dtype), y.to(dtype)
            _count(a, b)
            start = time.perf_counter()
            for _ in range(3):
                _count(a, b)
            timings[dtype] = time.perf_counter() - start
        except RuntimeError:
            continue
    return min(timings, key=timings.get)


def _count(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Common bits of each row of x (B, K) with each column of y (K, N), both 0/1."""
    return torch._int_mm(x, y) if x.dtype == torch.int8 else x @ y


def _product_dtype(*counts: torch.Tensor) -> torch.dtype:
    """The dtype for _count given the bit counts of the vectors: an intersection count is at
    most the smaller of two bit counts, and bfloat16 holds integers exactly up to 256."""
    smallest_max = min(int(c.max()) if len(c) else 0 for c in counts)
    return _fastest_product(smallest_max <= 256)


def nearest_neighbour_similarity(gen: np.ndarray, ref: np.ndarray, block: int = 1024,
                                 progress: bool = False, desc: str = "SNN") -> np.ndarray:
    """For each generated fingerprint, its largest Tanimoto similarity to any reference one
    (both packed bit arrays); 1 where both vectors are empty, as molsets sets its NaNs."""
    g, r = _bits(gen), _bits(np.unique(ref, axis=0))
    a, b = g.sum(1), r.sum(1)
    dtype = _product_dtype(a, b)
    # Tanimoto c / (a + b - c) grows with c for fixed a and b, so within a group of reference
    # vectors with the same bit count b the best one is the one with the largest count c.
    # It is also at most min(a, b) / max(a, b): with the samples sorted by bit count, a group
    # whose bound cannot beat the best similarity found so far for any sample of a block is
    # skipped, and groups are visited nearest bit count first so the best is found early.
    r_order = torch.argsort(b, stable=True)
    r_t, b = r[r_order].to(dtype).T.contiguous(), b[r_order]
    values, starts = np.unique(b.numpy(), return_index=True)
    groups = list(zip(values.tolist(), starts.tolist(), list(starts[1:]) + [len(b)]))
    g_order = torch.argsort(a, stable=True)
    best = torch.zeros(len(g), dtype=torch.float64)
    for i in tqdm(range(0, len(g), block), desc=desc, leave=False, disable=not progress):
        rows = g_order[i:i + block]
        gb, ab = g[rows].to(dtype), a[rows].double()
        lo_a, hi_a = float(ab.min()), float(ab.max())
        middle = float(ab.median())
        top = torch.zeros(len(rows), dtype=torch.float64)
        for count, lo, hi in sorted(groups, key=lambda grp: abs(grp[0] - middle)):
            bound = 1.0 if lo_a <= count <= hi_a else (
                count / lo_a if count < lo_a else hi_a / count)
            if bound <= float(top.min()):
                continue
            c = _count(gb, r_t[:, lo:hi]).amax(1).double()
            union = ab + count - c
            t = torch.where(union > 0, c / union.clamp_min(1), torch.ones_like(c))
            top = torch.maximum(top, t)
        best[rows] = top
    return best.numpy()


def internal_similarity_sums(gen: np.ndarray, block: int = 2048, progress: bool = False
                             ) -> tuple[np.ndarray, np.ndarray]:
    """For each fingerprint, the sum of its Tanimoto similarities and of their squares over all
    fingerprints of the set, itself included (as molsets' IntDiv counts it)."""
    g = _bits(gen)
    a = g.sum(1).float()
    dtype = _product_dtype(a)
    gt = g.to(dtype).T.contiguous()
    s1 = torch.zeros(len(g), dtype=torch.float64)
    s2 = torch.zeros(len(g), dtype=torch.float64)
    for i in tqdm(range(0, len(g), block), desc="IntDiv", leave=False, disable=not progress):
        c = _count(g[i:i + block].to(dtype), gt).float()
        union = a[i:i + block, None] + a[None, :] - c
        t = torch.where(union > 0, c / union.clamp_min(1), torch.ones_like(c))
        s1[i:i + block] = t.sum(1, dtype=torch.float64)
        s2[i:i + block] = t.square().sum(1, dtype=torch.float64)
    return s1.numpy(), s2.numpy()


def max_internal_similarity(fps: np.ndarray, block: int = 2048) -> np.ndarray:
    """For each fingerprint, its largest Tanimoto similarity to another one of the set
    (GuacaMol's internal-similarity term: the diagonal is left out)."""
    g = _bits(fps)
    a = g.sum(1).float()
    dtype = _product_dtype(a)
    gt = g.to(dtype).T.contiguous()
    out = np.zeros(len(g))
    for i in range(0, len(g), block):
        c = _count(g[i:i + block].to(dtype), gt).float()
        union = a[i:i + block, None] + a[None, :] - c
        t = torch.where(union > 0, c / union.clamp_min(1), torch.zeros_like(c))
        rows = torch.arange(len(t))
        t[rows, rows + i] = 0
        out[i:i + block] = t.amax(1).double().numpy()
    return out


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


def guacamol_subset(smiles: Sequence[str], size: int | None = None,
                    seed: int = GUACAMOL_SEED) -> list[str]:
    """GuacaMol's get_random_subset: numpy's legacy generator seeded with 42, a choice without
    replacement (the same draw as `np.random.seed(42); np.random.choice(smiles, size, False)`)."""
    size = size or GUACAMOL_SAMPLES
    if len(smiles) < size:
        return list(smiles)
    index = np.random.RandomState(seed).choice(len(smiles), size, replace=False)
    return [smiles[i] for i in index]


def _dedupe(items: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(items))




# -- the metric set -------------------------------------------------------------------------------

@dataclasses.dataclass
class MoleculeReport:
    """What evaluate_molecules measured: the metrics, the reference they were measured
    against, and one row per valid sample (canonical SMILES, logP, SA, QED, weight)."""

    metrics: dict[str, float]
    reference: Any
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
    from .reference import load_reference

    n_jobs = n_jobs or min(os.cpu_count() or 1, 8)
    reference = load_reference(reference, n_jobs=n_jobs, device=device, progress=progress)
    strings = [s if isinstance(s, str) else "" for s in samples]
    if not strings:
        raise DataError("no samples to evaluate")
    with _Workers(n_jobs) as workers:
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
        unique_again = _dedupe(again)
        acts = chemnet.activations(unique_again, progress=progress)
        where_again = {s: i for i, s in enumerate(unique_again)}
        acts = acts[[where_again[s] for s in again]]
        gen_fcd = gaussian_stats(acts)
        props = described.props
        for name, split in reference.splits.items():
            metrics[f"FCD/{name}"] = frechet_distance(split.fcd_mu, split.fcd_sigma,
                                                      gen_fcd["mu"], gen_fcd["sigma"])
            nearest = nearest_neighbour_similarity(fps, split.fps, progress=progress,
                                                   desc=f"SNN/{name}")
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


def _guacamol_scores(gen: list[str], acts: np.ndarray, ref, workers: _Workers,
                     progress: bool) -> dict[str, float]:
    """GuacaMol's KL-divergence score on the first 10,000 distinct valid samples (canonical
    without stereochemistry, deduplicated again) and its FCD score, exp(-0.2 FCD), on the first
    10,000 valid samples, each against the reference's GuacaMol subset."""
    distinct = _dedupe(gen)[:GUACAMOL_SAMPLES]
    stripped = [s for chunk in workers.map(_features.strip_stereo, distinct, "GuacaMol", progress)
                for s in chunk if s is not None]
    feats = _merge(workers.map(_features.guacamol_features, _dedupe(stripped),
                               "GuacaMol descriptors", progress))
    out: dict[str, float] = {}
    if len(feats.get("fps", [])) >= 2:
        score, _ = kl_score(ref.descriptors, ref.max_similarity, np.asarray(feats["descriptors"]),
                            max_internal_similarity(packed_rows(feats["fps"])))
        out["KL score"] = score
    else:  # one distinct molecule is a point mass in every term; none leaves nothing to score
        out["KL score"] = 0.0 if feats.get("fps") else float("nan")
    first = gaussian_stats(acts[:GUACAMOL_SAMPLES])
    out["FCD score"] = float(np.exp(-0.2 * frechet_distance(ref.fcd_mu, ref.fcd_sigma,
                                                            first["mu"], first["sigma"])))
    return out


def _finish(metrics: dict[str, float], reference, n: int, n_valid: int,
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
