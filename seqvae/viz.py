"""Pictures: training curves from log.csv (molecule grids live in chem.py, beside RDKit)."""

from __future__ import annotations

from pathlib import Path

PANELS = [
    ("loss (nats / sequence)", [("train_loss", "train objective: recon + beta * KL"),
                                ("valid_neg_elbo", "valid -ELBO: recon + KL")]),
    ("reconstruction (nats / sequence)", [("train_recon", "train"), ("valid_recon", "valid")]),
    # a hierarchical model's levels too (model.latent_levels = 2)
    ("KL (nats / sequence)", [("train_kl", "train"), ("valid_kl", "valid"),
                              ("train_kl_1", "train z1"), ("train_kl_2", "train z2"),
                              ("valid_kl_1", "valid z1"), ("valid_kl_2", "valid z2")]),
    ("KL weight", [("kl_weight", "beta")]),
    ("reconstruction accuracy", [("train_token_acc", "train tokens"),
                                 ("valid_token_acc", "valid tokens"),
                                 ("valid_recon_acc", "valid strings (greedy)")]),
    ("prior samples", [("sample_valid", "valid"), ("sample_unique", "unique")]),
]


def _save(fig, path: str | Path, top: float = 1.0) -> Path:
    """Lay out (the panels below ``top``, a share of the height), write as a 100-dpi PNG
    (creating the folder) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=(0, 0, 1, top))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def training_curves(log_csv: str | Path, path: str | Path) -> Path:
    """Plot the figures of a training log.csv against steps into a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    log = pd.read_csv(log_csv)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (title, series) in zip(axes.flat, PANELS):
        for column, label in series:
            if column in log and log[column].notna().any():
                rows = log[["step", column]].dropna()
                ax.plot(rows["step"], rows[column], label=label, marker="." if len(rows) < 30 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=8)
    return _save(fig, path)


PROPERTY_LABELS = {"logP": "logP (Crippen)", "SA": "SA score", "QED": "QED",
                   "weight": "molecular weight"}


def property_histograms(samples: dict, reference: dict, path: str | Path,
                        sample_label: str = "samples", reference_label: str = "test set") -> Path:
    """Histograms of logP, SA, QED and weight: samples against a reference, as densities on
    shared bins, into a PNG. Both arguments map a property name to its values."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [name for name in PROPERTY_LABELS if name in samples and name in reference]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.8))
    for ax, name in zip(np.atleast_1d(axes), names):
        ref = np.asarray(reference[name], dtype=float)
        gen = np.asarray(samples[name], dtype=float)
        both = np.concatenate([ref, gen]) if len(gen) else ref
        bins = np.linspace(*np.percentile(both, [0.1, 99.9]), 50)
        ax.hist(ref, bins=bins, density=True, alpha=0.5, label=f"{reference_label} ({len(ref):,})")
        if len(gen):
            ax.hist(gen, bins=bins, density=True, alpha=0.5, label=f"{sample_label} ({len(gen):,})")
        ax.set_title(PROPERTY_LABELS[name])
    # one legend above the panels: a long model name does not cover the histograms
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, frameon=False)
    return _save(fig, path, top=0.9)


def principal_components(mu, n: int = 2):
    """Latent codes (N, D) projected on their first n principal components (N, n), and the
    share of the variance each component holds (n,); a code of fewer than n dimensions is
    padded with zeros."""
    import numpy as np

    mu = np.asarray(mu, dtype=np.float64)
    centred = mu - mu.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:n].T
    share = (s[:n] ** 2) / max(float((s ** 2).sum()), 1e-300)
    if xy.shape[1] < n:
        xy = np.c_[xy, np.zeros((len(mu), n - xy.shape[1]))]
        share = np.r_[share, np.zeros(n - len(share))]
    return xy, share


def latent_map(mu, values, path: str | Path, value_label: str = "",
               title: str = "posterior means, first two principal components") -> Path:
    """Scatter of latent codes (N, D) on their first two principal components, coloured by
    one value per point (a sentence's length, a molecule's property), into a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    xy, share = principal_components(mu)
    fig, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(values, dtype=float), s=6,
                        cmap="viridis", alpha=0.7)
    fig.colorbar(points, ax=ax, label=value_label)
    ax.set_xlabel(f"PC 1 ({share[0]:.0%} of the variance)")
    ax.set_ylabel(f"PC 2 ({share[1]:.0%})")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def best_so_far(curves: dict, path: str | Path, objective: str = "objective") -> Path:
    """Best objective found against oracle calls, one line per optimiser; curves maps a label
    to a DataFrame with columns call and best (LatentSearch.best_so_far())."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, table in curves.items():
        if len(table) == 0:
            continue
        best = np.maximum.accumulate(table["best"].to_numpy(dtype=float))
        ax.step(table["call"], best, where="post", label=label)
    ax.set_xlabel("oracle calls")
    ax.set_ylabel(f"best {objective} so far")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
