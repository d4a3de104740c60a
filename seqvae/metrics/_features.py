"""Per-molecule features for the molecular metrics, computed in worker processes.

Only RDKit and numpy here (no torch), so a worker starts fast and never touches a thread pool
the parent owns. Each function takes a chunk of strings and returns plain, compact Python
data (packed fingerprint bytes, strings, floats) that crosses the process boundary cheaply.

Definitions follow molsets 0.3.1 (`moses/metrics/utils.py`, `moses/utils.py`) and GuacaMol
0.5.5 (`guacamol/utils/chemistry.py`); where they do something unusual, it is kept and named.
"""

from __future__ import annotations

import csv
import functools
from functools import lru_cache
from pathlib import Path

import numpy as np
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import QED, Crippen, Descriptors, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

from seqvae.chem import sa_score

DATA = Path(__file__).parent / "data"
FILTER_ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MORGAN_BITS = 1024  # MOSES: Morgan radius 2, 1024 bits, for SNN and IntDiv
GUACAMOL_BITS = 4096  # GuacaMol: ECFP4, 4096 bits, for its internal-similarity KL term
GUACAMOL_DESCRIPTORS = ("BertzCT", "MolLogP", "MolWt", "TPSA", "NumHAcceptors", "NumHDonors",
                        "NumRotatableBonds", "NumAliphaticRings", "NumAromaticRings")
PROPERTIES = ("logP", "SA", "QED", "weight")
PATTERN_BITS = 2048  # RDKit's pattern fingerprint: the screen before the filters' searches



def _quiet(func):
    """Run func with RDKit's log blocked, restoring the caller's log settings afterwards."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        block = rdBase.BlockLogs()
        try:
            return func(*args, **kwargs)
        finally:
            del block
    return wrapper


@lru_cache(maxsize=None)
def _morgan(bits: int):
    return rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=bits)


@lru_cache(maxsize=None)
def _filters() -> tuple[list[Chem.Mol], np.ndarray]:
    """The MOSES medicinal-chemistry filters, its MCF and PAINS SMARTS (from molsets' data), and
    the pattern fingerprint of each as a row of uint64 words."""
    patterns = []
    with open(DATA / "mcf.csv", newline="") as handle:
        patterns += [row["smarts"] for row in csv.DictReader(handle)]
    with open(DATA / "wehi_pains.csv", newline="") as handle:
        patterns += [row[0] for row in csv.reader(handle)]
    mols = [Chem.MolFromSmarts(p) for p in patterns]
    if any(m is None for m in mols):
        raise RuntimeError("a shipped MCF/PAINS SMARTS pattern does not parse with this RDKit")
    return mols, np.stack([_pattern_words(m) for m in mols])


@lru_cache(maxsize=None)
def _filter_names() -> list[str]:
    """The name of each pattern of _filters, in its order: MCF's names (MCF1 ...) and the
    PAINS family of each WEHI pattern (anil_di_alk_F ...)."""
    import re
    names = []
    with open(DATA / "mcf.csv", newline="") as handle:
        names += [row["names"] for row in csv.DictReader(handle)]
    with open(DATA / "wehi_pains.csv", newline="") as handle:
        for row in csv.reader(handle):
            found = re.search(r"regId=([^(>]+)", row[1] if len(row) > 1 else "")
            names.append("PAINS " + (found.group(1) if found else "unnamed"))
    return names


def filter_alert(mol: Chem.Mol) -> str:
    """Why a molecule fails the MOSES filters ("" when it passes them): the first rule it
    breaks, in passes_filters' order: "ring of 8+ atoms", "charged atom", "atom X" (outside C N
    S O F Cl Br H), the name of the first MCF / PAINS pattern it matches, or "SMILES does not
    re-parse"."""
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return "ring of 8+ atoms"
    for atom in mol.GetAtoms():
        if atom.GetFormalCharge() != 0:
            return "charged atom"
        if atom.GetSymbol() not in FILTER_ALLOWED_ATOMS:
            return f"atom {atom.GetSymbol()}"
    h_mol = Chem.AddHs(mol)
    patterns, screens = _filters()
    words = _pattern_words(h_mol)
    for i in np.flatnonzero(~(screens & ~words).any(axis=1)):
        if h_mol.HasSubstructMatch(patterns[i]):
            return _filter_names()[i]
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    return "" if smiles and Chem.MolFromSmiles(smiles) is not None else "SMILES does not re-parse"


def _pattern_words(mol: Chem.Mol) -> np.ndarray:
    """RDKit's pattern fingerprint (its substructure screen) of a molecule or query, as uint64."""
    bits = np.zeros(PATTERN_BITS, dtype=np.uint8)
    DataStructs.ConvertToNumpyArray(Chem.PatternFingerprint(mol, fpSize=PATTERN_BITS), bits)
    return np.packbits(bits).view(np.uint64)


def matches_filter(h_mol: Chem.Mol) -> bool:
    """Whether a molecule (with explicit hydrogens) matches any MCF/PAINS pattern: molsets'
    `any(h_mol.HasSubstructMatch(p) for p in _filters)`, the same answer at a fifth the cost.

    A pattern whose pattern-fingerprint bits are not all set in the molecule's cannot match it
    (RDKit's substructure screen, the one its SubstructLibrary relies on), so only the others
    are searched, about 25 of the 502 for a MOSES molecule. tests/test_metrics.py checks the
    answer against the unscreened search, on molecules that fail the filters and pass them."""
    patterns, screens = _filters()
    words = _pattern_words(h_mol)
    candidates = np.flatnonzero(~(screens & ~words).any(axis=1))
    return any(h_mol.HasSubstructMatch(patterns[i]) for i in candidates)


