"""Sentence VAEs on the Brown corpus at a fixed CPU budget: a plain LSTM language model and
VAEs with the recipes against posterior collapse, all evaluated on the Brown test split by
seqvae.metrics.text (importance-weighted NLL with k = 100, PPL, ELBO terms, active units, MI,
reconstruction BLEU, diversity of prior samples).

One part per model, each trained for --minutes of wall clock on this machine and then
evaluated; each writes benchmarks/results/text_brown_<part>.json and rebuilds text_brown.md
and text_brown_curves.png from whatever parts exist:

    python -m benchmarks.text_brown --part lm --minutes 20
    python -m benchmarks.text_brown --part anneal --minutes 20
    python -m benchmarks.text_brown --part anneal_wd --minutes 20
    python -m benchmarks.text_brown --part fb_ae --minutes 20
    python -m benchmarks.text_brown --part transformer --minutes 20
    python -m benchmarks.text_brown --part table

A quick trial of the whole pipeline: --minutes 0.5 --k 5 --samples 100.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, machine, machine_markdown, peak_rss_mib

RUNS = Path("runs/text_brown")
# part -> (label, config file, overrides of it)
PARTS: dict[str, tuple[str, str, list[str]]] = {
    "lm": ("LSTM language model (no z)", "brown_lstm_lm.toml", []),
    "anneal": ("LSTM VAE, KL annealing only", "brown_lstm_vae.toml",
               ["train.free_bits=0.0", "train.pretrain_steps=0"]),
    "anneal_wd": ("LSTM VAE, annealing + word dropout 0.3", "brown_lstm_vae.toml",
                  ["train.free_bits=0.0", "train.pretrain_steps=0", "train.word_dropout=0.3"]),
    # the shipped config as it is
    "fb_ae": ("LSTM VAE, annealing + free bits 0.2/dim + 500 steps of AE pre-training",
              "brown_lstm_vae.toml", []),
    "transformer": ("Transformer-decoder VAE, annealing + free bits 0.2/dim",
                    "brown_transformer_vae.toml", []),
}
COLUMNS = [("NLL", "NLL", 2), ("PPL", "PPL", 1), ("recon", "recon", 2), ("KL", "KL", 2),
           ("AU", "active_units", 0), ("MI", "MI", 2), ("recon BLEU", "recon_BLEU", 1),
           ("distinct-2", "distinct_2", 3), ("self-BLEU", "self_BLEU", 1)]
# ../shared/ANCHORS.md, "Text: sentence VAEs": word-level PTB, NLL in nats per sentence
PUBLISHED = [
    ("Texar VAE, LSTM decoder", "102.10", "-", "105.48", "asyml/texar examples/vae_text README"),
    ("Texar VAE, Transformer decoder", "101.48", "-", "102.53", "same"),
    ("timbmg/Sentence-VAE (GRU 256, latent 16)", "103.97", "7.27", "about 160", "its README"),
    ("PaddleNLP vae-seq2seq", "102.76", "-", "108.71", "PaddleNLP README"),
    ("LSTM LM / VAE (Bowman et al. 2016)", "100 / 101", "- / 2", "116 / 119", "unverified"),
]
INTERPOLATION = ("he was a tall man with a long face .", "the children played in the garden .")


def run_part(part: str, minutes: float, seed: int, k: int, n_samples: int) -> dict[str, Any]:
    """Train one model for ``minutes``, evaluate it on the Brown test split, return the record."""
    from seqvae import load
    from seqvae.config import load_config
    from seqvae.data import read_strings, resolve_data
    from seqvae.metrics.text import evaluate_text
    from seqvae.trainer import Trainer

    label, config_name, overrides = PARTS[part]
    out = RUNS / part
    if out.exists():
        import shutil
        shutil.rmtree(out)
    settings = overrides + [f'train.out_dir="{out}"', f"train.max_minutes={minutes}",
                            f"train.seed={seed}"]
    config = load_config(files("seqvae").joinpath("configs", config_name), settings)
    trainer = Trainer(config, progress=True)
    summary = trainer.fit()
    vae = load(out)
    test = read_strings(resolve_data("default:brown_test"))
    start = time.perf_counter()
    report = evaluate_text(vae, test, k=k, n_samples=n_samples,
                           train_sentences=vae.training_sentences(), seed=seed)
    evaluate_seconds = time.perf_counter() - start
    if report.metrics["latent_dim"]:
        from seqvae.viz import latent_map
        latent_map(report.mu, [len(s.split()) for s in report.reconstructions["input"]],
                   RESULTS_DIR / f"text_brown_{part}_latent.png", "words",
                   f"{label}: Brown test posterior means")
    path = vae.interpolate(*INTERPOLATION, steps=5)
    import pandas as pd
    log = pd.read_csv(out / "log.csv")
    valid = log.dropna(subset=["valid_neg_elbo"])
    samples = report.samples.head(10)
    return {
        "part": part, "label": label, "config": f"seqvae/configs/{config_name}"
        + (" + " + " ".join(overrides) if overrides else ""),
        "command": f"python -m benchmarks.text_brown --part {part} --minutes {minutes:g} "
                   f"--seed {seed}" + (f" --k {k}" if k != 100 else "")
                   + (f" --samples {n_samples}" if n_samples != 1000 else ""),
        "minutes": minutes, "train_seconds": summary["elapsed_s"], "steps": summary["step"],
        "epochs": summary["step"] / trainer.steps_per_epoch,
        "parameters": summary["parameters"], "precision": summary["precision"],
        "data": summary["data"], "metrics": report.metrics,
        "evaluate_seconds": evaluate_seconds,
        "samples": [{"text": t, "NLL": float(n), "novel": bool(v)} for t, n, v in
                    zip(samples["text"], samples["NLL"], samples.get("novel", [True] * 10))],
        "interpolation": {"from": INTERPOLATION[0], "to": INTERPOLATION[1],
                          "path": [{"t": float(t), "text": s}
                                   for t, s in zip(path["t"], path["text"])]},
        "curve": [{"step": int(r.step), "elapsed_s": float(r.elapsed_s),
                   "valid_recon": float(r.valid_recon), "valid_kl": float(r.valid_kl),
                   "active_units": float(r.active_units)} for r in valid.itertuples()],
        "peak_rss_mib": peak_rss_mib(), "machine": machine(),
    }


def table() -> str:
    parts = {p: json.loads((RESULTS_DIR / f"text_brown_{p}.json").read_text())
             for p in PARTS if (RESULTS_DIR / f"text_brown_{p}.json").exists()}
    lines = ["# Sentence VAEs on the Brown corpus at a fixed CPU budget", "",
             "Each model trained for the stated wall-clock budget on the Brown training split "
             "(data/brown_train.txt.gz, 50,718 sentences) on the machine below, and evaluated "
             "on the Brown test split (2,850 sentences) by `seqvae.metrics.text`. NLL: "
             "importance-weighted, k samples per sentence (the LM's is exact), nats per "
             "sentence; PPL = exp(total NLL / total (words + 1)), the +1 being the end token; "
             "recon and KL: the two terms of the negative ELBO; AU: active units "
             "(Cov_x E[z] > 0.01) of the latent size; MI: He et al. 2019's estimator over the "
             "whole test split; recon BLEU: corpus BLEU-4 of greedy reconstructions from the "
             "posterior mean; distinct-2 and self-BLEU over the prior samples.", ""]
    head = ["model", "budget", "k", *[c[0] for c in COLUMNS], "train time"]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for p, r in parts.items():
        m = r["metrics"]
        cells = []
        for _, key, digits in COLUMNS:
            value = m.get(key, float("nan"))
            if key == "active_units":
                cells.append(f"{int(value)} / {m['latent_dim']}" if m["latent_dim"] else "-")
            elif key in ("KL", "MI") and not m["latent_dim"]:
                cells.append("-")
            else:
                cells.append(f"{value:.{digits}f}")
        lines.append(f"| {r['label']} | {r['minutes']:g} min | {m['k']} | " + " | ".join(cells)
                     + f" | {r['train_seconds'] / 60:.1f} min |")
    lines += ["", "Published rows on the Penn Treebank (../shared/ANCHORS.md), for orientation "
              "only: a different corpus (PTB: lower-cased, 10k vocabulary, 42k training "
              "sentences; Brown here: 50.7k sentences, lower-cased by these configs, 10k "
              "vocabulary), and trained for hours on GPUs.", "",
              "| model (PTB) | NLL | KL | PPL | source |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in PUBLISHED]
    if "lm" in parts:
        lm = parts["lm"]["metrics"]["NLL"]
        lines += ["", "## Against the language model", "",
                  "| model | NLL / LM NLL | KL >= 5 | AU >= 1/4 |", "|---|---|---|---|"]
        for p, r in parts.items():
            m = r["metrics"]
            if p == "lm":
                continue
            lines.append(f"| {r['label']} | {m['NLL'] / lm:.4f} | "
                         f"{'yes' if m['KL'] >= 5 else 'no'} | "
                         f"{'yes' if m['active_units'] >= m['latent_dim'] / 4 else 'no'} |")
    for p, r in parts.items():
        lines += ["", f"## {r['label']}", "",
                  f"{r['parameters']:,} parameters, {r['steps']:,} steps ({r['epochs']:.2f} "
                  f"epochs) in {r['train_seconds']:.0f} s, {r['precision']}; evaluation "
                  f"{r['evaluate_seconds']:.0f} s. Config: {r['config']}. "
                  f"Command: `{r['command']}`.", "", "Ten prior samples (temperature 1; "
                  "* = found verbatim in the training data):", ""]
        lines += [f"{i + 1}. {s['text']}{'' if s['novel'] else ' *'}"
                  for i, s in enumerate(r["samples"])]
        path = r["interpolation"]
        lines += ["", f"Interpolation between the posterior means of \"{path['from']}\" and "
                  f"\"{path['to']}\" (greedy decoding):", ""]
        lines += [f"- t = {pt['t']:.2f}: {pt['text']}" for pt in path["path"]]
    if parts:
        _curves(parts)
        lines += ["", "Validation reconstruction term, KL and active units during training: "
                  "text_brown_curves.png. Posterior means of the test sentences on their first "
                  "two principal components, coloured by length: text_brown_<part>_latent.png.",
                  "", "## Machine", ""]
        first = next(iter(parts.values()))
        lines += [machine_markdown(first["machine"]), ""]
    return "\n".join(lines)


def _curves(parts: dict[str, Any]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for r in parts.values():
        t = [pt["elapsed_s"] / 60 for pt in r["curve"]]
        for ax, key in zip(axes, ("valid_recon", "valid_kl", "active_units")):
            ax.plot(t, [pt[key] for pt in r["curve"]], marker="o", label=r["label"])
    for ax, name in zip(axes, ("validation recon (nats/sentence)", "validation KL (nats)",
                               "active units")):
        ax.set_xlabel("training minutes (CPU)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / "text_brown_curves.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=[*PARTS, "table"], required=True)
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=100, help="importance samples per sentence")
    parser.add_argument("--samples", type=int, default=1000, help="prior samples")
    args = parser.parse_args()
    if args.part != "table":
        result = run_part(args.part, args.minutes, args.seed, args.k, args.samples)
        path = RESULTS_DIR / f"text_brown_{args.part}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
    text = table()
    (RESULTS_DIR / "text_brown.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
