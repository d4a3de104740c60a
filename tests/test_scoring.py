"""Scores per sequence (TrainedModel.score, seqvae score) and the filters' alert names."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import QED, Crippen, DataStructs, Descriptors, rdFingerprintGenerator

from seqvae import DataError
from seqvae.cli import main
from seqvae.data import read_strings
from seqvae.metrics._features import filter_alert, passes_filters


def test_alert_names_the_rule_a_molecule_breaks():
    for smiles, alert in [("CCO", ""), ("C[N+](C)(C)C", "charged atom"), ("CC[Se]C", "atom Se"),
                          ("O=C1C=CC(=O)C=C1", "PAINS quinone_A"),
                          ("c1ccccc1N=Nc1ccccc1", "MCF10"), ("C1CCCCCCC1", "ring of 8+ atoms")]:
        mol = Chem.MolFromSmiles(smiles)
        assert filter_alert(mol) == alert
        assert passes_filters(mol) == (alert == "")


def test_scores_keep_every_row_in_order_and_agree_with_rdkit(model, small_data):
    train = read_strings(small_data[0])
    inputs = [train[0], "Cc1ccccc1O", "xyz", "", "O=C1C=CC(=O)C=C1", train[5]]
    table = model.score(inputs, k=16, seed=0)
    assert list(table["input"]) == inputs and len(table) == len(inputs)
    bad = table[table["reason"].notna()]
    assert set(bad["input"]) >= {"xyz", ""}
    assert bad[["neg_elbo", "iw_nll", "bits_per_char"]].isna().all().all()
    good = table[table["reason"].isna()]
    assert np.allclose(good["neg_elbo"], good["recon"] + good["kl"])
    assert (good["kl"] >= 0).all() and (good["k"] == 16).all()
    # the importance-weighted bound is tighter than the ELBO's (on average over the rows)
    assert good["iw_nll"].mean() <= good["neg_elbo"].mean() + 1e-6
    chars = good["input"].str.len() + 1
    assert np.allclose(good["bits_per_char"], good["iw_nll"] / math.log(2) / chars)
    again = model.score(inputs, k=16, seed=0)
    pd.testing.assert_frame_equal(table, again)  # a seed gives the same estimates
    # triage: novelty and nearest neighbour against the model's training file
    first = table.iloc[0]
    assert not first["novel"] and first["nn_similarity"] == pytest.approx(1.0)
    phenol = table[table["input"] == "Cc1ccccc1O"].iloc[0]
    mol = Chem.MolFromSmiles("Cc1ccccc1O")
    assert phenol["QED"] == pytest.approx(QED.qed(mol))
    assert phenol["logP"] == pytest.approx(Crippen.MolLogP(mol))
    assert phenol["MW"] == pytest.approx(Descriptors.MolWt(mol))
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fp = generator.GetFingerprint(mol)
    best = max(DataStructs.BulkTanimotoSimilarity(
        fp, [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in train]))
    assert phenol["nn_similarity"] == pytest.approx(best)
    quinone = table[table["input"] == "O=C1C=CC(=O)C=C1"].iloc[0]
    assert not quinone["filters"] and quinone["alert"] == "PAINS quinone_A"
    assert pd.isna(table[table["input"] == "xyz"].iloc[0]["QED"])


def test_a_language_model_scores_exactly_and_a_reference_can_be_given(tmp_path, small_data):
    from conftest import tiny_config
    from seqvae import load, train
    run = tmp_path / "lm"
    train(tiny_config(run, *small_data, **{"model.use_latent": False, "train.max_steps": 5,
                                           "train.eval_samples": 0}), progress=False)
    lm = load(run)
    table = lm.score(["CCO", "c1ccccc1"], k=16, reference=["CCO"])
    assert (table["k"] == 1).all() and (table["kl"] == 0).all()
    assert np.allclose(table["iw_nll"], table["recon"])
    assert list(table["novel"]) == [False, True]
    with pytest.raises(DataError, match="does not exist"):
        lm.score(["CCO"], reference=str(tmp_path / "missing.csv"))
    likelihood_only = lm.score(["CCO"], triage=False)
    assert "QED" not in likelihood_only.columns and "iw_nll" in likelihood_only.columns


def test_score_verb(capsys, tmp_path, trained_run):
    out = tmp_path / "scores.csv"
    code = main(["score", str(trained_run), "--smiles", "CCO", "xyz", "CCOC(=O)C.[Na+].[Cl-]",
                 "--k", "4", "--standardize", "--no-progress", "-o", str(out)])
    assert code == 0
    table = pd.read_csv(out)
    assert len(table) == 3 and table["reason"].notna().sum() == 1  # xyz
    assert table["standardized"][2] == "CCOC(C)=O"
    assert "2 scored, 1 unreadable" in capsys.readouterr().out


def test_anomaly_detector_calibrated_on_held_out_data(model, small_data):
    normal = read_strings(small_data[1])  # the tiny model's validation rows: held out
    detector = model.anomaly_detector(normal[:60], fpr=0.1, k=4)
    values = model.anomaly_scores(normal[:60], k=4)
    assert detector.threshold == pytest.approx(np.quantile(values, 0.9, method="higher"))
    assert detector.to_dict()["n_calibration"] == 60
    odd = ["xyz", "CC[Se]CC", "FC(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)F"]
    flagged = detector.flag(model, normal[60:] + odd)
    assert list(flagged["input"]) == normal[60:] + odd
    assert flagged["anomalous"].iloc[:40].mean() <= 0.3  # near the 10% asked, on 40 rows
    assert flagged["anomalous"].iloc[40:].all()  # unreadable rows and odd molecules
    distance = model.anomaly_scores(["CCO", normal[0]], score="nn_distance", k=1)
    assert 0 <= distance[1] <= distance[0] <= 1
    with pytest.raises(DataError, match="too few"):
        model.anomaly_detector(normal[:10], fpr=0.1, k=1)
    with pytest.raises(DataError, match="score must be"):
        model.anomaly_scores(["CCO"], score="surprise")


def test_samples_and_search_results_can_carry_triage_columns(model, capsys, tmp_path,
                                                             trained_run):
    table = model.sample(30, seed=0, triage=True)
    assert len(table) == 30
    for column in ("SMILES", "NLL", "valid", "novel", "nn_similarity", "QED", "SA", "MW",
                   "logP", "filters", "alert"):
        assert column in table.columns
    valid = table[table["valid"]]
    assert valid["QED"].notna().all() and valid["nn_similarity"].between(0, 1).all()
    assert table.loc[~table["valid"], "QED"].isna().all()
    out = tmp_path / "best.csv"
    # a small budget: the tiny model decodes few valid molecules, and invalid ones cost
    # decoding time but no oracle call
    assert main(["optimize", str(trained_run), "--objective", "qed", "--methods", "prior",
                 "--budget", "3", "--no-pictures", "--no-progress", "--triage",
                 "-o", str(out)]) == 0
    best = pd.read_csv(out)
    assert {"QED", "alert", "nn_similarity"} <= set(best.columns)
    assert np.allclose(best["QED"], best["objective"])  # the objective is QED itself
