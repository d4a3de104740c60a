"""The tokenized-data cache: flat memory-mapped arrays keyed by the file's hash and settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_config
from seqvae.cache import TokenArray, TokenWriter, cache_root
from seqvae.data import SequenceBatches
from seqvae.prepare import prepare_data
from seqvae.trainer import train

QUIET = {"progress": False}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test its own empty cache: runs of other test files on the same data must not
    have filled it."""
    monkeypatch.setenv("SEQVAE_CACHE_DIR", str(tmp_path / "cache"))
SETTINGS = {"train.max_steps": 6, "train.eval_every": 6, "train.checkpoint_every": 6,
            "train.eval_samples": 0, "train.threads": 1, "train.precision": "fp32"}


def test_token_array_behaves_like_a_list(tmp_path):
    rows = [[1, 5, 2], [1, 2], [1, 7, 7, 7, 2]]
    array = TokenArray.from_sequences(rows)
    assert len(array) == 3 and [a.tolist() for a in array] == rows
    assert array[-1].tolist() == rows[-1] and array.lengths.tolist() == [3, 2, 5]
    assert [a.tolist() for a in array[1:]] == rows[1:] and len(array[5:]) == 0
    assert [a.tolist() for a in array[::2]] == rows[::2]
    with pytest.raises(IndexError):
        array[3]
    array.save(tmp_path, "x")
    mapped = TokenArray.load(tmp_path, "x")
    assert isinstance(mapped.tokens, np.memmap) and [a.tolist() for a in mapped] == rows
    # batches read from the mapped arrays as from the lists
    a = list(SequenceBatches(rows, 2, 0, shuffle=False))
    b = list(SequenceBatches(mapped, 2, 0, shuffle=False))
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b))


def test_second_run_reads_the_cache_and_trains_the_same(tmp_path, small_data):
    lines: list[str] = []
    first = tiny_config(tmp_path / "a", *small_data, **SETTINGS)
    train(first, log=lines.append, **QUIET)
    assert any("cached in" in line for line in lines)
    lines.clear()
    second = tiny_config(tmp_path / "b", *small_data, **SETTINGS)
    train(second, log=lines.append, **QUIET)
    assert any("from the token cache" in line for line in lines)
    uncached = tiny_config(tmp_path / "c", *small_data, **SETTINGS, **{"train.token_cache": False})
    train(uncached, log=lines.append, **QUIET)
    w = [load_file(str(tmp_path / r / "checkpoint" / "model.safetensors")) for r in "abc"]
    assert all(torch.equal(w[0][k], w[1][k]) and torch.equal(w[0][k], w[2][k]) for k in w[0])


def test_a_changed_file_or_setting_misses_and_a_broken_entry_is_rebuilt(tmp_path, small_data):
    train_csv, valid_csv = small_data
    copy = tmp_path / "train.csv"
    copy.write_text(train_csv.read_text())
    lines: list[str] = []
    config = tiny_config(tmp_path / "r", copy, valid_csv, **SETTINGS)
    prepare_data(config, log=lines.append)
    prepare_data(config, log=lines.append)
    assert "from the token cache" in lines[-1]
    copy.write_text(train_csv.read_text().replace("\n", "\nCCO\n", 1))  # one more row
    lines.clear()
    changed = prepare_data(config, log=lines.append)
    assert not any("from the token cache" in line for line in lines)
    assert len(changed.train) == 401
    shorter = tiny_config(tmp_path / "r", copy, valid_csv, **SETTINGS, **{"data.max_length": 30})
    lines.clear()
    prepare_data(shorter, log=lines.append)
    assert not any("from the token cache" in line for line in lines)
    # a broken entry: tokens file cut short
    for tokens in cache_root().glob("*/train.tokens.i32"):
        tokens.write_bytes(tokens.read_bytes()[:50])
    lines.clear()
    rebuilt = prepare_data(config, log=lines.append)
    assert any("unreadable" in line for line in lines) and len(rebuilt.train) == 401
    lines.clear()
    prepare_data(config, log=lines.append)
    assert "from the token cache" in lines[-1]  # the broken entry was replaced


def test_token_writer_appends_chunks(tmp_path):
    rows = [[1, 5, 2], [1, 2], [1, 7, 7, 7, 2], [1, 9, 2]]
    with TokenWriter(tmp_path, "x") as writer:
        writer.add(rows[:1])
        writer.add([])
        writer.add(TokenArray.from_sequences(rows[1:3]))
        writer.add([np.array(r, np.int32) for r in rows[3:]])
    assert writer.rows == 4 and writer.n_tokens == 13
    assert [a.tolist() for a in TokenArray.load(tmp_path, "x")] == rows
    with TokenWriter(tmp_path, "empty"):
        pass
    assert len(TokenArray.load(tmp_path, "empty")) == 0


