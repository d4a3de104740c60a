"""The machinery both the metrics (molecules.py) and their reference (reference.py) run on.

Imports flow one way: _features (RDKit, per molecule) <- _compute (worker pool, ChemNet,
Tanimoto similarities) <- reference <- molecules.

- `Workers`: the RDKit feature functions of _features over chunks of strings, in worker
  processes started on first need (never for an input that fits in one chunk);
- `canonical_forms`, `describe`: every distinct string parsed and described once;
- `ChemNet`, `gaussian_stats`, `frechet_distance`: fcd_torch's FCD, with its network loaded
  once per process;
- `nearest_neighbour_similarity`, `internal_similarity_sums`, `max_internal_similarity`:
  Tanimoto similarities from exact counts of common bits. The fingerprints are sparse (about
  40 of 1,024 bits set), so the counts come from a sparse-by-dense matrix product (CSR rows of
  one set times the 0/1 columns of the other, float32: integer sums below 2**24 are exact),
  about 25 times fewer multiply-adds than the dense product molsets runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import multiprocessing
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch
from scipy import linalg
from tqdm.auto import tqdm

from ..errors import DataError
from . import _features

GUACAMOL_SAMPLES = 10_000  # GuacaMol's number_samples for its KL and FCD benchmarks
GUACAMOL_SEED = 42  # GuacaMol's get_random_subset seed for the reference subset
CHUNK = 256  # strings per task sent to a worker


# -- running RDKit work on both cores ------------------------------------------------------------

class Workers:
    """A pool of worker processes for the RDKit feature functions (none when n_jobs is 1).

    The pool starts on the first `map` with more than one chunk, so a small input never pays
    for it. Workers are forked where the platform can (Linux), so they start in milliseconds
    and a user's script needs no `if __name__ == "__main__"` guard; they run RDKit and numpy
    only, never torch, so the parent's torch threads do not matter to them. Elsewhere they
    are spawned (and then the calling script needs that guard, as for any multiprocessing)."""

    def __init__(self, n_jobs: int):
        self.n_jobs = max(1, n_jobs)
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
            self.executor = None

    def _pool(self) -> ProcessPoolExecutor:
        if self.executor is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self.executor = ProcessPoolExecutor(self.n_jobs, mp_context=context)
        return self.executor

    def map(self, func: Callable[[list[str]], Any], items: Sequence[str], desc: str,
            progress: bool) -> list[Any]:
        """func over items in chunks, in order; one result per chunk."""
        chunks = [list(items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)]
        bar = tqdm(total=len(items), desc=desc, unit="mol", disable=not progress or not items,
                   leave=False)
        results = []
        with bar:
            if self.n_jobs == 1 or len(chunks) <= 1:
                for chunk in chunks:  # the feature functions block RDKit's log themselves
                    results.append(func(chunk))
                    bar.update(len(chunk))
            else:
                for chunk, result in zip(chunks, self._pool().map(func, chunks)):
                    results.append(result)
                    bar.update(len(chunk))
        return results


def merge(results: list[dict[str, list]]) -> dict[str, list]:
    """The per-chunk dicts of lists from Workers.map as one dict of lists."""
    merged: dict[str, list] = {}
    for result in results:
        for key, values in result.items():
            merged.setdefault(key, []).extend(values)
    return merged


def dedupe(items: Sequence[Any]) -> list[Any]:
    """The distinct items in the order they first appear."""
    return list(dict.fromkeys(items))


def packed_rows(fps: list[bytes]) -> np.ndarray:
    """Packed fingerprints from the workers as one (N, bytes) uint8 array."""
    return np.frombuffer(b"".join(fps), dtype=np.uint8).reshape(len(fps), -1)


def canonical_forms(strings: Sequence[str], workers: Workers, desc: str,
                    progress: bool) -> dict[str, tuple[str, str] | None]:
    """For each distinct string, _features.canonical_pairs' answer (None if invalid)."""
    unique = dedupe(strings)
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


def describe(molecules: Sequence[str], workers: Workers, desc: str,
             progress: bool) -> Described:
    """Fingerprints, fragment and scaffold counts, properties and filters of valid SMILES."""
    unique = dedupe(molecules)
    feats = merge(workers.map(_features.molecule_features, unique, desc, progress))
    where = {s: i for i, s in enumerate(unique)}
    index = np.array([where[s] for s in molecules], dtype=np.int64)
    frag: Counter = Counter()
    for i in index:
        frag.update(feats["frags"][i])
    scaf = Counter(feats["scaffolds"][i] for i in index)
    scaf.pop(None, None)
    return Described(packed_rows(feats["fps"]), index, frag, scaf,
                     np.asarray(feats["props"], dtype=np.float64)[index],
                     np.asarray(feats["passes"])[index])


