"""Schedules over training: the KL weight beta and the learning rate.

Both can be counted in the unit the budget is counted in. A run's *progress* is the share of
its budget spent: steps done / the step budget when there is one (train.max_steps or
train.max_epochs), else training seconds / train.max_minutes. A KL warm-up given as a fraction
of the budget (train.kl_warmup_fraction) therefore ends at the same point of a 10-minute run on
a slow CPU as on a fast one, where a warm-up in steps (train.kl_warmup_steps) might never end.
"""

from __future__ import annotations

import math

from .config import TrainConfig


def kl_weight(step: int, cfg: TrainConfig, progress: float | None = None) -> float:
    """The KL weight at a step (and, with train.kl_warmup_fraction, at a progress in [0, 1]).

    constant: kl_weight throughout. linear: from kl_start_weight to kl_weight over the
    warm-up, then flat. logistic: a sigmoid centred at half the warm-up (Bowman et al. 2016).
    cyclical: the linear ramp repeated every warm-up length, rising during the first
    kl_cycle_ratio of each cycle and held at kl_weight for the rest (Fu et al. 2019).
    The warm-up is kl_warmup_fraction of the budget when that is set (progress must then be
    given), else kl_warmup_steps steps.
    """
    start, end = cfg.kl_start_weight, cfg.kl_weight
    if cfg.kl_schedule == "constant":
        return end
    if cfg.kl_warmup_fraction > 0:
        if progress is None:
            raise ValueError("train.kl_warmup_fraction needs the run's progress")
        position = max(progress, 0.0) / cfg.kl_warmup_fraction  # warm-ups done
    else:
        position = max(step, 0) / max(cfg.kl_warmup_steps, 1)
    if cfg.kl_schedule == "linear":
        return start + (end - start) * min(position, 1.0)
    if cfg.kl_schedule == "logistic":
        # slope chosen so the weight goes from ~0.25% to ~99.75% of the range over the warm-up
        x = 12.0 * (position - 0.5)
        return start + (end - start) / (1.0 + math.exp(-x))
    phase = position % 1.0  # cyclical
    return start + (end - start) * min(phase / cfg.kl_cycle_ratio, 1.0)


def learning_rate(progress: float | None, cfg: TrainConfig, timed: bool = False) -> float:
    """cosine: decay from lr to lr_min over the budget (progress 0 to 1); constant: lr; auto:
    cosine unless the budget is counted in time (timed). With no progress (None), lr."""
    kind = cfg.lr_schedule if cfg.lr_schedule != "auto" else ("constant" if timed else "cosine")
    if kind == "constant" or progress is None:
        return cfg.lr
    progress = min(max(progress, 0.0), 1.0)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * progress))
