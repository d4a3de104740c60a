"""How good a density model of molecules each model is: on held-out MOSES validation molecules,
the -ELBO with its reconstruction and KL terms and the importance-weighted NLL (k codes,
Burda et al. 2016), beside a language model with no latent, whose NLL is exact. A VAE's prior
samples can only be as close to the data as its marginal likelihood lets them: this is the
figure behind the FCD gap between a VAE and its language-model peer (benchmarks/moses.py).

    python -m benchmarks.density --models moses-charrnn moses-smiles --n 2000 --k 32

Every model scores the same first --n molecules of MOSES' validation split shipped with seqvae
(never the test split), with seqvae's own `score` (seed 0). Writes
benchmarks/results/density.json and .md (--name to write density_NAME instead).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

from benchmarks.common import (LoadMonitor, load_text, machine, machine_markdown, trained_for,
                               write_results)

VALID = "default:moses_valid"
COLUMNS = ("neg_elbo", "recon", "kl", "iw_nll", "bits_per_char")


def measure(spec: str, strings: list[str], k: int) -> dict[str, Any]:
    """One model's mean scores (and their standard errors) over ``strings``."""
    import seqvae
    model = seqvae.load(spec)
    started = time.perf_counter()
    with LoadMonitor() as load:
        table = model.score(strings, k=k, triage=False)
    scored = table.dropna(subset=["iw_nll"])
    row: dict[str, Any] = {"model": spec, "path": str(model.path),
                           "latent": bool(model.config.model.use_latent),
                           "steps": trained_for(model.path)["steps"], "n_scored": len(scored),
                           "n_unreadable": len(table) - len(scored),
                           "seconds": round(time.perf_counter() - started, 1),
                           "load": load.summary()}
    for column in COLUMNS:
        values = scored[column].astype(float)
        row[column] = float(values.mean())
        row[f"{column}_se"] = float(values.std(ddof=1) / math.sqrt(len(values)))
    return row


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [
        "# Density of held-out molecules",
        "",
        f"The first {result['n']:,} molecules of MOSES' validation split, scored by each model "
        f"with `model.score(strings, k={result['k']})` (seed 0): -ELBO = reconstruction + KL, "
        f"and the importance-weighted NLL with {result['k']} codes (a tighter bound on "
        "-log p(x); exact for a model with no latent). Nats per molecule, mean ± standard "
        f"error. Command: `{result['command']}`.",
        "",
        "| model | latent | steps | -ELBO | reconstruction | KL | IW-NLL | bits per character "
        "| IW-NLL - language model |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    reference = next((r for r in rows if not r["latent"]), None)
    for r in rows:
        gap = ("" if reference is None or r is reference
               else f"{r['iw_nll'] - reference['iw_nll']:+.2f}")
        steps = f"{r['steps']:,}" if r["steps"] else "?"
        lines.append(
            f"| {r['model']} | {'yes' if r['latent'] else 'no'} | {steps} | "
            + " | ".join(f"{r[c]:.3f} ± {r[c + '_se']:.3f}" for c in COLUMNS[:4])
            + f" | {r['bits_per_char']:.4f} | {gap} |")
    lines.append("")
    best = min(rows, key=lambda r: r["iw_nll"])
    text = f"Lowest IW-NLL: **{best['model']}**, {best['iw_nll']:.2f} nats per molecule."
    if reference is not None:
        vaes = [r for r in rows if r["latent"]]
        if vaes:
            closest = min(vaes, key=lambda r: r["iw_nll"])
            gap = closest["iw_nll"] - reference["iw_nll"]
            text += (f" The VAE closest to the language model {reference['model']} "
                     f"({reference['iw_nll']:.2f}) is {closest['model']}, "
                     f"{abs(gap):.2f} nats {'above' if gap > 0 else 'below'} it, "
                     f"with {closest['kl']:.2f} nats of KL.")
    lines += [text, ""]
    lines += [f"- {r['model']}: {r['path']}; {r['n_scored']:,} scored, {r['n_unreadable']} "
              f"unreadable; {r['seconds']:.0f} s; {load_text(r['load'])}" for r in rows]
    lines += ["", "## Machine", "", machine_markdown(result["machine"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", required=True,
                        help="shipped names, run folders or exported models")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--name", help="write density_NAME.json / .md")
    args = parser.parse_args()
    from seqvae.data import read_strings, resolve_data
    strings = read_strings(resolve_data(VALID))[:args.n]
    command = ("python -m benchmarks.density --models " + " ".join(args.models)
               + f" --n {args.n} --k {args.k}" + (f" --name {args.name}" if args.name else ""))
    rows = []
    for spec in args.models:
        rows.append(measure(spec, strings, args.k))
        print(f"{spec}: IW-NLL {rows[-1]['iw_nll']:.3f}, -ELBO {rows[-1]['neg_elbo']:.3f}, "
              f"KL {rows[-1]['kl']:.3f}", flush=True)
    result = {"n": len(strings), "k": args.k, "command": command, "rows": rows,
              "machine": machine()}
    name = f"density_{args.name}" if args.name else "density"
    json_path, md_path = write_results(name, result, markdown(result))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
