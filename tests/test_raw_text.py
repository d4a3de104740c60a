"""Raw text as people write it: the text normalizer (NFKC, control and format characters,
lower case, numbers as <num>), the raw-text word split that cuts punctuation and clitics from
words and puts them back when decoding, BPE's byte fallback, the pipeline kept in
tokenizer.json, the shipped raw corpora, and a normalizer that takes any Unicode string."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from seqvae.config import load_config
from seqvae.data import load_sentences, resolve_data
from seqvae.domains import domain_for
from seqvae.errors import ConfigError, TokenizerError
from seqvae.tokenizers import BpeTokenizer, WordTokenizer, load_tokenizer

RAW = ["Isn't it odd? He said: \"the house, the garden.\"", "They'd left (at last) -- in 1999!",
       "The café's menu cost 3.50 dollars; we didn't pay.", "It's 1,000 miles... isn't it?"]


@pytest.fixture(scope="module")
def enwiki() -> tuple[list[str], list[str]]:
    train, _ = load_sentences(resolve_data("default:enwiki_train"))
    test, _ = load_sentences(resolve_data("default:enwiki_test"))
    return train, test


@pytest.fixture(scope="module")
def raw_word() -> WordTokenizer:
    return WordTokenizer.build(RAW * 2)


@pytest.fixture(scope="module")
def raw_bpe() -> BpeTokenizer:
    return BpeTokenizer.build(RAW * 20, max_vocab=400)


def test_punctuation_and_clitics_are_cut_from_words_and_put_back(raw_word):
    tok = raw_word
    assert tok.split == "punctuation" and not tok.lowercase and not tok.numbers_as_token
    assert tok.tokenize("Isn't it odd?") == ["Isn", "'t", " it", " odd", "?"]
    pieces = tok.hf.encode("He said: \"the house, the garden.\"", add_special_tokens=False).tokens
    assert pieces == ["▁He", "▁said", ":", "▁\"", "the", "▁house", ",", "▁the", "▁garden", ".",
                      "\""]
    for sentence in RAW:  # every word known: decoding gives the sentence back as written
        ids = tok.encode(sentence)
        assert tok.unk_id not in ids and tok.decode(ids) == sentence
    # "house," and "house." share the word: the vocabulary holds it once, with the mark of a
    # preceding space, and each punctuation mark once
    assert "▁house" in tok.vocab and "house," not in tok.vocab and "," in tok.vocab


def test_text_metrics_count_the_pieces_of_raw_text_as_words(raw_word):
    assert raw_word.words("He said: \"the house,\"") == [
        "He", "said", ":", "\"", "the", "house", ",", "\""]
    assert raw_word.words("Isn't it?") == ["Isn", "'t", "it", "?"]
    tokenized = WordTokenizer.build(["he said : the house ,"], split="whitespace")
    assert tokenized.words("he said : the house ,") == "he said : the house ,".split()


def test_an_unknown_word_reads_as_unk_with_its_space(raw_word):
    ids = raw_word.encode("He said zyzzyva, isn't it?")
    assert ids.count(raw_word.unk_id) == 1
    assert raw_word.decode(ids) == "He said <unk>, isn't it?"
    assert raw_word.unknown_tokens("He said zyzzyva, isn't it?") == [" zyzzyva"]


def test_the_normalizer_folds_compatibility_forms_and_drops_control_characters():
    tok = WordTokenizer.build(["the fine office , the café ."])
    # NFKC: the ligature and full-width letters fold to plain ones; "e" + a combining acute
    # accent becomes the one character é
    assert tok.encode("the ﬁne ｏｆｆｉｃｅ") == tok.encode("the fine office")
    assert tok.encode("the cafe\u0301") == tok.encode("the café")
    # a control character is a space, a soft hyphen or zero-width space is nothing
    assert tok.encode("the\x07fi\u00adne office") == tok.encode("the fine office")
    assert tok.encode("the fi\u200bne") == tok.encode("the fine")
    assert tok.encode("  the \t fine\n ") == tok.encode("the fine")


def test_lower_case_and_numbers_as_one_token_are_options_kept_in_the_file(tmp_path):
    tok = WordTokenizer.build(RAW, lowercase=True, numbers_as_token=True)
    assert tok.lowercase and tok.numbers_as_token
    assert "▁<num>" in tok.vocab and not any(ch.isdigit() for ch in "".join(tok.vocab))
    assert tok.decode(tok.encode("It cost 12,345.67 dollars in 2024.")) == \
        "it cost <num> dollars in <num>."
    tok.save(tmp_path)
    stored = json.loads((tmp_path / "tokenizer.json").read_text())
    assert {"NFKC", "Lowercase", "Replace"} <= {
        step["type"] for step in stored["normalizer"]["normalizers"]}
    again = load_tokenizer(tmp_path)
    assert isinstance(again, WordTokenizer) and again.lowercase and again.numbers_as_token
    assert again.split == "punctuation"
    for sentence in RAW:
        assert again.encode(sentence) == tok.encode(sentence)
        assert again.decode(again.encode(sentence)) == tok.decode(tok.encode(sentence))


def test_bpe_falls_back_to_bytes_and_round_trips_any_text_exactly(tmp_path):
    tok = BpeTokenizer.build(RAW * 20, max_vocab=400)
    assert tok.vocab_size <= 400 and "<0xE6>" in tok.vocab
    for text in ["日本語のテキスト 😀", "Zebra-quux ~ {braces} ß", *RAW]:
        ids = tok.encode(text)
        assert tok.unk_id not in ids and tok.decode(ids) == text
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert isinstance(again, BpeTokenizer) and again.decode(again.encode("日本 ok")) == "日本 ok"
    with pytest.raises(TokenizerError, match="byte tokens"):
        BpeTokenizer.build(RAW, max_vocab=200)


def test_raw_text_split_cuts_unknown_words_on_shipped_wikipedia(enwiki):
    train, test = enwiki
    shares = {}
    for split in ("whitespace", "punctuation"):
        tok = WordTokenizer.build(train, max_vocab=10_000, split=split)
        ids = tok.encode_batch(test)
        shares[split] = sum(x.count(tok.unk_id) for x in ids) / sum(len(x) - 2 for x in ids)
        if split == "punctuation":  # known sentences come back as written, up to whitespace
            known = [(s, x) for s, x in zip(test, ids) if tok.unk_id not in x]
            assert known and all(tok.decode(x).split() == unicodedata.normalize(
                "NFKC", s).split() for s, x in known)
    assert shares["punctuation"] < 0.7 * shares["whitespace"]


def test_configs_choose_the_split_and_brown_keeps_its_whitespace_split():
    assert load_config(None, ['data.representation="word"']).data.text_split == "punctuation"
    with pytest.raises(ConfigError, match="text_split"):
        load_config(None, ['data.representation="word"', 'data.text_split="spaces"'])
    from importlib.resources import files
    for name in ("brown_lstm_vae.toml", "brown_lstm_lm.toml", "brown_transformer_vae.toml",
                 "brown_genre_vae.toml"):
        config = load_config(files("seqvae").joinpath("configs", name))
        assert config.data.text_split == "whitespace", name


def test_a_text_model_prepares_raw_text_with_the_configured_pipeline():
    config = load_config(None, ['data.representation="word"', 'data.train="default:enwiki_valid"',
                                'data.valid="default:enwiki_test"', "data.numbers_as_token=true"])
    logged: list[str] = []
    prepared = domain_for("word").prepare(config, log=logged.append)
    assert prepared.tokenizer.split == "punctuation" and prepared.tokenizer.numbers_as_token
    assert prepared.reports["train"]["unk_tokens"] == 0  # the vocabulary holds every word
    assert prepared.reports["valid"]["tokens"] > 15_000 and "<unk>" in logged[-1]


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# every code point, lone surrogates included (what errors="surrogateescape" reads)
ANY_TEXT = st.text(alphabet=st.characters(), max_size=200)


@FUZZ
@given(text=ANY_TEXT)
def test_text_tokenizers_take_any_unicode_string(raw_word, raw_bpe, text):
    for tok in (raw_word, raw_bpe):
        ids = tok.encode(text)
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        tok.decode(ids)
        assert len(tok.tokenize(text)) == len(ids) - 2


@FUZZ
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp"),
                                           blacklist_characters="<"), max_size=200))
def test_bpe_round_trips_every_string_its_normalizer_leaves_alone(raw_bpe, text):
    tok = raw_bpe
    if unicodedata.normalize("NFKC", text) == text and text.strip() == text:
        assert tok.decode(tok.encode(text)) == text

