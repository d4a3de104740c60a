"""A conditional VAE on molecular properties (model.conditions): trained for real on a slice of
the shipped MOSES data, sampled under conditions, saved and loaded, and its bad requests."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Crippen

from seqvae import load
from seqvae.data import read_strings, resolve_data
from seqvae.errors import ConfigError, DataError

from conftest import tiny_config, write_slice


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    from seqvae.trainer import train
    folder = tmp_path_factory.mktemp("conditional")
    data = write_slice(folder / "train.csv", 0, 3000), write_slice(folder / "valid.csv", 3000, 200)
    out = folder / "run"
    train(tiny_config(out, *data, **{"model.conditions": "logp", "train.max_steps": 400,
                                     "train.eval_every": 200, "train.checkpoint_every": 200,
                                     "model.decoder_hidden": 128}),
          progress=False, log=lambda *_: None)
    return out


def test_the_model_reads_the_condition(conditional_run):
    model = load(conditional_run)
    assert model.condition_names == ["logp"]
    low, high = model.condition_range()["logp"]
    assert low < 1.0 and high > 4.0  # MOSES molecules span these
    # held-out molecules are likelier under their own logP than under a wrong one
    smiles = read_strings(resolve_data("default:moses_test"))[:300]
    own = model.conditions_of(smiles)[:, 0].cpu().numpy()
    wrong = np.where(own > 2.5, own - 2.0, own + 2.0)
    right_nll = model.score(smiles, k=1, triage=False, condition={"logp": own})["recon"]
    wrong_nll = model.score(smiles, k=1, triage=False, condition={"logp": wrong})["recon"]
    gain = float(np.nanmean(wrong_nll - right_nll))
    assert gain > 0.3, gain  # measured 0.96 nats per molecule
    # sampling under a condition (how faithfully is benchmarks/conditional.py's question:
    # this tiny model writes few valid molecules)
    table = model.sample(100, seed=0, condition={"logp": 3.0})
    assert len(table) == 100


def test_no_condition_means_the_training_mean(conditional_run):
    """The model's own default (training-time validation samples, decode without a
    condition) is the training mean in property units, not a property of 0."""
    model = load(conditional_run).model
    z = torch.randn(64, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    mean = model.condition_mean.expand(64, 1).clone()
    assert torch.equal(model.code(z), model.code(z, mean))
    assert not torch.equal(model.code(z), model.code(z, torch.zeros(64, 1)))
    runs = [model.generate(z, generator=torch.Generator().manual_seed(1), condition=c).tokens
            for c in (None, mean)]
    assert torch.equal(*runs)


def test_encode_and_reconstruct_read_each_molecules_own_condition(conditional_run):
    model = load(conditional_run)
    smiles = ["CCOc1ccccc1", "CC(=O)Nc1ccc(O)cc1"]
    conditions = model.conditions_of(smiles)
    expected = [Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles]
    assert conditions[:, 0].tolist() == pytest.approx(expected, abs=1e-5)
    mu, _ = model.encode(smiles)
    assert mu.shape == (2, model.latent_dim)
    # the same codes decoded under another condition may differ; under their own, they are
    # what reconstruct gives
    table = model.reconstruct(smiles)
    assert list(table["reconstruction"]) == model.decode(mu, condition=conditions)
    varied = model.decode(mu.repeat(5, 1), condition={"logp": torch.linspace(0, 4, 10)})
    assert len(varied) == 10


def test_bad_conditions_are_refused_or_warned(conditional_run, trained_run):
    model = load(conditional_run)
    with pytest.raises(DataError, match=r"unknown condition\(s\) \['qed'\].*logp"):
        model.sample(5, condition={"qed": 0.8})
    with pytest.raises(DataError, match="must be a number"):
        model.sample(5, condition={"logp": "high"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.sample(5, seed=0, condition={"logp": 40.0})
    assert any("outside the training range" in str(w.message) for w in caught)
    with pytest.raises(DataError, match="trained without conditions"):
        load(trained_run).sample(5, condition={"logp": 2.0})


def test_unknown_or_textual_conditions_are_config_errors(tmp_path, small_data):
    with pytest.raises(ConfigError, match="model.conditions: unknown colour"):
        tiny_config(tmp_path / "a", *small_data, **{"model.conditions": "logp,colour"})
    with pytest.raises(ConfigError, match="twice"):
        tiny_config(tmp_path / "b", *small_data, **{"model.conditions": "logp,logp"})


def test_scores_are_of_each_molecule_under_its_own_condition(conditional_run):
    model = load(conditional_run)
    table = model.score(["CCOc1ccccc1", "CC(=O)Nc1ccc(O)cc1", "not a molecule"], k=4,
                        triage=False)
    assert np.isfinite(table["iw_nll"][:2]).all() and np.isnan(table["iw_nll"][2])
    assert np.isfinite(table["neg_elbo"][:2]).all() and table["reason"][2]


def test_cli_samples_under_a_condition(conditional_run, tmp_path, capsys):
    from seqvae.cli import main

    out = tmp_path / "high.csv"
    assert main(["sample", str(conditional_run), "-n", "200", "-o", str(out), "--seed", "0",
          "--condition", "logp=4", "--no-grid", "--no-progress"]) == 0
    import pandas as pd
    table = pd.read_csv(out)
    assert len(table) == 200
    capsys.readouterr()
    assert main(["sample", str(conditional_run), "--condition", "logp:4"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["sample", str(conditional_run), "--condition", "qed=0.8"]) == 2
    assert "conditioned on logp" in capsys.readouterr().err


def test_vary_condition_moves_one_molecule_along_the_property(conditional_run):
    model = load(conditional_run)
    table = model.vary_condition("CC(=O)Nc1ccc(O)cc1", "logp", [0.0, 1.0, 2.0, 3.0, 4.0])
    assert list(table["logp"]) == [0.0, 1.0, 2.0, 3.0, 4.0] and len(table) == 5
    # the condition changes what the one code decodes to (how faithfully is the benchmark's
    # question: this tiny model's greedy decodes are often invalid)
    assert table["SMILES"].nunique() > 1
    valid = table[table["valid"]]
    assert np.isfinite(valid["logp_achieved"]).all() and table["logp_achieved"][
        ~table["valid"]].isna().all()
    with pytest.raises(DataError, match="not a condition"):
        model.vary_condition("CCO", "qed", [0.5])


def test_the_aggregate_prior_is_fitted_to_codes_read_under_their_conditions(conditional_run):
    # the run's end fitted its aggregate prior; sampling from it under a condition works
    model = load(conditional_run)
    table = model.sample(50, seed=0, prior="aggregate", condition={"logp": 2.0})
    assert len(table) == 50


def test_guidance_draws_from_the_logits_pushed_away_from_the_mean(conditional_run):
    """Classifier-free guidance: each token from log p(.|y) + w (log p(.|y) - log p(.|mean));
    the NLL stays the model's own; at the mean itself guidance changes nothing."""
    import torch.nn.functional as F

    model = load(conditional_run).model
    z = torch.randn(256, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    high = torch.full((256, 1), 4.5)
    w = 3.0
    first = model.generate(z, max_length=2, greedy=True, condition=high, guidance=w)
    emb = model.embedding(torch.full((256, 1), model.config.bos_id))
    with torch.no_grad():
        steps = [model.decoder.step(emb, code, model.decoder.initial_state(code))[0].float()
                 for code in (model.code(z, high), model.code(z))]
    own, reference = (F.log_softmax(s, -1) for s in steps)
    guided = own + w * (own - reference)
    guided[:, [model.config.pad_id, model.config.bos_id]] = float("-inf")
    assert torch.equal(first.tokens[:, 0], guided.argmax(-1))
    assert torch.allclose(first.nll, -own.gather(1, first.tokens[:, :1]).squeeze(1))
    assert not torch.equal(guided.argmax(-1), own.masked_fill(
        torch.isinf(guided), float("-inf")).argmax(-1))  # w changed some first tokens
    mean = model.condition_mean.expand(256, 1).clone()
    plain, pushed = (model.generate(z, greedy=True, condition=mean, guidance=g).tokens
                     for g in (0.0, w))
    assert torch.equal(plain, pushed)


def test_guidance_is_offered_to_conditional_models_only(conditional_run, trained_run,
                                                        tmp_path, capsys):
    from seqvae.cli import main
    model = load(conditional_run)
    table = model.sample(50, seed=0, condition={"logp": 4.0}, guidance=1.5)
    assert len(table) == 50
    for bad in (-1.0, float("nan"), True):
        with pytest.raises(DataError, match="guidance must be a finite number >= 0"):
            model.sample(5, condition={"logp": 4.0}, guidance=bad)
    with pytest.raises(DataError, match="guidance needs a conditional model"):
        load(trained_run).sample(5, guidance=1.0)
    out = tmp_path / "guided.csv"
    assert main(["sample", str(conditional_run), "-n", "20", "-o", str(out), "--condition",
                 "logp=4", "--guidance", "2", "--no-grid", "--no-progress"]) == 0
    assert len(__import__("pandas").read_csv(out)) == 20
