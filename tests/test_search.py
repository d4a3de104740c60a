"""Latent property search: objectives, property heads, the three optimisers, the CLI verb.

The search tests run the real shipped SELFIES model (every decode is a molecule) and RDKit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import Crippen, Descriptors, QED, rdFingerprintGenerator
from rdkit.Contrib.SA_Score import sascorer

from seqvae import load
from seqvae.cli import main
from seqvae.data import read_strings, resolve_data
from seqvae.errors import CheckpointError, ConfigError, DataError
from seqvae.search import LatentSearch, PropertyHead, fit_property_head, objectives as O

PHENETOLE = "CCOc1ccccc1"
MACROCYCLE = "C1CCCCCCCCC1"  # a ten-membered ring: ring penalty 4


@pytest.fixture(scope="module")
def vae():
    return load("moses-selfies")


@pytest.fixture(scope="module")
def molecules():
    return [s for s in read_strings(resolve_data("default:moses_test"))][:400]


@pytest.fixture(scope="module")
def head(vae, molecules):
    return fit_property_head(vae, molecules, properties=["qed", "logp"], epochs=40, seed=0)


# -- objectives ---------------------------------------------------------------------------
def test_builtin_objectives_are_rdkit_values():
    mol = Chem.MolFromSmiles(PHENETOLE)
    assert O.qed()(PHENETOLE).value == pytest.approx(QED.qed(mol))
    assert O.logp()(PHENETOLE).value == pytest.approx(Crippen.MolLogP(mol))
    assert O.sa()(PHENETOLE).value == pytest.approx(sascorer.calculateScore(mol))
    assert O.molecular_weight()(PHENETOLE).value == pytest.approx(Descriptors.MolWt(mol))
    assert O.tpsa()(PHENETOLE).value == pytest.approx(Descriptors.TPSA(mol))
    assert O.get("atoms")(PHENETOLE).value == 9  # C8H10O: nine heavy atoms
    small = O.penalized_logp().subject_to(O.heavy_atoms(), maximum=8)
    assert small(PHENETOLE).status == "infeasible" and "atoms = 9" in small(PHENETOLE).message
    assert small("CCO").ok


def test_penalized_logp_both_definitions():
    mol = Chem.MolFromSmiles(MACROCYCLE)
    log_p, sa = Crippen.MolLogP(mol), sascorer.calculateScore(mol)
    assert O.penalized_logp(normalized=False)(MACROCYCLE).value == pytest.approx(log_p - sa - 4)
    z_scored = ((log_p - 2.4570953396190123) / 1.434324401111988
                + (-sa + 3.0525811293166134) / 0.8335207024513095
                + (-4 + 0.0485696876403053) / 0.2860212110245455)
    assert O.penalized_logp()(MACROCYCLE).value == pytest.approx(z_scored)
    # no ring larger than six: no ring penalty
    benzene = Chem.MolFromSmiles("c1ccccc1")
    raw = Crippen.MolLogP(benzene) - sascorer.calculateScore(benzene)
    assert O.penalized_logp(normalized=False)("c1ccccc1").value == pytest.approx(raw)


def test_similarity_is_morgan_tanimoto():
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    a, b = (generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in (PHENETOLE, "CCOc1ccccc1C"))
    objective = O.similarity(PHENETOLE)
    assert objective("c1ccccc1OCC").value == pytest.approx(1.0)  # same molecule, other spelling
    assert objective("CCOc1ccccc1C").value == pytest.approx(DataStructs.TanimotoSimilarity(a, b))
    with pytest.raises(DataError, match="not a valid SMILES"):
        O.similarity("C1CC")


def test_bad_molecules_and_failing_functions_get_a_status_not_an_exception():
    assert O.qed()("C1CC").status == "invalid" and O.qed()("C1CC").value == -math.inf
    assert O.qed()("").status == "invalid"

    def fragile(smiles):
        if "N" in smiles:
            raise RuntimeError("docking crashed")
        return float("nan") if "O" in smiles else len(smiles)

    objective = O.custom(fragile, name="dock")
    failed = objective("CCN")
    assert failed.status == "failed" and "docking crashed" in failed.message
    assert objective("CCO").status == "failed" and "nan" in objective("CCO").message
    assert objective("CCC").value == 3.0 and objective("CCC").ok
    assert O.custom(lambda s: "high")("C").status == "failed"


def test_weighted_sums_and_constraints():
    mol = Chem.MolFromSmiles(PHENETOLE)
    goal = O.penalized_logp() + 0.5 * O.qed() - 0.01 * O.molecular_weight()
    expected = (O.penalized_logp()(PHENETOLE).value + 0.5 * QED.qed(mol)
                - 0.01 * Descriptors.MolWt(mol))
    assert goal(PHENETOLE).value == pytest.approx(expected)
    assert goal.name == "plogp + 0.5*qed - 0.01*mw"
    assert O.get("plogp + 0.5*qed - 1e-2*mw")(PHENETOLE).value == pytest.approx(expected)
    assert O.weighted_sum([(1, O.penalized_logp()), (0.5, O.qed()),
                           (-0.01, O.molecular_weight())])(PHENETOLE).value == pytest.approx(expected)

    constrained = O.logp().subject_to(O.similarity(PHENETOLE), minimum=0.4)
    assert constrained(PHENETOLE).ok
    far = constrained("CCCCCCCCCC")
    assert far.status == "infeasible" and "similarity" in far.message
    assert constrained.seed_smiles == PHENETOLE
    window = O.qed().subject_to(O.molecular_weight(), minimum=100, maximum=200)
    assert window(PHENETOLE).ok and window("C").status == "infeasible"


@pytest.mark.parametrize("text", ["", "qed +", "foo", "qed qed", "2*", "similarity"])
def test_objective_text_errors(text):
    with pytest.raises(ConfigError):
        O.get(text)


# -- property heads ------------------------------------------------------------------------
def test_property_head_learns_and_round_trips(vae, molecules, head, tmp_path):
    model, report = head
    assert report.n_train + report.n_valid == len(molecules)
    assert report.r2["logp"] > 0.2  # better than predicting the mean on held-out molecules
    assert set(report.r2) == {"qed", "logp"}
    z, _ = vae.encode(molecules[:20])
    model.save(tmp_path / "head", report)
    again = PropertyHead.load(tmp_path / "head")
    pd.testing.assert_frame_equal(model.predict(z), again.predict(z))
    (tmp_path / "head" / "head.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="corrupt"):
        PropertyHead.load(tmp_path / "head")
    with pytest.raises(CheckpointError, match="does not exist"):
        PropertyHead.load(tmp_path / "nowhere")


def test_property_head_skips_and_counts_bad_rows(vae, molecules):
    smiles = molecules[:60] + ["C1CC", ""]
    targets = pd.DataFrame({"y": [float(len(s)) for s in molecules[:60]] + [1.0, 2.0]})
    targets.loc[3, "y"] = float("nan")
    _, report = fit_property_head(vae, smiles, targets=targets, epochs=3)
    assert report.skipped == {"not encodable": 2, "missing target": 1}
    assert report.n_train + report.n_valid == 59
    with pytest.raises(ConfigError, match="either"):
        fit_property_head(vae, smiles)


# -- the search --------------------------------------------------------------------------
def _check_results(table: pd.DataFrame, budget: int) -> None:
    assert len(table) <= budget
    assert table["SMILES"].is_unique
    assert all(Chem.MolFromSmiles(s) is not None for s in table["SMILES"])
    assert table["objective"].is_monotonic_decreasing
    assert np.isfinite(table["objective"]).all()
    assert table["call"].between(1, budget).all()


def test_prior_baseline_spends_exactly_its_budget(vae):
    search = LatentSearch(vae, O.qed())
    table = search.run("prior", budget=40, seed=1, batch_size=16)
    assert search.oracle.calls == 40
    _check_results(table, 40)
    # the objective column is the true QED of each molecule, and z decodes to it
    assert table["objective"].to_numpy() == pytest.approx(table["qed"].to_numpy())
    best = table.iloc[0]
    assert vae.decode(best["z"][None, :])[0] is not None
    curve = search.best_so_far()
    assert len(curve) == 40 and curve["best"].is_monotonic_increasing
    assert curve["best"].iloc[-1] == pytest.approx(table["objective"].max())


def test_gradient_ascent_climbs_the_head(vae, head):
    model, _ = head
    search = LatentSearch(vae, O.logp(), head=model)
    table = search.run("gradient", budget=60, seed=0, n_starts=8, steps=30, lr=0.1,
                       decode_every=10)
    _check_results(table, 60)
    assert set(table["method"]) == {"gradient"}
    first = table[table["step"] == 0]["logp"].mean()
    later = table[table["step"] >= 20]["logp"].mean()
    assert later > first  # the true logP of what it decodes rises along the paths


def test_gradient_ascent_needs_a_matching_head(vae, head):
    with pytest.raises(ConfigError, match="property head"):
        LatentSearch(vae, O.qed()).run("gradient", budget=10)
    with pytest.raises(ConfigError, match="predicts qed, logp"):
        LatentSearch(vae, O.penalized_logp(), head=head[0]).run("gradient", budget=10)


def test_a_head_is_bound_to_the_model_it_was_fitted_to(vae, head, tmp_path):
    fitted = head[0]
    assert fitted.model_sha256 == vae.weights_sha256 is not None
    fitted.save(tmp_path / "head")
    assert PropertyHead.load(tmp_path / "head").model_sha256 == vae.weights_sha256
    other = load("moses-smiles")  # the same latent size, other weights
    assert other.latent_dim == vae.latent_dim
    with pytest.raises(ConfigError, match="fitted to the codes of another model"):
        LatentSearch(other, O.qed(), head=PropertyHead.load(tmp_path / "head"))
    LatentSearch(vae, O.qed(), head=PropertyHead.load(tmp_path / "head"))  # its own model


def test_bayesian_optimisation_runs_on_budget(vae):
    search = LatentSearch(vae, O.qed())
    table = search.run("bo", budget=18, seed=0, n_init=8, q=5, num_restarts=2,
                       raw_samples=32)
    assert search.oracle.calls == 18
    _check_results(table, 18)
    assert (table["step"] > 0).any()  # molecules proposed by the acquisition, not only the start


def test_one_optimiser_hands_over_to_another(vae, head):
    search = LatentSearch(vae, O.logp(), head=head[0])
    with pytest.raises(DataError, match="found no molecule yet"):
        search.run("bo", budget=10, start="best")
    search.run("gradient", budget=15, seed=0, n_starts=5, steps=10, decode_every=5)
    best_codes = np.stack(search.results().head(5)["z"].to_list())
    table = search.run("bo", budget=30, seed=0, start="best", n_init=5, q=5, num_restarts=2,
                       raw_samples=32)
    assert search.oracle.calls == 30 and set(table["method"]) == {"gradient", "bo"}
    # BO's first points lie around the best codes gradient ascent found (jittered by 0.1 *
    # N(0, I): a distance near 0.8 in 64 dimensions), not at prior draws (about 8 away)
    first = table[(table["method"] == "bo") & (table["step"] == 0)]
    assert len(first)
    for z in first["z"]:
        assert np.linalg.norm(best_codes - z, axis=1).min() < 2.0


def test_seed_molecule_constrained_search(vae):
    seed = "CC(C)Cc1ccc(C(C)C(=O)O)cc1"  # ibuprofen
    objective = O.logp().subject_to(O.similarity(seed), minimum=0.4)
    search = LatentSearch(vae, objective)
    table = search.run("prior", budget=30, seed=0, seed_smiles=seed, sigma=0.3)
    assert "similarity" in table.columns
    assert (table["similarity"] >= 0.4).all()
    failures = search.failures()
    assert (failures["status"] == "infeasible").all()
    assert len(table) + len(failures) == search.oracle.calls


def test_failing_objective_is_recorded_and_the_search_goes_on(vae):
    def picky(smiles):
        if "N" in smiles:
            raise ValueError("no nitrogen, please")
        return -len(smiles)

    search = LatentSearch(vae, O.custom(picky))
    table = search.run("prior", budget=30, seed=0)
    assert search.oracle.calls == 30
    failures = search.failures()
    assert len(failures) > 0 and (failures["status"] == "failed").all()
    assert failures["message"].str.contains("no nitrogen").all()
    assert not table["SMILES"].str.contains("N").any()


def test_bad_requests_get_clear_errors(vae):
    search = LatentSearch(vae, O.qed())
    with pytest.raises(ConfigError, match="budget"):
        search.run("prior", budget=0)
    with pytest.raises(ConfigError, match="unknown method"):
        search.run("anneal", budget=5)
    with pytest.raises(DataError, match="seed molecule"):
        search.run("prior", budget=5, seed_smiles="C1CC")
    with pytest.raises(ConfigError, match="Objective"):
        LatentSearch(vae, lambda s: 1.0)
    assert search.oracle.calls == 0


def test_a_logged_search_resumes(vae, tmp_path):
    log = tmp_path / "search.csv"
    first = LatentSearch(vae, O.qed(), log=log)
    first.run("prior", budget=20, seed=0)
    assert len(pd.read_csv(log)) == 20
    second = LatentSearch(vae, O.qed(), log=log)
    assert second.oracle.calls == 20
    pd.testing.assert_frame_equal(second.results().drop(columns="z"),
                                  first.results().drop(columns="z"), check_exact=False)
    table = second.run("prior", budget=35, seed=1)
    assert second.oracle.calls == 35 and len(pd.read_csv(log)) == 35
    assert table["call"].is_unique and set(table["run"]) == {0, 1}
    curve = second.best_so_far()  # the earlier calls, read back from the log, included
    assert curve["call"].tolist() == list(range(1, 36)) and curve["best"].is_monotonic_increasing
    log.write_text("garbage,\n\x00\x01")
    with pytest.raises(DataError, match="search log"):
        LatentSearch(vae, O.qed(), log=log)


def test_sampling_near_the_best_codes(vae, head):
    search = LatentSearch(vae, O.qed(), head=head[0])
    search.run("prior", budget=20, seed=0)
    before = set(search.results()["SMILES"])
    near = search.sample_near(n=40, top=3, sigma=0.3, seed=0)
    assert len(near) > 0 and not (set(near["SMILES"]) & before)
    assert near["SMILES"].is_unique
    filtered = search.sample_near(n=40, top=3, seed=1, head_filter=float("inf"))
    assert filtered.empty  # no code is predicted to reach infinity


def test_optimize_cli_writes_table_and_pictures(tmp_path, capsys):
    out = tmp_path / "best.csv"
    code = main(["optimize", "moses-selfies", "--objective", "qed", "--budget", "15",
                 "--methods", "prior,gradient", "--head-size", "200", "-o", str(out),
                 "--max-atoms", "22", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out)
    assert {"SMILES", "objective", "qed", "sa", "atoms", "method", "call", "z"} <= set(table.columns)
    assert (table["atoms"] <= 22).all()  # the constraint: larger molecules are infeasible
    assert set(table["method"]) <= {"prior", "gradient"} and table["SMILES"].is_unique
    assert len(table["z"].iloc[0].split()) == 64
    assert (tmp_path / "best.png").stat().st_size > 0
    assert (tmp_path / "best_curve.png").stat().st_size > 0
    assert main(["optimize", "moses-selfies", "--objective", "qed", "--budget", "0",
                 "-o", str(out), "--methods", "prior"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(["optimize", "moses-selfies", "--objective", "qed", "--seed-smiles", "C1CC",
                 "--methods", "prior", "-o", str(out)]) == 2


# -- a property head trained jointly with the VAE ------------------------------------------
def test_joint_property_head_trains_and_serves_the_search(tmp_path, small_data, capsys):
    from seqvae.trainer import train
    from conftest import tiny_config

    out = tmp_path / "joint"
    config = tiny_config(out, *small_data, **{"model.properties": "qed,logp",
                                              "train.max_steps": 60, "train.eval_every": 30})
    summary = train(config, progress=False, log=lambda *_: None)
    assert {"valid_r2_qed", "valid_r2_logp", "valid_property_r2"} <= set(summary["metrics"])
    log = pd.read_csv(out / "log.csv")
    mse = log["train_property_mse"].dropna()
    assert len(mse) >= 3 and mse.iloc[-1] < mse.iloc[0]  # the head learns
    assert log["valid_property_r2"].notna().any()
    trained = load(out)
    head = trained.property_head
    assert head is not None and head.names == ["qed", "logp"]
    assert 0.3 < float(head.mean[0]) < 1.0  # standardised with the training molecules' QED
    search = LatentSearch(trained, O.logp())  # the model's own head, found without asking
    search.run("gradient", budget=10, n_starts=4, steps=10, decode_every=5, max_restarts=3)
    assert search.oracle.calls <= 10
    # and the command line uses it instead of fitting another head
    assert main(["optimize", str(out), "--objective", "logp", "--methods", "gradient",
                 "--budget", "10", "-o", str(tmp_path / "best.csv"), "--no-progress",
                 "--no-pictures"]) == 0
    printed = capsys.readouterr().out
    assert "using the model's own property head (qed, logp)" in printed
    assert "fitting a property head" not in printed


def test_property_names_are_checked():
    from seqvae.config import PROPERTY_NAMES, load_config
    assert tuple(O.NAMES) == PROPERTY_NAMES
    with pytest.raises(ConfigError, match="unknown"):
        load_config(None, ['model.properties="qed,potency"'])
    with pytest.raises(ConfigError, match="text model"):
        load_config(None, ['model.properties="qed"', 'data.representation="word"'])


def test_best_of_a_dataset_as_starting_points(vae, molecules):
    search = LatentSearch(vae, O.qed())
    best = search.best_of(molecules[:100] + ["C1CC"], n=5)
    qeds = sorted((O.qed()(s).value for s in molecules[:100]), reverse=True)
    assert [O.qed()(s).value for s in best] == pytest.approx(qeds[:5])
    assert search.oracle.calls == 0  # a dataset's known scores cost no oracle calls
    table = search.run("prior", budget=10, start=best, sigma=0.2)
    assert search.oracle.calls == 10 and len(table) <= 10


# -- many molecules at once (JT-VAE's constrained optimisation) ---------------------------
def test_improve_molecules_keeps_similarity_and_improves(vae, head, molecules):
    from seqvae.search import improve_molecules, summarise_improvements
    model, _ = head
    seeds = molecules[:12]
    table = improve_molecules(vae, seeds, "logp", head=model, deltas=(0.4, 0.6), steps=15,
                              lr=0.1)
    assert len(table) == 24 and set(table["delta"]) == {0.4, 0.6}
    ok = table[table["success"]]
    assert len(ok) > 0
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    for row in ok.itertuples():
        mol, seed = Chem.MolFromSmiles(row.SMILES), Chem.MolFromSmiles(row.molecule)
        assert row.value == pytest.approx(Crippen.MolLogP(mol))  # the true objective
        assert row.improvement == pytest.approx(row.value - Crippen.MolLogP(seed))
        assert row.improvement > 0
        similarity = DataStructs.TanimotoSimilarity(generator.GetFingerprint(seed),
                                                    generator.GetFingerprint(mol))
        assert row.similarity == pytest.approx(similarity) and similarity >= row.delta
        assert Chem.MolToSmiles(seed) != row.SMILES
    failed = table[~table["success"]]
    assert failed["SMILES"].isna().all() and failed["improvement"].isna().all()
    # a looser threshold never does worse for the same molecule
    wide = table[table["delta"] == 0.4].set_index("molecule")["improvement"].fillna(0)
    tight = table[table["delta"] == 0.6].set_index("molecule")["improvement"].fillna(0)
    assert (wide >= tight - 1e-9).all()
    summary = summarise_improvements(table).set_index("delta")
    assert summary.loc[0.4, "success_rate"] == pytest.approx(
        table[table["delta"] == 0.4]["success"].mean())
    assert summary.loc[0.4, "improvement_mean"] == pytest.approx(
        ok[ok["delta"] == 0.4]["improvement"].mean())


def test_improve_molecules_bad_input(vae, head):
    from seqvae.search import improve_molecules
    model, _ = head
    with pytest.raises(DataError, match="'C1CC': not a valid SMILES"):
        improve_molecules(vae, [PHENETOLE, "C1CC"], "logp", head=model, steps=1)
    with pytest.raises(DataError, match="no molecules"):
        improve_molecules(vae, [], "logp", head=model, steps=1)
    with pytest.raises(ConfigError, match="similarity thresholds"):
        improve_molecules(vae, [PHENETOLE], "logp", head=model, deltas=(1.4,), steps=1)
    with pytest.raises(ConfigError, match="property head"):
        improve_molecules(vae, [PHENETOLE], "logp", steps=1)


def test_optimize_cli_runs_a_hand_over_with_options(tmp_path, capsys):
    out = tmp_path / "best.csv"
    code = main(["optimize", "moses-selfies", "--objective", "pmo:qed", "--budget", "60",
                 "--methods", "prior:30+ga", "--option", "ga.population=10",
                 "--option", "ga.offspring=10", "--option", "prior.batch_size=15",
                 "-o", str(out), "--log", str(tmp_path / "logs"), "--no-pictures",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out)
    assert set(table["method"]) == {"prior", "ga"} and len(table) <= 60
    assert table[table["method"] == "ga"]["call"].min() > 30
    assert len(pd.read_csv(tmp_path / "logs" / "prior-30_then_ga.csv")) == 60
    for bad, message in ((["--option", "ga.population"], "METHOD.NAME=VALUE"),
                         (["--option", "anneal.steps=3"], "unknown method 'anneal'"),
                         (["--option", "bo.q=5"], "options given for bo"),
                         (["--option", "ga.populaton=5"], "has no option 'populaton'")):
        assert main(["optimize", "moses-selfies", "--objective", "qed", "--budget", "10",
                     "--methods", "prior:5+ga", "-o", str(out), "--no-pictures",
                     "--no-progress"] + bad) == 2
        assert message in capsys.readouterr().err
