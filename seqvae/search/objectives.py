"""What a latent-space search maximises: molecular objectives from SMILES to a float.

Every objective is an :class:`Objective`: a name and a function of an RDKit molecule (or of
the SMILES string, for a user's own function). Objectives combine into weighted sums with
ordinary arithmetic and take constraints::

    from seqvae.search import objectives as O
    goal = O.penalized_logp() + 0.5 * O.qed()
    goal = O.penalized_logp().subject_to(O.similarity("CCOc1ccccc1"), minimum=0.4)
    goal = O.custom(my_function, name="docking")

Scoring never raises. :meth:`Objective.evaluate` gives, for each SMILES, a :class:`Score`
with a status: ``ok``; ``invalid`` (the string is not a molecule); ``failed`` (the function
raised, or returned NaN or something that is not a number; the message is kept);
``infeasible`` (a constraint is not met). Only ``ok`` scores carry a finite value; every other
status scores ``-inf``, so sorting, maxima and "best so far" treat them as worst without a
special case, and optimisers that need finite numbers (a GP) choose their own stand-in.

Definitions (maximised; lower is better only for SA, which is why penalized logP subtracts it):

* ``qed``: RDKit's QED (Bickerton et al. 2012), 0 to 1 (at most about 0.948 in practice).
* ``logp``: Crippen logP (Wildman & Crippen 1999), RDKit's ``MolLogP``.
* ``sa``: synthetic accessibility, the Ertl & Schuffenhauer (2009) scorer RDKit ships in
  ``Contrib/SA_Score``; 1 (easy) to 10 (hard).
* ``penalized_logp``: logP - SA - ring penalty, ring penalty = max(0, largest ring - 6).
  ``normalized=True`` (the default, as in JT-VAE and weighted retraining) standardises each
  of the three terms with the ZINC250k means and standard deviations of the JT-VAE code
  (wengong-jin/icml18-jtnn, bo/; the same constants in rl_graph_generation and TorchDrug);
  ``normalized=False`` is the raw sum that LIMO and others report. The largest ring is taken
  from RDKit's ring perception (the SSSR), where the JT-VAE code uses networkx's cycle basis;
  the two agree on ordinary ring systems.
* ``molecular_weight``: average molecular weight in daltons (``Descriptors.MolWt``).
* ``tpsa``: topological polar surface area (Ertl et al. 2000), ``Descriptors.TPSA``.
* ``similarity``: Tanimoto similarity of Morgan fingerprints (radius 2, 2048 bits, as in
  the JT-VAE constrained-optimisation benchmark) to a seed molecule.
* ``pmo(name)``: the 20 RDKit-only oracles of the PMO benchmark (Gao et al. 2022), the
  GuacaMol objectives; see :mod:`seqvae.search.pmo`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd
from rdkit import Chem, DataStructs
from rdkit.Chem import Crippen, Descriptors, QED, rdFingerprintGenerator

from seqvae.chem import sa_score, to_mol
from seqvae.errors import ConfigError, DataError

__all__ = [
    "Objective", "Score", "qed", "logp", "sa", "penalized_logp", "molecular_weight", "tpsa",
    "similarity", "custom", "weighted_sum", "get", "NAMES", "property_panel", "pmo",
]

STATUSES = ("ok", "invalid", "failed", "infeasible")

# ZINC250k statistics of the JT-VAE penalized logP (wengong-jin/icml18-jtnn, bo/): mean and
# standard deviation of logP, of -SA and of -ring penalty.
ZINC_LOGP = (2.4570953396190123, 1.434324401111988)
ZINC_NEG_SA = (-3.0525811293166134, 0.8335207024513095)
ZINC_NEG_RING = (-0.0485696876403053, 0.2860212110245455)


@dataclass(frozen=True)
class Score:
    """The score of one SMILES: value is finite exactly when status is "ok", else -inf."""

    value: float
    status: str = "ok"
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _largest_ring(mol: Chem.Mol) -> int:
    rings = mol.GetRingInfo().AtomRings()
    return max((len(r) for r in rings), default=0)


def penalized_logp_value(mol: Chem.Mol, normalized: bool = True) -> float:
    """logP - SA - max(0, largest ring - 6); each term z-scored with ZINC250k constants when
    normalized (the JT-VAE definition), raw otherwise."""
    log_p = Crippen.MolLogP(mol)
    neg_sa = -sa_score(mol)
    neg_ring = -max(0, _largest_ring(mol) - 6)
    if not normalized:
        return float(log_p + neg_sa + neg_ring)
    return float((log_p - ZINC_LOGP[0]) / ZINC_LOGP[1]
                 + (neg_sa - ZINC_NEG_SA[0]) / ZINC_NEG_SA[1]
                 + (neg_ring - ZINC_NEG_RING[0]) / ZINC_NEG_RING[1])


@lru_cache(maxsize=1)
def _morgan() -> Any:
    return rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)


def fingerprint(mol: Chem.Mol) -> Any:
    """The Morgan fingerprint (radius 2, 2048 bits) similarity is computed on."""
    return _morgan().GetFingerprint(mol)


def tanimoto(a: Any, b: Any) -> float:
    """Tanimoto similarity of two fingerprints (fingerprint())."""
    return float(DataStructs.TanimotoSimilarity(a, b))


def _number(value: Any) -> float:
    """A function's return value as a finite float, or ValueError saying what it was."""
    if isinstance(value, bool):
        raise ValueError(f"returned a bool ({value}), not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"returned {type(value).__name__} {value!r:.60}, not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"returned {number}")
    return number


