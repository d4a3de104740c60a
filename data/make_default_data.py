"""Make the shipped default datasets: fixed random subsets of the MOSES benchmark splits.

Run from the repository root:  python data/make_default_data.py
Needs the molsets wheel for the MOSES files (pip install --no-deps molsets==0.3.1); it does
not import `moses`. The output is byte-for-byte reproducible (fixed seed, gzip mtime 0), and
the script prints the sha256 of each file for data/PROVENANCE.md.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
N_TRAIN = 100_000
N_VALID = 10_000
N_TEST = 10_000
OUT_DIR = Path(__file__).resolve().parent


def moses_smiles(split: str) -> list[str]:
    """The SMILES column of a MOSES split, read from the molsets wheel without importing moses."""
    path = importlib.metadata.distribution("molsets").locate_file(
        f"moses/dataset/data/{split}.csv.gz"
    )
    return pd.read_csv(path, dtype=str)["SMILES"].tolist()


def write_csv_gz(path: Path, smiles: list[str]) -> str:
    """Write a one-column SMILES CSV, gzipped with mtime 0 and no file name; return its sha256."""
    # MOSES SMILES hold no comma, quote or newline, so plain lines are valid CSV.
    assert not any(set(s) & set(',"\n\r') for s in smiles)
    text = "SMILES\n" + "".join(s + "\n" for s in smiles)
    with open(path, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0
    ) as handle:
        handle.write(text.encode("utf-8"))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    """Sample the three subsets with one generator seeded 0 and write them next to this file."""
    rng = np.random.default_rng(SEED)
    train = moses_smiles("train")
    order = rng.permutation(len(train))  # first N_TRAIN -> train, next N_VALID -> valid
    test = moses_smiles("test")
    test_rows = rng.choice(len(test), size=N_TEST, replace=False)
    subsets = {
        "moses_train.csv.gz": [train[i] for i in order[:N_TRAIN]],
        "moses_valid.csv.gz": [train[i] for i in order[N_TRAIN : N_TRAIN + N_VALID]],
        "moses_test.csv.gz": [test[i] for i in test_rows],
    }
    for name, smiles in subsets.items():
        digest = write_csv_gz(OUT_DIR / name, smiles)
        print(f"{name}  rows {len(smiles)}  sha256 {digest}")


if __name__ == "__main__":
    main()
