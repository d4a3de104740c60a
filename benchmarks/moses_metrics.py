"""seqvae.metrics against molsets' get_all_metrics: the same numbers, and how long each takes.

    python -m benchmarks.moses_metrics --set moses --sizes 1000,2000,10000,30000
    python -m benchmarks.moses_metrics --set moses --sizes 30000 --repeats 1   # one part

`moses`: the first N rows of the MOSES training split, all valid, the heaviest load per
sample. `model`: the first N of 30,000 samples (seed 0) from the run
`benchmarks/train_default.py` trains (runs/benchmarks/train_default_smiles), invalid ones
included, or from --run.

Each measurement runs in its own fresh process, one after the other, and times the one call:
- seqvae warm: `molecular_metrics(samples, "moses")` with its reference cache built;
- seqvae cold: the same call with an empty cache, so it builds the cache first;
- molsets: `get_all_metrics(samples, n_jobs=J)` for each J of --molsets-jobs, from molsets'
  installed code (benchmarks/molsets_metrics.py).
Building the cache alone (the one-time cost) is timed once per invocation. Each measurement is
repeated --repeats times (the cold one --cold-repeats times), interleaved, and the medians are
reported. The machine may be shared: the 1-minute load average is recorded at the start and end
of every timed call and reported. Every metric molsets reports is compared with seqvae's.

Sizes run as separate parts merge into benchmarks/results/moses_metrics.{json,md}; the report
is written from all the measurements the JSON holds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from collections.abc import Callable
from typing import Any

from benchmarks.common import RESULTS_DIR, machine, machine_markdown, peak_rss_mib, write_results

RUN = Path("runs/benchmarks/train_default_smiles")
WORK = Path("runs/moses_metrics")
N_MODEL = 30_000  # samples drawn once from the model; each size takes the first N of them
TOLERANCE = 1e-6  # the agreement the tests require of every metric molsets reports
SCHEMA = 2  # what the JSON holds; results of another schema are not merged


def make_samples(which: str, n: int, run: Path) -> Path:
    """The CSV (column SMILES) of the first n samples of a set, written once."""
    import pandas as pd

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{which}_{n}.csv"
    if path.exists():
        return path
    if which == "model":
        full = WORK / f"model_{N_MODEL}.csv"
        if not full.exists():
            import seqvae
            if not run.exists():
                sys.exit(f"{run} is missing: train it with python -m benchmarks.train_default "
                         "--representation smiles, or pass --run")
            table = seqvae.load(run).sample(N_MODEL, seed=0, progress=True)
            # the strings as decoded, invalid ones included (the SMILES column is canonical
            # only for valid samples and keeps the raw decoding otherwise)
            pd.DataFrame({"SMILES": table["SMILES"].fillna("")}).to_csv(full, index=False)
        if n > N_MODEL:
            sys.exit(f"the model set has {N_MODEL} samples")
        table = pd.read_csv(full, keep_default_na=False, nrows=n)
    else:
        from seqvae.data import moses_path
        table = pd.read_csv(moses_path("train"), nrows=n)
    table.to_csv(path, index=False)
    return path


def worker(tool: str, samples: Path, out: Path) -> None:
    """One measurement in this (fresh) process: the call alone is timed."""
    import pandas as pd

    warnings.filterwarnings("ignore")
    gen = list(pd.read_csv(samples, keep_default_na=False)["SMILES"])
    if tool == "build":
        from seqvae.metrics.reference import load_reference
        call = lambda: load_reference("moses", progress=False)  # noqa: E731
    elif tool.startswith("seqvae"):
        from seqvae.metrics import molecular_metrics
        call = lambda: molecular_metrics(gen, "moses", progress=False)  # noqa: E731
    else:
        from benchmarks.molsets_metrics import import_molsets_metrics
        get_all_metrics = import_molsets_metrics().get_all_metrics
        n_jobs = int(tool.split("_")[-1])
        call = lambda: get_all_metrics(gen, n_jobs=n_jobs)  # noqa: E731
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    load_end = os.getloadavg()[0]
    metrics = {} if tool == "build" else {k: float(v) for k, v in result.items()}
    out.write_text(json.dumps({"seconds": seconds, "load_start": load_start, "load_end": load_end,
                               "peak_rss_mib": peak_rss_mib(), "metrics": metrics}))


def run_worker(tool: str, samples: Path, cache: Path) -> dict[str, Any]:
    """A measurement in a fresh process whose seqvae cache is `cache`."""
    out = WORK / f"{tool}.out.json"
    env = {**os.environ, "SEQVAE_CACHE": str(cache.resolve())}
    subprocess.run([sys.executable, "-m", "benchmarks.moses_metrics", "--worker", tool,
                    "--samples", str(samples), "--out", str(out)], check=True, env=env)
    return json.loads(out.read_text())


def fresh_cache(name: str) -> Path:
    path = WORK / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def measure(which: str, sizes: list[int], repeats: int, cold_repeats: int,
            molsets_jobs: list[int], run: Path, result: dict[str, Any],
            save: Callable[[], None]) -> None:
    """Measure each size and merge it into result (one set's entry of the JSON), saving after
    each, so a long part that stops keeps the sizes it finished."""
    warm_cache = fresh_cache("cache_warm")
    smallest = make_samples(which, min(sizes), run)
    print(f"{which}: building the reference cache ...", flush=True)
    build = run_worker("build", smallest, warm_cache)
    build.pop("metrics")
    result.setdefault("reference_build", []).append(build)
    print(f"  {build['seconds']:.1f} s", flush=True)
    for n in sizes:
        samples = make_samples(which, n, run)
        entry = {"n": n, "samples": str(samples), "runs": {}, "metrics": {}}
        tools = ["seqvae", "seqvae_cold", *(f"molsets_{j}" for j in molsets_jobs)]
        for repeat in range(repeats):
            for tool in tools:
                if tool == "seqvae_cold" and repeat >= cold_repeats:
                    continue
                cache = fresh_cache("cache_cold") if tool == "seqvae_cold" else warm_cache
                print(f"{which} {n}: {tool} ({repeat + 1}/{repeats}) ...", flush=True)
                measured = run_worker(tool, samples, cache)
                metrics = measured.pop("metrics")
                entry["metrics"].setdefault(tool, metrics)
                entry["runs"].setdefault(tool, []).append(measured)
                print(f"  {measured['seconds']:.1f} s (load {measured['load_start']:.2f} -> "
                      f"{measured['load_end']:.2f})", flush=True)
        shutil.rmtree(WORK / "cache_cold", ignore_errors=True)
        result.setdefault("sizes", {})[str(n)] = entry
        save()


# -- the report: every sentence from the measurements ---------------------------------------------

def median_seconds(runs: list[dict[str, Any]]) -> float:
    return statistics.median(r["seconds"] for r in runs)


def paired_ratio(runs: dict[str, list[dict[str, Any]]], tool: str, ours: str = "seqvae") -> float:
    """The median over repeats of tool's time over ours in the same repeat: the two ran one
    after the other, under about the same load, so a busy spell that slows one repeat of both
    does not skew the ratio as it can a ratio of medians."""
    return statistics.median(t["seconds"] / o["seconds"] for o, t in zip(runs[ours], runs[tool]))


def differences(entry: dict[str, Any]) -> dict[str, float]:
    """seqvae minus molsets for every metric molsets reports (its first n_jobs measured)."""
    ours = entry["metrics"]["seqvae"]
    molsets = [t for t in entry["metrics"] if t.startswith("molsets")]
    theirs = entry["metrics"][molsets[0]]
    return {k: ours[k] - theirs[k] for k in theirs}


def _loads(runs: list[dict[str, Any]]) -> list[float]:
    return [x for r in runs for x in (r["load_start"], r["load_end"])]


def _fmt_n(n: int | str) -> str:
    return f"{int(n):,}"


def markdown(results: dict[str, Any]) -> str:
    lines = ["# seqvae.metrics vs molsets' get_all_metrics", "",
             "`python -m benchmarks.moses_metrics --set moses --sizes ...`: the full MOSES metric "
             "set, each tool timed in a fresh process around the one call, one after the other, "
             "interleaved; the table gives medians over the repeats, and each speed-up is the median of the ratios within a repeat (the two calls ran one after the other). seqvae also computes "
             "GuacaMol's KL and FCD scores and the property distances to the scaffold-test split "
             "inside its time; molsets computes neither. seqvae warm: its reference cache built; "
             "cold: an empty cache, built inside the call.", ""]
    all_loads: list[float] = []
    for which, data in results["sets"].items():
        sizes = sorted(data.get("sizes", {}).values(), key=lambda e: e["n"])
        if not sizes:
            continue
        jobs = sorted({t for e in sizes for t in e["runs"] if t.startswith("molsets")})
        lines += [f"## {which}", ""]
        header = ["samples", "valid", "seqvae warm s", "seqvae cold s"]
        header += [f"molsets n_jobs={t.split('_')[1]} s" for t in jobs]
        header += [f"speed-up warm vs n_jobs={t.split('_')[1]} (paired)" for t in jobs]
        header += [f"speed-up cold vs n_jobs={jobs[0].split('_')[1]} (paired)"]
        header += ["largest abs. difference", "repeats", "load avg (1 min) min-max",
                   "seqvae peak RSS MiB", "molsets peak RSS MiB"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        ratios: dict[str, list[tuple[int, float]]] = {t: [] for t in jobs}
        beyond: list[tuple[str, int, float]] = []
        largest: list[tuple[float, int]] = []
        for e in sizes:
            runs = e["runs"]
            warm = median_seconds(runs["seqvae"])
            cold = median_seconds(runs["seqvae_cold"]) if "seqvae_cold" in runs else float("nan")
            diff = differences(e)
            worst = max(abs(v) for v in diff.values())
            largest.append((worst, e["n"]))
            beyond += [(k, e["n"], v) for k, v in diff.items() if abs(v) > TOLERANCE]
            loads = [x for rs in runs.values() for x in _loads(rs)]
            all_loads += loads
            row = [_fmt_n(e["n"]), f"{e['metrics']['seqvae']['valid']:.3f}", f"{warm:.1f}",
                   f"{cold:.1f}"]
            row += [f"{median_seconds(runs[t]):.1f}" if t in runs else "-" for t in jobs]
            for t in jobs:
                if t in runs:
                    ratios[t].append((e["n"], paired_ratio(runs, t)))
                    row.append(f"{ratios[t][-1][1]:.2f}x")
                else:
                    row.append("-")
            row.append(f"{paired_ratio(runs, jobs[0], 'seqvae_cold'):.2f}x" if jobs[0] in runs
                       and not math.isnan(cold) else "-")
            row += [f"{worst:.1e}", str(len(runs["seqvae"])), f"{min(loads):.2f}-{max(loads):.2f}",
                    f"{max(r['peak_rss_mib'] for r in runs['seqvae']):.0f}",
                    f"{max(r['peak_rss_mib'] for t in jobs if t in runs for r in runs[t]):.0f}"]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        for t, pairs in ratios.items():
            if not pairs:
                continue
            low, high = min(pairs, key=lambda p: p[1]), max(pairs, key=lambda p: p[1])
            lines.append(f"With its cache warm, seqvae was {low[1]:.2f} times as fast as molsets "
                         f"with n_jobs={t.split('_')[1]} at {_fmt_n(low[0])} samples (the "
                         f"smallest ratio measured) and {high[1]:.2f} times at "
                         f"{_fmt_n(high[0])} (the largest; each the median over repeats of "
                         "molsets' time over seqvae's in the same repeat): "
                         + ("at least twice as fast at every size measured."
                            if low[1] >= 2 else "not twice as fast at every size measured."))
        if beyond:
            named = ", ".join(f"{k} at {_fmt_n(n)} samples ({v:+.2e})" for k, n, v in beyond)
            sentence = f"Metrics that differ from molsets' by more than {TOLERANCE:g}: {named}."
            if all(k.startswith("Frag/") for k, _, _ in beyond):
                sentence += (" Only Frag: molsets hands int64 count vectors to scipy's cosine, "
                             "whose product of the two squared norms overflows int64 for large "
                             "sample sets; seqvae computes the cosine in float64 "
                             "(seqvae.metrics.molecules.cosine_similarity).")
            lines.append(sentence)
        else:
            worst, at = max(largest)
            lines.append(f"Every metric molsets reports agrees with seqvae's to {TOLERANCE:g} at "
                         f"every size (the largest difference, {worst:.1e}, at {_fmt_n(at)} "
                         "samples).")
        builds = data.get("reference_build", [])
        if builds:
            times = [b["seconds"] for b in builds]
            all_loads += _loads(builds)
            lines.append(f"Building seqvae's MOSES reference cache from nothing (molsets' "
                         f"statistics converted, GuacaMol's 10,000-molecule reference computed), "
                         f"once per machine: median {statistics.median(times):.1f} s over "
                         f"{len(times)} build{'s' if len(times) != 1 else ''} "
                         f"({', '.join(f'{t:.1f}' for t in times)} s).")
        lines.append("")
        for e in sizes:
            s = e["metrics"]["seqvae"]
            molsets = [t for t in e["metrics"] if t.startswith("molsets")]
            m = e["metrics"][molsets[0]]
            lines += [f"### {which}, {_fmt_n(e['n'])} samples: every metric", "",
                      f"| metric | seqvae | molsets (n_jobs={molsets[0].split('_')[1]}) |",
                      "|---|---|---|"]
            for key, value in s.items():
                lines.append(f"| {key} | {value:.6g} | {m[key]:.6g} |" if key in m
                             else f"| {key} | {value:.6g} | - |")
            lines.append("")
    if all_loads:
        lines += [f"The machine was shared while these ran: the 1-minute load average, read at "
                  f"the start and end of every timed call, was {min(all_loads):.2f} to "
                  f"{max(all_loads):.2f} (median {statistics.median(all_loads):.2f}) on "
                  f"{results['machine']['cpus_usable']} usable cores.", ""]
    lines += ["## Machine", "", machine_markdown(results["machine"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=["model", "moses"], default="moses")
    parser.add_argument("--sizes", default="1000,2000,10000,30000",
                        help="comma-separated sample counts; each merges into the results")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold-repeats", type=int, default=1)
    parser.add_argument("--molsets-jobs", default="2", help="comma-separated n_jobs for molsets")
    parser.add_argument("--run", type=Path, default=RUN)
    parser.add_argument("--report-only", action="store_true",
                        help="write the Markdown from the JSON without measuring")
    parser.add_argument("--worker")
    parser.add_argument("--samples", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.samples, args.out)
        return
    path = RESULTS_DIR / "moses_metrics.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if results.get("schema") != SCHEMA:  # an older layout: its numbers are not comparable
        results = {"schema": SCHEMA, "sets": {}}
    if not args.report_only:
        sizes = [int(s) for s in args.sizes.split(",")]
        jobs = [int(j) for j in args.molsets_jobs.split(",")]
        entry = results["sets"].setdefault(args.set, {})
        results["machine"] = machine()
        save = lambda: write_results("moses_metrics", results, markdown(results))  # noqa: E731
        measure(args.set, sizes, args.repeats, args.cold_repeats, jobs, args.run, entry, save)
    write_results("moses_metrics", results, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
