"""Evaluation of sentence VAEs (and of the plain language model beside them).

``evaluate_text(model, sentences)`` measures, on held-out sentences:

- ``NLL``: the importance-weighted estimate of -log p(x) per sentence, in nats (Burda et al.
  2016): k codes z_j drawn from q(z|x), log p(x) ~ logsumexp_j [log p(x|z_j) + log p(z_j) -
  log q(z_j|x)] - log k. It is a stochastic upper bound on the true NLL that tightens as k
  grows; k (default 100) is reported beside it. For a language model (no z) it is the exact
  NLL. For a hierarchical model (model.latent_levels = 2) each code is drawn level by level,
  z1 ~ q(z1|x) then z2 ~ q(z2|x, z1), and log p(z) - log q(z|x) is log p(z1) + log p(z2|z1)
  - log q(z1|x) - log q(z2|x, z1).
- ``PPL``: exp(sum of NLL / sum of (words + 1)) over the data: words are the tokenizer's
  ``words`` (its tokens for a word-level tokenizer, punctuation cut from words on raw text;
  whitespace-separated words for BPE) and the 1 is the end-of-sentence token, as in the
  text-VAE literature. For a word-level tokenizer this is the per-token perplexity; for BPE
  it is still per word, so the two compare.
- ``recon`` and ``KL``: the two terms of the negative ELBO, E_q[-log p(x|z)] (the mean over
  the same k codes) and KL(q(z|x) || p(z)) (exact; for a hierarchical model z1's exact and
  z2's, KL(q(z2|x, z1) || p(z2|z1)), averaged over the k codes' z1, reported per level as
  ``KL_1`` and ``KL_2``); ``neg_ELBO`` = recon + KL >= NLL.
- ``active_units``: latent dimensions whose posterior mean varies across the data,
  Cov_x(E_q[z_d]) > 0.01 (Burda et al. 2016), of ``latent_dim`` (a hierarchical model's
  means are those encode gives, z2's at z1 = its mean; also per level, ``active_units_1`` and
  ``active_units_2``).
- ``MI``: the mutual information between x and z under q, the estimator of He et al. 2019
  (I = E_x[-H(q(z|x))] - E_z[log q(z)], with q(z) the aggregate posterior over the data and
  one z per sentence). It is taken over the whole evaluation set at once, not per
  mini-batch, so it is bounded by log N rather than log(batch size). For a hierarchical model
  it treats q(z|x) as the Gaussian of encode's means and variances (z2's at z1's mean), an
  approximation.
- ``recon_BLEU``: corpus BLEU-4 (Papineni et al. 2002, x100) of the greedy decoding of each
  posterior mean against the sentence as the tokenizer reads it (<unk> for unknown words,
  lower-cased if the tokenizer lower-cases), on the tokenizer's words; ``recon_exact`` the
  fraction decoded exactly.
- prior samples (n, temperature 1): ``distinct_1`` / ``distinct_2`` (distinct n-grams over
  all n-grams, Li et al. 2016), ``self_BLEU`` (BLEU-4 of each sample against all the others,
  averaged, with the smoothing of Texygen, Zhu et al. 2018; lower is more diverse), and
  ``novel`` (the fraction of samples not found verbatim in the training sentences, when given).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqvae.losses import LOG_2PI


# -- n-gram statistics ----------------------------------------------------------------------------

def ngrams(words: Sequence[str], n: int) -> Counter:
    """Counts of the n-grams (tuples) of a word list."""
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def distinct_n(sentences: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams divided by all n-grams over the sentences (Li et al. 2016)."""
    total, seen = 0, set()
    for words in sentences:
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else float("nan")


def _brevity_penalty(hyp_len: int, ref_len: int) -> float:
    if hyp_len == 0:
        return 0.0
    return 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)


