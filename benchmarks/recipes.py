"""Recipes for the first run: what a short CPU budget on the shipped MOSES subset gives, per
recipe, measured the same way; and the README's main job run exactly as written.

    python -m benchmarks.recipes --variant cosine --minutes 10   # one recipe (see VARIANTS)
    python -m benchmarks.recipes --part readme                   # the README's main job
    python -m benchmarks.recipes --part readme --precision fp32  # it held to fp32 (bf16 CPU)
    python -m benchmarks.recipes --part table                    # recipes.md + recipes.png

Each recipe is `seqvae train --max-minutes M` with the default config and the recipe's
`--set` overrides, run as a user runs it (a subprocess of the CLI, torch's default threads).
Then, from the trained model: 1,000 samples (seed 0) from the standard prior N(0, I) and from
the aggregate prior the run fitted (seqvae.priors), each scored for validity, uniqueness
among the valid and novelty against the training set; greedy reconstruction of 1,000
validation molecules (data/moses_valid, never the test split); KL and active units from the
run's last evaluation. Writes benchmarks/results/recipes_NAME.json per recipe, recipes_readme.json
for the main job, and recipes.md / recipes.png from whichever exist.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import (RESULTS_DIR, LoadMonitor, cpu_kind, load_text, machine,
                               machines_markdown, write_results)

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "recipes"
N_SAMPLES = 1000
N_RECON = 1000
# the goals of issue 17 for the README's main job (10 minutes, fp32, 1,000 samples)
GOALS = {"valid": 0.70, "unique": 0.95, "novelty": 0.90}

# the README's main job: as run on a CPU that trains in fp32 (AVX2), on one with bf16 (where
# precision = auto picks bf16), and on that one held to fp32 (--precision fp32): the last two
# make the like-for-like bf16 / fp32 ratio
README_RECORDS = ("readme", "readme_fp32_avx512", "readme_bf16")

# name -> (what it changes, --set overrides on the default config)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "before": ("the default before this work: KL weight 0.1 warmed up over 1,000 steps, "
               "constant learning rate 1e-3", ["train.lr_schedule=constant"]),
    "cosine": ("as before, the learning rate decayed by a cosine from 1e-3 to 1e-4 over the 10 "
               "minutes (the budget's unit)", ["train.lr_schedule=cosine"]),
    "beta0.5": ("KL weight 0.5, warmed up over the first 30% of the budget",
                ["train.lr_schedule=constant", "train.kl_weight=0.5",
                 "train.kl_warmup_fraction=0.3"]),
    "beta1": ("KL weight 1 (the ELBO), warmed up over the first 30% of the budget",
              ["train.lr_schedule=constant", "train.kl_weight=1.0",
               "train.kl_warmup_fraction=0.3"]),
    "fast1": ("KL weight 1 warmed up over 30% of the budget, with learning rate 3e-3 and "
              "batches of 128 (more, larger steps in the same minutes)",
              ["train.lr_schedule=constant", "train.kl_weight=1.0",
               "train.kl_warmup_fraction=0.3", "train.lr=3e-3", "train.batch_size=128"]),
    "small1": ("as fast1 with a smaller encoder (bidirectional GRU-128 instead of 256): more "
               "steps in the same minutes",
               ["train.lr_schedule=constant", "train.kl_weight=1.0",
                "train.kl_warmup_fraction=0.3", "train.lr=3e-3", "train.batch_size=128",
                "model.encoder_hidden=128"]),
    "fast0.5": ("KL weight 0.5 warmed up over 30% of the budget, learning rate 3e-3, batches of "
                "128",
                ["train.lr_schedule=constant", "train.kl_weight=0.5",
                 "train.kl_warmup_fraction=0.3", "train.lr=3e-3", "train.batch_size=128"]),
    "fast1fb0.3": ("as fast1 with a free-bits floor of 0.3 nats per latent dimension (19 nats "
                   "in all, was 0.1): a latent that carries more of each molecule",
                   ["train.lr_schedule=constant", "train.kl_weight=1.0",
                    "train.kl_warmup_fraction=0.3", "train.lr=3e-3", "train.batch_size=128",
                    "train.free_bits=0.3", "train.precision=fp32"]),
    "fast1fb0.3enum": ("as fast1fb0.3 with SMILES enumeration for the encoder (data.augment = "
                       "encoder: it reads a random SMILES of each molecule, the decoder writes "
                       "the canonical one)",
                       ["train.lr_schedule=constant", "train.kl_weight=1.0",
                        "train.kl_warmup_fraction=0.3", "train.lr=3e-3", "train.batch_size=128",
                        "train.free_bits=0.3", 'data.augment="encoder"']),
    "fast1fb0.3tf": ("as fast1fb0.3 with a 2-layer Transformer encoder (d_model 128, 4 heads, "
                     "feed-forward 512, mean-pooled) in place of the bidirectional GRU-256: "
                     "its GEMMs run over every position at once, not 2 x 100 small steps",
                     ["train.lr_schedule=constant", "train.kl_weight=1.0",
                      "train.kl_warmup_fraction=0.3", "train.lr=3e-3", "train.batch_size=128",
                      "train.free_bits=0.3", 'model.encoder="transformer"',
                      "model.encoder_hidden=128", "model.encoder_layers=2",
                      "train.precision=fp32"]),
    "lm": ("no latent: the same GRU decoder as a plain language model (MOSES's CharRNN "
           "class, the peer a VAE's prior samples must beat)",
           ["train.lr_schedule=constant", "model.use_latent=false"]),
    "warm": ("a VAE around the shipped language model's decoder (train.init_decoder = "
             "moses-charrnn: its GRU-512, trained 150 minutes on the full MOSES split), learning "
             "rate 1e-3 decayed by a cosine; the language model's minutes are not in the 10",
             ["train.init_decoder=moses-charrnn", "train.lr=1e-3", "train.lr_schedule=cosine",
              "train.precision=fp32"]),
    "lm_enum": ("the no-latent language model trained on random SMILES (data.augment = both, "
                "Arús-Pous et al. 2019)",
                ["train.lr_schedule=constant", "model.use_latent=false", 'data.augment="both"']),
}


def _seqvae() -> list[str]:
    exe = shutil.which("seqvae")
    return [exe] if exe else [sys.executable, "-m", "seqvae"]


@functools.cache
def training_set() -> frozenset[str]:
    """Canonical SMILES of the shipped training subset (computed once per process)."""
    from seqvae.chem import canonicalize_many
    from seqvae.data import default_data_path, read_strings
    return frozenset(s for s in canonicalize_many(read_strings(default_data_path("moses_train")))
                     if s)


def score_samples(table, train: frozenset[str]) -> dict:
    """valid, unique among valid, novel among the unique valid; with the binomial standard
    error of the validity."""
    valid = table.loc[table["valid"].astype(bool), "SMILES"]
    unique = set(valid)
    p = float(table["valid"].mean()) if len(table) else 0.0
    return {"n": len(table), "valid": p, "valid_se": math.sqrt(p * (1 - p) / max(len(table), 1)),
            "unique": len(unique) / max(len(valid), 1),
            "novelty": len(unique - train) / max(len(unique), 1)}


def measure_model(run: Path, name: str) -> dict:
    """Samples from both priors and reconstructions of validation molecules; pictures
    recipes_NAME_PRIOR.png."""
    import seqvae
    from seqvae.data import default_data_path, read_strings
    from seqvae.priors import has_prior

    model = seqvae.load(run)
    out: dict = {"samples": {}}
    priors = ["standard"] + (["aggregate"] if has_prior(model.path) else [])
    for prior in priors:
        start = time.perf_counter()
        table = model.sample(N_SAMPLES, seed=0, prior=prior)
        out["samples"][prior] = {**score_samples(table, training_set()),
                                 "seconds": time.perf_counter() - start}
        model.draw(table.head(60), RESULTS_DIR / f"recipes_{name}_{prior}.png")
    if model.model.config.use_latent:
        heldout = read_strings(default_data_path("moses_valid"))[:N_RECON]
        recon = model.reconstruct(heldout)
        out["reconstruction_exact"] = float(recon["exact"].mean())
        out["reconstruction_valid"] = float(recon["valid"].mean())
    return out


def run_variant(name: str, minutes: float) -> dict:
    what, sets = VARIANTS[name]
    run = RUNS / name
    if run.exists():
        shutil.rmtree(run)
    command = [*_seqvae(), "train", "--max-minutes", f"{minutes:g}", "--out", str(run),
               "--no-progress"] + [x for s in sets for x in ("--set", s)]
    print(" ".join(command), flush=True)
    with LoadMonitor() as load:
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT)
        wall = time.perf_counter() - start
    return record(name, run, load, what=what, overrides=sets, minutes=minutes,
                  command=" ".join(["seqvae", *command[len(_seqvae()):]]), wall_seconds=wall)


def record(name: str, run: Path, load: LoadMonitor, **extra) -> dict:
    """The result of a finished run (its summary, log and model measured), written as
    benchmarks/results/recipes_NAME.json."""
    summary = json.loads((run / "summary.json").read_text())
    result = {"variant": name, **extra, "steps": summary["step"],
              "train_seconds": summary["elapsed_s"], "epochs": summary["epoch"],
              "parameters": summary["parameters"], "precision": summary["precision"],
              "last_evaluation": summary["metrics"], "load_average": load.summary(),
              "machine": machine(), "molecules_per_s": _last_rate(run / "log.csv")}
    result.update(measure_model(run, name))
    write_results(f"recipes_{name}", result, f"see recipes.md ({name})")
    (RESULTS_DIR / f"recipes_{name}.md").unlink()
    return result


def _last_rate(log: Path) -> float | None:
    import pandas as pd
    table = pd.read_csv(log)
    rates = table["molecules_per_s"].dropna()
    return float(rates.tail(10).mean()) if len(rates) else None


def readme_commands() -> list[str]:
    """The seqvae commands of the README's set-up line (the one that installs and runs)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(l for l in text.splitlines() if "pip install" in l and "seqvae train" in l)
    return [part.strip() for part in line.split("&&") if part.strip().startswith("seqvae ")]


