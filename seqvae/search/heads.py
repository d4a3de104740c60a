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

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqvae import jsonio
from seqvae.errors import CheckpointError, ConfigError, DataError

HEAD_FORMAT = "seqvae-property-head"


class PropertyHead(nn.Module):
    """MLP from z (latent_dim) to one value per named property, on standardised targets."""

    def __init__(self, latent_dim: int, names: Sequence[str], hidden: Sequence[int] = (256, 256),
                 dropout: float = 0.1):
        super().__init__()
        if not names:
            raise ConfigError("a property head needs at least one property name")
        self.latent_dim = int(latent_dim)
        self.names = list(names)
        self.hidden = [int(h) for h in hidden]
        self.dropout = float(dropout)
        layers: list[nn.Module] = []
        width = self.latent_dim
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.SiLU(), nn.Dropout(self.dropout)]
            width = h
        layers.append(nn.Linear(width, len(self.names)))
        self.net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.zeros(len(self.names)))
        self.register_buffer("std", torch.ones(len(self.names)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Predicted properties (B, P) in their own units; differentiable in z."""
        return self.net(z) * self.std + self.mean

    @torch.no_grad()
    def standardise_on(self, values: torch.Tensor) -> None:
        """Set the targets' mean and standard deviation from training values (N, P); with a
        single row the standard deviation stays 1."""
        self.mean.copy_(values.mean(0))
        self.std.copy_(values.std(0).clamp_min(1e-6) if len(values) > 1
                       else torch.ones_like(self.std))

    def predict(self, z: torch.Tensor | np.ndarray) -> pd.DataFrame:
        """Predictions for codes z (N, D) as a DataFrame with one column per property."""
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
        if z.dim() != 2 or z.size(1) != self.latent_dim:
            raise DataError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        self.eval()
        with torch.no_grad():
            out = self(z.to(self.mean.device)).cpu().numpy()
        return pd.DataFrame(out, columns=self.names)

    def index(self, name: str) -> int:
        if name not in self.names:
            raise ConfigError(f"the property head predicts {', '.join(self.names)}; not {name!r}")
        return self.names.index(name)

    # -- files ------------------------------------------------------------------------
    def save(self, directory: str | Path, report: "HeadReport | None" = None) -> Path:
        """Write head.safetensors and head.json into directory; returns the directory."""
        from safetensors.torch import save_file
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(out / "head.safetensors"))
        meta = {"format": HEAD_FORMAT, "format_version": 1, "latent_dim": self.latent_dim,
                "names": self.names, "hidden": self.hidden, "dropout": self.dropout}
        if report is not None:
            meta["report"] = report.to_dict()
        (out / "head.json").write_text(jsonio.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> "PropertyHead":
        """Read a head written by save(); a missing or corrupt file is refused with a message."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        folder = Path(directory)
        meta_path, weights_path = folder / "head.json", folder / "head.safetensors"
        for path in (meta_path, weights_path):
            if not path.is_file():
                raise CheckpointError(f"{path} does not exist; a property head folder holds "
                                      "head.json and head.safetensors")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{meta_path} is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != HEAD_FORMAT:
            raise CheckpointError(f"{meta_path} is not a seqvae property head")
        try:
            head = cls(meta["latent_dim"], meta["names"], meta["hidden"], meta["dropout"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{meta_path} lacks or garbles a field ({exc})") from None
        try:
            tensors = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{weights_path} is corrupt or not a safetensors file "
                                  f"({exc})") from None
        try:
            head.load_state_dict(tensors)
        except RuntimeError as exc:
            raise CheckpointError(f"{weights_path} does not fit the head described in "
                                  f"{meta_path}: {str(exc)[:300]}") from None
        return head.eval()


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


def compute_properties(smiles: Sequence[str], names: Sequence[str], progress: bool = False,
                       desc: str = "properties") -> pd.DataFrame:
    """Properties by name (seqvae.search.objectives.NAMES) computed with RDKit; NaN where a
    molecule does not parse or the computation fails."""
    from tqdm.auto import tqdm

    from seqvae.chem import to_mol
    from seqvae.search.objectives import NAMES, get
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ConfigError(f"unknown properties {unknown}; choose from {', '.join(NAMES)}")
    objectives = [get(n) for n in names]
    rows = []
    for s in tqdm(smiles, desc=desc, unit="mol", disable=not progress, mininterval=2.0):
        mol = to_mol(s)  # parsed once for all the properties
        rows.append([score.value if score.ok else math.nan
                     for score in (o.score_mol(mol, s if isinstance(s, str) else "")
                                   for o in objectives)])
    return pd.DataFrame(rows, columns=list(names), dtype=float)


def r_squared(pred: np.ndarray, true: np.ndarray) -> float:
    """Coefficient of determination of predictions of one property (NaN for a constant
    target)."""
    total = float(((true - true.mean()) ** 2).sum())
    return 1.0 - float(((true - pred) ** 2).sum()) / total if total > 0 else math.nan


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