def _closest(lengths: Sequence[int], hyp_len: int) -> int:
    """The reference length closest to the hypothesis length (the shorter on a tie)."""
    return min(lengths, key=lambda r: (abs(r - hyp_len), r))


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
                max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al. 2002), 0..1: n-gram counts clipped by each sentence's
    references and summed over the corpus, the geometric mean of the precisions for n = 1..
    max_n, and one brevity penalty on the total lengths (closest reference lengths). No
    smoothing: a corpus without a single matching max_n-gram scores 0."""
    matched, possible = [0] * max_n, [0] * max_n
    hyp_total, ref_total = 0, 0
    for hyp, refs in zip(hypotheses, references):
        hyp_total += len(hyp)
        ref_total += _closest([len(r) for r in refs], len(hyp))
        for n in range(1, max_n + 1):
            counts = ngrams(hyp, n)
            best: Counter = Counter()
            for ref in refs:
                best |= ngrams(ref, n)
            matched[n - 1] += sum(min(c, best[g]) for g, c in counts.items())
            possible[n - 1] += max(len(hyp) - n + 1, 1)  # as NLTK: at least 1 per sentence
    if min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / p) for m, p in zip(matched, possible)) / max_n
    return _brevity_penalty(hyp_total, ref_total) * math.exp(log_precision)


def self_bleu(sentences: Sequence[Sequence[str]], max_n: int = 4) -> float:
    """Self-BLEU (Zhu et al. 2018): the mean over sentences of the sentence BLEU-4 of each
    against all the others as references, 0..1. As Texygen does (NLTK's sentence_bleu with
    SmoothingFunction().method1) an n-gram order with no match counts 0.1 matches.

    For every n-gram the two largest counts in any one sentence are kept, so the clipping
    count "largest among the other sentences" is found without comparing all pairs."""
    sentences = [list(s) for s in sentences]
    if len(sentences) < 2:
        return float("nan")
    top: list[dict[tuple, list[int]]] = []  # per n: n-gram -> [largest, second largest]
    per_sentence: list[list[Counter]] = [[ngrams(s, n) for n in range(1, max_n + 1)]
                                         for s in sentences]
    for n in range(max_n):
        best: dict[tuple, list[int]] = {}
        for counts in per_sentence:
            for gram, c in counts[n].items():
                pair = best.setdefault(gram, [0, 0])
                if c > pair[0]:
                    pair[0], pair[1] = c, pair[0]
                elif c > pair[1]:
                    pair[1] = c
        top.append(best)
    lengths = sorted(len(s) for s in sentences)
    scores = []
    for words, counts in zip(sentences, per_sentence):
        if not words:
            scores.append(0.0)
            continue
        log_p = 0.0
        for n in range(max_n):
            matched = 0
            for gram, c in counts[n].items():
                first, second = top[n][gram]
                other = second if c == first else first  # the largest count in another sentence
                matched += min(c, other)
            if n == 0 and matched == 0:  # NLTK: no word in common scores 0
                log_p = -math.inf
                break
            log_p += math.log((matched or 0.1) / max(len(words) - n, 1))
        if log_p == -math.inf:
            scores.append(0.0)
            continue
        others = list(lengths)
        others.remove(len(words))
        ref_len = _closest(others, len(words))
        scores.append(_brevity_penalty(len(words), ref_len) * math.exp(log_p / max_n))
    return float(np.mean(scores))


# -- latent statistics ----------------------------------------------------------------------------

def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Dimensions whose posterior mean has variance above threshold across the data (N, D)."""
    if mu.size(0) < 2:
        return 0
    return int((mu.double().var(0) > threshold).sum())


def mutual_information(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None, chunk: int = 1024) -> float:
    """I(x; z) under q, the estimator of He et al. 2019 over all N posteriors (N, D):
    E[-H(q(z|x))] minus E[log q(z)], where one z is drawn from each q(z|x) and q(z) is the
    mixture of the N posteriors. In nats; bounded by log N."""
    mu, logvar = mu.double(), logvar.double()
    n, d = mu.shape
    neg_entropy = float((-0.5 * d * LOG_2PI - 0.5 * (1 + logvar).sum(-1)).mean())
    eps = torch.randn(mu.shape, generator=generator, dtype=torch.float64, device=mu.device)
    z = mu + (0.5 * logvar).exp() * eps  # (N, D)
    var = logvar.exp()
    log_qz = []
    for start in range(0, n, chunk):
        dev = z[start:start + chunk, None, :] - mu[None, :, :]  # (C, N, D)
        log_density = (-0.5 * (dev.pow(2) / var[None]).sum(-1)
                       - 0.5 * (d * LOG_2PI + logvar.sum(-1))[None])  # (C, N)
        log_qz.append(torch.logsumexp(log_density, dim=1) - math.log(n))
    return neg_entropy - float(torch.cat(log_qz).mean())


# -- the evaluation -------------------------------------------------------------------------------

@dataclass
class TextReport:
    """What evaluate_text measured, with the samples and reconstructions behind the figures."""

    metrics: dict[str, float]
    samples: pd.DataFrame  # text, NLL (-log p(x|z)), novel (when training sentences are given)
    reconstructions: pd.DataFrame  # input (as the tokenizer reads it), reconstruction, exact
    mu: np.ndarray  # (N, D) posterior means of the evaluated sentences, in their order


