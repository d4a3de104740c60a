"""Conditional generation of molecules at requested properties, against the two ways an
unconditional model gets there: filtering its samples, and a latent search.

    python -m benchmarks.shipped train conditional --minutes 80    # the model (resumable)
    python -m benchmarks.conditional                                # the targets

The conditional model is the recipe of the shipped moses-smiles-lm (a VAE around the shipped
language model's decoder, benchmarks/shipped.py) with model.conditions = "logp,qed", trained
on the full MOSES training split for 80 minutes after the language model's 150 (--model
picks another run, e.g. runs/shipped/moses-conditional-fb0.03, the same with free bits 0.03);
its unconditional peers are shipped models each given the job it does best:

- conditional: n samples of p(x | z, y) at the target (the other condition at its training
  mean);
- filtered: n samples of moses-smiles-lm (the shipped sampler, 150 + 40 + 40 minutes: the
  conditional model's budget) from N(0, I), kept where in range;
- search: the latent GA (LatentSearch "ga") of moses-smiles (the shipped latent the searches
  and PMO use) on closeness to the target until it has decoded n codes (its oracle calls are
  the distinct valid molecules among them).

For each target (logP 1, 2, 3, 4, 5; QED 0.5, 0.7, 0.9; and logP 3 with QED 0.8 together)
each way decodes --n molecules (seed 0).

Per way and target: validity, uniqueness among valid, novelty against MOSES train, the mean
absolute error between requested and achieved property over valid molecules, the share of
valid molecules in range (logP +- 0.5, QED +- 0.1, both for the joint target), and the count of
distinct valid novel molecules in range per molecule decoded. Pictures: the achieved logP and
QED of each way per target (conditional_logp.png, conditional_qed.png). Writes
benchmarks/results/conditional.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS_DIR, machine, machine_markdown, trained_for

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "runs" / "shipped" / "moses-conditional"
PEER = "moses-smiles-lm"  # filtered prior samples
SEARCH_PEER = "moses-smiles"  # the latent GA
TOLERANCE = {"logp": 0.5, "qed": 0.1}
TARGETS: list[dict[str, float]] = ([{"logp": v} for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
                                   + [{"qed": v} for v in (0.5, 0.7, 0.9)]
                                   + [{"logp": 3.0, "qed": 0.8}])
GOAL_IN_RANGE, GOAL_VALID = 0.5, 0.9
# the guided way's weight is chosen on other targets and another seed than the reported ones
GUIDANCE_GRID = (0.0, 0.25, 0.5, 1.0, 2.0)
SELECTION_TARGETS: list[dict[str, float]] = [{"logp": 1.5}, {"logp": 4.5}, {"qed": 0.6}]
SELECTION_N = 300


def label(target: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in target.items())


def figures(smiles: list[str], decoded: int, target: dict[str, float],
            train: frozenset[str]) -> dict[str, Any]:
    """What a way made of ``decoded`` molecules: validity, uniqueness, novelty, error, range."""
    from seqvae.chem import canonical_smiles
    from seqvae.search.objectives import compute_properties

    canonical = [canonical_smiles(s) if isinstance(s, str) and s else None for s in smiles]
    valid = [c for c in canonical if c]
    distinct = list(dict.fromkeys(valid))
    values = compute_properties(valid, list(target)) if valid else None
    out: dict[str, Any] = {"decoded": decoded, "valid": len(valid) / max(decoded, 1),
                           "unique": len(distinct) / max(len(valid), 1),
                           "novel": float(np.mean([c not in train for c in distinct]))
                           if distinct else float("nan")}
    inside = np.ones(len(valid), dtype=bool)
    for name, wanted in target.items():
        achieved = values[name].to_numpy() if values is not None else np.zeros(0)
        out[f"mae_{name}"] = float(np.nanmean(np.abs(achieved - wanted))) if len(valid) else None
        out[f"achieved_{name}"] = [round(float(x), 4) for x in achieved]
        inside &= np.abs(achieved - wanted) <= TOLERANCE[name]
    out["in_range"] = float(inside.mean()) if len(valid) else 0.0
    good = {c for c, ok in zip(valid, inside) if ok and c not in train}
    out["good_per_decoded"] = len(good) / max(decoded, 1)
    return out


def closeness(target: dict[str, float]):
    """The search's objective: minus the summed distance to the target, in tolerance units."""
    from seqvae.search import objectives as O

    def score(mol) -> float:
        from rdkit.Chem import QED, Crippen
        measured = {"logp": Crippen.MolLogP(mol), "qed": QED.qed(mol)}
        return -sum(abs(measured[k] - v) / TOLERANCE[k] for k, v in target.items())

    return O.Objective("closeness", score)


