"""User labels (data.label_columns): numeric CSV columns, some rows unlabelled, learnt by the
joint property head of a model really trained on a slice of the shipped MOSES data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen

from conftest import tiny_config
from seqvae import load
from seqvae.data import read_strings, resolve_data
from seqvae.errors import ConfigError, DataError
from seqvae.trainer import train


def labelled_csv(path, start, n, share, seed=0):
    """MOSES molecules with an 'activity' column (their logP) on a share of the rows."""
    smiles = read_strings(resolve_data("default:moses_train"))[start:start + n]
    rng = np.random.default_rng(seed)
    activity = [Crippen.MolLogP(Chem.MolFromSmiles(s)) if rng.random() < share else None
                for s in smiles]
    pd.DataFrame({"SMILES": smiles, "activity": activity}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labels")
    train_csv = labelled_csv(folder / "train.csv", 0, 1500, share=0.3)
    valid_csv = labelled_csv(folder / "valid.csv", 1500, 200, share=1.0)
    out = folder / "run"
    # free bits keep z informative in so short a run; the head's loss weighs enough to shape it
    train(tiny_config(out, train_csv, valid_csv, **{"data.label_columns": "activity",
                                                    "train.max_steps": 400,
                                                    "train.eval_every": 100,
                                                    "train.free_bits": 0.5,
                                                    "train.property_weight": 10.0}),
          progress=False, log=lambda *_: None)
    return out


def test_the_head_learns_a_label_that_most_rows_lack(labelled_run):
    summary = json.loads((labelled_run / "summary.json").read_text())
    assert summary["data"]["train"]["labelled"]["activity"] in range(380, 520)  # ~30% of 1,500
    log = pd.read_csv(labelled_run / "log.csv")
    assert np.isfinite(log["train_loss"].dropna()).all()  # missing labels add nothing, not NaN
    r2 = summary["metrics"]["valid_r2_activity"]  # on the 200 validation molecules
    # measured 0.53 (0.28 after 300 steps); a head that learnt nothing scores about 0
    assert r2 > 0.25
    model = load(labelled_run)
    assert model.property_head.names == ["activity"]
    mu, _ = model.encode(["CCOc1ccccc1"])
    assert list(model.property_head.predict(mu.cpu().numpy()).columns) == ["activity"]


def test_bad_label_columns_are_named(tmp_path, small_data):
    train_csv = labelled_csv(tmp_path / "train.csv", 0, 100, share=0.5)
    frame = pd.read_csv(train_csv)
    frame["activity"] = frame["activity"].astype(object)
    frame.loc[7, "activity"] = "high"
    frame.to_csv(tmp_path / "words.csv", index=False)
    with pytest.raises(DataError, match=r"'activity' holds 1 entries that are not numbers "
                                        r"\(row 8 'high'\)"):
        train(tiny_config(tmp_path / "a", tmp_path / "words.csv", small_data[1],
                          **{"data.label_columns": "activity"}), progress=False,
              log=lambda *_: None)
    frame.loc[:, "activity"] = None
    frame.to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(DataError, match="no usable training row"):
        train(tiny_config(tmp_path / "b", tmp_path / "empty.csv", tmp_path / "empty.csv",
                          **{"data.label_columns": "activity"}), progress=False,
              log=lambda *_: None)
    with pytest.raises(DataError, match=r"no label column\(s\) \['potency'\]"):
        train(tiny_config(tmp_path / "c", train_csv, train_csv,
                          **{"data.label_columns": "potency"}), progress=False,
              log=lambda *_: None)
    with pytest.raises(ConfigError, match="named like a computed property"):
        tiny_config(tmp_path / "d", train_csv, train_csv, **{"data.label_columns": "logp"})


def test_a_label_with_missing_values_as_a_condition(tmp_path):
    """model.conditions naming a data label: rows without it train too, their condition
    predicted from the molecule; the model reads the condition it is given."""
    train_csv = labelled_csv(tmp_path / "train.csv", 0, 3000, share=0.3)
    valid_csv = labelled_csv(tmp_path / "valid.csv", 3000, 200, share=1.0)
    out = tmp_path / "run"
    train(tiny_config(out, train_csv, valid_csv, **{
        "data.label_columns": "activity", "model.conditions": "activity",
        "train.max_steps": 400, "train.eval_every": 200, "train.checkpoint_every": 200,
        "model.decoder_hidden": 128}), progress=False, log=lambda *_: None)
    assert np.isfinite(pd.read_csv(out / "log.csv")["train_loss"].dropna()).all()
    model = load(out)
    assert model.condition_names == ["activity"]
    low, high = model.condition_range()["activity"]
    assert -3 < low < 1 and 4 < high < 8  # logP of the labelled MOSES molecules
    held = pd.read_csv(valid_csv)
    own = held["activity"].to_numpy()
    wrong = np.where(own > 2.5, own - 2.0, own + 2.0)
    smiles = list(held["SMILES"])
    right_nll = model.score(smiles, k=1, triage=False, condition={"activity": own})["recon"]
    wrong_nll = model.score(smiles, k=1, triage=False, condition={"activity": wrong})["recon"]
    gain = float(np.nanmean(wrong_nll - right_nll))
    assert gain > 0.3, gain  # measured 1.48 nats per molecule
    # without a value the condition is predicted from the molecule (finite codes)
    mu, _ = model.encode(smiles[:5])
    assert bool(np.isfinite(mu.cpu().numpy()).all())