def guacamol_subset(smiles: Sequence[str], size: int | None = None,
                    seed: int = GUACAMOL_SEED) -> list[str]:
    """GuacaMol's get_random_subset: numpy's legacy generator seeded with 42, a choice without
    replacement (the same draw as `np.random.seed(42); np.random.choice(smiles, size, False)`)."""
    size = size or GUACAMOL_SAMPLES
    if len(smiles) < size:
        return list(smiles)
    index = np.random.RandomState(seed).choice(len(smiles), size, replace=False)
    return [smiles[i] for i in index]


# -- FCD ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _chemnet_module() -> torch.nn.Module:
    """fcd_torch's ChemNet, read from its file once per process (on the CPU, evaluation mode)."""
    try:
        from fcd_torch import FCD
    except ImportError as error:
        raise DataError("FCD needs fcd_torch: pip install fcd_torch") from error
    with warnings.catch_warnings():  # fcd_torch calls torch.load without weights_only
        warnings.simplefilter("ignore", FutureWarning)
        return FCD(device="cpu", n_jobs=1).model.eval()


class ChemNet:
    """fcd_torch's ChemNet (the network and weights fcd_torch ships) with its exact input
    encoding, run over many SMILES in large batches with a progress bar."""

    PAD_LEN = 350  # fcd_torch pads (and truncates) every SMILES to 350 symbols

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 1024):
        from fcd_torch import utils as fcd_utils

        self.device = torch.device(device)
        # the CPU copy is shared by every ChemNet of this process; another device gets its own
        self.model = _chemnet_module()
        if self.device.type != "cpu":
            import copy
            self.model = copy.deepcopy(self.model).to(self.device)
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


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Limit numpy/scipy's BLAS to one thread inside the block (threadpoolctl comes with
    scikit-learn, which botorch needs; without it the block changes nothing)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def gaussian_stats(activations: np.ndarray) -> dict[str, np.ndarray]:
    """fcd_torch's precalc: the mean (in the activations' float32) and covariance (float64)."""
    return {"mu": activations.mean(0), "sigma": np.cov(activations.T)}


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """The Fréchet distance of two Gaussians, computed as fcd_torch computes it."""
    diff = np.atleast_1d(mu1) - np.atleast_1d(mu2)
    # sqrtm's Schur recursion makes many small BLAS calls: with more than one BLAS thread
    # they wait on each other, and on a busy 2-core machine one 512 x 512 root took 9 s
    # instead of 0.3 s (the same root either way, to rounding)
    with _one_blas_thread():
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

def bit_counts(packed: np.ndarray) -> np.ndarray:
    """The number of set bits of each packed fingerprint, int64."""
    return np.bitwise_count(packed).sum(1, dtype=np.int64)


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor,
         shape: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": what is used here is exact
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, shape)


def _sparse(packed: np.ndarray) -> torch.Tensor:
    """Packed fingerprints as a float32 CSR matrix (N, bits) of ones at the set bits."""
    width = packed.shape[1] * 8
    # torch's nonzero over the flat 0/1 bytes is several times faster than numpy's 2-D one;
    # positions come row by row, ascending, as CSR wants them
    flat = torch.from_numpy(np.unpackbits(packed, axis=1).reshape(-1)).nonzero().squeeze(1)
    crow = torch.zeros(len(packed) + 1, dtype=torch.int64)
    torch.cumsum(torch.from_numpy(bit_counts(packed)), 0, out=crow[1:])
    return _csr(crow, flat % width, torch.ones(len(flat)), (len(packed), width))


def _columns(packed: np.ndarray) -> torch.Tensor:
    """Packed fingerprints as dense 0/1 float32 columns (bits, N), the right operand of
    _common."""
    return torch.from_numpy(np.ascontiguousarray(np.unpackbits(packed, axis=1).T)).float()


