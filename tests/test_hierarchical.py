"""The hierarchical VAE (model.latent_levels = 2): configuration, the two levels' ELBO, prior
sampling and importance weights, and training, saving, loading, resuming and searching like
the one-level model."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch.distributions import Normal, kl_divergence

import seqvae
from seqvae.config import ModelConfig, load_config
from seqvae.errors import ConfigError
from seqvae.losses import gaussian_kl
from seqvae.metrics.text import importance_weighted
from seqvae.model import SequenceVAE
from seqvae.search import LatentSearch, objectives as O
from seqvae.trained import TrainedModel
from seqvae.trainer import Trainer, train

from conftest import size_reward, tiny_config
from test_model import VOCAB as MODEL_VOCAB, make_batch

QUIET = dict(progress=False, log=lambda *_: None)
VOCAB = MODEL_VOCAB  # make_batch draws tokens below it
MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccccc1"]


def small(**overrides) -> ModelConfig:
    """A tiny model; two levels of sizes (4, 2) unless overridden."""
    base = dict(vocab_size=VOCAB, embedding_dim=8, encoder_hidden=16, latent_dim=6,
                latent_levels=2, latent_dim_2=2, decoder_hidden=16, n_heads=2,
                feedforward_dim=32, max_length=32)
    base.update(overrides)
    return ModelConfig(**base)


def batch(lengths=(7, 5, 9), seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token rows BOS .. EOS, padded (test_model's helper, same vocabulary)."""
    return make_batch(lengths, seed=seed)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def hierarchical(out, data, **overrides):
    """tiny_config of a two-level model (z1 of 5, z2 of 3 numbers), logging every 2 steps."""
    return tiny_config(out, *data, **{"model.latent_levels": 2, "model.latent_dim_2": 3,
                                      "train.log_every": 2, "train.eval_samples": 5,
                                      **overrides})


# -- configuration ------------------------------------------------------------------------
def test_latent_sizes_split_latent_dim():
    assert ModelConfig(latent_dim=8).latent_sizes == (8,)
    assert ModelConfig(latent_dim=8, latent_levels=2).latent_sizes == (4, 4)
    assert ModelConfig(latent_dim=7, latent_levels=2).latent_sizes == (4, 3)
    assert ModelConfig(latent_dim=8, latent_levels=2, latent_dim_2=2).latent_sizes == (6, 2)
    # the command line's --set path
    cfg = load_config(None, ["model.latent_levels=2", "model.latent_dim=16"])
    assert cfg.model.latent_sizes == (8, 8)


@pytest.mark.parametrize("overrides, message", [
    (["model.latent_levels=3"], "model.latent_levels must be 1 .* or 2 .* got 3"),
    (["model.latent_levels=0"], "model.latent_levels must be 1"),
    (["model.latent_dim_2=4"], "set model.latent_levels = 2 or leave model.latent_dim_2 at 0"),
    (["model.latent_levels=2", "model.latent_dim=8", "model.latent_dim_2=8"],
     "choose 1 to 7, or 0 for half"),
    (["model.latent_levels=2", "model.latent_dim=1"], "it must be at least 2, got 1"),
    (["model.latent_levels=2", "model.variational=false"], "needs model.variational = true"),
    (["model.latent_levels=2", "model.use_latent=false"], "model.use_latent = true"),
], ids=["three", "zero", "size-without-levels", "z2-too-big", "too-small", "autoencoder",
        "language-model"])
def test_invalid_levels_are_clear_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


# -- the model: one level is unchanged ----------------------------------------------------
def test_one_level_model_is_the_model_it_was():
    """latent_levels = 1 builds the same parameters and draws z, its KL and its prior exactly
    as the one-level model always has."""
    model = SequenceVAE(small(latent_levels=1, latent_dim_2=0, latent_dim=4))
    latent = {n: tuple(p.shape) for n, p in model.named_parameters()
              if n.startswith(("posterior", "prior"))}
    assert latent == {"posterior.weight": (8, 32), "posterior.bias": (8,)}
    assert model.latent_sizes == (4,)
    tokens, lengths = batch()
    out = model(tokens, lengths, generator=seeded(1))
    eps = torch.randn(out.mu.shape, generator=seeded(1))
    assert torch.equal(out.z, out.mu + torch.exp(0.5 * out.logvar) * eps)
    assert torch.equal(out.kl_per_sequence, gaussian_kl(out.mu, out.logvar).sum(1))
    assert torch.equal(model.sample_prior(5, seeded(2)), torch.randn(5, 4, generator=seeded(2)))
    z = torch.randn(5, 4)
    assert torch.allclose(model.prior_log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(1))