def readme_name(precision: str, info: dict | None) -> str:
    """The record name of a README job: by the precision it trained in and, for fp32, the
    kind of CPU (an fp32 run on an AVX-512 CPU is a record of its own beside AVX2's)."""
    if precision != "fp32":
        return f"readme_{precision}"
    capability = (info or {}).get("torch_cpu_capability", "")
    return "readme" if capability in ("", "AVX2", "DEFAULT") else f"readme_fp32_{capability.lower()}"


def run_readme(force_precision: str | None = None) -> dict:
    """The README's main job, exactly: its commands in a scratch folder, then its samples file
    scored (validity, uniqueness, novelty) and the model's figures. With a precision, the train
    command gains `--set train.precision=P` (fp32 on a CPU where auto picks bf16)."""
    import pandas as pd
    commands = readme_commands()
    if force_precision:
        commands = [c + f" --set train.precision={force_precision}" if c.startswith("seqvae train")
                    else c for c in commands]
    cwd = RUNS / "readme"
    if cwd.exists():
        shutil.rmtree(cwd)
    cwd.mkdir(parents=True)
    timings = []
    with LoadMonitor() as load:
        for command in commands:
            print(command, flush=True)
            start = time.perf_counter()
            args = command.split()
            subprocess.run([*_seqvae(), *args[1:]], check=True, cwd=cwd)
            timings.append(time.perf_counter() - start)
    out_arg = re.search(r"-o (\S+)", commands[-1])
    samples = pd.read_csv(cwd / out_arg.group(1)) if out_arg else None
    # precision = auto trains in bf16 where the CPU has it: a record of its own beside fp32's
    precision = json.loads((cwd / "runs" / "default" / "summary.json").read_text())["precision"]
    name = readme_name(precision, machine())
    return record(name, cwd / "runs" / "default", load, commands=commands,
                  command_seconds=timings,
                  readme_samples=(None if samples is None
                                  else score_samples(samples, training_set())))