def _common(rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Common bits of each sparse row with each dense column: (rows, columns) float32,
    exact integers."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product is exact
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse.mm(rows, columns)


@dataclasses.dataclass
class NeighbourIndex:
    """A reference set's fingerprints laid out for the nearest-neighbour search: sorted by bit
    count, each row's set bits as column indices (a CSR matrix's), small enough to cache."""

    counts: np.ndarray  # (N,) bit count of each row, ascending
    cols: np.ndarray  # (sum of counts,) int16: the set bits of each row in turn, ascending
    width: int  # bits per fingerprint

    @classmethod
    def build(cls, packed: np.ndarray) -> NeighbourIndex:
        """The index of packed fingerprints (N, bytes)."""
        counts = bit_counts(packed)
        order = np.argsort(counts, kind="stable")
        csr = _sparse(packed[order])
        width = packed.shape[1] * 8
        small = np.int16 if width <= np.iinfo(np.int16).max + 1 else np.int32
        return cls(counts[order], csr.col_indices().numpy().astype(small), width)

    def groups(self) -> list[tuple[int, torch.Tensor]]:
        """(bit count, CSR matrix of the rows with that count) for each count present."""
        crow = torch.zeros(len(self.counts) + 1, dtype=torch.int64)
        torch.cumsum(torch.from_numpy(self.counts.astype(np.int64)), 0, out=crow[1:])
        col = torch.from_numpy(self.cols.astype(np.int64))
        ones = torch.ones(len(col))
        values, starts = np.unique(self.counts, return_index=True)
        ends = np.append(starts[1:], len(self.counts))
        out = []
        for count, lo, hi in zip(values.tolist(), starts.tolist(), ends.tolist()):
            first, last = int(crow[lo]), int(crow[hi])
            out.append((count, _csr(crow[lo:hi + 1] - first, col[first:last], ones[first:last],
                                    (hi - lo, self.width))))
        return out


def nearest_neighbour_similarity(gen: np.ndarray, ref: np.ndarray | NeighbourIndex,
                                 block: int = 1024, progress: bool = False,
                                 desc: str = "SNN") -> np.ndarray:
    """For each generated fingerprint, its largest Tanimoto similarity to any reference one
    (gen a packed bit array, ref one or its NeighbourIndex); 1 where both vectors are empty,
    as molsets sets its NaNs."""
    a_all = bit_counts(gen)
    index = ref if isinstance(ref, NeighbourIndex) else NeighbourIndex.build(ref)
    # Tanimoto c / (a + b - c) grows with c for fixed a and b, so within a group of reference
    # vectors with the same bit count b the best one is the one with the largest count c.
    # It is also at most min(a, b) / max(a, b): with the samples sorted by bit count, a group
    # whose bound cannot beat the best similarity found so far for any sample of a block is
    # skipped, and groups are visited nearest bit count first so the best is found early.
    groups = index.groups()
    g_order = np.argsort(a_all, kind="stable")
    best = np.zeros(len(gen), dtype=np.float64)
    for i in tqdm(range(0, len(gen), block), desc=desc, leave=False, disable=not progress):
        rows = g_order[i:i + block]
        columns = _columns(gen[rows])
        ab = torch.from_numpy(a_all[rows]).double()
        lo_a, hi_a = float(ab.min()), float(ab.max())
        middle = float(ab.median())
        top = torch.zeros(len(rows), dtype=torch.float64)
        for count, group in sorted(groups, key=lambda grp: abs(grp[0] - middle)):
            bound = 1.0 if lo_a <= count <= hi_a else (
                count / lo_a if count < lo_a else hi_a / count)
            if bound <= float(top.min()):
                continue
            c = _common(group, columns).amax(0).double()
            union = ab + count - c
            t = torch.where(union > 0, c / union.clamp_min(1), torch.ones_like(c))
            top = torch.maximum(top, t)
        best[rows] = top.numpy()
    return best


def internal_similarity_sums(gen: np.ndarray, block: int = 1024, progress: bool = False
                             ) -> tuple[np.ndarray, np.ndarray]:
    """For each fingerprint, the sum of its Tanimoto similarities and of their squares over all
    fingerprints of the set, itself included (as molsets' IntDiv counts it)."""
    a = torch.from_numpy(bit_counts(gen)).float()
    columns = _columns(gen)
    s1 = np.zeros(len(gen))
    s2 = np.zeros(len(gen))
    for i in tqdm(range(0, len(gen), block), desc="IntDiv", leave=False, disable=not progress):
        c = _common(_sparse(gen[i:i + block]), columns)
        union = a[i:i + block, None] + a[None, :] - c
        t = torch.where(union > 0, c / union.clamp_min(1), torch.ones_like(c))
        s1[i:i + block] = t.sum(1, dtype=torch.float64).numpy()
        s2[i:i + block] = t.square().sum(1, dtype=torch.float64).numpy()
    return s1, s2


def max_internal_similarity(fps: np.ndarray, block: int = 1024) -> np.ndarray:
    """For each fingerprint, its largest Tanimoto similarity to another one of the set
    (GuacaMol's internal-similarity term: the diagonal is left out)."""
    a = torch.from_numpy(bit_counts(fps)).float()
    columns = _columns(fps)
    out = np.zeros(len(fps))
    for i in range(0, len(fps), block):
        c = _common(_sparse(fps[i:i + block]), columns)
        union = a[i:i + block, None] + a[None, :] - c
        t = torch.where(union > 0, c / union.clamp_min(1), torch.zeros_like(c))
        rows = torch.arange(len(t))
        t[rows, rows + i] = 0
        out[i:i + block] = t.amax(1).double().numpy()
    return out


__all__ = ["CHUNK", "GUACAMOL_SAMPLES", "GUACAMOL_SEED", "ChemNet", "Described", "NeighbourIndex",
           "Workers",
           "bit_counts", "canonical_forms", "dedupe", "describe", "frechet_distance",
           "gaussian_stats", "guacamol_subset", "internal_similarity_sums",
           "max_internal_similarity", "merge", "nearest_neighbour_similarity", "packed_rows"]
