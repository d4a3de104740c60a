"""LatentSearch: find molecules with better properties by moving through a VAE's latent space.

Five optimisers behind one interface, all spending one budget of oracle calls::

    from seqvae import load
    from seqvae.search import LatentSearch, objectives as O
    vae = load("moses-selfies")
    search = LatentSearch(vae, O.qed())
    best = search.run("bo", budget=500, seed=0)        # a DataFrame, best first
    search.run("prior", budget=500, seed=0)            # the baseline, on the same search log

* ``"prior"``: decode codes drawn from the model's prior (N(0, I); for a hierarchical model
  z1 ~ N(0, I), then z2 ~ p(z2 | z1)), or around the starting codes, and keep the best; the
  baseline every other method must beat.
* ``"gradient"``: gradient ascent on z through a property head (seqvae.search.heads, or
  the head a model was trained with, model.properties),
  with a Gaussian prior penalty, 0.5 * prior_weight * |z|^2, and a projection onto the ball
  of radius max_norm that keep z where the prior has mass (as LIMO does); the path of each
  start is decoded every ``decode_every`` steps and scored by the true objective.
* ``"bo"``: Bayesian optimisation with BoTorch: a GP on (z, objective), batches of q points
  chosen by q log expected improvement inside a trust region around the best code
  (TuRBO-style: it grows after successes and shrinks after failures), clipped to a box
  around the starting codes.
* ``"reinvent"``: reinforcement learning on a copy of the decoder (REINVENT's augmented-
  likelihood update, with the trained decoder as its prior; seqvae.search.reinforce): the
  decoder itself learns to write better molecules, from codes drawn from the prior or around
  the starting codes.
* ``"ga"``: a genetic algorithm on the codes (seqvae.search.evolve): rank-weighted parents
  among the best codes found, uniform crossover, Gaussian mutation, each child decoded.

**Hand-overs** in one budget: ``search.run_stages("ga:2000+reinvent", budget=10_000)`` runs
the GA until the search has spent 2,000 calls, then REINVENT from the best codes and molecules
found so far until 10,000 (what ``start="best"`` does, stage after stage); ``options=`` gives
each optimiser its own settings, ``{"ga": {"population": 50}, "reinvent": {"lr": 1e-3}}``.

**Oracle calls.** A call is one evaluation of the true objective on a valid molecule that has
not been scored before in this search (canonical SMILES). A decoded string that is not a
molecule costs no call (it is counted as ``invalid``); a molecule seen before gets its cached
score at no cost. Failed evaluations (the function raised or returned NaN) and infeasible
ones (a constraint is not met) do cost a call.

**Starting points** (``start=``): ``"prior"`` (random codes), ``"best"`` (the codes of the
best molecules this search has found so far: one optimiser can hand over to another, e.g.
gradient ascent for 150 calls, then BO around what it found), a list of SMILES (their
posterior means, for example the best molecules of a dataset), codes z, or a seed molecule
given with ``seed_smiles=`` (constrained optimisation: its code, and the objective usually
subject to a similarity constraint).

**Results.** :meth:`LatentSearch.results` is a DataFrame of the valid molecules scored, each
once, best first: SMILES, objective, qed, logp, sa, plogp, plogp_raw, mw, tpsa, atoms, similarity
(to the seed, when there is one), method, run, step and oracle call at which it was first
found, and its z. With ``log=path`` every evaluation is appended to a CSV as it happens; a
new LatentSearch on the same log resumes: the calls already made count against the budget
and their scores are cached (BO starts from all of them).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqvae.errors import ConfigError, DataError
from seqvae.model.heads import PropertyHead
from seqvae.search.objectives import Objective, Score, fingerprint, property_panel

METHODS = ("prior", "gradient", "bo", "reinvent", "ga")
Stage = tuple[str, "int | None"]  # an optimiser and the call count it hands over at (None: the end)


def parse_stages(text: str) -> list[Stage]:
    """``"ga:2000+reinvent"`` -> ``[("ga", 2000), ("reinvent", None)]``: optimisers joined by
    '+', each but the last with the number of oracle calls of the whole search at which it
    hands over to the next (the last runs to the budget). One name alone is one stage."""
    stages: list[Stage] = []
    parts = [part.strip() for part in str(text).split("+")]
    for i, part in enumerate(parts):
        name, _, calls = part.partition(":")
        name = name.strip()
        if name not in METHODS:
            raise ConfigError(f"unknown method {name!r} in {text!r}; choose from "
                              f"{', '.join(METHODS)}, joined by '+' for a hand-over "
                              "(e.g. ga:2000+reinvent)")
        last = i == len(parts) - 1
        if not calls.strip():
            if not last:
                raise ConfigError(f"{text!r}: {name!r} hands over to the next optimiser, so it "
                                  f"needs the call count to stop at, e.g. {name}:2000")
            stages.append((name, None))
            continue
        if last:
            raise ConfigError(f"{text!r}: the last optimiser runs to the budget; drop "
                              f"':{calls.strip()}' after {name!r}")
        try:
            until = int(calls.replace("_", "").replace(",", ""))
        except ValueError:
            raise ConfigError(f"{text!r}: {calls.strip()!r} after {name!r} is not a whole "
                              "number of oracle calls") from None
        if until < 1 or (stages and until <= (stages[-1][1] or 0)):
            raise ConfigError(f"{text!r}: hand-over points must be positive and increase, got "
                              f"{until} after {stages[-1][1] if stages else 'the start'}")
        stages.append((name, until))
    return stages
LOG_FIELDS = ["SMILES", "objective", "status", "message", "method", "run", "step", "call", "z"]


@dataclass
class _Entry:
    smiles: str
    score: Score
    method: str
    run: int
    step: int
    call: int
    z: np.ndarray


def head_target(head: PropertyHead | None, objective: Objective,
                weights: dict[str, float] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The property head's prediction of an objective, as a differentiable function of z
    (N, D) -> (N,): the weighted sum of the head's outputs named by the objective's terms, or
    by ``weights`` ({property: weight}) when the head does not predict the objective itself."""
    if head is None:
        raise ConfigError("gradient ascent needs a property head on z: fit one with "
                          "seqvae.search.fit_property_head and pass it as "
                          "LatentSearch(vae, objective, head=head)")
    if weights is None:
        terms = objective.terms or ((1.0, objective),)
        weights = {o.name: w for w, o in terms}
        missing = [n for n in weights if n not in head.names]
        if missing:
            raise ConfigError(
                f"the property head predicts {', '.join(head.names)}, not "
                f"{', '.join(missing)} of the objective {objective.name!r}; pass "
                "head_weights={property: weight} to say what to ascend")
    columns = torch.tensor([head.index(n) for n in weights])
    factors = torch.tensor([float(w) for w in weights.values()])
    head = head.eval()
    for p in head.parameters():
        p.requires_grad_(False)
    return lambda z: (head(z)[:, columns] * factors).sum(1)


