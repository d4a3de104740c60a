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


@pytest.mark.parametrize("name", pretrained.available())
def test_shipped_models_sample_molecules(name):
    model = seqvae.load(name)
    assert (pretrained.pretrained_path(name) / "model.safetensors").stat().st_size < 20 * 2**20
    assert "trained_by" in json.loads((pretrained.pretrained_path(name) / "config.json").read_text())["notes"]
    samples = model.sample(300, seed=0)
    assert samples["valid"].mean() > 0.5