def test_shipped_one_level_checkpoint_loads_unchanged(selfies_vae):
    """A checkpoint written before latent_levels existed loads as one level, weights whole."""
    assert selfies_vae.model.config.latent_levels == 1
    assert selfies_vae.latent_sizes == (selfies_vae.latent_dim,)
    assert selfies_vae.model.posterior_2 is None and selfies_vae.model.prior_2 is None


# -- the model: two levels -----------------------------------------------------------------
@pytest.mark.parametrize("network", ["gru", "lstm", "transformer"])
def test_two_level_forward_encode_and_gradients(network):
    torch.manual_seed(0)
    model = SequenceVAE(small(encoder=network, decoder=network))
    tokens, lengths = batch()
    out = model(tokens, lengths, kl_weight=0.5, generator=seeded(1))
    assert out.z.shape == out.mu.shape == (3, 6)
    assert out.kl_per_level.shape == (2,) and bool((out.kl_per_level > 0).all())
    assert torch.allclose(out.kl_per_level.sum(), out.kl)
    assert torch.allclose(out.loss, out.recon_loss + 0.5 * out.kl)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    mu, logvar = model.encode(tokens, lengths)
    assert mu.shape == logvar.shape == (3, 6)  # d1 + d2
    # the forward pass reports encode's means ([mu1, mu2 given mu1]) though it drew z
    assert torch.allclose(model(tokens, lengths, generator=seeded(2)).mu, mu, atol=1e-6)
    assert not torch.allclose(out.z, mu)


def test_second_level_kl_is_zero_exactly_when_posterior_equals_prior():
    torch.manual_seed(0)
    model = SequenceVAE(small())
    tokens, lengths = batch()
    with torch.no_grad():
        out = model(tokens, lengths, generator=seeded(1))
        assert bool((out.kl_per_dim[4:] > 0).all()) and float(out.kl_per_level[1]) > 0
        # q(z2 | x, z1) = p(z2 | z1) = N((0.5, -1), diag(exp(-0.7), exp(0.3)))
        for layer in (model.posterior_2, model.prior_2[2]):
            layer.weight.zero_()
            layer.bias.copy_(torch.tensor([0.5, -1.0, -0.7, 0.3]))
        out = model(tokens, lengths, generator=seeded(1))
    assert torch.equal(out.kl_per_dim[4:], torch.zeros(2))
    assert float(out.kl_per_level[1]) == 0.0 and float(out.kl_per_level[0]) > 0


def test_free_bits_floor_each_dimension_of_both_levels():
    torch.manual_seed(0)
    model = SequenceVAE(small())
    tokens, lengths = batch()
    out = model(tokens, lengths, free_bits=5.0, generator=seeded(1))
    assert bool((out.kl_per_dim < 5.0).all())
    assert torch.allclose(out.loss, out.recon_loss + 5.0 * 6)  # six dimensions, two levels


def test_prior_samples_draw_z2_from_p_z2_given_z1():
    torch.manual_seed(0)
    model = SequenceVAE(small())
    with torch.no_grad():  # p(z2 | z1) = N((3, -2), 0.5^2 I) whatever z1
        model.prior_2[2].weight.zero_()
        model.prior_2[2].bias.copy_(torch.tensor([3.0, -2.0, math.log(0.25), math.log(0.25)]))
    z1, z2 = model.sample_prior(20_000, seeded(0)).split(model.latent_sizes, dim=1)
    assert torch.allclose(z1.mean(0), torch.zeros(4), atol=0.05)
    assert torch.allclose(z1.std(0), torch.ones(4), atol=0.05)
    assert torch.allclose(z2.mean(0), torch.tensor([3.0, -2.0]), atol=0.02)
    assert torch.allclose(z2.std(0), torch.full((2,), 0.5), atol=0.02)
    # with a vanishing variance z2 is the prior network's mean at each z1 drawn
    torch.manual_seed(0)
    model = SequenceVAE(small())
    with torch.no_grad():
        model.prior_2[2].bias[2:] = -30.0
    z1, z2 = model.sample_prior(5, seeded(0)).split(model.latent_sizes, dim=1)
    with torch.no_grad():
        mean = model.prior_2(z1)[:, :2]
    assert torch.allclose(z2, mean, atol=1e-5)
    assert not torch.allclose(mean[0], mean[1], atol=1e-3)  # it depends on z1


