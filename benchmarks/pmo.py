"""The PMO benchmark (Gao, Fu, Sun & Coley, "Sample Efficiency Matters", NeurIPS 2022) on its 20
RDKit-only tasks, for seqvae's optimisers, beside the published methods.

    python -m benchmarks.pmo --method reinvent                     # all tasks, seeds 0 1 2 3 5
    python -m benchmarks.pmo --method reinvent --tasks qed,median1 --seeds 0 --max-minutes 60
    python -m benchmarks.pmo --tune reinvent                       # its options, on two tasks
    python -m benchmarks.pmo --table                               # the report from the records

PMO's protocol (seqvae.search.latent.Oracle and seqvae.search.auc): at most --budget (10,000)
oracle calls per run, a call being a distinct valid molecule (canonical SMILES; a repeat or an
invalid string costs none); the AUC of the mean of the 10 best scores, logged every 100 calls,
from 0 at call 0, divided by the budget, held flat after an early stop; seeds 0, 1, 2, 3, 5;
one set of hyperparameters per method for every task. The oracles are seqvae's (seqvae.search
.pmo, equal to guacamol 0.5.5's; guacamol counts isomer atoms properly where PMO's TDC version
then read them from the SMILES text).

Each run (method, task, seed) is written to benchmarks/results/pmo/METHOD.json when it ends,
with its AUC top-10, top-1 and top-10 mean at the end, calls, wall time and its ten best
molecules; runs recorded are not run again, so the benchmark is split across sittings with
--max-minutes (no new run starts after that many minutes) and the parts merge. A run that was
interrupted starts again from scratch (its optimiser's state is not kept). --table writes
pmo.json / pmo.md (per-task mean +- std over seeds, the sum, the published rows beside), a bar
chart per task (pmo_auc.png) and the best molecule of each task (pmo_best.png).

--tune METHOD runs each option set of GRIDS[METHOD] on the two tasks PMO tuned on
(zaleplon_mpo, perindopril_mpo; seed 0, full budget; recorded in tune_METHOD.json); the set of
highest mean AUC there becomes the method's options in METHODS, for all 20 tasks.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS_DIR, LoadMonitor, load_text, machine, machine_markdown

ROOT = Path(__file__).resolve().parent.parent
RECORDS = RESULTS_DIR / "pmo"
RUNS = ROOT / "runs" / "pmo"
SEEDS = (0, 1, 2, 3, 5)
BUDGET = 10_000

# name -> (model, stages, what it is); a stage is (LatentSearch method, the call count it runs
# to (None: the budget), its options), and a later stage starts from the best codes and
# molecules found so far (start="best"). One set of options for all tasks.
Stage = tuple[str, int | None, dict[str, Any]]
METHODS: dict[str, tuple[str, list[Stage], str]] = {
    # options chosen by --tune reinvent (results/pmo.md)
    "reinvent": ("moses-smiles", [("reinvent", None, {"lr": 1e-3})],
                 "REINVENT's update on the shipped SMILES VAE's decoder, z ~ N(0, I)"),
    # options chosen by --tune ga (results/pmo.md): the best mean AUC on the two tuning tasks
    "ga": ("moses-smiles", [("ga", None, {"population": 50, "offspring": 50})],
           "a genetic algorithm on the shipped SMILES VAE's codes (seqvae.search.evolve)"),
    "ga-reinvent": ("moses-smiles", [("ga", 2000, {"population": 50, "offspring": 50}),
                                     ("reinvent", None, {"lr": 1e-3})],
                    "the latent GA for 2,000 calls, then REINVENT from its best codes, its "
                    "replay memory seeded with its best molecules"),
    "reinvent-lm": ("moses-charrnn", [("reinvent", None, {})],
                    "REINVENT itself, PMO's settings: its update on the shipped SMILES language "
                    "model (moses-charrnn, no latent), the prior a MOSES-trained GRU where "
                    "PMO's was trained on ZINC"),
    "prior": ("moses-smiles", [("prior", None, {"batch_size": 100})],
              "decoding N(0, I) codes of the shipped SMILES VAE: the baseline"),
}


# AUC top-10 of published methods, mean over 5 seeds (../shared/ANCHORS.md: the PMO authors'
# leaderboard data, pmo-benchmark.github.io Mol_Opt.xlsx, cut to 3 decimals)
PUBLISHED_COLUMNS = ("REINVENT", "Graph GA", "GP BO", "SMILES-VAE BO", "SELFIES-VAE BO")
PUBLISHED: dict[str, tuple[float, ...]] = {
    "albuterol_similarity": (.882, .838, .898, .489, .494),
    "amlodipine_mpo": (.635, .661, .583, .533, .516),
    "celecoxib_rediscovery": (.713, .630, .723, .354, .326),
    "deco_hop": (.666, .619, .629, .589, .579),
    "fexofenadine_mpo": (.784, .760, .722, .671, .670),
    "isomers_c7h8n2o2": (.852, .862, .680, .161, .325),
    "isomers_c9h10n2o2pf2cl": (.642, .719, .469, .084, .200),
    "median1": (.356, .294, .301, .202, .201),
    "median2": (.276, .273, .297, .195, .185),
    "mestranol_similarity": (.618, .579, .627, .399, .386),
    "osimertinib_mpo": (.837, .831, .787, .771, .765),
    "perindopril_mpo": (.537, .538, .493, .442, .429),
    "qed": (.941, .940, .937, .938, .936),
    "ranolazine_mpo": (.760, .728, .735, .457, .452),
    "scaffold_hop": (.560, .517, .548, .470, .455),
    "sitagliptin_mpo": (.021, .433, .186, .023, .084),
    "thiothixene_rediscovery": (.534, .479, .559, .317, .297),
    "troglitazone_rediscovery": (.441, .390, .410, .257, .243),
    "valsartan_smarts": (.178, .000, .000, .001, .001),
    "zaleplon_mpo": (.358, .346, .221, .039, .206),
}
PUBLISHED_SUMS = (11.603, 11.446, 10.818, 7.405, 7.760)  # as published, these 20 tasks
# the tasks whose oracle differs from the one PMO ran: a molecular-formula (isomer) term, whose
# atoms guacamol counts properly and PMO's TDC version then read from the SMILES text; the sum
# over the other 16 is the like-for-like comparison with the published rows
ISOMER_TASKS = ("isomers_c7h8n2o2", "isomers_c9h10n2o2pf2cl", "sitagliptin_mpo", "zaleplon_mpo")


def record_path(method: str, budget: int = BUDGET) -> Path:
    """A method's record; runs at another budget than PMO's (trials) go to a file of their own."""
    return RECORDS / (f"{method}.json" if budget == BUDGET else f"{method}_budget{budget}.json")


def load_record(method: str, budget: int = BUDGET) -> dict[str, Any]:
    path = record_path(method, budget)
    if path.is_file():
        return json.loads(path.read_text())
    model, stages, what = METHODS[method]
    return {"method": method, "model": model, "stages": json.loads(json.dumps(stages)),
            "what": what, "budget": budget, "runs": {}}


def run_one(method: str, task: str, seed: int, budget: int,
            options: dict[str, Any] | None = None, label: str | None = None) -> dict[str, Any]:
    """One PMO run: a fresh search of ``task`` by the method's stages (a one-stage method with
    ``options`` instead of its own, when given) and ``seed``."""
    import torch

    import seqvae
    from seqvae.search import LatentSearch
    from seqvae.search.auc import auc_top_k, oracle_scores
    from seqvae.search.objectives import pmo

    model, stages, _ = METHODS[method]
    if options is not None:
        assert len(stages) == 1, "options replace those of a one-stage method"
        stages = [(stages[0][0], stages[0][1], options)]
    # (method, hand-over count) pairs; at a trial budget below a hand-over, that stage is the last
    plan: list[tuple[str, int | None]] = []
    for name, until, _ in stages:
        plan.append((name, until if until is not None and until < budget else None))
        if plan[-1][1] is None:
            break
    stages = stages[:len(plan)]
    log = RUNS / (label or method) / task / f"seed{seed}.csv"
    if log.exists():  # an interrupted run: its optimiser's state is gone, so it starts again
        log.unlink()
    torch.manual_seed(seed)
    np.random.seed(seed)
    search = LatentSearch(seqvae.load(model), pmo(task), log=log)
    began = time.perf_counter()
    with LoadMonitor(every=10.0) as load:
        search.run_stages(plan, budget=budget, seed=seed,
                          options={name: given for name, _, given in stages if given})
    seconds = time.perf_counter() - began
    scores = oracle_scores(search.oracle)
    best = search.results().head(10)
    return {"task": task, "seed": seed, "auc_top10": auc_top_k(scores, budget=budget),
            "top1": float(scores.max()) if len(scores) else 0.0,
            "top10": float(np.sort(scores)[-10:].mean()) if len(scores) else 0.0,
            "calls": int(search.oracle.calls), "invalid": int(search.oracle.invalid),
            "seconds": round(seconds, 1), "reports": search.reports,
            "load_average": load.summary(),
            "best": [[s, float(v)] for s, v in zip(best["SMILES"], best["objective"])]}


def save_merged(record: dict[str, Any], path: Path) -> None:
    """Write the record, first taking in the runs another process (running other tasks of the
    same method beside this one) has written to the file since: the file is locked while it is
    read and written, so parts run side by side merge instead of overwriting each other."""
    import fcntl

    RECORDS.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            for key, result in json.loads(path.read_text())["runs"].items():
                record["runs"].setdefault(key, result)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(path)


def run_jobs(record: dict[str, Any], path: Path, jobs: list[tuple[str, str, Any]],
             max_minutes: float | None) -> None:
    """Run each (key, label, run) job whose key the record lacks, writing the record after
    each; none starts after ``max_minutes`` (the parts of a split benchmark merge)."""
    started = time.perf_counter()
    for key, label, job in jobs:
        if key in record["runs"]:
            continue
        if max_minutes is not None and time.perf_counter() - started > 60 * max_minutes:
            print(f"--max-minutes {max_minutes:g} reached; run again to go on")
            return
        result = job()
        record["runs"][key] = result
        record["machine"] = machine()
        save_merged(record, path)
        print(f"{label}: AUC top-10 {result['auc_top10']:.3f}, top-1 {result['top1']:.3f}, "
              f"{result['calls']} calls in {result['seconds']:.0f} s", flush=True)


def run(method: str, tasks: list[str], seeds: list[int], budget: int,
        max_minutes: float | None) -> dict[str, Any]:
    record = load_record(method, budget)
    model, stages, _ = METHODS[method]
    if (record["model"], record["stages"]) != (model, json.loads(json.dumps(stages))):
        raise SystemExit(f"{record_path(method, budget)} holds runs of other settings "
                         f"({record['model']}, {record['stages']}); move it away to run the "
                         "method as it is defined now")
    jobs = [(f"{task}/{seed}", f"{method} {task} seed {seed}",
             lambda task=task, seed=seed: run_one(method, task, seed, budget))
            for task in tasks for seed in seeds]
    run_jobs(record, record_path(method, budget), jobs, max_minutes)
    return record


# PMO's protocol allows tuning on at most two tasks: the two PMO itself tuned on
TUNE_TASKS = ("zaleplon_mpo", "perindopril_mpo")
TUNE_SEED = 0
# method -> the option sets tried (each complete: it replaces the method's options)
GRIDS: dict[str, list[dict[str, Any]]] = {
    "reinvent": [{}, {"lr": 1e-3}, {"sigma": 1000.0}, {"diversity_bucket": 25}],
    "ga": [{}, {"mutation": 0.1}, {"mutation": 0.4}, {"population": 50, "offspring": 50}],
}


def tune_path(method: str, budget: int = BUDGET) -> Path:
    return RECORDS / (f"tune_{method}.json" if budget == BUDGET
                      else f"tune_{method}_budget{budget}.json")


def tune(method: str, budget: int, max_minutes: float | None) -> dict[str, Any]:
    """Each option set of GRIDS[method] on TUNE_TASKS (seed TUNE_SEED, the full budget); the
    chosen set has the highest mean AUC top-10 over the two. Recorded per run, resumable."""
    path = tune_path(method, budget)
    record = json.loads(path.read_text()) if path.is_file() else {
        "method": method, "tasks": list(TUNE_TASKS), "seed": TUNE_SEED, "budget": budget,
        "runs": {}}
    jobs = [(f"{json.dumps(options, sort_keys=True)}|{task}", f"tune {method} {options} {task}",
             lambda options=options, task=task, i=i: {
                 **run_one(method, task, TUNE_SEED, budget, options, f"tune-{method}-{i}"),
                 "options": options})
            for i, options in enumerate(GRIDS[method]) for task in TUNE_TASKS]
    run_jobs(record, path, jobs, max_minutes)
    return record


def tune_markdown(record: dict[str, Any]) -> str:
    rows: dict[str, dict[str, float]] = {}
    for key, result in record["runs"].items():
        rows.setdefault(key.split("|")[0], {})[result["task"]] = result["auc_top10"]
    complete = {k: v for k, v in rows.items() if len(v) == len(record["tasks"])}
    lines = [f"## Tuning {record['method']} on {' and '.join(record['tasks'])}", "",
             f"Seed {record['seed']}, {record['budget']:,} calls per run; the option set of "
             "highest mean AUC top-10 over the two tasks is the method's for all 20. Command: "
             f"`python -m benchmarks.pmo --tune {record['method']}`.", "",
             "| options | " + " | ".join(record["tasks"]) + " | mean |",
             "|---|" + "---:|" * (len(record["tasks"]) + 1)]
    for options, aucs in rows.items():
        cells = [f"{aucs[t]:.3f}" if t in aucs else "not run" for t in record["tasks"]]
        mean = f"{np.mean(list(aucs.values())):.3f}" if options in complete else "-"
        lines.append(f"| `{options}` | " + " | ".join(cells) + f" | {mean} |")
    if complete:
        best = max(complete, key=lambda k: np.mean(list(complete[k].values())))
        lines += ["", f"Best of the {len(complete)} complete option set(s): `{best}`."]
    return "\n".join(lines)


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """Per task: AUC top-10 mean and std over the seeds run, top-1 / top-10 means, seconds."""
    tasks: dict[str, dict[str, Any]] = {}
    for result in record["runs"].values():
        tasks.setdefault(result["task"], {"runs": []})["runs"].append(result)
    for task, entry in tasks.items():
        runs = entry.pop("runs")
        aucs = np.array([r["auc_top10"] for r in runs])
        entry.update(seeds=sorted(r["seed"] for r in runs), auc_mean=float(aucs.mean()),
                     auc_std=float(aucs.std()), top1=float(np.mean([r["top1"] for r in runs])),
                     top10=float(np.mean([r["top10"] for r in runs])),
                     seconds=float(np.mean([r["seconds"] for r in runs])),
                     best=max((b for r in runs for b in r["best"]), key=lambda b: b[1]))
    complete = [t for t in PUBLISHED if t in tasks and len(tasks[t]["seeds"]) == len(SEEDS)]
    same = [t for t in complete if t not in ISOMER_TASKS]  # the oracle PMO ran
    seconds = [r["seconds"] for r in record["runs"].values()]
    loads = [r["load_average"]["mean"] for r in record["runs"].values()
             if r.get("load_average")]
    return {"tasks": tasks, "complete": complete, "runs": len(seconds),
            "seconds_median": float(np.median(seconds)) if seconds else None,
            "seconds_range": [float(min(seconds)), float(max(seconds))] if seconds else None,
            "hours": float(sum(seconds)) / 3600,
            "load_mean": float(np.mean(loads)) if loads else None,
            "sum": float(sum(tasks[t]["auc_mean"] for t in complete)),
            "published_sums_over_complete": [float(sum(PUBLISHED[t][i] for t in complete))
                                             for i in range(len(PUBLISHED_COLUMNS))],
            "same_oracle": same,
            "sum_same_oracle": float(sum(tasks[t]["auc_mean"] for t in same)),
            "published_sums_same_oracle": [float(sum(PUBLISHED[t][i] for t in same))
                                           for i in range(len(PUBLISHED_COLUMNS))]}


def markdown(records: dict[str, dict[str, Any]], summaries: dict[str, dict[str, Any]],
             budget: int = BUDGET) -> str:
    methods = list(records)
    lines = ["# PMO: sample-efficient molecular optimisation, 20 RDKit-only tasks", "",
             f"AUC of the top-10 mean against oracle calls, budget {budget:,} calls, mean +- std "
             f"over seeds {', '.join(map(str, SEEDS))} (fewer where a task's seeds are not all "
             "run yet: the count is given). Published rows: the PMO authors' leaderboard "
             "(../shared/ANCHORS.md). Command: `python -m benchmarks.pmo --method NAME`, then "
             "`--table`.", "", "Methods:", ""]
    for m in methods:
        r = records[m]
        stages = "; then ".join(f"`{name}` to {until or r['budget']:,} calls with options "
                                f"{json.dumps(options)}" for name, until, options in r["stages"])
        lines.append(f"- **{m}**: {r['what']} (model `{r['model']}`: {stages})")
    head = "| task | " + " | ".join(methods) + " | " + " | ".join(PUBLISHED_COLUMNS) + " |"
    lines += ["", head, "|---|" + "---:|" * (len(methods) + len(PUBLISHED_COLUMNS))]
    for task, published in PUBLISHED.items():
        cells = []
        for m in methods:
            t = summaries[m]["tasks"].get(task)
            cells.append("not run" if t is None else
                         f"{t['auc_mean']:.3f} +- {t['auc_std']:.3f} ({len(t['seeds'])})")
        lines.append(f"| {task} | " + " | ".join(cells) + " | "
                     + " | ".join(f"{v:.3f}" for v in published) + " |")
    lines.append("")
    for m in methods:
        s = summaries[m]
        n = len(s["complete"])
        if not n:
            lines.append(f"- {m}: no task has all {len(SEEDS)} seeds yet.")
            continue
        peers = ", ".join(f"{c} {v:.3f}" for c, v in zip(PUBLISHED_COLUMNS,
                                                           s["published_sums_over_complete"]))
        beaten = [c for c, v in zip(PUBLISHED_COLUMNS, s["published_sums_over_complete"])
                  if s["sum"] > v]
        lines.append(f"- {m}: sum over the {n} task(s) with every seed {s['sum']:.3f}; the "
                     f"published methods on the same tasks: {peers}. Above: "
                     + (", ".join(beaten) if beaten else "none") + "."
                     + (f" All 20 tasks: {s['sum']:.3f} against REINVENT's "
                        f"{PUBLISHED_SUMS[0]:.3f}, goal "
                        + ("met" if s["sum"] > PUBLISHED_SUMS[0] else "not met") + "."
                        if n == len(PUBLISHED) else ""))
        if s["same_oracle"]:
            same = s["published_sums_same_oracle"]
            ahead = [c for c, v in zip(PUBLISHED_COLUMNS, same) if s["sum_same_oracle"] > v]
            lines.append(
                f"  Like for like, over the {len(s['same_oracle'])} of them whose oracle is the "
                f"one PMO ran (not the isomer-based {', '.join(ISOMER_TASKS)}): "
                f"{s['sum_same_oracle']:.3f} against "
                + ", ".join(f"{c} {v:.3f}" for c, v in zip(PUBLISHED_COLUMNS, same))
                + ". Above: " + (", ".join(ahead) if ahead else "none") + ".")
        wins = [t for t in s["complete"] if s["tasks"][t]["auc_mean"] > PUBLISHED[t][0]]
        losses = [t for t in s["complete"] if t not in wins]
        lines.append(f"  Per task against REINVENT: above on {len(wins)} ("
                     + (", ".join(wins) or "none") + "), at or below on " + f"{len(losses)} ("
                     + (", ".join(losses) or "none") + ").")
    for m in methods:
        s = summaries[m]
        if s["runs"]:
            load = ("" if s["load_mean"] is None else
                    f", the 1-minute load average {s['load_mean']:.2f} on average while they ran")
            lines.append(f"- {m}, wall time per run: median {s['seconds_median']:.0f} s "
                         f"({s['seconds_range'][0]:.0f} to {s['seconds_range'][1]:.0f} s) over "
                         f"{s['runs']} run(s), {s['hours']:.1f} hours in all{load}.")
    lines += ["", "Per run at the end (means over the seeds run) and wall time per run:", "",
              "| method | task | top-1 | top-10 | seconds per run | best molecule |",
              "|---|---|---:|---:|---:|---|"]
    for m in methods:
        for task, t in sorted(summaries[m]["tasks"].items()):
            lines.append(f"| {m} | {task} | {t['top1']:.3f} | {t['top10']:.3f} | "
                         f"{t['seconds']:.0f} | `{t['best'][0]}` ({t['best'][1]:.3f}) |")
    loads = [r.get("load_average") for rec in records.values() for r in rec["runs"].values()]
    loads = [x for x in loads if x]
    if loads:
        mean = float(np.mean([x["mean"] for x in loads]))
        lines += ["", f"1-minute load average while runs ran: {mean:.2f} on average over "
                  f"{len(loads)} runs (the last: {load_text(loads[-1])})."]
    models = sorted({r["model"] for r in records.values()})
    threads = sorted({r["machine"]["torch_threads"] for r in records.values()
                      if r.get("machine")}) or ["an unrecorded number of"]
    lines += ["", "### Where this differs from PMO", "",
              "- Oracles: seqvae's, written on RDKit and equal to guacamol 0.5.5's "
              "(tests/test_pmo_oracles.py). On the four isomer-based tasks guacamol counts the "
              "atoms of the molecular formula properly, where the TDC version PMO ran read them "
              "from the SMILES text: those four are scored by another function than the "
              "published rows, hence the like-for-like sums over the other 16.",
              "- Prior: the models (" + ", ".join(f"`{m}`" for m in models) + ") were trained "
              "on the MOSES training split; PMO's REINVENT prior and VAEs were trained on ZINC.",
              "- Tuning: each method's option sets were tried on zaleplon_mpo and perindopril_mpo "
              "with seed 0 only, at the full budget; the three classifier oracles (DRD2, GSK3B, "
              "JNK3) are left out (their models are downloads).",
              "- Hardware: the published rows come from the PMO authors' runs; AUC counts oracle "
              "calls, not time, so they compare across machines; the wall times are this "
              "machine's, with " + " or ".join(map(str, threads)) + " torch thread(s) per run "
              "as the records state."]
    last = next((r.get("machine") for r in reversed(list(records.values())) if r.get("machine")),
                None)
    if last:
        lines += ["", "### Machine", "", machine_markdown(last)]
    return "\n".join(lines)


def pictures(summaries: dict[str, dict[str, Any]]) -> list[Path]:
    """pmo_auc.png (AUC per task, ours beside the published) and pmo_best.png (each task's best
    molecule of the first method)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqvae.chem import molecule_grid

    tasks = list(PUBLISHED)
    series = [(m, [s["tasks"].get(t, {}).get("auc_mean", np.nan) for t in tasks])
              for m, s in summaries.items()]
    series += [(c, [PUBLISHED[t][i] for t in tasks]) for i, c in enumerate(PUBLISHED_COLUMNS)
               if c in ("REINVENT", "Graph GA", "SMILES-VAE BO")]
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series):
        ax.bar(np.arange(len(tasks)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2)
    ax.set_xticklabels(tasks, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("AUC top-10")
    ax.set_title(f"PMO, {BUDGET:,} oracle calls")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = [RESULTS_DIR / "pmo_auc.png"]
    fig.savefig(out[0], dpi=110)
    plt.close(fig)
    first = next(iter(summaries.values()), None)
    if first and first["tasks"]:
        best = [(t, first["tasks"][t]["best"]) for t in tasks if t in first["tasks"]]
        out.append(molecule_grid([b[0] for _, b in best], RESULTS_DIR / "pmo_best.png",
                                 legends=[f"{t} {b[1]:.3f}" for t, b in best], mols_per_row=5))
    return out


def table(methods: list[str], budget: int = BUDGET) -> str:
    """The report of the methods' records and tuning; written to pmo.md / pmo.json with the
    pictures at PMO's budget, only printed for trial budgets."""
    records = {m: load_record(m, budget) for m in methods if record_path(m, budget).is_file()}
    summaries = {m: summary(r) for m, r in records.items()}
    parts = [markdown(records, summaries, budget)] if records else []
    parts += [tune_markdown(json.loads(tune_path(m, budget).read_text())) for m in GRIDS
              if tune_path(m, budget).is_file()]
    if not parts:
        return f"no PMO records at budget {budget} in {RECORDS}"
    text = "\n\n".join(parts)
    if budget == BUDGET:
        (RESULTS_DIR / "pmo.json").write_text(json.dumps(summaries, indent=1) + "\n")
        (RESULTS_DIR / "pmo.md").write_text(text + "\n")
        if records:
            pictures(summaries)
    return text


def main() -> None:
    from seqvae.search.pmo import TASKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", choices=sorted(METHODS))
    parser.add_argument("--tasks", default="all", help="comma-separated PMO tasks (default all)")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no new run after this many minutes")
    parser.add_argument("--tune", choices=sorted(GRIDS),
                        help=f"try the method's option sets on {' and '.join(TUNE_TASKS)}")
    parser.add_argument("--table", action="store_true", help="write pmo.md from the records")
    args = parser.parse_args()
    tasks = sorted(TASKS) if args.tasks == "all" else [t.strip() for t in args.tasks.split(",")]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown PMO task(s) {unknown}; choose from {', '.join(sorted(TASKS))}")
    if args.tune:
        tune(args.tune, args.budget, args.max_minutes)
    if args.method:
        run(args.method, tasks, [int(s) for s in args.seeds.split(",")], args.budget,
            args.max_minutes)
    if args.table or args.method or args.tune:
        print(table(list(METHODS), args.budget))


if __name__ == "__main__":
    main()
