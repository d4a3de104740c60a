"""Snapshots of the weights over training time (train.snapshot_every_minutes)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from seqvae import ConfigError, train
from conftest import tiny_config


def _index(run):
    return json.loads((run / "snapshots" / "index.json").read_text())["snapshots"]


def test_snapshots_every_few_milliseconds_then_resumed(tmp_path, small_data):
    run = tmp_path / "run"
    every = {"train.snapshot_every_minutes": 0.0005}  # 30 ms of training time
    train(tiny_config(run, *small_data, **{"train.max_steps": 20, **every}), progress=False)
    first = _index(run)
    assert len(first) >= 3
    steps = [e["step"] for e in first]
    assert steps == sorted(set(steps)) and steps[-1] <= 20
    times = [e["elapsed_s"] for e in first]
    assert times == sorted(times) and times[0] >= 0.03
    weights = [load_file(str(run / "snapshots" / e["file"])) for e in (first[0], first[-1])]
    from seqvae import load
    keys = set(load(run).model.state_dict())
    assert set(weights[0]) == set(weights[1]) == keys
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in keys)  # it learned between

    # an entry past the checkpoint (a run killed after a snapshot, before its checkpoint) is
    # dropped on resume; the resumed part appends after the checkpoint's step
    index = run / "snapshots" / "index.json"
    index.write_text(json.dumps({"snapshots": first + [{"step": 99, "elapsed_s": 1e6,
                                                        "file": "00000099.safetensors"}]}))
    train(tiny_config(run, *small_data, **{"train.max_steps": 40, **every}), resume=True,
          progress=False)
    after = _index(run)
    assert after[:len(first)] == first
    assert all(e["step"] > 20 for e in after[len(first):]) and len(after) > len(first)
    assert 99 not in [e["step"] for e in after]
    assert [e["step"] for e in after] == sorted(e["step"] for e in after)


def test_no_snapshots_by_default_and_negative_refused(tmp_path, small_data):
    run = tmp_path / "run"
    train(tiny_config(run, *small_data, **{"train.max_steps": 5}), progress=False)
    assert not (run / "snapshots").exists()
    with pytest.raises(ConfigError, match="snapshot_every_minutes"):
        tiny_config(run, *small_data, **{"train.snapshot_every_minutes": -1.0})
