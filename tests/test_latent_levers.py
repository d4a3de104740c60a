"""Levers that make the latent carry the sequence: BN-VAE's batch-normalised posterior means
(model.mu_batchnorm) and the bag-of-words loss (model.bag_of_words, train.bow_weight)."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from seqvae.config import ModelConfig, load_config
from seqvae.errors import ConfigError
from seqvae.model import SequenceVAE


def _model(**overrides) -> SequenceVAE:
    config = ModelConfig(vocab_size=30, embedding_dim=8, encoder_hidden=16, latent_dim=6,
                         decoder_hidden=24, **overrides)
    torch.manual_seed(0)
    return SequenceVAE(config)


def _batch(n: int = 16, length: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(4, 30, (n, length), generator=generator)
    tokens[:, 0], tokens[:, -1] = 1, 2  # BOS ... EOS
    return tokens, torch.full((n,), length)


def test_batch_normalised_means_keep_the_kl_above_its_floor():
    gamma = 0.8
    model = _model(mu_batchnorm=gamma).train()
    with torch.no_grad():
        model.mu_norm.shift.fill_(0.3)
    tokens, lengths = _batch()
    out = model(tokens, lengths)
    # over the batch each dimension's means have mean = the shift and (biased) std = gamma
    # (a little less where the raw means vary by less than batch norm's epsilon), so the
    # batch's KL per dimension is at least about (gamma^2 + shift^2) / 2
    assert torch.allclose(out.mu.mean(0), torch.full((6,), 0.3), atol=1e-5)
    assert torch.allclose(out.mu.std(0, unbiased=False), torch.full((6,), gamma), rtol=0.015)
    assert bool((out.kl_per_dim >= 0.97 * (gamma ** 2 + 0.3 ** 2) / 2).all())
    # a model without it has no such floor: its KL per dimension is tiny at initialisation
    plain = _model().train()(tokens, lengths)
    assert float(plain.kl_per_dim.detach().min()) < gamma ** 2 / 2


def test_batch_normalised_means_use_running_statistics_out_of_training():
    model = _model(mu_batchnorm=0.5).train()
    tokens, lengths = _batch()
    for _ in range(3):
        model(tokens, lengths)
    assert int(model.mu_norm.norm.num_batches_tracked) >= 3
    model.eval()
    one, _ = model.encode(tokens[:1], lengths[:1])
    all_rows, _ = model.encode(tokens, lengths)
    assert torch.allclose(one, all_rows[:1], atol=1e-6)  # a row's code does not hang on its batch
    model.train()
    single = model(tokens[:1], lengths[:1])  # a batch of one trains on the running statistics
    assert torch.isfinite(single.loss)
    assert model.mu_norm in model.inference_modules()


def test_bag_of_words_loss_is_the_tokens_negative_log_likelihood_under_the_head():
    model = _model(bag_of_words=True).train()
    tokens, lengths = _batch(n=4)
    tokens[0, 5:] = 0  # a shorter row: padding after its EOS
    tokens[0, 4] = 2
    lengths[0] = 5
    out = model(tokens, lengths, sample_z=False, bow_weight=0.0)
    with_bow = model(tokens, lengths, sample_z=False, bow_weight=2.0)
    targets = tokens[:, 1:]
    log_probs = model.bow_head(out.z).log_softmax(-1).detach()
    expected = [-sum(float(log_probs[i, t]) for t in row.tolist() if t not in (0, 2))
                for i, row in enumerate(targets)]
    got = model.bag_of_words_loss(out.z, targets)
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    assert float(with_bow.loss - out.loss) == pytest.approx(2.0 * sum(expected) / 4, rel=1e-4)


def test_the_levers_train_save_and_load(tmp_path, small_data):
    import seqvae
    from seqvae.trainer import train

    config = tiny_config(tmp_path / "run", *small_data)
    config.model.mu_batchnorm, config.model.bag_of_words, config.train.bow_weight = 0.6, True, 0.5
    config.validate()
    summary = train(config, progress=False, log=lambda *_: None)
    assert summary["step"] == 40
    # BN-VAE keeps the KL per dimension near its floor or above: 8 dims * 0.6^2 / 2 = 1.44
    assert summary["metrics"]["valid_kl"] > 1.0
    model = seqvae.load(tmp_path / "run")
    assert model.model.bow_head is not None and model.model.mu_norm is not None
    again = seqvae.load(tmp_path / "run")
    smiles = ["CCO", "c1ccccc1O"]
    assert torch.equal(model.encode(smiles)[0], again.encode(smiles)[0])


def test_lever_settings_are_checked():
    with pytest.raises(ConfigError, match="mu_batchnorm"):
        load_config(None, ["model.mu_batchnorm=-1"])
    with pytest.raises(ConfigError, match="mu_batchnorm"):
        load_config(None, ["model.mu_batchnorm=0.5", "model.variational=false"])
    with pytest.raises(ConfigError, match="bag_of_words"):
        load_config(None, ["model.bag_of_words=true", "model.use_latent=false"])
    with pytest.raises(ConfigError, match="bow_weight"):
        load_config(None, ["train.bow_weight=-1"])
