"""Shared fixtures: a tiny model really trained on a slice of the shipped MOSES subset."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from seqvae.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent


def write_slice(path: Path, start: int, n: int) -> Path:
    """Rows start..start+n of the shipped training subset, as a small CSV."""
    with gzip.open(ROOT / "data" / "moses_train.csv.gz", "rt") as fh:
        lines = fh.read().splitlines()
    path.write_text("\n".join([lines[0]] + lines[1 + start:1 + start + n]) + "\n")
    return path


def tiny_config(out_dir: Path, train: Path, valid: Path, **overrides: object) -> Config:
    """A model small enough to train in seconds on two CPU cores."""
    items = [
        f'train.out_dir="{out_dir}"', f'data.train="{train}"', f'data.valid="{valid}"',
        "model.embedding_dim=16", "model.encoder_hidden=32", "model.latent_dim=8",
        "model.decoder_hidden=64", "train.batch_size=32", "train.max_steps=40",
        "train.max_minutes=0", "train.eval_every=20", "train.checkpoint_every=20",
        "train.log_every=10", "train.eval_samples=50", "train.eval_max_molecules=100",
        "train.kl_warmup_steps=40", "train.kl_warmup_fraction=0", "train.lr=3e-3",
    ]
    items += [f"{k}={v!r}" if not isinstance(v, str) else f'{k}="{v}"' for k, v in overrides.items()]
    return load_config(None, items)


@pytest.fixture(scope="session", autouse=True)
def token_cache(tmp_path_factory) -> Path:
    """Tokenized-data cache of this test session (never the user's ~/.cache)."""
    folder = tmp_path_factory.mktemp("token-cache")
    os.environ["SEQVAE_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> tuple[Path, Path]:
    """400 training and 100 validation molecules from the shipped data."""
    folder = tmp_path_factory.mktemp("data")
    return write_slice(folder / "train.csv", 0, 400), write_slice(folder / "valid.csv", 400, 100)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, small_data) -> Path:
    """A run folder of a tiny SMILES VAE trained for 40 steps."""
    from seqvae.trainer import train
    out = tmp_path_factory.mktemp("run") / "smiles"
    train(tiny_config(out, *small_data), progress=False, log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def model(trained_run):
    """The tiny trained model, loaded through the public API."""
    import seqvae
    return seqvae.load(trained_run)


@pytest.fixture(scope="session")
def selfies_vae():
    """The shipped SELFIES model (every decode is a molecule), loaded once for the optimisers'
    tests."""
    from seqvae import load
    return load("moses-selfies")


def size_reward(mol) -> float:
    """A reward an optimiser learns within a few hundred calls: 1 for no heavy atom, falling
    by 1/30 per heavy atom (0 from 30 on). Linear, so drug-sized molecules (MOSES: about 18 to
    27 heavy atoms) differ by as much per atom as small ones do."""
    return max(0.0, 1.0 - mol.GetNumHeavyAtoms() / 30)
