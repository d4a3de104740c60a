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

Levers that make z carry more of the sentence (issue 22), measured on the Brown *validation*
split (--split valid: recipes are chosen there, never on the test split):

    python -m benchmarks.text_brown --part fb_ae_frac --split valid  # schedules as fractions
    python -m benchmarks.text_brown --part fb05 --split valid      # + free bits 0.5 nats/dim
    python -m benchmarks.text_brown --part fb1 --split valid       # + free bits 1.0 nats/dim
    python -m benchmarks.text_brown --part bn --split valid        # + BN-VAE, gamma 1
    python -m benchmarks.text_brown --part bow --split valid       # + bag-of-words loss
    python -m benchmarks.text_brown --part fb05_bow --split valid  # free bits 0.5 + bag of words
    python -m benchmarks.text_brown --part bn_bow --split valid    # BN-VAE + bag of words
    python -m benchmarks.text_brown --part cyclical --split valid  # cyclical KL annealing
    python -m benchmarks.text_brown --part tf_bow --split valid    # Transformer encoder + BoW
    python -m benchmarks.text_brown --part aggr --split valid      # aggressive encoder updates
    python -m benchmarks.text_brown --part bn_aggr --split valid   # BN-VAE + aggressive
    python -m benchmarks.text_brown --part ae --split valid        # no KL: the BLEU ceiling
    python -m benchmarks.text_brown --part lm --split valid         # the LM they compare with

Every lever part starts from the recipe of brown_lstm_vae.toml before issue 22 (LSTM-512
decoder, free bits 0.2/dim) with its schedules given as shares of the budget (AE pre-training
10%, KL warm-up 50%), so each completes its recipe within the budget. The shipped recipe is the
BN-VAE lever with an LSTM-448 decoder (under 20 MB in float16).

The recipes of the shipped models (brown_lstm_vae.toml and brown_lstm_lm.toml as they are) at
the same budget, and the shipped models themselves (trained for longer by benchmarks/shipped.py,
evaluated as seqvae.load gives them, no training here):

    python -m benchmarks.text_brown --part shipped
    python -m benchmarks.text_brown --part shipped_lm
    python -m benchmarks.text_brown --part brown-vae --k 50
    python -m benchmarks.text_brown --part brown-lm

The held-out corpus check: the shipped recipe and its LM (SHIPPED_PART, SHIPPED_LM) retrained
on another corpus, raw text read by the punctuation split (data/PROVENANCE.md): their NLL ratio
beside Brown's.

    python -m benchmarks.text_brown --corpus kjv --part shipped_lm
    python -m benchmarks.text_brown --corpus kjv --part shipped

The mutual information of the shipped brown-vae over test and training sentences of several
counts N (over N sentences it cannot exceed log N: 7.96 nats on a 2,850-sentence split):

    python -m benchmarks.text_brown --part mi

Each record is benchmarks/results/text_brown[_CORPUS]_PART[_valid].json. A quick trial of the
whole pipeline: --minutes 0.5 --k 5 --samples 100.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from benchmarks.common import (BROWN_LM_BEFORE_22, BROWN_VAE_BEFORE_22, RESULTS_DIR, machine,
                               machines_markdown, peak_rss_mib, shipped_training)

RUNS = Path("runs/text_brown")
# The rows below "shipped" were measured with the configs' recipes before issue 22 made them
# the shipped models' (BN-VAE, schedules as shares of the budget, LSTM-448 decoders), and keep
# those recipes by these overrides
VAE = list(BROWN_VAE_BEFORE_22)
LM = list(BROWN_LM_BEFORE_22)
# the earlier recipe's schedules as shares of the budget instead of steps
FRACTIONS = VAE + ["train.pretrain_steps=0", "train.pretrain_fraction=0.1",
                   "train.kl_warmup_steps=0", "train.kl_warmup_fraction=0.5"]
