"""One call for a whole latent search, as ``seqvae optimize`` runs it: the objective with its
constraints, starting points, a property head for gradient ascent, each optimiser in turn, and
their results merged, best first.

    from seqvae import load
    from seqvae.search import optimize
    result = optimize(load("moses-selfies"), "qed", methods=["prior", "bo"], budget=500)
    result.results.head()              # SMILES, objective, properties, method, z ... best first
    result.write("best.csv")           # CSV, a grid of the best molecules, best-so-far curves
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from seqvae.errors import ConfigError
from seqvae.search import objectives
from seqvae.search.auc import auc_top_k, oracle_scores
from seqvae.search.heads import HeadReport, PropertyHead, fit_property_head
from seqvae.search.latent import LatentSearch, check_options, parse_stages
from seqvae.search.objectives import Objective

__all__ = ["OptimizeResult", "optimize", "build_objective", "parse_options"]


def parse_options(given: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """Optimiser settings written METHOD.NAME=VALUE (the CLI's --option flags), such as
    reinvent.lr=0.001 or ga.population=50, as {method: {name: value}}: whole numbers become
    int, other numbers float, true/false bool, anything else stays text."""
    from seqvae.search.latent import METHODS

    out: dict[str, dict[str, Any]] = {}
    for text in given or ():
        key, sep, value = text.partition("=")
        method, dot, name = key.strip().partition(".")
        if not sep or not dot or not name.strip() or not value.strip():
            raise ConfigError(f"option {text!r}: write METHOD.NAME=VALUE, such as "
                              "reinvent.lr=0.001 or ga.population=50")
        if method not in METHODS:
            raise ConfigError(f"option {text!r}: unknown method {method!r}; choose from "
                              f"{', '.join(METHODS)}")
        value = value.strip()
        parsed: Any
        if value.lower() in ("true", "false"):
            parsed = value.lower() == "true"
        else:
            try:
                parsed = int(value)
            except ValueError:
                try:
                    parsed = float(value)
                except ValueError:
                    parsed = value
        out.setdefault(method, {})[name.strip()] = parsed
    return out


@dataclass
class OptimizeResult:
    """What optimize found: every valid molecule once, best first; per optimiser its
    best-so-far curve and a line of figures; the head fitted for gradient ascent, if any."""

    objective: Objective
    results: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)  # method, best, calls, invalid, seconds
    head_report: HeadReport | None = None

    def write(self, path: str | Path, top: int = 24, pictures: bool = True) -> dict[str, Path]:
        """The results as CSV at path (z as space-separated numbers), and with pictures a
        grid of the ``top`` best molecules (path.png) and the curves (path_curve.png)."""
        from seqvae.chem import molecule_grid
        from seqvae.viz import best_so_far

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        written = self.results.copy()
        if "z" in written:
            written["z"] = [" ".join(f"{x:.5g}" for x in z) for z in written["z"]]
        written.to_csv(out, index=False)
        files = {"results": out}
        if pictures and len(self.results):
            best = self.results.head(top)
            legends = [f"{o:.3f} (SA {sa:.1f})" for o, sa in zip(best["objective"], best["sa"])]
            files["grid"] = molecule_grid(best["SMILES"].tolist(), out.with_suffix(".png"),
                                          legends)
            files["curves"] = best_so_far(self.curves, out.with_name(out.stem + "_curve.png"),
                                          self.objective.name)
        return files


def build_objective(objective: str | Objective, seed_smiles: str | None = None,
                    min_similarity: float | None = None, max_similarity: float | None = None,
                    max_atoms: int | None = None) -> Objective:
    """An objective by name or formula ("qed", "plogp + 0.5*qed"), or as given, with the
    optional constraints: similarity to seed_smiles within [min, max], at most max_atoms heavy
    atoms."""
    if isinstance(objective, str):
        objective = objectives.get(objective, seed=seed_smiles)
    if min_similarity is not None or max_similarity is not None:
        if seed_smiles is None:
            raise ConfigError("min_similarity / max_similarity need seed_smiles (--seed-smiles)")
        objective = objective.subject_to(objectives.similarity(seed_smiles), min_similarity,
                                         max_similarity)
    if max_atoms is not None:
        objective = objective.subject_to(objectives.heavy_atoms(), maximum=max_atoms)
    return objective


def _read(spec: str | Path, column: str | None) -> list[str]:
    from seqvae.data import read_strings, resolve_data
    return [s for s in read_strings(resolve_data(spec), column) if s]


def _gradient_head(model: Any, objective: Objective, head: str | Path | PropertyHead | None,
                   head_data: str | Path, head_size: int, column: str | None, seed: int,
                   save_head: str | Path | None, progress: bool,
                   log: Callable[[str], Any]) -> tuple[PropertyHead | None, HeadReport | None]:
    """The head gradient ascent follows: given (a PropertyHead or its folder), the model's own
    (model.properties), or fitted on head_size molecules of head_data for the objective's
    terms."""
    if isinstance(head, PropertyHead):
        return head, None
    if head is not None:
        return PropertyHead.load(head), None
    if model.property_head is not None:
        log(f"using the model's own property head ({', '.join(model.property_head.names)})")
        return None, None  # LatentSearch takes the model's own
    names = [o.name for _, o in (objective.terms or ((1.0, objective),))]
    unknown = [n for n in names if n not in objectives.NAMES]
    if unknown:
        raise ConfigError(f"gradient ascent needs a property head for {unknown}: give head= "
                          "(--head DIR), or leave gradient out of the methods")
    data = _read(head_data, column)[:head_size]
    log(f"fitting a property head for {', '.join(names)} on {len(data)} molecules of {head_data}")
    fitted, report = fit_property_head(model, data, properties=names, seed=seed, progress=progress)
    log("property head held-out R^2: " + ", ".join(f"{k} {v:.3f}" for k, v in report.r2.items()))
    if save_head is not None:
        fitted.save(save_head, report)
    return fitted, report


def optimize(model: Any, objective: str | Objective = "qed",
             methods: Sequence[str] = ("prior", "gradient", "bo"), budget: int = 500,
             seed: int = 0, *, seed_smiles: str | None = None,
             min_similarity: float | None = None, max_similarity: float | None = None,
             max_atoms: int | None = None, start: str | Path | Sequence[str] = "prior",
             start_top: int = 0, column: str | None = None,
             head: str | Path | PropertyHead | None = None,
             head_data: str | Path = "default:moses_train", head_size: int = 5000,
             save_head: str | Path | None = None, log_dir: str | Path | None = None,
             progress: bool = False, log: Callable[[str], Any] = print,
             triage: bool = False,
             options: dict[str, dict[str, Any]] | None = None) -> OptimizeResult:
    """Search a molecular model's latent space with each of ``methods`` (prior, gradient,
    bo, reinvent, ga, or a hand-over such as "ga:2000+reinvent": LatentSearch.run_stages),
    ``budget`` oracle calls each, and merge what they found. ``options`` maps an optimiser's
    name to its settings (``{"reinvent": {"lr": 1e-3}}``), wherever it runs.

    start: "prior", a file of SMILES (or default:NAME) whose codes start the search (with
    start_top, only its start_top best molecules), or a list of SMILES. log_dir: a folder of
    one CSV log per optimiser; running again with it resumes each search. triage: add the
    triage columns of TrainedModel.score to the results (novelty and nearest-neighbour
    similarity to the training file, QED, SA, MW, logP, MOSES filters and alert)."""
    objective = build_objective(objective, seed_smiles, min_similarity, max_similarity, max_atoms)
    methods = [m.strip() for m in methods if m.strip()]
    plans = {method: parse_stages(method) for method in methods}
    used = {name for stages in plans.values() for name, _ in stages}
    check_options([(name, None) for name in sorted(used)], options)
    if isinstance(start, (str, Path)) and str(start) != "prior":
        source = start
        start = _read(start, column)
        if start_top:
            start = LatentSearch(model, objective).best_of(start, start_top)
            log(f"starting from the codes of the {len(start)} best molecules of {source}")
    fitted, report = None, None
    if "gradient" in used:
        fitted, report = _gradient_head(model, objective, head, head_data, head_size, column,
                                        seed, save_head, progress, log)
    tables, curves, runs = [], {}, []
    for method in methods:
        stem = method.replace(":", "-").replace("+", "_then_").replace(" ", "")
        log_file = None if log_dir is None else Path(log_dir) / f"{stem}.csv"
        search = LatentSearch(model, objective, head=fitted, log=log_file, progress=progress)
        began = time.perf_counter()
        mine = {name: (options or {}).get(name, {}) for name, _ in plans[method]}
        table = search.run_stages(plans[method], budget=budget, seed=seed, start=start,
                                  seed_smiles=seed_smiles,
                                  options={k: v for k, v in mine.items() if v})
        figures = {"method": method, "best": table["objective"].iloc[0] if len(table) else float("nan"),
                   "calls": search.oracle.calls, "invalid": search.oracle.invalid,
                   "seconds": time.perf_counter() - began,
                   # PMO's sample-efficiency score (seqvae.search.auc) of this budget
                   "auc_top10": auc_top_k(oracle_scores(search.oracle), budget=budget)}
        log(f"{method}: best {objective.name} {figures['best']:.4f} after {figures['calls']} oracle "
            f"calls ({figures['invalid']} invalid decodes) in {figures['seconds']:.1f} s; AUC "
            f"top-10 {figures['auc_top10']:.3f}")
        tables.append(table)
        curves[method] = search.best_so_far()
        runs.append(figures)
    results = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if len(results):
        results = results.sort_values("objective", ascending=False, ignore_index=True)
        results = results.drop_duplicates("SMILES", ignore_index=True)
        if triage:
            from ..scoring import triage_columns
            extra = triage_columns(model, list(results["SMILES"]), progress=progress)
            results = pd.concat([results, extra.drop(columns=[c for c in extra
                                                              if c in results])], axis=1)
    return OptimizeResult(objective, results, curves, runs, report)
