"""Tests for seqvae.chem: parsing, canonical form, SELFIES conversion, quiet logs, pictures."""

from __future__ import annotations

import pytest
from PIL import Image
from rdkit import Chem

from seqvae.chem import (
    canonical_smiles,
    canonicalize_many,
    is_valid,
    molecule_grid,
    rdkit_quiet,
    selfies_to_smiles,
    smiles_to_selfies,
    to_mol,
)
from seqvae.errors import DataError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- parsing and canonical form ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("smiles", "expected"),
    [
        ("OCC", "CCO"),
        ("C1=CC=CC=C1", "c1ccccc1"),
        ("C(=O)O", "O=CO"),
        ("[NH4+]", "[NH4+]"),
        ("OC(=O)c1ccccc1", "O=C(O)c1ccccc1"),
    ],
)
def test_canonical_smiles_of_known_molecules(smiles: str, expected: str) -> None:
    assert canonical_smiles(smiles) == expected


@pytest.mark.parametrize("bad", ["C1CC", "xyz", "C(C)(C)(C)(C)C", "c1cccc1", "", "   "])
def test_invalid_smiles_give_none_and_false(bad: str) -> None:
    assert to_mol(bad) is None
    assert canonical_smiles(bad) is None
    assert is_valid(bad) is False


def test_to_mol_returns_an_rdkit_mol() -> None:
    mol = to_mol("CCO")
    assert isinstance(mol, Chem.Mol)
    assert mol.GetNumAtoms() == 3


def test_canonicalize_many_keeps_positions_of_invalid_entries() -> None:
    assert canonicalize_many(["OCC", "C1CC", "", "C1=CC=CC=C1"]) == ["CCO", None, None, "c1ccccc1"]


# --- SELFIES -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "smiles", ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "O=[N+]([O-])c1ccccc1", "C1CC1C(F)(F)F"]
)
def test_selfies_round_trip_preserves_the_molecule(smiles: str) -> None:
    encoded = smiles_to_selfies(smiles)
    assert encoded is not None and encoded.startswith("[")
    assert canonical_smiles(selfies_to_smiles(encoded)) == canonical_smiles(smiles)


def test_smiles_to_selfies_known_value_and_failures() -> None:
    assert smiles_to_selfies("CCO") == "[C][C][O]"
    assert smiles_to_selfies("C1CC") is None
    assert smiles_to_selfies("") is None


def test_selfies_to_smiles_failures_give_none() -> None:
    assert selfies_to_smiles("[C][Branch1") is None  # malformed: unclosed bracket
    assert selfies_to_smiles("") is None  # no atoms
    assert selfies_to_smiles("[C][C][O]") == "CCO"


# --- RDKit log ---------------------------------------------------------------------------------


def test_rdkit_quiet_silences_the_log_and_restores_it(capfd: pytest.CaptureFixture[str]) -> None:
    with rdkit_quiet():
        assert Chem.MolFromSmiles("C1CC") is None
    assert capfd.readouterr().err == ""
    assert to_mol("C1CC") is None
    assert capfd.readouterr().err == ""
    Chem.MolFromSmiles("C1CC")  # outside the block RDKit speaks again
    assert "unclosed ring" in capfd.readouterr().err


# --- pictures ----------------------------------------------------------------------------------


def test_molecule_grid_writes_a_png_of_the_valid_molecules(tmp_path) -> None:
    target = tmp_path / "sub" / "grid.png"
    path = molecule_grid(["CCO", "C1CC", "c1ccccc1"], target, legends=["a", "b", "c"], size=100)
    assert path == target
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        assert image.size == (200, 100)  # two valid molecules, one row of 100-pixel cells


def test_molecule_grid_respects_max_mols_and_mols_per_row(tmp_path) -> None:
    smiles = ["C", "CC", "CCC", "CCCC", "CCCCC"]
    path = molecule_grid(smiles, tmp_path / "g.png", mols_per_row=2, size=50, max_mols=3)
    with Image.open(path) as image:
        assert image.size == (100, 100)  # 3 molecules in rows of 2


def test_molecule_grid_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="none of the 2 SMILES is a valid molecule"):
        molecule_grid(["C1CC", "xyz"], tmp_path / "g.png")
    with pytest.raises(DataError, match="2 SMILES but 1 legends"):
        molecule_grid(["C", "CC"], tmp_path / "g.png", legends=["x"])
    assert not (tmp_path / "g.png").exists()