# part -> (label, config file, overrides of it)
PARTS: dict[str, tuple[str, str, list[str]]] = {
    # the recipes of the shipped models, brown_lstm_vae.toml and brown_lstm_lm.toml as they are
    "shipped": ("LSTM VAE, the shipped recipe (BN-VAE gamma 1, free bits 0.2/dim, AE "
                "pre-training 10%, KL warm-up 50%, LSTM-448 decoder)", "brown_lstm_vae.toml", []),
    "shipped_lm": ("LSTM language model (no z), the shipped recipe (LSTM-448)",
                   "brown_lstm_lm.toml", []),
    "lm": ("LSTM language model (no z)", "brown_lstm_lm.toml", LM),
    "anneal": ("LSTM VAE, KL annealing only", "brown_lstm_vae.toml",
               VAE + ["train.free_bits=0.0", "train.pretrain_steps=0"]),
    "anneal_wd": ("LSTM VAE, annealing + word dropout 0.3", "brown_lstm_vae.toml",
                  VAE + ["train.free_bits=0.0", "train.pretrain_steps=0",
                         "train.word_dropout=0.3"]),
    # the recipe of brown_lstm_vae.toml before issue 22
    "fb_ae": ("LSTM VAE, annealing + free bits 0.2/dim + 500 steps of AE pre-training",
              "brown_lstm_vae.toml", VAE),
    "transformer": ("Transformer-decoder VAE, annealing + free bits 0.2/dim",
                    "brown_transformer_vae.toml", []),
    # levers for a latent that carries the sentence (chosen on the validation split). Each
    # starts from the earlier recipe with its schedules as shares of the budget (FRACTIONS), so
    # that every lever finishes its warm-up inside the budget on a slow CPU too
    "fb_ae_frac": ("LSTM VAE, the earlier recipe with its schedules as budget fractions "
                   "(AE pre-training 10%, KL warm-up 50%)", "brown_lstm_vae.toml", FRACTIONS),
    "fb05": ("LSTM VAE, fractions + free bits 0.5/dim", "brown_lstm_vae.toml",
             FRACTIONS + ["train.free_bits=0.5"]),
    "fb1": ("LSTM VAE, fractions + free bits 1.0/dim", "brown_lstm_vae.toml",
            FRACTIONS + ["train.free_bits=1.0"]),
    "bn": ("LSTM VAE, fractions + BN-VAE gamma 1", "brown_lstm_vae.toml",
           FRACTIONS + ["model.mu_batchnorm=1.0"]),
    "bow": ("LSTM VAE, fractions + bag-of-words loss", "brown_lstm_vae.toml",
            FRACTIONS + ["model.bag_of_words=true", "train.bow_weight=1.0"]),
    "fb05_bow": ("LSTM VAE, fractions + free bits 0.5/dim + bag-of-words loss",
                 "brown_lstm_vae.toml",
                 FRACTIONS + ["train.free_bits=0.5", "model.bag_of_words=true",
                              "train.bow_weight=1.0"]),
    # cyclical annealing after AE pre-training (Fu et al. 2019): four cycles over the 90% of
    # the budget left, the weight rising over the first half of each and held at 1 after
    "cyclical": ("LSTM VAE, fractions + cyclical KL annealing (4 cycles)", "brown_lstm_vae.toml",
                 FRACTIONS + ["train.kl_schedule=cyclical", "train.kl_warmup_fraction=0.225",
                              "train.kl_cycle_ratio=0.5"]),
    "bn_bow": ("LSTM VAE, fractions + BN-VAE gamma 1 + bag-of-words loss", "brown_lstm_vae.toml",
               FRACTIONS + ["model.mu_batchnorm=1.0", "model.bag_of_words=true",
                            "train.bow_weight=1.0"]),
    # aggressive inference-network training (He et al. 2019): from the end of AE pre-training
    # (10%) to 40% of the budget, the encoder is updated alone until its loss stops falling
    # (windows of 5 batches, at most 20) before each decoder update; on the earlier recipe
    # and on its BN-VAE variant (the shipped recipe's latent with the 512 decoder)
    "aggr": ("LSTM VAE, fractions + aggressive encoder updates to 40% of the budget",
             "brown_lstm_vae.toml", FRACTIONS + ["train.aggressive_fraction=0.4"]),
    "bn_aggr": ("LSTM VAE, fractions + BN-VAE gamma 1 + aggressive encoder updates to 40%",
                "brown_lstm_vae.toml",
                FRACTIONS + ["model.mu_batchnorm=1.0", "train.aggressive_fraction=0.4"]),
    # a Transformer encoder (2 layers, d_model 256, 4 heads) with the bag-of-words loss, the
    # pairing issue 22 names: attention reads the whole sentence at once, the loss asks z for
    # its words
    "tf_bow": ("LSTM VAE, fractions + Transformer encoder (2 layers) + bag-of-words loss",
               "brown_lstm_vae.toml",
               FRACTIONS + ["model.encoder=\"transformer\"", "model.encoder_layers=2",
                            "model.bag_of_words=true", "train.bow_weight=1.0"]),
    # the reconstruction ceiling: the shipped recipe's networks as a deterministic autoencoder
    # (z = mu, no KL, no noise) for the same budget, what its decoder can rebuild from a code
    # that need not follow any prior; it has no likelihood, so no NLL
    "ae": ("LSTM autoencoder, the shipped recipe's networks without KL or noise (the "
           "reconstruction ceiling)", "brown_lstm_vae.toml",
           ["model.variational=false", "model.mu_batchnorm=0.0", "train.free_bits=0.0",
            "train.pretrain_fraction=0.0"]),
}
# the parts of the held-out corpus check: the shipped recipe and its language model
SHIPPED_PART, SHIPPED_LM = "shipped", "shipped_lm"
# the shipped models themselves (seqvae.load(name), trained by benchmarks/shipped.py for a
# longer budget), evaluated as they ship: name -> label
PRETRAINED = {"brown-vae": "shipped model brown-vae (the shipped recipe)",
              "brown-lm": "shipped model brown-lm (its language model)"}
