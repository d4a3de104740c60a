"""Tests for seqvae.data: reading files, cleaning molecules, batches, shipped datasets."""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from seqvae import data
from seqvae.data import (
    DEFAULT_DATA,
    SequenceBatches,
    SkipReport,
    check_molecules,
    clean_molecules,
    default_data_path,
    iter_strings,
    load_molecules,
    moses_path,
    read_strings,
    resolve_data,
)
from seqvae.errors import DataError
from seqvae.tokenizers import split_selfies

REPO = Path(__file__).resolve().parent.parent


def _has_molsets() -> bool:
    try:
        importlib.metadata.distribution("molsets")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# --- reading files -----------------------------------------------------------------------------


def test_read_csv_default_column_keeps_empty_cells_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "mols.csv"
    path.write_text("name,SMILES\na,CCO\nb,\n\nc,c1ccccc1\n")
    assert read_strings(path) == ["CCO", "", "", "c1ccccc1"]
    assert read_strings(path, column="name") == ["a", "b", "", "c"]


def test_read_csv_gz_and_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "mols.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8-sig") as handle:
        handle.write("SMILES\nCCO\nCCN\n")
    assert read_strings(path) == ["CCO", "CCN"]


def test_missing_column_error_lists_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "mols.csv"
    path.write_text("smiles,id\nCCO,1\n")
    with pytest.raises(DataError) as error:
        read_strings(path)
    message = str(error.value)
    assert "no column 'SMILES'" in message
    assert "'smiles', 'id'" in message
    assert "did you mean 'smiles'" in message


def test_missing_file_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such data file"):
        read_strings(tmp_path / "absent.csv")
    path = tmp_path / "mols.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match=r"unsupported file type; supported: \.csv, \.csv\.gz"):
        read_strings(path)


def test_read_smi_takes_first_field_and_skips_header(tmp_path: Path) -> None:
    path = tmp_path / "mols.smi"
    path.write_text("smiles id\nCCO mol1\n\nc1ccccc1\tmol2\r\nCCN\n")
    assert read_strings(path) == ["CCO", "", "c1ccccc1", "CCN"]
    gz_path = tmp_path / "mols.smi.gz"
    gz_path.write_bytes(gzip.compress(b"CCO x\nCC\n"))
    assert read_strings(gz_path) == ["CCO", "CC"]


def test_read_txt_keeps_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "sentences.txt"
    path.write_text("the cat sat\n\n  on the mat \n")
    assert read_strings(path) == ["the cat sat", "", "  on the mat "]


