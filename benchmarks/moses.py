"""The MOSES benchmark on a CPU budget: the models seqvae ships (SMILES VAE, SELFIES VAE, a
CharRNN-class language model with no latent), each trained by benchmarks/shipped.py for the
same wall-clock budget on the full MOSES training split, and molsets' VAE trained here for a
budget by its own code; --samples prior samples each (30,000, as MOSES does), from each prior
a model has (N(0, I) and the aggregate posterior fitted after training), over --seeds sampling
seeds (mean +- std), every metric of seqvae.metrics, beside the published MOSES rows.

    python -m benchmarks.shipped train smiles --minutes 150    # first (resumable)
    python -m benchmarks.moses --part smiles                   # evaluate that run
    python -m benchmarks.moses --part molsets --minutes 150    # molsets' VAE, its own code
    python -m benchmarks.moses --part table                    # rebuild moses.md

A seqvae part reads runs/shipped/NAME (it must have finished its budget) or, where that
scratch folder is gone (a fresh clone), the exported model seqvae/pretrained/NAME with the run's
record that benchmarks/shipped.py keeps in benchmarks/results/shipped/NAME: the FCD/Test curve
over training time from the run's snapshots (each sampled CURVE_SAMPLES times, FCD of its valid
samples to the MOSES test statistics; FCD is biased upwards at that sample size, so the curve
shows the trend and the table the full-sample figure), kept in the record as curve.json
(`--curve-only` computes just that, while the snapshots exist); the full evaluation per prior
and seed, each kept in the record's moses_eval.json as it is done (a killed evaluation goes on
where it stopped, in this sitting or a later one); training molecules/s from the run's log and
the achieved GFLOP/s (FLOPs of a training step's forward and backward per token, counted by
torch, times the run's tokens/s) against this machine's fp32 GEMM peak measured in the same
invocation.

molsets' part trains in this process (the clock stops while snapshots are taken); its KL
weight follows its own KLAnnealer spread over the budget (see molsets_compare.MolsetsRun.train).
Validation data of every run is MOSES' validation file shipped with seqvae
(default:moses_valid), never the test split the metrics are computed on.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (RESULTS_DIR, LoadMonitor, cpu_kind, gemm_text, load_text, machine, machines_markdown,
                               peak_rss_mib, trained_for)

ROOT = Path(__file__).resolve().parent.parent
RUNS = Path("runs") / "moses"
N_SAMPLES = 30_000
CURVE_SAMPLES = 2_000
SEEDS = (0, 1, 2)
PARTS = ("smiles", "smiles-enc128", "smiles-fb0.1", "smiles-lm", "smiles-lm-fb0.3",
         "smiles-lm-fb0.03", "smiles-lm-lr1e-3", "smiles-lm-lr3e-4", "smiles-lm-kl1",
         "smiles-lm-lr1e-3-fb0.03", "smiles-lm-lr1e-3-fb0.03-bf16", "selfies", "selfies-lm",
         "charrnn", "charrnn-190", "charrnn-lr1e-3", "charrnn-lr1e-3-190", "selfies-charrnn",
         "selfies-charrnn-190", "molsets")
SEQVAE_PARTS = tuple(p for p in PARTS if p != "molsets")  # trained by benchmarks/shipped.py
# validation data of molsets' part is none (its loop takes none); seqvae's runs name theirs
VALID = "default:moses_valid"
LM_PARTS = ("charrnn", "charrnn-190", "charrnn-lr1e-3", "charrnn-lr1e-3-190", "selfies-charrnn",
            "selfies-charrnn-190")  # models with no latent
PRIOR_LABELS = {"standard": "N(0, I)", "aggregate": "aggregate posterior"}
LABELS = {"smiles": "seqvae SMILES VAE",
          "smiles-enc128": "seqvae SMILES VAE, GRU-128 encoder (candidate)",
          "smiles-fb0.1": "seqvae SMILES VAE, free bits 0.1 (candidate)",
          "smiles-lm": "seqvae SMILES VAE around the LM's decoder (moses-smiles-lm until "
                       "2026-12-02)",
          "smiles-lm-fb0.3": "seqvae SMILES VAE around the LM's decoder, free bits 0.3 "
                             "(candidate)",
          "smiles-lm-fb0.03": "seqvae SMILES VAE around the LM's decoder, free bits 0.03 "
                              "(candidate)",
          "smiles-lm-lr1e-3": "seqvae SMILES VAE around the lr 1e-3 LM's decoder "
                              "(moses-smiles-lm until its free bits 0.03 descendant)",
          "smiles-lm-lr3e-4": "seqvae SMILES VAE around the lr 1e-3 LM's decoder, lr 3e-4 "
                              "(candidate)",
          "smiles-lm-kl1": "seqvae SMILES VAE around the lr 1e-3 LM's decoder, KL weight 1 "
                           "throughout (candidate)",
          "smiles-lm-lr1e-3-fb0.03": "seqvae SMILES VAE around the lr 1e-3 LM's decoder, "
                                     "trained on at free bits 0.03 (moses-smiles-lm)",
          "smiles-lm-lr1e-3-fb0.03-bf16": "seqvae SMILES VAE around the lr 1e-3 LM's decoder, "
                                          "trained on at free bits 0.03 in bf16 (extra row)",
          "selfies": "seqvae SELFIES VAE",
          "selfies-lm": "seqvae SELFIES VAE around the SELFIES LM's decoder (moses-selfies-lm)",
          "charrnn": "seqvae CharRNN-class LM (no latent)",
          "charrnn-190": "seqvae CharRNN-class LM (no latent), trained on from moses-charrnn",
          "charrnn-lr1e-3": "seqvae CharRNN-class LM (no latent), lr 1e-3",
          "charrnn-lr1e-3-190": "seqvae CharRNN-class LM (no latent), lr 1e-3, trained on from "
                                "charrnn-lr1e-3",
          "selfies-charrnn-190": "seqvae CharRNN-class LM on SELFIES (no latent), trained on "
                                 "from selfies-charrnn",
          "selfies-charrnn": "seqvae CharRNN-class LM on SELFIES (no latent)",
          "molsets": "molsets VAE (its code and config)"}
PUBLISHED = {  # ../shared/ANCHORS.md: molecularsets/moses README, 30,000 samples, mean of 3 seeds
    "Train (the data itself)": [1.0, 1.0, 1.0, 0.008, 0.4755, 0.6419, 1.0, 0.9907, 0.0, 0.8567, 0.8508, 1.0, 1.0],
    "CharRNN": [0.9748, 1.0, 0.9994, 0.0732, 0.5204, 0.6015, 0.9998, 0.9242, 0.1101, 0.8562, 0.8503, 0.9943, 0.8419],
    "VAE (SMILES, GRU)": [0.9767, 1.0, 0.9984, 0.099, 0.567, 0.6257, 0.9994, 0.9386, 0.0588, 0.8558, 0.8498, 0.997, 0.6949],
    "AAE": [0.9368, 1.0, 0.9973, 0.5555, 1.0572, 0.6081, 0.991, 0.9022, 0.0789, 0.8557, 0.8499, 0.996, 0.7931],
    "JTN-VAE": [1.0, 1.0, 0.9996, 0.3954, 0.9382, 0.5477, 0.9965, 0.8964, 0.1009, 0.8551, 0.8493, 0.976, 0.9143],
    "LatentGAN": [0.8966, 1.0, 0.9968, 0.2968, 0.8281, 0.5371, 0.9986, 0.8867, 0.1072, 0.8565, 0.8505, 0.9735, 0.9498],
}
COLUMNS = ["valid", "unique@1000", "unique@10000", "FCD/Test", "FCD/TestSF", "SNN/Test",
           "Frag/Test", "Scaf/Test", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty"]
HEADERS = ["Valid", "Unique@1k", "Unique@10k", "FCD Test", "FCD TestSF", "SNN Test", "Frag Test",
           "Scaf Test", "Scaf TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty"]


class Snapshots:
    """The Curve control's evaluate hook: a copy of the weights, kept in memory, at each point."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.states: list[dict[str, torch.Tensor]] = []

    def __call__(self) -> dict[str, float]:
        self.states.append({k: v.detach().clone() for k, v in self.module.state_dict().items()})
        return {"snapshot": len(self.states) - 1, "recon": float("nan"), "kl": float("nan")}


