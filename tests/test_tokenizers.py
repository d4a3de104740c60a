"""Tests of seqvae.tokenizers: splitting, encoding, decoding, building, saving and loading."""

from __future__ import annotations

import importlib.metadata
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from seqvae.errors import TokenizerError
from seqvae.tokenizers import (
    BOS,
    EOS,
    PAD,
    SELFIES_PATTERN,
    SMILES_PATTERN,
    TOKENIZERS,
    UNK,
    SelfiesTokenizer,
    SmilesTokenizer,
    load_tokenizer,
    split_selfies,
    split_smiles,
)

SMILES_CORPUS = ["Clc1ccccc1Br", "CC(=O)O", "C/C=C\\C", "c1cc[nH]c1", "[Na+].[Cl-]", "C%12CC%12"]
SELFIES_CORPUS = ["[C][C][=Branch1][C][=O][O]", "[C][O]", "[Na+1].[Cl-1]"]
N_SAMPLE = 2000


@pytest.fixture(scope="module")
def smiles_tokenizer() -> SmilesTokenizer:
    return SmilesTokenizer.build(SMILES_CORPUS)


@pytest.fixture(scope="module")
def selfies_tokenizer() -> SelfiesTokenizer:
    return SelfiesTokenizer.build(SELFIES_CORPUS)


@pytest.fixture(scope="module")
def moses_sample() -> list[str]:
    """2,000 molecules of the MOSES test split, a fixed random sample."""
    pd = pytest.importorskip("pandas")
    try:
        path = importlib.metadata.distribution("molsets").locate_file(
            "moses/dataset/data/test.csv.gz"
        )
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("molsets is not installed, so the MOSES test split is not available")
    return pd.read_csv(path)["SMILES"].sample(N_SAMPLE, random_state=0).tolist()


# --- splitting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("smiles", "tokens"),
    [
        ("Clc1ccccc1Br", ["Cl", "c", "1", "c", "c", "c", "c", "c", "1", "Br"]),
        ("[C@@H](N)(O)", ["[C@@H]", "(", "N", ")", "(", "O", ")"]),
        ("C%12CC%12", ["C", "%12", "C", "C", "%12"]),
        ("C%(123)C", ["C", "%(123)", "C"]),
        ("C/C=C\\C", ["C", "/", "C", "=", "C", "\\", "C"]),
        ("c1cc[nH]c1", ["c", "1", "c", "c", "[nH]", "c", "1"]),
        ("[Na+].[Cl-]", ["[Na+]", ".", "[Cl-]"]),
        ("[Sc]Sc1ccccc1", ["[Sc]", "S", "c", "1", "c", "c", "c", "c", "c", "1"]),
        ("CC#N.*", ["C", "C", "#", "N", ".", "*"]),
        ("[13CH3:1]Cl", ["[13CH3:1]", "Cl"]),
        ("C$C", ["C", "$", "C"]),
    ],
)
def test_split_smiles_handpicked(smiles: str, tokens: list[str]) -> None:
    assert split_smiles(smiles) == tokens


@pytest.mark.parametrize("text", ["C x\né", "[C", "C]]", "[]", "%1C", "Cl[", "C\tC"])
def test_split_smiles_keeps_every_character(text: str) -> None:
    assert "".join(split_smiles(text)) == text


def test_split_selfies_one_token_per_symbol() -> None:
    tokens = ["[C]", "[=Branch1]", "[C]", "[=O]", ".", "[Na+1]"]
    assert split_selfies("".join(tokens)) == tokens
    assert "".join(split_selfies("junk[C]x")) == "junk[C]x"


def test_python_and_hugging_face_split_alike(
    smiles_tokenizer: SmilesTokenizer, selfies_tokenizer: SelfiesTokenizer, moses_sample: list[str]
) -> None:
    odd = ["C x\né", "[C", "[]", "%1C", "C%(123)C", "[C@@H]Br\\Cl/"]
    for text in moses_sample + odd:
        assert smiles_tokenizer.tokenize(text) == split_smiles(text)
    for text in SELFIES_CORPUS + ["junk[C]x", "[C[O]"]:
        assert selfies_tokenizer.tokenize(text) == split_selfies(text)


