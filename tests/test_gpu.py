"""The CUDA path: mixed precision (bf16, and fp16 with a gradient scaler), pinned-memory
batches, sampling on the GPU, and DDP over NCCL. Marked ``gpu``; skipped where torch sees
no CUDA device (run them on a GPU machine with ``python -m pytest -m gpu``)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_config
from seqvae.config import dump_toml
from seqvae.trainer import train

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
QUIET = {"progress": False, "log": lambda *_: None}


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_trains_and_resumes_on_the_gpu(tmp_path, small_data, precision):
    settings = {"train.device": "cuda", "train.precision": precision, "train.max_steps": 20,
                "train.checkpoint_every": 10, "train.eval_every": 10}
    run = tmp_path / precision
    summary = train(tiny_config(run, *small_data, **settings), **QUIET)
    assert summary["precision"] == precision and summary["step"] == 20
    weights = load_file(str(run / "checkpoint" / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())
    state = json.loads((run / "checkpoint" / "trainer_state.json").read_text())
    assert ("grad_scaler" in state) == (precision == "fp16")
    more = tiny_config(run, *small_data, **dict(settings, **{"train.max_steps": 30}))
    assert train(more, resume=True, **QUIET)["step"] == 30


def test_a_trained_model_samples_and_encodes_on_the_gpu(trained_run):
    import seqvae
    model = seqvae.load(trained_run, device="cuda")
    table = model.sample(64, seed=0)
    assert len(table) == 64
    z, _ = model.encode(["CCO", "c1ccccc1"])
    assert z.shape[0] == 2


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP over NCCL needs two GPUs")
def test_ddp_over_nccl(tmp_path, small_data):
    from test_distributed import torchrun
    config = tiny_config(tmp_path / "ddp", *small_data, **{"train.max_steps": 10})
    (tmp_path / "ddp.toml").write_text(dump_toml(config))
    done = torchrun(tmp_path / "ddp.toml", "--device", "cuda")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["processes"] == 2
