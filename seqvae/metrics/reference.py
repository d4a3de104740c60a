"""Reference statistics for the molecular metrics: what the samples are compared with.

A reference holds, per split ("Test" and, for MOSES, "TestSF"), the statistics molsets
precomputes (ChemNet mean and covariance, Morgan bit vectors, BRICS fragment and scaffold
counts, property values), the training SMILES for novelty, and GuacaMol's reference for its KL
and FCD scores (a 10,000-molecule random subset of the test split, seed 42).

Computing them takes minutes for a large set, so they are cached on disk without pickle
(safetensors for arrays, JSON for counts) under $SEQVAE_CACHE (default ~/.cache/seqvae), keyed
by the content of the reference and the versions that compute it; with them the fingerprints
laid out for the nearest-neighbour search, and the training SMILES as plain text (train/).

`moses`: molsets' own precomputed statistics (`test_stats.npz`, `test_scaffolds_stats.npz` in
the molsets 0.3.1 wheel) are what every published MOSES table uses, so they are used here too.
They are numpy pickles: they are loaded once, only after their sha256 matches the files of
molsets 0.3.1, and converted to the cache format above.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data import user_path
from ..errors import DataError
from . import _features
from ._compute import (ChemNet, NeighbourIndex, Workers, canonical_forms, dedupe, describe,
                       gaussian_stats, guacamol_subset, max_internal_similarity, merge,
                       packed_rows)
from ._features import PROPERTIES

FORMAT = 2  # bump when what a cached reference holds, or how it is computed, changes
MOSES_STATS_SHA256 = {
    "test": "ded25073225a895d4ed17bf1d4223d27560e87ff4cb85786346ca1cc8efa03d3",
    "test_scaffolds": "7b7aba6c1474634a019bebf16f389d554cb9dd1021dfc8c1d1e54430a9f0e7f8",
}


@dataclasses.dataclass
class SplitStats:
    """molsets' intermediate statistics of one reference split."""

    fcd_mu: np.ndarray  # (512,)
    fcd_sigma: np.ndarray  # (512, 512)
    fps: np.ndarray  # (N, 128) uint8: packed Morgan radius-2 1024-bit vectors
    frag: dict[str, int]
    scaf: dict[str, int]
    props: dict[str, np.ndarray]  # logP, SA, QED, weight: (N,) each
    neighbours: NeighbourIndex | None = None  # fps laid out for SNN (built from fps if None)


@dataclasses.dataclass
class GuacaMolStats:
    """GuacaMol's reference: descriptors and internal similarities of its KL benchmark, and the
    ChemNet statistics of its FCD benchmark, over one random subset of the reference."""

    descriptors: np.ndarray  # (M, 9)
    max_similarity: np.ndarray  # (M,)
    fcd_mu: np.ndarray
    fcd_sigma: np.ndarray


@dataclasses.dataclass
class MolecularReference:
    """Everything the samples are measured against; build with `load_reference`."""

    name: str
    splits: dict[str, SplitStats]
    guacamol: GuacaMolStats | None = None
    train: frozenset[str] | None = None  # for novelty; as written in the file (see novelty)


def cache_dir() -> Path:
    """Where reference statistics are cached: $SEQVAE_CACHE, else ~/.cache/seqvae."""
    return user_path(os.environ.get("SEQVAE_CACHE", Path.home() / ".cache" / "seqvae"))


def _versions() -> dict[str, str]:
    import rdkit
    return {"format": str(FORMAT), "rdkit": rdkit.__version__}


# -- cache: safetensors + JSON, never pickle ----------------------------------------------------