# --- encoding and decoding -------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
def test_special_ids_are_0_to_3(kind: str) -> None:
    tokenizer = TOKENIZERS[kind].build(SMILES_CORPUS if kind == "smiles" else SELFIES_CORPUS)
    assert [tokenizer.id_to_token(i) for i in range(4)] == [PAD, BOS, EOS, UNK]
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)
    assert tokenizer.kind == kind


def test_encode_adds_bos_and_eos(smiles_tokenizer: SmilesTokenizer) -> None:
    ids = smiles_tokenizer.encode("CC(=O)O")
    assert ids[0] == smiles_tokenizer.bos_id and ids[-1] == smiles_tokenizer.eos_id
    vocab = smiles_tokenizer.vocab
    assert ids[1:-1] == [vocab[t] for t in ["C", "C", "(", "=", "O", ")", "O"]]
    assert smiles_tokenizer.encode("CC(=O)O", add_special=False) == ids[1:-1]
    assert smiles_tokenizer.encode("") == [smiles_tokenizer.bos_id, smiles_tokenizer.eos_id]


def test_decode_stops_at_eos_and_drops_pad_and_bos(smiles_tokenizer: SmilesTokenizer) -> None:
    c, o = smiles_tokenizer.vocab["C"], smiles_tokenizer.vocab["O"]
    assert smiles_tokenizer.decode([1, c, 0, o, 2, c, c, 0, 0]) == "CO"
    assert smiles_tokenizer.decode([c, o]) == "CO"
    assert smiles_tokenizer.decode([1, c, 2, o], skip_special=False) == "<bos>C<eos>O"
    assert smiles_tokenizer.decode([1, c, 3, 2]) == "C<unk>"


def test_decode_accepts_arrays_and_tensors(smiles_tokenizer: SmilesTokenizer) -> None:
    torch = pytest.importorskip("torch")
    texts = ["Clc1ccccc1Br", "CC(=O)O", "[Na+].[Cl-]"]
    rows = smiles_tokenizer.encode_batch(texts)
    width = max(map(len, rows))
    padded = [row + [smiles_tokenizer.pad_id] * (width - len(row)) for row in rows]
    assert smiles_tokenizer.decode_batch(torch.tensor(padded)) == texts
    assert smiles_tokenizer.decode_batch(np.array(padded)) == texts
    assert smiles_tokenizer.decode_batch(padded) == texts
    assert smiles_tokenizer.decode(torch.tensor(padded[0])) == texts[0]
    assert smiles_tokenizer.decode(np.array(padded[1])) == texts[1]


def test_decode_rejects_bad_ids(smiles_tokenizer: SmilesTokenizer) -> None:
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        smiles_tokenizer.decode([1, 999, 2])
    with pytest.raises(TokenizerError, match="decode_batch"):
        smiles_tokenizer.decode([[1, 2]])


def test_unknown_tokens_strict_and_lenient(smiles_tokenizer: SmilesTokenizer) -> None:
    text = "CC[Se]CI"
    assert smiles_tokenizer.unknown_tokens(text) == ["[Se]", "I"]
    with pytest.raises(TokenizerError) as error:
        smiles_tokenizer.encode(text, strict=True)
    assert "'[Se]'" in str(error.value) and "'I'" in str(error.value) and text in str(error.value)
    ids = smiles_tokenizer.encode(text)
    assert ids[3] == smiles_tokenizer.unk_id and ids[5] == smiles_tokenizer.unk_id
    assert ids.count(smiles_tokenizer.unk_id) == 2
    assert smiles_tokenizer.decode(ids) == "CC<unk>C<unk>"
    with pytest.raises(TokenizerError, match=r"\[Se\]"):
        smiles_tokenizer.encode_batch(["CCO", text], strict=True)
    assert smiles_tokenizer.encode_batch(["CCO", text])[1] == ids
    assert smiles_tokenizer.encode("Clc1ccccc1Br", strict=True)


def test_selfies_conversions(selfies_tokenizer: SelfiesTokenizer) -> None:
    assert selfies_tokenizer.to_model_string("CC(=O)O") == "[C][C][=Branch1][C][=O][O]"
    assert selfies_tokenizer.from_model_string("[C][C][=Branch1][C][=O][O]") == "CC(=O)O"
    assert selfies_tokenizer.from_model_string("[C][nonsense]") == ""
    with pytest.raises(TokenizerError, match="cannot convert SMILES 'C1CC' to SELFIES"):
        selfies_tokenizer.to_model_string("C1CC")
    smiles_tokenizer = SmilesTokenizer.build(SMILES_CORPUS)
    assert smiles_tokenizer.to_model_string("C1CC") == "C1CC"
    assert smiles_tokenizer.from_model_string("C1CC") == "C1CC"


