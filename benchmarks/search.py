"""Latent property search with the shipped MOSES SELFIES VAE on this CPU, against the published
latent-optimisation results of ../shared/ANCHORS.md.

Parts (each writes benchmarks/results/search_<part>.json; ``table`` builds search.md and the
pictures from whatever parts exist):

    python -m benchmarks.search --part head             # property head on MOSES train codes
    python -m benchmarks.search --part plogp --method prior     # 5 seeds x 500 oracle calls
    python -m benchmarks.search --part plogp --method gradient
    python -m benchmarks.search --part plogp --method gradient_free
    python -m benchmarks.search --part plogp --method gradient_bo
    python -m benchmarks.search --part plogp --method bo
    python -m benchmarks.search --part plogp38 --method prior   # (and the other methods)
    python -m benchmarks.search --part qed --method prior       # (and the other methods)
    python -m benchmarks.search --part constrained      # 800 lowest-plogp MOSES test seeds
    python -m benchmarks.search --part timing           # each optimiser once, load recorded
    python -m benchmarks.search --part table

plogp is the z-scored penalized logP of JT-VAE (ZINC250k constants; see
seqvae.search.objectives); plogp38 the same on molecules of at most 38 heavy atoms. A part
run with --seeds 0,1 and later --seeds 2,3,4 is merged into one result. A quick trial of the pipeline: add --quick (2 seeds, 40 calls,
a small head, 20 constrained seeds); its results go to search_quick_*.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import (RESULTS_DIR, LoadMonitor, load_text, machine, machines_markdown,
                               peak_rss_mib)

MODEL = "moses-selfies"
RUNS = Path("runs/search")
HEAD_PROPERTIES = ["plogp", "qed", "logp", "sa"]
# gradient_free: gradient ascent without the prior penalty, z anywhere in a ball of radius 24
# (about the [-3, 3]^64 box BO searches), to show what leaving the prior's mass finds
# gradient_bo: gradient_free for the first 150 calls, then BO from the codes of the 20 best
# molecules it found (LatentSearch start="best") for the rest
METHODS = ("prior", "gradient", "gradient_free", "bo", "gradient_bo")
# the objectives: plogp38 is plogp on molecules of at most 38 heavy atoms (ZINC250k's largest
# molecule, the size JT-VAE's decoder works in), since long chains game unbounded plogp
OBJECTIVES = ("plogp", "plogp38", "qed")
MAX_ATOMS = 38
# ../shared/ANCHORS.md, "Molecules: latent-space property optimisation"
PUBLISHED = [
    ("JT-VAE + sparse-GP BO", "10 seeds x 5 rounds", "5.30 / 4.93 / 4.49", "z-scored",
     "recomputed from wengong-jin/icml18-jtnn bo/results"),
    ("Chemical VAE + BO", "same protocol", "1.98 / 1.42 / 1.19", "z-scored", "JT-VAE paper (unverified)"),
    ("SD-VAE + BO", "same protocol", "4.04 / 3.50 / 2.96", "z-scored", "JT-VAE paper (unverified)"),
    ("JT-VAE, weighted retraining", "500 oracle calls",
     "best per seed 19.66 +- 6.00; top-3 27.84 / 27.59 / 27.21", "z-scored",
     "Tripp et al. 2020 results files"),
    ("LIMO (gradient ascent on z)", "-", "about 10.5 / 9.69 / 9.60; QED about 0.947", "raw",
     "LIMO paper (unverified)"),
]
JTVAE_TOP = (5.30, 4.93, 4.49)
QED_GOAL = 0.947
# options of each optimiser in this benchmark
OPTIONS: dict[str, dict[str, Any]] = {
    "prior": {"batch_size": 100},
    "gradient": {"n_starts": 20, "steps": 100, "lr": 0.05, "prior_weight": 0.1,
                 "decode_every": 5},
    "gradient_free": {"n_starts": 20, "steps": 100, "lr": 0.2, "prior_weight": 0.0,
                      "max_norm": 24.0, "decode_every": 5},
    "bo": {"n_init": 50, "q": 10},
    "gradient_bo": {"gradient_calls": 150, "bo": {"n_init": 20, "q": 10, "start": "best"}},
    # 16 paths per seed from its code jittered by 0.2 * N(0, I): on 60 of the seeds, one path
    # per seed succeeded for 23% of them at delta 0.4, 16 paths for 57%
    "constrained": {"lr": 0.03, "prior_weight": 0.1, "paths": 16, "noise": 0.2,
                    "decode_every": 2},
}


def _name(part: str, quick: bool) -> str:
    return f"search_quick_{part}" if quick else f"search_{part}"


def _save(name: str, record: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=float) + "\n")
    return path


def _load_head(quick: bool):
    from seqvae.search import PropertyHead
    folder = RUNS / ("head_quick" if quick else "head")
    if not (folder / "head.json").exists():
        raise SystemExit(f"no property head in {folder}: run --part head{' --quick' if quick else ''} first")
    return PropertyHead.load(folder)


def run_head(quick: bool, n: int, seed: int) -> dict[str, Any]:
    """Fit the property head on the codes of n molecules of the MOSES training split."""
    from seqvae import load
    from seqvae.data import read_strings, resolve_data
    from seqvae.search import fit_property_head

    vae = load(MODEL)
    try:
        source = "moses:train"
        pool = read_strings(resolve_data(source))
    except Exception:  # molsets not installed: the shipped 100,000-molecule subset
        source = "default:moses_train"
        pool = read_strings(resolve_data(source))
    rng = np.random.default_rng(seed)
    smiles = [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]
    with LoadMonitor() as load:
        start = time.perf_counter()
        head, report = fit_property_head(vae, smiles, properties=HEAD_PROPERTIES, seed=seed,
                                         epochs=100 if not quick else 20, progress=True)
        seconds = time.perf_counter() - start
    head.save(RUNS / ("head_quick" if quick else "head"), report)
    return {"part": "head", "model": MODEL, "source": source, "n_molecules": len(smiles),
            "properties": HEAD_PROPERTIES, "report": report.to_dict(), "seconds": seconds,
            "load_average": load.summary(),
            "command": f"python -m benchmarks.search --part head{' --quick' if quick else ''}"}


def _run(search: Any, method: str, budget: int, seed: int, options: dict[str, Any]) -> Any:
    """One benchmark optimiser: a LatentSearch method, or gradient_bo's hand-over."""
    if method == "gradient_bo":
        search.run("gradient", budget=min(options["gradient_calls"], budget), seed=seed,
                   **OPTIONS["gradient_free"])
        return search.run("bo", budget=budget, seed=seed, **options["bo"])
    return search.run(method.split("_")[0], budget=budget, seed=seed, **options)