def _save(path: Path, splits: dict[str, SplitStats], guacamol: GuacaMolStats | None,
          meta: dict) -> None:
    from safetensors.numpy import save_file

    tmp = path.with_name(path.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    counts: dict[str, dict] = {}
    for name, s in splits.items():
        arrays[f"{name}.fcd_mu"] = np.ascontiguousarray(s.fcd_mu)
        arrays[f"{name}.fcd_sigma"] = np.ascontiguousarray(s.fcd_sigma)
        arrays[f"{name}.fps"] = np.ascontiguousarray(s.fps)
        for prop, values in s.props.items():
            arrays[f"{name}.{prop}"] = np.asarray(values, dtype=np.float64)
        neighbours = s.neighbours or NeighbourIndex.build(s.fps)  # built by load_reference
        arrays[f"{name}.snn_counts"] = neighbours.counts.astype(np.int32)
        arrays[f"{name}.snn_cols"] = neighbours.cols
        counts[name] = {"frag": s.frag, "scaf": s.scaf}
    if guacamol is not None:
        for field in dataclasses.fields(guacamol):
            arrays[f"guacamol.{field.name}"] = np.ascontiguousarray(getattr(guacamol, field.name))
    save_file(arrays, str(tmp / "arrays.safetensors"))
    (tmp / "counts.json").write_text(json.dumps(counts))
    (tmp / "meta.json").write_text(json.dumps({**meta, "splits": list(splits),
                                               "guacamol": guacamol is not None}, indent=2))
    if path.exists():
        import shutil
        shutil.rmtree(path)
    tmp.rename(path)


def _load(path: Path) -> tuple[dict[str, SplitStats], GuacaMolStats | None, dict] | None:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        meta = json.loads((path / "meta.json").read_text())
        counts = json.loads((path / "counts.json").read_text())
        arrays = load_file(str(path / "arrays.safetensors"))
    except (OSError, ValueError, SafetensorError):
        return None  # absent or damaged: recompute
    if any(f"{name}.snn_cols" not in arrays for name in meta.get("splits", [])):
        return None
    splits = {name: SplitStats(arrays[f"{name}.fcd_mu"], arrays[f"{name}.fcd_sigma"],
                               arrays[f"{name}.fps"], counts[name]["frag"], counts[name]["scaf"],
                               {p: arrays[f"{name}.{p}"] for p in PROPERTIES},
                               NeighbourIndex(arrays[f"{name}.snn_counts"],
                                              arrays[f"{name}.snn_cols"],
                                              arrays[f"{name}.fps"].shape[1] * 8))
              for name in meta["splits"]}
    guacamol = None
    if meta.get("guacamol"):
        guacamol = GuacaMolStats(*(arrays[f"guacamol.{f.name}"]
                                   for f in dataclasses.fields(GuacaMolStats)))
    return splits, guacamol, meta


# -- computing statistics -----------------------------------------------------------------------

def split_stats(smiles: Sequence[str], workers: Workers, chemnet: ChemNet,
                progress: bool = False, label: str = "reference") -> tuple[SplitStats, int]:
    """molsets' compute_intermediate_statistics for a list of SMILES; also the number of rows
    skipped because RDKit cannot parse them (molsets would stop on the first)."""
    pairs = canonical_forms(smiles, workers, f"{label}: parse", progress)
    kept = [s for s in smiles if pairs[s] is not None]
    skipped = len(smiles) - len(kept)
    if len(kept) < 2:
        raise DataError(f"the {label} set has {len(kept)} valid molecules; it needs at least 2")
    described = describe(kept, workers, f"{label}: describe", progress)
    # fcd_torch canonicalises what it is given: the canonical form of each reference SMILES
    canonical = [pairs[s][0] for s in kept]
    fcd = gaussian_stats(chemnet.activations(canonical, progress=progress))
    stats = SplitStats(fcd["mu"], fcd["sigma"], described.fps[described.index],
                       dict(described.frag), dict(described.scaf),
                       {p: described.props[:, j] for j, p in enumerate(PROPERTIES)})
    return stats, skipped


def guacamol_stats(smiles: Sequence[str], workers: Workers, chemnet: ChemNet,
                   progress: bool = False) -> GuacaMolStats:
    """GuacaMol's reference over its random 10,000-molecule subset (seed 42) of smiles: for
    the KL benchmark the subset canonicalised without stereochemistry and deduplicated, for
    the FCD benchmark the subset as given (fcd_torch canonicalises it)."""
    subset = guacamol_subset(list(smiles))
    flat = [s for chunk in workers.map(_features.strip_stereo, subset, "GuacaMol reference",
                                       progress) for s in chunk]
    molecules = dedupe([s for s in flat if s is not None])
    feats = merge(workers.map(_features.guacamol_features, molecules, "GuacaMol descriptors",
                               progress))
    pairs = canonical_forms(subset, workers, "parse", False)
    canonical = [pairs[s][0] for s in subset if pairs[s] is not None]
    fcd = gaussian_stats(chemnet.activations(canonical, progress=progress))
    return GuacaMolStats(np.asarray(feats["descriptors"]),
                         max_internal_similarity(packed_rows(feats["fps"])),
                         fcd["mu"], fcd["sigma"])


def _moses_npz(split: str) -> SplitStats:
    """molsets' precomputed statistics of a MOSES split, checked by sha256 before loading."""
    from ..data import moses_path

    path = moses_path("test").with_name(f"{split}_stats.npz")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MOSES_STATS_SHA256[split]:
        raise DataError(f"{path} is not the file molsets 0.3.1 ships (sha256 {digest}); "
                        "reinstall with: pip install --force-reinstall --no-deps molsets==0.3.1")
    stats = np.load(path, allow_pickle=True)["stats"].item()  # verified molsets file (above)
    return SplitStats(
        fcd_mu=np.asarray(stats["FCD"]["mu"]), fcd_sigma=np.asarray(stats["FCD"]["sigma"]),
        fps=np.packbits(np.asarray(stats["SNN"]["fps"], dtype=np.uint8), axis=1),
        frag={str(k): int(v) for k, v in stats["Frag"]["frag"].items()},
        scaf={str(k): int(v) for k, v in stats["Scaf"]["scaf"].items()},
        props={p: np.asarray(stats[p]["values"], dtype=np.float64) for p in PROPERTIES})


def _read_smiles(path: Path) -> list[str]:
    from ..data import read_strings

    return [s.strip() for s in read_strings(path)]


def _read_train(path: Path, cache: bool) -> frozenset[str]:
    """The training SMILES for novelty. Parsing the 1.6M-row MOSES CSV takes a second, so the
    strings are cached as plain text (one a line), keyed by the file's content."""
    raw = user_path(path).read_bytes()
    cached = cache_dir() / "train" / f"{hashlib.sha256(raw).hexdigest()[:24]}-{FORMAT}.txt"
    if cache and cached.is_file():
        return frozenset(cached.read_text(encoding="utf-8").split("\n")[1:])
    strings = _read_smiles(path)
    if cache and not any("\n" in s for s in strings):
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        # a first line of its own, so that no strings and one empty string read back apart
        tmp.write_text("\n".join(["seqvae training SMILES", *strings]), encoding="utf-8")
        tmp.rename(cached)
    return frozenset(strings)


def load_reference(reference: str | Path | MolecularReference = "moses", *,
                   scaffold_test: str | Path | None = None, train: str | Path | None = None,
                   n_jobs: int | None = None, device: str = "cpu", progress: bool = True,
                   cache: bool = True) -> MolecularReference:
    """The reference "moses" (MOSES test and scaffold-test splits, training split for
    novelty) or one built from files: `reference` is the test set (.csv column SMILES, .smi,
    .txt), `scaffold_test` an optional second split reported as .../TestSF, `train` the
    training set for novelty (omitted when not given)."""
    if isinstance(reference, MolecularReference):
        return reference
    n_jobs = n_jobs or min(os.cpu_count() or 1, 8)
    moses = str(reference) == "moses"
    if moses:
        from ..data import moses_path
        files = {"Test": moses_path("test"), "TestSF": moses_path("test_scaffolds")}
        train_path = Path(train) if train is not None else moses_path("train")
        key = f"moses-0.3.1-{FORMAT}"
    else:
        files = {"Test": Path(reference)}
        if scaffold_test is not None:
            files["TestSF"] = Path(scaffold_test)
        for p in files.values():
            if not user_path(p).is_file():
                raise DataError(f"no such reference file: {p}")
        train_path = Path(train) if train is not None else None
        digest = hashlib.sha256()
        for name, p in files.items():
            digest.update(name.encode() + b"\0" + user_path(p).read_bytes())
        key = f"{digest.hexdigest()[:24]}-{FORMAT}"
    meta = {"name": "moses" if moses else str(reference), **_versions()}
    path = cache_dir() / "references" / key
    loaded = _load(path) if cache else None
    if loaded is not None and loaded[2].get("rdkit") == meta["rdkit"]:
        splits, guacamol, _ = loaded
    else:
        with Workers(n_jobs) as workers:
            chemnet = ChemNet(device)
            if moses:
                splits = {"Test": _moses_npz("test"), "TestSF": _moses_npz("test_scaffolds")}
                test_smiles = _read_smiles(files["Test"])
            else:
                splits = {}
                for name, p in files.items():
                    smiles = _read_smiles(p)
                    splits[name], skipped = split_stats(smiles, workers, chemnet, progress, name)
                    meta[f"{name}_skipped"] = skipped
                    if name == "Test":
                        test_smiles = smiles
            guacamol = guacamol_stats(test_smiles, workers, chemnet, progress)
        for stats in splits.values():
            stats.neighbours = NeighbourIndex.build(stats.fps)
        if cache:
            _save(path, splits, guacamol, meta)
    train_set = _read_train(train_path, cache) if train_path is not None else None
    return MolecularReference(meta["name"], splits, guacamol, train_set)
