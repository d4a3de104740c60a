"""A sentence VAE conditioned on Brown's genres: do its samples read as the genre asked for,
and does the genre make held-out sentences likelier?

    python -m benchmarks.genres --part train --minutes 30     # both models (resumable)
    python -m benchmarks.genres --part measure                # classifier, samples, NLL

Two models trained for the same CPU budget on the shipped Brown splits: the genre-conditioned
VAE (seqvae/configs/brown_genre_vae.toml, default:brown_genres_*) and the same VAE without the
genre (brown_lstm_vae.toml on the same sentences). A genre classifier written here (a bag of
hashed word unigrams and bigrams into a linear layer, fastText-style, trained with torch on the
training sentences, its epoch chosen on the validation sentences) first reads real held-out
test sentences (its accuracy there is the bar), then --samples sentences sampled from the
conditional model under each genre: the share classified as the genre asked for, against the
classifier's accuracy on real sentences of that genre and against chance. Then the NLL of the
test sentences (importance-weighted, --k codes): the conditional model under each sentence's
own genre, the unconditional one. Writes benchmarks/results/genres.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import BROWN_VAE_BEFORE_22, RESULTS_DIR, machine, machine_markdown

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "genres"
MODELS = {"conditional": ("seqvae/configs/brown_genre_vae.toml", []),
          # the same sentences, no genre: the genre files' text column, and the recipe of
          # brown_genre_vae.toml (brown_lstm_vae.toml's before issue 22)
          "unconditional": ("seqvae/configs/brown_lstm_vae.toml",
                            [*BROWN_VAE_BEFORE_22, 'data.train="default:brown_genres_train"',
                             'data.valid="default:brown_genres_valid"'])}
BUCKETS = 2 ** 18


def train(minutes: float) -> None:
    """Each model trained (or resumed) for ``minutes`` training minutes in runs/genres/."""
    for name, (config, sets) in MODELS.items():
        out = RUNS / name
        command = [sys.executable, "-m", "seqvae", "train", config, "--out", str(out),
                   "--max-minutes", f"{minutes:g}", "--no-progress",
                   # fp32, the precision of most users' CPUs (auto picks bf16 where the CPU
                   # has AVX-512 BF16)
                   *[x for s in [*sets, "train.precision=fp32"] for x in ("--set", s)]]
        if (out / "checkpoint").is_dir():
            command.append("--resume")
        print(" ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)


def features(sentences: list[str]) -> list[list[int]]:
    """Hashed lower-cased unigrams and bigrams of each sentence."""
    import zlib

    out = []
    for sentence in sentences:
        words = sentence.lower().split()
        grams = words + [a + " " + b for a, b in zip(words, words[1:])]
        out.append([zlib.crc32(g.encode()) % BUCKETS for g in grams] or [0])
    return out


class Classifier:
    """fastText-style: the mean of the n-grams' vectors, then a linear layer."""

    def __init__(self, genres: list[str], dim: int = 64, seed: int = 0):
        import torch
        torch.manual_seed(seed)
        self.genres = genres
        self.bag = torch.nn.EmbeddingBag(BUCKETS, dim, mode="mean", sparse=True)
        self.out = torch.nn.Linear(dim, len(genres))

    def _logits(self, grams: list[list[int]]):
        import torch
        flat = torch.tensor([g for row in grams for g in row])
        offsets = torch.tensor([0] + np.cumsum([len(r) for r in grams])[:-1].tolist())
        return self.out(self.bag(flat, offsets))

    def fit(self, sentences: list[str], labels: list[str], valid: list[str],
            valid_labels: list[str], epochs: int = 8, seed: int = 0) -> dict[str, Any]:
        import torch
        x, y = features(sentences), torch.tensor([self.genres.index(g) for g in labels])
        params = [*self.bag.parameters(), *self.out.parameters()]
        # only the rows of the n-grams in a batch move: sparse updates for the table
        optimizers = [torch.optim.SparseAdam(list(self.bag.parameters()), lr=0.01),
                      torch.optim.Adam(list(self.out.parameters()), lr=0.01)]
        generator = torch.Generator().manual_seed(seed)
        best, best_state, history = -1.0, None, []
        for _ in range(epochs):
            for batch in torch.randperm(len(x), generator=generator).split(256):
                loss = torch.nn.functional.cross_entropy(
                    self._logits([x[i] for i in batch.tolist()]), y[batch])
                for optimizer in optimizers:
                    optimizer.zero_grad()
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()
            accuracy = self.accuracy(valid, valid_labels)
            history.append(accuracy)
            if accuracy > best:
                best = accuracy
                best_state = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, kept in zip(params, best_state):
                p.copy_(kept)
        return {"valid_accuracy": best, "epoch": int(np.argmax(history)) + 1, "history": history}

    def predict(self, sentences: list[str]) -> list[str]:
        import torch
        with torch.no_grad():
            index = self._logits(features(sentences)).argmax(-1).tolist()
        return [self.genres[i] for i in index]

    def accuracy(self, sentences: list[str], labels: list[str]) -> float:
        return float(np.mean([p == t for p, t in zip(self.predict(sentences), labels)]))