# --- round trips over real molecules ---------------------------------------------------


def test_smiles_round_trip_on_moses(moses_sample: list[str]) -> None:
    tokenizer = SmilesTokenizer.build(moses_sample)
    ids = tokenizer.encode_batch(moses_sample, strict=True)
    assert tokenizer.decode_batch(ids) == moses_sample
    assert [tokenizer.encode(s) for s in moses_sample[:50]] == ids[:50]
    assert all(tokenizer.decode(row) == s for row, s in zip(ids[:50], moses_sample))


def test_selfies_round_trip_on_moses(moses_sample: list[str]) -> None:
    Chem = pytest.importorskip("rdkit.Chem")
    converter = SelfiesTokenizer.build(["[C]"])  # conversion does not depend on the vocabulary
    selfies_strings = [converter.to_model_string(s) for s in moses_sample]
    tokenizer = SelfiesTokenizer.build(selfies_strings)
    ids = tokenizer.encode_batch(selfies_strings, strict=True)
    decoded = tokenizer.decode_batch(ids)
    assert decoded == selfies_strings
    # The whole MOSES test split comes back as the same molecule (benchmarks/results).
    different = [
        s
        for s, f in zip(moses_sample, decoded)
        if Chem.CanonSmiles(tokenizer.from_model_string(f)) != Chem.CanonSmiles(s)
    ]
    assert different == []


# --- building --------------------------------------------------------------------------


def test_build_is_deterministic_and_ordered() -> None:
    first = SmilesTokenizer.build(SMILES_CORPUS)
    second = SmilesTokenizer.build(list(reversed(SMILES_CORPUS)))
    assert first.vocab == second.vocab
    assert list(first.vocab.values()) == list(range(first.vocab_size))
    # c is the most frequent token; C, 1 and 2 tie below it and come in string order.
    tokenizer = SmilesTokenizer.build(["cccC1", "c2C1c2"])
    assert list(tokenizer.vocab)[4:] == ["c", "1", "2", "C"]


def test_build_min_frequency_and_max_vocab() -> None:
    tokenizer = SmilesTokenizer.build(["CCO", "CCN", "CS"], min_frequency=2)
    assert list(tokenizer.vocab) == [PAD, BOS, EOS, UNK, "C"]
    tokenizer = SmilesTokenizer.build(["CCCOON"], max_vocab=6)
    assert list(tokenizer.vocab) == [PAD, BOS, EOS, UNK, "C", "O"]
    with pytest.raises(TokenizerError, match="max_vocab"):
        SmilesTokenizer.build(["CCO"], max_vocab=4)
    with pytest.raises(TokenizerError, match="max_vocab=3 leaves no room"):
        SmilesTokenizer.from_counts({"C": 5}, max_vocab=3)
    with pytest.raises(TokenizerError, match="corpus"):
        SmilesTokenizer.build([])


# --- saving and loading ----------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
@pytest.mark.parametrize("form", ["file", "directory"])
def test_save_and_load(tmp_path: Path, kind: str, form: str) -> None:
    corpus = SMILES_CORPUS if kind == "smiles" else SELFIES_CORPUS
    tokenizer = TOKENIZERS[kind].build(corpus)
    target = tmp_path / "tok.json" if form == "file" else tmp_path / "ckpt"
    tokenizer.save(target)
    written = target if form == "file" else target / "tokenizer.json"
    assert list(tmp_path.rglob("*.json")) == [written]

    loaded = load_tokenizer(target)
    assert type(loaded) is type(tokenizer) and loaded.kind == kind
    assert loaded.vocab == tokenizer.vocab
    assert loaded.encode_batch(corpus) == tokenizer.encode_batch(corpus)
    assert loaded.decode_batch(loaded.encode_batch(corpus)) == corpus

    plain = Tokenizer.from_file(str(written))
    assert plain.encode(corpus[0]).ids == tokenizer.encode(corpus[0])
    assert plain.decode(plain.encode(corpus[0]).ids) == corpus[0]


