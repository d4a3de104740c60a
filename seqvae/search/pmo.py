"""The 20 RDKit-only oracles of the PMO benchmark, written on RDKit.

PMO ("Practical Molecular Optimization"; Gao, Fu, Sun & Coley, "Sample Efficiency Matters: A
Benchmark for Practical Molecular Optimization", NeurIPS 2022 Datasets and Benchmarks) ranks
molecular optimisers by the best scores they reach within 10,000 oracle calls on 23 tasks.
Twenty of those need nothing but RDKit; they are the GuacaMol goal-directed objectives (Brown
et al., J. Chem. Inf. Model. 2019) as the TDC oracles wrap them, and these are they::

    from seqvae.search import objectives
    goal = objectives.pmo("osimertinib_mpo")   # an Objective; pmo.scorer(name) is its function
    goal("COc1cc(N(C)CCN(C)C)c(NC(=O)C=C)cc1Nc2nccc(n2)c3cn(C)c4ccccc34").value

Source of the definitions: ``guacamol.standard_benchmarks`` and
``guacamol.benchmark_suites`` of guacamol 0.5.5 (target molecules as the SMILES written there,
fingerprint types, score modifiers and their parameters, arithmetic or geometric means, SMARTS,
formulas), with the similarity thresholds of ``goal_directed_suite_v2``: 1.0 (no clipping) for
the three rediscoveries, 0.75 for the albuterol and mestranol similarities. The two tasks that
suite lacks, ``qed`` and ``isomers_c7h8n2o2``, are those of ``goal_directed_suite_trivial``.
Every task was checked against guacamol 0.5.5's scoring functions on 1,000 molecules to 1e-9
(tests/test_pmo_oracles.py). The code here is a reimplementation, not guacamol's: the
fingerprints are RDKit's (Morgan and atom-pair count fingerprints from
``rdFingerprintGenerator``, identical in Tanimoto to the ``AllChem.GetMorganFingerprint`` and
``GetAtomPairFingerprint`` that guacamol calls; Gobbi 2D pharmacophore fingerprints from
``rdkit.Chem.Pharm2D``), the descriptors RDKit's.

Fingerprints: ECFP4 / ECFP6 are unfolded Morgan count fingerprints of radius 2 / 3; FCFP4 the
same with feature invariants; AP atom-pair counts up to 10 bonds apart; PHCO Gobbi's 2D
pharmacophores. Similarity is the Tanimoto similarity of the count (or bit) vectors.

Differences from the benchmark as published:

* Invalid molecules: guacamol scores a string that is not a molecule -1 and PMO (through
  TDC) 0. Here, as for every :class:`~seqvae.search.objectives.Objective`, it gets the
  status ``"invalid"`` (value -inf); a PMO-style wrapper maps that status to 0. A molecule whose
  scoring raises (guacamol: -1) is ``"failed"``.
* Isomer scores (``isomers_*`` and the formula terms of ``sitagliptin_mpo`` and
  ``zaleplon_mpo``) count atoms in the molecule with its hydrogens made explicit, as guacamol
  does. The TDC oracles PMO used at the time counted element symbols in the SMILES text
  instead, which miscounts implicit hydrogens, two-letter elements and bracket atoms; the
  scores here are guacamol's, not that text count's.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from rdkit import Chem, DataStructs
from rdkit.Chem import QED, Descriptors, rdMolDescriptors
from rdkit.Chem import rdFingerprintGenerator as fpgen
from rdkit.Chem.Pharm2D import Generate, Gobbi_Pharm2D

from seqvae.errors import ConfigError

Scorer = Callable[[Chem.Mol], float]
Modifier = Callable[[float], float]

# target molecules, spelt as in guacamol 0.5.5
CELECOXIB = "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F"
TROGLITAZONE = "Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O"
THIOTHIXENE = "CN(C)S(=O)(=O)c1ccc2Sc3ccccc3C(=CCCN4CCN(C)CC4)c2c1"
ALBUTEROL = "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1"
MESTRANOL = "COc1ccc2[C@H]3CC[C@@]4(C)[C@@H](CC[C@@]4(O)C#C)[C@@H]3CCc2c1"
CAMPHOR = "CC1(C)C2CCC1(C)C(=O)C2"
MENTHOL = "CC(C)C1CCC(C)CC1O"
TADALAFIL = "O=C1N(CC(N2C1CC3=C(C2C4=CC5=C(OCO5)C=C4)NC6=C3C=CC=C6)=O)C"
SILDENAFIL = "CCCC1=NN(C2=C1N=C(NC2=O)C3=C(C=CC(=C3)S(=O)(=O)N4CCN(CC4)C)OCC)C"
OSIMERTINIB = "COc1cc(N(C)CCN(C)C)c(NC(=O)C=C)cc1Nc2nccc(n2)c3cn(C)c4ccccc34"
FEXOFENADINE = "CC(C)(C(=O)O)c1ccc(cc1)C(O)CCCN2CCC(CC2)C(O)(c3ccccc3)c4ccccc4"
RANOLAZINE = "COc1ccccc1OCC(O)CN2CCN(CC(=O)Nc3c(C)cccc3C)CC2"
PERINDOPRIL = "O=C(OCC)C(NC(C(=O)N1C(C(=O)O)CC2CCCCC12)C)CCC"
AMLODIPINE = r"Clc1ccccc1C2C(=C(/N/C(=C2/C(=O)OCC)COCCN)C)\C(=O)OC"
SITAGLIPTIN = "Fc1cc(c(F)cc1F)CC(N)CC(=O)N3Cc2nnc(n2CC3)C(F)(F)F"
SITAGLIPTIN_2 = "NC(CC(=O)N1CCn2c(nnc2C(F)(F)F)C1)Cc1cc(F)c(F)cc1F"  # valsartan_smarts's spelling
ZALEPLON = "O=C(C)N(CC)C1=CC=CC(C2=CC=NC3=C(C=NN23)C#N)=C1"
HOP_START = "CCCOc1cc2ncnc(Nc3ccc4ncsc4c3)c2cc1S(=O)(=O)C(C)(C)C"  # deco_hop and scaffold_hop
QUINAZOLINE_CORE = "[#7]-c1n[c;h1]nc2[c;h1]c(-[#8])[c;h0][c;h1]c12"


# -- score modifiers: a raw value to a desirability in [0, 1] -------------------------------
def _gaussian(mu: float, sigma: float) -> Modifier:
    """exp(-((x - mu) / sigma)^2 / 2): 1 at mu."""
    return lambda x: math.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _at_most(mu: float, sigma: float) -> Modifier:
    """1 for x <= mu, a Gaussian tail above (guacamol's MinGaussianModifier)."""
    gaussian = _gaussian(mu, sigma)
    return lambda x: gaussian(max(x, mu))


def _at_least(mu: float, sigma: float) -> Modifier:
    """1 for x >= mu, a Gaussian tail below (guacamol's MaxGaussianModifier)."""
    gaussian = _gaussian(mu, sigma)
    return lambda x: gaussian(min(x, mu))


def _clipped(upper: float) -> Modifier:
    """x / upper, clipped to [0, 1] (guacamol's ClippedScoreModifier from 0 to upper)."""
    return lambda x: min(1.0, max(0.0, x / upper))


# -- fingerprints and measurements of a molecule --------------------------------------------
@lru_cache(maxsize=None)
def _generator(kind: str) -> Any:
    if kind == "AP":
        return fpgen.GetAtomPairGenerator(maxDistance=10)
    radius = {"ECFP4": 2, "ECFP6": 3, "FCFP4": 2}[kind]
    features = fpgen.GetMorganFeatureAtomInvGen() if kind == "FCFP4" else None
    return fpgen.GetMorganGenerator(radius=radius, atomInvariantsGenerator=features)


def fingerprint(mol: Chem.Mol, kind: str) -> Any:
    """The fingerprint of a molecule: "ECFP4", "ECFP6", "FCFP4", "AP" (sparse counts) or "PHCO"
    (Gobbi 2D pharmacophores, sparse bits)."""
    if kind == "PHCO":
        return Generate.Gen2DFingerprint(mol, Gobbi_Pharm2D.factory)
    return _generator(kind).GetSparseCountFingerprint(mol)


@lru_cache(maxsize=None)
def _target(smiles: str) -> Chem.Mol:
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:  # a typo in the table above
        raise ConfigError(f"PMO target {smiles!r} does not parse")
    return mol


@lru_cache(maxsize=None)
def _target_fingerprint(smiles: str, kind: str) -> Any:
    return fingerprint(_target(smiles), kind)


@lru_cache(maxsize=None)
def _pattern(smarts: str) -> Chem.Mol:
    pattern = Chem.MolFromSmarts(smarts)
    if pattern is None:
        raise ConfigError(f"PMO SMARTS {smarts!r} does not parse")
    return pattern


@lru_cache(maxsize=None)
def _formula(formula: str) -> tuple[tuple[str, int], ...]:
    """("C7H8N2O2") -> (("C", 7), ("H", 8), ("N", 2), ("O", 2))."""
    return tuple((element, int(count or 1))
                 for element, count in re.findall(r"([A-Z][a-z]*)(\d*)", formula))


def _logp(mol: Chem.Mol) -> float:
    return Descriptors.MolLogP(mol)


def _tpsa(mol: Chem.Mol) -> float:
    return Descriptors.TPSA(mol)


def _bertz(mol: Chem.Mol) -> float:
    return Descriptors.BertzCT(mol)


def _fluorines(mol: Chem.Mol) -> float:
    return sum(atom.GetSymbol() == "F" for atom in mol.GetAtoms())


# -- terms (functions of a molecule) and their means ----------------------------------------
def _term(measure: Scorer, modifier: Modifier | None = None) -> Scorer:
    return measure if modifier is None else (lambda mol: modifier(measure(mol)))


def _similarity(target: str, kind: str, modifier: Modifier | None = None) -> Scorer:
    """Tanimoto similarity of the kind's fingerprints to the target, then the modifier."""
    reference = _target_fingerprint(target, kind)
    return _term(lambda mol: DataStructs.TanimotoSimilarity(fingerprint(mol, kind), reference),
                 modifier)


def _near_target(target: str, measure: Scorer, sigma: float) -> Scorer:
    """A Gaussian of the measure around its value for the target molecule."""
    return _term(measure, _gaussian(measure(_target(target)), sigma))


def _has(smarts: str, present: bool = True) -> Scorer:
    """1 if the molecule matches the SMARTS (does not, for present=False), else 0."""
    pattern = _pattern(smarts)
    return lambda mol: float(mol.HasSubstructMatch(pattern) == present)


def _isomer(formula: str) -> Scorer:
    """Closeness to a molecular formula: the geometric mean of a Gaussian (sigma 1) of each
    element's count, hydrogens included, and one (sigma 2) of the total number of atoms."""
    elements = _formula(formula)
    total = sum(n for _, n in elements)

    def score(mol: Chem.Mol) -> float:
        explicit = Chem.AddHs(mol)
        counts = Counter(atom.GetSymbol() for atom in explicit.GetAtoms())
        parts = [_gaussian(n, 1.0)(counts[e]) for e, n in elements]
        return _geometric_mean(parts + [_gaussian(total, 2.0)(explicit.GetNumAtoms())])

    return score


def _geometric_mean(values: list[float]) -> float:
    return math.prod(values) ** (1.0 / len(values))


def _geometric(*terms: Scorer) -> Scorer:
    return lambda mol: _geometric_mean([t(mol) for t in terms])


def _arithmetic(*terms: Scorer) -> Scorer:
    return lambda mol: sum(t(mol) for t in terms) / len(terms)


# -- the tasks ------------------------------------------------------------------------------
TASKS: dict[str, Callable[[], Scorer]] = {}  # name -> the builder of its scoring function


def _task(build: Callable[[], Scorer]) -> Callable[[], Scorer]:
    """Register a task under its function's name; the function builds its scorer."""
    TASKS[build.__name__] = build
    return build


@_task
def celecoxib_rediscovery() -> Scorer:
    """ECFP4 Tanimoto similarity to celecoxib."""
    return _similarity(CELECOXIB, "ECFP4")


@_task
def troglitazone_rediscovery() -> Scorer:
    """ECFP4 Tanimoto similarity to troglitazone."""
    return _similarity(TROGLITAZONE, "ECFP4")


@_task
def thiothixene_rediscovery() -> Scorer:
    """ECFP4 Tanimoto similarity to thiothixene."""
    return _similarity(THIOTHIXENE, "ECFP4")


@_task
def albuterol_similarity() -> Scorer:
    """FCFP4 Tanimoto similarity to albuterol, 1 from 0.75 on."""
    return _similarity(ALBUTEROL, "FCFP4", _clipped(0.75))


@_task
def mestranol_similarity() -> Scorer:
    """Atom-pair Tanimoto similarity to mestranol, 1 from 0.75 on."""
    return _similarity(MESTRANOL, "AP", _clipped(0.75))


@_task
def isomers_c7h8n2o2() -> Scorer:
    """Closeness to the formula C7H8N2O2."""
    return _isomer("C7H8N2O2")


@_task
def isomers_c9h10n2o2pf2cl() -> Scorer:
    """Closeness to the formula C9H10N2O2PF2Cl."""
    return _isomer("C9H10N2O2PF2Cl")


@_task
def median1() -> Scorer:
    """Geometric mean of the ECFP4 similarities to menthol and camphor."""
    return _geometric(_similarity(MENTHOL, "ECFP4"), _similarity(CAMPHOR, "ECFP4"))


@_task
def median2() -> Scorer:
    """Geometric mean of the ECFP6 similarities to tadalafil and sildenafil."""
    return _geometric(_similarity(TADALAFIL, "ECFP6"), _similarity(SILDENAFIL, "ECFP6"))


@_task
def osimertinib_mpo() -> Scorer:
    """Like osimertinib (FCFP4) but not too like it (ECFP6), TPSA >= 100, logP <= 1."""
    return _geometric(_similarity(OSIMERTINIB, "FCFP4", _clipped(0.8)),
                      _similarity(OSIMERTINIB, "ECFP6", _at_most(0.85, 0.1)),
                      _term(_tpsa, _at_least(100, 10)), _term(_logp, _at_most(1, 1)))


@_task
def fexofenadine_mpo() -> Scorer:
    """Like fexofenadine (atom pairs), TPSA >= 90, logP <= 4."""
    return _geometric(_similarity(FEXOFENADINE, "AP", _clipped(0.8)),
                      _term(_tpsa, _at_least(90, 10)), _term(_logp, _at_most(4, 1)))


@_task
def ranolazine_mpo() -> Scorer:
    """Like ranolazine (atom pairs), logP >= 7, one fluorine, TPSA >= 95."""
    return _geometric(_similarity(RANOLAZINE, "AP", _clipped(0.7)),
                      _term(_logp, _at_least(7, 1)), _term(_fluorines, _gaussian(1, 1.0)),
                      _term(_tpsa, _at_least(95, 20)))


@_task
def perindopril_mpo() -> Scorer:
    """Like perindopril (ECFP4), with two aromatic rings."""
    return _geometric(_similarity(PERINDOPRIL, "ECFP4"),
                      _term(rdMolDescriptors.CalcNumAromaticRings, _gaussian(2, 0.5)))


@_task
def amlodipine_mpo() -> Scorer:
    """Like amlodipine (ECFP4), with three rings."""
    return _geometric(_similarity(AMLODIPINE, "ECFP4"),
                      _term(rdMolDescriptors.CalcNumRings, _gaussian(3, 0.5)))


@_task
def sitagliptin_mpo() -> Scorer:
    """Unlike sitagliptin (ECFP4) but with its logP, TPSA and formula C16H15F6N5O."""
    return _geometric(_similarity(SITAGLIPTIN, "ECFP4", _gaussian(0, 0.1)),
                      _near_target(SITAGLIPTIN, _logp, 0.2), _near_target(SITAGLIPTIN, _tpsa, 5),
                      _isomer("C16H15F6N5O"))


@_task
def zaleplon_mpo() -> Scorer:
    """Like zaleplon (ECFP4), with the formula C19H17N3O2."""
    return _geometric(_similarity(ZALEPLON, "ECFP4"), _isomer("C19H17N3O2"))


@_task
def valsartan_smarts() -> Scorer:
    """Valsartan's biphenyl-methyl-amide substructure with sitagliptin's logP, TPSA and Bertz
    complexity."""
    return _geometric(_has("CN(C=O)Cc1ccc(c2ccccc2)cc1"), _near_target(SITAGLIPTIN_2, _logp, 0.2),
                      _near_target(SITAGLIPTIN_2, _tpsa, 5),
                      _near_target(SITAGLIPTIN_2, _bertz, 30))


@_task
def deco_hop() -> Scorer:
    """Keep the quinazoline scaffold of the start molecule, change its decorations, keep its
    pharmacophores (arithmetic mean)."""
    return _arithmetic(_similarity(HOP_START, "PHCO", _clipped(0.85)),
                       _has("CS([#6])(=O)=O", present=False),
                       _has("[#7]-c1ccc2ncsc2c1", present=False), _has(QUINAZOLINE_CORE))


@_task
def scaffold_hop() -> Scorer:
    """Keep the decorations of the start molecule, change its scaffold, keep its
    pharmacophores (arithmetic mean)."""
    return _arithmetic(
        _similarity(HOP_START, "PHCO", _clipped(0.75)),
        _has("[#6]-[#6]-[#6]-[#8]-[#6]~[#6]~[#6]~[#6]~[#6]-[#7]-c1ccc2ncsc2c1"),
        _has(QUINAZOLINE_CORE, present=False))


@_task
def qed() -> Scorer:
    """QED drug-likeness."""
    return QED.qed


def scorer(name: str) -> Scorer:
    """The scoring function (an RDKit Mol to a float) of the PMO task of this name; TASKS lists
    the 20 names. objectives.pmo(name) is the same as an Objective."""
    try:
        build = TASKS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown PMO task {name!r}; choose from "
                          f"{', '.join(sorted(TASKS))}") from None
    return build()


__all__ = ["TASKS", "scorer", "fingerprint", *TASKS]
