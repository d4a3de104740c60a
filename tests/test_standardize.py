"""Standardisation before a model reads a molecule (seqvae.standardize, data.standardize, the
standardize= option of encode / reconstruct, `seqvae standardize`)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import tiny_config
from seqvae import ConfigError, DataError, load_config, train
from seqvae import data as data_module
from seqvae.cli import main
from seqvae.data import clean_molecules, read_strings
from seqvae.standardize import standardize

PASTED = ["CC(=O)[O-].[Na+]", "C[N+](C)(C)C.[Cl-]", "N[C@@H](CC(=O)O)C(=O)O", "c1ccccc1",
          "xyz", "CCO.O.O", "O=C([O-])c1ccccc1.[NH4+]", "C1=CC=CC=C1"]


def test_salts_charges_and_stereo_by_rdkit_with_what_changed():
    table = standardize(PASTED, keep_stereo=False)
    assert list(table["input"]) == PASTED  # one row per input, in order
    got = dict(zip(table["input"], zip(table["SMILES"], table["changes"], table["changed"])))
    assert got["CC(=O)[O-].[Na+]"] == ("CC(=O)O", "fragments,charges", True)
    assert got["C[N+](C)(C)C.[Cl-]"] == ("C[N+](C)(C)C", "fragments", True)  # no neutral form
    assert got["N[C@@H](CC(=O)O)C(=O)O"] == ("NC(CC(=O)O)C(=O)O", "stereo", True)
    assert got["CCO.O.O"] == ("CCO", "fragments", True)
    assert got["O=C([O-])c1ccccc1.[NH4+]"] == ("O=C(O)c1ccccc1", "fragments,charges", True)
    assert got["c1ccccc1"] == ("c1ccccc1", "", False)
    assert got["C1=CC=CC=C1"][0] == "c1ccccc1" and not got["C1=CC=CC=C1"][2]  # only spelling
    bad = table[table["input"] == "xyz"].iloc[0]
    assert pd.isna(bad["SMILES"]) and bad["reason"] == "invalid"
    kept = standardize(["N[C@@H](CC(=O)O)C(=O)O"])  # stereo kept by default
    assert kept["SMILES"][0] == "N[C@@H](CC(=O)O)C(=O)O" and kept["changes"][0] == ""


def test_data_rows_standardised_and_reported_serial_and_in_a_pool(monkeypatch):
    kept, report = clean_molecules(PASTED * 3, standardize="drop", source="pasted")
    assert report.n_kept == 21 and report.reasons == {"invalid": 3}
    assert "CC(=O)O" in kept and "NC(CC(=O)O)C(=O)O" in kept and not any("." in s for s in kept)
    s = report.to_dict()["standardized"]
    assert s["rows_changed"] == 15  # five of the eight rows, three times
    assert s["changes"] == {"charges": 6, "fragments": 12, "stereo": 3}
    assert s["examples"][0] == {"row": 1, "input": "CC(=O)[O-].[Na+]", "standardized": "CC(=O)O",
                                "changes": ["fragments", "charges"]}
    assert "standardised: 15 rows changed" in report.summary()
    plain_kept, plain = clean_molecules(PASTED)
    assert "standardized" not in plain.to_dict() and "CC(=O)[O-].[Na+]" in plain_kept
    # the same through the process pool (RDKit's objects are built in each worker)
    monkeypatch.setattr(data_module, "_n_workers", lambda n_items: 2)
    monkeypatch.setattr(data_module, "_POOL_CHUNK", 3)
    pooled_kept, pooled = clean_molecules(PASTED * 3, standardize="drop", source="pasted")
    assert pooled_kept == kept and pooled.to_dict() == report.to_dict()


def test_a_run_on_pasted_molecules_standardises_and_caches_apart(tmp_path, small_data):
    train_csv = tmp_path / "train.csv"
    rows = read_strings(small_data[0])[:200]
    salts = [f"{s}.[Na+].[Cl-]" for s in rows[:50]]
    pd.DataFrame({"SMILES": rows + salts}).to_csv(train_csv, index=False)
    settings = {"train.max_steps": 2, "train.eval_samples": 0, "data.standardize": True,
                "data.keep_stereo": False}
    lines: list[str] = []
    summary = train(tiny_config(tmp_path / "std", train_csv, small_data[1], **settings),
                    progress=False, log=lines.append)
    report = summary["data"]["train"]
    assert report["n_kept"] == 250 and report["standardized"]["changes"]["fragments"] == 50
    config = json.loads((tmp_path / "std" / "checkpoint" / "config.json").read_text())["config"]
    assert config["data"]["standardize"] is True and config["data"]["keep_stereo"] is False
    lines.clear()
    plain = train(tiny_config(tmp_path / "plain", train_csv, small_data[1],
                              **{"train.max_steps": 2, "train.eval_samples": 0}),
                  progress=False, log=lines.append)
    assert not any("from the token cache" in line for line in lines)  # another entry
    assert "standardized" not in plain["data"]["train"]


def test_encode_and_reconstruct_read_the_standardised_parent(model):
    pasted = ["CCOC(=O)c1ccccc1.[Na+].[Cl-]", "CC[C@H](C)O"]
    with pytest.raises(DataError, match="cannot be encoded"):
        model.encode(pasted)
    table = model.reconstruct(pasted, standardize=True, keep_stereo=False)
    assert list(table["input"]) == pasted
    assert list(table["standardized"]) == ["CCOC(=O)c1ccccc1", "CCC(C)O"]
    latents = model.latents(pasted, standardize=True, keep_stereo=False)
    assert list(latents["standardized"]) == ["CCOC(=O)c1ccccc1", "CCC(C)O"]
    with pytest.raises(DataError, match="standardize=True"):
        model.encode(pasted, keep_stereo=False)


def test_standardize_verb_and_flags(capsys, tmp_path, trained_run):
    out = tmp_path / "std.csv"
    assert main(["standardize", "--smiles", *PASTED, "--drop-stereo", "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["input", "SMILES", "changed", "changes", "reason"]
    assert len(table) == len(PASTED)
    printed = capsys.readouterr().out
    assert "5 changed" in printed and "1 could not be standardised" in printed
    rec = tmp_path / "rec.csv"
    assert main(["reconstruct", str(trained_run), "--smiles", "CCOC(=O)c1ccccc1.[Na+].[Cl-]",
                 "--drop-stereo", "-o", str(rec)]) == 0
    assert pd.read_csv(rec)["standardized"][0] == "CCOC(=O)c1ccccc1"


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(ConfigError, match="data.standardize = true"):
        load_config(None, ["data.keep_stereo=false"])
    with pytest.raises(ConfigError, match="text"):
        load_config(None, ['data.representation="word"', "data.standardize=true"])
