"""SequenceVAE: embeddings -> encoder -> Gaussian posterior -> z -> autoregressive decoder.

The model knows token ids only; molecules and text differ in the tokenizer and the metrics.

With model.latent_levels = 2 the latent is a two-level hierarchy, top-down as in the ladder
VAE (Sonderby et al. 2016): q(z1 | x) and q(z2 | x, z1) from the encoder's summary, the prior
p(z1) = N(0, I) and a learned Gaussian p(z2 | z1). The decoder reads the code z = [z1, z2]
(model.latent_dim numbers in all) wherever a one-level model reads z, so decoding, search and
export work on one code vector; ``latent_sizes`` says where to split it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..losses import (free_bits_kl, free_bits_total, gaussian_kl, gaussian_kl_between,
                      gaussian_log_density, sequence_nll, standard_normal_log_density)
from .counter import DerivationCounter, next_due, selfies_roles
from .decoders import build_decoder
from .encoders import build_encoder
from .syntax import SmilesSyntax


@dataclass
class VAEOutput:
    """Named outputs of a forward pass; losses are means over the batch, in nats per sequence."""

    loss: torch.Tensor  # the objective minimised: recon_loss + kl_weight * (free-bits) KL
    recon_loss: torch.Tensor  # mean over sequences of -log p(x | z)
    kl: torch.Tensor  # mean over sequences of KL(q(z|x) || p(z)), without free bits
    recon_per_sequence: torch.Tensor  # (B,)
    kl_per_sequence: torch.Tensor  # (B,)
    kl_per_dim: torch.Tensor  # (D,) batch mean
    kl_per_level: torch.Tensor  # (L,) batch mean KL of each latent level (z1, z2), summing to kl
    mu: torch.Tensor  # (B, D) posterior means, as encode gives them
    logvar: torch.Tensor  # (B, D)
    z: torch.Tensor  # (B, D) the code the decoder read
    logits: torch.Tensor  # (B, T-1, V), predictions of tokens 1..T-1
    token_accuracy: torch.Tensor  # fraction of non-pad target tokens predicted by argmax
    n_tokens: int  # non-pad target tokens in the batch
    # mean squared error of the property head on standardised properties (model.properties)
    property_loss: torch.Tensor | None = None
    # a model conditioned on categories: cross-entropy of q(y | x) on the labelled rows, per row
    classifier_loss: torch.Tensor | None = None


@dataclass
class LatentDraw:
    """Codes from q(z | x), level by level: drawn with given standard normal noise, or at the
    posterior means. Shapes (..., B, D): noise with leading sample dimensions draws that many
    codes per row. For two levels the second level's mean and log-variance are those of
    q(z2 | x, z1) at the z1 drawn, and prior_mu / prior_logvar those of p(z2 | z1) there."""

    z: torch.Tensor  # the code [z1, z2]
    mu: torch.Tensor  # [mu1, mu2 given z1]
    logvar: torch.Tensor  # [logvar1, logvar2 given z1]
    prior_mu: torch.Tensor | None = None  # (..., B, d2) a hierarchical model's p(z2 | z1)
    prior_logvar: torch.Tensor | None = None
    deterministic: bool = False  # an autoencoder's or a language model's code: no KL

    def kl(self) -> torch.Tensor:
        """KL per dimension (..., B, D): KL(q(z1 | x) || N(0, I)), then for two levels
        KL(q(z2 | x, z1) || p(z2 | z1)); zeros for a deterministic code. Computed when asked,
        so the loss's graph (and the order autograd sums gradients in) follows the caller."""
        if self.deterministic:
            return torch.zeros_like(self.mu)
        if self.prior_mu is None:
            return gaussian_kl(self.mu, self.logvar)
        first = self.mu.size(-1) - self.prior_mu.size(-1)
        return torch.cat([gaussian_kl(self.mu[..., :first], self.logvar[..., :first]),
                          gaussian_kl_between(self.mu[..., first:], self.logvar[..., first:],
                                              self.prior_mu, self.prior_logvar)], dim=-1)


@dataclass
class Generated:
    """Result of autoregressive generation."""

    tokens: torch.Tensor  # (B, T) token ids after BOS; EOS then padding where a sequence ended
    nll: torch.Tensor  # (B,) -log p(tokens | z) under the model at temperature 1
    finished: torch.Tensor  # (B,) True where the sequence produced EOS within max_length


class NormalizedMeans(nn.Module):
    """BN-VAE's posterior means (Zhu et al. 2020): batch-normalised over the batch while
    training (running statistics in evaluation, or for a batch of one), times a fixed scale
    gamma, plus a learned shift, so each dimension's mean code varies across the data and the
    expected KL stays at least gamma^2 / 2 nats per dimension."""

    def __init__(self, dim: int, gamma: float):
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False)
        self.shift = nn.Parameter(torch.zeros(dim))
        self.gamma = gamma

    def forward(self, mu: torch.Tensor) -> torch.Tensor:
        norm = self.norm
        batch_stats = self.training and mu.size(0) > 1
        normalized = F.batch_norm(mu, norm.running_mean, norm.running_var, training=batch_stats,
                                  momentum=norm.momentum, eps=norm.eps)
        if batch_stats:
            norm.num_batches_tracked.add_(1)
        return self.gamma * normalized + self.shift


