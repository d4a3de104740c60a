"""SELFIES ring and branch indices: does telling the decoder what it has derived
(model.selfies_counter, seqvae/model/counter.py) make a SELFIES VAE write the right rings?

    python -m benchmarks.selfies_counter --part plain --minutes 30     # resumable
    python -m benchmarks.selfies_counter --part counter --minutes 30   # resumable
    python -m benchmarks.selfies_counter --part shipped                # moses-selfies, measured alike
    python -m benchmarks.selfies_counter --part table                  # rebuild the report

plain and counter: the shipped moses-selfies recipe (benchmarks/shipped.py, part selfies),
without and with model.selfies_counter, in fp32, each a `seqvae train` of --minutes CPU minutes on MOSES'
training split (`--resume` added when its folder holds a checkpoint, so a killed part goes on).
shipped: the 150-minute runs/shipped/moses-selfies itself, measured the same way, for scale.

Every figure is on MOSES' validation molecules (default:moses_valid), never the test split:
- teacher-forced from the posterior mean on --molecules of them: how often the decoder's most
  likely token is the right one where the next symbol is a ring or branch index, and elsewhere;
  the mean probability it gives the right index; the share of its wrong indices that are one
  off (a ring one atom too small or too large);
- --samples N(0, I) samples (seed 0): validity, the fractions of valid samples holding a 3- or
  4-membered ring and a ring of more than 8 atoms, beside the validation molecules' own, and the
  FCD of the valid samples to the validation molecules (biased upwards at this sample size: for
  comparing the arms, not with published FCDs).
Writes benchmarks/results/selfies_counter.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (RESULTS_DIR, LoadMonitor, load_text, machine, machines_markdown,
                               write_results)

ROOT = Path(__file__).resolve().parent.parent
RUNS = Path("runs") / "selfies_counter"
VALID = "default:moses_valid"
ARMS = ("plain", "counter")
RECORD = RESULTS_DIR / "selfies_counter.json"
LABELS = {"plain": "SELFIES VAE", "counter": "SELFIES VAE + derivation counts",
          "shipped": "shipped moses-selfies (150 min, no counts)"}


def command(arm: str, minutes: float) -> list[str]:
    """The arm's `seqvae train` command: the shipped SELFIES recipe, counts on or off."""
    from benchmarks.shipped import SHIPPED
    _, config, sets = SHIPPED["selfies"]
    # fp32 on every CPU, as the shipped model was trained (auto would pick bf16 where the CPU
    # has it, and the arms would not be comparable with the shipped row)
    sets = [*sets, f"model.selfies_counter={'true' if arm == 'counter' else 'false'}",
            "train.precision=fp32"]
    return ["seqvae", "train", config, "--out", str(RUNS / arm), "--max-minutes", f"{minutes:g}",
            "--train-data", "moses:train", "--valid-data", VALID, "--no-progress",
            *[x for s in sets for x in ("--set", s)]]


def train(arm: str, minutes: float) -> dict[str, Any]:
    """Train the arm (or go on with it); its command, sittings and load as a record."""
    cmd = command(arm, minutes)
    out = ROOT / RUNS / arm
    resume = (out / "checkpoint").is_dir()
    exe = shutil.which("seqvae") or sys.exit("seqvae is not installed (pip install -e .)")
    print(" ".join(cmd) + (" --resume" if resume else ""), flush=True)
    with LoadMonitor(every=30.0) as load:
        code = subprocess.call([exe, *cmd[1:], *(["--resume"] if resume else [])], cwd=ROOT)
    if code:
        sys.exit(code)
    return {"command": " ".join(cmd), "load_average": load.summary()}


def ring_fractions(smiles: list[str]) -> dict[str, float]:
    """Of the molecules that parse: the fraction with a ring of 3 or 4 atoms, and of over 8."""
    from rdkit import Chem
    small = large = n = 0
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if s else None
        if mol is None:
            continue
        sizes = [len(r) for r in mol.GetRingInfo().AtomRings()]
        n += 1
        small += any(k < 5 for k in sizes)
        large += any(k > 8 for k in sizes)
    return {"rings_3_4": small / max(n, 1), "rings_over_8": large / max(n, 1), "parsed": n}


def index_accuracy(model, smiles: list[str], batch_size: int = 250) -> dict[str, float]:
    """Teacher-forced from the posterior mean: accuracy at index and other positions, mean
    probability of the right index, the share of wrong indices one off."""
    from selfies.constants import INDEX_CODE

    from seqvae.model.counter import DerivationCounter, selfies_roles

    tokens_list = list(model.tokenizer.vocab)
    code = torch.tensor([INDEX_CODE.get(t, -100) for t in tokens_list])
    counter = DerivationCounter(selfies_roles(tokens_list), 1, 1)
    encoded = [ids for ids, reason in model._encode_all(smiles) if ids is not None]
    right = {True: 0, False: 0}
    seen = {True: 0, False: 0}
    p_right, one_off = 0.0, 0
    with torch.no_grad():
        for tokens, lengths in model._batches(encoded, batch_size):
            out = model.model(tokens, lengths, sample_z=False)
            probs = out.logits.float().softmax(-1)
            inputs, targets = tokens[:, :-1], tokens[:, 1:]
            index = counter.states(inputs)[1] > 0  # the next symbol is an index
            real = targets != model.model.config.pad_id
            predicted = probs.argmax(-1)
            for is_index in (True, False):
                where = real & (index if is_index else ~index)
                seen[is_index] += int(where.sum())
                right[is_index] += int((predicted[where] == targets[where]).sum())
            where = real & index
            p_right += float(probs[where].gather(1, targets[where].unsqueeze(1)).sum())
            wrong = where & (predicted != targets)
            one_off += int(((code[predicted[wrong]] - code[targets[wrong]]).abs() == 1).sum())
    wrong_total = seen[True] - right[True]
    return {"molecules": len(encoded), "index_positions": seen[True],
            "index_accuracy": right[True] / max(seen[True], 1),
            "other_accuracy": right[False] / max(seen[False], 1),
            "index_p_right": p_right / max(seen[True], 1),
            "wrong_one_off": one_off / max(wrong_total, 1)}


