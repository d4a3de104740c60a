"""Validation figures of a model during training: the ELBO's terms, token and whole-string
reconstruction, active units, property-head R^2, and the domain's figures of prior samples.
A hierarchical model (model.latent_levels = 2) adds the KL and the active units of each level
(valid_kl_1, valid_kl_2, active_units_1, active_units_2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .data import SequenceBatches
from .domains import Domain
from .domains.base import Prepared
from .model import SequenceVAE

__all__ = ["validation_metrics", "eval_batch_size"]

RECONSTRUCTED = 500  # validation sequences decoded greedily for the whole-string accuracy


def eval_batch_size(cfg: Any, rows: int = 500, max_elements: int = 2**24) -> int:
    """Sequences per evaluation batch: up to ``rows``, fewer where the logits of the longest
    batch (rows x max_length x vocabulary floats) would pass ``max_elements`` (64 MiB): a
    10,000-word vocabulary needs far smaller batches than 30 SMILES symbols."""
    return max(1, min(rows, max_elements // max(cfg.max_length * cfg.vocab_size, 1)))


@torch.no_grad()
def validation_metrics(model: SequenceVAE, tokenizer: Any, domain: Domain, data: Prepared,
                       config: Any, device: torch.device) -> dict[str, float]:
    """Figures on the first train.eval_max_molecules validation sequences, and on
    train.eval_samples prior samples. An RNG of its own (seed + 1), so measuring never
    changes the course of training."""
    generator = torch.Generator(device=device).manual_seed(config.train.seed + 1)
    valid = data.valid[:config.train.eval_max_molecules]
    metrics: dict[str, float] = {}
    if len(valid):
        batches = SequenceBatches(valid, eval_batch_size(config.model), tokenizer.pad_id,
                                  shuffle=False)
        recon, kl, correct, tokens, mus = 0.0, 0.0, 0.0, 0, []
        kl_levels = torch.zeros(len(model.latent_sizes), dtype=torch.float64)
        exact, checked, seen = 0, 0, 0
        values = (None if data.valid_properties is None
                  else torch.from_numpy(data.valid_properties[:len(valid)]).to(device))
        head_targets, conditions = model.split_properties(values)
        for batch, lengths in batches:  # in the order of `valid`
            batch, lengths = batch.to(device), lengths.to(device)
            condition = (None if conditions is None
                         else conditions[seen:seen + len(batch)])
            seen += len(batch)
            out = model(batch, lengths, generator=generator, condition=condition)
            recon += float(out.recon_per_sequence.sum())
            kl += float(out.kl_per_sequence.sum())
            kl_levels += out.kl_per_level.detach().double().cpu() * len(batch)
            correct += float(out.token_accuracy) * out.n_tokens
            tokens += out.n_tokens
            mus.append(out.mu)
            if checked < RECONSTRUCTED:  # greedy decoding from the posterior mean
                gen = model.generate(out.mu, greedy=True, condition=condition)
                decoded = tokenizer.decode_batch(gen.tokens.cpu())
                targets = tokenizer.decode_batch(batch[:, 1:].cpu())
                exact += sum(a == b for a, b in zip(decoded, targets))
                checked += len(decoded)
        n = len(valid)
        if model.classifier is not None and conditions is not None:  # q(y | x) on labelled rows
            right, labelled = 0, 0
            seen = 0
            for batch, lengths in batches:
                batch, lengths = batch.to(device), lengths.to(device)
                truth = conditions[seen:seen + len(batch), -1].round().long()
                seen += len(batch)
                known = truth >= 0
                guess = model.category_probabilities(batch, lengths).argmax(-1)
                right += int((guess[known] == truth[known]).sum())
                labelled += int(known.sum())
            if labelled:
                metrics[f"valid_acc_{model.config.category_column}"] = right / labelled
        metrics["valid_recon"] = recon / n
        metrics["valid_kl"] = kl / n
        metrics["valid_neg_elbo"] = (recon + kl) / n
        metrics["valid_token_acc"] = correct / max(tokens, 1)
        metrics["valid_recon_acc"] = exact / max(checked, 1)
        active = torch.cat(mus).var(0) > 0.01 if n > 1 else None  # (D,)
        if active is not None:
            metrics["active_units"] = float(active.sum())
        if len(model.latent_sizes) > 1:  # a hierarchical model: each level's share
            for level, nats in enumerate(kl_levels.tolist(), start=1):
                metrics[f"valid_kl_{level}"] = nats / n
            if active is not None:
                for level, units in enumerate(active.split(model.latent_sizes), start=1):
                    metrics[f"active_units_{level}"] = float(units.sum())
        head = model.property_head
        if head is not None and n > 1:
            from .model.heads import r_squared
            predicted = head(torch.cat(mus).float()).cpu().numpy()
            true = head_targets.cpu().numpy()
            r2 = [r_squared(predicted[:, j], true[:, j]) for j in range(len(head.names))]
            for name, value in zip(head.names, r2):
                metrics[f"valid_r2_{name}"] = value
            metrics["valid_property_r2"] = float(np.mean(r2))
    if config.train.eval_samples:
        z = model.sample_prior(config.train.eval_samples, generator, device)
        gen = model.generate(z, generator=generator)  # a conditional model: the training mean
        strings = [tokenizer.from_model_string(s) for s in tokenizer.decode_batch(gen.tokens.cpu())]
        metrics.update(domain.sample_metrics(strings))
    return metrics
