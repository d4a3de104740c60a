"""The sampler keys of benchmarks/moses.py: how a record names the way its samples were drawn."""
import pytest

from benchmarks.moses import Sampler


@pytest.mark.parametrize("key, tag", [
    ("standard", "standard"), ("aggregate@0.9", "aggregate_t0.9"),
    ("standard+index@0", "standard_i0"), ("aggregate@0.95+index@0.5", "aggregate_t0.95_i0.5"),
    ("standard+syntax", "standard_syntax"), ("standard+strict", "standard_strict"),
    ("aggregate@0.9+index@0+strict", "aggregate_t0.9_i0_strict")])
def test_keys_read_back_as_written(key, tag):
    sampler = Sampler.parse(key)
    assert sampler.key == key and sampler.tag == tag


def test_what_a_key_means():
    s = Sampler.parse("aggregate@0.9+index@0+strict")
    assert s.options() == dict(prior="aggregate", temperature=0.9, index_temperature=0.0,
                               syntax=False, strict=True)
    assert Sampler.parse(None) == Sampler()
    assert s.describe() == (", aggregate posterior, T = 0.9, index symbols at T = 0, "
                            "strict SELFIES (repaired strings invalid)")
    assert Sampler.parse("standard+syntax").describe(with_prior=False) == ", SMILES syntax mask"


def test_strict_selfies_draws_again_until_n_remain():
    """The benchmark's strict SELFIES draws the repaired strings again: n valid rows, more
    draws than n, and the share of the draws kept (the validity without redrawing)."""
    import seqvae
    from benchmarks.moses import _draw

    model = seqvae.load("moses-selfies")
    table, drawing = _draw(model, 200, 0, Sampler(strict=True))
    assert len(table) == 200 and table["valid"].all()
    share = drawing["valid_without_redrawing"]
    assert 0 < share < 1 and drawing["draws"] > 200
    assert round(share * drawing["draws"]) >= 200  # every valid draw counted, n of them kept
    assert _draw(model, 50, 0, Sampler())[1] == {}
