"""DDP under torchrun: two CPU processes (gloo) on this machine against one process.

The runs are real ``torchrun --nproc_per_node=2 -m seqvae train`` commands. With the same
global batch, two processes that each take half of every batch and average their gradients
make the same updates as one process (the losses are weighted by each half's share). The
comparison runs as an autoencoder (no z noise, no dropout), so the only difference left is
floating-point summation order."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_config
from seqvae.config import dump_toml
from seqvae.trainer import train

QUIET = {"progress": False, "log": lambda *_: None}
DETERMINISTIC = {"train.pretrain_steps": 1000, "train.pretrain_reset_decoder": False,
                 "train.max_steps": 12, "train.eval_every": 6, "train.checkpoint_every": 6,
                 "train.log_every": 3, "train.eval_samples": 0, "train.lr_min": 3e-3,
                 "train.threads": 1, "train.precision": "fp32"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(config_file: Path, *extra: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
               "-m", "seqvae", "train", str(config_file), "--device", "cpu", "--no-progress",
               *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoint" / "model.safetensors"))


@pytest.fixture(scope="module")
def ddp_and_single(tmp_path_factory, small_data):
    folder = tmp_path_factory.mktemp("ddp")
    single = tiny_config(folder / "single", *small_data, **DETERMINISTIC)
    train(single, **QUIET)
    config = tiny_config(folder / "ddp", *small_data, **DETERMINISTIC)
    (folder / "ddp.toml").write_text(dump_toml(config))
    result = torchrun(folder / "ddp.toml")
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result


def test_two_processes_match_one_process_of_the_same_global_batch(ddp_and_single):
    folder, _ = ddp_and_single
    one, two = weights(folder / "single"), weights(folder / "ddp")
    assert one.keys() == two.keys()
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    print("largest weight difference", worst)
    for name in one:
        assert torch.allclose(one[name], two[name], rtol=1e-4, atol=1e-5), (name, worst)
    # and it really trained: the weights moved from the same initialisation
    assert summary(folder / "ddp")["step"] == 12


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_only_rank_zero_writes(ddp_and_single):
    folder, result = ddp_and_single
    run = folder / "ddp"
    rows = list(csv.DictReader(open(run / "log.csv")))
    steps = [int(r["step"]) for r in rows if r["train_loss"]]
    assert steps == [3, 6, 9, 12]  # one row per logged step, not one per process
    assert summary(run)["processes"] == 2
    assert result.stdout.count("model: ") == 1  # the set-up line, printed by rank 0 only
    assert not list(run.glob(".*tmp*"))  # no half-written checkpoint left behind


def test_ddp_vae_run_resumes(tmp_path, small_data):
    """A real VAE (z noise, KL annealing) under DDP: stop at step 6, resume to 12."""
    settings = dict(DETERMINISTIC, **{"train.pretrain_steps": 0, "train.max_steps": 6})
    config = tiny_config(tmp_path / "vae", *small_data, **settings)
    (tmp_path / "vae.toml").write_text(dump_toml(config))
    first = torchrun(tmp_path / "vae.toml")
    assert first.returncode == 0, first.stderr[-3000:]
    assert summary(tmp_path / "vae")["step"] == 6
    again = torchrun(tmp_path / "vae.toml", "--resume", "--max-steps", "12")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from" in again.stdout
    assert summary(tmp_path / "vae")["step"] == 12
    assert all(torch.isfinite(t).all() for t in weights(tmp_path / "vae").values())


def test_ddp_builds_the_token_cache_once_and_shares_a_data_error(tmp_path, small_data):
    """A file no run has cached: the first process builds the cache while the other waits,
    then both train on it. A file without one usable row: both processes stop with the
    error, neither waits forever for the other."""
    from seqvae.cache import cache_root
    fresh = tmp_path / "fresh.csv"
    fresh.write_text(small_data[0].read_text() + "CCOCC\n")  # bytes no other test has
    settings = dict(DETERMINISTIC, **{"train.max_steps": 2})
    config = tiny_config(tmp_path / "fresh", fresh, small_data[1], **settings)
    (tmp_path / "fresh.toml").write_text(dump_toml(config))
    before = set(cache_root().iterdir()) if cache_root().exists() else set()
    result = torchrun(tmp_path / "fresh.toml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("tokenized data cached in") == 1
    assert len(set(cache_root().iterdir()) - before) == 1  # one entry, no scratch folders
    assert summary(tmp_path / "fresh")["step"] == 2

    bad = tmp_path / "bad.csv"
    bad.write_text("SMILES\nxyz\nC1CC\n\n")
    config = tiny_config(tmp_path / "bad", bad, small_data[1], **settings)
    (tmp_path / "bad.toml").write_text(dump_toml(config))
    result = torchrun(tmp_path / "bad.toml")
    assert result.returncode != 0
    assert "no usable training rows" in result.stderr + result.stdout
