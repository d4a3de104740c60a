"""Sentences: word and BPE tokenizers, the Brown splits, bad lines skipped and counted, the
text metrics (BLEU and self-BLEU equal to NLTK's, MI, active units, importance-weighted NLL),
the language-model baseline, the recipes against collapse, and a tiny text VAE really trained
on Brown and evaluated through the CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqvae.config import ModelConfig, load_config
from seqvae.data import drop_long, load_sentences, read_strings, resolve_data
from seqvae.errors import ConfigError
from seqvae.losses import free_bits_kl
from seqvae.metrics import text as T
from seqvae.model import SequenceVAE
from seqvae.tokenizers import BpeTokenizer, WordTokenizer, load_tokenizer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def brown() -> list[str]:
    with gzip.open(ROOT / "data" / "brown_train.txt.gz", "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


# -- tokenizers ----------------------------------------------------------------------------------

def test_word_tokenizer_caps_lowercases_and_reads_unknown_words_as_unk(brown, tmp_path):
    tok = WordTokenizer.build(brown[:3000], max_vocab=500, lowercase=True, split="whitespace")
    assert tok.vocab_size == 500 and tok.lowercase and tok.split == "whitespace"
    assert tok.id_to_token(4) == "the"  # the most frequent word right after the four specials
    ids = tok.encode("The jury said zyzzyva .")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert ids[4] == tok.unk_id and tok.unk_id not in ids[1:4]
    assert tok.decode(ids) == "the jury said <unk> ."
    assert tok.unknown_tokens("The jury said zyzzyva .") == ["zyzzyva"]
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert isinstance(again, WordTokenizer) and again.lowercase and again.split == "whitespace"
    assert again.encode("The jury said zyzzyva .") == ids
    by_count = WordTokenizer.build(brown[:3000], min_frequency=5, split="whitespace")
    words = [w for s in brown[:3000] for w in s.split()]
    assert by_count.vocab_size == 4 + sum(1 for n in np.unique(words, return_counts=True)[1] if n >= 5)
    cased = WordTokenizer.build(brown[:3000], split="whitespace")
    assert not cased.lowercase and cased.decode(cased.encode("The jury")) == "The jury"


def test_bpe_tokenizer_round_trips_text_and_is_detected_on_load(brown, tmp_path):
    tok = BpeTokenizer.build(brown[:3000], max_vocab=1000)
    assert tok.vocab_size == 1000
    # characters the 3,000 training sentences lack fall back to byte tokens: every round trip
    # is exact, and no <unk> is left
    for sentence in brown[3000:3100]:
        ids = tok.encode(sentence)
        assert tok.decode(ids) == sentence and tok.unk_id not in ids
    tok.save(tmp_path / "bpe.json")
    assert isinstance(load_tokenizer(tmp_path / "bpe.json"), BpeTokenizer)


def test_text_tokenizers_refuse_useless_settings():
    from seqvae.errors import TokenizerError
    with pytest.raises(TokenizerError, match="special tokens"):
        WordTokenizer.build(["a b c"], max_vocab=4)
    with pytest.raises(TokenizerError, match="empty corpus"):
        BpeTokenizer.build(["", "  "])
    with pytest.raises(ConfigError, match="max_vocab"):
        load_config(None, ['data.representation="word"', "data.max_vocab=3"])


# -- data ------------------------------------------------------------------------------------------

def test_brown_splits_ship_disjoint_and_resolve():
    splits = {name: read_strings(resolve_data(f"default:brown_{name}"))
              for name in ("train", "valid", "test")}
    assert [len(v) for v in splits.values()] == [50718, 2850, 2850]
    assert not set(splits["train"]) & set(splits["test"])
    assert not set(splits["valid"]) & set(splits["test"])
    # the genre files: the same sentences in the same splits, each with a genre, as provenanced
    provenance = (Path(__file__).resolve().parent.parent / "data" / "PROVENANCE.md").read_text()
    genres = set()
    for name, sentences in splits.items():
        path = resolve_data(f"default:brown_genres_{name}")
        frame = pd.read_csv(path, keep_default_na=False)
        assert list(frame.columns) == ["text", "genre", "category", "document"]
        assert frame["text"].tolist() == sentences and (frame["genre"] != "").all()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"`{path.name}` |" in provenance and digest in provenance
        genres |= set(frame["genre"])
    assert len(genres) == 15


def test_bad_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"A good sentence .\n\n   \n. . ! ''\nbad \xff\xfe bytes here\n"
                     + b"word " * 5000 + b"\nAnother  good\tone .\n")
    kept, report = load_sentences(path, max_chars=1000)
    assert kept == ["A good sentence .", "Another good one ."]
    assert report.reasons == {"empty": 2, "no_words": 1, "not_utf8": 1, "too_long": 1}
    assert report.n_rows == 7 and report.n_skipped == 5
    csv = tmp_path / "s.csv"
    csv.write_text("id,text\n1,Hello there .\n2,\n")
    kept, report = load_sentences(csv)
    assert kept == ["Hello there ."] and report.reasons == {"empty": 1}
    strings, ids = drop_long(["a", "b c d"], [[1, 5, 2], [1, 5, 6, 7, 2]], 2, report)
    assert strings == ["a"] and report.reasons["too_long"] == 1 and report.n_kept == 0


# -- metrics ---------------------------------------------------------------------------------------

SENTS = [s.split() for s in [
    "the cat sat on the mat .", "the dog sat on the log .", "a cat and a dog .",
    "the cat sat on the mat .", "it rained .", "where is the cat ?", "the the the",
    "on the mat the cat sat", "dogs and cats and mats", "x"]]


def test_corpus_bleu_and_self_bleu_equal_nltk():
    bleu = pytest.importorskip("nltk.translate.bleu_score")
    hyps = SENTS[:6]
    refs = [[SENTS[(i + 1) % 6], SENTS[(i + 3) % 6]] for i in range(6)]
    assert T.corpus_bleu(hyps, refs) == pytest.approx(bleu.corpus_bleu(refs, hyps), abs=1e-12)
    assert T.corpus_bleu([SENTS[0]], [[SENTS[0]]]) == pytest.approx(1.0)
    smooth = bleu.SmoothingFunction().method1  # Texygen's self-BLEU
    expected = np.mean([bleu.sentence_bleu(SENTS[:i] + SENTS[i + 1:], s, smoothing_function=smooth)
                        for i, s in enumerate(SENTS)])
    assert T.self_bleu(SENTS) == pytest.approx(expected, abs=1e-12)


def test_distinct_n():
    assert T.distinct_n([["a", "b", "a"], ["a", "b"]], 1) == pytest.approx(2 / 5)
    assert T.distinct_n([["a", "b", "a"], ["a", "b"]], 2) == pytest.approx(2 / 3)


def test_mutual_information_and_active_units():
    g = torch.Generator().manual_seed(0)
    n, d = 2000, 4
    same = T.mutual_information(torch.zeros(n, d), torch.zeros(n, d), g)
    assert abs(same) < 0.05  # every posterior is the prior: no information
    apart = torch.randn(n, d, generator=g) * 100  # far-apart, narrow posteriors: log N
    assert T.mutual_information(apart, torch.full((n, d), -4.0), g) == pytest.approx(math.log(n), abs=0.1)
    mu = torch.cat([torch.randn(n, 2, generator=g), torch.full((n, 2), 0.3)], 1)
    assert T.active_units(mu) == 2


def test_kl_target_floors_the_total():
    kl = torch.tensor([[0.5, 0.1], [0.3, 0.1]], requires_grad=True)
    assert float(free_bits_kl(kl, 0.0, target=2.0).detach()) == 2.0
    assert float(free_bits_kl(kl, 0.0, target=0.5).detach()) == pytest.approx(0.5)
    free_bits_kl(kl, 0.0, target=2.0).backward()
    assert float(kl.grad.abs().sum()) == 0.0  # below the target: no push toward zero


def _tiny(use_latent: bool = True, **kw) -> SequenceVAE:
    cfg = ModelConfig(vocab_size=30, embedding_dim=8, encoder="lstm", encoder_hidden=8,
                      latent_dim=4, decoder="lstm", decoder_hidden=16, use_latent=use_latent,
                      max_length=12, **kw)
    torch.manual_seed(0)
    return SequenceVAE(cfg).eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    body = torch.randint(4, 30, (6, 7), generator=g)
    tokens = torch.cat([torch.ones(6, 1, dtype=torch.long), body, torch.full((6, 1), 2)], 1)
    return tokens, torch.full((6,), 9)


def test_language_model_has_no_encoder_and_ignores_z():
    lm = _tiny(use_latent=False)
    assert lm.encoder is None and lm.posterior is None
    tokens, lengths = _batch()
    out = lm(tokens, lengths)
    assert float(out.kl) == 0.0 and float(out.mu.abs().sum()) == 0.0
    a = lm.generate(torch.randn(3, 4), greedy=True).tokens
    b = lm.generate(torch.randn(3, 4) * 5, greedy=True).tokens
    assert torch.equal(a, b)
    iw = T.importance_weighted(lm, tokens, lengths, k=10)
    assert torch.allclose(iw["nll"], out.recon_per_sequence)


def test_importance_weighted_nll_is_a_tighter_bound_than_the_elbo():
    vae = _tiny()
    tokens, lengths = _batch()
    g = torch.Generator().manual_seed(0)
    one = torch.stack([T.importance_weighted(vae, tokens, lengths, 1, g)["nll"]
                       for _ in range(400)]).mean(0)
    many = T.importance_weighted(vae, tokens, lengths, 200, g, rows=64)
    neg_elbo = many["recon"] + many["kl"]
    # k = 1 is the ELBO in expectation; more samples lower the bound, never below... by much
    assert torch.allclose(one, neg_elbo, rtol=0.02)
    assert bool((many["nll"] <= neg_elbo + 1e-4).all())
    assert bool((many["nll"] > neg_elbo - 10).all())


# -- a real text VAE, trained on Brown -------------------------------------------------------------

@pytest.fixture(scope="module")
def text_run(tmp_path_factory, brown):
    from seqvae.trainer import train
    folder = tmp_path_factory.mktemp("text")
    (folder / "train.txt").write_text("\n".join(brown[:1500]) + "\n\n. . .\n")
    (folder / "valid.txt").write_text("\n".join(brown[1500:1600]) + "\n")
    out = folder / "run"
    cfg = load_config(None, [
        f'train.out_dir="{out}"', f'data.train="{folder / "train.txt"}"',
        f'data.valid="{folder / "valid.txt"}"', 'data.representation="word"',
        "data.max_vocab=800", "data.lowercase=true", "data.max_length=30",
        'data.text_split="whitespace"', 'model.encoder="lstm"', 'model.decoder="lstm"', "model.embedding_dim=32",
        "model.encoder_hidden=32", "model.latent_dim=8", "model.decoder_hidden=64",
        "train.batch_size=32", "train.max_steps=60", "train.max_minutes=0",
        "train.eval_every=30", "train.checkpoint_every=30", "train.eval_samples=20", "train.log_every=10",
        "train.eval_max_molecules=100", "train.kl_weight=1.0", "train.kl_warmup_steps=20", "train.kl_warmup_fraction=0",
        "train.pretrain_steps=20", "train.word_dropout=0.2", "train.kl_target=2.0",
        "train.lr=3e-3"])
    logs: list[str] = []
    summary = train(cfg, progress=False, log=logs.append)
    return out, summary, logs, folder


def test_text_vae_trains_with_every_recipe(text_run):
    out, summary, logs, folder = text_run
    assert summary["step"] == 60
    lines = (folder / "train.txt").read_text().splitlines()
    no_words = sum(1 for line in lines if line.strip() and not any(c.isalnum() for c in line))
    assert no_words >= 1 and summary["data"]["train"]["reasons"]["no_words"] == no_words
    assert summary["data"]["train"]["unk_tokens"] > 0
    assert any("pre-training done" in line for line in logs)
    import csv
    rows = [r for r in csv.DictReader(open(out / "log.csv")) if r["kl_weight"]]
    weights = {int(r["step"]): float(r["kl_weight"]) for r in rows}
    assert weights[10] == 0.0 and weights[20] == 0.0 and weights[30] == pytest.approx(0.5)
    assert weights[60] == 1.0
    assert math.isfinite(summary["metrics"]["valid_neg_elbo"])


def test_text_model_api_and_cli_evaluate(text_run, tmp_path):
    import seqvae
    from seqvae.cli import main
    out, _, _, folder = text_run
    model = seqvae.load(out)
    assert not model.molecular
    assert model.check(["The jury said .", "? ! .", ""])[0] is None
    assert model.check(["? ! ."])[0].startswith("no words")
    mu, _ = model.encode(["The jury said zyzzyva ."])  # an unknown word is <unk>, not an error
    assert mu.shape == (1, 8)
    path = model.interpolate("The jury said it .", "He went home .", steps=5)
    assert len(path) == 5 and list(path.columns) == ["t", "text"]
    assert model.training_sentences() and len(model.training_sentences()) > 1000
    metrics = tmp_path / "m.json"
    code = main(["evaluate", str(out), "--data", str(folder / "valid.txt"), "--k", "5",
                 "--n-samples", "40", "-o", str(metrics), "--no-progress"])
    assert code == 0
    got = json.loads(metrics.read_text())["metrics"]
    assert got["k"] == 5 and got["n_samples"] == 40
    assert got["n_sentences"] + got["n_skipped"] == 100 and got["n_skipped"] > 0  # over 30 words
    assert got["PPL"] == pytest.approx(math.exp(got["NLL"] * got["n_sentences"] / got["words_plus_eos"]))
    assert got["NLL"] <= got["neg_ELBO"] + 1e-6
    assert 0 <= got["active_units"] <= 8 and 0 <= got["novel"] <= 1
    assert 0 <= got["recon_BLEU"] <= 100 and 0 < got["distinct_1"] <= 1
    assert (tmp_path / "m_latent.png").stat().st_size > 10_000
    samples = (tmp_path / "m_samples.csv").read_text().splitlines()
    assert samples[0] == "text,NLL,novel" and len(samples) == 41


@pytest.mark.parametrize("decoder", ["lstm", "gru", "transformer"])
def test_end_of_pretraining_resets_every_decoder_parameter(decoder):
    from seqvae.trainer import Trainer, TrainState
    cfg = load_config(None, [f'model.decoder="{decoder}"', "model.decoder_hidden=16",
                             "model.n_heads=2", "model.feedforward_dim=16",
                             "train.pretrain_steps=5"])
    cfg.model.vocab_size = 20
    trainer = Trainer.__new__(Trainer)
    trainer.config, trainer.state, trainer.log = cfg, TrainState(step=5), lambda *_: None
    trainer.total_steps = 100
    trainer.model = SequenceVAE(cfg.model)
    trainer.optimizer = torch.optim.Adam(trainer.model.parameters())
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(3.0)  # stands for what pre-training learned
    before = {n: p.clone() for n, p in trainer.model.named_parameters()}
    trainer._end_pretraining()
    for name, p in trainer.model.named_parameters():
        changed = not torch.equal(p, before[name])
        assert changed == name.startswith("decoder."), name
    assert trainer.state.pretrain_done
    assert (trainer.state.pretrain_end_step, trainer.state.pretrain_end_progress) == (5, 0.05)


def test_text_model_scores_each_sentence(text_run):
    import seqvae
    out, _, _, folder = text_run
    model = seqvae.load(out)
    train_line = (folder / "train.txt").read_text().splitlines()[0]
    inputs = [train_line, "The jury said nothing new .", "? ! .", "", "The jury said zyzzyva ."]
    table = model.score(inputs, k=8)
    assert list(table["input"]) == inputs
    assert list(table["reason"].notna()) == [False, False, True, True, False]
    good = table[table["reason"].isna()]
    assert (good["iw_nll"] > 0).all() and (good["k"] == 8).all()
    assert np.allclose(good["neg_elbo"], good["recon"] + good["kl"])
    assert not table["novel"][0] and table["novel"][1]
    assert "QED" not in table.columns
    with pytest.raises(seqvae.DataError, match="text model"):
        model.score(inputs, standardize=True)


def test_a_text_model_fine_tunes(text_run, tmp_path):
    from seqvae.trainer import train
    out, _, _, folder = text_run
    cfg = load_config(None, [
        f'train.out_dir="{tmp_path / "tuned"}"', f'data.train="{folder / "valid.txt"}"',
        f'data.valid="{folder / "valid.txt"}"', 'data.representation="word"',
        "data.lowercase=true", "data.max_length=30", f'train.init="{out}"',
        "train.max_steps=3", "train.max_minutes=0", "train.eval_every=3",
        "train.checkpoint_every=3", "train.eval_samples=5", "train.eval_max_molecules=20",
        "train.kl_warmup_fraction=0"])
    summary = train(cfg, progress=False, log=lambda *a: None)
    assert summary["step"] == 3 and summary["init"]["path"].startswith(str(out))
    assert ((tmp_path / "tuned" / "checkpoint" / "tokenizer.json").read_text()
            == (out / "checkpoint" / "tokenizer.json").read_text())
