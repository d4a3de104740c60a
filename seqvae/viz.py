"""Pictures: training curves from log.csv (molecule grids live in chem.py, beside RDKit)."""

from __future__ import annotations

from pathlib import Path

PANELS = [
    ("loss (nats / sequence)", [("train_loss", "train objective: recon + beta * KL"),
                                ("valid_neg_elbo", "valid -ELBO: recon + KL")]),
    ("reconstruction (nats / sequence)", [("train_recon", "train"), ("valid_recon", "valid")]),
    ("KL (nats / sequence)", [("train_kl", "train"), ("valid_kl", "valid")]),
    ("KL weight", [("kl_weight", "beta")]),
    ("reconstruction accuracy", [("train_token_acc", "train tokens"),
                                 ("valid_token_acc", "valid tokens"),
                                 ("valid_recon_acc", "valid strings (greedy)")]),
    ("prior samples", [("sample_valid", "valid"), ("sample_unique", "unique")]),
]


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
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
