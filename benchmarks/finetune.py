"""Fine-tuning on a chemist's focused series, three arms at the same CPU budget: the shipped
model as it is, a model of the same architecture trained from scratch on the series, and the
shipped model fine-tuned on it (seqvae/configs/finetune.toml, train.init).

    python -m benchmarks.finetune --minutes 5

The series: molecules of MOSES' scaffold-test split (scaffolds absent from the MOSES training
split, so absent from the shipped model's pretraining) that hold a sulfonamide (S(=O)(=O)N),
2,000 drawn with seed 0, split 1,400 to train on, 200 to validate on and 400 held out. Each
arm samples --samples molecules from N(0, I) (seed 0), scored for validity, the share of valid
samples in the class, FCD to the 400 held-out molecules (of all valid samples, and of those not
in the 1,400: a model that copies its training molecules scores well on the first), novelty
against the MOSES training split and against the 1,400, internal diversity, and the same with
the arm's aggregate prior where it has one. Writes benchmarks/results/finetune.json
(finetune_MODEL.json for a --model other than moses-smiles: each model's record stays).

    python -m benchmarks.finetune --part recipe --minutes 5

How each training arm is set up, chosen on validation only: every recipe of RECIPES (learning
rate, SMILES enumeration, a frozen encoder, the KL weight, the batch size) trained for
--minutes and judged by the FCD of its N(0, I) samples to the series' 200 validation molecules
(never the held-out 400); per arm the lowest among recipes with validity at least 0.9 (or the
lowest of all where none reaches it) is what the series part trains. Recipes already measured
with the same model, minutes and samples are kept, so the part resumes after a kill;
--recipes 'NAME,NAME' measures only those (the choice is then made among the measured ones,
and the record's command says which). Writes benchmarks/results/finetune_recipe.json
(finetune_recipe_MODEL.json for another --model).

    python -m benchmarks.finetune --part outside --minutes 5

Reconstruction outside MOSES, before and after fine-tuning on it: the two sets of the rdkit
wheel that benchmarks/anomaly.py uses (NCI first 5K, the WEHI screening library), each
standardised (largest fragment, neutral charges, stereo dropped), deduplicated, molecules of the
MOSES training split removed, shuffled with seed 0: 500 held out, 200 to validate on, the rest
(at most 3,000) to fine-tune on. The shipped model reconstructs the 500 greedily from the mean
code; then it is fine-tuned on the set's training part (finetune.toml, train.extend_vocab: the
set's tokens the shipped vocabulary lacks are added) for --minutes, and reconstructs them
again. Exact-match rate and mean Tanimoto similarity (Morgan radius 2, 2,048 bits) of input
and reconstruction, over all 500 (a molecule the model cannot read counts 0) and over those it
reads. Writes benchmarks/results/finetune_outside.json; `--part table` rebuilds finetune.md
from both records.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import (RESULTS_DIR, LoadMonitor, cpu_kind, load_text, machine,
                               machine_markdown)

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "finetune"
CLASS_SMARTS = "S(=O)(=O)N"
CLASS_NAME = "sulfonamide"
N_SERIES, N_HELD_OUT, N_VALID = 2000, 400, 200
GOAL_VALID = 0.9
OUTSIDE_HELD_OUT, OUTSIDE_VALID, OUTSIDE_TRAIN = 500, 200, 3000


def series() -> dict[str, Path]:
    """The focused set's files: train (1,400), valid (200), held-out (400)."""
    from rdkit import Chem

    from seqvae.data import moses_path, read_strings

    RUNS.mkdir(parents=True, exist_ok=True)
    files = {name: RUNS / f"series_{name}.csv" for name in ("train", "valid", "held_out")}
    if all(f.is_file() for f in files.values()):
        return files
    pattern = Chem.MolFromSmarts(CLASS_SMARTS)
    pool = read_strings(moses_path("test_scaffolds"))
    rng = np.random.default_rng(0)
    members = []
    for i in rng.permutation(len(pool)):
        mol = Chem.MolFromSmiles(pool[i])
        if mol is not None and mol.HasSubstructMatch(pattern):
            members.append(pool[i])
            if len(members) == N_SERIES:
                break
    held, valid = members[:N_HELD_OUT], members[N_HELD_OUT:N_HELD_OUT + N_VALID]
    train = members[N_HELD_OUT + N_VALID:]
    for name, rows in (("train", train), ("valid", valid), ("held_out", held)):
        pd.DataFrame({"SMILES": rows}).to_csv(files[name], index=False)
    return files


