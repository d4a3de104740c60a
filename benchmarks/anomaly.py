"""Anomaly detection with a shipped model's scores, and the speed of scoring.

    python -m benchmarks.anomaly --part auroc      # MOSES test against two sets from RDKit
    python -m benchmarks.anomaly --part speed      # score 10,000 molecules, k = 1 and k = 32
    python -m benchmarks.anomaly --part table

In-distribution: --n molecules of the MOSES test split (seed 0). Out of distribution, two
sets that ship inside the `rdkit` package (BSD-3-Clause; RDConfig.RDDataDir): the first
5,000 compounds of the NCI open database (NCI/first_5K.smi: old, diverse, many far from drug
space) and 10,000 compounds of the WEHI screening library used to test the PAINS filters
(Pains/test_data/wehi_mols.csv: a screening library, nearer to MOSES). Every set is
standardised first (seqvae.standardize: largest fragment, neutral charges, stereo dropped: the
shipped vocabulary has no stereo tokens), duplicates and molecules in the MOSES training split
removed, --n drawn from each (seed 0).

Each score (higher: more unusual) is the model's -ELBO, importance-weighted NLL (k = 32) and
bits per character, beside a plain fingerprint baseline: the Tanimoto distance to the nearest
MOSES training molecule (Morgan radius 2, 1024 bits; seqvae.metrics' index). AUROC is the
Mann-Whitney statistic (ties counted half). A molecule the model cannot read (a token its
vocabulary lacks) has no model score: AUROC is given over the molecules it reads, with the
count it cannot, and again with those counted as flagged (score +inf). The threshold helper
(model.anomaly_detector, default score, 5% false-positive rate) is calibrated on --n MOSES
validation molecules and the share of each set it flags is reported: on MOSES test that share
is the false-positive rate it actually reaches.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (RESULTS_DIR, LoadMonitor, load_text, machine, machine_markdown,
                               write_results)

NAME = "anomaly"
SCORES = ("neg_elbo", "iw_nll", "bits_per_char")
BASELINE = "nn_distance"
K = 32
FPR = 0.05
VALID_DATA = "default:moses_valid"


def ood_sets() -> dict[str, dict[str, Any]]:
    """The out-of-distribution sets in the rdkit wheel: name -> path, reader, provenance."""
    import importlib.metadata

    from rdkit import RDConfig
    version = importlib.metadata.version("rdkit")
    return {
        "NCI first 5K": {"path": Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi",
                         "source": f"rdkit {version} (BSD-3-Clause), Data/NCI/first_5K.smi"},
        "WEHI library": {"path": Path(RDConfig.RDDataDir) / "Pains" / "test_data" / "wehi_mols.csv",
                         "source": f"rdkit {version} (BSD-3-Clause), "
                                   "Data/Pains/test_data/wehi_mols.csv"},
    }


def _read(path: Path) -> list[str]:
    """SMILES of an rdkit data file: the first column of a tab-separated .smi or a headerless
    quoted .csv."""
    import csv
    if path.suffix == ".smi":
        return [line.split("\t")[0].strip() for line in path.read_text().splitlines() if line]
    with open(path, newline="") as handle:
        return [row[0] for row in csv.reader(handle) if row]


def outside_pool(strings: list[str], moses_train: frozenset[str]
                 ) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """An outside set as both benchmarks read it: standardised (stereo dropped), deduplicated,
    molecules of the MOSES training split removed (in the file's order); a shuffle of them with
    seed 0 (positions); and the counts."""
    from seqvae.standardize import standardize
    table = standardize(strings, keep_stereo=False)
    kept = [s for s in dict.fromkeys(table["SMILES"].dropna()) if s not in moses_train]
    return kept, np.random.default_rng(0).permutation(len(kept)), {
        "read": len(strings), "standardised": int(table["SMILES"].notna().sum()),
        "changed": int(table["changed"].sum()), "distinct_not_in_train": len(kept)}


def prepared(strings: list[str], n: int, moses_train: frozenset[str]) -> tuple[list[str], dict]:
    """n molecules of an outside set's pool (outside_pool) drawn with seed 0, in file order."""
    kept, order, counts = outside_pool(strings, moses_train)
    chosen = [kept[i] for i in np.sort(order[:n])]
    return chosen, {**counts, "used": len(chosen)}


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney)."""
    from scipy.stats import rankdata
    values = np.concatenate([negatives, positives])
    ranks = rankdata(values)
    n_neg, n_pos = len(negatives), len(positives)
    return float((ranks[n_neg:].sum() - n_pos * (n_pos + 1) / 2) / (n_neg * n_pos))


def part_auroc(model_name: str, n: int) -> dict[str, Any]:
    import seqvae
    from seqvae.data import moses_path, read_strings
    from seqvae.metrics.reference import load_reference

    model = seqvae.load(model_name)
    moses_train = load_reference("moses", progress=False).train
    test = read_strings(moses_path("test"))
    sets = {"MOSES test": {"strings": test, "source": "molsets 0.3.1 (MIT), MOSES test split"}}
    for name, info in ood_sets().items():
        sets[name] = {"strings": _read(info["path"]), "source": info["source"]}
    scored: dict[str, Any] = {}
    with LoadMonitor(every=10.0) as load:
        for name, info in sets.items():
            strings, counts = prepared(info["strings"], n, moses_train)
            start = time.perf_counter()
            table = model.score(strings, k=K, seed=0, progress=False)
            seconds = time.perf_counter() - start
            readable = table["reason"].isna().to_numpy()
            columns = {s: table[s].to_numpy(float) for s in SCORES}
            columns[BASELINE] = 1.0 - table["nn_similarity"].to_numpy(float)
            scored[name] = {"source": info["source"], "counts": counts,
                            "unreadable": int((~readable).sum()), "seconds": seconds,
                            "scores": {s: v.tolist() for s, v in columns.items()},
                            "readable": readable.tolist()}
    # the threshold helper: calibrated on MOSES validation molecules (not test, not train) for
    # a 5% false-positive rate with the default score, applied to each set's scores above
    from seqvae.data import resolve_data
    normal = read_strings(resolve_data(VALID_DATA))[:n]
    detector = model.anomaly_detector(normal, fpr=FPR, k=K, seed=0)
    calibration = {"detector": detector.to_dict(), "calibrated_on": f"{len(normal):,} molecules "
                   f"of {VALID_DATA}", "flagged": {}}
    for name, info in scored.items():
        flagged = detector.flags(info["scores"][detector.score])  # unreadable rows are NaN
        calibration["flagged"][name] = float(flagged.mean())
    results = {}
    base = scored["MOSES test"]
    for name in list(ood_sets()):
        ood = scored[name]
        row = {}
        for s in (*SCORES, BASELINE):
            neg, pos = np.array(base["scores"][s]), np.array(ood["scores"][s])
            neg_ok, pos_ok = np.array(base["readable"]), np.array(ood["readable"])
            row[s] = {"readable": auroc(neg[neg_ok], pos[pos_ok]),
                      "unreadable_flagged": auroc(np.where(neg_ok, neg, np.inf),
                                                  np.where(pos_ok, pos, np.inf))}
        results[name] = row
    for info in scored.values():  # keep the record small: the figures, not every score
        info.pop("scores")
        info.pop("readable")
    return {"model": model_name, "n": n, "k": K, "sets": scored, "auroc": results,
            "calibration": calibration,
            "load_average": load.summary(), "machine": machine(),
            "command": f"python -m benchmarks.anomaly --part auroc --model {model_name} --n {n}"}


def part_speed(model_name: str, n: int) -> dict[str, Any]:
    import seqvae
    from seqvae.data import moses_path, read_strings

    model = seqvae.load(model_name)
    strings = read_strings(moses_path("test"))[:n]
    model.score(strings[:200], k=1)  # the training index built and cached before timing
    rows = []
    for k in (1, 32):
        with LoadMonitor(every=5.0) as load:
            start = time.perf_counter()
            model.score(strings, k=k, seed=0)
            seconds = time.perf_counter() - start
        rows.append({"k": k, "n": n, "seconds": seconds, "molecules_per_s": n / seconds,
                     "load_average": load.summary()})
    return {"model": model_name, "rows": rows, "machine": machine(),
            "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
            "command": f"python -m benchmarks.anomaly --part speed --model {model_name} --n {n}"}


def markdown() -> str:
    lines = ["# Anomaly detection and scoring speed", ""]
    path = RESULTS_DIR / f"{NAME}_auroc.json"
    if path.exists():
        r = json.loads(path.read_text())
        lines += [f"Model `{r['model']}`; {r['n']:,} molecules per set, standardised (stereo "
                  f"dropped), deduplicated, none from the MOSES training split; importance-"
                  f"weighted NLL with k = {r['k']}. Command: `{r['command']}`.", "",
                  "| set | source | read | used | model cannot read |", "|---|---|---:|---:|---:|"]
        for name, s in r["sets"].items():
            lines.append(f"| {name} | {s['source']} | {s['counts']['read']:,} | "
                         f"{s['counts']['used']:,} | {s['unreadable']:,} |")
        lines += ["", "AUROC of telling each set from MOSES test (over the molecules the model "
                  "reads; in brackets, unreadable molecules counted as flagged):", "",
                  "| set | " + " | ".join([*SCORES, f"{BASELINE} (fingerprint baseline)"]) + " |",
                  "|---" * (len(SCORES) + 2) + "|"]
        for name, row in r["auroc"].items():
            lines.append(f"| {name} | " + " | ".join(
                f"{row[s]['readable']:.3f} ({row[s]['unreadable_flagged']:.3f})"
                for s in (*SCORES, BASELINE)) + " |")
        lines.append("")
        for name, row in r["auroc"].items():
            best = max(SCORES, key=lambda s: row[s]["readable"])
            gap = row[best]["readable"] - row[BASELINE]["readable"]
            lines.append(f"- {name}: the best model score is {best} ({row[best]['readable']:.3f}); "
                         f"the fingerprint baseline {row[BASELINE]['readable']:.3f}; the model "
                         + ("beats" if gap > 0 else "does not beat")
                         + f" it by {abs(gap):.3f}.")
        c = r.get("calibration")
        if c:
            d = c["detector"]
            lines += ["", f"The threshold helper (`model.anomaly_detector(normal, fpr={d['fpr']})`"
                      f", score {d['score']}, k = {d['k']}) calibrated on {c['calibrated_on']}: "
                      f"threshold {d['threshold']:.3f}; share flagged (unreadable molecules "
                      "flagged too): " + ", ".join(f"{name} {share:.3f}"
                                                   for name, share in c["flagged"].items())
                      + f" (on MOSES test this is the false-positive rate, target {d['fpr']})."]
        lines += ["", f"Load: {load_text(r.get('load_average'))}.", ""]
    path = RESULTS_DIR / f"{NAME}_speed.json"
    if path.exists():
        r = json.loads(path.read_text())
        lines += ["## Scoring speed", "", f"`model.score` on {r['rows'][0]['n']:,} MOSES test "
                  f"molecules with every triage column (training index cached). Command: "
                  f"`{r['command']}`.", "", "| k | seconds | molecules/s | load |",
                  "|---:|---:|---:|---|"]
        for row in r["rows"]:
            lines.append(f"| {row['k']} | {row['seconds']:.1f} | {row['molecules_per_s']:.0f} | "
                         f"{load_text(row['load_average'])} |")
        lines += ["", "## Machine", "", machine_markdown(r["machine"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["auroc", "speed", "table"], required=True)
    parser.add_argument("--model", default="moses-smiles")
    parser.add_argument("--n", type=int, default=None)
    args = parser.parse_args()
    if args.part == "auroc":
        result = part_auroc(args.model, args.n or 2000)
    elif args.part == "speed":
        result = part_speed(args.model, args.n or 10_000)
    if args.part != "table":
        path = RESULTS_DIR / f"{NAME}_{args.part}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
    text = markdown()
    write_results(NAME, {"parts": [p.stem for p in RESULTS_DIR.glob(f"{NAME}_*.json")]}, text)
    print(text)


if __name__ == "__main__":
    main()
