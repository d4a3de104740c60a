"""Loss terms of the ELBO: masked sequence NLL, Gaussian KL and log-densities, free bits."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def sequence_nll(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Summed negative log-likelihood per sequence: logits (B, T, V), targets (B, T) -> (B,)."""
    nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=pad_id, reduction="none")
    return nll.sum(1)  # (B,)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per dimension: (B, D) -> (B, D), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_kl_between(mu: torch.Tensor, logvar: torch.Tensor, prior_mu: torch.Tensor,
                        prior_logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))) per dimension, in nats; all four
    of one shape, which the result has too."""
    return 0.5 * (prior_logvar - logvar + torch.exp(logvar - prior_logvar)
                  + (mu - prior_mu).pow(2) * torch.exp(-prior_logvar) - 1.0)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, 1) per element, in nats."""
    return -0.5 * (z.pow(2) + LOG_2PI)


def gaussian_log_density(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mu, exp(logvar)) per element, in nats."""
    return -0.5 * ((x - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float, target: float = 0.0) -> torch.Tensor:
    """KL term to optimise: each dimension's batch-mean KL floored at free_bits nats, and the
    total floored at target nats.

    kl_per_dim is (B, D); the result is a scalar. Below a floor the KL has no gradient, so the
    model may spend that much information on z for free: per dimension as in Kingma et al.
    2016, or in total ("KL thresholding", Li et al. 2019), which lets the model put the
    information in whichever dimensions it likes.
    """
    return free_bits_total(kl_per_dim.mean(0), free_bits, target)


def free_bits_total(per_dim: torch.Tensor, free_bits: float, target: float = 0.0) -> torch.Tensor:
    """free_bits_kl of the batch-mean KL per dimension (D,) already taken."""
    if free_bits > 0:
        per_dim = torch.clamp(per_dim, min=free_bits)
    total = per_dim.sum()
    if target > 0:
        total = torch.clamp(total, min=target)
    return total
