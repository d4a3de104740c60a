"""RDKit and SELFIES helpers: parsing, canonical form, validity, conversion, SA score, pictures.

The chemistry layer: SELFIES is used here alone, and RDKit here, in the molecular objectives
(seqvae/search/objectives.py) and in the molecular metrics (seqvae/metrics/), which build on
these helpers; everything else reaches chemistry through them, imported where it is used, so
text users and the model core never load RDKit. Invalid input becomes None (never an
exception) so bulk paths can count bad rows instead of stopping on the first one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import selfies as sf
from rdkit import Chem, rdBase
from rdkit.Chem import Draw

from seqvae.errors import DataError

__all__ = [
    "rdkit_quiet",
    "to_mol",
    "to_smiles",
    "canonical_smiles",
    "is_valid",
    "smiles_to_selfies",
    "selfies_to_smiles",
    "canonicalize_many",
    "sa_score",
    "molecule_grid",
]


def rdkit_version() -> str:
    """The installed RDKit's version (keys what is cached from its results)."""
    return str(rdBase.rdkitVersion)


@contextmanager
def rdkit_quiet() -> Iterator[None]:
    """Silence RDKit's log inside the block and restore the previous log state after it."""
    # BlockLogs remembers which RDKit loggers were enabled and re-enables exactly those when
    # it is released, so nested blocks and a user's own DisableLog settings survive.
    block = rdBase.BlockLogs()
    try:
        yield
    finally:
        del block


def to_mol(smiles: str) -> Chem.Mol | None:
    """Parse a SMILES string into an RDKit Mol; None if it is empty or does not parse."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    with rdkit_quiet():
        try:
            return Chem.MolFromSmiles(smiles)
        except Exception:  # RDKit raises on some pathological inputs instead of returning None
            return None


def to_smiles(mol: Chem.Mol) -> str:
    """RDKit canonical SMILES of a parsed molecule."""
    return Chem.MolToSmiles(mol)


def canonical_smiles(smiles: str) -> str | None:
    """RDKit canonical SMILES of a molecule; None if the input does not parse."""
    mol = to_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def murcko_scaffold(smiles: str) -> str | None:
    """Canonical SMILES of the Bemis-Murcko scaffold (ring systems and their linkers; "" for
    a molecule without rings); None if the input does not parse."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    mol = to_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(mol))


def is_valid(smiles: str) -> bool:
    """True if the string is non-empty and RDKit parses and sanitises it."""
    return to_mol(smiles) is not None


def smiles_to_selfies(smiles: str) -> str | None:
    """Convert SMILES to SELFIES; None if it is empty or SELFIES cannot encode it."""
    # No RDKit pre-check: the SELFIES encoder parses and checks valences itself, and bulk
    # callers have already parsed the SMILES with RDKit, so a second parse would only cost time.
    smiles = smiles.strip()
    if not smiles:
        return None
    try:
        return sf.encoder(smiles)
    except Exception:  # EncoderError, and on some malformed input (e.g. "N00") IndexError
        return None


def selfies_to_smiles(selfies: str) -> str | None:
    """Convert SELFIES to SMILES; None if it is malformed or decodes to no atoms."""
    try:
        smiles = sf.decoder(selfies)
    except (sf.DecoderError, TypeError):
        return None
    return smiles or None


def random_smiles(smiles: str, seed: int) -> str | None:
    """A random valid SMILES of the molecule (RDKit's MolToRandomSmilesVect, seeded: a seed
    above 0, which RDKit reads as 'not seeded'); None when the input does not parse or has no
    atoms."""
    mol = to_mol(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToRandomSmilesVect(mol, 1, randomSeed=seed)[0]


def canonicalize_many(smiles: Sequence[str]) -> list[str | None]:
    """Canonical SMILES of each input, None where it does not parse; RDKit stays quiet."""
    return [canonical_smiles(s) for s in smiles]


@lru_cache(maxsize=1)
def _sascorer() -> Any:
    from rdkit.Contrib.SA_Score import sascorer  # RDKit's copy of Ertl & Schuffenhauer's scorer
    return sascorer


def sa_score(mol: Chem.Mol) -> float:
    """Synthetic accessibility of a parsed molecule, 1 (easy) to 10 (hard): Ertl &
    Schuffenhauer's scorer as RDKit ships it (the MOSES metric and the search objective)."""
    return float(_sascorer().calculateScore(mol))


def molecule_grid(
    smiles: Sequence[str],
    path: str | Path,
    legends: Sequence[str] | None = None,
    mols_per_row: int = 6,
    size: int = 250,
    max_mols: int = 48,
) -> Path:
    """Draw the valid molecules (at most max_mols) as a PNG grid at path; returns the path."""
    if legends is not None and len(legends) != len(smiles):
        raise DataError(
            f"molecule_grid got {len(smiles)} SMILES but {len(legends)} legends; "
            "pass one legend per SMILES or none"
        )
    mols: list[Chem.Mol] = []
    kept_legends: list[str] = []
    for i, s in enumerate(smiles):
        if len(mols) == max_mols:
            break
        mol = to_mol(s)
        if mol is not None:
            mols.append(mol)
            kept_legends.append("" if legends is None else str(legends[i]))
    if not mols:
        raise DataError(
            f"molecule_grid: none of the {len(smiles)} SMILES is a valid molecule; nothing to draw"
        )
    image = Draw.MolsToGridImage(
        mols, molsPerRow=min(mols_per_row, len(mols)), subImgSize=(size, size), legends=kept_legends
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
