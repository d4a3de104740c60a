"""The 20 RDKit-only PMO oracles (seqvae.search.pmo) equal guacamol 0.5.5's scoring functions.

The reference objectives are the benchmarks of guacamol's own suites, built as PMO (through
TDC) uses them: ``goal_directed_suite_v2`` for 18 tasks (the rediscoveries with threshold 1.0,
the albuterol and mestranol similarities with 0.75, and ``isomers_c9h10n2o2pf2cl``,
``median_camphor_menthol``, ``median_tadalafil_sildenafil``, ``hard_osimertinib``,
``hard_fexofenadine``, ``ranolazine_mpo``, ``perindopril_rings``, ``amlodipine_rings``,
``sitagliptin_replacement``, ``zaleplon_with_other_formula``, ``valsartan_smarts``,
``decoration_hop``, ``scaffold_hop`` of ``guacamol.standard_benchmarks``), and
``goal_directed_suite_trivial`` for ``qed_benchmark`` and ``isomers_c7h8n2o2``.

Molecules: every 10th row of the shipped MOSES test split (1,000), the PMO target molecules,
and a few written to reach the parts that MOSES molecules miss (exact formulas, the SMARTS of
valsartan_smarts, deco_hop and scaffold_hop); all 20 tasks are compared on all of them
(60 to 85 s on one busy core, over half of it guacamol's own scoring).
"""

from __future__ import annotations

import gzip
import importlib.util
import sys
import types

import numpy as np
import pytest
from rdkit import Chem, RDLogger, rdBase
from rdkit.Chem import QED

from seqvae.data import default_data_path
from seqvae.errors import ConfigError
from seqvae.search import objectives, pmo

TOLERANCE = 1e-9
N_MOSES = 1000

# our name -> the benchmark's name in guacamol's goal-directed suites
GUACAMOL = {
    "celecoxib_rediscovery": "Celecoxib rediscovery",
    "troglitazone_rediscovery": "Troglitazone rediscovery",
    "thiothixene_rediscovery": "Thiothixene rediscovery",
    "albuterol_similarity": "Albuterol similarity",
    "mestranol_similarity": "Mestranol similarity",
    "isomers_c7h8n2o2": "C7H8N2O2",
    "isomers_c9h10n2o2pf2cl": "C9H10N2O2PF2Cl",
    "median1": "Median molecules 1",
    "median2": "Median molecules 2",
    "osimertinib_mpo": "Osimertinib MPO",
    "fexofenadine_mpo": "Fexofenadine MPO",
    "ranolazine_mpo": "Ranolazine MPO",
    "perindopril_mpo": "Perindopril MPO",
    "amlodipine_mpo": "Amlodipine MPO",
    "sitagliptin_mpo": "Sitagliptin MPO",
    "zaleplon_mpo": "Zaleplon MPO",
    "valsartan_smarts": "Valsartan SMARTS",
    "deco_hop": "Deco Hop",
    "scaffold_hop": "Scaffold Hop",
    "qed": "QED",
}
NAMES = sorted(GUACAMOL)

TARGETS = [pmo.CELECOXIB, pmo.TROGLITAZONE, pmo.THIOTHIXENE, pmo.ALBUTEROL, pmo.MESTRANOL,
           pmo.CAMPHOR, pmo.MENTHOL, pmo.TADALAFIL, pmo.SILDENAFIL, pmo.OSIMERTINIB,
           pmo.FEXOFENADINE, pmo.RANOLAZINE, pmo.PERINDOPRIL, pmo.AMLODIPINE, pmo.SITAGLIPTIN,
           pmo.SITAGLIPTIN_2, pmo.ZALEPLON, pmo.HOP_START]
WRITTEN = [
    "NCc1ccc([N+](=O)[O-])cc1", "Cc1ccc(N)c([N+](=O)[O-])c1",  # C7H8N2O2
    "CCNC(=O)c1ccc(Cl)cc1NP(=O)(F)F",  # C9H10N2O2PF2Cl
    "CC(=O)N(CC)c1cccc(-c2ccnc3c(C(C)=O)cnn23)c1",  # zaleplon-like
    # the valsartan SMARTS, with sitagliptin's properties more or less nearly
    "CN(C=O)Cc1ccc(-c2ccccc2)cc1",
    "CCCCC(=O)N(Cc1ccc(-c2ccccc2-c2nn[nH]n2)cc1)[C@@H](C(C)C)C(=O)O",  # valsartan
    "NC(=O)CN(C=O)Cc1ccc(-c2ccc(F)cc2F)cc1", "OC(=O)CCN(C(=O)CN)Cc1ccc(-c2ccc(F)c(F)c2)cc1",
    "NC(CC(=O)N(C)Cc1ccc(-c2cc(F)c(F)cc2F)cc1)C(=O)N",
    # the hop start with its decorations changed (deco_hop) or its scaffold (scaffold_hop)
    "CCCOc1cc2ncnc(Nc3ccc(F)cc3)c2cc1C(=O)NC", "CCCOc1cc2ncnc(Nc3ccc4ncsc4c3)c2cc1C(=O)N",
    "CCCOc1ccc2c(Nc3ccc4ncsc4c3)ccnc2c1", "CCCOc1cc2c(cc1)c(Nc1ccc3ncsc3c1)ncn2",
    "CCCOc1cc2c(Nc3ccc4ncsc4c3)ncnc2cc1S(C)(=O)=O",
]
INVALID = ["C1CC", "c1cccc1", "CC(C)(C)(C)(C)C", "not a molecule", "C[N](C)(C)(C)(C)C"]


