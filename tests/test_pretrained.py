"""Exporting a model (float16, no trainer state) and loading shipped models by name."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

import seqvae
from seqvae import pretrained
from seqvae.checkpoint import export_checkpoint
from seqvae.errors import CheckpointError


def test_export_half(trained_run, model, tmp_path):
    out = export_checkpoint(trained_run, tmp_path / "tiny", half=True, notes={"trained_by": "x"})
    # the model, and the aggregate prior the run fitted (no trainer state)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors",
                                                     "prior.json", "prior.safetensors",
                                                     "tokenizer.json"]
    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        assert {fh.get_tensor(k).dtype for k in fh.keys()} == {torch.float16}
    assert json.loads((out / "config.json").read_text())["notes"] == {"trained_by": "x"}
    half = seqvae.load(out)
    mu, _ = model.encode(["CCO", "c1ccccc1O"])
    mu_half, _ = half.encode(["CCO", "c1ccccc1O"])
    assert torch.allclose(mu, mu_half, atol=2e-2)
    assert next(half.model.parameters()).dtype == torch.float32


def test_load_by_name(trained_run, tmp_path, monkeypatch, capsys):
    export_checkpoint(trained_run, tmp_path / "tiny-smiles", half=True)
    monkeypatch.setattr(pretrained, "_HERE", tmp_path)
    assert pretrained.available() == ["tiny-smiles"]
    assert seqvae.load("tiny-smiles").sample(5, seed=0).shape[0] == 5
    from seqvae.cli import main
    out = tmp_path / "s.csv"
    assert main(["sample", "tiny-smiles", "-n", "20", "-o", str(out), "--no-grid",
                 "--no-progress"]) == 0
    assert len(out.read_text().splitlines()) == 21
    with pytest.raises(CheckpointError, match="shipped: tiny-smiles"):
        seqvae.load("tiny-smyles")


def _folder_bytes(name: str) -> int:
    return sum(f.stat().st_size for f in pretrained.pretrained_path(name).iterdir())


@pytest.mark.parametrize("name", pretrained.available())
def test_shipped_models_are_small_and_say_how_they_were_trained(name):
    assert _folder_bytes(name) < 20_000_000  # under 20 MB, tokenizer and prior included
    notes = json.loads((pretrained.pretrained_path(name) / "config.json").read_text())["notes"]
    assert notes["trained_by"].startswith("seqvae train ")


MOLECULAR = [n for n in pretrained.available() if n.startswith("moses-")]
SENTENCES = [n for n in pretrained.available() if n.startswith("brown-")]


@pytest.mark.parametrize("name", MOLECULAR)
def test_shipped_models_sample_molecules(name):
    model = seqvae.load(name)
    samples = model.sample(300, seed=0)
    assert samples["valid"].mean() > 0.5


@pytest.mark.parametrize("name", SENTENCES)
def test_shipped_sentence_models_sample_and_score_sentences(name, tmp_path):
    model = seqvae.load(name)
    assert not model.molecular
    vocabulary = set(model.tokenizer.vocab)
    samples = model.sample(200, seed=0)
    words = [w for text in samples["text"] for w in text.split()]
    # sentences of the vocabulary's words that end, not empty strings or lone tokens
    assert samples["text"].str.split().str.len().median() >= 5
    assert sum(w in vocabulary for w in words) / len(words) > 0.95
    assert sum(w == "<unk>" for w in words) / len(words) < 0.15  # as in the training text
    assert samples["text"].nunique() > 190
    # an ordinary sentence is more likely than the same words shuffled
    scores = model.score(["he was a tall man with a long face .",
                          "face man long he a tall . with was a"])
    assert scores["iw_nll"].notna().all() and scores["iw_nll"][0] < scores["iw_nll"][1] - 10
    from seqvae.cli import main
    out = tmp_path / "s.csv"
    assert main(["sample", name, "-n", "20", "-o", str(out), "--no-progress"]) == 0
    assert len(out.read_text().splitlines()) == 21
