"""Which prior and which decoding give the best molecules from one trained VAE: N(0, I) against
the aggregate posterior (a full-covariance Gaussian, or mixtures of more components, fitted to
codes of training molecules), each decoded by sampling at temperature 1 and below, and
greedily.

    python -m benchmarks.samplers --model runs/shipped/moses-smiles --n 10000

The aggregate priors are fitted to z ~ q(z|x) of --codes training molecules (the model's own
training data, seed 0). Each is also scored by the mean log-density it gives to codes of 5,000
MOSES validation molecules (never the test split): the held-out criterion to choose the number
of components by, computed before any sample is drawn. Every sampler draws --n molecules (seed
0), scored by seqvae.metrics against the MOSES test split and, as FCD/Valid, against MOSES'
validation molecules shipped with seqvae: the sampler the report recommends is the one with the
lowest FCD/Valid, so no choice is made on the test split. Writes
benchmarks/results/samplers_NAME.json and .md (NAME: --name, else the model folder's name).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import LoadMonitor, load_text, machine, machine_markdown, write_results
from benchmarks.selfies_counter import ring_fractions

VALID = "default:moses_valid"
N_VALID_CODES = 5000
COLUMNS = ["valid", "unique@10000", "FCD/Valid", "FCD/Test", "SNN/Test", "Frag/Test", "IntDiv", "Filters",
           "Novelty"]


def samplers(components: list[int], temperatures: list[float],
             index_temperatures: list[float] = (), syntax: bool = False,
             top_ps: list[float] = ()) -> list[dict[str, Any]]:
    """The samplers measured: each prior at each temperature, and greedy decoding; the
    mixtures of more than one component at temperature 1 only; N(0, I) at each temperature
    with each index temperature (SELFIES models: the ring and branch index symbols decoded at
    their own temperature) and at temperature 1 with each nucleus (top-p: each token drawn
    among the most likely ones that hold p of the probability); with ``syntax`` (SMILES
    models) each sampled row also under the SMILES syntax mask."""
    rows = []
    for prior in ["standard"] + [f"aggregate-{k}" for k in components]:
        k = int(prior.split("-")[1]) if "-" in prior else None
        temps = temperatures if k in (None, 1) else [1.0]
        rows += [{"prior": prior, "components": k, "temperature": t, "greedy": False,
                  "index_temperature": None} for t in temps]
        if k is None:
            rows += [{"prior": prior, "components": k, "temperature": t, "greedy": False,
                      "index_temperature": it} for t in temps for it in index_temperatures]
            rows += [{"prior": prior, "components": k, "temperature": 1.0, "greedy": False,
                      "index_temperature": None, "top_p": p} for p in top_ps]
        if k in (None, 1):
            rows.append({"prior": prior, "components": k, "temperature": 1.0, "greedy": True,
                         "index_temperature": None})
    rows = [{"top_p": 1.0, **row, "syntax": False} for row in rows]
    if syntax:
        rows += [{**row, "syntax": True} for row in rows if not row["greedy"]]
    return rows


def label(row: dict[str, Any]) -> str:
    if row.get("prior") == "posterior":
        return "z ~ q(z|x) of training molecules (not a prior: a diagnostic), T = 1"
    prior = ("language model (no latent)" if row.get("prior") == "none" else
             "N(0, I)" if row["components"] is None else
             "aggregate, full-covariance Gaussian" if row["components"] == 1 else
             f"aggregate, mixture of {row['components']}")
    index = row.get("index_temperature")
    top_p = row.get("top_p", 1.0)
    return prior + (", greedy" if row["greedy"] else f", T = {row['temperature']:g}") + (
        "" if index is None else f", index symbols at T = {index:g}") + (
        "" if top_p == 1 else f", top-p = {top_p:g}") + (
        ", SMILES syntax mask" if row.get("syntax") else "")


def run(model_path: str, n: int, n_codes: int, components: list[int],
        temperatures: list[float], index_temperatures: list[float] = (),
        syntax: bool = False, top_ps: list[float] = (),
        posterior: bool = False) -> dict[str, Any]:
    import seqvae
    from seqvae.data import read_strings, resolve_data
    from seqvae.metrics import evaluate_molecules, load_reference

    model = seqvae.load(model_path)
    # the MOSES reference with MOSES' validation molecules as one more split: FCD/Valid, ...
    reference = load_reference("moses", progress=False)
    reference.splits["Valid"] = load_reference(resolve_data(VALID), progress=False).splits["Test"]
    started = time.perf_counter()
    valid = read_strings(resolve_data(VALID))[:N_VALID_CODES]
    mixtures: dict[int, Any] = {}
    held_out: dict[str, float] = {}
    latent = model.config.model.use_latent
    if not latent:  # a language model: no codes, no priors; its own samples are the peer's row
        components, source, fit_seconds = [], model.config.data.train, 0.0
    else:  # what fit_prior fits to: codes of n_codes training rows drawn with seed 0
        train_strings, source = model._training_strings()  # read once: also --posterior's
        codes, _ = model.codes_for(train_strings, n=n_codes, seed=0)
        valid_codes, _ = model.codes_for(valid, n=len(valid), seed=1)
        fit_seconds = time.perf_counter() - started
        held_out["N(0, I)"] = float(torch.distributions.Normal(0.0, 1.0)
                                    .log_prob(valid_codes.double()).sum(1).mean())
    for k in components:
        mixtures[k] = model.fit_prior_to(codes, components=k, seed=0, save=False)
        held_out[f"aggregate, {k} component(s)"] = float(mixtures[k].log_prob(valid_codes).mean())
    results = []
    rows = samplers(components, temperatures, index_temperatures, syntax, top_ps)
    if posterior and latent:  # the codes the decoder was trained on, not a fitted prior's
        rows.append({"prior": "posterior", "components": None, "temperature": 1.0,
                     "greedy": False, "index_temperature": None, "top_p": 1.0, "syntax": False})
    for row in rows:
        if row["components"] is not None:
            model._aggregate = mixtures[row["components"]]
        with LoadMonitor(every=10.0) as load:
            start = time.perf_counter()
            if row["prior"] == "posterior":  # n other training molecules (seed 2), one z each
                smiles = model.decode(model.codes_for(train_strings, n=n, seed=2)[0], greedy=False, seed=0)
                smiles = [x or "" for x in smiles]
            else:
                table = model.sample(n, seed=0, temperature=row["temperature"],
                                     greedy=row["greedy"],
                                     prior="standard" if row["components"] is None
                                     else "aggregate",
                                     batch_size=1000, index_temperature=row["index_temperature"],
                                     syntax=row["syntax"], top_p=row["top_p"])
                smiles = list(table["SMILES"].fillna(""))
            seconds = time.perf_counter() - start
            report = evaluate_molecules(smiles, reference, progress=False)
        metrics = {c: report.metrics[c] for c in [*COLUMNS, "n_samples"]}
        metrics["rings > 8"] = ring_fractions(smiles)["rings_over_8"]
        if not latent:
            row["prior"] = "none"
        results.append({**row, "label": label(row), "metrics": metrics,
                        "sample_seconds": seconds, "load_average": load.summary()})
        print(f"{label(row)}: " + ", ".join(f"{c} {metrics[c]:.4f}" for c in COLUMNS), flush=True)
    return {"model": model_path, "training_data": source, "n": n, "codes": n_codes,
            "components": components, "temperatures": temperatures,
            "index_temperatures": list(index_temperatures),
            "valid_rings_over_8": ring_fractions(valid)["rings_over_8"],
            "held_out_log_density": held_out, "encode_seconds": fit_seconds,
            "results": results, "machine": machine(),
            "command": (f"python -m benchmarks.samplers --model {model_path} --n {n} --codes "
                        f"{n_codes} --components {' '.join(map(str, components))} "
                        f"--temperatures {' '.join(f'{t:g}' for t in temperatures)}"
                        + (f" --index-temperatures {' '.join(f'{t:g}' for t in index_temperatures)}"
                           if index_temperatures else "")
                        + (f" --top-p {' '.join(f'{p:g}' for p in top_ps)}" if top_ps else "")
                        + (" --syntax" if syntax else "")
                        + (" --posterior" if posterior and latent else ""))}


def markdown(r: dict[str, Any]) -> str:
    diagnostic = next((x for x in r["results"] if x.get("prior") == "posterior"), None)
    results = [x for x in r["results"] if x is not diagnostic]  # the samplers proper
    chosen = min(results, key=lambda x: x["metrics"]["FCD/Valid"])
    most_valid = max(results, key=lambda x: x["metrics"]["valid"])
    base = next(x for x in results if x["components"] is None and not x["greedy"]
                and x["temperature"] == 1.0 and not x.get("syntax"))
    held = r["held_out_log_density"]  # empty for a language model (no latent, no prior)
    best_density = max(held, key=held.get) if held else None
    lines = [f"# Samplers of one trained model: {r['model']}", "",
             f"{r['n']:,} molecules per sampler (seed 0), scored by seqvae.metrics against the MOSES "
             "test split and, as FCD/Valid, against MOSES' validation molecules (the split a "
             "sampler is chosen on). "
             + (f"Aggregate priors fitted to z ~ q(z|x) of {r['codes']:,} training molecules "
                f"({r['training_data']}). " if held else
                f"A language model (no latent, no prior), trained on {r['training_data']}. ")
             + f"Command: `{r['command']}`.", "",
             "| sampler | " + " | ".join(COLUMNS) + " | rings > 8 | seconds to sample |",
             "|---" * (len(COLUMNS) + 3) + "|"]
    for x in r["results"]:
        rings = x["metrics"].get("rings > 8")
        lines.append(f"| {x['label']} | " + " | ".join(f"{x['metrics'][c]:.4f}" for c in COLUMNS)
                     + f" | {'' if rings is None else f'{rings:.3f}'} | "
                       f"{x['sample_seconds']:.0f} |")
    if "valid_rings_over_8" in r:
        lines += ["", f"rings > 8: the share of the valid samples holding a ring of more than 8 "
                      f"atoms; of the first {N_VALID_CODES:,} MOSES validation molecules: "
                      f"{r['valid_rings_over_8']:.3f}."]
    if held:
        lines += ["", "Mean log-density of the codes of 5,000 MOSES validation molecules under "
                  "each prior (higher fits the encoder's codes better; the held-out way to "
                  "choose the number of components):", "",
                  "| prior | mean log-density (nats) |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in held.items()]
    base_label = base["label"].replace(", T = 1", " sampled at T = 1")
    lines += ["",
              f"Lowest FCD/Valid, the sampler to use: **{chosen['label']}**, FCD/Valid "
              f"{chosen['metrics']['FCD/Valid']:.4f} and FCD/Test "
              f"{chosen['metrics']['FCD/Test']:.4f} ({base_label}: "
              f"{base['metrics']['FCD/Valid']:.4f} and {base['metrics']['FCD/Test']:.4f}); most "
              "valid: "
              f"**{most_valid['label']}**, {most_valid['metrics']['valid']:.4f} ({base_label}: "
              f"{base['metrics']['valid']:.4f})."
              + (f" The prior that fits the held-out codes best is {best_density}."
                 if best_density else ""), ""]
    if diagnostic is not None:
        d, b = diagnostic["metrics"], base["metrics"]
        kept = d["FCD/Valid"] / b["FCD/Valid"]  # the share of the FCD the codes do not remove
        lines += [f"Decoded from z ~ q(z|x) of {r['n']:,} other training molecules (seed 2), the "
                  f"codes the decoder learned from, which no fitted prior can match more "
                  f"closely: valid {d['valid']:.4f}, FCD/Valid {d['FCD/Valid']:.4f}, FCD/Test "
                  f"{d['FCD/Test']:.4f}, novelty {d['Novelty']:.4f} ({base_label}: "
                  f"{b['valid']:.4f}, {b['FCD/Valid']:.4f}, {b['FCD/Test']:.4f}, "
                  f"{b['Novelty']:.4f}). These codes leave {100 * kept:.0f}% of {base_label}'s "
                  f"FCD/Valid: " + (f"{100 * kept:.0f}% of it is the decoder's, "
                                    f"{100 * (1 - kept):.0f}% the prior's" if kept <= 1
                                    else "the prior is not what holds it back, the decoder is")
                  + ". Not a sampler: it needs the training molecules, and its samples stay "
                    "near them.", ""]
    lines += ["Load while sampling and scoring: " + "; ".join(
                  f"{x['label']}: {load_text(x['load_average'])}" for x in r["results"]) + ".", "",
              "## Machine", "", machine_markdown(r["machine"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="runs/shipped/moses-smiles")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--codes", type=int, default=20_000)
    parser.add_argument("--components", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.8])
    parser.add_argument("--index-temperatures", type=float, nargs="+", default=[],
                        help="SELFIES models: N(0, I) also with the ring and branch index "
                             "symbols at each of these temperatures (0: the most likely)")
    parser.add_argument("--syntax", action="store_true",
                        help="SMILES models: each sampled row also under the SMILES syntax mask "
                             "(sample(syntax=True))")
    parser.add_argument("--top-p", type=float, nargs="+", default=[],
                        help="N(0, I) at temperature 1 also with nucleus sampling at each of "
                             "these p (sample(top_p=p))")
    parser.add_argument("--posterior", action="store_true",
                        help="VAEs: also decode z ~ q(z|x) of --n other training molecules, a "
                             "diagnostic row (is the gap the prior's or the decoder's?)")
    parser.add_argument("--name", help="the report's name: samplers_NAME (default: the model "
                        "folder's name)")
    args = parser.parse_args()
    result = run(args.model, args.n, args.codes, args.components, args.temperatures,
                 args.index_temperatures, args.syntax, args.top_p, args.posterior)
    if args.name:
        result["command"] += f" --name {args.name}"
    name = "samplers_" + (args.name or Path(args.model).name)
    write_results(name, result, markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
