"""KL-weight and learning-rate schedules."""

import pytest

from seqvae.config import TrainConfig
from seqvae.schedules import kl_weight, learning_rate


def cfg(**kw):
    base = dict(kl_weight=1.0, kl_start_weight=0.0, kl_warmup_steps=100, kl_warmup_fraction=0.0)
    base.update(kw)
    return TrainConfig(**base)


def test_constant():
    assert [kl_weight(s, cfg(kl_schedule="constant")) for s in (0, 50, 500)] == [1.0, 1.0, 1.0]


def test_linear_ramps_then_holds():
    c = cfg(kl_schedule="linear", kl_start_weight=0.2)
    assert kl_weight(0, c) == pytest.approx(0.2)
    assert kl_weight(50, c) == pytest.approx(0.6)
    assert kl_weight(100, c) == kl_weight(1000, c) == pytest.approx(1.0)


def test_logistic_is_monotone_and_centred():
    c = cfg(kl_schedule="logistic")
    values = [kl_weight(s, c) for s in range(0, 201, 10)]
    assert values == sorted(values)
    assert kl_weight(50, c) == pytest.approx(0.5)
    assert kl_weight(0, c) < 0.01 and kl_weight(100, c) > 0.99


def test_cyclical_repeats():
    c = cfg(kl_schedule="cyclical", kl_cycle_ratio=0.5)
    assert kl_weight(0, c) == 0.0
    assert kl_weight(25, c) == pytest.approx(0.5)
    assert kl_weight(60, c) == pytest.approx(1.0)  # held for the second half of the cycle
    assert kl_weight(100, c) == 0.0 and kl_weight(125, c) == pytest.approx(0.5)


def test_learning_rate_cosine_over_progress_and_constant():
    c = TrainConfig(lr=1e-3, lr_min=1e-4, lr_schedule="cosine")
    assert learning_rate(0.0, c) == pytest.approx(1e-3)
    assert learning_rate(0.5, c) == pytest.approx(5.5e-4)
    assert learning_rate(1.0, c) == learning_rate(1.3, c) == pytest.approx(1e-4)
    assert learning_rate(None, c) == 1e-3  # no budget to count progress in
    assert learning_rate(0.5, TrainConfig(lr=1e-3, lr_schedule="constant")) == 1e-3
    auto = TrainConfig(lr=1e-3, lr_min=1e-4)  # auto: cosine over steps, constant over time
    assert learning_rate(0.5, auto) == pytest.approx(5.5e-4)
    assert learning_rate(0.5, auto, timed=True) == 1e-3


def test_kl_warmup_as_a_fraction_of_the_budget():
    c = cfg(kl_schedule="linear", kl_warmup_fraction=0.25)
    # the step count no longer matters: only the share of the budget spent
    assert kl_weight(10, c, progress=0.125) == kl_weight(10_000, c, progress=0.125) == 0.5
    assert kl_weight(0, c, progress=0.25) == kl_weight(0, c, progress=0.9) == 1.0
    cyc = cfg(kl_schedule="cyclical", kl_warmup_fraction=0.5, kl_cycle_ratio=0.5)
    assert kl_weight(0, cyc, progress=0.125) == pytest.approx(0.5)
    assert kl_weight(0, cyc, progress=0.5) == 0.0  # the second cycle starts
    with pytest.raises(ValueError, match="progress"):
        kl_weight(5, c)


def test_trainer_progress_counts_in_the_budget_unit(tmp_path):
    """A step budget counts progress in steps; a time budget in seconds of training, so a KL
    warm-up of half the budget is half done at half the minutes, however many steps ran."""
    from seqvae.config import Config
    from seqvae.trainer import Trainer

    config = Config()
    config.train.max_steps, config.train.max_minutes = 40, 0
    trainer = Trainer(config)
    trainer.total_steps = 40
    assert trainer.budget_progress(10) == 0.25
    config.train.max_steps, config.train.max_minutes = 0, 2.0
    config.train.kl_warmup_fraction = 0.5
    timed = Trainer(config)
    timed.total_steps = 0
    timed._started = __import__("time").perf_counter() - 30.0  # 30 s of a 120 s budget
    assert timed.budget_progress(7) == pytest.approx(0.25, abs=0.01)
    assert timed.kl_weight_at(7) == pytest.approx(0.5 * config.train.kl_weight, rel=0.05)


def test_pretraining_as_a_share_of_the_budget_then_the_warm_up_from_its_end(tmp_path, small_data):
    """train.pretrain_fraction: the autoencoder pre-training lasts that share of the budget
    (its end counted in the budget's unit), and a KL warm-up given as a share starts from it."""
    import csv
    import json

    from seqvae.trainer import train
    from conftest import tiny_config

    out = tmp_path / "run"
    config = tiny_config(out, *small_data)
    t = config.train
    t.max_steps, t.pretrain_fraction, t.kl_warmup_fraction, t.kl_schedule = 40, 0.25, 0.5, "linear"
    t.kl_weight, t.kl_start_weight, t.log_every, t.pretrain_reset_decoder = 1.0, 0.0, 1, False
    config.validate()
    logs: list[str] = []
    train(config, progress=False, log=logs.append)
    assert any("step 10: autoencoder pre-training done" in line for line in logs)
    weights = {int(r["step"]): float(r["kl_weight"])
               for r in csv.DictReader(open(out / "log.csv")) if r["kl_weight"]}
    assert weights[5] == 0.0 and weights[10] == 0.0
    # pre-training ended at step 10 (progress 0.25): the weight reaches 1 half a budget later
    assert weights[20] == pytest.approx(0.5) and weights[30] == pytest.approx(1.0)
    assert weights[40] == 1.0
    state = json.loads((out / "checkpoint" / "trainer_state.json").read_text())["trainer"]
    assert state["pretrain_end_step"] == 10 and state["pretrain_end_progress"] == 0.25


def test_pretraining_fraction_settings_are_checked():
    from seqvae.config import load_config
    from seqvae.errors import ConfigError

    with pytest.raises(ConfigError, match="pretrain_fraction must be in"):
        load_config(None, ["train.pretrain_fraction=1.0"])
    with pytest.raises(ConfigError, match="set one of them"):
        load_config(None, ["train.pretrain_fraction=0.1", "train.pretrain_steps=100"])
    with pytest.raises(ConfigError, match="has none"):
        load_config(None, ["train.pretrain_fraction=0.1", "train.max_minutes=0"])
