"""Property models on z: a small MLP that predicts molecular properties from a latent code.

Trained here on frozen encodings (the posterior means of a labelled set of molecules), with a
held-out split for its R^2; gradient ascent on z follows its gradient. A head is saved as a
folder of two files, ``head.safetensors`` and ``head.json`` (no pickle)::

    from seqvae import load
    from seqvae.search import fit_property_head
    vae = load("moses-selfies")
    head, report = fit_property_head(vae, smiles, properties=["qed", "plogp"])
    report.r2          # {"qed": 0.8..., "plogp": 0.9...} on the held-out molecules
    head.save("runs/heads/qed-plogp")

Targets are either computed with RDKit from the SMILES (``properties=``, names of
seqvae.search.objectives.NAMES) or given (``targets=``, a DataFrame or a mapping of name to
values, such as the columns of a CSV). Molecules the model cannot encode and rows with a
missing or non-finite target are skipped and counted in the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqvae.errors import ConfigError, DataError
from seqvae.model.heads import HEAD_FORMAT, PropertyHead, r_squared
from seqvae.search.objectives import compute_properties

__all__ = ["HEAD_FORMAT", "HeadReport", "PropertyHead", "compute_properties", "fit_property_head",
           "r_squared"]


@dataclass
class HeadReport:
    """How a head was fitted: held-out R^2 and RMSE per property, and what was skipped."""

    r2: dict[str, float]
    rmse: dict[str, float]
    n_train: int
    n_valid: int
    skipped: dict[str, int] = field(default_factory=dict)
    epochs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"r2": self.r2, "rmse": self.rmse, "n_train": self.n_train,
                "n_valid": self.n_valid, "skipped": self.skipped, "epochs": self.epochs}


def fit_property_head(vae: Any, smiles: Sequence[str], properties: Sequence[str] | None = None,
                      targets: pd.DataFrame | Mapping[str, Sequence[float]] | None = None,
                      hidden: Sequence[int] = (256, 256), dropout: float = 0.1,
                      epochs: int = 100, lr: float = 1e-3, batch_size: int = 256,
                      valid_fraction: float = 0.1, weight_decay: float = 1e-5, seed: int = 0,
                      progress: bool = False) -> tuple[PropertyHead, HeadReport]:
    """Fit a PropertyHead on the posterior means of ``smiles`` (the VAE stays frozen).

    Give ``properties`` (computed with RDKit) or ``targets`` (one column per property). A
    ``valid_fraction`` of the molecules, chosen at random with ``seed``, is held out: the head
    kept is the one of the epoch with the lowest held-out error, and its R^2 is reported."""
    from tqdm.auto import tqdm
    if (properties is None) == (targets is None):
        raise ConfigError("give either properties= (names to compute) or targets= (values)")
    if isinstance(smiles, str):
        raise DataError("pass a list of SMILES, not a single string")
    smiles = list(smiles)
    if properties is not None:
        table = compute_properties(smiles, properties)
    else:
        table = pd.DataFrame(targets).reset_index(drop=True).apply(pd.to_numeric, errors="coerce")
        if len(table) != len(smiles):
            raise DataError(f"{len(smiles)} SMILES but {len(table)} rows of targets")
    if not 0.0 < valid_fraction < 1.0:
        raise ConfigError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    reasons = vae.check(smiles)
    finite = np.isfinite(table.to_numpy(dtype=float)).all(axis=1)
    skipped = {"not encodable": sum(r is not None for r in reasons),
               "missing target": int(sum(r is None and not f for r, f in zip(reasons, finite)))}
    keep = [i for i, (r, f) in enumerate(zip(reasons, finite)) if r is None and f]
    if len(keep) < 10:
        raise DataError(f"only {len(keep)} of {len(smiles)} molecules have a code and finite "
                        f"targets ({skipped}); a property head needs at least 10")
    mu, _ = vae.encode([smiles[i] for i in keep])
    z = mu.float().cpu()
    y = torch.tensor(table.to_numpy(dtype=float)[keep], dtype=torch.float32)

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(keep), generator=generator)
    n_valid = max(1, int(round(valid_fraction * len(keep))))
    valid_idx, train_idx = order[:n_valid], order[n_valid:]
    torch.manual_seed(seed)
    head = PropertyHead(z.size(1), list(table.columns), hidden, dropout)
    head.model_sha256 = vae.weights_sha256
    head.standardise_on(y[train_idx])
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    best_error, best_state, best_epoch = math.inf, None, 0
    for epoch in tqdm(range(epochs), desc="property head", disable=not progress):
        head.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=generator)]
        for start in range(0, len(perm), batch_size):
            batch = perm[start:start + batch_size]
            pred = head.net(z[batch])
            loss = ((pred - (y[batch] - head.mean) / head.std) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():
            error = float((((head.net(z[valid_idx]) - (y[valid_idx] - head.mean) / head.std))
                           ** 2).mean())
        if error < best_error:
            best_error, best_epoch = error, epoch + 1
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
    assert best_state is not None
    head.load_state_dict(best_state)
    head.eval()
    with torch.no_grad():
        pred = head(z[valid_idx]).numpy()
    true = y[valid_idx].numpy()
    r2 = {n: r_squared(pred[:, j], true[:, j]) for j, n in enumerate(head.names)}
    rmse = {n: float(np.sqrt(((pred[:, j] - true[:, j]) ** 2).mean()))
            for j, n in enumerate(head.names)}
    report = HeadReport(r2, rmse, len(train_idx), len(valid_idx), skipped, best_epoch)
    return head, report