class SequenceVAE(nn.Module):
    """A VAE (or, with variational=False, a deterministic autoencoder) over token sequences;
    with use_latent=False the same decoder alone, a language model that sees no z."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        if config.vocab_size < 5:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer")
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim,
                                      padding_idx=config.pad_id)
        self.counter = None
        if config.selfies_counter:  # the decoder reads the SELFIES derivation counts too
            if len(config.token_roles) != config.vocab_size:
                raise ValueError(f"ModelConfig.token_roles has {len(config.token_roles)} "
                                 f"entries for a vocabulary of {config.vocab_size}: set it "
                                 "from the tokenizer (seqvae.model.counter.selfies_roles)")
            self.counter = DerivationCounter(config.token_roles, config.max_length,
                                             config.embedding_dim)
        numeric = len(config.condition_names)
        conditions = config.condition_width  # numeric properties, then one per category
        if numeric:  # standardisation and range of the properties, from the training data
            for name, value in (("mean", 0.0), ("std", 1.0), ("min", 0.0), ("max", 0.0)):
                self.register_buffer(f"condition_{name}", torch.full((numeric,), value))
        self.classifier = self.condition_regressor = None
        self.posterior_2 = self.prior_2 = None
        if config.use_latent:
            self.encoder = build_encoder(config)
            features = self.encoder.output_dim + conditions  # what the posterior reads
            first, *second = config.latent_sizes
            self.posterior = nn.Linear(features, 2 * first)  # q(z1 | x)
            if second:  # q(z2 | x, z1) and the prior p(z2 | z1), an MLP of latent_dim units
                self.posterior_2 = nn.Linear(features + first, 2 * second[0])
                self.prior_2 = nn.Sequential(
                    nn.Linear(first, config.latent_dim), nn.SiLU(),
                    nn.Linear(config.latent_dim, 2 * second[0]))
            self.mu_norm = (NormalizedMeans(first, config.mu_batchnorm) if config.mu_batchnorm
                            else None)
            if config.categories:  # q(y | x), for rows without a category (M2, Kingma 2014)
                self.classifier = nn.Sequential(
                    nn.Linear(self.encoder.output_dim, self.encoder.output_dim), nn.SiLU(),
                    nn.Linear(self.encoder.output_dim, len(config.categories)))
            if set(config.condition_names) & set(config.label_names):
                # a condition read from the data may be missing: predicted from x instead
                self.condition_regressor = nn.Sequential(
                    nn.Linear(self.encoder.output_dim, self.encoder.output_dim), nn.SiLU(),
                    nn.Linear(self.encoder.output_dim, numeric))
        else:  # a language model: nothing reads the input but the decoder
            self.encoder = self.posterior = self.mu_norm = None
        # a conditional decoder reads the code [z, standardised condition]
        self.decoder = build_decoder(replace(config, latent_dim=config.latent_dim + conditions)
                                     if conditions else config)
        # the bag-of-words head: z -> logits over the vocabulary, one set per sequence
        self.bow_head = (nn.Sequential(nn.Linear(config.latent_dim, config.decoder_hidden),
                                       nn.Tanh(), nn.Linear(config.decoder_hidden,
                                                            config.vocab_size))
                         if config.bag_of_words else None)
        self.property_head = None
        if config.head_names:  # an MLP on z, trained beside the VAE (model.properties, labels)
            from .heads import PropertyHead
            self.property_head = PropertyHead(config.latent_dim, config.head_names,
                                              (config.property_hidden,) * 2, dropout=0.0)

    @property
    def device(self) -> torch.device:
        """Where the parameters live."""
        return self.embedding.weight.device

    @property
    def latent_sizes(self) -> tuple[int, ...]:
        """The size of each latent level in the code: (latent_dim,), or (size of z1, size of
        z2) for a hierarchical model; ``z.split(model.latent_sizes, dim=-1)`` gives the levels."""
        return self.config.latent_sizes

    def inference_modules(self) -> list[nn.Module]:
        """The modules of q(z | x): the encoder and the posterior layers (none for a language
        model)."""
        return [m for m in (self.encoder, self.posterior, self.mu_norm, self.posterior_2)
                if m is not None]

    # -- conditions (model.conditions) --------------------------------------------------------
    def split_properties(self, values: torch.Tensor | None
                         ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(property-head targets, conditions) from a table (N, K + L) of the values of
        config.computed_properties and then of the data's labels (NaN where missing); None
        where the model has no head / no conditions."""
        cfg = self.config
        if values is None:
            return None, None
        computed = len(cfg.computed_properties)
        head_columns = list(range(len(cfg.property_names))) + [
            computed + i for i in range(len(cfg.label_names))]
        columns = [cfg.computed_properties.index(c) if c in cfg.computed_properties
                   else computed + cfg.label_names.index(c) for c in cfg.condition_names]
        if cfg.categories:  # the category's index, after the properties and the labels
            columns.append(computed + len(cfg.label_names))
        return (values[:, head_columns] if head_columns else None,
                values[:, columns] if columns else None)

    def set_condition_statistics(self, values: torch.Tensor) -> None:
        """Mean, standard deviation and range of the numeric conditions of the training data
        (N, C; a category column after them is not standardised)."""
        if not self.config.condition_names:
            return
        values = values[:, :len(self.config.condition_names)].float().to(
            self.condition_mean.device)
        known = torch.isfinite(values)  # a data label may be missing (NaN)
        count = known.sum(0)
        mean = torch.where(known, values, 0.0).sum(0) / count.clamp(min=1)
        spread = torch.where(known, values - mean, 0.0).pow(2).sum(0) / (count - 1).clamp(min=1)
        self.condition_mean.copy_(mean)
        self.condition_std.copy_(torch.where(count > 1, spread.sqrt().clamp(min=1e-6),
                                             torch.ones_like(mean)))
        self.condition_min.copy_(torch.where(known, values, float("inf")).min(0).values)
        self.condition_max.copy_(torch.where(known, values, float("-inf")).max(0).values)

    def standardized_condition(self, condition: torch.Tensor | None, batch: int,
                               device: torch.device, soft: torch.Tensor | None = None,
                               imputed: torch.Tensor | None = None) -> torch.Tensor | None:
        """A conditional model's condition as its encoder and decoder read it: the properties
        of model.conditions standardised, then the category one-hot. ``condition`` (B, C):
        the properties in their units, then (for a model conditioned on categories) the
        category's index, -1 for an unknown one (read as every category equally likely);
        None: the training mean and an unknown category. None for an unconditional model,
        which refuses a condition."""
        cfg = self.config
        numeric, categories = len(cfg.condition_names), len(cfg.categories)
        if not numeric + categories:
            if condition is not None:
                raise ValueError("this model was trained without conditions")
            return None
        width = numeric + (1 if categories else 0)
        if condition is None:  # the training mean (in property units), an unknown category
            condition = torch.full((batch, width), -1.0, device=device)
            if numeric:
                condition[:, :numeric] = self.condition_mean.to(device)
        if condition.shape != (batch, width):
            raise ValueError(f"condition must have shape ({batch}, {width}), got "
                             f"{tuple(condition.shape)}")
        condition = condition.to(device).float()
        parts = []
        if numeric:
            scaled = (condition[:, :numeric] - self.condition_mean) / self.condition_std
            fill = imputed.to(scaled.dtype) if imputed is not None else torch.zeros_like(scaled)
            parts.append(torch.where(torch.isfinite(scaled), scaled, fill))
        if categories:
            index = condition[:, -1].round().long()
            known = (index >= 0) & (index < categories)
            one_hot = F.one_hot(index.clamp(0, categories - 1), categories).float()
            unknown = (soft.to(one_hot.dtype) if soft is not None
                       else torch.full_like(one_hot, 1.0 / categories))
            parts.append(torch.where(known.unsqueeze(1), one_hot, unknown))
        return torch.cat(parts, dim=1)

    def code(self, z: torch.Tensor, condition: torch.Tensor | None = None,
             imputed: torch.Tensor | None = None) -> torch.Tensor:
        """What the decoder reads: z, and for a conditional model [z, standardised condition]
        (condition None: the training mean; a missing property: ``imputed`` or the mean)."""
        standardized = self.standardized_condition(condition, z.size(0), z.device,
                                                   imputed=imputed)
        return z if standardized is None else torch.cat([z, standardized.to(z.dtype)], dim=-1)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor,
               condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) with BOS..EOS, lengths (B,) -> mu, logvar (B, D); a conditional
        model reads the condition (B, C) beside the sequence (None: the training mean).

        For a deterministic autoencoder logvar is returned as zeros and is not used; a
        language model (use_latent=False) returns zeros for both. A hierarchical model
        returns the code at the posterior means, [mu1, mu2 given mu1], and the log-variances
        [logvar1, logvar2 given mu1]; ``latent_sizes`` splits them.
        """
        draw = self.posterior_draw(tokens, lengths, condition)
        return draw.mu, draw.logvar

    def posterior_draw(self, tokens: torch.Tensor, lengths: torch.Tensor,
                       condition: torch.Tensor | None = None,
                       noise: torch.Tensor | None = None) -> LatentDraw:
        """q(z | x) of tokens (B, T): codes drawn with the standard normal ``noise`` (..., B, D;
        see latent_noise), or with noise None at the posterior means. A language model's
        codes are zeros."""
        if not self.config.use_latent:
            zeros = torch.zeros(tokens.size(0), self.config.latent_dim, device=tokens.device)
            return LatentDraw(zeros, zeros, zeros.clone(), deterministic=True)
        return self.draw_latent(self.posterior_features(tokens, lengths, condition), noise)

    def posterior_features(self, tokens: torch.Tensor, lengths: torch.Tensor,
                           condition: torch.Tensor | None = None) -> torch.Tensor:
        """What the posterior layers read of tokens (B, T): the encoder's summary and, for a
        conditional model, the standardised condition (B, F)."""
        summary = self.encoder(self.embedding(tokens), lengths)
        # a row of unknown category reads q(y | x), a missing data label its prediction from x
        soft = None if self.classifier is None else self.classifier(summary).float().softmax(-1)
        imputed = (None if self.condition_regressor is None
                   else self.condition_regressor(summary).float())
        return self._features(summary, condition, soft, imputed)

    def _features(self, summary: torch.Tensor, condition: torch.Tensor | None,
                  soft: torch.Tensor | None = None,
                  imputed: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's summary (B, H) with the standardised condition appended (``soft``:
        the category probabilities an unknown category reads, else uniform; ``imputed``: the
        standardised values a missing property reads, else the training mean)."""
        standardized = self.standardized_condition(condition, summary.size(0), summary.device,
                                                   soft, imputed)
        if standardized is None:
            return summary
        return torch.cat([summary, standardized.to(summary.dtype)], dim=-1)

    def _posterior(self, summary: torch.Tensor, condition: torch.Tensor | None,
                   soft: torch.Tensor | None = None, imputed: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """mu, logvar (as encode gives them) from the encoder's summary and the condition
        (see _features)."""
        draw = self.draw_latent(self._features(summary, condition, soft, imputed))
        return draw.mu, draw.logvar

    def latent_noise(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor | None:
        """Standard normal noise (n, D) that draw_latent turns into n codes from q(z | x) (on
        ``device``, default the model's); None for a model that draws no codes (a
        deterministic autoencoder, a language model)."""
        if not (self.config.variational and self.config.use_latent):
            return None
        return torch.randn((n, self.config.latent_dim), generator=generator,
                           device=device or self.device, dtype=torch.float32)

    def draw_latent(self, features: torch.Tensor, noise: torch.Tensor | None = None) -> LatentDraw:
        """Codes from q(z | x) given posterior_features (B, F): z = mu + sigma * noise level by
        level, z2's posterior read at the z1 drawn (noise (..., B, D)); at the means with noise
        None. A deterministic autoencoder ignores the noise: its code is mu and its KL zero."""
        first = self.latent_sizes[0]
        # float32 under autocast
        mu, logvar = self.posterior(features).float().chunk(2, dim=-1)  # (B, d1)
        if self.mu_norm is not None:
            mu = self.mu_norm(mu)
        if not self.config.variational:
            return LatentDraw(mu, mu, torch.zeros_like(mu), deterministic=True)
        z = mu if noise is None else mu + torch.exp(0.5 * logvar) * noise[..., :first]
        if self.posterior_2 is None:
            return LatentDraw(z, mu, logvar)
        shape = z.shape[:-1]  # (..., B): the first level's terms repeat over the samples
        features = features.expand(*shape, features.size(-1))
        mu_2, logvar_2 = self.posterior_2(
            torch.cat([features, z.to(features.dtype)], dim=-1)).float().chunk(2, dim=-1)
        z_2 = mu_2 if noise is None else mu_2 + torch.exp(0.5 * logvar_2) * noise[..., first:]

        def joined(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.cat([a.expand(*shape, first), b], dim=-1)
        return LatentDraw(joined(z, z_2), joined(mu, mu_2), joined(logvar, logvar_2),
                          *self._prior_2(z))

    def bag_of_words_loss(self, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """-sum over each sequence's target tokens (not padding, not EOS) of log softmax of
        the bag-of-words head at its z, per sequence (B,)."""
        log_probs = self.bow_head(z.to(self.bow_head[0].weight.dtype)).float().log_softmax(-1)
        picked = log_probs.gather(1, targets)  # (B, T-1)
        counted = (targets != self.config.pad_id) & (targets != self.config.eos_id)
        return -(picked * counted).sum(1)

    def _prior_2(self, z_1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(z2 | z1), float32, for z1 (..., d1)."""
        weight = self.prior_2[0].weight
        return self.prior_2(z_1.to(weight.device, weight.dtype)).float().chunk(2, dim=-1)

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """n codes (n, D) from the prior p(z): N(0, I) for one level; for two, z1 ~ N(0, I) and
        z2 ~ p(z2 | z1). Drawn with ``generator`` on its device (default the model's), and
        returned on ``device`` (default: where drawn)."""
        drawn_on = generator.device if generator is not None else self.device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=drawn_on)
        if self.prior_2 is not None:
            first = self.latent_sizes[0]
            z_1, noise = z[:, :first].to(self.device), z[:, first:].to(self.device)
            mu, logvar = self._prior_2(z_1)
            z = torch.cat([z_1, mu + torch.exp(0.5 * logvar) * noise], dim=-1)
        return z.to(device or drawn_on)

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) of codes (..., D), in nats (...,): log N(z; 0, I) for one level; for two,
        log N(z1; 0, I) + log p(z2 | z1)."""
        if self.prior_2 is None:
            return standard_normal_log_density(z).sum(-1)
        z_1, z_2 = z.split(self.latent_sizes, dim=-1)
        mu, logvar = self._prior_2(z_1)
        return (standard_normal_log_density(z_1).sum(-1)
                + gaussian_log_density(z_2.to(mu.device), mu, logvar).sum(-1).to(z.device))

    def _expand_unlabelled(self, condition: torch.Tensor, category_logits: torch.Tensor,
                           labelled: torch.Tensor) -> dict[str, torch.Tensor]:
        """M2 (Kingma et al. 2014) for rows whose category is unknown: each repeated once per
        category, weighted by q(y | x); labelled rows once with weight 1. Returns the expanded
        rows (indices into the batch) and conditions, the weights, the entropy of q summed over
        the unlabelled rows per batch row, and per batch row the copy kept for its outputs."""
        k = len(self.config.categories)
        batch = condition.size(0)
        known = labelled.nonzero().squeeze(1)
        unknown = (~labelled).nonzero().squeeze(1)
        rows = torch.cat([known, unknown.repeat_interleave(k)])
        expanded = condition[rows].clone()
        expanded[len(known):, -1] = torch.arange(k, device=condition.device).repeat(
            len(unknown)).to(expanded.dtype)
        q = category_logits[unknown].softmax(-1)  # (U, K)
        weights = torch.cat([torch.ones(len(known), device=q.device), q.reshape(-1)])
        entropy = -(q * q.clamp_min(1e-12).log()).sum() / batch
        pick = torch.empty(batch, dtype=torch.long, device=condition.device)
        pick[known] = torch.arange(len(known), device=condition.device)
        pick[unknown] = (len(known) + torch.arange(len(unknown), device=condition.device) * k
                         + q.argmax(-1))
        return {"rows": rows, "condition": expanded, "weights": weights, "entropy": entropy,
                "pick": pick}

    def category_probabilities(self, tokens: torch.Tensor, lengths: torch.Tensor
                               ) -> torch.Tensor:
        """q(y | x) of a model conditioned on categories (B, K)."""
        if self.classifier is None:
            raise ValueError("this model has no category classifier")
        summary = self.encoder(self.embedding(tokens), lengths)
        return self.classifier(summary).float().softmax(-1)

    def decoder_embedding(self, inputs: torch.Tensor, prefix: torch.Tensor | None = None
                          ) -> torch.Tensor:
        """What the decoder reads (B, T, E) for its input tokens (B, T): their embeddings and,
        with model.selfies_counter, the derivation counts of ``prefix``, the true tokens (by
        default ``inputs``; word dropout replaces some inputs but not what was derived)."""
        emb = self.embedding(inputs)
        if self.counter is not None:
            emb = emb + self.counter(inputs if prefix is None else prefix)
        return emb

    def teacher_forced_logits(self, inputs: torch.Tensor, code: torch.Tensor,
                              prefix: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's logits (B, T, V), in fp32, over decoder inputs (B, T) given their code
        (what ``code`` returns for z): each position reads the inputs before it. ``prefix`` as in
        decoder_embedding."""
        return self.decoder(self.decoder_embedding(inputs, prefix), code).float()

    def _drop_words(self, inputs: torch.Tensor, rate: float) -> torch.Tensor:
        """Replace decoder input tokens (not BOS, not padding) by <unk> with probability rate."""
        drop = torch.rand(inputs.shape, device=inputs.device) < rate
        drop[:, 0] = False  # keep BOS: the decoder must know where the sequence starts
        drop &= inputs != self.config.pad_id
        return inputs.masked_fill(drop, self.config.unk_id)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, kl_weight: float = 1.0,
                free_bits: float = 0.0, word_dropout: float = 0.0, sample_z: bool = True,
                generator: torch.Generator | None = None, kl_target: float = 0.0,
                properties: torch.Tensor | None = None, property_weight: float = 1.0,
                encoder_input: tuple[torch.Tensor, torch.Tensor] | None = None,
                condition: torch.Tensor | None = None,
                classifier_weight: float = 1.0, bow_weight: float = 1.0) -> VAEOutput:
        """Encode, sample z, decode with teacher forcing, and compute the loss terms.

        sample_z=False decodes from mu (as an autoencoder does); free_bits and kl_target are
        the floors of losses.free_bits_kl. With a property head and ``properties`` (B, P) the
        loss adds property_weight times its mean squared error (standardised) at z.
        encoder_input (tokens, lengths) is what the encoder reads when it is not the decoder's
        target (another spelling of each row, seqvae.augment). A conditional model reads
        ``condition`` (B, C; see standardized_condition) in its encoder and its decoder. A model
        with a bag-of-words head adds bow_weight times its loss (nats per sequence)."""
        batch = tokens.size(0)
        encoder_tokens, encoder_lengths = (encoder_input if encoder_input is not None
                                           else (tokens, lengths))
        semi = None  # M2's bookkeeping when some rows lack their category
        classifier_loss = None
        imputed = None  # missing data-label conditions, predicted from x
        if (self.classifier is not None or self.condition_regressor is not None) and \
                condition is not None:
            summary = self.encoder(self.embedding(encoder_tokens), encoder_lengths)
            classifier_loss = summary.sum() * 0.0
            if self.condition_regressor is not None:  # trained on the known values only
                numeric = len(self.config.condition_names)
                predicted = self.condition_regressor(summary).float()
                target = (condition[:, :numeric].float() - self.condition_mean) / self.condition_std
                known = torch.isfinite(target)
                classifier_loss = classifier_loss + torch.where(
                    known, predicted - target.nan_to_num(), 0.0).pow(2).sum() / batch
                imputed = predicted.detach()
            if self.classifier is not None:
                category_logits = self.classifier(summary).float()
                category = condition[:, -1].round().long()
                labelled = category >= 0
                if bool(labelled.any()):
                    classifier_loss = classifier_loss + F.cross_entropy(
                        category_logits[labelled], category[labelled], reduction="sum") / batch
                if not bool(labelled.all()):
                    semi = self._expand_unlabelled(condition, category_logits, labelled)
                    rows, condition = semi["rows"], semi["condition"]
                    tokens, lengths, summary = tokens[rows], lengths[rows], summary[rows]
                    imputed = None if imputed is None else imputed[rows]
            features = self._features(summary, condition, None, imputed)
        else:
            features = (self.posterior_features(encoder_tokens, encoder_lengths, condition)
                        if self.config.use_latent else None)
        if features is None:  # a language model: its code is zero
            draw = mean = self.posterior_draw(encoder_tokens, encoder_lengths)
        else:
            noise = (self.latent_noise(features.size(0), generator, features.device)
                     if sample_z else None)
            draw = self.draw_latent(features, noise)
            # the means encode gives: a second level's are read at z1 = mu1, not at the z1 drawn
            mean = draw if noise is None or self.posterior_2 is None else self.draw_latent(features)
        z, mu, logvar = draw.z, mean.mu, mean.logvar
        inputs, targets = tokens[:, :-1], tokens[:, 1:]  # (B, T-1)
        prefix = inputs
        if word_dropout > 0 and self.training:
            inputs = self._drop_words(inputs, word_dropout)
        logits = self.teacher_forced_logits(inputs, self.code(z, condition, imputed), prefix)
        recon = sequence_nll(logits, targets, self.config.pad_id)  # (B,) or expanded
        kl_dims = draw.kl()  # (B, D)
        if semi is None:
            kl_term = (free_bits_kl(kl_dims, free_bits, kl_target)
                       if self.config.variational and self.config.use_latent else kl_dims.sum())
            loss = recon.mean() + kl_weight * kl_term
            kl_per_dim, kl_per_sequence = kl_dims.mean(0), kl_dims.sum(1)
        else:  # M2: an unlabelled row's terms weighted by q(y | x) over its K copies
            weights, rows, pick = semi["weights"], semi["rows"], semi["pick"]
            kl_per_dim = (weights[:, None] * kl_dims).sum(0) / batch
            kl_term = (free_bits_total(kl_per_dim, free_bits, kl_target)
                       if self.config.variational else kl_per_dim.sum() * 0.0)
            loss = (weights * recon).sum() / batch + kl_weight * kl_term - semi["entropy"]
            recon = torch.zeros(batch, device=recon.device).index_add_(0, rows, weights * recon)
            kl_per_sequence = torch.zeros(batch, device=recon.device).index_add_(
                0, rows, weights * kl_dims.sum(1))
            # per row: its own code, or that of its likeliest category
            mu, logvar, z, logits = mu[pick], logvar[pick], z[pick], logits[pick]
            targets = targets[pick]
        if classifier_loss is not None:
            loss = loss + classifier_weight * classifier_loss
        if self.bow_head is not None:
            loss = loss + bow_weight * self.bag_of_words_loss(z, targets).mean()
        mask = targets != self.config.pad_id
        n_tokens = int(mask.sum())
        correct = ((logits.argmax(-1) == targets) & mask).sum()
        property_loss = None
        if self.property_head is not None and properties is not None:
            head = self.property_head
            scaled = (properties.float() - head.mean) / head.std
            known = torch.isfinite(scaled)  # a missing label (NaN) adds nothing
            errors = torch.where(known, head.net(z.float()) - scaled.nan_to_num(), 0.0)
            property_loss = errors.pow(2).sum() / known.sum().clamp(min=1)
            loss = loss + property_weight * property_loss
        return VAEOutput(
            loss=loss,
            recon_loss=recon.mean(),
            kl=kl_per_sequence.mean(),
            recon_per_sequence=recon,
            kl_per_sequence=kl_per_sequence,
            kl_per_dim=kl_per_dim,
            kl_per_level=torch.stack([part.sum() for part in
                                      kl_per_dim.split(self.latent_sizes)]),
            mu=mu, logvar=logvar, z=z, logits=logits,
            token_accuracy=correct.float() / max(n_tokens, 1),
            n_tokens=n_tokens,
            property_loss=property_loss,
            classifier_loss=classifier_loss,
        )

    @torch.no_grad()
    def generate(self, z: torch.Tensor, max_length: int | None = None, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, greedy: bool = False,
                 generator: torch.Generator | None = None,
                 condition: torch.Tensor | None = None,
                 index_temperature: float | None = None,
                 announces: torch.Tensor | None = None,
                 syntax: SmilesSyntax | None = None, guidance: float = 0.0) -> Generated:
        """Decode z (B, D) autoregressively from BOS until EOS or max_length tokens; a
        conditional model under ``condition`` (B, C) in property units (None: the training
        mean).

        SELFIES index symbols: with ``announces`` (V,), the number of index symbols each token
        id is followed by (the ring and branch symbols' digit, else 0: seqvae.model.counter),
        a token due as an index is drawn at ``index_temperature`` instead (0: the most likely),
        every other token at ``temperature``.

        SMILES syntax: with ``syntax`` (seqvae.model.syntax), each token is drawn (or chosen
        greedily) among those that keep the string SMILES (rings closed, branches balanced,
        a bond followed by an atom); the NLL returned stays the model's own.

        Guidance (a conditional model, ``guidance`` w > 0; classifier-free guidance, Ho &
        Salimans 2022, with the training mean as the reference): each step also decodes the
        same prefix and z at the reference condition (the training mean of every property, no
        category), and draws from logits + w * (logits - reference logits), which moves the
        samples further along the direction in which the requested condition differs from
        the mean. w = 0 is the model itself; the NLL returned stays the model's own.

        A sequence that has produced EOS leaves the batch: later steps decode only the
        sequences still running, so the work follows the lengths of the samples, not the
        longest of them.
        """
        cfg = self.config
        if not cfg.use_latent:  # a language model ignores whatever z it is given
            z = torch.zeros_like(z)
        guided = bool(guidance)
        if guided and not cfg.condition_width:
            raise ValueError("guidance needs a conditional model (model.conditions or "
                             "data.condition_column)")
        reference = self.code(z, None) if guided else None
        z = self.code(z, condition)
        max_length = min(max_length or cfg.max_length, cfg.max_length) - 1  # BOS is given
        batch = z.size(0)
        device = z.device
        tokens = torch.full((batch, max_length), cfg.pad_id, dtype=torch.long, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        nll = torch.zeros(batch, device=device)
        running = torch.arange(batch, device=device)  # batch positions still decoding
        state = self.decoder.initial_state(z)
        reference_state = self.decoder.initial_state(reference) if guided else None
        token = torch.full((batch, 1), cfg.bos_id, dtype=torch.long, device=device)
        counts = (None if self.counter is None
                  else self.counter.advance(self.counter.start(batch, device), token[:, 0]))
        never = torch.zeros(cfg.vocab_size, dtype=torch.bool, device=device)
        never[[cfg.pad_id, cfg.bos_id]] = True  # not outputs: padding and the start marker
        grammar = None if syntax is None else syntax.start(batch, device)
        indexed = (index_temperature is not None and announces is not None and not greedy
                   and index_temperature != temperature)
        if indexed:
            announces = announces.to(device)
            due = torch.zeros(batch, dtype=torch.long, device=device)  # index symbols still due
        steps = 0
        for t in range(max_length):
            emb = self.embedding(token)  # (R, 1, E)
            if counts is not None:
                emb = emb + self.counter.embed(counts).unsqueeze(1)
            logits, state = self.decoder.step(emb, z, state)  # (R, V)
            logits = logits.float()
            log_probs = F.log_softmax(logits, dim=-1)  # the model's own, for the NLL
            if guided:
                unguided, reference_state = self.decoder.step(emb, reference, reference_state)
                logits = log_probs + guidance * (log_probs - F.log_softmax(unguided.float(), -1))
            logits = logits.masked_fill(never, float("-inf"))
            if grammar is not None:
                logits = logits.masked_fill(~syntax.allowed(grammar), float("-inf"))
            if greedy:
                chosen = logits.argmax(-1)
            else:
                # within float32's range: a temperature that rounds to inf would turn the
                # masked -inf logits into NaN (above 1e30 every token is equally likely anyway)
                probs = filtered_probs(logits / min(max(temperature, 1e-6), 1e30), top_k, top_p)
                if indexed and bool((due > 0).any()):
                    at = due > 0
                    index_probs = (F.one_hot(logits[at].argmax(-1), cfg.vocab_size).float()
                                   if index_temperature == 0 else
                                   filtered_probs(logits[at] / min(index_temperature, 1e30),
                                                  top_k, top_p))
                    probs = probs.masked_scatter(at.unsqueeze(1).expand_as(probs), index_probs)
                chosen = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            nll[running] += -log_probs.gather(1, chosen.unsqueeze(1)).squeeze(1)
            tokens[running, t] = chosen
            steps = t + 1
            ended = chosen == cfg.eos_id
            if bool(ended.any()):
                finished[running[ended]] = True
                keep = (~ended).nonzero().squeeze(1)
                if keep.numel() == 0:
                    break
                running, chosen, z = running[keep], chosen[keep], z[keep]
                state = self.decoder.select(state, keep)
                if guided:
                    reference = reference[keep]
                    reference_state = self.decoder.select(reference_state, keep)
                if indexed:
                    due = due[keep]
                if counts is not None:
                    counts = self.counter.select(counts, keep)
                if grammar is not None:
                    grammar = syntax.select(grammar, keep)
            if counts is not None:
                counts = self.counter.advance(counts, chosen)
            if indexed:
                due = next_due(due, announces, chosen)
            if grammar is not None:
                grammar = syntax.advance(grammar, chosen)
            token = chosen.unsqueeze(1)
        return Generated(tokens=tokens[:, :steps], nll=nll, finished=finished)


def filtered_probs(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Softmax of logits (B, V) keeping only the top_k tokens and the top_p nucleus."""
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # drop a token once the mass before it already reaches top_p (the first always stays)
        drop_sorted = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        drop_sorted[:, 0] = False  # even where top_p underflows to 0 in the tensor's precision
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def grow_vocabulary(model: SequenceVAE, new_tokens: Sequence[str]) -> SequenceVAE:
    """A copy of ``model`` with ``new_tokens`` appended to its vocabulary: every weight kept,
    the new rows of the token embedding and of the decoder's output layer (weights and bias)
    set to the mean of the existing ordinary tokens' rows (the four special ones left out), so
    a new token starts as an average token rather than as noise. A model that counts SELFIES
    derivations (model.selfies_counter) learns each new token's role from its spelling."""
    import copy

    n_new = len(new_tokens)
    config = copy.deepcopy(model.config)
    config.vocab_size = model.config.vocab_size + n_new
    if config.selfies_counter:
        config.token_roles = [*config.token_roles, *selfies_roles(new_tokens)]
    grown = SequenceVAE(config).to(model.device)
    state = model.state_dict()
    first = 4  # PAD BOS EOS UNK
    for key in ("embedding.weight", "decoder.output.weight", "decoder.output.bias"):
        old = state[key]
        mean = old[first:].mean(0, keepdim=True)
        state[key] = torch.cat([old, mean.expand(n_new, *old.shape[1:])])
    grown.load_state_dict(state)
    return grown


def warm_start_decoder(model: SequenceVAE, language_model: SequenceVAE) -> list[str]:
    """Give ``model``, a fresh VAE, the token embedding and recurrent decoder of
    ``language_model`` (model.use_latent = false, the same decoder architecture), so that at
    the first step the VAE decodes every z exactly as the language model decodes: the weights
    that read z (the first recurrent layer's z columns, z_to_state's weight) start at zero and
    z_to_state's bias holds the language model's initial state. The encoder and posterior stay
    fresh; the latent width may differ from the language model's (its z columns were never
    trained: it is always fed zeros). Returns the names of the tensors copied."""
    source_cfg, cfg = language_model.config, model.config
    if source_cfg.use_latent:
        raise ValueError("warm_start_decoder takes a language model (model.use_latent = false)")
    if cfg.decoder not in ("gru", "lstm") or source_cfg.decoder != cfg.decoder:
        raise ValueError(f"warm_start_decoder needs the same recurrent decoder (GRU or LSTM) in "
                         f"both, got {source_cfg.decoder} and {cfg.decoder}")
    if source_cfg.condition_width:
        raise ValueError("warm_start_decoder: the language model is conditional; its decoder "
                         "reads conditions beside z, which a warm start would lose")
    source = language_model.state_dict()
    target = model.state_dict()
    embedding = cfg.embedding_dim
    initial = source.get("decoder.z_to_state.bias")  # the LM's start state: z_to_state(0)
    has_state = "decoder.z_to_state.bias" in target
    if initial is not None and not has_state:
        raise ValueError("warm_start_decoder: the language model starts from a learned "
                         "state; keep model.z_to_state = true to carry it over")
    with torch.no_grad():
        copied = []
        for key, value in source.items():
            if not (key == "embedding.weight" or key.startswith(("decoder.", "counter."))):
                continue
            if key.startswith("decoder.z_to_state."):
                continue
            fits = key in target and (target[key].shape == value.shape or (
                key == "decoder.rnn.weight_ih_l0" and target[key].shape[0] == value.shape[0]))
            if not fits:
                raise ValueError(f"warm_start_decoder: {key} is {tuple(value.shape)} in the "
                                 f"language model and "
                                 f"{tuple(target[key].shape) if key in target else 'absent'} "
                                 f"in the VAE; the decoders must match")
            if key == "decoder.rnn.weight_ih_l0":  # [embedding, z] columns: z's start at zero
                new = torch.zeros_like(target[key])
                new[:, :embedding] = value[:, :embedding]
                target[key] = new
            else:
                target[key] = value.clone()
            copied.append(key)
        if has_state:  # z_to_state(z) = the LM's start state (zeros without one) for every z
            target["decoder.z_to_state.weight"] = torch.zeros_like(target["decoder.z_to_state.weight"])
            target["decoder.z_to_state.bias"] = (torch.zeros_like(target["decoder.z_to_state.bias"])
                                                 if initial is None else initial.clone())
            copied.append("decoder.z_to_state.bias")
        model.load_state_dict(target)
    return copied