@functools.lru_cache(maxsize=1)
def _test_split():
    from seqvae.metrics.reference import load_reference
    return load_reference("moses", progress=False).splits["Test"]


def fcd_against(split: Any, smiles: list[str]) -> tuple[float, float]:
    """(validity, FCD of the valid ones to a reference split's statistics) for a small set."""
    from seqvae.metrics import molecules as M
    from seqvae.metrics._features import canonical_pairs

    pairs = [p for p in canonical_pairs(smiles) if p is not None]
    if len(pairs) < 2:
        return len(pairs) / len(smiles), float("nan")
    stats = M.gaussian_stats(M.ChemNet().activations([p[1] for p in pairs]))
    return len(pairs) / len(smiles), float(M.frechet_distance(
        split.fcd_mu, split.fcd_sigma, stats["mu"], stats["sigma"]))


def fcd_to_test(smiles: list[str]) -> tuple[float, float]:
    """(validity, FCD/Test of the valid ones) for a small curve point."""
    return fcd_against(_test_split(), smiles)


def train_part(part: str, minutes: float, seed: int, every: float, train: str = "moses:train",
               n_samples: int = N_SAMPLES) -> dict[str, Any]:
    """molsets' VAE trained here by its own code for the budget, then sampled and scored."""
    from benchmarks.molsets_compare import Curve, MolsetsRun
    from seqvae.data import read_strings, resolve_data

    assert part == "molsets", "seqvae's models are trained by benchmarks/shipped.py"
    out = RUNS / part
    started = time.perf_counter()
    train_strings = read_strings(resolve_data(train))
    run = MolsetsRun(train_strings, 512, seed)
    module = run.model
    setup_seconds = time.perf_counter() - started
    snapshots = Snapshots(module)
    curve = Curve(part, minutes * 60, every, snapshots)
    print(f"{LABELS[part]}: {run.parameters:,} parameters, set up in {setup_seconds:.0f} s; "
          f"training {minutes:g} min", flush=True)
    with LoadMonitor(every=30.0) as load:
        run.train(curve)
        train_seconds = curve.elapsed()
    curve.record()
    result: dict[str, Any] = {"part": part, "label": LABELS[part], "minutes": minutes,
                              "seed": seed, "train_seconds": train_seconds, "steps": curve.steps,
                              "molecules_seen": curve.molecules,
                              "train_data": train, "train_molecules": len(train_strings),
                              "epochs": curve.molecules / len(train_strings),
                              "parameters": run.parameters, "setup_seconds": setup_seconds,
                              "train_load_average": load.summary(),
                              "torch_threads": torch.get_num_threads()}
    run.save(out)
    result["config"] = (f"molsets' vae_parser defaults, batch {run.config.n_batch} (its "
                        "code, see molsets_compare)")
    result["kl_schedule"] = run.kl_schedule
    result["kl_weight_at_end"] = run.kl_weight
    result["valid_data"] = None  # molsets' loop takes no validation data
    result["command"] = (f"python -m benchmarks.moses --part {part} --minutes {minutes:g} "
                         f"--seed {seed}" + (f" --train {train}" if train != "moses:train" else "")
                         + (f" --samples {n_samples}" if n_samples != N_SAMPLES else ""))
    result["n_samples"] = n_samples
    result["curve_samples"] = CURVE_SAMPLES
    final_state = {k: v.clone() for k, v in module.state_dict().items()}
    points = []
    for point, state in zip(curve.points, snapshots.states):
        module.load_state_dict(state)
        validity, fcd = fcd_to_test(_molsets_samples(run, CURVE_SAMPLES, seed))
        points.append({"train_seconds": point["train_seconds"], "steps": point["steps"],
                       "validity": validity, "fcd_test": fcd})
        print(f"  {point['train_seconds']:7.0f} s: valid {validity:.3f}, FCD/Test {fcd:.3f}",
              flush=True)
    module.load_state_dict(final_state)
    result["curve"] = points
    with LoadMonitor(every=10.0) as load:
        start = time.perf_counter()
        strings = _molsets_samples(run, n_samples, seed)
        result["sample_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        report = _score(strings, out / "samples.csv")
        result["metrics_seconds"] = time.perf_counter() - start
    result["sample_metrics_load_average"] = load.summary()
    result["metrics"] = report.metrics
    _pictures(part, report)
    result["peak_rss_mib"] = peak_rss_mib()
    result["machine"] = machine()
    return result


def _score(strings: list[str], csv: Path):
    """Every MOSES metric of a sample (kept as csv)."""
    import pandas as pd

    from seqvae.metrics import evaluate_molecules
    csv.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"SMILES": strings}).to_csv(csv, index=False)
    return evaluate_molecules(strings, "moses", progress=True)


def _draw(model, n: int, seed: int, how: Sampler) -> tuple[Any, dict[str, Any]]:
    """n samples drawn as ``how`` says, and what it took. Under strict SELFIES the repaired
    strings are drawn again (``sample(valid=True)``) until n remain, as GraphAF's valency
    check resamples (Shi et al. 2020), which reports validity with and without it: here the
    share of all draws kept is the validity without."""
    table = model.sample(n, seed=seed, batch_size=1000, progress=True, valid=how.strict,
                         max_tries=50, **how.options())
    if not how.strict:
        return table, {}
    if len(table) < n:
        raise SystemExit(f"strict SELFIES kept {len(table):,} of {table.attrs['drawn']:,} draws")
    drawn = table.attrs["drawn"]
    return table, {"draws": drawn,
                   "valid_without_redrawing": table.attrs["valid_drawn"] / drawn if drawn else 1.0}