def _objective(name: str):
    from seqvae.search import objectives
    if name == "plogp38":
        return objectives.get("plogp").subject_to(objectives.heavy_atoms(), maximum=MAX_ATOMS)
    return objectives.get(name)


def run_search(objective_name: str, method: str, seeds: list[int], budget: int,
               quick: bool) -> dict[str, Any]:
    """One optimiser on one objective, one search per seed; best molecules and curves."""
    from seqvae import load
    from seqvae.search import LatentSearch

    vae = load(MODEL)
    objective = _objective(objective_name)
    head = _load_head(quick) if method.startswith("gradient") else None
    options = dict(OPTIONS[method])
    if quick:  # a trial of the pipeline, not a result
        options.update({"prior": {}, "gradient": {"n_starts": 5, "steps": 20},
                        "gradient_free": {"n_starts": 5, "steps": 20},
                        "gradient_bo": {"gradient_calls": 15},
                        "bo": {"n_init": 10, "q": 5, "num_restarts": 2,
                               "raw_samples": 64}}[method])
    runs, found = [], []
    for seed in seeds:
        log = RUNS / ("quick" if quick else "logs") / f"{objective_name}_{method}_{seed}.csv"
        if log.exists():
            log.unlink()
        search = LatentSearch(vae, objective, head=head, log=log, progress=True)
        with LoadMonitor() as load:
            start = time.perf_counter()
            table = _run(search, method, budget, seed, options)
            seconds = time.perf_counter() - start
        curve = search.best_so_far()
        best = table.iloc[0]
        runs.append({"seed": seed, "best": float(best["objective"]), "best_smiles": best["SMILES"],
                     "best_sa": float(best["sa"]), "calls": search.oracle.calls,
                     "invalid_decodes": search.oracle.invalid, "seconds": seconds,
                     "load_average": load.summary(), "curve": curve["best"].tolist()})
        top = table.head(10).drop(columns="z").assign(seed=seed)
        found.append(top)
    record = {"part": objective_name, "method": method, "model": MODEL, "budget": budget,
              "options": options, "objective": objective.describe(), "runs": runs,
              "top": pd.concat(found).to_dict(orient="records")}
    name = _name(f"{objective_name}_{method}", quick)
    return _merge_runs(RESULTS_DIR / f"{name}.json", record, quick)