def arm_config(arm: str, model: str, files: dict[str, Path], minutes: float, run: Path,
               extra: list[str] | tuple[str, ...] = ()) -> Any:
    """The config of a training arm on the series, with ``extra`` overrides: "fine-tuned" is
    finetune.toml from ``model``; "scratch" is the default recipe for a time budget
    (moses_smiles.toml) with the shipped model's architecture, from random weights."""
    from seqvae import load_config
    from seqvae.checkpoint import resolve_checkpoint
    from seqvae.pretrained import resolve

    common = [f'data.train="{files["train"]}"', f'data.valid="{files["valid"]}"',
              f"train.max_minutes={minutes}", "train.eval_every=100",
              "train.checkpoint_every=100", f"train.prior_codes={N_SERIES}",
              "train.precision=fp32",  # every arm in fp32, on any CPU
              f'train.out_dir="{run}"']
    if arm == "fine-tuned":
        return load_config(ROOT / "seqvae/configs/finetune.toml",
                           [*common, f'train.init="{model}"', *extra])
    source = resolve_checkpoint(resolve(model))
    shipped_model = json.loads((source / "config.json").read_text())["config"]["model"]
    architecture = [f"model.{k}={json.dumps(v)}" for k, v in shipped_model.items()
                    if v is not None and k not in ("vocab_size", "pad_id", "bos_id", "eos_id",
                                                   "unk_id", "max_length")]
    return load_config(ROOT / "seqvae/configs/moses_smiles.toml",
                       [*common, *architecture, *extra])


def arms(model: str, minutes: float, files: dict[str, Path],
         recipes: dict[str, str] | None = None) -> dict[str, Any]:
    """Train the two arms that train (each in a run folder of its own, with the recipe chosen
    for it on validation where ``recipes`` names one) and return the three models' folders
    with their training figures."""
    from seqvae.checkpoint import resolve_checkpoint
    from seqvae.pretrained import resolve

    out: dict[str, Any] = {"shipped": {"path": str(resolve_checkpoint(resolve(model))),
                                       "train_seconds": 0.0, "steps": 0}}
    for arm in ("scratch", "fine-tuned"):
        name = (recipes or {}).get(arm)
        extra = RECIPES[name][1] if name else []
        out[arm] = train_arm(arm_config(arm, model, files, minutes, RUNS / arm, extra))
        out[arm]["recipe"] = name or "default"
    return out


def train_arm(config: Any) -> dict[str, Any]:
    """Train one config in a fresh run folder; its folder, steps, seconds and load."""
    import shutil

    import seqvae

    run = Path(config.train.out_dir)
    if run.exists():
        shutil.rmtree(run)
    with LoadMonitor(every=10.0) as load:
        summary = seqvae.train(config, progress=False)
    return {"path": str(run), "train_seconds": summary["elapsed_s"], "steps": summary["step"],
            "lr": config.train.lr, "load_average": load.summary(), "data": summary["data"]["train"],
            "new_tokens": len(summary.get("init", {}).get("new_tokens", []))}


def _lr(lr: float) -> list[str]:
    """A learning rate, cosine-decayed to a tenth of it."""
    return [f"train.lr={lr}", f"train.lr_min={lr / 10:g}"]


def _floor(lr: str, floor: float, why: str) -> tuple[str, tuple[str, list[str], str]]:
    """A fine-tuned recipe of RECIPES at learning rate ``lr`` and free-bits floor ``floor``."""
    return (f"fine-tuned lr {lr} free bits {floor:g}",
            ("fine-tuned", [*_lr(float(lr)), f"train.free_bits={floor:g}"], f"lr {lr}, {why}"))


