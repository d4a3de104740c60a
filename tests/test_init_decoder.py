"""A VAE around a language model's decoder (train.init_decoder, seqvae train --init-decoder,
seqvae.model.warm_start_decoder): the tokenizer, embedding and recurrent decoder of a trained
language model, the weights that read z at zero, a fresh encoder."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_config
from seqvae import ConfigError, train
from seqvae.checkpoint import load_checkpoint
from seqvae.cli import main
from seqvae.config import ModelConfig
from seqvae.model import SequenceVAE, warm_start_decoder

QUIET = {"progress": False}
STEPS = {"train.max_steps": 6, "train.eval_every": 6, "train.checkpoint_every": 3,
         "train.eval_samples": 0, "train.prior_codes": 100}


def _weights(run):
    return load_file(str(run / "checkpoint" / "model.safetensors"))


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, small_data):
    """A tiny GRU language model (no latent) really trained for 20 steps."""
    out = tmp_path_factory.mktemp("lm") / "lm"
    train(tiny_config(out, *small_data, **{"model.use_latent": False, "train.max_steps": 20,
                                           "train.eval_every": 20, "train.eval_samples": 0}),
          progress=False, log=lambda *_: None)
    return out


def _teacher_forced(model, tokens, z):
    return model.decoder(model.embedding(tokens), model.code(z))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_warm_started_vae_decodes_every_z_as_the_language_model(cell):
    torch.manual_seed(0)
    lm_config = ModelConfig(vocab_size=20, embedding_dim=8, decoder=cell, decoder_hidden=16,
                            decoder_layers=2, latent_dim=6, use_latent=False)
    lm = SequenceVAE(lm_config).eval()
    vae_config = copy.deepcopy(lm_config)
    vae_config.use_latent, vae_config.latent_dim = True, 10  # another latent width
    vae = SequenceVAE(vae_config).eval()
    tokens = torch.randint(4, 20, (5, 12))
    tokens[:, 0] = 1
    z = torch.randn(5, 10)
    with torch.no_grad():
        expected = _teacher_forced(lm, tokens, torch.zeros(5, 6))
        assert not torch.allclose(_teacher_forced(vae, tokens, z), expected)  # fresh: not yet
        copied = warm_start_decoder(vae, lm)
        assert "embedding.weight" in copied and "decoder.output.weight" in copied
        for codes in (z, 3 * torch.randn(5, 10), torch.zeros(5, 10)):
            torch.testing.assert_close(_teacher_forced(vae, tokens, codes), expected,
                                       rtol=0, atol=1e-6)
    # generation follows the same path: greedy decodes agree whatever z is
    greedy_lm = lm.generate(torch.zeros(5, 6), max_length=12, greedy=True).tokens
    greedy_vae = vae.generate(3 * torch.randn(5, 10), max_length=12, greedy=True).tokens
    assert torch.equal(greedy_lm, greedy_vae)


def test_warm_start_refuses_what_it_cannot_carry_over():
    lm = SequenceVAE(ModelConfig(vocab_size=20, embedding_dim=8, decoder_hidden=16,
                                 latent_dim=6, use_latent=False))
    vae = SequenceVAE(ModelConfig(vocab_size=20, embedding_dim=8, decoder_hidden=16,
                                  latent_dim=6))
    with pytest.raises(ValueError, match="language model"):
        warm_start_decoder(vae, vae)  # a VAE is no language model
    wider = SequenceVAE(ModelConfig(vocab_size=20, embedding_dim=8, decoder_hidden=32,
                                    latent_dim=6))
    with pytest.raises(ValueError, match="must match"):
        warm_start_decoder(wider, lm)
    no_state = SequenceVAE(ModelConfig(vocab_size=20, embedding_dim=8, decoder_hidden=16,
                                       latent_dim=6, z_to_state=False))
    with pytest.raises(ValueError, match="z_to_state"):
        warm_start_decoder(no_state, lm)
    transformer = SequenceVAE(ModelConfig(vocab_size=20, embedding_dim=8, decoder="transformer",
                                          decoder_hidden=16, latent_dim=6))
    with pytest.raises(ValueError, match="GRU or LSTM"):
        warm_start_decoder(transformer, lm)


def test_training_a_vae_around_a_language_model(tmp_path, lm_run, small_data):
    run = tmp_path / "warm"
    # the user's decoder width differs: the language model's wins; the latent is the user's
    config = tiny_config(run, *small_data, **{**STEPS, "train.init_decoder": str(lm_run),
                                              "model.decoder_hidden": 32,
                                              "model.latent_dim": 12, "train.max_steps": 3})
    summary = train(config, **QUIET)
    assert summary["init"]["part"] == "decoder"
    assert summary["init"]["path"] == str(lm_run / "checkpoint")
    saved = json.loads((run / "checkpoint" / "config.json").read_text())["config"]["model"]
    assert saved["use_latent"] and saved["decoder_hidden"] == 64 and saved["latent_dim"] == 12
    assert ((run / "checkpoint" / "tokenizer.json").read_text()
            == (lm_run / "checkpoint" / "tokenizer.json").read_text())
    # resumed with the same command (its [model] still says 32): it goes on to step 6
    train(tiny_config(run, *small_data, **STEPS, **{"train.init_decoder": str(lm_run),
                                                    "model.decoder_hidden": 32,
                                                    "model.latent_dim": 12}),
          resume=True, **QUIET)
    assert json.loads((run / "summary.json").read_text())["step"] == 6
    before, after = _weights(lm_run), _weights(run)
    assert any(k.startswith("encoder.") for k in after)
    shared = [k for k in before if k.startswith("decoder.rnn.weight_hh")]
    for key in shared:  # six steps leave the decoder near the language model's
        a, b = after[key].float().flatten(), before[key].float().flatten()
        assert float(a @ b / (a.norm() * b.norm())) > 0.95
    # and the decoder has begun to read z: its z columns, zero at the start, have moved
    embedding = saved["embedding_dim"]
    assert after["decoder.rnn.weight_ih_l0"][:, embedding:].abs().max() > 0
    model, _, _, _ = load_checkpoint(run / "checkpoint")
    assert model.config.use_latent and model.encoder is not None


def test_init_decoder_refusals(tmp_path, lm_run, trained_run, small_data, capsys):
    run = tmp_path / "bad"
    with pytest.raises(ConfigError, match="not a language model"):
        train(tiny_config(run, *small_data, **STEPS,
                          **{"train.init_decoder": str(trained_run)}), **QUIET)
    with pytest.raises(ConfigError, match="smiles model"):
        train(tiny_config(run, *small_data, **STEPS, **{"train.init_decoder": str(lm_run),
                                                        "data.representation": "selfies"}),
              **QUIET)
    assert not (run / "checkpoint").exists()
    with pytest.raises(ConfigError, match="set one of them"):
        tiny_config(run, *small_data, **{"train.init_decoder": str(lm_run),
                                         "train.init": str(trained_run)})
    with pytest.raises(ConfigError, match="use_latent"):
        tiny_config(run, *small_data, **{"train.init_decoder": str(lm_run),
                                         "model.use_latent": False})
    code = main(["train", "--out", str(run), "--init-decoder", str(lm_run), "--resume",
                 "--no-progress"])
    assert code != 0 and "--init-decoder" in capsys.readouterr().err
