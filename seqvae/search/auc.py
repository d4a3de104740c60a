"""Sample efficiency as the PMO benchmark scores it (Gao, Fu, Sun & Coley, "Sample Efficiency
Matters", NeurIPS 2022; the protocol of wenhao-gao/mol_opt): the area under the curve of the
mean of the k best scores against the number of oracle calls.

The curve holds one point per ``every`` calls (and one at the last call), starting from 0 at
call 0; at each point, the mean of the k best scores among the molecules scored so far (of all
of them while fewer than k are). The area is taken by the trapezoid rule and divided by the
budget; a run that stopped before spending its budget is held flat at its last value up to it.
So a run that finds a molecule of score 1 at its first call scores nearly 1, and one that finds
it at its last scores nearly 0.

Scores go in the order the oracle was called, one per distinct valid molecule (seqvae's
:class:`~seqvae.search.latent.Oracle` counts calls so: a repeat or an invalid string costs
none). A score that is not finite (the objective failed on the molecule, or a constraint was
not met) counts as 0, as PMO scores a molecule its oracle cannot score; PMO's oracles are all
between 0 and 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seqvae.errors import ConfigError

__all__ = ["top_k_curve", "auc_top_k", "oracle_scores"]


def _scores(values: Sequence[float] | np.ndarray, budget: int | None) -> np.ndarray:
    scores = np.asarray(values, dtype=np.float64).ravel()
    scores = np.where(np.isfinite(scores), scores, 0.0)
    return scores if budget is None else scores[:budget]


def top_k_curve(values: Sequence[float] | np.ndarray, k: int = 10, every: int = 100,
                budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(calls, top-k mean) at call 0, every ``every`` calls and the last call: the curve whose
    area auc_top_k takes. Calls past ``budget`` are not counted."""
    if k < 1 or every < 1:
        raise ConfigError(f"top_k_curve needs k >= 1 and every >= 1, got k={k}, every={every}")
    scores = _scores(values, budget)
    n = len(scores)
    calls = np.unique(np.concatenate([np.arange(0, n, every), [n]])).astype(np.int64)
    means = np.zeros(len(calls))
    best: np.ndarray = np.empty(0)
    done = 0
    for i, call in enumerate(calls):
        if call == 0:
            continue
        # the k best of the first `call` scores, from the k best so far and the new ones
        best = np.sort(np.concatenate([best, scores[done:call]]))[-k:]
        done = call
        means[i] = best.mean()
    return calls, means


def auc_top_k(values: Sequence[float] | np.ndarray, budget: int = 10_000, k: int = 10,
              every: int = 100) -> float:
    """PMO's AUC top-k of the scores of one run in call order (non-finite scores count 0), for
    a budget of ``budget`` calls; between 0 and the best score."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"budget must be a positive number of oracle calls, got {budget!r}")
    calls, means = top_k_curve(values, k=k, every=every, budget=budget)
    area = float(np.sum(np.diff(calls) * (means[1:] + means[:-1]) / 2.0))
    area += (budget - calls[-1]) * means[-1]  # held flat to the budget after an early stop
    return area / budget


def oracle_scores(oracle) -> np.ndarray:
    """The scores of a search's oracle (seqvae.search.latent.Oracle) in call order, a failed or
    infeasible evaluation as 0: what auc_top_k reads."""
    entries = sorted(oracle.entries.values(), key=lambda e: e.call)
    return _scores([e.score.value for e in entries], None)
