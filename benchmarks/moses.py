"""The MOSES benchmark at a fixed CPU budget: seqvae's SMILES and SELFIES VAEs and molsets' VAE,
each trained for the same wall-clock time on the full MOSES training split on this machine,
30,000 prior samples each, every metric of seqvae.metrics, beside the published MOSES rows.

    python -m benchmarks.moses --part smiles --minutes 45
    python -m benchmarks.moses --part selfies --minutes 45
    python -m benchmarks.moses --part molsets --minutes 45
    python -m benchmarks.moses --part table          # rebuild moses.md from the parts there are

Each part trains one model (the clock stops while snapshots are taken), writes
benchmarks/results/moses_<part>.json, a grid of samples and property histograms against the
test split, then rebuilds benchmarks/results/moses.md and the curve of FCD/Test against
training time (moses_fcd_curve.png: each snapshot sampled 2,000 times, FCD of its valid
samples to the MOSES test statistics; FCD is biased upwards at that sample size, so the curve
shows the trend and the table the 30,000-sample figure). Runs go to runs/moses/<part>.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import RESULTS_DIR, machine, machine_markdown, peak_rss_mib

RUNS = Path("runs") / "moses"
N_SAMPLES = 30_000
CURVE_SAMPLES = 2_000
PARTS = ("smiles", "selfies", "molsets")
# seqvae's configuration for this budget: the default encoder, a wider decoder (GRU-512), KL
# weight annealed to 0.5 with a free-bits floor; on top of seqvae/configs/moses_<part>.toml.
SEQVAE_OVERRIDES = [
    'data.train="moses:train"', 'data.valid="default:moses_test"',
    "model.decoder_hidden=512", "train.batch_size=512", "train.lr=1e-3",
    "train.kl_weight=0.5", "train.kl_warmup_steps=3000", "train.free_bits=0.1",
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
        args = argparse.Namespace(train_file=train, valid_file="default:moses_test",
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
    run.train(curve)
    train_seconds = curve.elapsed()
    curve.record()
    result: dict[str, Any] = {"part": part, "label": LABELS[part], "minutes": minutes,
                              "train_seconds": train_seconds, "steps": curve.steps,
                              "molecules_seen": curve.molecules,
                              "train_data": train,
                              "epochs": curve.molecules / len(train_strings),
                              "parameters": run.parameters, "setup_seconds": setup_seconds}
    if part == "molsets":
        run.save(out)
        sample = lambda n, s: _molsets_samples(run, n, s)  # noqa: E731
        result["config"] = "molsets' vae_parser defaults, batch 512 (its code, see molsets_compare)"
    else:
        run.trainer.state["elapsed_s"] = train_seconds
        run.trainer.save()
        sample = lambda n, s: _seqvae_samples(run, n, s)  # noqa: E731
        result["config"] = (f"seqvae/configs/moses_{part}.toml + data.train=\"{train}\" "
                            + " ".join(SEQVAE_OVERRIDES[1:]))
    result["command"] = (f"python -m benchmarks.moses --part {part} --minutes {minutes:g} "
                         f"--seed {seed}" + (f" --train {train}" if train != "moses:train" else "")
                         + (f" --samples {n_samples}" if n_samples != N_SAMPLES else ""))
    result["n_samples"] = n_samples
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
    # the final model: 30,000 samples, every metric
    start = time.perf_counter()
    strings = sample(n_samples, seed)
    result["sample_seconds"] = time.perf_counter() - start
    import pandas as pd
    pd.DataFrame({"SMILES": strings}).to_csv(out / "samples.csv", index=False)
    from seqvae.metrics import evaluate_molecules
    start = time.perf_counter()
    report = evaluate_molecules(strings, "moses", progress=True)
    result["metrics_seconds"] = time.perf_counter() - start
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


def table() -> str:
    parts = {p: json.loads((RESULTS_DIR / f"moses_{p}.json").read_text())
             for p in PARTS if (RESULTS_DIR / f"moses_{p}.json").exists()}
    lines = ["# MOSES benchmark at a fixed CPU budget", "",
             "Every model trained for the same wall-clock budget on the full MOSES training "
             "split (1,584,663 SMILES) on the machine below, then 30,000 prior samples "
             "(seed 0) measured by `seqvae.metrics` against the MOSES test and scaffold-test "
             "splits (molsets' own reference statistics). Published rows: molecularsets/moses "
             "README via ../shared/ANCHORS.md, trained for days on a GPU; shown for scale.", ""]
    lines += ["| model | budget | " + " | ".join(HEADERS) + " |",
              "|---" * (len(HEADERS) + 2) + "|"]
    for p, r in parts.items():
        m = r["metrics"]
        lines.append(f"| {r['label']} | {r['train_seconds'] / 60:.0f} min CPU, "
                     f"{r['epochs']:.2f} epochs | " + " | ".join(f"{m[c]:.4f}" for c in COLUMNS) + " |")
    for name, values in PUBLISHED.items():
        lines.append(f"| {name} (published) | days, GPU | " + " | ".join(f"{v}" for v in values) + " |")
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
        lines += [f"- {r['label']}: {r['parameters']:,} parameters, {r['steps']:,} steps, "
                  f"{r['molecules_seen']:,} molecules seen in {r['train_seconds']:.0f} s "
                  f"(set-up {r['setup_seconds']:.0f} s, off the clock); sampling {r['n_samples']:,} took "
                  f"{r['sample_seconds']:.0f} s, all metrics {r['metrics_seconds']:.0f} s. "
                  f"Config: {r['config']}." + (f" Command: `{r['command']}`." if "command" in r else ""),
                  f"  Pictures: moses_{p}_samples.png, moses_{p}_properties.png."]
    if parts:
        _curve_picture(parts)
        lines += ["", "FCD/Test against training time (2,000 samples per point): "
                  "moses_fcd_curve.png.", ""]
        lines += ["## Machine", ""]
        for p, r in parts.items():
            lines += [f"{r['label']}:", "", machine_markdown(r["machine"]), ""]
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