def _pictures(part: str, report, how: Sampler | None = None) -> None:
    """A grid of samples and property histograms against the test split, named by the part
    and how its samples were drawn."""
    from seqvae.chem import molecule_grid
    from seqvae.viz import property_histograms
    name = part if how is None else f"{part}_{how.tag}"
    label = LABELS[part] + ("" if how is None else how.describe(part not in LM_PARTS))
    molecule_grid(list(report.properties["SMILES"][:48]), RESULTS_DIR / f"moses_{name}_samples.png")
    property_histograms(report.properties, report.reference.splits["Test"].props,
                        RESULTS_DIR / f"moses_{name}_properties.png", sample_label=label,
                        reference_label="MOSES test")


# -- seqvae's shipped models: evaluate the run benchmarks/shipped.py trained -----------------

def _shipped_names() -> dict[str, str]:
    """Each part a shipped model (seqvae/pretrained/NAME) was exported from by
    benchmarks/shipped.py, and that model's name, read once from the command in each model's
    notes (a part can ship under another name: smiles-lm-lr1e-3 as moses-smiles-lm, which the
    part smiles-lm shipped before)."""
    names = {}
    for config in sorted((ROOT / "seqvae" / "pretrained").glob("*/config.json")):
        part = _trained_part(json.loads(config.read_text()).get("notes", {}))
        if part:
            names[part] = config.parent.name
    return names


def _trained_part(notes: dict[str, Any]) -> str | None:
    """The part of benchmarks/shipped.py a model's config.json notes say trained it."""
    import re
    found = re.search(r"benchmarks\.shipped train (\S+?)`", str(notes.get("trained_by", "")))
    return found.group(1) if found else None


def _seconds_before(spec: str) -> float:
    """Training seconds before a model's own: those of the model the part it was exported from
    (named in its config.json's notes by benchmarks/shipped.py) started from, read from that
    part's MOSES record; 0 where it started from nothing or nothing says."""
    from seqvae.pretrained import resolve
    try:
        config = Path(resolve(spec)) / "config.json"
        part = _trained_part(json.loads(config.read_text()).get("notes", {}))
    except Exception:  # not a shipped or exported model (a run folder has no notes)
        return 0.0
    path = RESULTS_DIR / f"moses_{part}.json"
    if part not in PARTS or not path.exists():
        return 0.0
    return float((json.loads(path.read_text()).get("init") or {}).get("train_seconds") or 0.0)


def _shipped_from(part: str, names: dict[str, str] | None = None) -> str:
    """The name of the shipped model exported from a part's run (``names``: _shipped_names(),
    read once by a caller that asks for many parts); the part's run name where none was."""
    from benchmarks.shipped import SHIPPED
    return (_shipped_names() if names is None else names).get(part, SHIPPED[part][0])


def _run_folder(part: str) -> Path:
    from benchmarks.shipped import RUNS as SHIPPED_RUNS
    from benchmarks.shipped import SHIPPED
    return ROOT / SHIPPED_RUNS / SHIPPED[part][0]


def _record_folder(part: str) -> Path:
    from benchmarks.shipped import RECORDS, SHIPPED
    return RECORDS / SHIPPED[part][0]


def _run_file(part: str, name: str) -> Path:
    """A file of a part's run: in runs/shipped/NAME, else in the record kept in results."""
    for folder in (_run_folder(part), _record_folder(part)):
        if (folder / name).is_file():
            return folder / name
    raise SystemExit(f"{part}: no {name} in {_run_folder(part)} or {_record_folder(part)}: run "
                     f"`python -m benchmarks.shipped train {part}` until it has spent its budget")


def _model(part: str, summary: dict[str, Any]):
    """The trained model of a part: the run's checkpoint, else the exported model, which must
    be the one the record describes (the same number of steps)."""
    import seqvae
    run = _run_folder(part)
    if (run / "checkpoint").is_dir():
        return seqvae.load(run)
    name = _shipped_from(part)
    model = seqvae.load(name)
    steps = _shipped_steps(name)
    if steps != summary["step"]:
        raise SystemExit(f"seqvae/pretrained/{name} was trained {steps} steps but the record in "
                         f"{_record_folder(part)} describes {summary['step']}: export the run "
                         f"(`python -m benchmarks.shipped export {part}`) or train it again")
    return model


# what evaluate_part reads from a run's record: kept in each moses_PART.json, so the model
# shipped now can be evaluated again (other samplers, more seeds) once its run is gone
TRAINING_FIELDS = ("command", "sittings", "train_seconds", "steps", "parameters", "precision",
                   "molecules_per_s", "tokens_per_s", "flops_per_token", "achieved_gflops",
                   "molecules_seen", "train_molecules", "epochs", "torch_threads", "curve",
                   "init")


def _earlier_evaluation(part: str) -> dict[str, Any] | None:
    """benchmarks/results/moses_PART.json where it is of the model shipped now (the same
    number of training steps as seqvae/pretrained/NAME's notes), else None."""
    path = RESULTS_DIR / f"moses_{part}.json"
    if not path.is_file():
        return None
    earlier = json.loads(path.read_text())
    steps = _shipped_steps(_shipped_from(part))
    return earlier if steps is not None and earlier.get("steps") == steps else None


def _shipped_steps(name: str) -> int | None:
    """Steps of the model shipped as seqvae/pretrained/NAME, from its config.json's notes."""
    return trained_for(ROOT / "seqvae" / "pretrained" / name)["steps"]