# name -> (arm, overrides on the arm's config, what it tries). Every fine-tuned recipe names its
# learning rate, so a later change of finetune.toml's own does not change what a name means.
RECIPES: dict[str, tuple[str, list[str], str]] = {
    "fine-tuned lr 3e-4": ("fine-tuned", _lr(3e-4), "a tenth of moses_smiles.toml's 3e-3"),
    "fine-tuned lr 1e-3": ("fine-tuned", _lr(1e-3), "a third of moses_smiles.toml's 3e-3"),
    "fine-tuned lr 3e-3": ("fine-tuned", _lr(3e-3), "moses_smiles.toml's rate"),
    "fine-tuned lr 1e-2": ("fine-tuned", _lr(1e-2), "above moses_smiles.toml's rate"),
    "fine-tuned enumerated": ("fine-tuned", [*_lr(3e-3), 'data.augment="both"'],
                              "random SMILES for encoder and decoder (Arus-Pous et al. 2019)"),
    "fine-tuned enumerated encoder": ("fine-tuned", [*_lr(3e-3), 'data.augment="encoder"'],
                                      "random SMILES for the encoder only"),
    "fine-tuned frozen encoder": ("fine-tuned", [*_lr(3e-3), "train.freeze_encoder=true"],
                                  "only the decoder learns"),
    "fine-tuned KL 0.5": ("fine-tuned", [*_lr(3e-3), "train.kl_weight=0.5"],
                          "half the KL weight"),
    "fine-tuned batch 128": ("fine-tuned", [*_lr(3e-3), "train.batch_size=128"],
                             "pre-training's batch size"),
    **dict(_floor(lr, 0.1, "the free-bits floor of moses-smiles-lm (0.1; finetune.toml 0.3)")
           for lr in ("3e-4", "1e-3")),
    **dict(_floor(lr, 0.03, "the free-bits floor moses-smiles-lm was last trained at (0.03)")
           for lr in ("3e-4", "1e-3", "3e-3")),
    "scratch default": ("scratch", [], "moses_smiles.toml as it is (lr 3e-3, batches of 128)"),
    "scratch lr 1e-3": ("scratch", ["train.lr=0.001"], "a third of the default rate"),
    "scratch batch 64": ("scratch", ["train.batch_size=64"], "twice the steps"),
    "scratch enumerated": ("scratch", ['data.augment="both"'],
                           "random SMILES for encoder and decoder"),
}
FIRST_MODEL = "moses-smiles"  # measured first: its records keep the plain names


def record_path(stem: str, model: str) -> Path:
    """The record of a part for a model: finetune.json / finetune_recipe.json for FIRST_MODEL,
    finetune_MODEL.json / finetune_recipe_MODEL.json for any other, so each model's stays."""
    slug = model.strip("/").replace("/", "_")  # a run folder's path as a file name
    return RESULTS_DIR / (f"{stem}.json" if model == FIRST_MODEL else f"{stem}_{slug}.json")


def recorded_models(stem: str) -> list[str]:
    """The models with a record of the part, FIRST_MODEL first."""
    suffixes = (p.stem[len(stem) + 1:] for p in RESULTS_DIR.glob(f"{stem}_*.json"))
    # finetune_recipe*.json and finetune_outside.json are other parts' records, not models
    others = sorted(x for x in suffixes if x and not x.startswith(("recipe", "outside")))
    return ([FIRST_MODEL] if record_path(stem, FIRST_MODEL).is_file() else []) + others