def measure(run: Path, n_molecules: int, n_samples: int) -> dict[str, Any]:
    import seqvae
    from benchmarks.moses import fcd_against
    from seqvae.data import read_strings, resolve_data
    from seqvae.metrics import load_reference

    model = seqvae.load(run)
    state = json.loads((run / "checkpoint" / "trainer_state.json").read_text())["trainer"]
    valid = read_strings(resolve_data(VALID))
    started = time.perf_counter()
    accuracy = index_accuracy(model, valid[:n_molecules])
    table = model.sample(n_samples, seed=0, batch_size=1000)
    smiles = list(table["SMILES"].fillna(""))
    reference = load_reference(resolve_data(VALID), progress=False).splits["Test"]
    return {"run": str(run), "steps": state["step"], "train_seconds": state["elapsed_s"],
            "selfies_counter": model.config.model.selfies_counter,
            "parameters": sum(p.numel() for p in model.model.parameters()),
            **accuracy, "samples": n_samples, "valid": float(table["valid"].mean()),
            **{f"samples_{k}": v for k, v in ring_fractions(smiles).items()},
            "fcd_valid": fcd_against(reference, smiles)[1],
            "measure_seconds": time.perf_counter() - started}


def _verdict(plain: float, counter: float, margin: float = 0.05) -> str:
    """What the FCD change says; a relative change under ``margin`` is read as none (one
    sampling seed per arm: a small change is not told apart from the seed's)."""
    change = (counter - plain) / plain
    if abs(change) < margin:
        return (f"the counts make no clear difference to FCD/Valid ({100 * change:+.1f}%, "
                f"within {100 * margin:.0f}%)")
    return f"the counts {'help' if change < 0 else 'hurt'} FCD/Valid ({100 * change:+.1f}%)"


def markdown(record: dict[str, Any]) -> str:
    rows = record["rows"]
    ref = record.get("validation_rings", {})
    lines = ["# SELFIES ring and branch indices: the derivation counts", "",
             __doc__.split("\n\n")[2].replace("\n", " ").strip(), "",
             "| arm | minutes | steps | index acc. | other acc. | p(right index) | wrong one off "
             "| valid | 3-/4-rings | rings > 8 | FCD/Valid |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {LABELS[name]} | {r['train_seconds'] / 60:.0f} | {r['steps']:,} | "
                     f"{r['index_accuracy']:.4f} | {r['other_accuracy']:.4f} | "
                     f"{r['index_p_right']:.4f} | {r['wrong_one_off']:.2f} | {r['valid']:.4f} | "
                     f"{r['samples_rings_3_4']:.3f} | {r['samples_rings_over_8']:.3f} | "
                     f"{r['fcd_valid']:.2f} |")
    if ref:
        lines.append(f"| MOSES validation molecules | | | | | | | | {ref['rings_3_4']:.3f} | "
                     f"{ref['rings_over_8']:.3f} | |")
    lines.append("")
    if "plain" in rows and "counter" in rows:
        a, b = rows["plain"], rows["counter"]
        lines.append(
            f"At {a['train_seconds'] / 60:.0f} and {b['train_seconds'] / 60:.0f} training minutes, "
            f"the counts change the decoder's index accuracy from {a['index_accuracy']:.4f} to "
            f"{b['index_accuracy']:.4f} ({100 * (b['index_accuracy'] - a['index_accuracy']):+.2f} "
            f"points), the samples holding a ring of more than 8 atoms from "
            f"{a['samples_rings_over_8']:.3f} to {b['samples_rings_over_8']:.3f}, and FCD/Valid "
            f"from {a['fcd_valid']:.2f} to {b['fcd_valid']:.2f} ({b['steps']:,} steps against "
            f"{a['steps']:,}): " + _verdict(a["fcd_valid"], b["fcd_valid"]) + ".")
        lines.append("")
    for name, r in rows.items():
        if "command" in r:
            lines.append(f"- {LABELS[name]}: `{r['command']}`; "
                         f"{load_text(r.get('load_average'))}.")
    lines += ["", machines_markdown([(LABELS[n], r.get("machine")) for n, r in rows.items()])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=[*ARMS, "shipped", "table"], required=True)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--molecules", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    record = json.loads(RECORD.read_text()) if RECORD.is_file() else {"rows": {}}
    if args.part != "table":
        if args.part == "shipped":
            from benchmarks.shipped import RUNS as SHIPPED_RUNS
            run, extra = ROOT / SHIPPED_RUNS / "moses-selfies", {}
        else:
            extra = train(args.part, args.minutes)
            run = ROOT / RUNS / args.part
        row = {**measure(run, args.molecules, args.samples), **extra, "machine": machine()}
        record["rows"][args.part] = row
        if "validation_rings" not in record:
            from seqvae.data import read_strings, resolve_data
            record["validation_rings"] = ring_fractions(read_strings(resolve_data(VALID)))
        print(json.dumps({k: v for k, v in row.items() if k != "machine"}, indent=1))
    order = [a for a in ("shipped", *ARMS) if a in record["rows"]]
    record["rows"] = {a: record["rows"][a] for a in order}
    write_results("selfies_counter", record, markdown(record))


if __name__ == "__main__":
    main()
