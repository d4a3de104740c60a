"""Property heads: a small MLP from a latent code z to molecular properties.

Part of the model core (a model trained with ``model.properties`` carries one, saved in its
checkpoint); fitted on frozen codes by ``seqvae.search.fit_property_head``. A head saved on
its own is a folder of two files, ``head.safetensors`` and ``head.json`` (no pickle).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import jsonio
from ..errors import CheckpointError, ConfigError, DataError

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
        # SHA-256 of the model.safetensors whose codes the head was fitted to (None: unknown,
        # as for a head saved before seqvae recorded it); LatentSearch refuses another model's
        self.model_sha256: str | None = None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Predicted properties (B, P) in their own units; differentiable in z."""
        return self.net(z) * self.std + self.mean

    @torch.no_grad()
    def standardise_on(self, values: torch.Tensor) -> None:
        """Set the targets' mean and standard deviation from training values (N, P), missing
        ones (NaN) left out; with fewer than two values the standard deviation stays 1."""
        values = values.float()
        known = torch.isfinite(values)
        count = known.sum(0)
        mean = torch.where(known, values, 0.0).sum(0) / count.clamp(min=1)
        spread = torch.where(known, values - mean, 0.0).pow(2).sum(0) / (count - 1).clamp(min=1)
        self.mean.copy_(mean)
        self.std.copy_(torch.where(count > 1, spread.sqrt().clamp_min(1e-6),
                                   torch.ones_like(self.std)))

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
    def save(self, directory: str | Path, report: Any = None) -> Path:
        """Write head.safetensors and head.json into directory; returns the directory."""
        from safetensors.torch import save_file
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(out / "head.safetensors"))
        meta = {"format": HEAD_FORMAT, "format_version": 1, "latent_dim": self.latent_dim,
                "names": self.names, "hidden": self.hidden, "dropout": self.dropout,
                "model_sha256": self.model_sha256}
        if report is not None:
            meta["report"] = report.to_dict()  # a seqvae.search.HeadReport
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
            head.model_sha256 = meta.get("model_sha256")
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


def r_squared(pred: np.ndarray, true: np.ndarray) -> float:
    """Coefficient of determination of predictions of one property over the rows whose
    target is known (NaN for a constant or missing target)."""
    known = np.isfinite(true)
    pred, true = pred[known], true[known]
    if len(true) < 2:
        return math.nan
    total = float(((true - true.mean()) ** 2).sum())
    return 1.0 - float(((true - pred) ** 2).sum()) / total if total > 0 else math.nan