def parse_as_molsets(smiles: str) -> Chem.Mol | None:
    """molsets' `get_mol`: parse, then sanitise a second time; None for empty or invalid.

    Not seqvae.chem.to_mol: the second SanitizeMol rejects a few molecules the first accepts
    (1 of 632,308 strings checked: 'CCCOc1ccc(C=2sc3ncnn3c2=O)cc1', which to_mol parses), and
    molsets counts those invalid, so validity and every metric after it must too."""
    if not isinstance(smiles, str) or len(smiles) == 0:
        return None
    try:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return None
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises on a few pathological strings instead of returning None
        return None
    return mol


def passes_filters(mol: Chem.Mol) -> bool:
    """molsets' `mol_passes_filters`: no ring of 8+ atoms, no charge, only C N S O F Cl Br H,
    no MCF/PAINS match (on the molecule with explicit hydrogens), and a SMILES that re-parses.

    The checks are molsets' own; the cheap ones run before AddHs and the substructure
    searches, which changes the cost, not the answer (each is a pure predicate)."""
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return False
    for atom in mol.GetAtoms():
        if atom.GetFormalCharge() != 0 or atom.GetSymbol() not in FILTER_ALLOWED_ATOMS:
            return False
    if matches_filter(Chem.AddHs(mol)):
        return False
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(smiles) and Chem.MolFromSmiles(smiles) is not None


def scaffold(mol: Chem.Mol, min_rings: int = 2) -> str | None:
    """molsets' `compute_scaffold`: the Bemis-Murcko scaffold's SMILES, None when it has fewer
    than `min_rings` rings (molsets' default of 2 drops single-ring scaffolds from Scaf)."""
    try:
        core = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    text = Chem.MolToSmiles(core)
    if text == "" or core.GetRingInfo().NumRings() < min_rings:
        return None
    return text


def fragments(mol: Chem.Mol) -> list[str]:
    """molsets' `fragmenter`: the BRICS fragments, with their dummy-atom labels, as SMILES."""
    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def properties(mol: Chem.Mol) -> tuple[float, float, float, float]:
    """logP (Crippen), SA score, QED and molecular weight, as molsets computes them."""
    return (Crippen.MolLogP(mol), sa_score(mol), QED.qed(mol),
            Descriptors.MolWt(mol))


@_quiet
def canonical_pairs(strings: list[str]) -> list[tuple[str, str] | None]:
    """For each string, (canonical SMILES, canonical SMILES of that re-parsed), or None.

    molsets canonicalises the samples once to drop the invalid ones, then parses that
    canonical SMILES again for every later metric and canonicalises it a second time for
    unique@k and novelty; the second form is almost always the first."""
    out: list[tuple[str, str] | None] = []
    for s in strings:
        mol = parse_as_molsets(s)
        if mol is None:
            out.append(None)
            continue
        canonical = Chem.MolToSmiles(mol)
        again = parse_as_molsets(canonical)
        out.append(None if again is None else (canonical, Chem.MolToSmiles(again)))
    return out


@_quiet
def molecule_features(smiles: list[str]) -> dict[str, list]:
    """Features of molecules given as canonical SMILES (all valid): packed Morgan bits,
    BRICS fragments, scaffold, logP/SA/QED/weight and whether it passes the filters."""
    morgan = _morgan(MORGAN_BITS)
    fps, frags, scaffolds, props, passes = [], [], [], [], []
    for s in smiles:
        mol = parse_as_molsets(s)
        fps.append(np.packbits(morgan.GetFingerprintAsNumPy(mol).astype(np.uint8)).tobytes())
        frags.append(fragments(mol))
        scaffolds.append(scaffold(mol))
        props.append(properties(mol))
        passes.append(passes_filters(mol))
    return {"fps": fps, "frags": frags, "scaffolds": scaffolds, "props": props, "passes": passes}


@_quiet
def guacamol_features(smiles: list[str]) -> dict[str, list]:
    """GuacaMol's KL-divergence inputs for molecules given as SMILES: its nine descriptors
    (as `MolecularDescriptorCalculator` returns them, non-finite set to 0) and packed ECFP4
    4096-bit fingerprints. Unparseable strings are skipped, as GuacaMol's helpers do."""
    from rdkit.ML.Descriptors import MoleculeDescriptors

    calculator = MoleculeDescriptors.MolecularDescriptorCalculator(list(GUACAMOL_DESCRIPTORS))
    morgan = _morgan(GUACAMOL_BITS)
    descriptors, fps = [], []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            continue
        values = np.asarray(calculator.CalcDescriptors(mol), dtype=np.float64)
        values[~np.isfinite(values)] = 0
        descriptors.append(values.tolist())
        fps.append(np.packbits(morgan.GetFingerprintAsNumPy(mol).astype(np.uint8)).tobytes())
    return {"descriptors": descriptors, "fps": fps}


@_quiet
def strip_stereo(smiles: list[str]) -> list[str | None]:
    """GuacaMol's `canonicalize(include_stereocenters=False)`: canonical SMILES without
    stereochemistry, None where RDKit cannot parse the input."""
    out: list[str | None] = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        out.append(None if mol is None else Chem.MolToSmiles(mol, isomericSmiles=False))
    return out


__all__ = ["PROPERTIES", "GUACAMOL_DESCRIPTORS", "parse_as_molsets", "matches_filter",
           "passes_filters", "scaffold",
           "fragments", "properties", "canonical_pairs", "molecule_features", "guacamol_features",
           "strip_stereo"]