def chosen_recipes(rows: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Per arm, the measured recipe of lowest validation FCD among those with validity at
    least GOAL_VALID (or among all of the arm's where none reaches it)."""
    chosen = {}
    for arm in ("scratch", "fine-tuned"):
        mine = {name: row for name, row in rows.items() if row["arm"] == arm}
        eligible = {n: r for n, r in mine.items() if r["valid"] >= GOAL_VALID} or mine
        if eligible:
            chosen[arm] = min(eligible, key=lambda n: eligible[n]["FCD_valid"])
    return chosen


def part_recipe(model: str, minutes: float, n: int,
                only: list[str] | None = None) -> dict[str, Any]:
    """Each recipe of RECIPES (or of ``only``, names of RECIPES: a shorter search, the choice
    made among what was measured) trained and judged on the series' validation molecules; the
    record is rewritten after each. Recipes it holds for the same model, minutes and samples
    (and the same overrides), trained on this kind of CPU (and, for the fine-tuned arm, from the same
    weights of the model: a retrained shipped model starts them again), are not trained again;
    rows from another kind stay in the record but neither count in the choice nor stand for
    this one's."""
    files = series()
    here = machine()
    base = base_digest(model)
    path = record_path("finetune_recipe", model)
    record = json.loads(path.read_text()) if path.is_file() else {}
    same = [record.get(k) for k in ("model", "minutes", "samples")] == [model, minutes, n]
    rows = record.get("rows", {}) if same else {}
    unknown = sorted(set(only or ()) - set(RECIPES))
    if unknown:
        raise SystemExit(f"unknown recipe(s) {', '.join(map(repr, unknown))}; RECIPES has "
                         + ", ".join(map(repr, RECIPES)))
    chosen_names = [name for name in RECIPES if only is None or name in only]
    for name in chosen_names:
        arm, extra, why = RECIPES[name]
        if (name in rows and rows[name]["overrides"] == extra
                and cpu_kind(rows[name].get("machine")) == cpu_kind(here)
                and (arm == "scratch" or rows[name].get("base_digest") == base)):
            continue
        slug = name.replace(" ", "-")
        row = train_arm(arm_config(arm, model, files, minutes, RUNS / "recipe" / slug, extra))
        row.update(arm=arm, overrides=extra, tries=why, machine=here, base_digest=base,
                   **validation_figures(row["path"], files, n))
        rows[name] = row
        comparable = {k: r for k, r in rows.items()
                      if cpu_kind(r.get("machine")) == cpu_kind(here)
                      and (r["arm"] == "scratch" or r.get("base_digest") == base)}
        record = {"model": model, "minutes": minutes, "samples": n, "rows": rows,
                  "chosen": chosen_recipes(comparable), "chosen_on": cpu_kind(here),
                  "base_digest": base,
                  "machine": here,
                  "command": f"python -m benchmarks.finetune --part recipe --model {model} "
                             f"--minutes {minutes:g} --samples {n}"
                             + (f" --recipes '{','.join(only)}'" if only else "")}
        path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def base_digest(model: str) -> str:
    """SHA-256 of the weights a fine-tuned arm starts from (a shipped name or a run folder)."""
    from seqvae.pretrained import resolve
    from seqvae.priors import model_digest
    path = resolve(model)
    return model_digest(path / "checkpoint" if (path / "checkpoint").is_dir() else path)


def recipes_for(model: str, minutes: float) -> dict[str, str]:
    """The recipes chosen on validation for ``model`` at ``minutes`` (none measured: each arm's
    default)."""
    path = record_path("finetune_recipe", model)
    if not path.is_file():
        return {}
    record = json.loads(path.read_text())
    if ((record["model"], record["minutes"]) != (model, minutes)
            or record.get("base_digest") != base_digest(model)):
        return {}  # measured for other weights (or none recorded): each arm's default
    return {arm: name for arm, name in record["chosen"].items()
            if RECIPES.get(name, (None, None))[1] == record["rows"][name]["overrides"]}


def in_class(valid_smiles: list[str]) -> float:
    """The share of (valid) molecules that hold the series' class pattern."""
    from rdkit import Chem

    pattern = Chem.MolFromSmarts(CLASS_SMARTS)
    return (float(np.mean([Chem.MolFromSmiles(s).HasSubstructMatch(pattern)
                           for s in valid_smiles])) if valid_smiles else float("nan"))


def validation_figures(path: str, files: dict[str, Path], n: int) -> dict[str, float]:
    """N(0, I) samples of a model against the series' validation molecules: validity, share in
    the class, FCD to the validation set, novelty against the series' training molecules."""
    import seqvae
    from seqvae.metrics import evaluate_molecules
    from seqvae.metrics.reference import load_reference

    table = seqvae.load(path).sample(n, seed=0, batch_size=1000)
    smiles = list(table["SMILES"].fillna(""))
    reference = load_reference(files["valid"], train=files["train"], progress=False)
    metrics = evaluate_molecules(smiles, reference, progress=False).metrics
    valid = [s for s, ok in zip(smiles, table["valid"]) if ok]
    return {"valid": metrics["valid"], "in_class": in_class(valid),
            "FCD_valid": metrics["FCD/Test"], "novel_vs_series": metrics["Novelty"]}


def recipe_markdown(r: dict[str, Any]) -> str:
    lines = ["## Each arm's recipe, chosen on validation molecules", "",
             f"Each recipe trained {r['minutes']:g} CPU minutes (fp32) on the series' training "
             f"molecules, {r['samples']:,} N(0, I) samples (seed 0) scored against its "
             f"{N_VALID} validation molecules, never the held-out ones. Learning rates are "
             f"cosine-decayed to a tenth. Command: `{r['command']}`.", "",
             "| recipe | tries | CPU | steps | valid | in class | FCD to validation "
             "| novel vs series |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for name, row in r["rows"].items():
        earlier = (row["arm"] != "scratch" and r.get("base_digest")
                   and row.get("base_digest") != r["base_digest"])
        lines.append(f"| {name}{' (from earlier weights)' if earlier else ''} | {row['tries']} "
                     f"| {cpu_kind(row.get('machine'))} | "
                     f"{row['steps']:,} | {row['valid']:.3f} | "
                     f"{row['in_class']:.3f} | {row['FCD_valid']:.2f} | "
                     f"{row['novel_vs_series']:.3f} |")
    lines += ["", "Chosen (lowest FCD to validation among an arm's recipes with validity at "
              f"least {GOAL_VALID}, or among all of its recipes where none reaches it; only rows "
              f"trained on {r.get('chosen_on', 'one kind of CPU')}, as the time budget makes "
              "steps depend on the CPU, and fine-tuned from the model's present weights): "
              + "; ".join(f"{arm}: {name}" for arm, name in r["chosen"].items()) + "."]
    return "\n".join(lines)


def measure(path: str, files: dict[str, Path], n: int) -> list[dict[str, Any]]:
    """Each prior's samples scored against the series."""
    import seqvae
    from seqvae.metrics import evaluate_molecules
    from seqvae.metrics.reference import load_reference
    from seqvae.priors import has_prior

    model = seqvae.load(path)
    held = load_reference(files["held_out"], train=files["train"], progress=False)
    moses_train = load_reference("moses", progress=False).train
    rows = []
    for prior in ["standard"] + (["aggregate"] if has_prior(model.path) else []):
        table = model.sample(n, seed=0, prior=prior, batch_size=1000)
        smiles = list(table["SMILES"].fillna(""))
        report = evaluate_molecules(smiles, held, progress=False)
        valid = [s for s, ok in zip(smiles, table["valid"]) if ok]
        canonical = set(valid)
        series_train = held.train
        novel = [s for s in valid if s not in series_train]
        fcd_novel = (evaluate_molecules(novel, held, progress=False).metrics["FCD/Test"]
                     if len(novel) > 1 else float("nan"))
        rows.append({"prior": prior, "valid": report.metrics["valid"], "FCD_novel": fcd_novel,
                     "in_class": in_class(valid),
                     "FCD_held_out": report.metrics["FCD/Test"],
                     "novel_vs_series": report.metrics["Novelty"],
                     "novel_vs_moses": float(np.mean([s not in moses_train for s in canonical]))
                     if canonical else float("nan"),
                     "IntDiv": report.metrics["IntDiv"], "n": n})
    return rows


def series_markdown(r: dict[str, Any]) -> str:
    rows = [(arm, m) for arm, a in r["arms"].items() for m in a["measured"]]
    standard = {arm: m for arm, m in rows if m["prior"] == "standard"}
    tuned = standard["fine-tuned"]
    beats = all(tuned["FCD_held_out"] < m["FCD_held_out"] for a, m in standard.items()
                if a != "fine-tuned")
    lines = ["# Fine-tuning on a focused series", "",
             f"Series: {N_SERIES:,} {CLASS_NAME}s ({CLASS_SMARTS}) of MOSES' scaffold-test split "
             f"(scaffolds absent from the shipped model's training data), seed 0: "
             f"{N_SERIES - N_HELD_OUT - N_VALID:,} to train on, {N_VALID} for validation, "
             f"{N_HELD_OUT} held out. Shipped model: `{r['model']}`. Each arm trained "
             f"{r['minutes']:g} CPU minutes (fp32; "
             + ", ".join(f"{arm}: recipe {a.get('recipe', 'default')}, lr {a['lr']:g}"
                         for arm, a in r["arms"].items() if "lr" in a)
             + "; recipes chosen on validation molecules, below) and sampled "
             f"{r['samples']:,} times (seed 0). "
             f"Command: `{r['command']}`.", "",
             "| arm | prior | steps | valid | in class | FCD to held-out | FCD of novel samples "
             "| novel vs series | novel vs MOSES train | IntDiv |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for arm, m in rows:
        a = r["arms"][arm]
        novel_fcd = f"{m['FCD_novel']:.2f}" if "FCD_novel" in m else "not measured"
        lines.append(f"| {arm} | {m['prior']} | {a['steps']:,} | {m['valid']:.3f} | "
                     f"{m['in_class']:.3f} | {m['FCD_held_out']:.2f} | {novel_fcd} | "
                     f"{m['novel_vs_series']:.3f} | {m['novel_vs_moses']:.3f} | "
                     f"{m['IntDiv']:.3f} |")
    lines += ["", f"Goal: the fine-tuned arm beats both others on FCD to the held-out series "
              f"with validity at least {GOAL_VALID} in at most 5 CPU minutes. Measured (N(0, I)): "
              f"FCD {tuned['FCD_held_out']:.2f} against "
              + ", ".join(f"{a} {m['FCD_held_out']:.2f}" for a, m in standard.items()
                          if a != "fine-tuned")
              + f"; validity {tuned['valid']:.3f}; {r['minutes']:g} minutes: "
              + ("met" if beats and tuned["valid"] >= GOAL_VALID and r["minutes"] <= 5
                 else "not met") + ".", "",
              "Novelty against the series' training molecules (N(0, I)): "
              + ", ".join(f"{a} {m['novel_vs_series']:.3f}" for a, m in standard.items())
              + "; FCD to the held-out series of the novel samples only: "
              + ", ".join(f"{a} {m['FCD_novel']:.2f}" for a, m in standard.items()
                          if "FCD_novel" in m) + "." + _novel_sentence(standard), "",
              "Load while training: " + "; ".join(
                  f"{arm}: {load_text(a.get('load_average'))}" for arm, a in r["arms"].items()
                  if a.get("load_average")) + ".", "", "### Machine", "",
              machine_markdown(r["machine"])]
    return "\n".join(lines)


def _novel_sentence(standard: dict[str, dict[str, Any]]) -> str:
    """Which arm leads on all samples and which on the novel ones only, from the figures."""
    novel = {a: m["FCD_novel"] for a, m in standard.items() if "FCD_novel" in m}
    if not novel:
        return ""
    best_all = min(standard, key=lambda a: standard[a]["FCD_held_out"])
    best_novel = min(novel, key=novel.get)
    if best_all == best_novel:
        return f" The {best_all} arm leads on both."
    return (f" Lowest FCD over all valid samples: {best_all}; over novel samples only: "
            f"{best_novel} ({novel[best_novel]:.2f} against {best_all}'s {novel[best_all]:.2f})"
            f": part of the {best_all} arm's lead comes from samples that copy the series' "
            f"training molecules ({1 - standard[best_all]['novel_vs_series']:.0%} of its valid "
            f"samples, against {1 - standard[best_novel]['novel_vs_series']:.0%}).")


def outside_sets() -> dict[str, dict[str, Any]]:
    """Per set of benchmarks/anomaly.py: its provenance, counts and train / valid / held-out
    files (standardised, deduplicated, out of MOSES train, shuffled with seed 0)."""
    from benchmarks.anomaly import _read, ood_sets, outside_pool
    from seqvae.metrics.reference import load_reference

    moses_train = None
    out = {}
    for name, info in ood_sets().items():
        folder = RUNS / "outside" / name.split()[0].lower()
        files = {part: folder / f"{part}.csv" for part in ("train", "valid", "held_out")}
        counts_path = folder / "counts.json"
        if not counts_path.is_file():
            if moses_train is None:
                moses_train = load_reference("moses", progress=False).train
            kept, order, counts = outside_pool(_read(info["path"]), moses_train)
            kept = [kept[i] for i in order]
            parts = {"held_out": kept[:OUTSIDE_HELD_OUT],
                     "valid": kept[OUTSIDE_HELD_OUT:OUTSIDE_HELD_OUT + OUTSIDE_VALID],
                     "train": kept[OUTSIDE_HELD_OUT + OUTSIDE_VALID:][:OUTSIDE_TRAIN]}
            folder.mkdir(parents=True, exist_ok=True)
            for part, rows in parts.items():
                pd.DataFrame({"SMILES": rows}).to_csv(files[part], index=False)
            counts_path.write_text(json.dumps(
                {**counts, **{part: len(rows) for part, rows in parts.items()}}, indent=2) + "\n")
        out[name] = {"source": info["source"], "files": files,
                     "counts": json.loads(counts_path.read_text())}
    return out


def reconstruction(path: str | Path, strings: list[str]) -> dict[str, Any]:
    """Greedy reconstruction from the mean code of each string the model reads: exact rate
    and mean Tanimoto similarity over all strings (unreadable ones count 0) and over those read."""
    import seqvae

    model = seqvae.load(path)
    readable, rejected = model.usable(strings)
    table = model.reconstruct(readable) if readable else pd.DataFrame(
        {"exact": [], "similarity": [], "valid": []})
    n = len(strings)
    return {"n": n, "readable": len(readable), "unreadable": len(rejected),
            "exact": float(table["exact"].sum()) / n,
            "similarity": float(table["similarity"].fillna(0.0).sum()) / n,
            "exact_readable": float(table["exact"].mean()) if readable else float("nan"),
            "similarity_readable": float(table["similarity"].mean()) if readable else float("nan"),
            "valid_readable": float(table["valid"].mean()) if readable else float("nan")}


def part_outside(model: str, minutes: float) -> dict[str, Any]:
    from seqvae.checkpoint import resolve_checkpoint
    from seqvae.pretrained import resolve

    source = resolve_checkpoint(resolve(model))
    results = {}
    for name, info in outside_sets().items():
        files = info["files"]
        held = pd.read_csv(files["held_out"])["SMILES"].tolist()
        run = RUNS / "outside" / f"{name.split()[0].lower()}-fine-tuned"
        before = reconstruction(source, held)
        arm = train_arm(arm_config("fine-tuned", model, files, minutes, run,
                                   ["train.extend_vocab=true"]))
        results[name] = {"source": info["source"], "counts": info["counts"], "before": before,
                         "after": reconstruction(run, held), **arm}
    return {"model": model, "minutes": minutes, "sets": results, "machine": machine(),
            "command": f"python -m benchmarks.finetune --part outside --model {model} "
                       f"--minutes {minutes:g}"}


def outside_markdown(r: dict[str, Any]) -> str:
    lines = ["## Reconstruction outside MOSES, before and after fine-tuning", "",
             f"Shipped model `{r['model']}`, fine-tuned {r['minutes']:g} CPU minutes (fp32) on "
             f"each set (finetune.toml, learning rate "
             + ", ".join(sorted({f"{s['lr']:g}" if 'lr' in s else 'not recorded'
                                 for s in r["sets"].values()}))
             + ", vocabulary extended with the set's new tokens). "
             f"{OUTSIDE_HELD_OUT} held-out molecules per set, standardised (stereo dropped), none "
             f"from MOSES train; greedy decoding of the mean code. Exact and similarity over all "
             f"held-out molecules (one the model cannot read counts 0), and over those it reads. "
             f"Command: `{r['command']}`.", "",
             "| set | source | model | reads | exact | Tanimoto | exact (read) | "
             "Tanimoto (read) | steps | new tokens |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in r["sets"].items():
        for label, m in (("shipped", s["before"]), ("fine-tuned", s["after"])):
            tuned = label == "fine-tuned"
            lines.append(
                f"| {name} | {s['source']} | {label} | {m['readable']}/{m['n']} | "
                f"{m['exact']:.3f} | {m['similarity']:.3f} | {m['exact_readable']:.3f} | "
                f"{m['similarity_readable']:.3f} | {s['steps'] if tuned else 0:,} | "
                f"{s['new_tokens'] if tuned else 0} |")
    lines.append("")
    for name, s in r["sets"].items():
        b, a = s["before"], s["after"]
        lines.append(f"- {name}: fine-tuning on {s['counts']['train']:,} of its molecules "
                     f"({s['steps']:,} steps) moves exact reconstruction from {b['exact']:.3f} "
                     f"to {a['exact']:.3f} and mean similarity from {b['similarity']:.3f} to "
                     f"{a['similarity']:.3f}; the model reads {b['readable']} then "
                     f"{a['readable']} of {a['n']}. Load: {load_text(s.get('load_average'))}.")
    lines += ["", "### Machine", "", machine_markdown(r["machine"])]
    return "\n".join(lines)


def markdown() -> str:
    """finetune.md from the records there are."""
    parts = ["# Fine-tuning", ""]
    outside_path = RESULTS_DIR / "finetune_outside.json"
    for model in recorded_models("finetune"):
        record = json.loads(record_path("finetune", model).read_text())
        parts += [series_markdown(record).replace(
            "# Fine-tuning on a focused series", f"## A focused series, from `{model}`", 1), ""]
    for model in recorded_models("finetune_recipe"):
        record = json.loads(record_path("finetune_recipe", model).read_text())
        parts += [recipe_markdown(record).replace(
            "## Each arm's recipe", f"## `{model}`: each arm's recipe", 1), ""]
    if outside_path.is_file():
        parts.append(outside_markdown(json.loads(outside_path.read_text())))
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="moses-smiles")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--part", choices=["series", "recipe", "outside", "table"],
                        default="series")
    parser.add_argument("--recipes", help="with --part recipe: comma-separated names of the "
                        "recipes to measure (default: every one of RECIPES)")
    args = parser.parse_args()
    if args.part == "recipe":
        part_recipe(args.model, args.minutes, args.samples,
                    [r.strip() for r in args.recipes.split(",")] if args.recipes else None)
    if args.part == "outside":
        (RESULTS_DIR / "finetune_outside.json").write_text(json.dumps(
            part_outside(args.model, args.minutes), indent=2, default=str) + "\n")
    if args.part != "series":
        (RESULTS_DIR / "finetune.md").write_text(markdown() + "\n")
        print(markdown())
        return
    files = series()
    started = time.perf_counter()
    trained = arms(args.model, args.minutes, files, recipes_for(args.model, args.minutes))
    for arm in trained.values():
        arm["measured"] = measure(arm["path"], files, args.samples)
    result = {"model": args.model, "minutes": args.minutes, "samples": args.samples,
              "arms": trained, "seconds": time.perf_counter() - started, "machine": machine(),
              "command": f"python -m benchmarks.finetune --model {args.model} --minutes "
                         f"{args.minutes:g} --samples {args.samples}"}
    record_path("finetune", args.model).write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS_DIR / "finetune.md").write_text(markdown() + "\n")
    print(markdown())


if __name__ == "__main__":
    main()
