"""Training end to end on real data: outputs, determinism, resume, refusals."""

import csv
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from seqvae.checkpoint import load_checkpoint
from seqvae.errors import CheckpointError, ConfigError, DataError
from seqvae.model.counter import selfies_roles
from seqvae.trainer import train

from conftest import tiny_config

QUIET = dict(progress=False, log=lambda *_: None)


def weights(run):
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def test_training_writes_a_complete_run(trained_run):
    ckpt = trained_run / "checkpoint"
    for name in ("config.json", "model.safetensors", "tokenizer.json",
                 "trainer_state.json", "trainer_state.safetensors"):
        assert (ckpt / name).is_file(), name
    assert (trained_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (trained_run / "config.toml").is_file()
    rows = list(csv.DictReader(open(trained_run / "log.csv")))
    train_rows = [r for r in rows if r["train_loss"]]
    assert [int(r["step"]) for r in train_rows] == [10, 20, 30, 40]
    assert float(train_rows[-1]["train_recon"]) < float(train_rows[0]["train_recon"])
    evals = [r for r in rows if r["valid_recon"]]
    assert [int(r["step"]) for r in evals] == [20, 40]
    assert 0.0 <= float(evals[-1]["sample_valid"]) <= 1.0
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["step"] == 40 and summary["finished"]
    assert summary["data"]["train"]["n_kept"] == 400


def test_no_pickle_anywhere_in_a_checkpoint(trained_run):
    for path in (trained_run / "checkpoint").iterdir():
        head = path.read_bytes()[:2]
        assert head[:1] != b"\x80" and head != b"PK", path


def test_same_seed_same_weights(tmp_path, small_data):
    runs = []
    for name in ("a", "b"):
        cfg = tiny_config(tmp_path / name, *small_data, **{"train.max_steps": 15})
        train(cfg, **QUIET)
        runs.append(weights(tmp_path / name))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_resumed_run_equals_uninterrupted_run(tmp_path, small_data):
    """Stop at step 20 (mid-epoch), resume to 40: the same weights as 40 steps straight."""
    constant_lr = {"train.lr_min": 3e-3}
    full = tiny_config(tmp_path / "full", *small_data, **constant_lr)
    train(full, **QUIET)
    part = tiny_config(tmp_path / "part", *small_data, **constant_lr, **{"train.max_steps": 20})
    train(part, **QUIET)
    assert json.loads((tmp_path / "part" / "summary.json").read_text())["step"] == 20
    rest = tiny_config(tmp_path / "part", *small_data, **constant_lr)
    summary = train(rest, resume=True, **QUIET)
    assert summary["step"] == 40
    a, b = weights(tmp_path / "full"), weights(tmp_path / "part")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "part" / "log.csv")) if r["train_loss"]]
    assert steps == [10, 20, 30, 40]


def test_existing_run_is_never_overwritten(tmp_path, trained_run, small_data):
    before = (trained_run / "checkpoint" / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_config(trained_run, *small_data), **QUIET)
    assert (trained_run / "checkpoint" / "model.safetensors").read_bytes() == before


def test_resume_with_other_architecture_is_refused(tmp_path, trained_run, small_data):
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    with pytest.raises(ConfigError, match=r"\[model\]"):
        train(tiny_config(copy, *small_data, **{"model.latent_dim": 16}), resume=True, **QUIET)


def test_bad_rows_are_skipped_and_counted(tmp_path, small_data):
    train_csv = tmp_path / "train.csv"
    good = small_data[0].read_text().splitlines()
    train_csv.write_text("\n".join(good[:101] + ["", "C1CC", "xyz", "CCO ethanol", "C" * 150])
                         + "\n")
    summary = train(tiny_config(tmp_path / "run", train_csv, small_data[1],
                                **{"train.max_steps": 2, "train.eval_samples": 0}), **QUIET)
    report = summary["data"]["train"]
    assert report["n_kept"] == 100
    assert report["reasons"] == {"empty": 1, "invalid": 2, "bad_characters": 1, "too_long": 1}


