"""index_temperature: a SELFIES model's ring and branch index symbols drawn at their own
temperature (0: the most likely), checked against the decoder's own teacher-forced logits."""

import math

import pytest
import torch

from seqvae.errors import DataError


def _index_positions(tokens: torch.Tensor, announces: torch.Tensor) -> torch.Tensor:
    """(B, T) True where a generated token was due as an index symbol."""
    due = torch.zeros(tokens.size(0), dtype=torch.long)
    at = torch.zeros(tokens.shape, dtype=torch.bool)
    for t in range(tokens.size(1)):
        at[:, t] = due > 0
        due = torch.where(due > 0, due - 1, announces[tokens[:, t]])
    return at


def _generated_against_argmax(vae, index_temperature):
    """(index positions, their tokens == argmax, other positions' tokens == argmax) of 64
    codes decoded at temperature 1.5."""
    net = vae.model
    cfg = net.config
    announces = vae._announces()
    z = torch.randn(64, cfg.latent_dim, generator=torch.Generator().manual_seed(0))
    out = net.generate(z, temperature=1.5, index_temperature=index_temperature,
                       announces=announces if index_temperature is not None else None,
                       generator=torch.Generator().manual_seed(1))
    tokens = out.tokens
    inputs = torch.cat([torch.full((tokens.size(0), 1), cfg.bos_id), tokens[:, :-1]], dim=1)
    with torch.no_grad():
        logits = net.teacher_forced_logits(inputs, net.code(z, None))
    logits[..., [cfg.pad_id, cfg.bos_id]] = float("-inf")
    # positions up to and including each sequence's EOS (after it: padding, not decoded)
    ended = (tokens == cfg.eos_id).long().cumsum(1)
    decoded = (ended == 0) | ((ended == 1) & (tokens == cfg.eos_id))
    is_argmax = logits.argmax(-1) == tokens
    index = _index_positions(tokens, announces) & decoded
    other = ~_index_positions(tokens, announces) & decoded
    return index, is_argmax, other


def test_index_symbols_at_zero_are_the_most_likely(selfies_vae):
    index, is_argmax, other = _generated_against_argmax(selfies_vae, 0.0)
    assert index.sum() > 50  # rings and branches were written
    assert bool(is_argmax[index].all())
    # the other tokens were still sampled at T = 1.5, not taken greedily
    assert float(is_argmax[other].float().mean()) < 0.97


def test_without_index_temperature_index_symbols_are_sampled(selfies_vae):
    # the control: at T = 1.5 throughout, some index symbols are not the most likely one
    index, is_argmax, _ = _generated_against_argmax(selfies_vae, None)
    assert index.sum() > 50
    assert not bool(is_argmax[index].all())


def test_sample_and_decode_take_index_temperature(selfies_vae):
    table = selfies_vae.sample(20, seed=0, index_temperature=0.0)
    assert len(table) == 20 and table["valid"].all()  # SELFIES: every decode is a molecule
    again = selfies_vae.sample(20, seed=0, index_temperature=0.0)
    assert list(table["SMILES"]) == list(again["SMILES"])
    z = torch.zeros(3, selfies_vae.latent_dim)
    assert len(selfies_vae.decode(z, greedy=False, seed=0, index_temperature=0.5)) == 3


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "0", True])
def test_bad_index_temperature_is_refused(selfies_vae, bad):
    with pytest.raises(DataError, match="index_temperature must be a finite number >= 0"):
        selfies_vae.sample(5, index_temperature=bad)


def test_index_temperature_on_a_smiles_model_is_refused(model):
    with pytest.raises(DataError, match="SELFIES model; this model writes smiles"):
        model.sample(5, index_temperature=0.0)


def test_cli_index_temperature(tmp_path):
    from seqvae.cli import main
    out = tmp_path / "samples.csv"
    main(["sample", "moses-selfies", "-n", "10", "--seed", "0", "--index-temperature", "0",
          "-o", str(out), "--no-progress", "--no-grid"])
    assert len(out.read_text().splitlines()) == 11