def curve_part(part: str, model, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The FCD/Test curve of a part's model from its run's snapshots, kept in its record (the
    curve kept there already where the snapshots are gone)."""
    record = _record_folder(part)
    record.mkdir(parents=True, exist_ok=True)
    points = _snapshot_curve(model, _run_folder(part))
    if points:
        (record / "curve.json").write_text(json.dumps(
            {"steps": summary["step"], "curve_samples": CURVE_SAMPLES, "points": points},
            indent=2) + "\n")
    elif (record / "curve.json").is_file():
        points = json.loads((record / "curve.json").read_text())["points"]
    return points


@dataclass(frozen=True)
class Sampler:
    """How a part's samples are drawn: the prior, the decoding temperature, the SELFIES index
    symbols' own temperature (None: the decoding one), the SMILES syntax mask and strict
    SELFIES (a string SELFIES had to repair counts as invalid). Its key names it in records
    ("standard", "aggregate@0.9", "standard+index@0", "standard+syntax", "standard+strict")."""
    prior: str = "standard"
    temperature: float = 1.0
    index_temperature: float | None = None
    syntax: bool = False
    strict: bool = False

    @property
    def key(self) -> str:
        return ((self.prior if self.temperature == 1 else f"{self.prior}@{self.temperature:g}")
                + ("" if self.index_temperature is None else f"+index@{self.index_temperature:g}")
                + ("+syntax" if self.syntax else "") + ("+strict" if self.strict else ""))

    @classmethod
    def parse(cls, key: str | None) -> Sampler:
        """The sampler of a key (None, a record from before samplers were named: N(0, I))."""
        head, *options = (key or "standard").split("+")
        prior, _, temperature = head.partition("@")
        index = [o.removeprefix("index@") for o in options if o.startswith("index@")]
        return cls(prior, float(temperature or 1), float(index[0]) if index else None,
                   "syntax" in options, "strict" in options)

    @property
    def tag(self) -> str:
        """The key as part of a file name ("standard@0.9" -> "standard_t0.9",
        "standard+index@0" -> "standard_i0", "standard+syntax" -> "standard_syntax")."""
        return (self.key.replace("+syntax", "_syntax").replace("+strict", "_strict")
                .replace("+index@", "_i").replace("@", "_t"))

    def options(self) -> dict[str, Any]:
        """The keywords of TrainedModel.sample that draw this way."""
        return dict(prior=self.prior, temperature=self.temperature,
                    index_temperature=self.index_temperature, syntax=self.syntax,
                    strict=self.strict)

    def describe(self, with_prior: bool = True) -> str:
        """What a row label adds: the prior (a language model draws no z: with_prior False),
        the temperatures where they are not 1 or the decoding one, mask and strictness."""
        return ((f", {PRIOR_LABELS[self.prior]}" if with_prior else "")
                + (f", T = {self.temperature:g}" if self.temperature != 1 else "")
                + ("" if self.index_temperature is None
                   else f", index symbols at T = {self.index_temperature:g}")
                + (", SMILES syntax mask" if self.syntax else "")
                + (", strict SELFIES (repaired strings invalid)" if self.strict else ""))


def evaluate_part(part: str, seeds: tuple[int, ...], n_samples: int,
                  temperatures: tuple[float, ...] = (1.0,),
                  index_temperatures: tuple[float, ...] = (), syntax: bool = False,
                  strict: bool = False) -> dict[str, Any]:
    """The record of a seqvae part: curve, every metric per sampler (each prior at each
    decoding temperature, for a SELFIES model at each index temperature too, with and without
    the SMILES mask or strict SELFIES where asked) and seed, throughput."""
    from benchmarks.common import gemm_peak
    from seqvae.priors import has_prior

    earlier = None
    try:
        summary = json.loads(_run_file(part, "summary.json").read_text())
        sittings = json.loads(_run_file(part, "sittings.json").read_text())
    except SystemExit:
        earlier = _earlier_evaluation(part)
        if earlier is None:
            raise
    if earlier is None:
        model = _model(part, summary)
        training: dict[str, Any] = {
            "command": sittings["command"], "sittings": sittings["sittings"],
            "train_seconds": summary["elapsed_s"], "steps": summary["step"],
            "parameters": summary["parameters"], "precision": summary["precision"]}
        training.update(_throughput(model, _run_file(part, "log.csv"), summary["step"]))
        training["train_molecules"] = summary["data"]["train"]["n_kept"]
        training["epochs"] = training["molecules_seen"] / training["train_molecules"]
        training["torch_threads"] = sittings["sittings"][-1]["machine"]["torch_threads"]
        if summary.get("init"):  # the model it started from (train.init / init_decoder)
            # its minutes count in the budget too, and those of the model it started from;
            # read once, while the source is what the run started from: a later evaluation of
            # the same run (the same steps and source weights) keeps what the first one read
            path = RESULTS_DIR / f"moses_{part}.json"
            first = json.loads(path.read_text()) if path.is_file() else {}
            if (first.get("steps") == summary["step"] and (first.get("init") or {})
                    .get("model_sha256") == summary["init"].get("model_sha256")):
                training["init"] = first["init"]
            else:
                training["init"] = {**summary["init"], **trained_for(summary["init"]["path"])}
                before = _seconds_before(summary["init"]["spec"])
                if before and training["init"].get("train_seconds"):
                    training["init"]["own_train_seconds"] = training["init"]["train_seconds"]
                    training["init"]["train_seconds"] += before
                    training["init"]["before_it_seconds"] = before
    else:  # the run and its record are gone: the training facts read when it was there
        import seqvae
        model = seqvae.load(_shipped_from(part))
        training = {k: earlier[k] for k in TRAINING_FIELDS if k in earlier}
        training["training_facts_from"] = (f"benchmarks/results/moses_{part}.json, evaluated "
                                           f"{earlier['machine'].get('date', 'earlier')}")
    if index_temperatures and model.tokenizer.kind != "selfies":
        raise SystemExit(f"--index-temperatures is for a SELFIES model's ring and branch index "
                         f"symbols; {part} writes {model.tokenizer.kind}")
    record = _record_folder(part)
    record.mkdir(parents=True, exist_ok=True)
    priors = ["standard"] + (["aggregate"] if has_prior(model.path) else [])
    if syntax and model.tokenizer.kind != "smiles":
        raise SystemExit(f"--syntax is the SMILES syntax mask; {part} writes "
                         f"{model.tokenizer.kind}")
    if strict and model.tokenizer.kind != "selfies":
        raise SystemExit(f"--strict is for a SELFIES model's repaired strings; {part} writes "
                         f"{model.tokenizer.kind}")
    samplers = [Sampler(prior, t, it, masked, st) for prior in priors for t in temperatures
                for it in (None, *index_temperatures)
                for masked in ((False, True) if syntax else (False,))
                for st in ((False, True) if strict else (False,))]
    result: dict[str, Any] = {
        "part": part, "label": LABELS[part], "model": str(Path(model.path).resolve()
                                                          .relative_to(ROOT)),
        **training,
        "train_data": model.config.data.train, "valid_data": model.config.data.valid,
        "n_samples": n_samples, "seeds": list(seeds), "priors": priors,
        "samplers": [s.key for s in samplers],
        "curve_samples": earlier.get("curve_samples", CURVE_SAMPLES) if earlier else CURVE_SAMPLES}
    if earlier is None:
        peak = gemm_peak()
        result["gemm_peak"] = peak
        result["gflops_share_of_peak"] = result["achieved_gflops"] / peak["fp32"]["gflops"]
        result["curve"] = curve_part(part, model, summary)
    else:  # the share of the peak of the machine the run trained on, measured then
        result["gemm_peak"] = earlier["gemm_peak"]
        result["gflops_share_of_peak"] = earlier["gflops_share_of_peak"]
    cache_file = record / "moses_eval.json"
    done = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    from seqvae.priors import model_digest
    digest = model_digest(model.path)  # the weights an evaluation kept in moses_eval.json was of
    if earlier is not None and earlier.get("n_samples") == n_samples:
        for ev in earlier.get("evaluations", []):  # of these weights (the same steps)
            t = ev.get("temperature", 1.0)
            sampler = Sampler(ev["prior"], t).key
            done.setdefault(f"{sampler}/{ev['seed']}/{n_samples}/{digest}",
                            {**ev, "temperature": t, "sampler": sampler,
                             "machine": earlier["machine"]})
    evaluations, made = [], 0
    for how in samplers:
        sampler = how.key
        for seed in seeds:
            key = f"{sampler}/{seed}/{n_samples}/{digest}"
            if key not in done:
                with LoadMonitor(every=10.0) as load:
                    start = time.perf_counter()
                    table, drawing = _draw(model, n_samples, seed, how)
                    sample_seconds = time.perf_counter() - start
                    start = time.perf_counter()
                    report = _score(list(table["SMILES"].fillna("")),
                                    ROOT / RUNS / f"{part}_samples_{how.tag}_{seed}.csv")
                    metrics_seconds = time.perf_counter() - start
                if seed == seeds[0]:
                    _pictures(part, report, how)
                done[key] = {**how.options(), "sampler": sampler, **drawing,
                             "seed": seed, "metrics": report.metrics,
                             "sample_seconds": sample_seconds, "metrics_seconds": metrics_seconds,
                             "load_average": load.summary()}
                cache_file.write_text(json.dumps(done, indent=2) + "\n")
                made += 1
                print(f"  {sampler} seed {seed}: valid {report.metrics['valid']:.4f}"
                      + (f" ({drawing['valid_without_redrawing']:.4f} without redrawing)"
                         if drawing else "")
                      + f", FCD/Test {report.metrics['FCD/Test']:.4f}", flush=True)
            evaluations.append(done[key])
    result["evaluations"] = evaluations
    result["peak_rss_mib"] = peak_rss_mib()
    # the machine of the evaluations: this one, unless every one was made before
    result["machine"] = machine() if made or earlier is None else earlier["machine"]
    return result


def _throughput(model, log_file: Path, steps: int) -> dict[str, Any]:
    """Training molecules/s and tokens/s from the run's log (mean over its logged windows) and
    the FLOPs of one training step's forward and backward per token (torch's FlopCounterMode
    on a batch of validation molecules), whose product is the achieved GFLOP/s."""
    import pandas as pd
    from torch.utils.flop_counter import FlopCounterMode

    from seqvae.data import read_strings, resolve_data

    log = pd.read_csv(log_file)
    rates = log.dropna(subset=["molecules_per_s", "tokens_per_s"])
    strings = read_strings(resolve_data(VALID))[:model.config.train.batch_size]
    ids = model._to_tokens(strings)  # in the model's representation (SELFIES converted)
    (tokens, lengths), = model._batches(ids, len(ids))
    net = model.model
    net.train()
    with FlopCounterMode(display=False) as counter:
        out = net(tokens, lengths)
        (out.recon_per_sequence.sum() + out.kl_per_sequence.sum()).backward()
    net.zero_grad(set_to_none=True)
    net.eval()
    per_token = counter.get_total_flops() / int(lengths.sum())
    tokens_per_s = float(rates["tokens_per_s"].mean())
    return {"molecules_per_s": float(rates["molecules_per_s"].mean()),
            "tokens_per_s": tokens_per_s, "flops_per_token": per_token,
            "achieved_gflops": per_token * tokens_per_s / 1e9,
            "molecules_seen": int(steps * model.config.train.batch_size)}


def _snapshot_curve(model, run: Path) -> list[dict[str, Any]]:
    """Validity and FCD/Test of CURVE_SAMPLES N(0, I) samples (seed 0) at each snapshot."""
    from safetensors.torch import load_file
    index = run / "snapshots" / "index.json"
    if not index.is_file():
        return []
    final = {k: v.clone() for k, v in model.model.state_dict().items()}
    points = []
    for entry in json.loads(index.read_text())["snapshots"]:
        model.model.load_state_dict(load_file(str(run / "snapshots" / entry["file"])))
        table = model.sample(CURVE_SAMPLES, seed=0, batch_size=1000)
        validity, fcd = fcd_to_test(list(table["SMILES"].fillna("")))
        points.append({"train_seconds": entry["elapsed_s"], "steps": entry["step"],
                       "validity": validity, "fcd_test": fcd})
        print(f"  {entry['elapsed_s']:7.0f} s: valid {validity:.3f}, FCD/Test {fcd:.3f}",
              flush=True)
    model.model.load_state_dict(final)
    return points


def _molsets_samples(run, n: int, seed: int) -> list[str]:
    run.model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        strings = run.sample(n, 1000)
    run.model.train()
    return strings


def _seed(r: dict[str, Any]) -> int | None:
    """The seed of a record: its own field, else the --seed of its recorded command."""
    if "seed" in r:
        return int(r["seed"])
    words = r.get("command", "").split()
    if "--seed" in words and words.index("--seed") + 1 < len(words):
        return int(words[words.index("--seed") + 1])
    return None


def _train_molecules(r: dict[str, Any]) -> int | None:
    """Training molecules read: recorded, else molecules seen / epochs (both recorded)."""
    if "train_molecules" in r:
        return int(r["train_molecules"])
    if r.get("epochs"):
        return round(r["molecules_seen"] / r["epochs"])
    return None


def _show(value: int | None) -> str:
    return "not recorded" if value is None else f"{value:,}"


def _valid_data(r: dict[str, Any]) -> str:
    """The validation data a record's run named, and whether it was a test split."""
    if "valid_data" in r:
        name = r["valid_data"]
    else:
        found = [w for w in r.get("config", "").split() if w.startswith("data.valid=")]
        name = found[0].split("=", 1)[1].strip('"') if found else None
    if name is None:
        return "none (molsets' training loop takes no validation data)"
    if "test" in name:
        return (f"`{name}`, a test split: this run predates the change to a validation split; "
                "the benchmark's loop never evaluates on it (the curve is FCD of prior samples "
                "and the weights sampled are the last ones), so no choice was made with it")
    return f"`{name}`"