def _merge_runs(path: Path, record: dict[str, Any], quick: bool) -> dict[str, Any]:
    """Add this invocation's seeds to those already in the part's JSON (same budget and
    options; a seed run again replaces its old run), so seeds can be run in separate
    sessions: --seeds 0,1 then --seeds 2,3,4."""
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("budget") == record["budget"] and old.get("options") == record["options"]:
            mine = {r["seed"] for r in record["runs"]}
            record["runs"] = [r for r in old["runs"] if r["seed"] not in mine] + record["runs"]
            record["top"] = [t for t in old["top"] if t["seed"] not in mine] + record["top"]
    record["runs"].sort(key=lambda r: r["seed"])
    record["seeds"] = [r["seed"] for r in record["runs"]]
    top = sorted(record["top"], key=lambda t: -t["objective"])
    seen: set[str] = set()
    record["top"] = [t for t in top if not (t["SMILES"] in seen or seen.add(t["SMILES"]))][:10]
    bests = np.array([r["best"] for r in record["runs"]])
    record.update(best_mean=float(bests.mean()), best_std=float(bests.std()),
                  seconds_mean=float(np.mean([r["seconds"] for r in record["runs"]])),
                  calls_mean=float(np.mean([r["calls"] for r in record["runs"]])),
                  peak_rss_mib=peak_rss_mib(),
                  command=(f"python -m benchmarks.search --part {record['part']} --method "
                           f"{record['method']} --seeds {','.join(map(str, record['seeds']))}"
                           + (" --quick" if quick else "")))
    return record


def run_timing(budget: int, quick: bool) -> dict[str, Any]:
    """Wall time and oracle calls of each optimiser, one search each (seed 0) on plogp and
    qed, one after another, with the 1-minute load average sampled during each search (what
    else the CPUs were doing is recorded, not assumed)."""
    from seqvae import load
    from seqvae.search import LatentSearch

    vae = load(MODEL)
    head = _load_head(quick)
    rows = []
    for objective_name in ("plogp", "qed"):
        for method in METHODS:
            options = dict(OPTIONS[method])
            search = LatentSearch(vae, _objective(objective_name), head=head, progress=True)
            with LoadMonitor(every=2.0) as load:
                start = time.perf_counter()
                _run(search, method, budget, 0, options)
                seconds = time.perf_counter() - start
            rows.append({"objective": objective_name, "method": method, "seconds": seconds,
                         "calls": search.oracle.calls, "invalid_decodes": search.oracle.invalid,
                         "ms_per_call": 1000 * seconds / max(search.oracle.calls, 1),
                         "load_average": load.summary()})
    import torch
    return {"part": "timing", "model": MODEL, "budget": budget, "seed": 0, "rows": rows,
            "torch_threads": torch.get_num_threads(),
            "command": "python -m benchmarks.search --part timing"}


def lowest_plogp_seeds(vae: Any, n: int, quick: bool = False
                       ) -> tuple[list[str], list[float], str, int]:
    """The n molecules of the MOSES test split with the lowest (z-scored) penalized logP
    (with quick, or without molsets, of the shipped 10,000-molecule subset of it)."""
    from seqvae.data import read_strings, resolve_data
    from seqvae.search.heads import compute_properties
    source = "default:moses_test"
    if not quick:
        try:
            pool = read_strings(resolve_data("moses:test"))
            source = "moses:test"
        except Exception:
            pass
    if source == "default:moses_test":
        pool = read_strings(resolve_data(source))
    values = compute_properties(pool, ["plogp"], progress=True)["plogp"].to_numpy()
    order = np.argsort(np.where(np.isfinite(values), values, np.inf))
    # the lowest n the model can encode (a SELFIES token it never saw would make one fail)
    candidates = order[:2 * n]
    reasons = vae.check([pool[i] for i in candidates])
    chosen: list[int] = []
    skipped = 0
    for i, reason in zip(candidates, reasons):
        if len(chosen) == n:
            break
        if reason is None:
            chosen.append(int(i))
        else:
            skipped += 1
    return [pool[i] for i in chosen], [float(values[i]) for i in chosen], source, skipped


