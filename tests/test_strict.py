"""Strict SELFIES sampling (sample(strict=True)): a drawn SELFIES string the SELFIES decoder had
to repair counts as invalid, as a SMILES model's mistakes do."""
import pandas as pd
import pytest
import selfies as sf

import seqvae
from seqvae.errors import DataError


@pytest.fixture(scope="module")
def model():
    return seqvae.load("moses-selfies")


def test_faithful_keeps_the_encoders_strings_and_refuses_repaired_ones(model):
    for smiles in ["CC(=O)Oc1ccccc1C(=O)O", "O=C=O", "c1ccc2[nH]ccc2c1"]:
        written = sf.encoder(smiles)
        assert model._faithful(written) == sf.decoder(written)
    # [=C] after F: F has one free valence, SELFIES lowers the double bond to a single one
    assert sf.decoder("[F][=C]") == "FC"
    assert model._faithful("[F][=C]") == "[F][=C]"
    # symbols after a saturated atom are ignored: [F][F] is the whole molecule
    assert sf.decoder("[F][F][C]") == "FF"
    assert model._faithful("[F][F][C]") == "[F][F][C]"


def test_strict_marks_the_repaired_draws_of_the_same_draws_invalid(model):
    """The same seed draws the same strings; strict=True changes only which count. The
    repaired ones hold their SELFIES string, which decodes to the molecule the free draw
    gave and is not what the SELFIES encoder writes for it."""
    free = model.sample(400, seed=0)
    strict = model.sample(400, seed=0, strict=True)
    assert free["valid"].all()
    assert (strict["NLL"] == free["NLL"]).all()
    kept = strict["valid"]
    assert 0 < (~kept).sum() < len(strict)
    assert (strict["SMILES"][kept] == free["SMILES"][kept]).all()
    for written, molecule in zip(strict["SMILES"][~kept], free["SMILES"][~kept]):
        assert written.startswith("[")
        assert seqvae.chem.canonical_smiles(sf.decoder(written)) == molecule
        assert sf.encoder(sf.decoder(written)) != written
    z = model.model.sample_prior(50, model._generator(1), model.device)
    free, strict = (model.decode(z, greedy=False, seed=1, strict=s) for s in (False, True))
    repaired = [b for a, b in zip(free, strict) if a != b]
    assert repaired and all(b.startswith("[") and sf.decoder(b) == a
                            for a, b in zip(free, strict) if a != b)


def test_strict_with_unique_draws_until_n_remain(model):
    table = model.sample(100, seed=0, strict=True, unique=True)
    assert len(table) == 100 and table["valid"].all() and table["SMILES"].is_unique


def test_valid_keeps_the_valid_draws_in_order_repeats_included():
    """valid=True keeps exactly the valid rows of the same draws, then draws on until n
    remain; attrs count what was drawn and how much of it was valid."""
    lm = seqvae.load("moses-charrnn")
    plain = lm.sample(100, seed=0, batch_size=100)
    kept = lm.sample(100, seed=0, batch_size=100, valid=True)
    assert len(kept) == 100 and kept["valid"].all()
    first = list(plain.loc[plain["valid"], "SMILES"])
    assert 0 < len(first) < 100 and list(kept["SMILES"][:len(first)]) == first
    assert plain.attrs == {"drawn": 100, "valid_drawn": len(first)}
    assert kept.attrs["drawn"] > 100 and kept.attrs["valid_drawn"] >= 100


def test_strict_refused_for_other_models():
    with pytest.raises(DataError, match="SELFIES"):
        seqvae.load("moses-charrnn").sample(5, strict=True)


def test_cli_sample_strict(capsys, tmp_path):
    from seqvae.cli import main

    out = tmp_path / "s.csv"
    assert main(["sample", "moses-selfies", "-n", "60", "-o", str(out), "--seed", "0",
                 "--strict", "--no-progress", "--no-grid"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 60 and 0 < table["valid"].mean() < 1
    assert main(["sample", "moses-charrnn", "-n", "5", "-o", str(out), "--strict",
                 "--no-progress"]) == 2
    assert "SELFIES" in capsys.readouterr().err