def test_missing_column_and_file_are_clear(tmp_path, small_data):
    with pytest.raises(DataError, match="SMILES"):
        bad = tmp_path / "bad.csv"
        bad.write_text("smi,name\nCCO,ethanol\n")
        train(tiny_config(tmp_path / "r1", bad, small_data[1]), **QUIET)
    with pytest.raises(DataError, match="nope.csv"):
        train(tiny_config(tmp_path / "r2", tmp_path / "nope.csv", small_data[1]), **QUIET)


def test_corrupt_checkpoints_are_refused(tmp_path, trained_run):
    broken = tmp_path / "broken"
    shutil.copytree(trained_run / "checkpoint", broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(broken)
    (broken / "model.safetensors").write_bytes(data)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="missing tokenizer.json"):
        load_checkpoint(broken)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    (broken / "config.json").write_text("{not json")
    shutil.copy(trained_run / "checkpoint" / "tokenizer.json", broken / "tokenizer.json")
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        load_checkpoint(broken)


def test_pickle_is_refused_and_never_executed(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(evil)
    folder = tmp_path / "folder"
    folder.mkdir()
    torch.save({"w": torch.zeros(2)}, folder / "model.pt")
    with pytest.raises(CheckpointError, match="model.pt"):
        load_checkpoint(folder)
    assert not marker.exists()


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, trained_run):
    """A crash between the two renames leaves .checkpoint.old, which is still loadable."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoint").rename(run / ".checkpoint.old")
    (run / ".checkpoint.tmp-123").mkdir()  # half-written new checkpoint
    model, tokenizer, config, directory = load_checkpoint(run)
    assert directory.name == ".checkpoint.old"


@pytest.mark.parametrize("overrides", [
    {"model.encoder": "transformer", "model.decoder": "transformer", "model.encoder_hidden": 32,
     "model.decoder_hidden": 32, "model.n_heads": 2, "model.feedforward_dim": 64},
    {"model.encoder": "lstm", "model.decoder": "lstm", "model.decoder_layers": 2},
    {"model.variational": False},
    {"data.representation": "selfies"},
    {"data.representation": "selfies", "model.selfies_counter": True, "train.word_dropout": 0.2},
    {"train.kl_schedule": "cyclical", "train.word_dropout": 0.3, "train.free_bits": 0.5},
], ids=["transformer", "lstm", "autoencoder", "selfies", "selfies-counter",
        "cyclical-wdrop-freebits"])
def test_every_variant_trains_saves_and_samples(tmp_path, small_data, overrides):
    import seqvae
    cfg = tiny_config(tmp_path / "run", *small_data,
                      **{"train.max_steps": 6, "train.eval_every": 6, "train.eval_samples": 10,
                         **overrides})
    summary = train(cfg, **QUIET)
    assert summary["step"] == 6
    model = seqvae.load(tmp_path / "run")
    assert model.config.data.representation == cfg.data.representation
    table = model.sample(8, seed=0)
    assert len(table) == 8 and list(table.columns) == ["SMILES", "NLL", "valid"]
    if overrides.get("data.representation") == "selfies":
        assert model.tokenizer.kind == "selfies"
        # SELFIES decode to molecules whatever the tokens; only an empty string is invalid
        assert table.loc[table["SMILES"] != "", "valid"].all()
        if overrides.get("model.selfies_counter"):  # roles saved with the model, one per token
            assert model.config.model.token_roles == selfies_roles(list(model.tokenizer.vocab))
            assert model.model.counter is not None
    mu, _ = model.encode(["CCO"])
    if overrides.get("model.variational") is False:
        assert torch.equal(model.encode(["CCO"], sample=True), mu)


def test_interrupt_saves_a_resumable_checkpoint(tmp_path, small_data, monkeypatch):
    """Ctrl-C mid-run finishes the step, writes a checkpoint; --resume carries on from it."""
    import os
    import signal

    from seqvae.trainer import Trainer
    original = Trainer.train_step

    def interrupt_at_7(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.state.step == 7:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Trainer, "train_step", interrupt_at_7)
    cfg = tiny_config(tmp_path / "run", *small_data, **{"train.max_steps": 12})
    summary = train(cfg, **QUIET)
    assert summary["step"] == 7 and not summary["finished"]
    monkeypatch.setattr(Trainer, "train_step", original)
    assert train(cfg, resume=True, **QUIET)["step"] == 12


def test_precision_setting(tmp_path, small_data):
    """fp32 and bf16 (autocast) both train; bf16 is not a silent no-op."""
    from seqvae.runtime import resolve_precision
    assert resolve_precision("fp32", torch.device("cpu")) == torch.float32
    assert resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ConfigError, match="precision"):
        tiny_config(tmp_path / "x", *small_data, **{"train.precision": "fp8"}).validate()
    with pytest.raises(ConfigError, match="fp16.*needs a CUDA device"):
        resolve_precision("fp16", torch.device("cpu"))
    final = {}
    for precision in ("fp32", "bf16"):
        cfg = tiny_config(tmp_path / precision, *small_data,
                          **{"train.max_steps": 20, "train.precision": precision})
        train(cfg, **QUIET)
        rows = [r for r in csv.DictReader(open(tmp_path / precision / "log.csv")) if r["train_loss"]]
        assert float(rows[-1]["train_recon"]) < float(rows[0]["train_recon"])
        final[precision] = weights(tmp_path / precision)
    differ = [k for k in final["fp32"] if not torch.equal(final["fp32"][k], final["bf16"][k])]
    assert differ
    close = [float((final["fp32"][k] - final["bf16"][k]).abs().max()) for k in final["fp32"]]
    assert max(close) < 0.1


def test_nonfinite_batches_stop_or_are_skipped_never_written(tmp_path, small_data):
    """A NaN in the posterior layer (as one bad update would leave) makes every batch's loss
    NaN. Without a skip allowance the step stops with an error naming it; with one the batch
    is skipped with no update, until the allowance is spent."""
    from seqvae.trainer import Trainer
    config = tiny_config(tmp_path / "run", *small_data, **{"train.max_skipped_batches": 0})
    trainer = Trainer(config, **QUIET)
    trainer.setup()
    with torch.no_grad():
        trainer.model.posterior.weight[0, 0] = float("nan")
    batch = next(trainer.epoch_batches())
    with pytest.raises(FloatingPointError, match=r"the loss became nan at step 1; no update"
                                                 r".*max_skipped_batches"):
        trainer.train_step(batch)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.config.train.max_skipped_batches = 2
    skipped = [trainer.train_step(batch), trainer.train_step(batch)]
    assert trainer.state.step == 2 and trainer.state.skipped_batches == 2
    assert skipped == [None, None]  # no figures: nothing skipped reaches the logged averages
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k].nan_to_num(), after[k].nan_to_num()) for k in before)
    with pytest.raises(FloatingPointError, match="2 batches already skipped"):
        trainer.train_step(batch)


def test_callbacks_see_every_step_and_can_stop_a_run(tmp_path, small_data):
    """Hooks replace what a run records: a custom list gets every step's figures and each
    evaluation, can stop the run, and nothing else (no log.csv) is written; the caller's
    config is left as it was."""
    from seqvae.callbacks import Callback
    from seqvae.trainer import Trainer

    class Recorder(Callback):
        def __init__(self):
            self.events, self.losses = [], []

        def on_setup(self, trainer):
            self.events.append("setup")

        def on_step_end(self, trainer, stats):
            self.losses.append(stats.loss)
            if trainer.state.step == 5:
                trainer.run_evaluation()
            if trainer.state.step == 7:
                trainer.stop_requested = True

        def on_evaluate(self, trainer, metrics):
            self.events.append(("evaluate", trainer.state.step, "valid_recon" in metrics))

        def on_loop_end(self, trainer):
            self.events.append("loop end")

        def on_train_end(self, trainer):
            self.events.append(("end", trainer.state.step))

    config = tiny_config(tmp_path / "run", *small_data)
    before = config.to_dict()
    recorder = Recorder()
    summary = Trainer(config, callbacks=[recorder], **QUIET).fit()
    assert summary["step"] == 7 and not summary["finished"]
    assert summary["metrics"]["valid_recon"] > 0  # the last evaluation's figures
    assert len(recorder.losses) == 7 and all(loss > 0 for loss in recorder.losses)
    assert recorder.events == ["setup", ("evaluate", 5, True), "loop end", ("end", 7)]
    assert not (tmp_path / "run" / "log.csv").exists()
    assert config.to_dict() == before and config.model.vocab_size == 0  # derived on a copy