def search_way(peer: Any, target: dict[str, float], n: int) -> tuple[list[str], int]:
    """The first n strings the peer's latent GA on closeness decodes (invalid ones and repeats
    included, as for the other ways): a budget of n oracle calls (distinct valid molecules)
    decodes at least n codes."""
    from seqvae.search import LatentSearch

    search = LatentSearch(peer, closeness(target))
    strings: list[str] = []
    decode = search.vae.decode

    def recording(*args: Any, **kwargs: Any) -> list[str]:
        out = decode(*args, **kwargs)
        strings.extend(out)
        return out

    search.vae.decode = recording
    try:
        search.run("ga", budget=n, seed=0, population=100, offspring=100, patience=5)
    finally:
        del search.vae.decode  # the instance attribute: the class's method again
    return strings[:n], min(n, len(strings))


def choose_guidance(model: Any, train: frozenset[str], n: int = SELECTION_N
                    ) -> tuple[float, list[dict[str, Any]]]:
    """The guidance weight of the guided way, chosen on targets none of the reported ones
    (SELECTION_TARGETS, seed 1, n samples each): the weight of GUIDANCE_GRID with the most good
    molecules per molecule decoded on average over them (0, no guidance, included)."""
    trials = []
    for w in GUIDANCE_GRID:
        per_target = [figures(sampled_smiles(model, n, 1, condition=target, guidance=w), n,
                              target, train) for target in SELECTION_TARGETS]
        trials.append({"guidance": w,
                       "good_per_decoded": float(np.mean([f["good_per_decoded"]
                                                          for f in per_target])),
                       "valid": float(np.mean([f["valid"] for f in per_target])),
                       "in_range": float(np.mean([f["in_range"] for f in per_target]))})
        print(f"guidance {w:g} on the selection targets: good per decoded "
              f"{trials[-1]['good_per_decoded']:.3f}, valid {trials[-1]['valid']:.3f}, in range "
              f"{trials[-1]['in_range']:.3f}", flush=True)
    best = max(trials, key=lambda t: t["good_per_decoded"])
    return best["guidance"], trials


def run(n: int, model_path: Path, peer_name: str, search_name: str,
        also: list[Path] | None = None, guidance: bool = True) -> dict[str, Any]:
    import seqvae
    from seqvae.metrics.reference import load_reference

    model, peer, searcher = (seqvae.load(model_path), seqvae.load(peer_name),
                             seqvae.load(search_name))
    others = {f"conditional ({path.name})": (path, seqvae.load(path)) for path in also or []}
    train = load_reference("moses", progress=False).train
    weight, trials = choose_guidance(model, train) if guidance else (0.0, [])
    guided_way = f"conditional, guidance {weight:g}" if weight else None
    rows = []
    peer_samples = sampled_smiles(peer, n, 0)
    for target in TARGETS:
        started = time.perf_counter()
        conditional = sampled_smiles(model, n, 0, condition=target)
        found, decoded = search_way(searcher, target, n)
        extra = {way: figures(sampled_smiles(other, n, 0, condition=target), n, target, train)
                 for way, (_, other) in others.items()}
        if guided_way:
            extra[guided_way] = figures(sampled_smiles(model, n, 0, condition=target,
                                                       guidance=weight), n, target, train)
        rows.append({"target": target,
                     "conditional": figures(conditional, n, target, train), **extra,
                     "filtered": figures(peer_samples, n, target, train),
                     "search": figures(found, decoded, target, train),
                     "seconds": round(time.perf_counter() - started, 1)})
        print(f"{label(target)}: in range conditional {rows[-1]['conditional']['in_range']:.3f}, "
              f"filtered {rows[-1]['filtered']['in_range']:.3f}, search "
              f"{rows[-1]['search']['in_range']:.3f}", flush=True)
    return {"n": n, "model": shown(model_path), "peer": peer_name, "search_peer": search_name,
            "rows": rows, "model_training": training(model_path),
            "also": {way: {"model": shown(path), "training": training(path)}
                     for way, (path, _) in others.items()},
            "guidance": {"way": guided_way, "weight": weight, "trials": trials,
                         "selection_targets": SELECTION_TARGETS, "selection_n": SELECTION_N}
            if guidance else None,
            "range": model.condition_range(), "machine": machine(),
            "condition_mean": dict(zip(model.condition_names,
                                       model.model.condition_mean.tolist())),
            "command": f"python -m benchmarks.conditional --n {n}"
                       + "".join(f" --also {path}" for path in also or [])
                       + ("" if guidance else " --no-guidance")}