def _kl_text(r: dict[str, Any]) -> str:
    """How molsets' KL weight was set in a record."""
    k = r.get("kl_schedule")
    if not k:
        weight = _molsets_per_epoch_weight(int(r["epochs"]))
        return ("not recorded in this record, which ran before the per-step schedule: molsets' "
                f"own per-epoch KLAnnealer, over {r['epochs']:.2f} epochs, so at most "
                + ("(molsets not importable here)" if weight is None else f"{weight:.3g}")
                + " (its weight for the last epoch started)")
    if k["index"] == "epoch":
        return f"molsets' own per-epoch KLAnnealer over {k['n_epoch']} epochs"
    return (f"molsets' own KLAnnealer built over the budget ({k['n_epoch']:,} s, called before "
            f"every step with the training seconds elapsed): linear from kl_w_start "
            f"{k['kl_w_start']:g} to its published kl_w_end {k['kl_w_end']:g}; "
            f"{r.get('kl_weight_at_end', float('nan')):.3g} at the end")


def _molsets_per_epoch_weight(epoch: int) -> float | None:
    """The KL weight molsets' own schedule (KLAnnealer over its epochs, its defaults) gives
    an epoch, computed by its code; None where molsets cannot be imported."""
    try:
        from benchmarks.molsets_compare import import_molsets
        m = import_molsets()
    except Exception:  # molsets absent or broken: the report says so instead
        return None
    config = m.vae_parser().parse_args([])
    return float(m.KLAnnealer(m.VAETrainer(config)._n_epoch(), config)(epoch))


# issue 17's goals for the shipped models (30,000 samples; each prior of a VAE)
SMILES_GOALS = {"valid": (">=", 0.95), "FCD/Test": ("<=", 0.3), "Novelty": (">=", 0.8),
                "Filters": (">=", 0.99)}
