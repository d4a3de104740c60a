"""REINVENT's policy update on a seqvae decoder (seqvae.search.reinforce), run on the shipped
SELFIES model and RDKit objectives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import size_reward
from seqvae.search import LatentSearch, objectives as O
from seqvae.search.auc import oracle_scores
from seqvae.search.reinforce import _Memory, _randomised, _ScaffoldFilter


@pytest.fixture(scope="module")
def vae(selfies_vae):
    return selfies_vae


def test_reinvent_spends_its_budget_and_leaves_the_trained_model_as_it_was(vae):
    before = {k: v.clone() for k, v in vae.model.state_dict().items()}
    search = LatentSearch(vae, O.qed())
    search.run("reinvent", budget=120, seed=0, batch_size=32)
    assert search.oracle.calls == 120
    report = search.reports["reinvent#0"]
    assert report["stopped"] == "budget spent" and report["steps"] >= 4
    after = vae.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the agent is a copy
    assert set(search.results()["method"]) == {"reinvent"}


def test_the_agent_learns_what_the_objective_rewards(vae):
    objective = O.Objective("small", size_reward)
    budget = 480
    learnt = LatentSearch(vae, objective)
    learnt.run("reinvent", budget=budget, seed=0, batch_size=32, lr=5e-3)
    baseline = LatentSearch(vae, objective)
    baseline.run("prior", budget=budget, seed=0, batch_size=32)
    rl, prior = oracle_scores(learnt.oracle), oracle_scores(baseline.oracle)
    # the agent's later molecules are smaller than its first ones and than the prior's
    # (shipped moses-selfies of 2026-12, seeds 0, 1, 2: last-quarter means 0.366, 0.391, 0.415
    # against first-quarter 0.303, 0.304, 0.318 and the prior's 0.274, 0.279, 0.281)
    assert rl[-120:].mean() > rl[:120].mean() + 0.04
    assert rl[-120:].mean() > prior.mean() + 0.06


def test_hand_over_from_another_optimiser(vae):
    search = LatentSearch(vae, O.qed())
    search.run("prior", budget=64, seed=0, batch_size=32)
    search.run("reinvent", budget=160, seed=1, start="best", batch_size=32, z_sigma=0.3)
    assert search.oracle.calls == 160
    assert set(search.results()["method"]) == {"prior", "reinvent"}
    # the replay memory started with the prior's molecules the model can read back (all 64
    # score above 0 on QED)
    found = [e.smiles for e in search.oracle.entries.values() if e.method == "prior"]
    readable, _ = vae.usable(found)
    assert len(found) == 64 and search.reports["reinvent#1"]["seeded"] == len(readable) > 50
    fresh = LatentSearch(vae, O.qed())
    fresh.run("reinvent", budget=32, seed=0, batch_size=32)
    assert fresh.reports["reinvent#0"]["seeded"] == 0


def test_a_spent_budget_stops_at_once(vae):
    search = LatentSearch(vae, O.qed())
    search.run("prior", budget=40, seed=0, batch_size=20)
    search.run("reinvent", budget=40, seed=0)
    assert search.oracle.calls == 40 and search.reports["reinvent#1"]["steps"] == 0


def test_scaffold_filter_zeroes_rewards_past_the_bucket():
    diversity = _ScaffoldFilter(bucket=2, min_score=0.5)
    benzenes = ["Cc1ccccc1", "CCc1ccccc1", "CCCc1ccccc1"]  # one scaffold: benzene
    out = diversity(benzenes + ["C1CCNCC1"], np.array([0.9, 0.8, 0.7, 0.6]))
    assert out.tolist() == [0.9, 0.8, 0.0, 0.6]
    # a reward below the minimum neither counts nor is touched
    assert diversity(["c1ccccc1O"], np.array([0.3])).tolist() == [0.3]


def test_memory_keeps_the_best_once_and_replays_by_score():
    memory = _Memory(size=2)
    tokens, z = torch.arange(12).view(4, 3), torch.zeros(4, 2)
    memory.add(["a", "b", "c", "a"], np.array([0.1, 0.9, 0.5, 0.95]), tokens, z)
    assert sorted(memory.items) == ["b", "c"]  # the best two, a's repeat not added twice
    scores, replayed, _ = memory.sample(2, torch.Generator().manual_seed(0))
    assert sorted(scores.tolist()) == pytest.approx([0.5, 0.9])
    assert memory.sample(3, torch.Generator()) is None


def test_augmented_memory_updates_after_each_step_and_spends_the_same_budget(vae):
    search = LatentSearch(vae, O.qed())
    search.run("reinvent", budget=96, seed=0, batch_size=32, augment_rounds=2,
               diversity_bucket=5)
    report = search.reports["reinvent#0"]
    assert search.oracle.calls == 96 and report["stopped"] == "budget spent"
    assert report["augmented_updates"] == 2 * report["steps"] > 0


def test_augmented_memory_rewrites_each_molecule_as_another_smiles_of_itself(model):
    from seqvae.chem import canonical_smiles

    tok, cfg = model.tokenizer, model.model.config
    smiles = ["CC(=O)Nc1ccc(O)cc1", "CCOC(=O)c1ccccc1N", "Cc1ccc(S(N)(=O)=O)cc1"]
    stored = [torch.tensor(tok.encode(tok.to_model_string(s))[1:]) for s in smiles]
    from seqvae.search.reinforce import _pad
    memory = _Memory(size=10)
    memory.add(smiles[1:], np.array([0.8, 0.6]), _pad(stored[1:], cfg.pad_id), torch.ones(2, 3))
    batch = ([smiles[0], ""], np.array([0.5, 0.0]), _pad([stored[0], stored[1]], cfg.pad_id),
             torch.zeros(2, 3))
    tokens, z, rewards = _randomised(memory, batch, tok, cfg, run=0, step=3, round_=0)
    assert rewards.tolist() == pytest.approx([0.5, 0.0, 0.8, 0.6])
    assert z[:2].eq(0).all() and z[2:].eq(1).all()  # each molecule keeps its code
    written = [tok.from_model_string(s) for s in tok.decode_batch(tokens)]
    # the batch first, then the memory; the same molecules, other spellings; a row with no
    # molecule (key "") keeps its stored tokens
    assert [canonical_smiles(w) for w in written] == [canonical_smiles(s) for s in
                                                       [smiles[0], smiles[1], *smiles[1:]]]
    assert written[1] == smiles[1]
    assert sum(w != s for w, s in zip(written, [smiles[0], smiles[1], *smiles[1:]])) >= 2
    again, _, _ = _randomised(memory, batch, tok, cfg, run=0, step=3, round_=0)
    assert torch.equal(tokens, again)  # seeded by the run, step and round


def test_memory_purge_drops_the_scaffolds_the_filter_has_filled():
    diversity = _ScaffoldFilter(bucket=1, min_score=0.5)
    memory = _Memory(size=10)
    keys = ["Cc1ccccc1", "C1CCNCC1"]
    memory.add(keys, np.array([0.9, 0.8]), torch.arange(6).view(2, 3), torch.zeros(2, 2))
    diversity(["CCc1ccccc1"], np.array([0.9]))  # fills benzene's bucket of one
    memory.purge(diversity.full)
    assert list(memory.items) == ["C1CCNCC1"]
