"""What the latent of a molecular VAE still carries (issue 17: "a VAE whose prior samples match
the language model's FCD ... while also giving a usable latent space"). A VAE around a language
model's decoder samples closer to the language model the less its latent carries (the free-bits
floor sets how much); this benchmark measures the other side of that trade, the same way for
every model, on MOSES validation molecules (never the test split):

    python -m benchmarks.latent_use --model moses-smiles-lm          # a shipped model, by name
    python -m benchmarks.latent_use --model runs/shipped/moses-smiles-lm-fb0.03 --name ...
    python -m benchmarks.latent_use --table                          # rebuild latent_use.md

Each --model writes benchmarks/results/latent_use/NAME.json; the first also computes the
ECFP4 reference row (baseline.json). Per model:

- rate and distortion (benchmarks.representations.likelihood): KL(q(z|x) || N(0, I)) and
  E_q[-log p(x|z)] in nats per molecule, -ELBO, the importance-weighted NLL (--k codes), active
  units and the mutual information I(x; z) under q, on --heldout molecules;
- reconstruction: greedy decoding of the posterior means of the same molecules, exact share,
  valid share and mean Tanimoto (Morgan radius 2, 2,048 bits; 0 for an invalid decode), beside
  the chance level: the mean Tanimoto of each molecule with another random held-out molecule
  (what a latent that carries nothing would give);
- interpolation: --pairs random pairs, 10 greedy decodes on the line between their means:
  valid share, neighbour Tanimoto, distinct molecules per path;
- features: the posterior mean as features for logP, QED, SA and TPSA of --features molecules,
  ridge and MLP (benchmarks.representations.regression_scores), held-out R^2 over 5 random
  80/20 splits, beside ECFP4 on the same splits.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS_DIR, LoadMonitor, machine, machines_markdown

RECORDS = RESULTS_DIR / "latent_use"
REPORT = RESULTS_DIR / "latent_use.md"


def chance_tanimoto(smiles: list[str], seed: int = 0) -> float:
    """Mean Tanimoto of each molecule with a random other one of the list (a derangement)."""
    from seqvae.chem import to_mol
    from seqvae.search.objectives import fingerprint, tanimoto

    fps = [fingerprint(to_mol(s)) for s in smiles]
    order = np.random.default_rng(seed).permutation(len(fps))
    partner = np.roll(order, 1)  # each molecule against the one before it in a random cycle
    return float(np.mean([tanimoto(fps[i], fps[j]) for i, j in zip(order, partner)]))


def measure(spec: str, heldout: int, pairs: int, k: int, features: int,
            seed: int = 0) -> dict[str, Any]:
    """Every figure of the module docstring for one model."""
    import seqvae
    from benchmarks import representations as R

    model = seqvae.load(spec)
    if not model.molecular or not model.model.config.use_latent:
        raise SystemExit(f"{spec} is not a molecular model with a latent")
    timings: dict[str, float] = {}

    def timed(part: str, function):
        start = time.perf_counter()
        result = function()
        timings[part] = round(time.perf_counter() - start, 1)
        print(f"{spec}: {part} done in {timings[part]:.0f} s", flush=True)
        return result

    strings = R.heldout_strings("molecules", heldout)
    usable, rejected = model.usable(strings)
    cfg = model.config
    out: dict[str, Any] = {
        "model": spec, "free_bits": cfg.train.free_bits, "latent_dim": cfg.model.latent_dim,
        "heldout": {"source": R.DOMAINS["molecules"].heldout, "n": len(strings),
                    "unreadable": len(rejected)}}
    out["likelihood"] = timed("likelihood", lambda: R.likelihood(model, usable, k, seed))
    out["reconstruction"] = timed("reconstruction", lambda: R.reconstruction(model, usable))
    out["reconstruction"]["chance_tanimoto"] = chance_tanimoto(usable, seed)
    figures, _ = timed("interpolation", lambda: R.interpolation(model, usable, pairs, seed))
    out["interpolation"] = figures
    task = property_task(features)
    kept, dropped = model.usable(task.smiles)
    if dropped:
        unread = {row for row, _, _ in dropped}
        rows = [i for i in range(len(task.smiles)) if i not in unread]
        task = R.FeatureTask(task.name, kept, task.targets[rows], task.target_names, task.source,
                             {**task.dropped, "model cannot read": len(dropped)})
    mu, _ = model.encode(task.smiles)
    out["features"] = timed("features", lambda: R.evaluate_features(
        {"latent mean": mu.cpu().numpy()}, task, seed))
    out["seconds"] = timings
    return out


@functools.cache
def property_task(features: int) -> Any:
    """The feature task (benchmarks.representations.property_task), its RDKit properties
    computed once per process for the baseline and the model."""
    from benchmarks import representations as R
    return R.property_task(features)


def baseline(features: int, seed: int = 0) -> dict[str, Any]:
    """ECFP4 (2,048 bits) on the feature task, the same splits and regressors."""
    from benchmarks import representations as R
    from benchmarks.semisupervised import fingerprints

    task = property_task(features)
    return R.evaluate_features({"ECFP4": fingerprints(task.smiles)}, task, seed)


def load_records() -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    records = {p.stem: json.loads(p.read_text()) for p in sorted(RECORDS.glob("*.json"))
               if p.stem != "baseline"}
    base = RECORDS / "baseline.json"
    return records, json.loads(base.read_text()) if base.exists() else None


def _r2(features: dict[str, Any], name: str, regressor: str, target: str) -> float:
    return features["features"][name][regressor][target]["mean"]


def table() -> str:
    """latent_use.md from the records, its sentences computed from them."""
    records, base = load_records()
    if not records:
        raise SystemExit(f"no records in {RECORDS}: run --model first")
    rows = sorted(records.items(), key=lambda kv: kv[1]["likelihood"]["rate"])
    targets = list(next(iter(records.values()))["features"]["features"]["latent mean"]["ridge"])
    lines = ["# What the latent carries: molecular VAEs at different rates", "",
             "MOSES validation molecules (the test split is not used). Rate = KL(q(z|x) || "
             "N(0, I)), distortion = E_q[-log p(x|z)], IW-NLL with k codes, all in nats per "
             "molecule; AU = active units (of the latent size); MI = I(x; z) under q. "
             "Reconstruction: greedy decoding of the posterior mean; chance = the mean Tanimoto "
             "of each molecule with a random other one. Features: held-out R^2 of ridge on "
             "the posterior mean (5 random 80/20 splits, mean), ECFP4 (2,048 bits) on the same "
             "splits in the last row.", "",
             "| model | free bits | rate | distortion | IW-NLL | AU | MI | exact | valid | "
             "Tanimoto (chance) | interp. valid | interp. neighbour Tanimoto | "
             + " | ".join(f"R^2 {t}" for t in targets) + " |",
             "|" + "---|" * (12 + len(targets))]
    for name, r in rows:
        lk, rc, ip = r["likelihood"], r["reconstruction"], r["interpolation"]
        fs = r["features"]
        lines.append(
            f"| {name} | {r['free_bits']:g} x {r['latent_dim']} | {lk['rate']:.2f} | "
            f"{lk['distortion']:.2f} | {lk['iw_nll']:.2f} | {lk['active_units']}/"
            f"{lk['latent_dim']} | {lk['mutual_information']:.2f} | {rc['exact']:.3f} | "
            f"{rc['valid']:.3f} | {rc['tanimoto']:.3f} ({rc['chance_tanimoto']:.3f}) | "
            f"{ip['valid']:.3f} | {ip['neighbour_tanimoto']:.3f} | "
            + " | ".join(f"{_r2(fs, 'latent mean', 'ridge', t):.3f}" for t in targets) + " |")
    if base is not None:
        lines.append("| ECFP4 (reference) | | | | | | | | | | | | "
                     + " | ".join(f"{_r2(base, 'ECFP4', 'ridge', t):.3f}" for t in targets)
                     + " |")
    lines += ["", "MLP on the same features (R^2): " + "; ".join(
        f"{name}: " + ", ".join(f"{t} {_r2(r['features'], 'latent mean', 'mlp', t):.3f}"
                                for t in targets) for name, r in rows)
        + ("" if base is None else "; ECFP4: " + ", ".join(
            f"{t} {_r2(base, 'ECFP4', 'mlp', t):.3f}" for t in targets)) + ".", ""]
    low_name, low = rows[0]
    high_name, high = rows[-1]
    rc = low["reconstruction"]
    sentence = (f"At the lowest rate measured ({low_name}, {low['likelihood']['rate']:.2f} nats, "
                f"MI {low['likelihood']['mutual_information']:.2f}), greedy reconstructions "
                f"share a mean Tanimoto of {rc['tanimoto']:.3f} with their inputs against "
                f"{rc['chance_tanimoto']:.3f} by chance "
                f"({rc['tanimoto'] / rc['chance_tanimoto']:.2f}x), and the posterior mean "
                "predicts " + ", ".join(
                    f"{t} with R^2 {_r2(low['features'], 'latent mean', 'ridge', t):.2f}"
                    for t in targets))
    if len(rows) > 1:
        sentence += (f"; at the highest ({high_name}, {high['likelihood']['rate']:.2f} nats) "
                     f"{high['reconstruction']['tanimoto']:.3f} and " + ", ".join(
                         f"{_r2(high['features'], 'latent mean', 'ridge', t):.2f}"
                         for t in targets))
    lines += [sentence + ".", ""]
    lines += ["Commands: " + "; ".join(f"`{r['command']}`" for _, r in rows) + ".", ""]
    lines.append("Mean 1-minute load average during each measurement: " + ", ".join(
        f"{name} {r['load_average']['mean']:.2f}" if r.get("load_average") else f"{name} -"
        for name, r in rows) + ".")
    lines += ["", machines_markdown([(name, r["machine"]) for name, r in rows])]
    REPORT.write_text("\n".join(lines) + "\n")
    return str(REPORT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a shipped model's name or a run / checkpoint folder")
    parser.add_argument("--name", help="the record's name (default: the folder's name)")
    parser.add_argument("--heldout", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--features", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", action="store_true", help="only rebuild latent_use.md")
    args = parser.parse_args()
    if args.model:
        RECORDS.mkdir(parents=True, exist_ok=True)
        name = args.name or Path(args.model).name
        if name == "baseline":
            raise SystemExit("--name baseline is the ECFP4 row's record; choose another")
        options = (f" --heldout {args.heldout} --pairs {args.pairs} --k {args.k} "
                   f"--features {args.features} --seed {args.seed}")
        with LoadMonitor(every=10.0) as load:
            base_path = RECORDS / "baseline.json"
            if (not base_path.exists() or json.loads(base_path.read_text())
                    .get("features_n") != args.features):  # the same molecules as the model's
                base = baseline(args.features, args.seed)
                base.update(machine=machine(), features_n=args.features)
                base_path.write_text(json.dumps(base, indent=2) + "\n")
            record = measure(args.model, args.heldout, args.pairs, args.k, args.features,
                             args.seed)
        record.update(command=f"python -m benchmarks.latent_use --model {args.model}"
                              + (f" --name {args.name}" if args.name else "") + options,
                      load_average=load.summary(), machine=machine())
        path = RECORDS / f"{name}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {path}")
    elif not args.table:
        parser.error("give --model or --table")
    print(f"wrote {table()}")


if __name__ == "__main__":
    main()