def test_streamed_cache_build_equals_the_in_memory_preparation(tmp_path, small_data, monkeypatch):
    """The cache is built a chunk at a time (here 37 rows, checked by two processes in pieces
    of 10) from a file with bad rows; it must hold what preparing in memory gives."""
    from seqvae import data
    from seqvae.domains import molecules

    train_csv, valid_csv = small_data
    lines = train_csv.read_text().splitlines()
    bad = ["", "C1CC", "CCO name", "xyz", "C" * 200]
    mixed = lines[:1] + [v for i, line in enumerate(lines[1:]) for v in
                         ([line, bad[i % 5]] if i % 50 == 0 else [line])]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(mixed) + "\n")
    monkeypatch.setattr(molecules, "CACHE_CHUNK", 37)
    monkeypatch.setattr(data, "_POOL_CHUNK", 10)
    monkeypatch.setattr(data, "_n_workers", lambda n_items: 2)
    for representation in ("smiles", "selfies"):
        config = tiny_config(tmp_path / representation, path, valid_csv, **SETTINGS,
                             **{"data.representation": representation})
        lines_seen: list[str] = []
        cached = prepare_data(config, log=lines_seen.append)
        assert any("cached in" in line for line in lines_seen)
        assert isinstance(cached.train, TokenArray) and isinstance(cached.train.tokens, np.memmap)
        config.train.token_cache = False
        plain = prepare_data(config, log=lambda *_: None)
        assert cached.tokenizer.vocab == plain.tokenizer.vocab
        for split in ("train", "valid"):
            a, b = getattr(cached, split), getattr(plain, split)
            assert [x.tolist() for x in a] == [x.tolist() for x in b]
            assert cached.reports[split]["reasons"] == plain.reports[split]["reasons"]
            assert cached.reports[split]["examples"] == plain.reports[split]["examples"]
        assert sum(cached.reports["train"]["reasons"].values()) == 8
        assert not list(cache_root().glob(".*tmp*"))  # no scratch left behind


def test_a_resumed_run_reads_the_entry_its_first_part_built(tmp_path, small_data):
    """The resumed part is given the run's tokenizer; the entry the first part built from the
    data holds the same tokenizer, so it is read, not rebuilt (for 1.58M MOSES rows a
    rebuild costs minutes)."""
    lines: list[str] = []
    config = tiny_config(tmp_path / "r", *small_data, **SETTINGS)
    train(config, log=lines.append, **QUIET)
    assert any("cached in" in line for line in lines)
    entries = sorted(p.name for p in cache_root().iterdir())
    lines.clear()
    longer = tiny_config(tmp_path / "r", *small_data, **{**SETTINGS, "train.max_steps": 8})
    train(longer, resume=True, log=lines.append, **QUIET)
    assert any("resumed from" in line for line in lines)
    assert any("from the token cache" in line for line in lines)
    assert sorted(p.name for p in cache_root().iterdir()) == entries  # no new entry


def test_a_given_tokenizer_of_another_vocabulary_misses(tmp_path, small_data):
    from seqvae.tokenizers import TOKENIZERS
    lines: list[str] = []
    config = tiny_config(tmp_path / "r", *small_data, **SETTINGS)
    built = prepare_data(config, log=lines.append).tokenizer
    # every token of the data and one more: all rows tokenize, but the vocabulary differs
    other = TOKENIZERS["smiles"].from_counts({**{t: 1 for t in built.vocab}, "[Se]": 1})
    lines.clear()
    prepared = prepare_data(config, tokenizer=other, log=lines.append)
    assert not any("from the token cache" in line for line in lines)
    assert prepared.tokenizer is other and len(prepared.train) == 400
    assert other.vocab_size == built.vocab_size + 1


def test_computed_properties_are_cached_and_a_resumed_conditional_run_reads_them(
        tmp_path, small_data, monkeypatch):
    from seqvae.cache import cached_properties, properties_root
    from seqvae.chem import rdkit_version
    from seqvae.search import objectives

    calls: list[int] = []
    real = objectives.compute_properties

    def counting(smiles, names, **kw):
        calls.append(len(smiles))
        return real(smiles, names, **kw)

    monkeypatch.setattr(objectives, "compute_properties", counting)
    settings = {**SETTINGS, "model.conditions": "logp,qed"}
    lines: list[str] = []
    train(tiny_config(tmp_path / "a", *small_data, **settings), log=lines.append, **QUIET)
    assert len(calls) == 2  # train and valid, computed once each
    calls.clear()
    train(tiny_config(tmp_path / "b", *small_data, **settings), log=lines.append, **QUIET)
    assert calls == [] and sum("read from the cache" in line for line in lines) == 2
    w = [load_file(str(tmp_path / r / "checkpoint" / "model.safetensors")) for r in "ab"]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    # the values are RDKit's; other names, other strings or a cut file compute again
    smiles = ["CCO", "c1ccccc1", "CC(=O)O"]
    first = cached_properties(smiles, ["logp"], lambda: real(smiles, ["logp"]).to_numpy())
    assert np.allclose(first[:, 0], real(smiles, ["logp"])["logp"])
    again = cached_properties(smiles, ["logp"], lambda: pytest.fail("recomputed"))
    assert np.array_equal(first, again)
    for data in properties_root().glob("*.f32"):
        data.write_bytes(data.read_bytes()[:4])
    fresh = cached_properties(smiles, ["logp"], lambda: first * 0 + 7)
    assert np.all(fresh == 7)
    other = cached_properties(smiles, ["qed"], lambda: np.ones((3, 1)))
    assert np.all(other == 1)
    newer = cached_properties(smiles, ["qed"], lambda: np.zeros((3, 1)), version="other")
    assert np.all(newer == 0) and rdkit_version() not in ("", "other")