def measure(n: int, k: int) -> dict[str, Any]:
    import seqvae
    from seqvae.data import resolve_data

    splits = {name: pd.read_csv(resolve_data(f"default:brown_genres_{name}"),
                                keep_default_na=False) for name in ("train", "valid", "test")}
    model = seqvae.load(RUNS / "conditional")
    genres = model.categories["genre"]
    classifier = Classifier(genres)
    fitted = classifier.fit(list(splits["train"]["text"]), list(splits["train"]["genre"]),
                            list(splits["valid"]["text"]), list(splits["valid"]["genre"]))
    test = splits["test"]
    per_genre = []
    for genre in genres:
        real = test[test["genre"] == genre]
        samples = list(model.sample(n, seed=0, condition={"genre": genre})["text"])
        per_genre.append({
            "genre": genre, "test_sentences": len(real),
            "real_accuracy": classifier.accuracy(list(real["text"]), [genre] * len(real))
            if len(real) else None,
            "sample_accuracy": classifier.accuracy(samples, [genre] * len(samples)),
            "examples": samples[:3]})
    sentences, labels = list(test["text"]), list(test["genre"])
    conditional = model.score(sentences, k=k, condition={"genre": labels})
    unconditional = seqvae.load(RUNS / "unconditional").score(sentences, k=k)
    words = np.array([len(s.split()) + 1 for s in sentences])
    nll = {name: {"nll_per_sentence": float(np.nanmean(t["iw_nll"])),
                  "ppl": float(np.exp(np.nansum(t["iw_nll"]) / words[t["iw_nll"].notna()].sum())),
                  "scored": int(t["iw_nll"].notna().sum())}
           for name, t in (("conditional", conditional), ("unconditional", unconditional))}
    summaries = {name: json.loads((RUNS / name / "summary.json").read_text())
                 for name in MODELS}
    return {"n": n, "k": k, "classifier": fitted,
            "classifier_test_accuracy": classifier.accuracy(sentences, labels),
            "chance": float(test["genre"].value_counts(normalize=True).max()),
            "genres": per_genre, "nll": nll,
            "training": {name: {"step": s.get("step"), "minutes": round(s.get("elapsed_s", 0) / 60,
                                                                          1)}
                         for name, s in summaries.items()},
            "machine": machine(), "command": f"python -m benchmarks.genres --part measure "
                                              f"--samples {n} --k {k}"}


def markdown(r: dict[str, Any]) -> str:
    rows = [g for g in r["genres"]]
    asked = float(np.mean([g["sample_accuracy"] for g in rows]))
    real = [g["real_accuracy"] for g in rows if g["real_accuracy"] is not None]
    lines = ["# Genre-conditioned sentences (Brown)", "",
             "Models: " + "; ".join(f"{name} {t['step']:,} steps, {t['minutes']:g} training "
                                    f"minutes" for name, t in r["training"].items())
             + f". Classifier: hashed unigrams and bigrams, fastText-style, its epoch "
             f"({r['classifier']['epoch']}) chosen on the validation sentences (accuracy "
             f"{r['classifier']['valid_accuracy']:.3f}); on the test sentences "
             f"{r['classifier_test_accuracy']:.3f} (the commonest genre alone: "
             f"{r['chance']:.3f}). {r['n']} samples per genre (seed 0). Command: "
             f"`{r['command']}`.", "",
             "| genre | test sentences | classifier on real ones | samples read as the genre |",
             "|---|---:|---:|---:|"]
    for g in rows:
        real_text = f"{g['real_accuracy']:.3f}" if g["real_accuracy"] is not None else "none"
        lines.append(f"| {g['genre']} | {g['test_sentences']} | {real_text} | "
                     f"{g['sample_accuracy']:.3f} |")
    lines += ["", f"Samples are classified as the genre asked for {asked:.1%} of the time on "
              f"average over the {len(rows)} genres; real test sentences of those genres "
              f"{np.mean(real):.1%}; 1 in {len(rows)} genres by chance.", "",
              "| model | test NLL per sentence | PPL | sentences scored |", "|---|---:|---:|---:|"]
    for name, v in r["nll"].items():
        lines.append(f"| {name} | {v['nll_per_sentence']:.2f} | {v['ppl']:.1f} | {v['scored']:,} |")
    gap = r["nll"]["unconditional"]["nll_per_sentence"] - r["nll"]["conditional"]["nll_per_sentence"]
    lines += ["", f"Under its own genre a test sentence costs the conditional model {gap:+.2f} "
              f"nats less than the unconditional one (importance-weighted, k = {r['k']}).", "",
              "### Machine", "", machine_markdown(r["machine"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["train", "measure", "table"], required=True)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--k", type=int, default=32)
    args = parser.parse_args()
    if args.part == "train":
        train(args.minutes)
        return
    if args.part == "measure":
        result = measure(args.samples, args.k)
        (RESULTS_DIR / "genres.json").write_text(json.dumps(result, indent=1) + "\n")
    result = json.loads((RESULTS_DIR / "genres.json").read_text())
    (RESULTS_DIR / "genres.md").write_text(markdown(result) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
