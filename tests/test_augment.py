"""SMILES enumeration while training (data.augment, seqvae.augment)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_config
from seqvae import ConfigError, load_config, train
from seqvae.augment import RandomizedSmiles
from seqvae.chem import canonical_smiles as canonicalize
from seqvae.data import SequenceBatches, read_strings, resolve_data
from seqvae.tokenizers import TOKENIZERS

QUIET = {"progress": False}


def _batch(kind: str, n: int = 64):
    from seqvae.chem import smiles_to_selfies
    convert = smiles_to_selfies if kind == "selfies" else str
    corpus = read_strings(resolve_data("default:moses_valid"))[:2000]
    tok = TOKENIZERS[kind].build([convert(s) for s in corpus])
    strings = corpus[:n]
    ids = tok.encode_batch([tok.to_model_string(s) for s in strings])
    tokens, lengths = next(iter(SequenceBatches(ids, n, tok.pad_id, shuffle=False)))
    return strings, tok, tokens, lengths


@pytest.mark.parametrize("kind", ["smiles", "selfies"])
def test_each_row_becomes_another_spelling_of_the_same_molecule(kind):
    strings, tok, tokens, lengths = _batch(kind)
    augment = RandomizedSmiles(tok, 100, seed=0)
    new_tokens, new_lengths = augment(tokens, lengths, step=3)
    assert new_tokens.shape[0] == len(strings) and int(new_lengths.max()) == new_tokens.shape[1]
    out = [tok.from_model_string(s) for s in tok.decode_batch(new_tokens)]
    assert [canonicalize(s) for s in out] == [canonicalize(s) for s in strings]
    changed = sum(a != b for a, b in zip(tok.decode_batch(new_tokens), tok.decode_batch(tokens)))
    assert changed > len(strings) // 2  # most rows are spelled otherwise
    for row, n in zip(new_tokens, new_lengths):  # BOS ... EOS then padding
        assert row[0] == tok.bos_id and row[n - 1] == tok.eos_id and (row[n:] == tok.pad_id).all()
    # the same seed and step give the same strings; another step gives others
    again, _ = RandomizedSmiles(tok, 100, seed=0)(tokens, lengths, step=3)
    assert torch.equal(again, new_tokens)
    other = tok.decode_batch(augment(tokens, lengths, step=4)[0])
    assert other != tok.decode_batch(new_tokens)
    assert augment.report() == {"rows": 2 * len(strings), "kept_stored_form": 0}


def test_a_random_form_too_long_keeps_the_stored_form():
    strings, tok, tokens, lengths = _batch("smiles")
    limit = int(lengths.max()) - 2  # the longest stored row just fits
    augment = RandomizedSmiles(tok, limit, seed=0)
    new_tokens, new_lengths = augment(tokens, lengths, step=0)
    assert int(new_lengths.max()) - 2 <= limit
    assert augment.report()["kept_stored_form"] > 0  # some random forms were longer
    out = tok.decode_batch(new_tokens)
    assert [canonicalize(s) for s in out] == [canonicalize(s) for s in strings]


@pytest.mark.parametrize("mode", ["encoder", "both"])
def test_training_with_enumeration_resumes_exactly(tmp_path, small_data, mode):
    settings = {"data.augment": mode, "train.lr_min": 3e-3, "train.max_steps": 12,
                "train.eval_every": 6, "train.checkpoint_every": 6, "train.eval_samples": 0}
    full = train(tiny_config(tmp_path / "full", *small_data, **settings), **QUIET)
    report = full["augment"]
    # 400 rows in batches of 32: twelve batches of 32 and one of 16 an epoch
    assert report["mode"] == mode and report["this_part"]["kept_stored_form"] == 0
    assert report["this_part"]["rows"] in (12 * 32, 11 * 32 + 16)
    train(tiny_config(tmp_path / "part", *small_data, **{**settings, "train.max_steps": 6}),
          **QUIET)
    train(tiny_config(tmp_path / "part", *small_data, **settings), resume=True, **QUIET)
    a, b = (load_file(str(tmp_path / r / "checkpoint" / "model.safetensors"))
            for r in ("full", "part"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    plain = train(tiny_config(tmp_path / "plain", *small_data,
                              **{**settings, "data.augment": "none"}), **QUIET)
    c = load_file(str(tmp_path / "plain" / "checkpoint" / "model.safetensors"))
    assert any(not torch.allclose(a[k], c[k]) for k in a)  # it trained on other strings
    assert "augment" not in plain


def test_enumeration_settings_that_cannot_work_are_refused():
    with pytest.raises(ConfigError, match="data.augment"):
        load_config(None, ['data.augment="sometimes"'])
    with pytest.raises(ConfigError, match="text"):
        load_config(None, ['data.representation="word"', 'data.augment="both"'])
    with pytest.raises(ConfigError, match="no encoder"):
        load_config(None, ["model.use_latent=false", 'data.augment="encoder"'])
    load_config(None, ["model.use_latent=false", 'data.augment="both"'])  # an LM: both