def _moses() -> list[str]:
    with gzip.open(default_data_path("moses_test"), "rt") as fh:
        rows = fh.read().split()[1:]  # one column, SMILES, under a header
    return rows[::10][:N_MOSES]


MOSES = _moses()
MOLECULES = MOSES + TARGETS + WRITTEN + INVALID


def _restore_logs(status: str) -> None:
    for line in status.splitlines():
        name, _, state = line.strip().partition(":")
        (RDLogger.EnableLog if state == "enabled" else RDLogger.DisableLog)(name)


@pytest.fixture(scope="module")
def reference() -> dict[str, list[float]]:
    """guacamol's score of every molecule for every task."""
    pytest.importorskip("guacamol")
    import scipy

    logs = rdBase.LogStatus()  # importing guacamol silences RDKit's log for good
    with pytest.MonkeyPatch.context() as patch:
        # guacamol 0.5.5 imports numpy's histogram from scipy, which dropped it, and imports
        # fcd (Frechet ChemNet distance, unused here) at the top of a module of the suites
        patch.setattr(scipy, "histogram", np.histogram, raising=False)
        if importlib.util.find_spec("fcd") is None:
            patch.setitem(sys.modules, "fcd", types.ModuleType("fcd"))
        try:
            from guacamol.benchmark_suites import (
                goal_directed_suite_trivial, goal_directed_suite_v2)

            suite = {b.name: b.objective
                     for b in goal_directed_suite_v2() + goal_directed_suite_trivial()}
            return {name: [float(x) for x in suite[GUACAMOL[name]].score_list(MOLECULES)]
                    for name in NAMES}
        finally:
            _restore_logs(logs)


def test_the_twenty_tasks():
    assert len(NAMES) == 20
    assert sorted(pmo.TASKS) == NAMES
    for name in NAMES:
        objective = objectives.pmo(name)
        assert isinstance(objective, objectives.Objective) and objective.name == name
        assert callable(getattr(pmo, name)()) and callable(pmo.scorer(name))


def test_unknown_task_lists_the_names():
    for ask in (pmo.scorer, objectives.pmo):
        with pytest.raises(ConfigError) as error:
            ask("aripiprazole_similarity")
        assert "aripiprazole_similarity" in str(error.value)
        assert all(name in str(error.value) for name in NAMES)


def test_objectives_pmo():
    assert "pmo" in objectives.__all__
    score = objectives.pmo("qed")("CCOc1ccccc1")
    assert score.ok and score.value == pytest.approx(QED.qed(Chem.MolFromSmiles("CCOc1ccccc1")))
    assert objectives.pmo("qed")("C1CC").status == "invalid"
    # as the CLI's --objective reads it, alone or in a weighted sum
    mol = "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F"  # celecoxib itself
    assert objectives.get("pmo:celecoxib_rediscovery")(mol).value == pytest.approx(1.0)
    both = objectives.get("pmo:celecoxib_rediscovery + 0.5*qed")(mol).value
    assert both == pytest.approx(1.0 + 0.5 * QED.qed(Chem.MolFromSmiles(mol)))
    with pytest.raises(ConfigError, match="unknown PMO task 'nope'"):
        objectives.get("pmo:nope")


@pytest.mark.parametrize("name", NAMES)
def test_task_equals_guacamol(name, reference):
    expected = reference[name]
    assert len(expected) == len(MOLECULES) and len(MOSES) == N_MOSES
    scores = objectives.pmo(name).evaluate(MOLECULES)
    wrong = []
    for smiles, ours, theirs in zip(MOLECULES, scores, expected):
        if smiles in INVALID:
            if ours.status != "invalid" or theirs != -1.0:
                wrong.append((smiles, ours, theirs))
        elif not ours.ok or abs(ours.value - theirs) > TOLERANCE:
            wrong.append((smiles, ours, theirs))
    assert not wrong, f"{len(wrong)} differ, first: {wrong[:3]}"
    values = [s.value for s in scores if s.ok]
    # the comparison reached non-zero scores, and well above 0 (median and MPO tasks top out
    # below 1; valsartan_smarts is non-zero only through its SMARTS)
    assert sum(v > 0 for v in values) >= 5 and max(values) > 0.2, (name, max(values))