def test_saved_file_records_the_pattern(tmp_path: Path) -> None:
    SmilesTokenizer.build(SMILES_CORPUS).save(tmp_path)
    SelfiesTokenizer.build(SELFIES_CORPUS).save(tmp_path / "selfies.json")
    smiles_config = json.loads((tmp_path / "tokenizer.json").read_text())
    selfies_config = json.loads((tmp_path / "selfies.json").read_text())
    assert smiles_config["pre_tokenizer"]["pattern"]["Regex"] == SMILES_PATTERN
    assert selfies_config["pre_tokenizer"]["pattern"]["Regex"] == SELFIES_PATTERN


def test_load_kind_override(tmp_path: Path) -> None:
    SmilesTokenizer.build(SMILES_CORPUS).save(tmp_path)
    assert isinstance(load_tokenizer(tmp_path, kind="selfies"), SelfiesTokenizer)
    with pytest.raises(TokenizerError, match="unknown tokenizer kind 'morse'"):
        load_tokenizer(tmp_path, kind="morse")


def test_load_missing_path(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="no tokenizer file at"):
        load_tokenizer(tmp_path / "nowhere.json")
    with pytest.raises(TokenizerError, match="no tokenizer file at .*tokenizer.json"):
        load_tokenizer(tmp_path)


def test_load_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_bytes(b"\xff\xfe\x00garbage{{")
    with pytest.raises(TokenizerError, match="is not valid JSON"):
        load_tokenizer(path)
    path.write_text('{"model": ')
    with pytest.raises(TokenizerError, match="is not valid JSON"):
        load_tokenizer(path)


def test_load_json_that_is_not_a_tokenizer(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"hidden_size": 256, "latent_size": 64}))
    with pytest.raises(TokenizerError, match="not a Hugging Face tokenizer"):
        load_tokenizer(path)
    path.write_text(json.dumps({"model": {"type": "Nonsense"}}))
    with pytest.raises(TokenizerError, match="not a valid Hugging Face tokenizer"):
        load_tokenizer(path)


def test_load_pickle(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(pickle.dumps({"C": 4}))
    with pytest.raises(TokenizerError, match="looks like a pickle file"):
        load_tokenizer(path)


def test_load_foreign_tokenizer_needs_kind(tmp_path: Path) -> None:
    foreign = Tokenizer(models.WordLevel({PAD: 0, BOS: 1, EOS: 2, UNK: 3, "a": 4}, unk_token=UNK))
    foreign.pre_tokenizer = pre_tokenizers.Whitespace()
    foreign.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerError, match="cannot tell which kind.*pass kind="):
        load_tokenizer(tmp_path)
    assert load_tokenizer(tmp_path, kind="smiles").vocab_size == 5

    no_specials = Tokenizer(models.WordLevel({"a": 0, UNK: 1}, unk_token=UNK))
    no_specials.save(str(tmp_path / "bad.json"))
    with pytest.raises(TokenizerError, match="'<pad>' at id 0"):
        load_tokenizer(tmp_path / "bad.json", kind="smiles")


def test_min_model_tokens_is_a_lower_bound_that_needs_no_parsing() -> None:
    from seqvae.chem import smiles_to_selfies
    from seqvae.data import read_strings, resolve_data
    from seqvae.tokenizers import min_model_tokens, split_selfies, split_smiles

    molecules = read_strings(resolve_data("default:moses_test"))[:500]
    molecules += ["[H]C([H])([H])[H]", "C1CC2.C2CC1", "[13CH2+]C", "[C@@H](F)(Cl)Br", "Br.Cl"]
    for smiles in molecules:
        assert min_model_tokens(smiles, "smiles") == len(split_smiles(smiles))
        selfies = smiles_to_selfies(smiles)
        if selfies is None:  # not convertible: skipped for that reason anyway
            continue
        assert min_model_tokens(smiles, "selfies") <= len(split_selfies(selfies))
    tight = [min_model_tokens(s, "selfies") / len(split_selfies(smiles_to_selfies(s)))
             for s in molecules[:500]]
    assert sum(tight) / len(tight) > 0.6  # a useful bound: most SELFIES symbols are atoms