def run_constrained(n: int, steps: int, quick: bool) -> dict[str, Any]:
    """JT-VAE's constrained optimisation through seqvae.search.improve_molecules: from each
    seed, gradient ascent on the head's plogp; every decoded molecule on the path is scored
    and the best with similarity >= 0.4 (and >= 0.6) to the seed is kept."""
    from seqvae import load
    from seqvae.search import improve_molecules, summarise_improvements

    vae = load(MODEL)
    head = _load_head(quick)
    start = time.perf_counter()
    seeds, seed_values, source, not_encodable = lowest_plogp_seeds(vae, n, quick)
    select_seconds = time.perf_counter() - start
    options = dict(OPTIONS["constrained"], steps=steps)
    with LoadMonitor(every=15.0) as load:
        start = time.perf_counter()
        table = improve_molecules(vae, seeds, "plogp", head=head, deltas=(0.4, 0.6),
                                  progress=True, **options)
        seconds = time.perf_counter() - start
    summary = summarise_improvements(table)
    # how far the model's own reconstruction of each seed already is from it: a bound on
    # what a path can stay close to
    from rdkit import DataStructs
    from seqvae.chem import to_mol
    from seqvae.search.objectives import fingerprint
    codes, _ = vae.encode(seeds)
    recon = []
    for seed, text in zip(seeds, vae.decode(codes)):
        mol = to_mol(text)
        recon.append(DataStructs.TanimotoSimilarity(fingerprint(to_mol(seed)), fingerprint(mol))
                     if mol is not None else 0.0)
    recon = np.array(recon)
    results = {}
    for row in summary.to_dict(orient="records"):
        part = table[(table["delta"] == row["delta"]) & table["success"]]
        examples = part.sort_values("improvement", ascending=False).head(5)
        results[str(row["delta"])] = {**row, "examples": examples.to_dict(orient="records")}
    name = _name("constrained", quick)
    table.to_csv(RESULTS_DIR / f"{name}.csv", index=False)
    return {"part": "constrained", "model": MODEL, "source": source, "n_seeds": len(seeds),
            "not_encodable_skipped": not_encodable, "options": options,
            "steps": steps, "calls_mean": float(table.groupby("molecule")["scored"].first().mean()),
            "seconds": seconds, "select_seconds": select_seconds, "results": results,
            "load_average": load.summary(),
            "seed_plogp_mean": float(np.mean(seed_values)), "per_seed": f"{name}.csv",
            "reconstruction": {"exact": float(np.mean(recon == 1.0)),
                               "similarity_mean": float(recon.mean()),
                               "similarity_at_least_0.4": float(np.mean(recon >= 0.4)),
                               "similarity_at_least_0.6": float(np.mean(recon >= 0.6))},
            "command": "python -m benchmarks.search --part constrained" + (" --quick" if quick else "")}


