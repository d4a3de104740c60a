"""Faults: a training run killed at any moment, checkpoint writes included, resumes from its
last complete checkpoint and ends with the same weights as a run that was never stopped."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import seqvae.checkpoint as checkpoint_module
from conftest import tiny_config
from seqvae.checkpoint import resolve_checkpoint
from seqvae.config import dump_toml
from seqvae.errors import CheckpointError
from seqvae.trainer import train

QUIET = {"progress": False, "log": lambda *_: None}
SETTINGS = {"train.max_steps": 40, "train.checkpoint_every": 2, "train.eval_every": 20,
            "train.log_every": 5, "train.eval_samples": 0, "train.lr_min": 3e-3,
            "train.threads": 1, "train.precision": "fp32"}


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def same_weights(a: Path, b: Path) -> bool:
    x, y = weights(a), weights(b)
    return x.keys() == y.keys() and all(torch.allclose(x[k], y[k], atol=1e-6) for k in x)


def finished(run: Path) -> bool:
    path = run / "summary.json"
    return path.exists() and json.loads(path.read_text()).get("step") == 40


def _checkpoint_step(run: Path) -> int:
    """The step of the run's last complete checkpoint (0 before the first)."""
    try:
        kept = resolve_checkpoint(run)
        return json.loads((kept / "trainer_state.json").read_text())["trainer"]["step"]
    except (CheckpointError, OSError, ValueError, KeyError):  # none yet, or mid-write
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_data) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("faults") / "straight"
    train(tiny_config(out, *small_data, **SETTINGS), **QUIET)
    return out


def test_sigkill_at_random_moments_then_resume(tmp_path, small_data, reference):
    """`seqvae train` in a subprocess, killed with SIGKILL at random moments of its training
    (every second step writes a checkpoint, so some kills land inside a write), resumed each
    time with --resume until it finishes: the final weights equal the uninterrupted run's."""
    run = tmp_path / "killed"
    config = tmp_path / "config.toml"
    config.write_text(dump_toml(tiny_config(run, *small_data, **SETTINGS)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rng = random.Random(20261124)
    kills, attempts, stopped_at = 0, 0, []
    while not finished(run):
        attempts += 1
        assert attempts <= 12, "the run never finished"
        command = [sys.executable, "-m", "seqvae", "train", str(config), "--no-progress"]
        if (run / "config.toml").exists():
            command.append("--resume")
        began = time.time()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        if kills < 3:
            # wait for training to start (set-up writes the run's config.toml)
            deadline = time.monotonic() + 120
            marker = run / "config.toml"
            while process.poll() is None and not (marker.exists()
                                                  and marker.stat().st_mtime >= began - 0.01):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            # then a random moment in mid-training: once its last checkpoint has passed a
            # random step beyond where it resumed (a wall-clock delay alone can outlast all 40
            # tiny steps on a fast CPU), and a random few milliseconds more, so that some
            # kills land inside a checkpoint write
            start = _checkpoint_step(run)
            target = rng.randint(start + 1, max(start + 1, 38))
            while process.poll() is None and _checkpoint_step(run) < target:
                assert time.monotonic() < deadline
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.02))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
        out, err = process.communicate(timeout=300)
        assert process.returncode in (0, -signal.SIGKILL), err[-2000:]
        if process.returncode == -signal.SIGKILL:
            try:
                kept = resolve_checkpoint(run)
                stopped_at.append(json.loads((kept / "trainer_state.json").read_text())
                                  ["trainer"]["step"])
            except CheckpointError:  # killed before the first checkpoint
                stopped_at.append(0)
    print("killed with the last checkpoint at steps", stopped_at)
    assert any(0 < step < 40 for step in stopped_at)  # at least one kill in mid-training
    assert same_weights(run, reference)
    assert not list(run.glob(".checkpoint.tmp-*")) and not (run / ".checkpoint.old").exists()


class Crash(BaseException):
    """Stands for the process dying (nothing in seqvae catches a BaseException)."""


def _crash_on(monkeypatch, where: str) -> None:
    """Make the third checkpoint write die at one point of its sequence."""
    calls = {"saves": 0, "renamed_to_old": False}
    save_tensors, rename = checkpoint_module.save_tensors, Path.rename
    original_save = checkpoint_module.save_checkpoint

    def counting_save(*args, **kwargs):
        calls["saves"] += 1
        return original_save(*args, **kwargs)

    def half_written(tensors, path):
        if calls["saves"] == 3 and path.name == "model.safetensors":
            path.write_bytes(b"\x00" * 100)  # a torn file
            raise Crash
        return save_tensors(tensors, path)

    def renaming(self, target):
        if calls["saves"] == 3 and where == "between_renames":
            if Path(target).name.endswith(".old"):
                calls["renamed_to_old"] = True
            elif calls["renamed_to_old"]:
                raise Crash  # the old checkpoint moved aside, the new one not yet in place
        return rename(self, target)

    monkeypatch.setattr("seqvae.trainer.save_checkpoint", counting_save)
    if where == "mid_file":
        monkeypatch.setattr(checkpoint_module, "save_tensors", half_written)
    else:
        monkeypatch.setattr(Path, "rename", renaming)


@pytest.mark.parametrize("where", ["mid_file", "between_renames"])
def test_crash_inside_a_checkpoint_write(tmp_path, small_data, reference, monkeypatch, where):
    run = tmp_path / "crashed"
    with monkeypatch.context() as patch:
        _crash_on(patch, where)
        with pytest.raises(Crash):
            train(tiny_config(run, *small_data, **SETTINGS), **QUIET)
    # the step-4 checkpoint is whole (in place, or kept aside as .checkpoint.old)
    kept = resolve_checkpoint(run)
    assert json.loads((kept / "trainer_state.json").read_text())["trainer"]["step"] == 4
    summary = train(tiny_config(run, *small_data, **SETTINGS), resume=True, **QUIET)
    assert summary["step"] == 40
    assert same_weights(run, reference)
    assert not list(run.glob(".checkpoint.tmp-*")) and not (run / ".checkpoint.old").exists()
