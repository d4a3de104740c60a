"""Schedules over training steps: the KL weight beta and the learning rate."""

from __future__ import annotations

import math

from .config import TrainConfig


def kl_weight(step: int, cfg: TrainConfig) -> float:
    """The KL weight at a step.

    constant: kl_weight throughout. linear: from kl_start_weight to kl_weight over
    kl_warmup_steps, then flat. logistic: a sigmoid centred at half the warm-up (Bowman et al.
    2016). cyclical: the linear ramp repeated every kl_warmup_steps, rising during the first
    kl_cycle_ratio of each cycle and held at kl_weight for the rest (Fu et al. 2019).
    """
    start, end, warmup = cfg.kl_start_weight, cfg.kl_weight, max(cfg.kl_warmup_steps, 1)
    if cfg.kl_schedule == "constant":
        return end
    if cfg.kl_schedule == "linear":
        return start + (end - start) * min(step / warmup, 1.0)
    if cfg.kl_schedule == "logistic":
        # slope chosen so the weight goes from ~0.25% to ~99.75% of the range over the warm-up
        x = 12.0 * (step / warmup - 0.5)
        return start + (end - start) / (1.0 + math.exp(-x))
    phase = (step % warmup) / warmup  # cyclical
    return start + (end - start) * min(phase / cfg.kl_cycle_ratio, 1.0)


def learning_rate(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Cosine decay from lr to lr_min over total_steps; constant lr when total_steps is unknown."""
    if total_steps <= 0:
        return cfg.lr
    progress = min(step / total_steps, 1.0)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * progress))