def _rows_per_batch(steps: int, vocab_size: int, max_elements: int = 2**25) -> int:
    """Rows of teacher-forced decoding whose logits (rows x steps x vocabulary) stay under
    max_elements floats (128 MiB)."""
    return max(1, max_elements // max(steps * vocab_size, 1))


@torch.no_grad()
def importance_weighted(model, tokens: torch.Tensor, lengths: torch.Tensor, k: int,
                        generator: torch.Generator | None = None,
                        rows: int | None = None,
                        condition: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per sentence of a batch (B, T): the importance-weighted NLL with k samples, the mean
    reconstruction term over those samples, the KL and its share per latent level
    (``kl_levels``, (B, L)), mu and logvar (as encode gives them). A language model
    (use_latent=False) gets its exact NLL (k = 1); a conditional model's are of p(x | y), its
    condition (B, C) given (None: the training mean)."""
    from seqvae.losses import sequence_nll

    cfg = model.config
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    batch = tokens.size(0)
    if not cfg.use_latent or not cfg.variational:
        mu, logvar = model.encode(tokens, lengths, condition)
        logits = model.teacher_forced_logits(inputs, model.code(mu, condition))
        recon = sequence_nll(logits, targets, cfg.pad_id)
        nll = recon if not cfg.use_latent else torch.full_like(recon, float("nan"))
        return {"nll": nll, "recon": recon, "kl": torch.zeros_like(recon),
                "kl_levels": torch.zeros_like(recon).unsqueeze(1), "mu": mu, "logvar": logvar}
    features = model.posterior_features(tokens, lengths, condition)
    mean = model.draw_latent(features)
    mu, logvar = mean.mu, mean.logvar
    first = model.latent_sizes[0]
    rows = rows or _rows_per_batch(tokens.size(1), cfg.vocab_size)
    per_chunk = max(1, rows // batch)  # samples decoded together for the whole batch
    log_w, recons, later_kl = [], [], []
    for start in range(0, k, per_chunk):
        m = min(per_chunk, k - start)
        eps = torch.randn((m, batch, mu.size(1)), generator=generator, device=mu.device)
        draw = model.draw_latent(features, eps)  # (m, B, D), level by level
        z = draw.z.reshape(m * batch, -1)  # sample-major: row j*B + i
        logits = model.teacher_forced_logits(inputs.repeat(m, 1), model.code(
            z, None if condition is None else condition.repeat(m, 1)))
        recon = sequence_nll(logits, targets.repeat(m, 1), cfg.pad_id).view(m, batch)
        log_pz = model.prior_log_prob(z).view(m, batch)
        # z = mu + sigma * eps at every level, so log q(z|x) needs only eps and the variances
        log_qz = (-0.5 * (eps.pow(2) + LOG_2PI) - 0.5 * draw.logvar).sum(-1)  # (m, B)
        log_w.append(-recon + log_pz - log_qz)
        recons.append(recon)
        later_kl.append(draw.kl()[..., first:].sum(-1))  # z2's KL at each z1 drawn (m, B)
    log_w_all = torch.cat(log_w)  # (k, B)
    nll = -(torch.logsumexp(log_w_all.double(), 0) - math.log(k)).float()
    # z1's KL is exact; z2's depends on z1, so it is averaged over the k codes drawn
    kl_levels = torch.stack([mean.kl()[:, :first].sum(1)]
                            + ([torch.cat(later_kl).mean(0)] if len(model.latent_sizes) > 1
                               else []), dim=1)  # (B, L)
    return {"nll": nll, "recon": torch.cat(recons).mean(0), "kl": kl_levels.sum(1),
            "kl_levels": kl_levels, "mu": mu, "logvar": logvar}


def evaluate_text(vae, sentences: Sequence[str], k: int = 100, n_samples: int = 1000,
                  train_sentences: Sequence[str] | None = None, seed: int = 0,
                  batch_size: int = 64, progress: bool = True) -> TextReport:
    """Every figure of the module docstring for a text model (a seqvae.TrainedModel) on
    ``sentences``. Empty and unusable sentences are skipped and counted (``n_skipped``)."""
    from tqdm.auto import tqdm

    from seqvae.errors import DataError

    if vae.molecular:
        raise DataError("evaluate_text takes a text model (word or BPE tokenizer); use "
                        "seqvae.metrics.evaluate_molecules on a molecular model's samples")
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    model = vae.model.eval()
    cfg = model.config
    tok = vae.tokenizer
    reasons = vae.check(list(sentences))
    kept = [" ".join(s.split()) for s, r in zip(sentences, reasons) if r is None]
    if not kept:
        raise DataError(f"none of the {len(sentences)} sentences can be evaluated "
                        f"(first reason: {next((r for r in reasons if r), 'none given')})")
    encoded = vae._to_tokens(kept)
    generator = torch.Generator(device=vae.device).manual_seed(seed)
    k_used = k if (cfg.use_latent and cfg.variational) else 1
    order = np.argsort([len(x) for x in encoded], kind="stable")  # similar lengths together
    sums = {"nll": 0.0, "recon": 0.0, "kl": 0.0}
    levels = len(model.latent_sizes)
    kl_levels = torch.zeros(levels, dtype=torch.float64)
    mus, logvars, index = [], [], []
    bar = tqdm(total=len(kept), desc=f"NLL (k={k_used})", unit="sent", disable=not progress)
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size].tolist()
        (tokens, lengths), = vae._batches([encoded[i] for i in chosen], len(chosen))
        out = importance_weighted(model, tokens, lengths, k_used, generator)
        for key in sums:
            sums[key] += float(out[key].double().sum())
        kl_levels += out["kl_levels"].double().sum(0).cpu()
        mus.append(out["mu"])
        logvars.append(out["logvar"])
        index += chosen
        bar.update(len(chosen))
    bar.close()
    back = torch.as_tensor(np.argsort(index))
    mu, logvar = torch.cat(mus)[back], torch.cat(logvars)[back]
    n = len(kept)
    words = sum(len(tok.words(s)) + 1 for s in kept)
    metrics: dict[str, Any] = {
        "n_sentences": n, "n_skipped": len(sentences) - n, "k": k_used,
        "words_plus_eos": words,
        "NLL": sums["nll"] / n, "recon": sums["recon"] / n, "KL": sums["kl"] / n,
    }
    metrics["neg_ELBO"] = metrics["recon"] + metrics["KL"]
    metrics["PPL"] = math.exp(sums["nll"] / words) if math.isfinite(sums["nll"]) else float("nan")
    metrics["PPL_ELBO"] = math.exp((sums["recon"] + sums["kl"]) / words)
    latent = cfg.use_latent
    metrics["latent_dim"] = cfg.latent_dim if latent else 0
    metrics["active_units"] = active_units(mu) if latent else 0
    if levels > 1:  # a hierarchical model: each level's KL and active units
        for level, (nats, part) in enumerate(zip(kl_levels.tolist(),
                                                 mu.split(model.latent_sizes, dim=1)), start=1):
            metrics[f"KL_{level}"] = nats / n
            metrics[f"active_units_{level}"] = active_units(part)
    metrics["MI"] = (mutual_information(mu, logvar, generator)
                     if latent and cfg.variational else float("nan"))
    # reconstructions: greedy decoding of the posterior means
    references = [tok.decode(ids) for ids in encoded]
    decoded = vae.decode(mu, greedy=True, batch_size=256)
    recon = pd.DataFrame({"input": references, "reconstruction": decoded})
    recon["exact"] = recon["input"] == recon["reconstruction"]
    metrics["recon_BLEU"] = 100 * corpus_bleu([tok.words(d) for d in decoded],
                                              [[tok.words(r)] for r in references])
    metrics["recon_exact"] = float(recon["exact"].mean())
    # prior samples
    samples = vae.sample(n_samples, seed=seed, progress=progress) if n_samples else \
        pd.DataFrame({"text": [], "NLL": []})
    sample_words = [tok.words(s) for s in samples["text"]]
    metrics["n_samples"] = len(samples)
    metrics["distinct_1"] = distinct_n(sample_words, 1)
    metrics["distinct_2"] = distinct_n(sample_words, 2)
    metrics["self_BLEU"] = 100 * self_bleu(sample_words) if len(samples) > 1 else float("nan")
    metrics["sample_unique"] = samples["text"].nunique() / len(samples) if len(samples) else \
        float("nan")
    metrics["mean_sample_words"] = float(np.mean([len(w) for w in sample_words])) if \
        sample_words else float("nan")
    if train_sentences is not None:
        seen = set(tok.decode_batch(tok.encode_batch([s for s in train_sentences if s.strip()])))
        samples["novel"] = [s not in seen for s in samples["text"]]
        metrics["novel"] = float(samples["novel"].mean()) if len(samples) else float("nan")
    return TextReport(metrics, samples, recon, mu.cpu().numpy())