@pytest.mark.parametrize("name", ["bad.csv", "bad.smi", "bad.txt"])
def test_non_utf8_bytes_do_not_crash_and_are_rejected(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    header = b"SMILES\n" if name.endswith(".csv") else b""
    path.write_bytes(header + b"CCO\nC\xff\xfeC\nCCN\n")
    strings = read_strings(path)
    assert len(strings) == 3 and "\ufffd" in strings[1]
    kept, report = clean_molecules(strings)
    assert kept == ["CCO", "CCN"]
    assert report.reasons == {"invalid": 1}


def test_empty_csv_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_strings(path)


# --- cleaning molecules ------------------------------------------------------------------------

HANDMADE = ["CCO", "", "C1CC", "xyz", "C" * 130, " c1ccccc1 ", "*C", "ClCCl"]


def test_clean_molecules_counts_each_reason_with_row_numbers() -> None:
    kept, report = clean_molecules(HANDMADE, source="handmade")
    assert kept == ["CCO", "c1ccccc1", "*C", "ClCCl"]  # stripped, otherwise as written
    assert report.n_rows == 8 and report.n_kept == 4 and report.n_skipped == 4
    assert report.reasons == {"empty": 1, "invalid": 2, "too_long": 1}
    assert report.examples == [
        (2, "", "empty"),
        (3, "C1CC", "invalid"),
        (4, "xyz", "invalid"),
        (5, "C" * 80, "too_long"),  # values are cut to 80 characters
    ]
    assert report.summary() == (
        "read 8 rows from handmade: kept 4, skipped 4 (invalid 2, empty 1, too_long 1); "
        "first: row 2 '' empty, row 3 'C1CC' invalid, row 4 'xyz' invalid"
    )
    assert json.loads(json.dumps(report.to_dict()))["examples"][1] == {
        "row": 3,
        "value": "C1CC",
        "reason": "invalid",
    }


def test_clean_molecules_length_is_counted_in_tokens() -> None:
    # "ClCCl" is 5 characters but 3 atom-level tokens (Cl C Cl); "CCCC" is 4 tokens.
    kept, report = clean_molecules(["ClCCl", "CCCC", "[NH4+]"], max_length=3)
    assert kept == ["ClCCl", "[NH4+]"]
    assert report.reasons == {"too_long": 1}
    kept, report = clean_molecules(["C" * 500], max_length=None)
    assert kept == ["C" * 500] and report.n_skipped == 0


def test_clean_molecules_selfies_returns_selfies_and_counts_unconvertible() -> None:
    kept, report = clean_molecules(HANDMADE, representation="selfies")
    # "*C" parses in RDKit but SELFIES cannot encode the dummy atom.
    assert kept == ["[C][C][O]", "[C][=C][C][=C][C][=C][Ring1][=Branch1]", "[Cl][C][Cl]"]
    assert report.reasons == {"empty": 1, "invalid": 2, "too_long": 1, "unconvertible": 1}
    assert (7, "*C", "unconvertible") in report.examples
    # The length limit counts SELFIES tokens: [C][C][O] is 3.
    kept, report = clean_molecules(["CCO", "CCCO"], representation="selfies", max_length=3)
    assert kept == ["[C][C][O]"] and report.reasons == {"too_long": 1}


def test_clean_molecules_unknown_tokens_against_a_vocabulary() -> None:
    kept, report = clean_molecules(["CCO", "CCN", "CCl"], vocabulary={"C", "O"})
    assert kept == ["CCO"]
    assert report.reasons == {"unknown_tokens": 2}


def test_clean_molecules_rejects_unknown_representation() -> None:
    with pytest.raises(DataError, match="unknown molecular representation 'inchi'"):
        clean_molecules(["CCO"], representation="inchi")


def test_clean_molecules_process_pool_gives_the_serial_result(monkeypatch) -> None:
    strings = HANDMADE * 5
    serial = clean_molecules(strings, representation="selfies")
    monkeypatch.setattr(data, "_n_workers", lambda n_items: 2)
    pooled = clean_molecules(strings, representation="selfies")
    assert pooled == serial


def test_values_with_blanks_or_control_characters_are_skipped() -> None:
    # RDKit reads "CCO name" as ethanol named "name"; the model string would keep the name
    values = ["CCO ethanol", "C\tC", "CC\nO", "CCO\x00", "CCN"]
    for representation in ("smiles", "selfies"):
        kept, report = clean_molecules(values, representation)
        assert len(kept) == 1 and report.reasons == {"bad_characters": 4}


def test_iter_strings_chunks_join_to_read_strings(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("name,SMILES\na,CCO\nb,\n\nc,c1ccccc1\nd,CCN\n")
    smi = tmp_path / "m.smi.gz"
    with gzip.open(smi, "wt") as handle:
        handle.write("SMILES\nCCO x\n\nc1ccccc1\nCCN\n")
    txt = tmp_path / "s.txt"
    txt.write_text("a b\n\nc\r\nd\n")
    for path in (csv, smi, txt):
        for rows in (1, 2, 3, 100):
            chunks = list(iter_strings(path, rows=rows))
            assert all(0 < len(c) <= rows for c in chunks[1:])
            assert [v for c in chunks for v in c] == read_strings(path)
    assert read_strings(smi) == ["CCO", "", "c1ccccc1", "CCN"]


def test_streamed_check_in_a_pool_matches_the_serial_check_and_counts_tokens(monkeypatch) -> None:
    strings = HANDMADE * 7
    serial, counts, changed = data._check_chunk(strings, "selfies", 120, None, count_tokens=True)
    assert changed == []  # nothing standardised unless asked
    monkeypatch.setattr(data, "_n_workers", lambda n_items: 2)
    monkeypatch.setattr(data, "_POOL_CHUNK", 3)
    chunks = [strings[i:i + 10] for i in range(0, len(strings), 10)]
    streamed = list(check_molecules(chunks, "selfies", 120, count_tokens=True))
    assert len(streamed) > 2 * len(chunks)  # pieces of 3 rows, in flight at once
    assert [r for results, _, _ in streamed for r in results] == serial
    assert sum((c for _, c, _ in streamed), Counter()) == counts
    kept, _ = clean_molecules(strings, "selfies")
    assert counts == Counter(t for s in kept for t in split_selfies(s))


def test_skip_report_summary_without_skips() -> None:
    report = SkipReport(n_rows=3, n_kept=3)
    assert report.summary() == "read 3 rows: kept 3, skipped 0"


def test_load_molecules_reads_and_cleans(tmp_path: Path) -> None:
    path = tmp_path / "m.smi"
    path.write_text("CCO a\nC1CC b\nCCN c\n")
    kept, report = load_molecules(path, representation="selfies")
    assert kept == ["[C][C][O]", "[C][C][N]"]
    assert report.source == str(path) and report.examples == [(2, "C1CC", "invalid")]


# --- data locations ----------------------------------------------------------------------------


def test_default_data_path_and_resolve_data(tmp_path: Path) -> None:
    for name, file_name in DEFAULT_DATA.items():
        assert default_data_path(name) == REPO / "data" / file_name
        assert resolve_data(f"default:{name}") == default_data_path(name)
    with pytest.raises(DataError, match="no shipped dataset 'zinc'; choose one of moses_train"):
        default_data_path("zinc")
    assert resolve_data(str(tmp_path / "x.csv")) == tmp_path / "x.csv"


@pytest.mark.skipif(not _has_molsets(), reason="molsets is not installed")
def test_moses_path_finds_the_wheel_files() -> None:
    for split in ("train", "test", "test_scaffolds"):
        path = moses_path(split)
        assert path.name == f"{split}.csv.gz" and path.is_file()
    assert resolve_data("moses:test") == moses_path("test")
    with pytest.raises(DataError, match="unknown MOSES split 'valid'"):
        moses_path("valid")


def test_moses_path_without_molsets_says_how_to_install(monkeypatch) -> None:
    def missing(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(DataError, match=r"pip install --no-deps molsets==0\.3\.1"):
        moses_path("train")


def test_shipped_files_match_provenance_and_load_cleanly() -> None:
    provenance = (REPO / "data" / "PROVENANCE.md").read_text()
    expected_rows = {"moses_train": 100_000, "moses_valid": 10_000, "moses_test": 10_000}
    strings = {}
    for name, n_rows in expected_rows.items():
        path = default_data_path(name)
        row = re.search(rf"`{path.name}` \| ([\d,]+) \|.*`([0-9a-f]{{64}})`", provenance)
        assert row is not None, f"{path.name} is not in PROVENANCE.md"
        assert int(row.group(1).replace(",", "")) == n_rows
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row.group(2)
        strings[name] = read_strings(path)
        assert len(strings[name]) == n_rows
        # Cleaning all 120k rows takes tens of seconds on 2 cores; the head is a random sample.
        kept, report = clean_molecules(strings[name][:500], source=name)
        assert report.n_skipped == 0 and len(kept) == 500
    assert not set(strings["moses_train"]) & set(strings["moses_valid"])


# --- batches -----------------------------------------------------------------------------------

PAD = 99


def _sequences(n: int = 1000, seed: int = 1) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(4, 30, size=int(k)).tolist() for k in rng.integers(3, 61, size=n)]


def test_every_index_appears_exactly_once_per_epoch() -> None:
    batches = SequenceBatches(_sequences(), batch_size=32, pad_id=PAD, bucket_size_in_batches=10)
    plan = batches.batch_indices(0)
    assert len(plan) == len(batches) == math.ceil(1000 / 32)
    assert sorted(i for batch in plan for i in batch) == list(range(1000))
    assert sorted(len(batch) for batch in plan)[0] == 1000 % 32  # one partial batch


def test_bucketed_batches_are_length_homogeneous() -> None:
    sequences = _sequences()
    lengths = np.array([len(s) for s in sequences])
    batches = SequenceBatches(sequences, batch_size=32, pad_id=PAD, bucket_size_in_batches=10)
    spread = np.mean([np.ptp(lengths[b]) for b in batches.batch_indices(0)])
    random_plan = np.random.default_rng(0).permutation(1000)
    random_spread = np.mean([np.ptp(lengths[random_plan[i : i + 32]]) for i in range(0, 1000, 32)])
    assert random_spread > 45  # lengths are uniform on 3..60
    assert spread < 0.2 * random_spread


def test_batches_are_padded_with_pad_id_and_carry_lengths() -> None:
    sequences = _sequences(200)
    batches = SequenceBatches(sequences, batch_size=16, pad_id=PAD, bucket_size_in_batches=4)
    n_seen = 0
    for (tokens, lengths), plan in zip(batches, batches.batch_indices(0)):
        assert tokens.dtype == torch.int64 and lengths.dtype == torch.int64
        assert tokens.shape == (len(plan), max(len(sequences[i]) for i in plan))
        for row, index in enumerate(plan):
            n = len(sequences[index])
            assert lengths[row].item() == n
            assert tokens[row, :n].tolist() == sequences[index]
            assert (tokens[row, n:] == PAD).all()
        n_seen += len(plan)
    assert n_seen == 200


def test_plan_is_deterministic_per_seed_and_epoch() -> None:
    sequences = _sequences(300)
    a = SequenceBatches(sequences, batch_size=16, pad_id=PAD, seed=7)
    b = SequenceBatches(sequences, batch_size=16, pad_id=PAD, seed=7)
    assert a.batch_indices(3) == b.batch_indices(3)
    assert a.batch_indices(3) != a.batch_indices(4)
    assert a.batch_indices(3) != SequenceBatches(sequences, 16, PAD, seed=8).batch_indices(3)
    a.set_epoch(4)
    first_tokens, _ = next(iter(a))
    assert first_tokens.shape[0] == len(a.batch_indices(4)[0])
    assert [len(t) for t, _ in a] == [len(batch) for batch in a.batch_indices(4)]


def test_unshuffled_batches_keep_input_order_and_accept_arrays() -> None:
    sequences = [np.arange(1, k + 2) for k in (5, 1, 3, 8, 2)]
    batches = SequenceBatches(sequences, batch_size=2, pad_id=0, shuffle=False)
    assert batches.batch_indices(0) == batches.batch_indices(5) == [[0, 1], [2, 3], [4]]
    tokens, lengths = next(iter(batches))
    assert tokens.tolist() == [[1, 2, 3, 4, 5, 6], [1, 2, 0, 0, 0, 0]]
    assert lengths.tolist() == [6, 2]


def test_drop_last_keeps_only_full_batches() -> None:
    batches = SequenceBatches(_sequences(100), batch_size=16, pad_id=PAD, drop_last=True)
    plan = batches.batch_indices(0)
    assert len(plan) == len(batches) == 6
    assert all(len(batch) == 16 for batch in plan)
    assert len({i for batch in plan for i in batch}) == 96


@pytest.mark.parametrize("shuffle", [True, False])
def test_two_ranks_split_each_global_batch(shuffle: bool) -> None:
    """Under DDP batch_size is the global batch: the ranks' halves of step k together are
    exactly the single process's batch k."""
    sequences = _sequences(330)  # 20 batches of 16 and one of 10
    single = SequenceBatches(sequences, 16, PAD, shuffle=shuffle)
    ranks = [
        SequenceBatches(sequences, 16, PAD, shuffle=shuffle, rank=r, world_size=2) for r in (0, 1)
    ]
    plans = [r.batch_indices(2) for r in ranks]
    assert len(plans[0]) == len(plans[1]) == len(ranks[0]) == len(single) == 21
    for whole, half0, half1 in zip(single.batch_indices(2), *plans):
        assert not set(half0) & set(half1)
        assert sorted(half0 + half1) == sorted(whole)
        assert abs(len(half0) - len(half1)) <= 1
    shares = [[share for *_, share in r.with_indices(shares=True)] for r in ranks]
    assert all(a + b == pytest.approx(1.0) for a, b in zip(*shares))


def test_batches_too_small_for_every_rank_are_dropped() -> None:
    sequences = _sequences(5 * 16 + 2)  # 5 full batches and a last one of 2 rows
    three = [SequenceBatches(sequences, 16, PAD, rank=r, world_size=3) for r in range(3)]
    assert [len(t) for t in three] == [len(t.batch_indices(0)) for t in three] == [5, 5, 5]
    two = [SequenceBatches(sequences, 16, PAD, rank=r, world_size=2) for r in range(2)]
    assert [len(t.batch_indices(0)) for t in two] == [6, 6]  # 2 rows: one for each rank
    dropped = [
        SequenceBatches(sequences, 16, PAD, drop_last=True, rank=r, world_size=2) for r in (0, 1)
    ]
    assert [len(d.batch_indices(0)) for d in dropped] == [5, 5]


def test_sequence_batches_rejects_bad_arguments() -> None:
    with pytest.raises(DataError, match="sequence 1 is empty"):
        SequenceBatches([[1, 2], [], [3]], batch_size=2, pad_id=0)
    with pytest.raises(ValueError, match="rank 2 must be in 0..world_size-1"):
        SequenceBatches([[1, 2]], batch_size=2, pad_id=0, rank=2, world_size=2)
    assert SequenceBatches([], batch_size=4, pad_id=0).batch_indices(0) == []