def shown(path: Path) -> str:
    """A run folder as the report names it: relative to the repository where it is inside."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def training(path: Path) -> dict[str, Any]:
    """Steps and training minutes of a run folder (benchmarks.common.trained_for)."""
    trained = trained_for(path)
    return {"step": trained["steps"], "minutes": round((trained["train_seconds"] or 0) / 60, 1)}


def sampled_smiles(model: Any, n: int, seed: int, **sampling: Any) -> list[str]:
    """The SMILES column of model.sample(n, seed=seed, **sampling), "" where none."""
    return list(model.sample(n, seed=seed, **sampling)["SMILES"].fillna(""))


def ways_of(r: dict[str, Any]) -> list[str]:
    guided = (r.get("guidance") or {}).get("way")
    return ["conditional", *r.get("also", {}), *([guided] if guided else []), "filtered",
            "search"]


def guidance_text(g: dict[str, Any] | None) -> str:
    """How the guided way's weight was chosen, from the trials."""
    if not g:
        return ""
    targets = ", ".join(label(t) for t in g["selection_targets"])
    tried = "; ".join(f"{t['guidance']:g}: {t['good_per_decoded']:.3f} (valid {t['valid']:.3f}, "
                      f"in range {t['in_range']:.3f})" for t in g["trials"])
    chosen = (f"the guided way uses {g['weight']:g}" if g["way"]
              else "no weight above 0 did better, so no guided way is reported")
    grid = ", ".join(f"{t['guidance']:g}" for t in g["trials"])
    return (f" Guidance (classifier-free, toward the condition and away from the training mean):"
            f" its weight chosen among {grid} on"
            f" other targets ({targets}; {g['selection_n']} samples each, seed 1) by good"
            f" molecules per decode on average: {tried}; {chosen}.")


