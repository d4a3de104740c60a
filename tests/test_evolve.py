"""The genetic algorithm on latent codes (seqvae.search.evolve), on the shipped SELFIES model."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import size_reward
from seqvae.errors import ConfigError
from seqvae.search import LatentSearch, objectives as O
from seqvae.search.auc import oracle_scores


@pytest.fixture(scope="module")
def vae(selfies_vae):
    return selfies_vae


def test_ga_spends_its_budget_and_climbs_above_the_prior(vae):
    objective = O.Objective("small", size_reward)
    evolved = LatentSearch(vae, objective)
    evolved.run("ga", budget=400, seed=0, population=40, offspring=40)
    assert evolved.oracle.calls == 400
    # every call is a new valid molecule; the decodes behind them include repeats
    assert evolved.decoded >= 400
    assert evolved.reports["ga#0"]["stopped"] == "budget spent"
    baseline = LatentSearch(vae, objective)
    baseline.run("prior", budget=400, seed=0, batch_size=40)
    ga, prior = oracle_scores(evolved.oracle), oracle_scores(baseline.oracle)
    # later generations are smaller molecules (shipped moses-selfies of 2026-12, seeds 0, 1, 2:
    # last-100 means 0.335, 0.410, 0.379 against the prior's 0.274, 0.279, 0.281)
    assert ga[-100:].mean() > prior.mean() + 0.04
    assert np.sort(ga)[-10:].mean() > np.sort(prior)[-10:].mean()


def test_ga_hands_over_and_stops_when_children_repeat(vae):
    search = LatentSearch(vae, O.qed())
    search.run("prior", budget=50, seed=0, batch_size=25)
    search.run("ga", budget=120, seed=1, start="best", population=20, offspring=20)
    assert search.oracle.calls == 120
    assert set(search.results()["method"]) == {"prior", "ga"}
    # no mutation and one parent: every child is a parent's code, decoding to a known molecule
    stuck = LatentSearch(vae, O.qed())
    stuck.run("ga", budget=10_000, seed=0, population=1, offspring=5, mutation=0.0, patience=3)
    report = stuck.reports["ga#0"]
    assert report["stopped"] == "3 generations in a row spent no call"
    assert stuck.oracle.calls < 10_000


def test_stages_hand_over_in_one_budget(vae):
    search = LatentSearch(vae, O.qed())
    table = search.run_stages("prior:40+ga", budget=100, seed=0,
                              options={"prior": {"batch_size": 20},
                                       "ga": {"population": 20, "offspring": 20}})
    assert search.oracle.calls == 100 and table["call"].is_unique
    prior, ga = table[table["method"] == "prior"], table[table["method"] == "ga"]
    assert prior["call"].max() <= 40 and ga["call"].min() > 40 and len(prior) + len(ga) == 100
    assert search.reports["ga#1"]["stopped"] == "budget spent"
    with pytest.raises(ConfigError, match="needs the call count"):
        search.run_stages("prior+ga", budget=10)
    with pytest.raises(ConfigError, match="not below the budget"):
        LatentSearch(vae, O.qed()).run_stages("prior:50+ga", budget=50)
    with pytest.raises(ConfigError, match="do not run"):
        LatentSearch(vae, O.qed()).run_stages("prior:5+ga", budget=10,
                                              options={"reinvent": {"lr": 1e-3}})
    with pytest.raises(ConfigError, match="has no option 'populaton'.*population"):
        LatentSearch(vae, O.qed()).run("ga", budget=10, populaton=5)