# -- the report --------------------------------------------------------------------------------
def _records() -> list[dict]:
    names = [*VARIANTS, *README_RECORDS]
    found = []
    for name in names:
        path = RESULTS_DIR / f"recipes_{name}.json"
        if path.exists():
            found.append(json.loads(path.read_text()))
    return found


def _cpu(r: dict) -> str:
    """The kind of CPU a record was measured on."""
    return cpu_kind(r.get("machine"))


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def table() -> None:
    records = _records()
    if not records:
        raise SystemExit("no recipes_*.json yet: run --variant NAME or --part readme first")
    rows = ["| recipe | CPU | precision | steps | mol/s | KL (nats) | active units | recon exact "
            "| valid N(0,I) | valid aggregate | unique | novelty | load |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        ev = r.get("last_evaluation", {})
        std = r["samples"].get("standard", {})
        agg = r["samples"].get("aggregate", {})
        best = max((s for s in (std, agg) if s), key=lambda s: s["valid"])
        rate = r.get("molecules_per_s")
        rows.append(
            f"| {r['variant']} | {_cpu(r)} | {r.get('precision', '')} | {r['steps']:,} "
            f"| {rate:.0f} "
            f"| {ev.get('valid_kl', float('nan')):.1f} "
            f"| {ev.get('active_units', float('nan')):.0f} | {_pct(r.get('reconstruction_exact'))} "
            f"| {_pct(std.get('valid'))} ± {_pct(std.get('valid_se'))} "
            f"| {_pct(agg.get('valid')) if agg else 'none'} "
            f"| {best['unique']:.3f} | {best['novelty']:.3f} "
            f"| {(r.get('load_average') or {}).get('mean', float('nan')):.2f} |")
    vae = [r for r in records if r["variant"] != "lm" and r["variant"] not in README_RECORDS
           and r.get("reconstruction_exact") is not None]
    lines = ["# First-run recipes: what 10 CPU minutes give", "",
             "Each recipe: `seqvae train --max-minutes M` on the shipped 100k MOSES subset, the "
             "default config with the recipe's overrides, as a user runs it; then 1,000 samples "
             "(seed 0) from N(0, I) and from the aggregate prior fitted at the end of the run, "
             "and greedy reconstruction of 1,000 validation molecules. Unique and novelty are of "
             "the prior with the higher validity. ± is the binomial standard error of the "
             "validity. Written by `python -m benchmarks.recipes --part table`.", "", *rows, ""]
    for r in records:
        what = r.get("what") or "the README main job: `" + " && ".join(r.get("commands", [])) + "`"
        budget = f"{r['minutes']:g} min; " if r.get("minutes") else ""
        lines.append(f"- **{r['variant']}**: {what} ({budget}{load_text(r.get('load_average'))}).")
    lines.append("")
    by_name = {r["variant"]: r for r in records}
    sentences = []

    def best_valid(r):
        return max(s["valid"] for s in r["samples"].values())

    for cpu in dict.fromkeys(_cpu(r) for r in vae):  # each kind of CPU apart
        mine = [r for r in vae if _cpu(r) == cpu]
        top = max(mine, key=best_valid)
        sentences.append(f"On {cpu}, of the {len(mine)} VAE recipe(s) measured there, "
                         f"**{top['variant']}** gives the most valid prior samples: "
                         f"{_pct(best_valid(top))}.")
        if "lm" in by_name and _cpu(by_name["lm"]) == cpu:
            lm = by_name["lm"]["samples"]["standard"]["valid"]
            sentences.append(f"The language model with no latent (the CharRNN-class peer) gives "
                             f"{_pct(lm)} valid at the same budget on the same kind of CPU; the "
                             f"best VAE recipe there "
                             f"{'reaches' if best_valid(top) >= lm else 'stays below'} it "
                             f"({100 * (best_valid(top) - lm):+.1f} points).")
    gains = [(r["variant"], r["samples"]["aggregate"]["valid"] - r["samples"]["standard"]["valid"])
             for r in vae if "aggregate" in r["samples"]]
    if gains:
        sentences.append("The aggregate prior against N(0, I), in validity points: "
                         + ", ".join(f"{n} {100 * g:+.1f}" for n, g in gains) + ".")
    for r in (by_name[n] for n in README_RECORDS if n in by_name):
        s = r["readme_samples"]
        met = [k for k, goal in GOALS.items() if s[k] >= goal]
        sentences.append(
            f"The README's main job (`{' && '.join(r['commands'])}`), run exactly: "
            f"{r['steps']:,} steps in {r['train_seconds']:.0f} s of training ({r['precision']} "
            f"on {_cpu(r)}); its "
            f"samples file holds {_pct(s['valid'])} valid molecules, unique {s['unique']:.3f}, "
            f"novelty {s['novelty']:.3f} (goals: valid {GOALS['valid']:.0%}, unique "
            f"{GOALS['unique']}, novelty {GOALS['novelty']}; "
            + (f"met: {', '.join(met)}" if met else "none met") + ").")
    readmes = [by_name[n] for n in README_RECORDS if n in by_name]
    for cpu in dict.fromkeys(_cpu(r) for r in readmes):  # bf16 against fp32 on one CPU kind
        kinds = {r["precision"]: r for r in readmes if _cpu(r) == cpu}
        if "fp32" in kinds and "bf16" in kinds:
            a, b = kinds["bf16"], kinds["fp32"]
            sentences.append(
                f"On {cpu}, the same job in bf16 made {a['steps']:,} steps to fp32's "
                f"{b['steps']:,} ({a['steps'] / b['steps']:.2f}x) and its samples file holds "
                f"{_pct(a['readme_samples']['valid'])} valid against "
                f"{_pct(b['readme_samples']['valid'])}.")
    lines += [" ".join(sentences), "", "![validity per recipe](recipes.png)", "",
              "## Machines", "",
              machines_markdown([(r["variant"], r.get("machine")) for r in records])]
    (RESULTS_DIR / "recipes.md").write_text("\n".join(lines) + "\n")
    _picture(records)
    print("\n".join(lines))


def _picture(records: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["variant"] for r in records]
    std = [r["samples"].get("standard", {}).get("valid", 0) for r in records]
    agg = [r["samples"].get("aggregate", {}).get("valid", float("nan")) for r in records]
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.5))
    ax.bar([i - 0.2 for i in x], std, 0.4, label="N(0, I)")
    ax.bar([i + 0.2 for i in x], agg, 0.4, label="aggregate prior")
    ax.axhline(GOALS["valid"], color="k", ls="--", lw=0.8, label="goal (README job)")
    ax.set_xticks(list(x), names)
    ax.set_ylabel("valid share of 1,000 samples")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / "recipes.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append", choices=list(VARIANTS),
                        help="recipe(s) to train and measure (repeat the flag)")
    parser.add_argument("--part", choices=["readme", "table"])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--precision", choices=["fp32", "bf16"],
                        help="--part readme: train in this precision instead of the README's "
                        "auto (fp32 on a bf16 CPU gives the like-for-like bf16 / fp32 ratio)")
    args = parser.parse_args()
    for name in args.variant or []:
        run_variant(name, args.minutes)
    if args.part == "readme":
        run_readme(args.precision)
    if args.part == "table" or args.variant or args.part == "readme":
        table()


if __name__ == "__main__":
    main()
