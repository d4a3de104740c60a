"""KL-weight and learning-rate schedules."""

import pytest

from seqvae.config import TrainConfig
from seqvae.schedules import kl_weight, learning_rate


def cfg(**kw):
    base = dict(kl_weight=1.0, kl_start_weight=0.0, kl_warmup_steps=100)
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


def test_learning_rate_cosine_and_constant():
    c = TrainConfig(lr=1e-3, lr_min=1e-4)
    assert learning_rate(0, 100, c) == pytest.approx(1e-3)
    assert learning_rate(50, 100, c) == pytest.approx(5.5e-4)
    assert learning_rate(100, 100, c) == pytest.approx(1e-4)
    assert learning_rate(70, 0, c) == 1e-3  # time-bound runs keep lr constant
