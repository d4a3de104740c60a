"""Fine-tuning (train.init, seqvae train --init): weights, tokenizer and architecture from a
trained model, a fresh optimiser, the vocabulary fixed, optional frozen encoder."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_config
from seqvae import CheckpointError, ConfigError, DataError, train
from seqvae.cli import main
from seqvae.data import read_strings

QUIET = {"progress": False}
STEPS = {"train.max_steps": 6, "train.eval_every": 6, "train.checkpoint_every": 3,
         "train.eval_samples": 0, "train.prior_codes": 100}


def _weights(run):
    return load_file(str(run / "checkpoint" / "model.safetensors"))


@pytest.fixture()
def focused(tmp_path, small_data):
    """A small set: 100 training molecules of the shipped data the source never saw, plus
    one with a token the source's vocabulary lacks."""
    rows = read_strings(small_data[1])  # the source's validation rows, not its training rows
    path = tmp_path / "focused.csv"
    pd.DataFrame({"SMILES": rows[:90] + ["CC[Se]CC"]}).to_csv(path, index=False)
    return path, small_data[1]


def test_fine_tuning_starts_from_the_source(tmp_path, trained_run, focused):
    run = tmp_path / "tuned"
    # the user's [model] settings differ: the source's architecture wins
    config = tiny_config(run, *focused, **STEPS, **{"train.init": str(trained_run),
                                                    "model.latent_dim": 16})
    summary = train(config, **QUIET)
    assert summary["init"]["path"] == str(trained_run / "checkpoint")
    assert len(summary["init"]["model_sha256"]) == 64
    report = summary["data"]["train"]
    assert report["n_kept"] == 90 and report["reasons"] == {"unknown_tokens": 1}
    saved = json.loads((run / "checkpoint" / "config.json").read_text())["config"]
    source = json.loads((trained_run / "checkpoint" / "config.json").read_text())["config"]
    assert saved["model"] == source["model"] and saved["model"]["latent_dim"] == 8
    assert ((run / "checkpoint" / "tokenizer.json").read_text()
            == (trained_run / "checkpoint" / "tokenizer.json").read_text())
    before, after = _weights(trained_run), _weights(run)
    assert set(before) == set(after)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained
    # it started from the source: six steps leave it near the source's weights, where a run
    # from scratch on the same data lands nowhere near them
    scratch = train(tiny_config(tmp_path / "scratch", *focused, **STEPS), **QUIET)
    assert "init" not in scratch
    fresh = _weights(tmp_path / "scratch")
    same = [k for k in before if k in fresh and fresh[k].shape == before[k].shape]

    def cosine(a):
        x = torch.cat([a[k].flatten() for k in same])
        y = torch.cat([before[k].flatten() for k in same])
        return float(x @ y / (x.norm() * y.norm()))
    assert cosine(after) > 0.95 and cosine(fresh) < 0.5


