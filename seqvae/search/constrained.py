"""Constrained optimisation of many molecules at once: improve each while staying similar to it.

The protocol of JT-VAE (Jin et al. 2018, section 3.3): from each molecule's code, follow the
gradient of a property head on z (all molecules' paths in one batch), decode along the way,
score every new molecule with the true objective, and keep for each molecule and each
similarity threshold delta the best different molecule whose Tanimoto similarity (Morgan
fingerprints) to it is at least delta::

    from seqvae import load
    from seqvae.search import PropertyHead, improve_molecules, summarise_improvements
    vae = load("moses-selfies")
    table = improve_molecules(vae, smiles, "plogp", head=PropertyHead.load("runs/head"))
    summarise_improvements(table)   # per delta: success rate, mean improvement, its std, ...

For one molecule with an oracle budget, LatentSearch with seed_smiles= and an objective
subject to a similarity constraint does the same through any of its optimisers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from seqvae.errors import ConfigError, DataError
from seqvae.search import objectives as O
from seqvae.model.heads import PropertyHead
from seqvae.search.latent import ascend, head_target
from seqvae.search.objectives import Objective, fingerprint

COLUMNS = ["molecule", "seed_value", "delta", "SMILES", "value", "improvement", "similarity",
           "success", "step", "scored"]


def improve_molecules(vae: Any, molecules: Sequence[str], objective: Objective | str,
                      head: PropertyHead | None = None, deltas: Sequence[float] = (0.4, 0.6),
                      steps: int = 80, lr: float = 0.1, prior_weight: float = 0.1,
                      anchor_weight: float = 0.0, decode_every: int = 1, paths: int = 1,
                      noise: float = 0.0, seed: int = 0,
                      head_weights: dict[str, float] | None = None,
                      progress: bool = False) -> pd.DataFrame:
    """Improve each molecule's objective under similarity constraints; see the module notes.

    Returns one row per molecule and delta: the molecule, its own value, delta, the best
    molecule found with similarity >= delta (None if none improved on it), its value,
    improvement, similarity, success (a different molecule with a higher value), the step it
    was found at, and ``scored``, how many distinct molecules the molecule's paths decoded
    and scored (its oracle calls). The head defaults to the model's own (model.properties).
    ``paths`` gradient paths leave each molecule's code, from z0 + noise * N(0, I) (the
    first from z0 itself), with generator seed ``seed``."""
    from tqdm.auto import tqdm

    from seqvae.chem import to_mol, to_smiles

    if isinstance(objective, str):
        objective = O.get(objective)
    if not getattr(vae, "molecular", False):
        raise ConfigError("improve_molecules needs a molecular (SMILES or SELFIES) model")
    if head is None:
        head = getattr(vae, "property_head", None)
    target = head_target(head, objective, head_weights)
    if steps < 0 or decode_every < 1 or paths < 1 or noise < 0:
        raise ConfigError(f"steps must be >= 0, decode_every and paths >= 1, noise >= 0; got "
                          f"{steps}, {decode_every}, {paths}, {noise}")
    bad_delta = [d for d in deltas if not 0.0 <= float(d) <= 1.0]
    if not deltas or bad_delta:
        raise ConfigError(f"deltas are similarity thresholds in [0, 1]; got {list(deltas)}")
    molecules = list(molecules)
    if not molecules:
        raise DataError("improve_molecules: no molecules given")
    mols = [to_mol(s) for s in molecules]
    reasons = vae.check(molecules)
    bad = [f"{s!r}: {'not a valid SMILES' if m is None else r}"
           for s, m, r in zip(molecules, mols, reasons) if m is None or r]
    if bad:
        raise DataError(f"{len(bad)} of the {len(molecules)} molecules cannot be improved "
                        f"(filter them with model.check): " + "; ".join(bad[:3]))
    keys = [to_smiles(m) for m in mols]
    seed_scores = [objective.score_mol(m, k) for m, k in zip(mols, keys)]
    failed = [f"{k!r}: {s.message}" for k, s in zip(keys, seed_scores) if not s.ok]
    if failed:
        raise DataError(f"the objective cannot score {len(failed)} of the molecules, so their "
                        "improvement is undefined: " + "; ".join(failed[:3]))
    seed_values = [s.value for s in seed_scores]
    seed_fps = [fingerprint(m) for m in mols]

    cache: dict[str, float] = {}  # objective values by canonical SMILES, shared by all paths
    seen: list[set[str]] = [{k} for k in keys]
    best: dict[tuple[int, float], dict[str, Any]] = {}
    codes, _ = vae.encode(molecules)
    z0 = codes.float().cpu().repeat_interleave(paths, dim=0)
    owner = [i for i in range(len(molecules)) for _ in range(paths)]  # path -> molecule
    if paths > 1 and noise > 0:
        generator = torch.Generator().manual_seed(seed)
        jitter = noise * torch.randn(z0.shape, generator=generator)
        jitter[::paths] = 0.0
        z0 = z0 + jitter
    with tqdm(total=steps + 1, desc="improve", disable=not progress) as bar:
        for step, z in ascend(z0, target, steps, lr, prior_weight, anchor_weight,
                              None, decode_every):
            for path, text in enumerate(vae.decode(z)):
                i = owner[path]
                mol = to_mol(text)
                if mol is None or mol.GetNumAtoms() == 0:
                    continue
                key = to_smiles(mol)
                if key in seen[i]:
                    continue
                seen[i].add(key)
                if key not in cache:
                    score = objective.score_mol(mol, key)
                    cache[key] = score.value  # -inf: failed or infeasible
                value = cache[key]
                if not math.isfinite(value):
                    continue
                similarity = O.tanimoto(seed_fps[i], fingerprint(mol))
                for delta in deltas:
                    current = best.get((i, delta))
                    if similarity >= delta and (current is None or value > current["value"]):
                        best[(i, delta)] = {"SMILES": key, "value": value,
                                            "similarity": similarity, "step": step}
            bar.update(step + 1 - bar.n)
    rows = []
    for i, molecule in enumerate(molecules):
        for delta in deltas:
            found = best.get((i, delta))
            improvement = found["value"] - seed_values[i] if found else math.nan
            success = found is not None and improvement > 0
            rows.append({"molecule": molecule, "seed_value": seed_values[i], "delta": delta,
                         "SMILES": found["SMILES"] if success else None,
                         "value": found["value"] if success else math.nan,
                         "improvement": improvement if success else math.nan,
                         "similarity": found["similarity"] if success else math.nan,
                         "success": success, "step": found["step"] if success else -1,
                         "scored": len(seen[i]) - 1})
    return pd.DataFrame(rows, columns=COLUMNS)


def summarise_improvements(table: pd.DataFrame) -> pd.DataFrame:
    """Per delta: molecules, success rate, mean and std of the improvement over the successes
    (JT-VAE's report), the mean over all molecules counting a failure as 0, the mean
    similarity of the successes, and the mean molecules scored per molecule."""
    rows = []
    for delta, part in table.groupby("delta", sort=True):
        ok = part[part["success"]]
        gains = ok["improvement"].to_numpy(dtype=float)
        rows.append({"delta": float(delta), "molecules": len(part),
                     "success_rate": len(ok) / len(part) if len(part) else math.nan,
                     "improvement_mean": float(gains.mean()) if len(ok) else math.nan,
                     "improvement_std": float(gains.std()) if len(ok) else math.nan,
                     "improvement_mean_all": float(gains.sum() / len(part)) if len(part) else math.nan,
                     "similarity_mean": float(ok["similarity"].mean()) if len(ok) else math.nan,
                     "scored_mean": float(part["scored"].mean())})
    return pd.DataFrame(rows)


__all__ = ["improve_molecules", "summarise_improvements", "COLUMNS"]