SELFIES_GOALS = {"valid": (">=", 1.0), "FCD/Test": ("<=", 1.0)}
GOALS = {"smiles": SMILES_GOALS, "smiles-enc128": SMILES_GOALS, "smiles-fb0.1": SMILES_GOALS,
         "smiles-lm": SMILES_GOALS, "smiles-lm-fb0.3": SMILES_GOALS,
         "smiles-lm-fb0.03": SMILES_GOALS, "smiles-lm-lr1e-3-fb0.03": SMILES_GOALS,
         "smiles-lm-lr1e-3-fb0.03-bf16": SMILES_GOALS,
         "smiles-lm-lr1e-3": SMILES_GOALS, "smiles-lm-lr3e-4": SMILES_GOALS,
         "smiles-lm-kl1": SMILES_GOALS,
         "selfies": SELFIES_GOALS, "selfies-lm": SELFIES_GOALS}


def _samplers(r: dict[str, Any]) -> list[str]:
    """The samplers a record evaluated (a record from before temperatures: its priors)."""
    return r.get("samplers", r.get("priors", []))


def _groups(r: dict[str, Any]) -> list[tuple[str | None, list[dict[str, float]]]]:
    """(sampler, metrics of each seed) of a record; a record from before the per-prior,
    per-seed evaluation holds one sample of N(0, I) (or molsets' prior)."""
    if "evaluations" not in r:
        return [(None, [r["metrics"]])]
    return [(sampler, [e["metrics"] for e in _evaluations(r, sampler)])
            for sampler in _samplers(r)]


def _evaluations(r: dict[str, Any], sampler: str) -> list[dict[str, Any]]:
    """The evaluations (one per seed) of a record under one sampler."""
    return [e for e in r.get("evaluations", []) if e.get("sampler", e["prior"]) == sampler]


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value); NaN where a value is."""
    import numpy as np
    array = np.asarray(values, dtype=float)
    return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def _cell(values: list[float]) -> str:
    mean, std = _mean_std(values)
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def _label(r: dict[str, Any], sampler: str | None) -> str:
    """The row's model and how its samples were drawn (a language model, with no latent,
    draws no z, so its row names no prior)."""
    return r["label"] + Sampler.parse(sampler).describe(with_prior=bool(sampler)
                                                        and r.get("part") not in LM_PARTS)


def _threads(r: dict[str, Any]) -> Any:
    return r.get("torch_threads", r["machine"]["torch_threads"])


def _budget(r: dict[str, Any]) -> str:
    text = (f"{r['train_seconds'] / 60:.0f} min at {_threads(r)} CPU thread(s), "
            f"{r['epochs']:.2f} epochs")
    init = r.get("init") or {}
    if init.get("train_seconds"):  # it started from another trained model: its minutes count
        what = "language model" if init.get("part") == "decoder" else "source model"
        text += (f", after the {init['train_seconds'] / 60:.0f} min of the {what} it starts "
                 f"from ({init['spec']}"
                 + (f": {init['own_train_seconds'] / 60:.0f} of its own after "
                    f"{init['before_it_seconds'] / 60:.0f} of the model it started from"
                    if init.get("before_it_seconds") else "")
                 + f"); {(r['train_seconds'] + init['train_seconds']) / 60:.0f} min in all")
    return text


def _seeds_text(r: dict[str, Any]) -> str:
    if "seeds" in r:
        return "seeds " + ", ".join(str(x) for x in r["seeds"]) + " (mean ± std)"
    return f"seed {_show(_seed(r))}"


def _means(r: dict[str, Any]) -> dict[str | None, dict[str, float]]:
    """Each sampler of a record and its metrics' means over the seeds."""
    return {sampler: {k: _mean_std([m[k] for m in ms])[0] for k in ms[0]
                      if isinstance(ms[0][k], (int, float))}
            for sampler, ms in _groups(r)}


def _goal_value(x: float, goal: float) -> str:
    """x to 4 decimals, or to as many as it takes to tell it from the goal it misses or meets
    (a validity of 0.99999 is not "1.0000")."""
    for digits in range(4, 10):
        if round(x, digits) != goal or x == goal:
            return f"{x:.{digits}f}"
    return f"{x!r}"


def _findings(parts: dict[str, Any]) -> list[str]:
    """Sentences computed from the records: goals met or not, the VAE against the LM."""
    lines = []
    for p, goals in GOALS.items():
        if p not in parts or "evaluations" not in parts[p]:
            continue
        # every prior a model has, each against the goals: none is picked by its test figures
        for prior, ms in _groups(parts[p]):
            m = {k: _mean_std([x[k] for x in ms])[0] for k in goals}
            verdicts = [f"{k} {_goal_value(m[k], v)} ({op} {v:g}: "
                        + ("met" if (m[k] >= v if op == ">=" else m[k] <= v) else "not met")
                        + ")" for k, (op, v) in goals.items()]
            lines.append(f"- {_label(parts[p], prior)}, mean of the seeds: "
                         + "; ".join(verdicts) + ".")
    for p, r in parts.items():  # what strict SELFIES drew again
        for sampler in _samplers(r):
            redrawn = [e for e in _evaluations(r, sampler) if "draws" in e]
            if redrawn:
                first = _mean_std([e["valid_without_redrawing"] for e in redrawn])[0]
                draws = _mean_std([e["draws"] for e in redrawn])[0]
                lines.append(
                    f"- {_label(r, sampler)}: {100 * first:.1f}% of the "
                    f"draws were strings SELFIES writes (the validity without "
                    f"redrawing, mean of the seeds); the {100 * (1 - first):.1f}% it repaired "
                    f"were drawn again, {draws:,.0f} draws in all per seed.")
    lms = [parts[p] for p in LM_PARTS if p in parts and "evaluations" in parts[p]]
    if lms:
        for p in (p for p in SEQVAE_PARTS if p not in LM_PARTS):
            if p not in parts or "evaluations" not in parts[p]:
                continue
            # the VAE's peer: the language model of the same representation (else any) with
            # the lowest FCD/Test (N(0, I) at T = 1) among those trained no longer than the VAE,
            # its source's minutes included (the LM given its best settings for the budget: a
            # better rate at fewer minutes beats a worse one at equal minutes); where none
            # trained no longer, the one whose budget is nearest
            same = [r for r in lms if _representation(r) == _representation(parts[p])] or lms
            within = [r for r in same if "standard" in _means(r)
                      and _total_seconds(r) <= 1.05 * _total_seconds(parts[p])]
            lm = (min(within, key=lambda r: _means(r)["standard"]["FCD/Test"]) if within else
                  min(same, key=lambda r: abs(_total_seconds(r) - _total_seconds(parts[p]))))
            lm_means = _means(lm)
            for prior, ms in _groups(parts[p]):
                # the LM's sampler of the same decoding (its only prior is N(0, I)): the same
                # temperature, index temperature, mask and strictness, else without the index one
                same_way = replace(Sampler.parse(prior), prior="standard")
                lm_key = next((s.key for s in (same_way, replace(same_way, index_temperature=None))
                               if s.key in lm_means), None)
                if lm_key is None:
                    continue
                lm_m = lm_means[lm_key]
                fcd = _mean_std([x["FCD/Test"] for x in ms])[0]
                valid = _mean_std([x["valid"] for x in ms])[0]
                ratio = fcd / lm_m["FCD/Test"]
                vae_cpu, lm_cpu = _train_cpu(parts[p]), _train_cpu(lm)
                kind = ("" if vae_cpu == lm_cpu else
                        f"; not like for like: the VAE trained on {vae_cpu} "
                        f"({parts[p]['steps']:,} steps), the LM on {lm_cpu} ({lm['steps']:,})")
                if _representation(lm) != _representation(parts[p]):
                    kind += (f"; the LM writes {_representation(lm).upper()}, the VAE "
                             f"{_representation(parts[p]).upper()}")
                vae_min, lm_min = _total_seconds(parts[p]) / 60, _total_seconds(lm) / 60
                if abs(vae_min - lm_min) > 0.05 * lm_min:
                    kind += (f"; not at the same budget: {vae_min:.0f} min in all for the VAE, "
                             f"{lm_min:.0f} for the LM")
                lines.append(
                    f"- {_label(parts[p], prior)} against {_label(lm, lm_key)} at "
                    f"{lm_min:.0f} min in all: FCD/Test {fcd:.4f} against "
                    f"{lm_m['FCD/Test']:.4f} ({ratio:.2f}x; within 10%: "
                    f"{'yes' if ratio <= 1.1 else 'no'}), validity {valid:.4f} against "
                    f"{lm_m['valid']:.4f} ({100 * (valid - lm_m['valid']):+.1f} points){kind}.")
    from benchmarks.shipped import SHIPPED
    names = _shipped_names()
    for p in (p for p in SEQVAE_PARTS if p in parts):
        if _shipped_from(p, names) != SHIPPED[p][0]:  # the part ships under another name
            continue
        shipped = _shipped_steps(SHIPPED[p][0])
        by = next((q for q in parts if q != p and q in SHIPPED
                   and _shipped_from(q, names) == SHIPPED[p][0]), None)
        if by is not None:
            lines.append(f"- seqvae/pretrained/{SHIPPED[p][0]} now holds the model of "
                         f"{parts[by]['label']}; the rows of {parts[p]['label']} are of the "
                         f"one it held before ({parts[p]['steps']:,} steps).")
        elif shipped is not None and shipped != parts[p].get("steps"):
            lines.append(f"- seqvae/pretrained/{SHIPPED[p][0]} now holds a model trained "
                         f"{shipped:,} steps; the rows of {parts[p]['label']} are of the earlier "
                         f"one ({parts[p]['steps']:,} steps) until `python -m benchmarks.moses "
                         f"--part {p}` runs again.")
    return lines