def test_frozen_encoder_and_resumed_fine_tuning(tmp_path, trained_run, focused):
    run = tmp_path / "frozen"
    settings = {**STEPS, "train.init": str(trained_run), "train.freeze_encoder": True,
                "model.encoder_hidden": 64}
    train(tiny_config(run, *focused, **{**settings, "train.max_steps": 3}), **QUIET)
    train(tiny_config(run, *focused, **settings), resume=True, **QUIET)
    assert json.loads((run / "summary.json").read_text())["step"] == 6
    before, after = _weights(trained_run), _weights(run)
    frozen = [k for k in before if k.startswith(("encoder.", "posterior."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))


def test_fine_tuning_refusals_before_anything_is_written(tmp_path, trained_run, focused, capsys):
    run = tmp_path / "bad"
    with pytest.raises(ConfigError, match="smiles model"):
        train(tiny_config(run, *focused, **STEPS, **{"train.init": str(trained_run),
                                                    "data.representation": "selfies"}), **QUIET)
    assert not (run / "checkpoint").exists()
    broken = tmp_path / "broken"
    shutil.copytree(trained_run / "checkpoint", broken)
    (broken / "model.safetensors").write_bytes(b"not tensors")
    with pytest.raises(CheckpointError):
        train(tiny_config(run, *focused, **STEPS, **{"train.init": str(broken)}), **QUIET)
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(trained_run / "checkpoint", no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer.json"):
        train(tiny_config(run, *focused, **STEPS, **{"train.init": str(no_tokenizer)}), **QUIET)
    alien = tmp_path / "alien.csv"
    pd.DataFrame({"SMILES": ["CC[Se]CC", "[Se]=C=[Se]"]}).to_csv(alien, index=False)
    with pytest.raises(DataError, match="unknown_tokens"):
        train(tiny_config(run, alien, focused[1], **STEPS, **{"train.init": str(trained_run)}),
              **QUIET)
    assert not (run / "checkpoint").exists()
    with pytest.raises(ConfigError, match="train.init"):
        tiny_config(run, *focused, **{"train.freeze_encoder": True})
    code = main(["train", "--out", str(run), "--init", str(trained_run), "--resume",
                 "--no-progress"])
    assert code != 0 and "--init" in capsys.readouterr().err


def test_fine_tuning_a_shipped_model_by_name(tmp_path, focused):
    summary = train(tiny_config(tmp_path / "shipped", *focused,
                                **{**STEPS, "train.max_steps": 2, "train.init": "moses-smiles"}),
                    **QUIET)
    assert summary["step"] == 2 and summary["init"]["spec"] == "moses-smiles"


def test_grown_vocabulary_keeps_every_old_prediction(trained_run):
    from seqvae import load
    from seqvae.model import grow_vocabulary
    source = load(trained_run)
    grown = grow_vocabulary(source.model, ["[Xe]", "[Rn]"]).eval()
    old = source.model.state_dict()
    new = grown.state_dict()
    v = source.model.config.vocab_size
    assert new["embedding.weight"].shape[0] == v + 2
    assert torch.allclose(new["embedding.weight"][v], old["embedding.weight"][4:].mean(0))
    assert torch.allclose(new["decoder.output.bias"][v + 1], old["decoder.output.bias"][4:].mean())
    ids = source.tokenizer.encode_batch(["CCO", "c1ccccc1"])
    (tokens, lengths), = source._batches(ids, 2)
    with torch.no_grad():
        a = source.model(tokens, lengths, sample_z=False).logits
        b = grown(tokens, lengths, sample_z=False).logits
    assert torch.allclose(a, b[..., :v], atol=1e-6)  # the old tokens' scores are unchanged


def test_fine_tuning_can_extend_the_vocabulary(tmp_path, trained_run, focused):
    run = tmp_path / "extended"
    summary = train(tiny_config(run, *focused, **STEPS, **{"train.init": str(trained_run),
                                                          "train.extend_vocab": True}), **QUIET)
    assert summary["init"]["new_tokens"] == ["[Se]"]
    assert summary["data"]["train"]["n_kept"] == 91  # the [Se] row is read now
    from seqvae import load
    tuned, source = load(run), load(trained_run)
    assert tuned.tokenizer.vocab_size == source.tokenizer.vocab_size + 1
    assert all(tuned.tokenizer.vocab[t] == i for t, i in source.tokenizer.vocab.items())
    assert tuned.check(["CC[Se]CC"]) == [None]
    with pytest.raises(ConfigError, match="train.init"):
        tiny_config(run, *focused, **{"train.extend_vocab": True})


def test_finetune_benchmark_keeps_each_models_records(tmp_path, monkeypatch):
    """benchmarks/finetune.py writes a record per model: the first model's under the plain
    names, another's (a run folder's path too) under its own, and finetune.md lists each."""
    import benchmarks.finetune as bench

    monkeypatch.setattr(bench, "RESULTS_DIR", tmp_path)
    assert bench.record_path("finetune", "moses-smiles") == tmp_path / "finetune.json"
    assert (bench.record_path("finetune_recipe", "moses-smiles-lm")
            == tmp_path / "finetune_recipe_moses-smiles-lm.json")
    assert bench.record_path("finetune", "runs/a/b/") == tmp_path / "finetune_runs_a_b.json"
    for name in ("finetune.json", "finetune_moses-smiles-lm.json", "finetune_recipe.json",
                 "finetune_recipe_moses-smiles-lm.json", "finetune_outside.json"):
        (tmp_path / name).write_text("{}")
    assert bench.recorded_models("finetune") == ["moses-smiles", "moses-smiles-lm"]
    assert bench.recorded_models("finetune_recipe") == ["moses-smiles", "moses-smiles-lm"]
    (tmp_path / "finetune.json").unlink()
    assert bench.recorded_models("finetune") == ["moses-smiles-lm"]


def test_fine_tuning_a_selfies_model(tmp_path, focused):
    """A SELFIES model fine-tunes like a SMILES one: its tokenizer and representation kept, a
    SMILES source refused for SELFIES data and the other way round."""
    from seqvae import load
    selfies = {**STEPS, "data.representation": "selfies"}
    source = tmp_path / "selfies-source"
    train(tiny_config(source, focused[1], focused[1], **selfies), **QUIET)
    run = tmp_path / "selfies-tuned"
    summary = train(tiny_config(run, *focused, **{**selfies, "train.init": str(source),
                                                  "train.extend_vocab": True}), **QUIET)
    assert summary["step"] == 6 and summary["init"]["path"] == str(source / "checkpoint")
    assert "[Se]" in summary["init"]["new_tokens"]  # the one row with selenium is read
    tuned = load(run)
    assert tuned.tokenizer.kind == "selfies" and tuned.config.data.representation == "selfies"
    assert all(tuned.tokenizer.vocab[t] == i for t, i in load(source).tokenizer.vocab.items())
    with pytest.raises(ConfigError, match="selfies model"):
        train(tiny_config(tmp_path / "mixed", *focused, **{**STEPS, "train.init": str(source)}),
              **QUIET)