@dataclass(frozen=True)
class _Constraint:
    objective: "Objective"
    minimum: float | None
    maximum: float | None

    def describe(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f"{self.objective.name} >= {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"{self.objective.name} <= {self.maximum:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Objective:
    """A named function to maximise, of an RDKit Mol (``on="mol"``) or of SMILES (``"smiles"``).

    Add objectives and multiply them by numbers for weighted sums; :meth:`subject_to` adds a
    constraint. The terms and constraints are kept, so every part can be reported."""

    name: str
    function: Callable[[Any], Any] | None = None
    on: str = "mol"
    terms: tuple[tuple[float, "Objective"], ...] = ()
    constraints: tuple[_Constraint, ...] = ()
    seed: str | None = field(default=None, compare=False)  # the seed of a similarity objective

    def __post_init__(self) -> None:
        if self.on not in ("mol", "smiles"):
            raise ConfigError(f"Objective.on must be 'mol' or 'smiles', got {self.on!r}")
        if self.function is None and not self.terms:
            raise ConfigError(f"objective {self.name!r} has neither a function nor terms")

    # -- arithmetic: weighted sums ------------------------------------------------------
    def _as_terms(self) -> tuple[tuple[float, Objective], ...]:
        if self.terms and self.function is None and not self.constraints:
            return self.terms
        return ((1.0, self),)

    def __add__(self, other: "Objective") -> "Objective":
        if not isinstance(other, Objective):
            return NotImplemented
        terms = self._as_terms() + other._as_terms()
        return Objective(_sum_name(terms), terms=terms)

    def __mul__(self, weight: float) -> "Objective":
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            return NotImplemented
        terms = tuple((w * float(weight), o) for w, o in self._as_terms())
        return Objective(_sum_name(terms), terms=terms)

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return self * -1.0

    def __sub__(self, other: "Objective") -> "Objective":
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-other)

    def subject_to(self, constraint: "Objective", minimum: float | None = None,
                   maximum: float | None = None) -> "Objective":
        """This objective, scored only where ``minimum <= constraint <= maximum``; elsewhere
        the status is "infeasible" (for example similarity to a seed >= 0.4)."""
        if minimum is None and maximum is None:
            raise ConfigError(f"a constraint on {constraint.name!r} needs a minimum or a maximum")
        if minimum is not None and maximum is not None and minimum > maximum:
            raise ConfigError(f"constraint on {constraint.name!r}: minimum {minimum} is above "
                              f"maximum {maximum}")
        added = _Constraint(constraint, minimum, maximum)
        return Objective(self.name, self.function, self.on, self.terms,
                         self.constraints + (added,), self.seed)

    # -- scoring --------------------------------------------------------------------------
    @property
    def seed_smiles(self) -> str | None:
        """The seed molecule of the first similarity objective inside this one, if any."""
        if self.seed is not None:
            return self.seed
        for part in [o for _, o in self.terms] + [c.objective for c in self.constraints]:
            if part.seed_smiles is not None:
                return part.seed_smiles
        return None

    def _raw(self, mol: Chem.Mol, smiles: str) -> float:
        """The value, or an exception from the function (the caller turns it into a status)."""
        if self.terms:
            return sum(w * o._raw(mol, smiles) for w, o in self.terms)
        assert self.function is not None
        try:
            value = self.function(mol if self.on == "mol" else smiles)
        except Exception as error:  # a user's function may raise anything: record it
            raise _Failure(f"{self.name}: {type(error).__name__}: {error}") from error
        try:
            return _number(value)
        except ValueError as error:
            raise _Failure(f"{self.name} {error}") from None

    def score_mol(self, mol: Chem.Mol | None, smiles: str = "") -> Score:
        """Score a parsed molecule (None: invalid)."""
        if mol is None:
            return Score(-math.inf, "invalid", "not a valid molecule")
        if not smiles:
            smiles = Chem.MolToSmiles(mol)
        try:
            for c in self.constraints:
                value = c.objective._raw(mol, smiles)
                if ((c.minimum is not None and value < c.minimum)
                        or (c.maximum is not None and value > c.maximum)):
                    return Score(-math.inf, "infeasible",
                                 f"{c.objective.name} = {value:.4g} fails {c.describe()}")
            return Score(self._raw(mol, smiles))
        except _Failure as failure:
            return Score(-math.inf, "failed", str(failure))

    def __call__(self, smiles: str) -> Score:
        """Score one SMILES string."""
        return self.score_mol(to_mol(smiles), smiles if isinstance(smiles, str) else "")

    def evaluate(self, smiles: Iterable[str]) -> list[Score]:
        """Score each SMILES; never raises for a bad molecule or a failing function."""
        return [self(s) for s in smiles]

    def describe(self) -> str:
        """The objective as a formula, with its constraints."""
        text = self.name
        if self.constraints:
            text += " subject to " + ", ".join(c.describe() for c in self.constraints)
        return text


class _Failure(Exception):
    """An objective function raised or returned something that is not a finite number."""


def _sum_name(terms: Sequence[tuple[float, Objective]]) -> str:
    text = ""
    for w, o in terms:
        sign = "-" if w < 0 else "+"
        magnitude = abs(w)
        part = o.name if magnitude == 1.0 else f"{magnitude:g}*{o.name}"
        text = (f"-{part}" if sign == "-" else part) if not text else f"{text} {sign} {part}"
    return text


# -- the built-in objectives ----------------------------------------------------------------
def qed() -> Objective:
    """QED, drug-likeness from 0 to 1."""
    return Objective("qed", QED.qed)


def logp() -> Objective:
    """Crippen logP."""
    return Objective("logp", Crippen.MolLogP)


def sa() -> Objective:
    """SA score, 1 (easy to make) to 10 (hard); maximise ``-sa()`` to prefer easy molecules."""
    return Objective("sa", sa_score)


def penalized_logp(normalized: bool = True) -> Objective:
    """Penalized logP: z-scored with ZINC250k constants (JT-VAE) by default, raw if not."""
    if normalized:
        return Objective("plogp", penalized_logp_value)
    return Objective("plogp_raw", lambda mol: penalized_logp_value(mol, normalized=False))


def molecular_weight() -> Objective:
    """Average molecular weight (Da)."""
    return Objective("mw", Descriptors.MolWt)


def tpsa() -> Objective:
    """Topological polar surface area (square angstroms)."""
    return Objective("tpsa", Descriptors.TPSA)


def heavy_atoms() -> Objective:
    """Number of heavy (non-hydrogen) atoms; as a constraint (``subject_to(heavy_atoms(),
    maximum=38)``, 38 being the largest molecule of ZINC250k) it keeps an unbounded objective
    such as penalized logP from being gamed with ever longer carbon chains."""
    return Objective("atoms", lambda mol: float(mol.GetNumHeavyAtoms()))


def similarity(seed: str) -> Objective:
    """Tanimoto similarity (Morgan, radius 2, 2048 bits) to the seed molecule given as SMILES."""
    mol = to_mol(seed)
    if mol is None:
        raise DataError(f"similarity: the seed {seed!r} is not a valid SMILES; RDKit cannot "
                        "parse it")
    reference = fingerprint(mol)

    def tanimoto(candidate: Chem.Mol) -> float:
        return DataStructs.TanimotoSimilarity(reference, fingerprint(candidate))

    return Objective("similarity", tanimoto, seed=Chem.MolToSmiles(mol))


def custom(function: Callable[[str], Any], name: str | None = None) -> Objective:
    """Any Python callable from a SMILES string to a number. If it raises, or returns NaN or
    a non-number, for a molecule, that molecule is recorded as "failed" and the search goes on."""
    if not callable(function):
        raise ConfigError(f"custom objective: {function!r} is not callable")
    return Objective(name or getattr(function, "__name__", "custom"), function, on="smiles")


def pmo(name: str) -> Objective:
    """One of the 20 RDKit-only PMO benchmark oracles by task name ("qed", "deco_hop", ...);
    see :mod:`seqvae.search.pmo`."""
    from seqvae.search.pmo import scorer

    return Objective(name, scorer(name))


def weighted_sum(parts: Iterable[tuple[float, Objective]]) -> Objective:
    """sum of weight * objective; the same as writing it with + and *."""
    total: Objective | None = None
    for weight, objective in parts:
        term = float(weight) * objective
        total = term if total is None else total + term
    if total is None:
        raise ConfigError("weighted_sum needs at least one (weight, objective) pair")
    return total


# one term of a weighted sum: optional sign, optional "number *", a name
_TERM = re.compile(r"\s*([+-])?\s*(?:((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*\*\s*)?"
                   r"([A-Za-z_]+(?::[A-Za-z0-9_]+)?)\s*")
NAMES: dict[str, Callable[[], Objective]] = {
    "qed": qed,
    "logp": logp,
    "sa": sa,
    "plogp": penalized_logp,
    "plogp_raw": lambda: penalized_logp(normalized=False),
    "mw": molecular_weight,
    "tpsa": tpsa,
    "atoms": heavy_atoms,
}


def get(spec: str, seed: str | None = None) -> Objective:
    """An objective from a short text, as the CLI takes it: a name ("qed", "plogp",
    "plogp_raw", "logp", "sa", "mw", "tpsa", "atoms", "similarity" with a seed, "pmo:TASK" for
    a PMO oracle such as "pmo:celecoxib_rediscovery"), or a weighted sum of them ("plogp +
    0.5*qed", "qed - 0.1*sa")."""
    text = spec.strip()
    names = ", ".join([*NAMES, "similarity", "pmo:TASK"])
    if not text:
        raise ConfigError(f"empty objective; choose from {names}")
    total: Objective | None = None
    position = 0
    for match in _TERM.finditer(text):
        if match.start() != position or (match.group(1) is None and total is not None):
            break
        position = match.end()
        sign = -1.0 if match.group(1) == "-" else 1.0
        factor = sign * float(match.group(2) or 1.0)
        name = match.group(3)
        if name == "similarity":
            if seed is None:
                raise ConfigError("the similarity objective needs a seed molecule (--seed SMILES)")
            part = similarity(seed)
        elif name.startswith("pmo:"):
            part = pmo(name[4:])
        elif name in NAMES:
            part = NAMES[name]()
        else:
            raise ConfigError(f"objective {spec!r}: unknown name {name!r}; choose from {names}")
        term = part if factor == 1.0 else factor * part
        total = term if total is None else total + term
    if total is None or position != len(text):
        raise ConfigError(f"cannot read objective {spec!r} from {text[position:]!r} on; write "
                          f"a name or a weighted sum such as 'plogp + 0.5*qed' ({names})")
    return total


def property_panel(mol: Chem.Mol, seed_fp: Any | None = None) -> dict[str, float]:
    """The properties a search reports beside its objective for every molecule it finds."""
    panel = {"qed": float(QED.qed(mol)), "logp": float(Crippen.MolLogP(mol)),
             "sa": sa_score(mol), "plogp": penalized_logp_value(mol),
             "plogp_raw": penalized_logp_value(mol, normalized=False),
             "mw": float(Descriptors.MolWt(mol)), "tpsa": float(Descriptors.TPSA(mol)),
             "atoms": float(mol.GetNumHeavyAtoms())}
    if seed_fp is not None:
        panel["similarity"] = float(DataStructs.TanimotoSimilarity(seed_fp, fingerprint(mol)))
    return panel


def compute_properties(smiles: Sequence[str], names: Sequence[str], progress: bool = False,
                       desc: str = "properties") -> pd.DataFrame:
    """Properties by name (keys of NAMES) computed with RDKit, one row per molecule; NaN
    where a molecule does not parse or the computation fails."""
    from tqdm.auto import tqdm

    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ConfigError(f"unknown properties {unknown}; choose from {', '.join(NAMES)}")
    objectives = [get(n) for n in names]
    rows = []
    for s in tqdm(smiles, desc=desc, unit="mol", disable=not progress, mininterval=2.0):
        mol = to_mol(s)  # parsed once for all the properties
        rows.append([score.value if score.ok else math.nan
                     for score in (o.score_mol(mol, s if isinstance(s, str) else "")
                                   for o in objectives)])
    return pd.DataFrame(rows, columns=list(names), dtype=float)
