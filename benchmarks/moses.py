"""The MOSES benchmark at a fixed CPU budget: seqvae's SMILES and SELFIES VAEs and molsets' VAE,
each trained for the same wall-clock time on the full MOSES training split on this machine,
--samples prior samples each (30,000 by default, as MOSES does), every metric of
seqvae.metrics, beside the published MOSES rows.

    python -m benchmarks.moses --part smiles --minutes 45
    python -m benchmarks.moses --part selfies --minutes 45
    python -m benchmarks.moses --part molsets --minutes 45
    python -m benchmarks.moses --part table          # rebuild moses.md from the parts there are

Each part trains one model (the clock stops while snapshots are taken), writes
benchmarks/results/moses_<part>.json, a grid of samples and property histograms against the
test split, then rebuilds benchmarks/results/moses.md and the curve of FCD/Test against
training time (moses_fcd_curve.png: each snapshot sampled CURVE_SAMPLES times, FCD of its
valid samples to the MOSES test statistics; FCD is biased upwards at that sample size, so the
curve shows the trend and the table the full-sample figure). Runs go to runs/moses/<part>.

Validation data (seqvae's data.valid) is MOSES' validation file shipped with seqvae
(default:moses_valid), never the test split the metrics are computed on. molsets' KL weight
follows its own KLAnnealer spread over the budget (see molsets_compare.MolsetsRun.train), as
seqvae's runs get a KL schedule sized for the budget.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (RESULTS_DIR, LoadMonitor, load_text, machine, machines_markdown,
                               peak_rss_mib)

RUNS = Path("runs") / "moses"
N_SAMPLES = 30_000
CURVE_SAMPLES = 2_000
PARTS = ("smiles", "selfies", "molsets")
# validation data for seqvae's Trainer: MOSES' validation molecules, not its test split (the
# test split is what the metrics compare samples with)
VALID = "default:moses_valid"
# seqvae's configuration for this budget: the default encoder, a wider decoder (GRU-512), KL
# weight annealed to 0.5 with a free-bits floor; on top of seqvae/configs/moses_<part>.toml.
SEQVAE_OVERRIDES = [
    'data.train="moses:train"', f'data.valid="{VALID}"',
    "model.decoder_hidden=512", "train.batch_size=512", "train.lr=1e-3",
    "train.kl_weight=0.5", "train.kl_warmup_steps=3000", "train.kl_warmup_fraction=0", "train.free_bits=0.1",
]
LABELS = {"smiles": "seqvae SMILES VAE", "selfies": "seqvae SELFIES VAE",
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


def fcd_to_test(smiles: list[str]) -> tuple[float, float]:
    """(validity, FCD/Test of the valid ones) for a small curve point."""
    from seqvae.metrics import molecules as M
    from seqvae.metrics._features import canonical_pairs

    pairs = [p for p in canonical_pairs(smiles) if p is not None]
    if len(pairs) < 2:
        return len(pairs) / len(smiles), float("nan")
    stats = M.gaussian_stats(M.ChemNet().activations([p[1] for p in pairs]))
    test = _test_split()
    return len(pairs) / len(smiles), M.frechet_distance(test.fcd_mu, test.fcd_sigma, stats["mu"],
                                                        stats["sigma"])


def train_part(part: str, minutes: float, seed: int, every: float, train: str = "moses:train",
               n_samples: int = N_SAMPLES) -> dict[str, Any]:
    from benchmarks.molsets_compare import Curve, MolsetsRun, SeqvaeRun
    from seqvae.data import read_strings, resolve_data

    out = RUNS / part
    started = time.perf_counter()
    train_strings = read_strings(resolve_data(train))
    if part == "molsets":
        run = MolsetsRun(train_strings, 512, seed)
        module = run.model
    else:
        args = argparse.Namespace(train_file=train, valid_file=VALID,
                                  threads=0, seed=seed, batch_size=None)
        from importlib.resources import files
        config = files("seqvae").joinpath("configs", f"moses_{part}.toml")
        run = SeqvaeRun(part, args, out, minutes, config_file=config,
                        extra=SEQVAE_OVERRIDES[2:])
        module = run.trainer.model
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
    if part == "molsets":
        run.save(out)
        sample = lambda n, s: _molsets_samples(run, n, s)  # noqa: E731
        result["config"] = (f"molsets' vae_parser defaults, batch {run.config.n_batch} (its "
                            "code, see molsets_compare)")
        result["kl_schedule"] = run.kl_schedule
        result["kl_weight_at_end"] = run.kl_weight
        result["valid_data"] = None  # molsets' loop takes no validation data
    else:
        run.trainer.state.elapsed_s = train_seconds
        run.trainer.save()
        sample = lambda n, s: _seqvae_samples(run, n, s)  # noqa: E731
        result["config"] = (f"seqvae/configs/moses_{part}.toml + data.train=\"{train}\" "
                            + " ".join(SEQVAE_OVERRIDES[1:]))
        result["valid_data"] = VALID
    result["command"] = (f"python -m benchmarks.moses --part {part} --minutes {minutes:g} "
                         f"--seed {seed}" + (f" --train {train}" if train != "moses:train" else "")
                         + (f" --samples {n_samples}" if n_samples != N_SAMPLES else ""))
    result["n_samples"] = n_samples
    result["curve_samples"] = CURVE_SAMPLES
    # the curve: each snapshot's FCD/Test on CURVE_SAMPLES samples
    final_state = {k: v.clone() for k, v in module.state_dict().items()}
    points = []
    for point, state in zip(curve.points, snapshots.states):
        module.load_state_dict(state)
        validity, fcd = fcd_to_test(sample(CURVE_SAMPLES, seed))
        points.append({"train_seconds": point["train_seconds"], "steps": point["steps"],
                       "validity": validity, "fcd_test": fcd})
        print(f"  {point['train_seconds']:7.0f} s: valid {validity:.3f}, FCD/Test {fcd:.3f}",
              flush=True)
    module.load_state_dict(final_state)
    result["curve"] = points
    # the final model: n_samples samples, every metric
    with LoadMonitor(every=10.0) as load:
        start = time.perf_counter()
        strings = sample(n_samples, seed)
        result["sample_seconds"] = time.perf_counter() - start
        import pandas as pd
        pd.DataFrame({"SMILES": strings}).to_csv(out / "samples.csv", index=False)
        from seqvae.metrics import evaluate_molecules
        start = time.perf_counter()
        report = evaluate_molecules(strings, "moses", progress=True)
        result["metrics_seconds"] = time.perf_counter() - start
    result["sample_metrics_load_average"] = load.summary()
    result["metrics"] = report.metrics
    from seqvae.chem import molecule_grid
    from seqvae.viz import property_histograms
    molecule_grid(list(report.properties["SMILES"][:48]), RESULTS_DIR / f"moses_{part}_samples.png")
    property_histograms(report.properties, report.reference.splits["Test"].props,
                        RESULTS_DIR / f"moses_{part}_properties.png", sample_label=LABELS[part],
                        reference_label="MOSES test")
    result["peak_rss_mib"] = peak_rss_mib()
    result["machine"] = machine()
    return result


def _seqvae_samples(run, n: int, seed: int) -> list[str]:
    table = run.vae_model().sample(n, seed=seed, batch_size=1000)
    return list(table["SMILES"].fillna(""))


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


def table() -> str:
    """moses.md from the parts' records there are."""
    parts = {p: json.loads((RESULTS_DIR / f"moses_{p}.json").read_text())
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
        if not all("seed" in r for r in rs):
            derived.append("seed: from the recorded command where a record predates the field")
        lines += [
            "Each model trained for a wall-clock budget on "
            + one_or_each([f"`{r['train_data']}`" for r in rs]) + " ("
            + one_or_each([_show(_train_molecules(r)) for r in rs])
            + " training molecules read) on the machine(s) below, then "
            + one_or_each([f"{r['n_samples']:,}" for r in rs])
            + " prior samples (seed " + one_or_each([_show(_seed(r)) for r in rs])
            + ") measured by `seqvae.metrics` against the MOSES test and scaffold-test splits "
            "(molsets' own reference statistics). Published rows: molecularsets/moses README "
            "(30,000 samples, mean of 3 seeds) via ../shared/ANCHORS.md, each trained as "
            "published; shown for scale."
            + (f" ({'; '.join(derived)}.)" if derived else ""), ""]
    lines += ["| model | budget | " + " | ".join(HEADERS) + " |",
              "|---" * (len(HEADERS) + 2) + "|"]
    for p, r in parts.items():
        m = r["metrics"]
        lines.append(f"| {r['label']} | {r['train_seconds'] / 60:.0f} min at "
                     f"{r.get('torch_threads', r['machine']['torch_threads'])} CPU thread(s), "
                     f"{r['epochs']:.2f} epochs | " + " | ".join(f"{m[c]:.4f}" for c in COLUMNS) + " |")
    for name, values in PUBLISHED.items():
        lines.append(f"| {name} (published) | as published | " + " | ".join(f"{v}" for v in values) + " |")
    lines += ["", "Also measured (seqvae.metrics; not in the MOSES README): Wasserstein distances "
              "to the test split and GuacaMol's scores.", "",
              "| model | logP | SA | QED | weight | KL score | FCD score | Frag TestSF | SNN TestSF |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p, r in parts.items():
        m = r["metrics"]
        lines.append(f"| {r['label']} | " + " | ".join(
            f"{m[c]:.4f}" for c in ("logP", "SA", "QED", "weight", "KL score", "FCD score",
                                    "Frag/TestSF", "SNN/TestSF")) + " |")
    lines += ["", "## Runs", ""]
    for p, r in parts.items():
        cpus = r["machine"].get("cpus_usable")
        threads = r.get("torch_threads")
        lines += [f"- {r['label']}: {r['parameters']:,} parameters, {r['steps']:,} steps, "
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
        lines.append(f"  Pictures: moses_{p}_samples.png, moses_{p}_properties.png.")
    if parts:
        _curve_picture(parts)
        counts = {f"{r['curve_samples']:,}" if "curve_samples" in r else "not recorded"
                  for r in parts.values()}
        per_point = (counts.pop() if len(counts) == 1 else "; ".join(
            f"{r['label']} {r.get('curve_samples', 'not recorded')}" for r in parts.values()))
        lines += ["", f"FCD/Test against training time (samples per point: {per_point}): "
                  "moses_fcd_curve.png.", ""]
        lines.append(machines_markdown([(r["label"], r.get("machine")) for r in parts.values()]))
    return "\n".join(lines)


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
    parser.add_argument("--minutes", type=float, default=45)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=float, default=450, help="seconds between curve points")
    parser.add_argument("--train", default="moses:train", help="training data (a quick trial: "
                        "default:moses_train)")
    parser.add_argument("--samples", type=int, default=N_SAMPLES)
    args = parser.parse_args()
    if args.part != "table":
        result = train_part(args.part, args.minutes, args.seed, args.every, args.train, args.samples)
        path = RESULTS_DIR / f"moses_{args.part}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
    text = table()
    (RESULTS_DIR / "moses.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