# corpus -> (training, validation, test data, overrides): Brown comes tokenized (the configs'
# whitespace split); the others are raw text, read by the punctuation split
CORPORA: dict[str, tuple[str, str, str, list[str]]] = {
    "brown": ("default:brown_train", "default:brown_valid", "default:brown_test", []),
    **{name: (f"default:{name}_train", f"default:{name}_valid", f"default:{name}_test",
              ['data.text_split="punctuation"']) for name in ("kjv", "enwiki")},
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


def record_name(part: str, corpus: str = "brown", split: str = "test", tag: str = "") -> str:
    """The results file stem of a part trained on ``corpus`` and evaluated on ``split``; a
    ``tag`` names a rerun of it kept beside the first (another machine: --tag)."""
    return ("text_brown" + ("" if corpus == "brown" else f"_{corpus}") + f"_{part}"
            + ("" if split == "test" else f"_{split}") + (f"@{tag}" if tag else ""))


def run_part(part: str, minutes: float, seed: int, k: int, n_samples: int,
             corpus: str = "brown", split: str = "test", tag: str = "") -> dict[str, Any]:
    """Train one model for ``minutes`` on ``corpus``, evaluate it on its ``split`` ("valid"
    to choose between recipes, "test" to report), return the record."""
    from seqvae import load
    from seqvae.config import load_config
    from seqvae.trainer import Trainer

    label, config_name, overrides = PARTS[part]
    train_data, valid_data, test_data, corpus_overrides = CORPORA[corpus]
    out = RUNS / ((part if corpus == "brown" else f"{corpus}_{part}") + (f"@{tag}" if tag else ""))
    if out.exists():
        import shutil
        shutil.rmtree(out)
    settings = overrides + corpus_overrides + [
        f'train.out_dir="{out}"', f"train.max_minutes={minutes}", f"train.seed={seed}",
        f'data.train="{train_data}"', f'data.valid="{valid_data}"',
        'train.precision="fp32"']  # most users' CPUs' precision, not bf16 where it exists
    config = load_config(files("seqvae").joinpath("configs", config_name), settings)
    trainer = Trainer(config, progress=True)
    summary = trainer.fit()
    record = {
        "part": part, "label": label, "corpus": corpus, "split": split, "tag": tag,
        "config": f"seqvae/configs/{config_name}"
        + (" + " + " ".join(overrides + corpus_overrides) if overrides + corpus_overrides
           else ""),
        "command": _command(part, seed, k, n_samples, corpus, split, minutes, tag),
        "minutes": minutes, "train_seconds": summary["elapsed_s"], "steps": summary["step"],
        "epochs": summary["step"] / trainer.steps_per_epoch,
        "parameters": summary["parameters"], "precision": summary["precision"],
        "data": summary["data"], "curve": _curve(out / "log.csv"),
    }
    if "aggressive" in summary:  # encoder-only and decoder-only updates of the aggressive phase
        record["aggressive"] = summary["aggressive"]
    sentences = test_data if split == "test" else valid_data
    return record | evaluate(load(out), label, sentences, record_name(part, corpus, split, tag),
                             k, n_samples, seed)


def run_pretrained(name: str, seed: int, k: int, n_samples: int) -> dict[str, Any]:
    """Evaluate the shipped model ``name`` as seqvae.load gives it (no training) on the Brown
    test split; its training (steps, minutes, data) from its config.json."""
    from seqvae import load

    vae = load(name)
    trained = shipped_training(name)
    if trained is None:
        raise SystemExit(f"seqvae/pretrained/{name} does not say how it was trained: export it "
                         f"with python -m benchmarks.shipped export {name}")
    notes = json.loads((Path(vae.path) / "config.json").read_text()).get("notes", {})
    config = vae.config
    record = {
        "part": name, "label": PRETRAINED[name], "corpus": "brown", "split": "test",
        "config": f"seqvae/pretrained/{name}/config.json"
        + (f" (trained by `{notes['trained_by']}`)" if notes.get("trained_by") else ""),
        "command": _command(name, seed, k, n_samples, "brown", "test"),
        "minutes": trained["minutes"],
        "train_seconds": notes["sittings"][-1]["train_seconds_to"],
        "steps": trained["steps"], "epochs": None,
        "parameters": sum(p.numel() for p in vae.model.parameters()),
        "precision": config.train.precision, "data": trained["data"],
        # the log that benchmarks/shipped.py keeps beside the run's record
        "curve": _curve(RESULTS_DIR / "shipped" / name / "log.csv"),
    }
    return record | evaluate(vae, PRETRAINED[name], CORPORA["brown"][2],
                             record_name(name), k, n_samples, seed)


# training sentences drawn (nested, seeded) for the mutual information of a shipped model
MI_SIZES = (1_000, 2_850, 10_000, 20_000)


def run_mi(name: str, seed: int) -> dict[str, Any]:
    """The mutual information I(x; z) of the shipped model ``name`` by He et al. 2019's
    estimator (seqvae.metrics.text.mutual_information) over N sentences, for the test split,
    the validation and test splits together (held out, 5,700 sentences) and nested random
    draws of MI_SIZES training sentences. Over the empirical distribution of
    N sentences I(x; z) <= H(x) = log N, so a split of 2,850 sentences cannot show more than
    7.96 nats; the larger draws show what the code carries beyond that."""
    import numpy as np
    import torch

    from seqvae import load
    from seqvae.data import read_strings, resolve_data
    from seqvae.metrics.text import mutual_information

    vae = load(name)

    def kept(data: str) -> list[str]:
        sentences = read_strings(resolve_data(data))
        return [s for s, reason in zip(sentences, vae.check(sentences)) if reason is None]

    def mi(sentences: list[str]) -> dict[str, float]:
        start = time.perf_counter()
        mu, logvar = vae.encode(sentences, batch_size=500)
        chunk = max(1, 2 ** 24 // (len(sentences) * mu.size(1)))  # (chunk, N, D) doubles
        value = mutual_information(mu, logvar, torch.Generator().manual_seed(seed), chunk)
        return {"n": len(sentences), "log_n": math.log(len(sentences)), "MI": value,
                "seconds": time.perf_counter() - start}

    test, train = kept(CORPORA["brown"][2]), kept(CORPORA["brown"][0])
    held_out = kept(CORPORA["brown"][1]) + test  # neither was trained on
    order = np.random.default_rng(seed).permutation(len(train))
    rows = [{"sentences": "test split", **mi(test)},
            {"sentences": "validation and test splits", **mi(held_out)}]
    rows += [{"sentences": f"{n:,} training sentences (random)",
              **mi([train[i] for i in order[:n]])} for n in MI_SIZES if n <= len(train)]
    return {"part": "mi", "model": name, "label": PRETRAINED[name],
            "command": f"python -m benchmarks.text_brown --part mi --seed {seed}",
            "rows": rows, "peak_rss_mib": peak_rss_mib(), "machine": machine()}


def mi_section() -> list[str]:
    """The shipped model's MI against the number of sentences it is estimated over."""
    path = RESULTS_DIR / f"{record_name('mi')}.json"
    if not path.exists():
        return []
    r = json.loads(path.read_text())
    test = r["rows"][0]
    lines = ["", "## Mutual information and the number of sentences", "",
             f"I(x; z) of {r['label']} by the estimator of the tables above over N sentences "
             "(one z per posterior; q(z) the mixture of the N posteriors). Over N sentences it "
             f"cannot exceed log N: on the test split (N = {test['n']:,}) at most "
             f"{test['log_n']:.2f} nats, {'below' if test['log_n'] < GOALS['MI'] else 'above'} "
             f"issue 22's goal of {GOALS['MI']:g}. Command: `{r['command']}`.", "",
             "| sentences | N | log N (the ceiling) | MI (nats) | MI / log N |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {row['sentences']} | {row['n']:,} | {row['log_n']:.2f} | {row['MI']:.2f} | "
              f"{row['MI'] / row['log_n']:.3f} |" for row in r["rows"]]
    above = [row for row in r["rows"] if row["MI"] >= GOALS["MI"]]
    lines += ["", (f"MI reaches the goal of {GOALS['MI']:g} nats once N allows it: "
                   f"{above[0]['MI']:.2f} nats over {above[0]['n']:,} sentences "
                   f"(log N {above[0]['log_n']:.2f})." if above else
                   f"MI stays below {GOALS['MI']:g} nats for every N measured (largest "
                   f"{r['rows'][-1]['MI']:.2f} over {r['rows'][-1]['n']:,} sentences).")]
    return lines


def _curve(log_path: Path) -> list[dict[str, float]]:
    """The validation curve in a run's log.csv ([] where the file is absent)."""
    if not log_path.is_file():
        return []
    import pandas as pd
    valid = pd.read_csv(log_path).dropna(subset=["valid_neg_elbo"])
    return [{"step": int(r.step), "elapsed_s": float(r.elapsed_s),
             "valid_recon": float(r.valid_recon), "valid_kl": float(r.valid_kl),
             "active_units": float(r.active_units)} for r in valid.itertuples()]


def _command(part: str, seed: int, k: int, n_samples: int, corpus: str, split: str,
             minutes: float | None = None, tag: str = "") -> str:
    """The command that rebuilds a record."""
    return (f"python -m benchmarks.text_brown --part {part}"
            + (f" --minutes {minutes:g}" if minutes is not None else "") + f" --seed {seed}"
            + (f" --k {k}" if k != 100 else "")
            + (f" --samples {n_samples}" if n_samples != 1000 else "")
            + (f" --corpus {corpus}" if corpus != "brown" else "")
            + (f" --split {split}" if split != "test" else "")
            + (f" --tag {tag}" if tag else ""))


def evaluate(vae: Any, label: str, data: str, stem: str, k: int, n_samples: int,
             seed: int) -> dict[str, Any]:
    """A model's metrics on the sentences of ``data``, its prior samples, interpolation and
    latent map (RESULTS_DIR/STEM_latent.png)."""
    from seqvae.data import read_strings, resolve_data
    from seqvae.metrics.text import evaluate_text

    sentences = read_strings(resolve_data(data))
    start = time.perf_counter()
    report = evaluate_text(vae, sentences, k=k, n_samples=n_samples,
                           train_sentences=vae.training_sentences(), seed=seed)
    evaluate_seconds = time.perf_counter() - start
    if report.metrics["latent_dim"]:
        from seqvae.viz import latent_map
        latent_map(report.mu, [len(s.split()) for s in report.reconstructions["input"]],
                   RESULTS_DIR / f"{stem}_latent.png", "words",
                   f"{label}: {data} posterior means")
    path = vae.interpolate(*INTERPOLATION, steps=5)
    interpolation = {"from": INTERPOLATION[0], "to": INTERPOLATION[1],
                     "path": [{"t": float(t), "text": s} for t, s in zip(path["t"], path["text"])]}
    samples = report.samples.head(10)
    return {
        "metrics": report.metrics, "evaluate_seconds": evaluate_seconds,
        "samples": [{"text": t, "NLL": float(n), "novel": bool(v)} for t, n, v in
                    zip(samples["text"], samples["NLL"], samples.get("novel", [True] * 10))],
        "interpolation": interpolation, "peak_rss_mib": peak_rss_mib(), "machine": machine(),
    }


def peer(part: str) -> str:
    """The language model a VAE part is held to: the one trained with the same recipe family
    for the same budget."""
    return {"shipped": SHIPPED_LM, "brown-vae": "brown-lm"}.get(part, "lm")


# issue 22's goals for a sentence VAE at a fixed budget, against the LM of the same budget
GOALS = {"NLL / LM": 1.01, "KL": 15.0, "MI": 8.0, "AU share": 0.75, "recon BLEU": 20.0}


def _records(corpus: str = "brown", split: str = "test") -> dict[str, dict[str, Any]]:
    """The parts recorded for ``corpus`` and ``split``, by part ("part@tag" for a tagged
    rerun, after the untagged record)."""
    found = {}
    for part in [*PARTS, *PRETRAINED]:
        stem = record_name(part, corpus, split)
        for path in [RESULTS_DIR / f"{stem}.json", *sorted(RESULTS_DIR.glob(f"{stem}@*.json"))]:
            if path.exists():
                found[part + path.stem[len(stem):]] = json.loads(path.read_text())
    return found


def _cpu(record: dict[str, Any]) -> str:
    """The CPU a record was measured on ("unknown" where it does not say)."""
    return (record.get("machine") or {}).get("cpu") or "unknown"


def _autoencoder(m: dict[str, Any]) -> bool:
    """Whether a record's metrics are a deterministic autoencoder's: a latent but no
    likelihood (its NLL is NaN), so no NLL, KL, MI or ratio to an LM."""
    return bool(m["latent_dim"]) and not math.isfinite(m["NLL"])


def _cells(m: dict[str, Any]) -> list[str]:
    """A record's metric cells in COLUMNS order ("-" for what a model without z lacks)."""
    cells = []
    for _, key, digits in COLUMNS:
        value = m.get(key, float("nan"))
        if key == "active_units":
            cells.append(f"{int(value)} / {m['latent_dim']}" if m["latent_dim"] else "-")
        elif key in ("KL", "MI") and not m["latent_dim"]:
            cells.append("-")
        elif key in ("NLL", "PPL", "KL", "MI") and _autoencoder(m):
            cells.append("-")  # a deterministic autoencoder: no likelihood, no KL term
        else:
            cells.append(f"{value:.{digits}f}")
    return cells


def _goals_met(m: dict[str, Any], lm_nll: float) -> list[str]:
    """The names of GOALS a VAE's metrics meet."""
    figures = {"NLL / LM": m["NLL"] / lm_nll, "KL": m["KL"], "MI": m["MI"],
               "AU share": m["active_units"] / max(m["latent_dim"], 1),
               "recon BLEU": m["recon_BLEU"]}
    return [name for name, goal in GOALS.items()
            if (figures[name] <= goal if name == "NLL / LM" else figures[name] >= goal)]


def levers_section() -> list[str]:
    """The levers measured on the Brown validation split, each against the LM's validation NLL
    measured on the same CPU (budgets are wall-clock: a slower CPU trains fewer steps), one
    table per CPU."""
    parts = _records(split="valid")
    if not parts:
        return []
    lines = ["", "## Levers for a latent that carries the sentence (Brown validation split)", "",
             "Recipes are compared on the validation split ("
             + ", ".join(sorted({f"{r['metrics']['n_sentences']:,}" for r in parts.values()}))
             + " sentences evaluated), never on the test split. Goals (issue 22): NLL within "
             "1% of the LM's, KL >= 15 nats, MI >= 8 nats, active units >= 3/4, reconstruction "
             "BLEU-4 >= 20. Budgets are wall-clock, so each row is held to the language model "
             "trained on the same CPU, one table per CPU."]
    head = ["model", "budget", "steps", "k", *[c[0] for c in COLUMNS], "NLL / LM", "goals met"]
    for cpu in dict.fromkeys(_cpu(r) for r in parts.values()):
        rows = {p: r for p, r in parts.items() if _cpu(r) == cpu}
        lm_record = next((r for r in rows.values() if r["part"] == "lm"), None)
        lm = lm_record["metrics"]["NLL"] if lm_record else None
        lines += ["", f"### {cpu}", "",
                  (f"Language model: NLL {lm:.2f} in {lm_record['steps']:,} steps." if lm
                   else "No language model measured on this CPU: no ratios."), "",
                  "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for r in rows.values():
            m = r["metrics"]
            scored = bool(lm and m["latent_dim"] and not _autoencoder(m))  # a VAE
            ratio = f"{m['NLL'] / lm:.4f}" if scored else "-"
            met = (", ".join(_goals_met(m, lm)) or "none") if scored else "-"
            lines.append(f"| {r['label']} | {r['minutes']:g} min {r['precision']} | "
                         f"{r['steps']:,} | {m['k']} | "
                         + " | ".join(_cells(m)) + f" | {ratio} | {met} |")
        for r in rows.values():
            if "aggressive" in r:
                done = r["aggressive"]
                lines += ["", f"{r['label']}: of its {r['steps']:,} steps, "
                          f"{done['encoder_steps']:,} updated the encoder alone and "
                          f"{done['decoder_steps']:,} the decoder alone (the aggressive phase, "
                          f"{done['encoder_steps'] / max(done['decoder_steps'], 1):.1f} encoder "
                          "updates per decoder update); the rest both together."]
        vaes = {p: r for p, r in rows.items()
                if r["metrics"]["latent_dim"] and not _autoencoder(r["metrics"])}
        autoencoders = [r for r in rows.values() if _autoencoder(r["metrics"])]
        for r in autoencoders:  # what the networks rebuild with no KL term to pay
            best = max((v["metrics"]["recon_BLEU"] for v in vaes.values()
                        if v["minutes"] == r["minutes"]), default=None)
            lines += ["", f"Without a KL term or noise the networks reconstruct at BLEU-4 "
                      f"{r['metrics']['recon_BLEU']:.1f} after {r['minutes']:g} minutes "
                      f"({r['steps']:,} steps; {r['label']})"
                      + (f", the VAEs of that budget on this CPU at most {best:.1f}"
                         if best is not None
                         else "")
                      + f"; the goal is {GOALS['recon BLEU']:g}."]
        if lm and vaes:
            best = max(vaes, key=lambda p: (len(_goals_met(vaes[p]["metrics"], lm)),
                                            -vaes[p]["metrics"]["NLL"]))
            met = _goals_met(vaes[best]["metrics"], lm)
            lines += ["", f"Most goals met on this CPU: **{vaes[best]['label']}** ({len(met)} "
                      f"of {len(GOALS)}: {', '.join(met) or 'none'})."]
    return lines


def corpus_check_section() -> list[str]:
    """The shipped recipe's NLL ratio to the LM on each other corpus beside Brown's (test
    splits)."""
    brown = _records()
    if SHIPPED_LM not in brown or SHIPPED_PART not in brown:
        return []
    reference = brown[SHIPPED_PART]["metrics"]["NLL"] / brown[SHIPPED_LM]["metrics"]["NLL"]
    lines = []
    for corpus in CORPORA:
        if corpus == "brown":
            continue
        parts = _records(corpus)
        if SHIPPED_LM not in parts or SHIPPED_PART not in parts:
            continue
        ratio = parts[SHIPPED_PART]["metrics"]["NLL"] / parts[SHIPPED_LM]["metrics"]["NLL"]
        points = 100 * (ratio - reference)
        if not lines:
            lines = ["", "## Held-out corpus check", "",
                     f"The shipped recipe ({PARTS[SHIPPED_PART][0]}) and the LM retrained on "
                     "another corpus (raw text, punctuation split), each for its budget, "
                     "evaluated on that corpus' test split; goal: the NLL ratio within 1 point "
                     "of Brown's.", "",
                     "| corpus | VAE NLL | LM NLL | NLL / LM | Brown's NLL / LM | difference "
                     "(points) | within 1 point |", "|---|---:|---:|---:|---:|---:|---|"]
        lines.append(f"| {corpus} | {parts[SHIPPED_PART]['metrics']['NLL']:.2f} | "
                     f"{parts[SHIPPED_LM]['metrics']['NLL']:.2f} | {ratio:.4f} | {reference:.4f} | "
                     f"{points:+.2f} | {'yes' if abs(points) <= 1 else 'no'} |")
    return lines


def table() -> str:
    parts = _records()
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
    for r in parts.values():
        m = r["metrics"]
        lines.append(f"| {r['label']} | {r['minutes']:g} min | {m['k']} | "
                     + " | ".join(_cells(m)) + f" | {r['train_seconds'] / 60:.1f} min |")
    lines += ["", "Published rows on the Penn Treebank (../shared/ANCHORS.md), for orientation "
              "only: a different corpus (PTB: lower-cased, 10k vocabulary, 42k training "
              "sentences; Brown here: 50.7k sentences, lower-cased by these configs, 10k "
              "vocabulary), and trained for hours on GPUs.", "",
              "| model (PTB) | NLL | KL | PPL | source |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in PUBLISHED]
    against = [(p, r, parts[peer(p)]) for p, r in parts.items()
               if r["metrics"]["latent_dim"] and peer(p) in parts]
    if against:
        lines += ["", "## Against the language model", "",
                  "Each VAE against the language model trained on the same data for the same "
                  "budget (its peer). Goals (issue 22): NLL within 1% of the LM's, KL >= 15 "
                  "nats, MI >= 8 nats, active units >= 3/4, reconstruction BLEU-4 >= 20.", "",
                  "| model | budget | LM (peer) | NLL / LM NLL | KL | MI | AU | recon BLEU | "
                  "goals met |", "|---|---|---|---|---|---|---|---|---|"]
        for p, r, lm in against:
            m = r["metrics"]
            met = _goals_met(m, lm["metrics"]["NLL"])
            lines.append(f"| {r['label']} | {r['minutes']:g} min | {lm['label']} "
                         f"({lm['minutes']:g} min) | {m['NLL'] / lm['metrics']['NLL']:.4f} | "
                         f"{m['KL']:.2f} | {m['MI']:.2f} | {int(m['active_units'])} / "
                         f"{m['latent_dim']} | {m['recon_BLEU']:.1f} | {len(met)} of "
                         f"{len(GOALS)}: {', '.join(met) or 'none'} |")
    for p, r in parts.items():
        lines += ["", f"## {r['label']}", "",
                  f"{r['parameters']:,} parameters, {r['steps']:,} steps"
                  + (f" ({r['epochs']:.2f} epochs)" if r["epochs"] is not None else "")
                  + f" in {r['train_seconds']:.0f} s, {r['precision']}; evaluation "
                  f"{r['evaluate_seconds']:.0f} s. Config: {r['config']}. "
                  f"Command: `{r['command']}`.", "", "Ten prior samples (temperature 1; "
                  "* = found verbatim in the training data):", ""]
        lines += [f"{i + 1}. {s['text']}{'' if s['novel'] else ' *'}"
                  for i, s in enumerate(r["samples"])]
        path = r["interpolation"]
        lines += ["", f"Interpolation between the posterior means of \"{path['from']}\" and "
                  f"\"{path['to']}\" (greedy decoding):", ""]
        lines += [f"- t = {pt['t']:.2f}: {pt['text']}" for pt in path["path"]]
    lines += levers_section() + corpus_check_section() + mi_section()
    if parts:
        _curves(parts)
        lines += ["", "Validation reconstruction term, KL and active units during training: "
                  "text_brown_curves.png. Posterior means of the test sentences on their first "
                  "two principal components, coloured by length: text_brown_<part>_latent.png.",
                  ""]
        every = [(record_name(r["part"], corpus, split, r.get("tag", "")), r.get("machine"))
                 for corpus in CORPORA for split in ("test", "valid")
                 for r in _records(corpus, split).values()]
        mi = RESULTS_DIR / f"{record_name('mi')}.json"
        if mi.exists():
            every.append((record_name("mi"), json.loads(mi.read_text()).get("machine")))
        lines += [machines_markdown(every)]
    return "\n".join(lines)


def _curves(parts: dict[str, Any]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for r in parts.values():
        if not r["curve"]:
            continue
        t = [pt["elapsed_s"] / 60 for pt in r["curve"]]
        for ax, key in zip(axes, ("valid_recon", "valid_kl", "active_units")):
            ax.plot(t, [pt[key] for pt in r["curve"]], marker="o", label=r["label"])
    for ax, name in zip(axes, ("validation recon (nats/sentence)", "validation KL (nats)",
                               "active units")):
        ax.set_xlabel("training minutes (CPU)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    if axes[0].lines:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / "text_brown_curves.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=[*PARTS, *PRETRAINED, "mi", "table"], required=True)
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=100, help="importance samples per sentence")
    parser.add_argument("--samples", type=int, default=1000, help="prior samples")
    parser.add_argument("--corpus", choices=list(CORPORA), default="brown",
                        help="the corpus trained on and evaluated (see data/PROVENANCE.md)")
    parser.add_argument("--split", choices=["test", "valid"], default="test",
                        help="evaluated on: valid to choose between recipes, test to report")
    parser.add_argument("--tag", default="",
                        help="keep this run beside the part's earlier record, as "
                             "text_brown_PART_valid@TAG.json (a rerun on another machine; "
                             "validation split only)")
    args = parser.parse_args()
    if args.tag and (args.split != "valid" or args.part not in PARTS
                     or not re.fullmatch(r"[A-Za-z0-9-]+", args.tag)):
        parser.error("--tag (letters, digits, hyphens) keeps a rerun of a trained part on the "
                     "validation split beside its earlier record")
    if args.part in PRETRAINED:
        if args.corpus != "brown" or args.split != "test":
            parser.error(f"--part {args.part} is the shipped model: evaluated on the Brown "
                         "test split only")
        result = run_pretrained(args.part, args.seed, args.k, args.samples)
    elif args.part == "mi":
        if args.corpus != "brown" or args.split != "test":
            parser.error("--part mi measures the shipped brown-vae on Brown sentences")
        result = run_mi("brown-vae", args.seed)
    elif args.part != "table":
        result = run_part(args.part, args.minutes, args.seed, args.k, args.samples,
                          args.corpus, args.split, args.tag)
    if args.part != "table":
        path = RESULTS_DIR / f"{record_name(args.part, args.corpus, args.split, args.tag)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
    text = table()
    (RESULTS_DIR / "text_brown.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