def _representation(r: dict[str, Any]) -> str:
    """The strings a record's model writes: SELFIES for the SELFIES parts, else SMILES."""
    return "selfies" if str(r.get("part", "")).startswith("selfies") else "smiles"


def _total_seconds(r: dict[str, Any]) -> float:
    """A record's training seconds and those of the model it started from, if any."""
    return r["train_seconds"] + ((r.get("init") or {}).get("train_seconds") or 0)


def _train_cpu(r: dict[str, Any]) -> str:
    """The kind of CPU a seqvae part's model trained on (its last sitting's machine)."""
    sittings = r.get("sittings") or [{}]
    return cpu_kind(sittings[-1].get("machine") or r.get("machine"))


def table() -> str:
    """moses.md from the parts' records there are."""
    # each row named as LABELS names its part now (a candidate shipped since keeps its record)
    parts = {p: {**json.loads((RESULTS_DIR / f"moses_{p}.json").read_text()), "label": LABELS[p]}
             for p in PARTS if (RESULTS_DIR / f"moses_{p}.json").exists()}
    lines = ["# MOSES benchmark at a fixed CPU budget", ""]
    if parts:
        rs = list(parts.values())

        def one_or_each(values: list[str]) -> str:
            if len(set(values)) == 1:
                return values[0]
            return "; ".join(f"{r['label']}: {v}" for r, v in zip(rs, values))

        derived = [] if all("train_molecules" in r for r in rs) else [
            "training molecules read: molecules seen / epochs where a record predates the "
            "count"]
        if not all("seed" in r or "seeds" in r for r in rs):
            derived.append("seed: from the recorded command where a record predates the field")
        lines += [
            "Each model trained for a wall-clock budget on "
            + one_or_each([f"`{r['train_data']}`" for r in rs]) + " ("
            + one_or_each([_show(_train_molecules(r)) for r in rs])
            + " training molecules read) on the machine(s) below, then "
            + one_or_each([f"{r['n_samples']:,}" for r in rs])
            + " prior samples per seed (" + one_or_each([_seeds_text(r) for r in rs])
            + ") measured by `seqvae.metrics` against the MOSES test and scaffold-test splits "
            "(molsets' own reference statistics). A VAE is sampled from each prior it has: "
            "N(0, I), and the aggregate posterior fitted to 20,000 training codes after "
            "training (seqvae.priors), decoded at temperature 1 unless a row names another "
            "(chosen on validation molecules by benchmarks/samplers.py). Published rows: molecularsets/moses README "
            "(30,000 samples, mean of 3 seeds) via ../shared/ANCHORS.md, each trained as "
            "published (days on a GPU); shown for scale."
            + (f" ({'; '.join(derived)}.)" if derived else ""), ""]
    lines += ["| model | budget | " + " | ".join(HEADERS) + " |",
              "|---" * (len(HEADERS) + 2) + "|"]
    for p, r in parts.items():
        for prior, ms in _groups(r):
            lines.append(f"| {_label(r, prior)} | {_budget(r)} | "
                         + " | ".join(_cell([m[c] for m in ms]) for c in COLUMNS) + " |")
    for name, values in PUBLISHED.items():
        lines.append(f"| {name} (published) | as published | " + " | ".join(f"{v}" for v in values) + " |")
    findings = _findings(parts)
    if findings:
        lines += [""] + findings
    lines += ["", "Also measured (seqvae.metrics; not in the MOSES README): Wasserstein distances "
              "to the test split and GuacaMol's scores.", "",
              "| model | logP | SA | QED | weight | KL score | FCD score | Frag TestSF | SNN TestSF |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p, r in parts.items():
        for prior, ms in _groups(r):
            lines.append(f"| {_label(r, prior)} | " + " | ".join(
                _cell([m[c] for m in ms]) for c in ("logP", "SA", "QED", "weight", "KL score",
                                                    "FCD score", "Frag/TestSF", "SNN/TestSF"))
                + " |")
    lines += ["", "## Runs", ""]
    for p, r in parts.items():
        lines += _run_lines(p, r)
    if parts:
        _curve_picture(parts)
        counts = {f"{r['curve_samples']:,}" if "curve_samples" in r else "not recorded"
                  for r in parts.values()}
        per_point = (counts.pop() if len(counts) == 1 else "; ".join(
            f"{r['label']} {r.get('curve_samples', 'not recorded')}" for r in parts.values()))
        lines += ["", f"FCD/Test against training time (samples per point: {per_point}; "
                  "seqvae's runs: a snapshot of the weights every 10 training minutes): "
                  "moses_fcd_curve.png.", ""]
        lines.append(machines_markdown([(r["label"], r.get("machine")) for r in parts.values()]))
    return "\n".join(lines)


def _run_lines(p: str, r: dict[str, Any]) -> list[str]:
    """The Runs section's lines of one record."""
    cpus = r["machine"].get("cpus_usable")
    threads = r.get("torch_threads")
    if "evaluations" not in r:  # trained and sampled in this process (molsets; older records)
        lines = [f"- {r['label']}: {r['parameters']:,} parameters, {r['steps']:,} steps, "
                 f"{r['molecules_seen']:,} molecules seen in {r['train_seconds']:.0f} s "
                 f"(set-up {r['setup_seconds']:.0f} s, off the clock); sampling {r['n_samples']:,} took "
                 f"{r['sample_seconds']:.0f} s, all metrics {r['metrics_seconds']:.0f} s. "
                 f"Config: {r['config']}." + (f" Command: `{r['command']}`." if "command" in r else ""),
                 f"  Seed {_show(_seed(r))}; training molecules read {_show(_train_molecules(r))}; validation "
                 f"data {_valid_data(r)}.",
                 f"  Load while training: {load_text(r.get('train_load_average'), threads, cpus)}; "
                 f"while sampling and scoring: "
                 f"{load_text(r.get('sample_metrics_load_average'), threads, cpus)}."]
        if p == "molsets":
            lines.append(f"  KL weight: {_kl_text(r)}.")
        return lines + [f"  Pictures: moses_{p}_samples.png, moses_{p}_properties.png."]
    sittings = r["sittings"]
    loads = "; ".join(f"sitting {i + 1} ({s['steps_from']:,} to {s['steps_to']:,} steps): "
                      + load_text(s.get("load_average"), s["machine"].get("torch_threads"),
                                  s["machine"].get("cpus_usable"))
                      for i, s in enumerate(sittings))
    peak = r["gemm_peak"]
    bf16 = ("bf16 not run (bfloat16 is not native here). " + gemm_text(peak) if not peak.get("bf16_native")
            else "bf16: not measured in this record")
    sample_s = [e["sample_seconds"] for e in r["evaluations"]]
    metric_s = [e["metrics_seconds"] for e in r["evaluations"]]
    return [
        f"- {r['label']}: {r['parameters']:,} parameters, {r['steps']:,} steps, "
        f"{r['molecules_seen']:,} molecules seen in {r['train_seconds']:.0f} s of training "
        f"({r['precision']}) over {len(sittings)} sitting(s). Command: `{r['command']}` "
        "(`python -m benchmarks.shipped train " + p + "` runs it, resumed where it stopped).",
        f"  Training speed: {r['molecules_per_s']:.0f} molecules/s, {r['tokens_per_s']:,.0f} "
        f"tokens/s (mean of the run's logged windows); {r['flops_per_token'] / 1e6:.2f} MFLOP "
        f"per token (forward and backward, counted by torch), so {r['achieved_gflops']:.1f} "
        f"GFLOP/s achieved: {100 * r['gflops_share_of_peak']:.0f}% of this machine's fp32 "
        f"GEMM peak of {peak['fp32']['gflops']:.1f} GFLOP/s (measured with the evaluation). "
        + bf16,
        f"  Sampling {r['n_samples']:,}: {min(sample_s):.0f} to {max(sample_s):.0f} s; all "
        f"metrics {min(metric_s):.0f} to {max(metric_s):.0f} s. Training molecules read "
        f"{_show(_train_molecules(r))}; validation data {_valid_data(r)}.",
        f"  Load while training: {loads}.",
        "  Pictures: " + ", ".join(f"moses_{p}_{Sampler.parse(s).tag}_samples.png, "
                                    f"moses_{p}_{Sampler.parse(s).tag}_properties.png"
                                    for s in _samplers(r)) + " (first seed)."]


def _curve_picture(parts: dict[str, Any]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for p, r in parts.items():
        t = [pt["train_seconds"] / 60 for pt in r["curve"]]
        ax1.plot(t, [pt["fcd_test"] for pt in r["curve"]], marker="o", label=r["label"])
        ax2.plot(t, [pt["validity"] for pt in r["curve"]], marker="o", label=r["label"])
    ax1.set_yscale("log")
    ax1.set_xlabel("training minutes (CPU)")
    ax1.set_ylabel("FCD/Test (2,000 samples)")
    ax2.set_xlabel("training minutes (CPU)")
    ax2.set_ylabel("valid fraction of prior samples")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / "moses_fcd_curve.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=[*PARTS, "table"], required=True)
    parser.add_argument("--minutes", type=float, default=150,
                        help="molsets' training budget (seqvae's: benchmarks.shipped)")
    parser.add_argument("--seed", type=int, default=0, help="molsets' training seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help="sampling seeds of a seqvae part")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0],
                        help="decoding temperatures of a seqvae part, each a row per prior "
                        "(choose one on validation molecules with benchmarks.samplers)")
    parser.add_argument("--index-temperatures", type=float, nargs="*", default=[],
                        help="a SELFIES part: each prior and temperature also with the ring and "
                        "branch index symbols at each of these temperatures (0: the most likely)")
    parser.add_argument("--syntax", action="store_true",
                        help="a SMILES part: each sampler also with the SMILES syntax mask "
                        "(sample(syntax=True)), as rows of their own")
    parser.add_argument("--strict", action="store_true",
                        help="a SELFIES part: each sampler also with strict SELFIES "
                        "(sample(strict=True): a string SELFIES had to repair is invalid)")
    parser.add_argument("--every", type=float, default=450, help="seconds between curve points")
    parser.add_argument("--train", default="moses:train", help="training data (a quick trial: "
                        "default:moses_train)")
    parser.add_argument("--samples", type=int, default=N_SAMPLES)
    parser.add_argument("--curve-only", action="store_true",
                        help="a seqvae part: only the FCD curve from the run's snapshots, kept "
                        "in benchmarks/results/shipped/NAME/curve.json for a later evaluation")
    args = parser.parse_args()
    if args.curve_only:
        if args.part not in SEQVAE_PARTS:
            parser.error("--curve-only is for a seqvae part: " + ", ".join(SEQVAE_PARTS))
        summary = json.loads(_run_file(args.part, "summary.json").read_text())
        points = curve_part(args.part, _model(args.part, summary), summary)
        if not points:
            raise SystemExit(f"no snapshots in {_run_folder(args.part)}/snapshots")
        print(f"{len(points)} curve point(s) kept in {_record_folder(args.part)}/curve.json")
        return
    if args.part in SEQVAE_PARTS:
        result = evaluate_part(args.part, tuple(args.seeds), args.samples,
                               tuple(args.temperatures), tuple(args.index_temperatures),
                               args.syntax, args.strict)
    elif args.part == "molsets":
        result = train_part(args.part, args.minutes, args.seed, args.every, args.train, args.samples)
    if args.part != "table":
        path = RESULTS_DIR / f"moses_{args.part}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
    text = table()
    (RESULTS_DIR / "moses.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
