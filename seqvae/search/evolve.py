"""A genetic algorithm on latent codes: evolution in z, decoding each child to a molecule.

The population is the ``population`` best codes this search has scored (each decoded to a
distinct molecule, so a code is kept once per molecule). Each generation draws ``offspring``
children: two parents chosen with probability falling with their rank (weight 1 / (k + rank),
k = population / 10, the rank-based selection of Tripp et al.'s weighted retraining, NeurIPS
2020, here for parents), each coordinate taken from either parent at random (uniform
crossover), then Gaussian noise of standard deviation ``mutation`` added to every coordinate.
Children are decoded greedily and scored; the population becomes the best of old and new. The
first generation decodes ``population`` codes from the prior (or around the starting codes,
``start="best"`` handing over from another optimiser). The search stops when its budget is
spent, or after ``patience`` generations in a row that spend no call (every child decodes to a
molecule already scored).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def latent_ga(search: Any, budget: int, run: int, generator: torch.Generator, start: Any,
              seed_smiles: str | None, population: int = 100, offspring: int = 100,
              mutation: float = 0.2, start_sigma: float = 0.3, patience: int = 20,
              max_generations: int = 10_000) -> dict[str, Any]:
    """Evolve codes until ``budget`` oracle calls of the search are spent; see the module's
    documentation. Returns what the run did."""
    dim = search.vae.latent_dim
    prior_start = isinstance(start, str) and start == "prior" and seed_smiles is None
    if prior_start:
        z = search.vae.model.sample_prior(population, generator)
    else:
        z = search.start_codes(start, population, generator, seed_smiles)
        z = z + start_sigma * torch.randn(z.shape, generator=generator)
    bar = search._bar(budget, "ga")
    pool: dict[str, tuple[float, np.ndarray]] = {}  # molecule -> (score, the code found here)
    idle = generations = 0
    for generation in range(max_generations):
        if search.oracle.calls >= budget:
            break
        before = search.oracle.calls
        values = search._evaluate(z, "ga", run, generation, budget)
        bar.update(search.oracle.calls - before)
        idle = 0 if search.oracle.calls > before else idle + 1
        generations = generation + 1
        keys = search.oracle.last_keys
        for i, key in enumerate(keys):
            if key is not None and np.isfinite(values[i]) and (
                    key not in pool or values[i] > pool[key][0]):
                pool[key] = (float(values[i]), z[i].numpy().copy())
        if idle >= patience:
            break
        if not pool:  # nothing valid yet: draw again
            z = search.vae.model.sample_prior(population, generator)
            continue
        ranked = sorted(pool.values(), key=lambda item: -item[0])[:population]
        codes = torch.as_tensor(np.stack([code for _, code in ranked]))
        weights = 1.0 / (max(population / 10, 1.0) + torch.arange(len(ranked), dtype=torch.float))
        parents = torch.multinomial(weights / weights.sum(), 2 * offspring, replacement=True,
                                    generator=generator).view(offspring, 2)
        mask = torch.rand(offspring, dim, generator=generator) < 0.5
        z = torch.where(mask, codes[parents[:, 0]], codes[parents[:, 1]])
        z = z + mutation * torch.randn(z.shape, generator=generator)
    bar.close()
    return {"generations": generations, "calls": search.oracle.calls,
            "stopped": "budget spent" if search.oracle.calls >= budget else
            f"{patience} generations in a row spent no call", "population": min(len(pool),
                                                                                population)}
