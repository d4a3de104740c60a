"""PMO's AUC top-k against curves computed by hand."""

import math

import numpy as np
import pytest

from seqvae.errors import ConfigError
from seqvae.search import objectives as O
from seqvae.search.auc import auc_top_k, oracle_scores, top_k_curve
from seqvae.search.latent import Oracle


def test_curve_points_and_top_k_means():
    calls, means = top_k_curve([0.5, 1.0, 0.2, 0.8, 0.9], k=2, every=2)
    assert calls.tolist() == [0, 2, 4, 5]
    # top-2 means: none yet; {0.5, 1.0}; {1.0, 0.8}; {1.0, 0.9}
    assert np.allclose(means, [0.0, 0.75, 0.9, 0.95])


def test_auc_by_trapezoid_divided_by_budget():
    # points (0, 0), (2, 0.75), (4, 0.9): areas 0.75 + 1.65, then 0.9 held for 2 more calls
    assert auc_top_k([0.5, 1.0, 0.2, 0.8], budget=6, k=2, every=2) == pytest.approx(4.2 / 6)
    # a last point between two logging points: (4, 0.9) -> (5, 0.95), then flat for 1 call
    assert auc_top_k([0.5, 1.0, 0.2, 0.8, 0.9], budget=6, k=2, every=2) == pytest.approx(
        (0.75 + 1.65 + 0.925 + 0.95) / 6)


def test_fewer_than_k_scores_average_what_there_is():
    # one score of 0.4: the curve rises from 0 to 0.4 over the first call, then is flat
    assert auc_top_k([0.4], budget=2, k=10, every=100) == pytest.approx((0.2 + 0.4) / 2)


def test_a_run_that_finds_the_best_first_scores_higher_than_one_that_finds_it_last():
    values = [0.1] * 99 + [1.0]
    assert auc_top_k(values[::-1], budget=100, k=1, every=10) > 0.9
    assert auc_top_k(values, budget=100, k=1, every=10) < 0.15


def test_non_finite_scores_count_zero_and_calls_past_the_budget_are_ignored():
    assert auc_top_k([-math.inf, math.nan, 1.0], budget=3, k=1, every=1) == pytest.approx(
        (0 + 0 + 0.5) / 3)
    assert auc_top_k([0.0, 0.0, 1.0], budget=2, k=1, every=1) == 0.0


def test_full_budget_at_pmo_scale_matches_a_direct_trapezoid():
    rng = np.random.default_rng(0)
    values = rng.random(10_000)
    xs = np.arange(0, 10_001, 100)
    ys = [0.0] + [np.sort(values[:x])[-10:].mean() for x in xs[1:]]
    expected = np.trapezoid(ys, xs) / 10_000
    assert auc_top_k(values) == pytest.approx(expected, rel=1e-12)


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="budget"):
        auc_top_k([1.0], budget=0)
    with pytest.raises(ConfigError, match="k >= 1"):
        top_k_curve([1.0], k=0)


def test_oracle_scores_in_call_order_with_failures_as_zero():
    def picky(smiles: str) -> float:
        if "N" in smiles:
            raise ValueError("no nitrogen, please")
        return len(smiles) / 10

    oracle = Oracle(O.custom(picky, name="picky"))
    z = np.zeros((5, 2), np.float32)
    # an invalid string and a repeat cost no call; the failure costs one and scores 0
    oracle.score(["CCO", "not a molecule", "CN", "OCC", "CCCC"], z, "test", 0, 0, budget=10)
    assert oracle.calls == 3
    assert oracle_scores(oracle).tolist() == pytest.approx([0.3, 0.0, 0.4])