def test_importance_weights_use_both_levels_densities():
    """With k = 1, -log w = recon - log p(z1) - log p(z2|z1) + log q(z1|x) + log q(z2|x,z1),
    each density written out with torch.distributions; the KL of each level likewise."""
    torch.manual_seed(0)
    model = SequenceVAE(small()).eval()
    tokens, lengths = batch()
    out = importance_weighted(model, tokens, lengths, k=1, generator=seeded(3))
    eps = torch.randn((1, 3, 6), generator=seeded(3))[0]
    with torch.no_grad():
        features = model.posterior_features(tokens, lengths)
        mu1, logvar1 = model.posterior(features).chunk(2, dim=1)
        q1 = Normal(mu1, (0.5 * logvar1).exp())
        z1 = mu1 + q1.scale * eps[:, :4]
        mu2, logvar2 = model.posterior_2(torch.cat([features, z1], dim=1)).chunk(2, dim=1)
        q2 = Normal(mu2, (0.5 * logvar2).exp())
        z2 = mu2 + q2.scale * eps[:, 4:]
        prior_mu, prior_logvar = model.prior_2(z1).chunk(2, dim=1)
        p2 = Normal(prior_mu, (0.5 * prior_logvar).exp())
        log_p = Normal(0.0, 1.0).log_prob(z1).sum(1) + p2.log_prob(z2).sum(1)
        log_q = q1.log_prob(z1).sum(1) + q2.log_prob(z2).sum(1)
        assert torch.allclose(model.prior_log_prob(torch.cat([z1, z2], dim=1)), log_p, atol=1e-5)
    assert torch.allclose(out["nll"], out["recon"] - log_p + log_q, atol=1e-4)
    kl1 = kl_divergence(q1, Normal(0.0, 1.0)).sum(1)
    kl2 = kl_divergence(q2, p2).sum(1)  # at the one z1 drawn
    assert torch.allclose(out["kl_levels"], torch.stack([kl1, kl2], dim=1), atol=1e-5)
    assert torch.allclose(out["kl"], kl1 + kl2, atol=1e-5)
    more = importance_weighted(model, tokens, lengths, k=50, generator=seeded(4))
    assert bool(torch.isfinite(more["nll"]).all())
    assert bool((more["nll"] <= more["recon"] + more["kl"] + 1.0).all())  # about <= -ELBO


# -- training, saving, loading, resuming ----------------------------------------------------
def check_level_logs(run) -> dict:
    """The run's log has each level's KL at every row and evaluation, finite and >= 0, adding
    up to the total; returns the summary."""
    rows = list(csv.DictReader(open(run / "log.csv")))
    trained = [r for r in rows if r["train_loss"]]
    assert trained
    for row in trained:
        kl1, kl2 = float(row["train_kl_1"]), float(row["train_kl_2"])
        assert math.isfinite(float(row["train_loss"])) and kl1 >= 0 and kl2 >= 0
        assert float(row["train_kl"]) == pytest.approx(kl1 + kl2, rel=1e-4, abs=1e-5)
    evaluated = [r for r in rows if r["valid_recon"]]
    assert evaluated
    last = evaluated[-1]
    assert float(last["valid_kl"]) == pytest.approx(
        float(last["valid_kl_1"]) + float(last["valid_kl_2"]), rel=1e-4, abs=1e-5)
    assert float(last["active_units"]) == (float(last["active_units_1"])
                                           + float(last["active_units_2"]))
    summary = json.loads((run / "summary.json").read_text())
    assert {"valid_kl_1", "valid_kl_2", "active_units_1", "active_units_2"} <= set(
        summary["metrics"])
    return summary


@pytest.fixture(scope="module")
def hier(tmp_path_factory, small_data):
    """A two-level GRU SELFIES model (every decode is a molecule) trained 8 steps with the
    real trainer: (trainer, run folder)."""
    run = tmp_path_factory.mktemp("hier") / "run"
    cfg = hierarchical(run, small_data, **{"data.representation": "selfies",
                                           "train.max_steps": 8, "train.eval_every": 8,
                                           "train.prior_codes": 100})
    trainer = Trainer(cfg, **QUIET)
    trainer.fit()
    return trainer, run


def test_gru_two_level_trains_and_logs_each_level(hier):
    _, run = hier
    assert check_level_logs(run)["step"] == 8


def test_transformer_two_level_trains_and_samples(tmp_path, small_data):
    cfg = hierarchical(tmp_path / "run", small_data, **{
        "model.encoder": "transformer", "model.decoder": "transformer",
        "model.encoder_hidden": 32, "model.decoder_hidden": 32, "model.n_heads": 2,
        "model.feedforward_dim": 64, "train.max_steps": 6, "train.eval_every": 6,
        "train.prior_codes": 0})
    train(cfg, **QUIET)
    check_level_logs(tmp_path / "run")
    model = seqvae.load(tmp_path / "run")
    assert model.latent_sizes == (5, 3)
    assert len(model.sample(4, seed=0)) == 4