def markdown(r: dict[str, Any]) -> str:
    ways = ways_of(r)
    lines = ["# Conditional generation at requested properties", "",
             f"Conditional model `{r['model']}` ({r['model_training']['step']:,} steps, "
             f"{r['model_training']['minutes']:g} training minutes, conditions logP and QED; "
             f"training ranges " + ", ".join(f"{k} {lo:.2f} to {hi:.2f}"
                                             for k, (lo, hi) in r["range"].items())
             + f"); filtered: prior samples of `{r['peer']}`; search: the latent GA of "
             f"`{r.get('search_peer', r['peer'])}`. {r['n']:,} molecules decoded per way and target "
             f"(seed 0). In range: logP +- {TOLERANCE['logp']}, QED +- {TOLERANCE['qed']}. "
             f"Good: distinct, valid, novel (not in MOSES train) and in range, per molecule "
             f"decoded. Command: `{r['command']}`."
             + "".join(f" {way}: `{a['model']}` ({a['training']['step']:,} steps, "
                       f"{a['training']['minutes']:g} training minutes)."
                       for way, a in r.get("also", {}).items())
             + guidance_text(r.get("guidance")), "",
             "| target | way | valid | unique | novel | MAE | in range | good per decoded |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in r["rows"]:
        for way in ways:
            f = row[way]
            mae = " / ".join(f"{f[f'mae_{k}']:.2f}" for k in row["target"]
                             if f.get(f"mae_{k}") is not None) or "-"
            lines.append(f"| {label(row['target'])} | {way} | {f['valid']:.3f} | "
                         f"{f['unique']:.3f} | {f['novel']:.3f} | {mae} | {f['in_range']:.3f} | "
                         f"{f['good_per_decoded']:.3f} |")
    logp_rows = [row for row in r["rows"] if list(row["target"]) == ["logp"]]
    def winners(row: dict[str, Any]) -> list[str]:  # to the 3 decimals the table shows
        top = max(round(row[w]["good_per_decoded"], 3) for w in ways)
        return [w for w in ways if round(row[w]["good_per_decoded"], 3) == top]

    best = {label(row["target"]): winners(row) for row in r["rows"]}
    counts = {w: sum(w in b for b in best.values()) for w in ways}
    ties = [t for t, b in best.items() if len(b) > 1]
    lines += ["", f"Goal: at least {GOAL_IN_RANGE:.0%} of valid conditional samples within "
              f"+- {TOLERANCE['logp']} of the requested logP across the logP targets, validity at "
              f"least {GOAL_VALID}."]
    for way in [w for w in ways if w.startswith("conditional")]:
        share = float(np.mean([row[way]["in_range"] for row in logp_rows]))
        logp_valid = min(row[way]["valid"] for row in logp_rows)
        lowest = min(r["rows"], key=lambda row: row[way]["valid"])
        mean_valid = float(np.mean([row[way]["valid"] for row in r["rows"]]))
        lines.append(f"- {way}: {share:.1%} in range on average over the {len(logp_rows)} logP "
                     f"targets, validity at least {logp_valid:.3f} on each of them: "
                     + ("met" if share >= GOAL_IN_RANGE and logp_valid >= GOAL_VALID
                        else "not met")
                     + f". Over all {len(r['rows'])} targets validity averages {mean_valid:.3f}, "
                     f"lowest {lowest[way]['valid']:.3f} ({label(lowest['target'])}).")
    medians = [(row["target"]["logp"], float(np.median(row["conditional"]["achieved_logp"])))
               for row in logp_rows if row["conditional"]["achieved_logp"]]
    mean = r.get("condition_mean", {}).get("logp")
    if medians and mean is not None:
        toward = sum(abs(got - mean) < abs(want - mean) and (got - mean) * (want - mean) >= 0
                     for want, got in medians)
        lines += ["", "Median achieved logP of the conditional samples per requested value: "
                  + ", ".join(f"{want:g} -> {got:.2f}" for want, got in medians)
                  + f"; {toward} of {len(medians)} medians lie between the request and the "
                  f"training mean {mean:.2f} (the decoder follows the condition less than fully "
                  "where they do)."]
    lines += ["", "Most good molecules per molecule decoded: "
              + "; ".join(f"{w} on {c} of {len(best)} targets" for w, c in counts.items())
              + (f" (tied on {', '.join(ties)})" if ties else "") + ".",
              "", "![achieved logP](conditional_logp.png)", "",
              "![achieved QED](conditional_qed.png)", "", "### Machine", "",
              machine_markdown(r["machine"])]
    return "\n".join(lines)


def pictures(r: dict[str, Any]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in ("logp", "qed"):
        rows = [row for row in r["rows"] if list(row["target"]) == [name]]
        fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3), squeeze=False)
        for ax, row in zip(axes[0], rows):
            for way in ways_of(r):
                values = row[way][f"achieved_{name}"]
                if values:
                    ax.hist(values, bins=30, histtype="step", density=True, label=way)
            ax.axvline(row["target"][name], color="black", linestyle="--")
            ax.set_title(f"requested {name} {row['target'][name]:g}", fontsize=9)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(RESULTS_DIR / f"conditional_{name}.png", dpi=100)
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--peer", default=PEER, help="the model whose samples are filtered")
    parser.add_argument("--search-peer", default=SEARCH_PEER,
                        help="the model whose latent the GA searches")
    parser.add_argument("--also", type=Path, action="append", default=[],
                        help="a further conditional model measured in the same run (repeatable)")
    parser.add_argument("--no-guidance", action="store_true",
                        help="leave out the guided way (and the choice of its weight)")
    args = parser.parse_args()
    result = run(args.n, args.model, args.peer, args.search_peer, args.also,
                 guidance=not args.no_guidance)
    (RESULTS_DIR / "conditional.json").write_text(json.dumps(result, indent=1) + "\n")
    pictures(result)
    (RESULTS_DIR / "conditional.md").write_text(markdown(result) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