def _fmt(x: float, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _loads_text(loads: list[dict[str, Any] | None], cpus: int | None) -> str:
    """The range of several LoadMonitor summaries, or that they were not measured."""
    measured = [x for x in loads if x]
    if not measured:
        return "load average not measured in these records"
    means = [x["mean"] for x in measured]
    text = (f"1-minute load average {min(means):.2f} to {max(means):.2f} on average per search "
            f"(at most {max(x['max'] for x in measured):.2f})")
    if len(measured) < len(loads):
        text += f"; not measured for {len(loads) - len(measured)} of {len(loads)} searches"
    if cpus:
        text += f", on {cpus} usable CPU(s)"
    return text


def _goal_met(objective: str, value: float) -> bool:
    return value >= (QED_GOAL if objective == "qed" else JTVAE_TOP[0])


def _shipped_sha256() -> str:
    """SHA-256 of the shipped MODEL's weights: which model a record measured."""
    from seqvae.pretrained import pretrained_path
    from seqvae.priors import model_digest
    return model_digest(pretrained_path(MODEL))


def _models_text(prefix: str) -> str:
    """Which weights the records measured, against the MODEL shipped now."""
    paths = [p for p in sorted(RESULTS_DIR.glob(f"{prefix}*.json"))
             if prefix == "search_quick_" or not p.name.startswith("search_quick_")]
    if not paths:
        return ""
    current = _shipped_sha256()
    recorded = [json.loads(p.read_text()).get("model_sha256") for p in paths]
    same = sum(r == current for r in recorded)
    unknown = sum(r is None for r in recorded)
    other = len(recorded) - same - unknown
    text = (f" Of the {len(recorded)} records, {same} measured the {MODEL} shipped now "
            f"(weights SHA-256 {current[:12]}...)")
    if other:
        text += f", {other} other weights"
    if unknown:
        text += f", {unknown} a model they did not record (written before records named it)"
    return text + "."


def build_table(quick: bool) -> str:
    """search.md and pictures from the parts present."""
    from rdkit import Chem

    from seqvae.chem import molecule_grid

    prefix = "search_quick_" if quick else "search_"
    machines: list[tuple[str, dict[str, Any] | None]] = []
    searches: list[dict[str, Any]] = []  # every search record, for the budget check
    body: list[str] = []
    head_path = RESULTS_DIR / f"{prefix}head.json"
    if head_path.exists():
        head = json.loads(head_path.read_text())
        machines.append(("head", head.get("machine")))
        r2 = ", ".join(f"{k} {v:.3f}" for k, v in head["report"]["r2"].items())
        cpus = (head.get("machine") or {}).get("cpus_usable")
        body += ["## Property head on z", "",
                 f"MLP on the posterior means of {head['n_molecules']:,} molecules of "
                 f"{head['source']}; held-out R^2 ({head['report']['n_valid']:,} molecules): "
                 f"{r2}. Fitted in {head['seconds']:.0f} s "
                 f"({load_text(head.get('load_average'), cpus=cpus)}).", ""]
    curves: dict[str, dict[str, list[float]]] = {}
    for objective in OBJECTIVES:
        rows, loads, notes = [], [], []
        best: tuple[float, str] | None = None
        cpus = None
        for method in METHODS:
            path = RESULTS_DIR / f"{prefix}{objective}_{method}.json"
            if not path.exists():
                continue
            record = json.loads(path.read_text())
            searches.append(record)
            machines.append((f"{objective} {method}", record.get("machine")))
            cpus = cpus or (record.get("machine") or {}).get("cpus_usable")
            loads += [r.get("load_average") for r in record["runs"]]
            if record.get("note"):
                notes.append(f"{method}: {record['note']}")
            for t in record["top"]:
                t["atoms"] = Chem.MolFromSmiles(t["SMILES"]).GetNumHeavyAtoms()
            if record["top"] and (best is None or record["top"][0]["objective"] > best[0]):
                best = (record["top"][0]["objective"], method)
            top = [t["objective"] for t in record["top"][:3]] + [math.nan] * 3
            sa = [t["sa"] for t in record["top"][:3]] + [math.nan] * 3
            atoms = [str(t["atoms"]) for t in record["top"][:3]] + ["-"] * 3
            d = 3 if objective == "qed" else 2
            calls = np.mean([r["calls"] for r in record["runs"]])
            rows.append(f"| {method} | {record['budget']} | {len(record['seeds'])} | "
                        f"{_fmt(top[0], d)} / {_fmt(top[1], d)} / {_fmt(top[2], d)} | "
                        f"{_fmt(sa[0], 1)} / {_fmt(sa[1], 1)} / {_fmt(sa[2], 1)} | "
                        f"{' / '.join(atoms[:3])} | "
                        f"{_fmt(record['best_mean'], 3)} +- {_fmt(record['best_std'], 3)} | "
                        f"{calls:.0f} | {record['seconds_mean']:.0f} |")
            curves.setdefault(objective, {})[method] = np.mean(
                [r["curve"] for r in record["runs"] if len(r["curve"]) == record["budget"]]
                or [[math.nan]], axis=0).tolist()
            grid = RESULTS_DIR / f"{prefix}{objective}_{method}_top.png"
            molecule_grid([t["SMILES"] for t in record["top"]], grid,
                          [f"{t['objective']:.3f}, SA {t['sa']:.1f}, {t['atoms']} atoms"
                           for t in record["top"]],
                          mols_per_row=5)
        if rows:
            goal = {"plogp": f"unbounded; goal: top-1 above JT-VAE + BO's {JTVAE_TOP[0]:.2f}",
                    "plogp38": f"at most {MAX_ATOMS} heavy atoms; goal: above {JTVAE_TOP[0]:.2f}",
                    "qed": f"goal: QED {QED_GOAL} or more"}[objective]
            d = 3 if objective == "qed" else 2
            verdict = ("" if best is None else
                       f"Best top-1: {best[0]:.{d}f} ({best[1]}); goal "
                       f"{'met' if _goal_met(objective, best[0]) else 'not met'}. ")
            body += [f"## {objective} ({goal})", "",
                     "| optimiser | calls budget | seeds | top-1 / 2 / 3 (distinct molecules, all "
                     "seeds) | their SA | their heavy atoms | best per seed, mean +- std | "
                     "oracle calls per seed | seconds per seed |",
                     "|---|---|---|---|---|---|---|---|---|", *rows, "",
                     verdict + f"Top molecules with their SA score and size: "
                     f"{prefix}{objective}_<optimiser>_top.png. Seconds per seed as measured in "
                     f"these runs: {_loads_text(loads, cpus)}"
                     + (f" (notes: {'; '.join(notes)})" if notes else "")
                     + ". Each optimiser timed once on its own: the wall-time section.", ""]
    if curves:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4))
        for ax, (objective, by_method) in zip(np.atleast_1d(axes), curves.items()):
            for method, curve in by_method.items():
                ax.plot(np.arange(1, len(curve) + 1), curve, label=method)
            ax.set_xlabel("oracle calls")
            ax.set_ylabel(f"best {objective} so far (mean of seeds)")
            ax.legend()
        fig.tight_layout()
        fig.savefig(RESULTS_DIR / f"{prefix}curves.png", dpi=100)
        plt.close(fig)
        body += [f"Best so far against oracle calls: {prefix}curves.png.", ""]
    path = RESULTS_DIR / f"{prefix}timing.json"
    if path.exists():
        record = json.loads(path.read_text())
        machines.append(("timing", record.get("machine")))
        info = record.get("machine") or {}
        threads = record.get("torch_threads", info.get("torch_threads"))
        loads = [r.get("load_average") for r in record["rows"]]
        body += ["## Wall time and oracle calls per optimiser", "",
                 f"One search each (seed {record.get('seed', 0)}, {record['budget']} oracle "
                 f"calls), one after another (`--part timing`), torch at {threads} thread(s); "
                 f"{_loads_text(loads, info.get('cpus_usable'))}. The 1-minute load average "
                 "counts the search's own threads too.", "",
                 "| objective | optimiser | seconds | oracle calls | ms per call | invalid decodes "
                 "| load average during it (mean) |",
                 "|---|---|---|---|---|---|---|",
                 *[f"| {r['objective']} | {r['method']} | {r['seconds']:.1f} | {r['calls']} | "
                   f"{r['ms_per_call']:.0f} | {r['invalid_decodes']} | "
                   + ("not measured in this record" if not r.get("load_average")
                      else f"{r['load_average']['mean']:.2f}") + " |" for r in record["rows"]],
                 ""]
    path = RESULTS_DIR / f"{prefix}constrained.json"
    if path.exists():
        record = json.loads(path.read_text())
        machines.append(("constrained", record.get("machine")))
        cpus = (record.get("machine") or {}).get("cpus_usable")
        body += ["## Constrained optimisation (penalized logP, z-scored)", "",
                 f"Seeds: the {record['n_seeds']} molecules of {record['source']} with the lowest "
                 f"plogp (mean {record['seed_plogp_mean']:.2f}); {record['steps']} gradient steps "
                 f"on {record['options'].get('paths', 1)} paths from each seed's code "
                 f"(jittered by {record['options'].get('noise', 0)} * N(0, I)), every decoded "
                 "molecule scored "
                 f"({record['calls_mean']:.1f} oracle calls per seed on average); "
                 f"{record['seconds']:.0f} s in all "
                 f"({load_text(record.get('load_average'), cpus=cpus)}"
                 + (f"; note: {record['note']}" if record.get("note") else "") + "). "
                 "Success: a different molecule with similarity at least delta and a higher "
                 "plogp; improvement over the successes (and over all seeds, counting a "
                 "failure as 0).", "",
                 "| delta | improvement | std | success | similarity | improvement, all seeds |",
                 "|---|---|---|---|---|---|"]
        for delta, r in record["results"].items():
            body.append(f"| {delta} | {_fmt(r['improvement_mean'])} | {_fmt(r['improvement_std'])} "
                        f"| {100 * r['success_rate']:.1f}% | {_fmt(r['similarity_mean'])} | "
                        f"{_fmt(r['improvement_mean_all'])} |")
        recon = record.get("reconstruction")
        if recon:
            body += ["", f"The model's own reconstruction of these seeds: decoding each seed's "
                     f"code gives back the seed for {100 * recon['exact']:.1f}% of them, and a "
                     f"molecule of similarity >= 0.4 for "
                     f"{100 * recon['similarity_at_least_0.4']:.1f}% (>= 0.6: "
                     f"{100 * recon['similarity_at_least_0.6']:.1f}%); success rates above: "
                     + ", ".join(f"{100 * r['success_rate']:.1f}% at delta {delta}"
                                 for delta, r in record["results"].items()) + "."]
        body.append("")
    calls = [(r["calls"], s["budget"]) for s in searches for r in s["runs"]]
    over = [c for c in calls if c[0] > c[1]]
    budgets = sorted({b for _, b in calls})
    budget_text = ("" if not calls else
                   f" In these records all {len(calls)} searches stayed within their budget (at "
                   f"most {max(c for c, _ in calls)} calls; budget "
                   f"{' to '.join(str(b) for b in budgets[::max(len(budgets) - 1, 1)])})."
                   if not over else
                   f" In these records {len(over)} of {len(calls)} searches spent more oracle "
                   "calls than their budget.")
    lines = ["# Latent property search, MOSES SELFIES VAE (seqvae, shipped moses-selfies)", "",
             "Each optimiser is given a budget of oracle calls per seed; an oracle call is "
             "one evaluation of the true objective on a new valid molecule (seqvae.search). "
             "plogp is JT-VAE's z-scored penalized logP." + budget_text + _models_text(prefix)
             + " Rerun: the commands "
             "in benchmarks/search.py; rebuild this page from the records: `--part table`.", "",
             *body]
    lines += ["## Published, for orientation (other models, data and protocols)", "",
              "| method | budget | penalized logP top-1 / 2 / 3 | definition | source |",
              "|---|---|---|---|---|",
              *[f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in PUBLISHED],
              "", "JT-VAE constrained optimisation (ZINC, 800 seeds) is in the JT-VAE paper; "
              "not in ANCHORS.md, so not quoted here.", "",
              machines_markdown(machines)]
    text = "\n".join(lines).rstrip() + "\n"
    (RESULTS_DIR / f"{prefix.rstrip('_')}.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", required=True,
                        choices=["head", *OBJECTIVES, "constrained", "timing", "table"])
    parser.add_argument("--method", choices=METHODS)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--head-size", type=int, default=20000)
    parser.add_argument("--constrained-seeds", type=int, default=800)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.quick:
        seeds, args.budget, args.head_size, args.constrained_seeds = seeds[:2], 40, 500, 20
        args.steps = min(args.steps, 10)
    record: dict[str, Any] | None = None
    if args.part == "head":
        record = run_head(args.quick, args.head_size, seed=0)
        name = _name("head", args.quick)
    elif args.part in OBJECTIVES:
        if args.method is None:
            raise SystemExit("--part plogp/qed needs --method prior, gradient or bo")
        record = run_search(args.part, args.method, seeds, args.budget, args.quick)
        name = _name(f"{args.part}_{args.method}", args.quick)
    elif args.part == "timing":
        record = run_timing(args.budget, args.quick)
        name = _name("timing", args.quick)
    elif args.part == "constrained":
        record = run_constrained(args.constrained_seeds, args.steps, args.quick)
        name = _name("constrained", args.quick)
    if record is not None:
        record["machine"] = machine()
        record["model_sha256"] = _shipped_sha256()
        print(f"wrote {_save(name, record)}")
    print(build_table(args.quick))


if __name__ == "__main__":
    main()