def test_saved_model_loads_with_identical_outputs(hier):
    trainer, run = hier
    live = TrainedModel(trainer.model, trainer.tokenizer, trainer.config)
    loaded = seqvae.load(run)
    assert loaded.model.config.latent_levels == 2 and loaded.latent_sizes == (5, 3)
    assert "latent 5+3" in repr(loaded)
    state = loaded.model.state_dict()
    assert all(torch.equal(tensor, state[name]) for name, tensor in
               live.model.state_dict().items())
    assert "prior_2.2.weight" in load_file(str(run / "checkpoint" / "model.safetensors"))
    (mu, logvar), (mu_2, logvar_2) = live.encode(MOLECULES), loaded.encode(MOLECULES)
    assert mu.shape == (3, 8) and torch.equal(mu, mu_2) and torch.equal(logvar, logvar_2)
    drawn = loaded.encode(MOLECULES, sample=True, seed=1)
    assert torch.equal(live.encode(MOLECULES, sample=True, seed=1), drawn)
    assert not torch.allclose(drawn, mu)
    pd.testing.assert_frame_equal(live.sample(6, seed=0), loaded.sample(6, seed=0))
    pd.testing.assert_frame_equal(live.score(MOLECULES, k=4, triage=False),
                                  loaded.score(MOLECULES, k=4, triage=False))
    assert np.isfinite(loaded.score(MOLECULES, k=4, triage=False)["iw_nll"]).all()


def test_exports_reconstructs_and_samples_like_one_level(hier):
    _, run = hier
    model = seqvae.load(run)
    table = model.latents(MOLECULES, logvar=True)
    assert [c for c in table.columns if c.startswith("mu_")] == [f"mu_{i}" for i in range(8)]
    mu, _ = model.encode(MOLECULES)
    assert np.allclose(table[[f"mu_{i}" for i in range(8)]].to_numpy(), mu.numpy())
    z1, z2 = mu.split(model.latent_sizes, dim=1)
    assert z1.shape == (3, 5) and z2.shape == (3, 3)
    assert len(model.reconstruct(MOLECULES)) == 3
    assert len(model.interpolate(MOLECULES[0], MOLECULES[1], steps=3)) == 3
    assert (run / "checkpoint" / "prior.json").is_file()  # the aggregate prior of [z1, z2]
    assert len(model.sample(4, seed=0, prior="aggregate")) == 4


def test_resumed_two_level_run_continues(tmp_path, small_data):
    """Stop at step 4, resume to 8: the weights of 8 steps straight, the log's rows in order."""
    settings = {"train.lr_min": 3e-3, "train.max_steps": 8, "train.eval_every": 4,
                "train.checkpoint_every": 4, "train.prior_codes": 0}
    train(hierarchical(tmp_path / "full", small_data, **settings), **QUIET)
    train(hierarchical(tmp_path / "part", small_data, **{**settings, "train.max_steps": 4}),
          **QUIET)
    summary = train(hierarchical(tmp_path / "part", small_data, **settings), resume=True,
                    **QUIET)
    assert summary["step"] == 8
    full = load_file(str(tmp_path / "full" / "checkpoint" / "model.safetensors"))
    part = load_file(str(tmp_path / "part" / "checkpoint" / "model.safetensors"))
    assert all(torch.allclose(full[k], part[k], atol=1e-6) for k in full)
    rows = list(csv.DictReader(open(tmp_path / "part" / "log.csv")))
    assert [int(r["step"]) for r in rows if r["train_loss"]] == [2, 4, 6, 8]
    check_level_logs(tmp_path / "part")


# -- search -----------------------------------------------------------------------------------
def test_searches_start_from_the_models_prior(hier, monkeypatch):
    """prior, ga and reinvent draw their first codes with sample_prior: with p(z2 | z1) set to
    a point at 4, every first code's z2 is 4."""
    _, run = hier
    vae = seqvae.load(run)
    first = vae.latent_sizes[0]
    with torch.no_grad():
        last = vae.model.prior_2[2]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([4.0] * 3 + [-30.0] * 3))
    search = LatentSearch(vae, O.Objective("small", size_reward))
    codes = search.start_codes("prior", 5, seeded(0))
    assert torch.equal(codes, vae.model.sample_prior(5, seeded(0)))
    scored = []
    score = search.oracle.score

    def spy(smiles, z, method, run, step, budget):
        scored.append((method, step, z.copy()))
        return score(smiles, z, method, run, step, budget)

    monkeypatch.setattr(search.oracle, "score", spy)
    options = {"prior": {"batch_size": 10}, "ga": {"population": 10, "offspring": 10},
               "reinvent": {"batch_size": 10}}
    for method, extra in options.items():
        search.run(method, budget=search.oracle.calls + 3, seed=0, **extra)
    firsts = {method: z for method, step, z in scored if step == 0}
    assert set(firsts) == set(options)
    for z in firsts.values():
        assert np.allclose(z[:, first:], 4.0, atol=1e-4)
        assert not np.allclose(z[:, :first], 0.0)
