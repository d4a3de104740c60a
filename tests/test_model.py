"""SequenceVAE: shapes, masking, padding invariance, teacher forcing = step-by-step decoding."""

import pytest
import torch

from seqvae.config import ModelConfig
from seqvae.losses import free_bits_kl, gaussian_kl
from seqvae.model import SequenceVAE
from seqvae.model.encoders import reverse_padded

VOCAB = 20


def make_batch(lengths, pad=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    tokens = torch.randint(4, VOCAB, (len(lengths), int(lengths.max())), generator=g)
    tokens[:, 0] = 1
    for i, n in enumerate(lengths.tolist()):
        tokens[i, n - 1] = 2
        tokens[i, n:] = pad
    return tokens, lengths


def small(**kw):
    base = dict(vocab_size=VOCAB, embedding_dim=8, encoder_hidden=16, latent_dim=4,
                decoder_hidden=16, n_heads=2, feedforward_dim=32, max_length=32)
    base.update(kw)
    return ModelConfig(**base)


ARCHS = [dict(encoder="gru", decoder="gru"),
         dict(encoder="lstm", decoder="lstm", encoder_layers=2, decoder_layers=2),
         dict(encoder="gru", decoder="gru", bidirectional=False, encoder_layers=2),
         dict(encoder="transformer", decoder="transformer", encoder_layers=2, decoder_layers=2),
         dict(encoder="gru", decoder="gru", z_to_input=False),
         dict(encoder="gru", decoder="gru", z_to_state=False)]


def test_reverse_padded_reverses_within_length():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    out = reverse_padded(x.unsqueeze(-1), torch.tensor([3, 2])).squeeze(-1)
    assert out.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "-".join(f"{k}={v}" for k, v in a.items()))
def test_forward_outputs_and_backward(arch):
    torch.manual_seed(0)
    model = SequenceVAE(small(**arch))
    tokens, lengths = make_batch([7, 5, 9, 3])
    out = model(tokens, lengths, kl_weight=0.5)
    assert out.logits.shape == (4, 8, VOCAB)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (4, 4)
    assert out.recon_per_sequence.shape == (4,)
    assert out.n_tokens == int((lengths - 1).sum())
    assert torch.allclose(out.loss, out.recon_loss + 0.5 * out.kl)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("arch", ARCHS[:4], ids=["gru", "lstm", "uni", "transformer"])
def test_encoder_ignores_padding(arch):
    model = SequenceVAE(small(**arch)).eval()
    tokens, lengths = make_batch([6, 4])
    padded = torch.cat([tokens, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    mu1, _ = model.encode(tokens, lengths)
    mu2, _ = model.encode(padded, lengths)
    assert torch.allclose(mu1, mu2, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS[:4], ids=["gru", "lstm", "uni", "transformer"])
def test_teacher_forcing_matches_step_by_step(arch):
    """The decoder used for training and for generation are the same function (causality)."""
    model = SequenceVAE(small(**arch)).eval()
    tokens, lengths = make_batch([8])
    z = torch.randn(1, 4)
    full = model.decoder(model.embedding(tokens[:, :-1]), z)[0]  # (T-1, V)
    state = model.decoder.initial_state(z)
    for t in range(tokens.size(1) - 1):
        logits, state = model.decoder.step(model.embedding(tokens[:, t:t + 1]), z, state)
        assert torch.allclose(logits[0], full[t], atol=1e-4), t


def test_generate_nll_matches_forward_nll():
    torch.manual_seed(1)
    model = SequenceVAE(small()).eval()
    z = torch.randn(3, 4)
    gen = model.generate(z, generator=torch.Generator().manual_seed(0))
    rows = []
    for i in range(3):
        ids = gen.tokens[i].tolist()
        end = ids.index(2) + 1 if 2 in ids else len(ids)
        rows.append([1] + ids[:end])
    lengths = torch.tensor([len(r) for r in rows])
    tokens = torch.zeros(3, int(lengths.max()), dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = torch.tensor(r)
    logits = model.decoder(model.embedding(tokens[:, :-1]), z)
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tokens[:, 1:],
                                            ignore_index=0, reduction="none").sum(1)
    assert torch.allclose(nll, gen.nll, atol=1e-3)


def test_generation_stops_at_eos_and_pads_after():
    model = SequenceVAE(small()).eval()
    gen = model.generate(torch.randn(16, 4), generator=torch.Generator().manual_seed(0))
    for row, done in zip(gen.tokens.tolist(), gen.finished.tolist()):
        if done:
            end = row.index(2)
            assert all(t == 0 for t in row[end + 1:])
    assert gen.tokens.size(1) <= 31


def test_greedy_is_deterministic_and_top_k_1_equals_greedy():
    model = SequenceVAE(small()).eval()
    z = torch.randn(5, 4)
    a = model.generate(z, greedy=True).tokens
    b = model.generate(z, top_k=1, generator=torch.Generator().manual_seed(3)).tokens
    assert torch.equal(a, b)


def test_word_dropout_replaces_inputs_with_unk_not_bos_or_pad():
    model = SequenceVAE(small()).train()
    tokens, _ = make_batch([10, 6])
    dropped = model._drop_words(tokens, 0.999)
    assert (dropped[:, 0] == 1).all()
    assert (dropped[tokens == 0] == 0).all()
    inner = (tokens != 0) & (torch.arange(tokens.size(1)) > 0)
    assert (dropped[inner] == 3).all()


def test_deterministic_autoencoder_has_no_kl_and_z_is_mu():
    model = SequenceVAE(small(variational=False))
    tokens, lengths = make_batch([5, 7])
    out = model(tokens, lengths)
    assert float(out.kl) == 0.0
    assert torch.equal(out.z, out.mu)
    assert torch.allclose(out.loss, out.recon_loss)


def test_kl_and_free_bits():
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    assert float(gaussian_kl(mu, logvar).sum()) == 0.0
    kl = gaussian_kl(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2))
    assert torch.allclose(kl, torch.tensor([[0.5, 0.0]]))
    assert float(free_bits_kl(kl, 0.0)) == pytest.approx(0.5)
    assert float(free_bits_kl(kl, 1.0)) == pytest.approx(2.0)  # both dims floored at 1 nat


def test_config_rejects_impossible_models():
    from seqvae.errors import ConfigError
    with pytest.raises(ConfigError, match="encoder_hidden"):
        SequenceVAE(small(encoder="transformer", encoder_hidden=15, n_heads=2))
    with pytest.raises(ConfigError, match="z_to_input"):
        SequenceVAE(small(z_to_input=False, z_to_state=False))