def ascend(z0: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor], steps: int,
           lr: float = 0.05, prior_weight: float = 0.1, anchor_weight: float = 0.0,
           max_norm: float | None = None, decode_every: int = 1
           ) -> Iterator[tuple[int, torch.Tensor]]:
    """Gradient ascent on z, many paths at once: Adam on -target(z) + 0.5 * prior_weight *
    |z|^2 + 0.5 * anchor_weight * |z - z0|^2, each z projected onto |z| <= max_norm (default
    sqrt(D) + 3, the prior's typical shell with a margin). Yields (step, z) at step 0, every
    ``decode_every`` steps and at the last step; z is a detached copy to decode."""
    radius = float(max_norm) if max_norm is not None else math.sqrt(z0.size(1)) + 3.0
    z0 = z0.detach().float()
    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    for step in range(steps + 1):
        if step % decode_every == 0 or step == steps:
            yield step, z.detach().clone()
        if step == steps:
            return
        loss = (-target(z) + 0.5 * prior_weight * (z ** 2).sum(1)
                + 0.5 * anchor_weight * ((z - z0) ** 2).sum(1)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            norms = z.norm(dim=1, keepdim=True).clamp_min(1e-12)
            z.mul_(torch.where(norms > radius, radius / norms, torch.ones_like(norms)))


class Oracle:
    """The true objective with a budget: caches by canonical SMILES, counts calls, keeps every
    evaluation, and appends each to an optional CSV log."""

    def __init__(self, objective: Objective, log: str | Path | None = None):
        self.objective = objective
        self.entries: dict[str, _Entry] = {}
        self.calls = 0
        self.invalid = 0
        self.trace: list[dict[str, Any]] = []  # per call: method, run, call, best so far
        self.last_keys: list[str | None] = []  # canonical SMILES of score()'s last strings
        self._best = -math.inf
        self.log = Path(log) if log is not None else None
        if self.log is not None and self.log.exists() and self.log.stat().st_size > 0:
            self._resume()

    def _resume(self) -> None:
        assert self.log is not None
        try:
            table = pd.read_csv(self.log, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"search log {self.log} cannot be read ({exc}); move it away to "
                            "start a new search") from None
        missing = [c for c in LOG_FIELDS if c not in table.columns]
        if missing:
            raise DataError(f"search log {self.log} lacks columns {missing}; it was not written "
                            "by LatentSearch")
        for row in table.itertuples(index=False):
            value = float(row.objective) if row.status == "ok" else -math.inf
            z = np.array([float(x) for x in str(row.z).split()], dtype=np.float32)
            self.entries[row.SMILES] = _Entry(row.SMILES, Score(value, row.status, row.message),
                                              row.method, int(row.run), int(row.step),
                                              int(row.call), z)
        self.calls = max((e.call for e in self.entries.values()), default=0)
        for entry in sorted(self.entries.values(), key=lambda e: e.call):
            self._record(entry)

    def score(self, smiles: Sequence[str], z: np.ndarray, method: str, run: int, step: int,
              budget: int) -> np.ndarray:
        """Objective values of decoded strings (-inf: invalid, failed or infeasible; NaN: not
        evaluated because the budget is spent)."""
        from seqvae.chem import to_mol, to_smiles
        values = np.full(len(smiles), np.nan)
        self.last_keys = [None] * len(smiles)
        for i, text in enumerate(smiles):
            mol = to_mol(text)
            if mol is None or mol.GetNumAtoms() == 0:
                self.invalid += 1
                values[i] = -math.inf
                continue
            key = to_smiles(mol)
            self.last_keys[i] = key
            if key in self.entries:
                values[i] = self.entries[key].score.value
                continue
            if self.calls >= budget:
                continue
            self.calls += 1
            score = self.objective.score_mol(mol, key)
            entry = _Entry(key, score, method, run, step, self.calls, np.asarray(z[i], np.float32))
            self.entries[key] = entry
            self._append(entry)
            self._record(entry)
            values[i] = score.value
        return values

    def _record(self, entry: _Entry) -> None:
        self._best = max(self._best, entry.score.value)
        self.trace.append({"method": entry.method, "run": entry.run, "call": entry.call,
                           "best": self._best})

    def _append(self, entry: _Entry) -> None:
        if self.log is None:
            return
        new = not self.log.exists() or self.log.stat().st_size == 0
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(LOG_FIELDS)
            writer.writerow([entry.smiles, entry.score.value if entry.score.ok else "",
                             entry.score.status, entry.score.message, entry.method, entry.run,
                             entry.step, entry.call, " ".join(f"{x:.5g}" for x in entry.z)])

    def best(self) -> float:
        """The best objective value scored so far (-inf before any success)."""
        return self._best


def option_names(method: str) -> list[str]:
    """The settings ``LatentSearch.run(method, ...)`` takes beside budget, seed and start."""
    import inspect

    if method == "reinvent":
        from seqvae.search.reinforce import reinvent as function
    elif method == "ga":
        from seqvae.search.evolve import latent_ga as function
    else:
        function = {"prior": LatentSearch._prior, "gradient": LatentSearch._gradient,
                    "bo": LatentSearch._bo}[method]
    fixed = {"self", "search", "budget", "run", "generator", "start", "seed_smiles"}
    return [name for name, parameter in inspect.signature(function).parameters.items()
            if name not in fixed and parameter.kind is parameter.POSITIONAL_OR_KEYWORD]


def check_options(stages: Sequence[Stage], options: dict[str, dict[str, Any]] | None) -> None:
    """Refuse, before any call is spent, settings for an optimiser the stages do not run or
    that the optimiser does not take."""
    names = [name for name, _ in stages]
    unused = sorted(set(options or {}) - set(names))
    if unused:
        raise ConfigError(f"options given for {', '.join(unused)}, which the stages "
                          f"({'+'.join(names)}) do not run")
    for name, given in (options or {}).items():
        known = option_names(name)
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ConfigError(f"{name} has no option {', '.join(map(repr, unknown))}; its "
                              f"options are {', '.join(known)}")


class LatentSearch:
    """Optimise an objective over a VAE's latent space; see the module's documentation."""

    def __init__(self, vae: Any, objective: Objective, head: PropertyHead | None = None,
                 head_weights: dict[str, float] | None = None, log: str | Path | None = None,
                 progress: bool = False):
        if not getattr(vae, "molecular", False):
            raise ConfigError("LatentSearch needs a molecular (SMILES or SELFIES) model")
        if not isinstance(objective, Objective):
            raise ConfigError("objective must be a seqvae.search.objectives.Objective; wrap a "
                              "plain function with objectives.custom(fn)")
        if head is None:  # a model trained with model.properties carries its own head
            head = getattr(vae, "property_head", None)
        if head is not None and head.latent_dim != vae.latent_dim:
            raise ConfigError(f"the property head reads {head.latent_dim}-dimensional codes; "
                              f"the model's latent has {vae.latent_dim} dimensions")
        bound, weights = getattr(head, "model_sha256", None), getattr(vae, "weights_sha256", None)
        if bound is not None and weights is not None and bound != weights:
            raise ConfigError("the property head was fitted to the codes of another model (its "
                              f"model_sha256 {bound[:12]}... is not this model's {weights[:12]}...), "
                              "so its predictions would mean nothing here; fit one to this "
                              "model with seqvae.search.fit_property_head (or `seqvae optimize "
                              "--save-head`)")
        self.vae = vae
        self.objective = objective
        self.head = head
        self.head_weights = head_weights
        self.oracle = Oracle(objective, log)
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.reports: dict[str, dict[str, Any]] = {}  # what a run says of itself (reinvent)
        self.decoded = 0  # codes decoded by this search's runs (calls count new molecules only)
        self._runs = max((e.run for e in self.oracle.entries.values()), default=-1) + 1
        seed = objective.seed_smiles
        self._seed_fp = None
        if seed is not None:
            from seqvae.chem import to_mol
            self._seed_fp = fingerprint(to_mol(seed))

    # -- starting points ------------------------------------------------------------------
    def start_codes(self, start: str | Sequence[str] | np.ndarray | torch.Tensor, n: int,
                    generator: torch.Generator, seed_smiles: str | None = None) -> torch.Tensor:
        """n starting codes (n, D): from the prior, from the codes of the n best molecules
        found so far ("best"), from the codes of given SMILES (repeated if fewer than n), or
        from codes z given directly."""
        dim = self.vae.latent_dim
        if seed_smiles is not None:
            start = [seed_smiles]
        if isinstance(start, str) and start == "best":
            # the order of results(), without computing every molecule's properties for it
            found = sorted((e for e in self.oracle.entries.values() if e.score.ok),
                           key=lambda e: (-e.score.value, e.call))[:n]
            if not found:
                raise DataError("start='best': this search has found no molecule yet; run an "
                                "optimiser first (or start from 'prior')")
            start = np.stack([e.z for e in found])
        if isinstance(start, str):
            if start != "prior":
                raise ConfigError(f"start must be 'prior', 'best', a list of SMILES or codes; "
                                  f"got {start!r} (a seed molecule goes in seed_smiles=)")
            return self.vae.model.sample_prior(n, generator)
        if isinstance(start, (np.ndarray, torch.Tensor)):
            codes = torch.as_tensor(np.asarray(start), dtype=torch.float32)
            if codes.dim() != 2 or codes.size(1) != dim:
                raise DataError(f"starting codes must have shape (N, {dim}), got "
                                f"{tuple(codes.shape)}")
        else:
            smiles = list(start)
            if not smiles:
                raise DataError("start: the list of starting SMILES is empty")
            reasons = self.vae.check(smiles)
            bad = [f"{s!r}: {r}" for s, r in zip(smiles, reasons) if r]
            if bad:
                raise DataError(f"{len(bad)} starting molecule(s) cannot be encoded: "
                                + "; ".join(bad[:3]))
            codes, _ = self.vae.encode(smiles)
            codes = codes.float().cpu()
        reps = math.ceil(n / len(codes))
        return codes.repeat(reps, 1)[:n]

    def best_of(self, smiles: Sequence[str], n: int = 50) -> list[str]:
        """The n molecules of a dataset that score best on the objective and that the model
        can encode: starting points for a search (start=search.best_of(data)). Scoring a
        dataset you already have is not counted as oracle calls."""
        smiles = [s for s, reason in zip(smiles, self.vae.check(list(smiles))) if reason is None]
        scores = [self.objective(s).value for s in smiles]
        order = sorted(range(len(smiles)), key=lambda i: -scores[i])
        best = [smiles[i] for i in order if math.isfinite(scores[i])][:n]
        if not best:
            raise DataError("best_of: no molecule of the dataset is encodable and scores a "
                            "finite value")
        return best

    # -- the shared bookkeeping ---------------------------------------------------------
    def _evaluate(self, z: torch.Tensor, method: str, run: int, step: int,
                  budget: int) -> np.ndarray:
        z = z.detach().float().cpu()
        strings = self.vae.decode(z)
        self.decoded += len(strings)
        return self.oracle.score(strings, z.numpy(), method, run, step, budget)

    def _check_budget(self, budget: int) -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ConfigError(f"budget must be a positive number of oracle calls, got {budget!r}")

    # -- the optimisers ---------------------------------------------------------------
    def run(self, method: str, budget: int = 500, seed: int = 0,
            start: str | Sequence[str] | np.ndarray = "prior", seed_smiles: str | None = None,
            **options: Any) -> pd.DataFrame:
        """Run one optimiser until ``budget`` oracle calls of this search are spent (a resumed
        search counts its earlier calls); returns the results of the whole search so far."""
        if method not in METHODS:
            raise ConfigError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        self._check_budget(budget)
        if seed_smiles is not None:
            from seqvae.chem import to_mol
            if to_mol(seed_smiles) is None:
                raise DataError(f"seed molecule {seed_smiles!r} is not a valid SMILES")
        check_options([(method, None)], {method: options} if options else None)
        run = self._runs
        self._runs += 1
        generator = torch.Generator().manual_seed(seed)
        began = time.perf_counter()
        runner: Callable[..., Any] = {"prior": self._prior, "gradient": self._gradient,
                                      "bo": self._bo, "reinvent": self._reinvent,
                                      "ga": self._ga}[method]
        report = runner(budget=budget, run=run, generator=generator, start=start,
                        seed_smiles=seed_smiles, **options)
        self.timings[f"{method}#{run}"] = time.perf_counter() - began
        if report is not None:
            self.reports[f"{method}#{run}"] = report
        return self.results()

    def run_stages(self, stages: str | Sequence[Stage], budget: int = 500, seed: int = 0,
                   start: str | Sequence[str] | np.ndarray = "prior",
                   seed_smiles: str | None = None,
                   options: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
        """Optimisers one after another in one budget: each stage runs until the search has
        spent its hand-over count of calls (the last one, ``budget``), and every stage after
        the first starts from the best codes and molecules found so far (start="best").
        ``stages`` is text (``"ga:2000+reinvent"``, see parse_stages) or (method, calls)
        pairs; ``options`` maps an optimiser's name to its settings."""
        if isinstance(stages, str):
            stages = parse_stages(stages)
        self._check_budget(budget)
        options = dict(options or {})
        check_options(stages, options)
        for i, (name, until) in enumerate(stages):
            if until is not None and until >= budget:
                raise ConfigError(f"{name} hands over at {until} calls, not below the budget "
                                  f"of {budget}")
            first = {"start": start, "seed_smiles": seed_smiles} if i == 0 else {"start": "best"}
            self.run(name, budget=budget if until is None else until, seed=seed,
                     **first, **options.get(name, {}))
        return self.results()

    def _bar(self, budget: int, method: str):
        from tqdm.auto import tqdm
        return tqdm(total=budget, initial=min(self.oracle.calls, budget), desc=method,
                    unit="call", disable=not self.progress)

    def _prior(self, budget: int, run: int, generator: torch.Generator, start: Any,
               seed_smiles: str | None, batch_size: int = 100, sigma: float = 1.0,
               max_rounds: int = 1000) -> None:
        """Decode random codes: prior samples, or start codes plus sigma * N(0, I) noise."""
        centred = not (isinstance(start, str) and start == "prior" and seed_smiles is None)
        centres = self.start_codes(start, batch_size, generator, seed_smiles) if centred else None
        bar = self._bar(budget, "prior")
        for step in range(max_rounds):
            if self.oracle.calls >= budget:
                break
            z = (self.vae.model.sample_prior(batch_size, generator) if centres is None else
                 centres + sigma * torch.randn(batch_size, self.vae.latent_dim, generator=generator))
            before = self.oracle.calls
            self._evaluate(z, "prior", run, step, budget)
            bar.update(self.oracle.calls - before)
        bar.close()

    def _reinvent(self, budget: int, run: int, generator: torch.Generator, start: Any,
                  seed_smiles: str | None, **options: Any) -> dict[str, Any]:
        """REINVENT's policy update on a copy of the decoder (seqvae.search.reinforce)."""
        from seqvae.search.reinforce import reinvent
        return reinvent(self, budget, run, generator, start, seed_smiles, **options)

    def _ga(self, budget: int, run: int, generator: torch.Generator, start: Any,
            seed_smiles: str | None, **options: Any) -> dict[str, Any]:
        """A genetic algorithm on the codes (seqvae.search.evolve)."""
        from seqvae.search.evolve import latent_ga
        return latent_ga(self, budget, run, generator, start, seed_smiles, **options)

    def _head_target(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return head_target(self.head, self.objective, self.head_weights)

    def _gradient(self, budget: int, run: int, generator: torch.Generator, start: Any,
                  seed_smiles: str | None, n_starts: int = 20, steps: int = 100,
                  lr: float = 0.05, prior_weight: float = 0.1, max_norm: float | None = None,
                  anchor_weight: float = 0.0, decode_every: int = 5, max_restarts: int = 100) -> None:
        """Paths of :func:`ascend` (anchor_weight keeps each near its start, for constrained
        optimisation), n_starts at a time, restarted until the budget is spent."""
        target = self._head_target()
        from_codes = seed_smiles is not None or not (isinstance(start, str) and start == "prior")
        bar = self._bar(budget, "gradient")
        for restart in range(max_restarts):
            if self.oracle.calls >= budget:
                break
            z0 = self.start_codes(start, n_starts, generator, seed_smiles)
            if restart > 0 or from_codes:
                # later restarts (and several paths from one seed) begin a little apart
                z0 = z0 + (0.1 if restart == 0 else 0.5) * torch.randn(z0.shape, generator=generator)
            for step, z in ascend(z0, target, steps, lr, prior_weight, anchor_weight, max_norm,
                                  decode_every):
                before = self.oracle.calls
                self._evaluate(z, "gradient", run, restart * (steps + 1) + step, budget)
                bar.update(self.oracle.calls - before)
                if self.oracle.calls >= budget:
                    break
        bar.close()

    def _bo(self, budget: int, run: int, generator: torch.Generator, start: Any,
            seed_smiles: str | None, n_init: int = 50, q: int = 10, box: float = 3.0,
            length: float = 0.8, length_min: float = 0.05, length_max: float = 1.6,
            success_tolerance: int = 3, failure_tolerance: int = 3, num_restarts: int = 4,
            raw_samples: int = 256, fit_maxiter: int = 50, acq_maxiter: int = 50,
            max_points: int = 400, max_iterations: int = 500) -> None:
        """BoTorch: a SingleTaskGP on the (z, y) of this search, q log-EI in a trust region.

        The region is a box of half-width ``length`` (in units of the box's half-width) around
        the best code, inside the search box: the prior's [-box, box]^D, or the starting codes'
        range widened by 1 on each side. Invalid decodes and failed or infeasible molecules
        enter the GP at the worst value seen. The GP sees at most ``max_points`` points, those
        nearest the region's centre; its hyperparameters start from the last iteration's and
        get ``fit_maxiter`` L-BFGS steps, the acquisition ``acq_maxiter`` (on this CPU, with
        200 points in 64 dimensions, fitting and optimising to convergence took 15 s + 5 s an
        iteration; capped, 0.3 s + 0.5 s)."""
        from botorch.acquisition.logei import qLogExpectedImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Normalize, Standardize
        from botorch.optim import optimize_acqf
        from gpytorch.mlls import ExactMarginalLogLikelihood

        dim = self.vae.latent_dim
        prior_start = isinstance(start, str) and start == "prior" and seed_smiles is None
        z_init = self.start_codes(start, n_init, generator, seed_smiles)
        if prior_start:
            lower, upper = -box * torch.ones(dim), box * torch.ones(dim)
        else:
            z_init = z_init + 0.1 * torch.randn(z_init.shape, generator=generator)
            z_init[0] = self.start_codes(start, 1, generator, seed_smiles)[0]
            lower, upper = z_init.min(0).values - 1.0, z_init.max(0).values + 1.0
        bar = self._bar(budget, "bo")
        xs: list[torch.Tensor] = []
        ys: list[float] = []
        for e in self.oracle.entries.values():  # a resumed search: everything scored so far
            if len(e.z) == dim:
                xs.append(torch.as_tensor(e.z, dtype=torch.float64))
                ys.append(e.score.value)
        before = self.oracle.calls
        values = self._evaluate(z_init, "bo", run, 0, budget)
        bar.update(self.oracle.calls - before)
        for zi, v in zip(z_init, values):
            if not np.isnan(v):
                xs.append(zi.double())
                ys.append(float(v))
        successes = failures = 0
        previous: Any = None  # the last GP, whose hyperparameters start the next fit
        half = (upper - lower).double() / 2
        lower, upper = lower.double(), upper.double()
        for iteration in range(1, max_iterations + 1):
            if self.oracle.calls >= budget or not xs:
                break
            x = torch.stack(xs)
            y = torch.tensor(ys, dtype=torch.float64)
            finite = torch.isfinite(y)
            if not finite.any():  # nothing scored yet: keep exploring around the start
                y_fill = torch.zeros_like(y)
            else:
                y_fill = torch.where(finite, y, y[finite].min())
            best_index = int(torch.argmax(y_fill))
            centre = x[best_index]
            tr_lower = torch.maximum(centre - length * half, lower)
            tr_upper = torch.minimum(centre + length * half, upper)
            if len(x) > max_points:  # a local GP: the points nearest the centre
                nearest = torch.argsort(((x - centre) / half).norm(dim=1))[:max_points]
                x, y_fill = x[nearest], y_fill[nearest]
            # the GP's input scaling spans the box and every point seen (a resumed search or
            # a prior draw can lie outside the box)
            bounds = torch.stack([torch.minimum(lower, x.min(0).values),
                                  torch.maximum(upper, x.max(0).values)])
            model = SingleTaskGP(x, y_fill.unsqueeze(1), input_transform=Normalize(dim, bounds=bounds),
                                 outcome_transform=Standardize(1))
            try:
                with torch.random.fork_rng():
                    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
                    if previous is not None:
                        model.covar_module.load_state_dict(previous.covar_module.state_dict())
                        model.likelihood.load_state_dict(previous.likelihood.state_dict())
                    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model),
                                     optimizer_kwargs={"options": {"maxiter": fit_maxiter}})
                    previous = model
                    acquisition = qLogExpectedImprovement(model, best_f=y_fill.max())
                    candidates, _ = optimize_acqf(acquisition, torch.stack([tr_lower, tr_upper]),
                                                  q=q, num_restarts=num_restarts,
                                                  raw_samples=raw_samples,
                                                  options={"maxiter": acq_maxiter})
            except Exception as error:  # a GP fit can fail numerically; fall back to sampling
                if self.progress:
                    print(f"BO iteration {iteration}: GP step failed ({type(error).__name__}: "
                          f"{error}); sampling the trust region instead")
                u = torch.rand(q, dim, generator=generator, dtype=torch.float64)
                candidates = tr_lower + u * (tr_upper - tr_lower)
            best_before = float(y_fill.max())
            before = self.oracle.calls
            values = self._evaluate(candidates.float(), "bo", run, iteration, budget)
            bar.update(self.oracle.calls - before)
            for zi, v in zip(candidates, values):
                if not np.isnan(v):
                    xs.append(zi.double())
                    ys.append(float(v))
            finite_new = values[np.isfinite(values)]
            if finite_new.size and finite_new.max() > best_before + 1e-3 * abs(best_before):
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            if successes >= success_tolerance:
                length, successes = min(2 * length, length_max), 0
            elif failures >= failure_tolerance:
                length, failures = length / 2, 0
                if length < length_min:  # the region has collapsed: start over, wide
                    length = 0.8
        bar.close()

    # -- results --------------------------------------------------------------------------
    def results(self, include_failed: bool = False) -> pd.DataFrame:
        """Valid molecules scored in this search, each once, best first, with their properties,
        similarity to the seed, where they were found, and z. include_failed adds the failed
        and infeasible ones (objective -inf) with their message."""
        rows = []
        from seqvae.chem import to_mol
        for e in self.oracle.entries.values():
            if not e.score.ok and not include_failed:
                continue
            mol = to_mol(e.smiles)
            panel = property_panel(mol, self._seed_fp) if mol is not None else {}
            row = {"SMILES": e.smiles, "objective": e.score.value, **panel, "method": e.method,
                   "run": e.run, "step": e.step, "call": e.call, "z": e.z}
            if include_failed:
                row.update(status=e.score.status, message=e.score.message)
            rows.append(row)
        columns = ["SMILES", "objective", "qed", "logp", "sa", "plogp", "plogp_raw", "mw", "tpsa",
                   "atoms"]
        columns += (["similarity"] if self._seed_fp is not None else [])
        columns += ["method", "run", "step", "call", "z"]
        columns += (["status", "message"] if include_failed else [])
        table = pd.DataFrame(rows, columns=columns)
        return table.sort_values(["objective", "call"], ascending=[False, True],
                                 ignore_index=True)

    def best_so_far(self) -> pd.DataFrame:
        """Best objective found against oracle calls, one row per call (with the method and
        run that made it), a resumed search's earlier calls included."""
        return pd.DataFrame(self.oracle.trace, columns=["method", "run", "call", "best"])

    def failures(self) -> pd.DataFrame:
        """The molecules whose evaluation failed or broke a constraint, with the reason."""
        table = self.results(include_failed=True)
        return table[table["status"] != "ok"].reset_index(drop=True)

    def sample_near(self, n: int = 1000, top: int = 10, sigma: float = 0.3, seed: int = 0,
                    head_filter: float | None = None) -> pd.DataFrame:
        """Property-guided sampling: decode n codes drawn around the codes of the ``top`` best
        molecules found (z + sigma * N(0, I)); with a property head and ``head_filter``, only
        codes whose predicted objective is at least that are decoded. The valid, new molecules
        are scored by the true objective (each a call, no budget) and returned best first,
        each once, for a batch of diverse candidates rather than one."""
        best = self.results().head(top)
        if best.empty:
            raise DataError("nothing found yet to sample near; run a search first")
        generator = torch.Generator().manual_seed(seed)
        centres = torch.tensor(np.stack(best["z"].to_list()), dtype=torch.float32)
        pick = torch.randint(0, len(centres), (n,), generator=generator)
        z = centres[pick] + sigma * torch.randn(n, centres.size(1), generator=generator)
        if head_filter is not None:
            with torch.no_grad():
                keep = self._head_target()(z) >= head_filter
            z = z[keep]
        run = self._runs
        self._runs += 1
        known = set(self.oracle.entries)
        if len(z):
            self._evaluate(z, "near", run, 0, budget=self.oracle.calls + len(z))
        table = self.results()
        return table[~table["SMILES"].isin(known)].reset_index(drop=True)
