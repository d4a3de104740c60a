"""User labels on a share of the rows (data.label_columns): how well the joint property head
predicts them on held-out molecules, against the two ways a user gets the same prediction
without seqvae's joint training.

    python -m benchmarks.semisupervised --minutes 10          # each share, one sitting each
    python -m benchmarks.semisupervised --part table

The labels stand in for a chemist's assay values: logP and QED of the shipped MOSES training
molecules (default:moses_train, 100,000), kept on 1%, 10% or 100% of the rows (drawn with seed
0) and left empty on the others. For each share:

- joint: the SMILES VAE's default recipe trained --minutes with data.label_columns = "y_logp,
  y_qed" (the head learns the labels from the rows that have them, the VAE from all rows);
- frozen codes: a head fitted on the posterior means of the shipped moses-smiles (trained
  without labels) from the same labelled rows (seqvae.search.fit_property_head);
- ECFP4 + ridge: Morgan radius-2 2,048-bit fingerprints and ridge regression on the same
  labelled rows, its penalty chosen on a tenth of them.

Each is scored by R^2 on the 10,000 molecules of default:moses_valid, never seen in training.
Writes benchmarks/results/semisupervised.json and .md (one record per share, so the shares run
in separate sittings and merge).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import (RESULTS_DIR, LoadMonitor, load_text, machine, machine_markdown,
                               shipped_training)

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "semisupervised"
SHARES = (0.01, 0.1, 1.0)
PROPERTIES = ("logp", "qed")
RECORD = RESULTS_DIR / "semisupervised.json"


def labelled_files(share: float) -> tuple[Path, Path, list[int]]:
    """The training CSV with y_logp / y_qed on ``share`` of its rows, the validation CSV with
    all of them, and the labelled rows."""
    from seqvae.data import read_strings, resolve_data
    from seqvae.search.objectives import compute_properties

    RUNS.mkdir(parents=True, exist_ok=True)
    files = RUNS / f"train_{share:g}.csv", RUNS / "valid.csv"
    train = read_strings(resolve_data("default:moses_train"))
    rows = sorted(np.random.default_rng(0).permutation(len(train))[:int(share * len(train))]
                  .tolist())
    if not files[0].is_file():
        values = compute_properties([train[i] for i in rows], list(PROPERTIES))
        frame = pd.DataFrame({"SMILES": train})
        for name in PROPERTIES:
            frame[f"y_{name}"] = np.nan
            frame.loc[rows, f"y_{name}"] = values[name].to_numpy()
        frame.to_csv(files[0], index=False)
    if not files[1].is_file():
        valid = read_strings(resolve_data("default:moses_valid"))
        values = compute_properties(valid, list(PROPERTIES))
        frame = pd.DataFrame({"SMILES": valid, **{f"y_{n}": values[n] for n in PROPERTIES}})
        frame.to_csv(files[1], index=False)
    return files[0], files[1], rows


def r_squared(pred: np.ndarray, true: np.ndarray) -> float:
    known = np.isfinite(pred) & np.isfinite(true)
    pred, true = pred[known], true[known]
    return float(1 - ((true - pred) ** 2).sum() / ((true - true.mean()) ** 2).sum())


def fingerprints(smiles: list[str]) -> np.ndarray:
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return np.stack([generator.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)).astype(np.float32)
                     for s in smiles])


def ridge(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """Ridge regression (weights with the intercept last), its penalty chosen from 10^-2..10^3
    on a tenth of the rows; refitted on all of them."""
    def fit(a: np.ndarray, b: np.ndarray, penalty: float) -> np.ndarray:
        a1 = np.hstack([a, np.ones((len(a), 1), np.float32)])
        eye = np.eye(a1.shape[1], dtype=np.float64) * penalty
        eye[-1, -1] = 0.0  # the intercept is not penalised
        return np.linalg.solve(a1.T @ a1 + eye, a1.T @ b)

    order = np.random.default_rng(seed).permutation(len(x))
    held, kept = order[:max(len(x) // 10, 2)], order[max(len(x) // 10, 2):]
    scores = {}
    for penalty in 10.0 ** np.arange(-2, 4):
        w = fit(x[kept], y[kept], penalty)
        pred = np.hstack([x[held], np.ones((len(held), 1), np.float32)]) @ w
        scores[penalty] = r_squared(pred, y[held])
    best = max(scores, key=scores.get)
    return fit(x, y, best), best, scores[best]


def one_share(share: float, minutes: float) -> dict[str, Any]:
    import seqvae
    from seqvae import load_config
    from seqvae.search import fit_property_head

    train_csv, valid_csv, rows = labelled_files(share)
    valid = pd.read_csv(valid_csv)
    truth = {n: valid[f"y_{n}"].to_numpy() for n in PROPERTIES}
    run = RUNS / f"joint_{share:g}"
    config = load_config(ROOT / "seqvae/configs/moses_smiles.toml", [
        f'data.train="{train_csv}"', f'data.valid="{valid_csv}"',
        'data.label_columns="' + ",".join(f"y_{n}" for n in PROPERTIES) + '"',
        f"train.max_minutes={minutes}", f'train.out_dir="{run}"',
        'train.precision="fp32"'])  # most users' CPUs' precision, not bf16 where it exists
    with LoadMonitor(every=10.0) as load:
        summary = seqvae.train(config, resume=(run / "checkpoint").is_dir(), progress=False)
    joint = seqvae.load(run)
    mu, _ = joint.encode(list(valid["SMILES"]))
    predicted = joint.property_head.predict(mu.cpu().numpy())
    out: dict[str, Any] = {"share": share, "labelled": len(rows), "minutes": minutes,
                           "steps": summary["step"], "load_average": load.summary(),
                           "joint": {n: r_squared(predicted[f"y_{n}"].to_numpy(), truth[n])
                                     for n in PROPERTIES}}
    train_frame = pd.read_csv(train_csv).iloc[rows]
    shipped = seqvae.load("moses-smiles")
    head, report = fit_property_head(
        shipped, list(train_frame["SMILES"]),
        targets={n: train_frame[f"y_{n}"].to_numpy() for n in PROPERTIES}, seed=0)
    codes, _ = shipped.encode(list(valid["SMILES"]))
    frozen = head.predict(codes.cpu().numpy())
    out["frozen_codes"] = {n: r_squared(frozen[n].to_numpy(), truth[n]) for n in PROPERTIES}
    x_train, x_valid = fingerprints(list(train_frame["SMILES"])), fingerprints(list(valid["SMILES"]))
    out["ecfp4_ridge"], out["ridge_penalty"] = {}, {}
    for n in PROPERTIES:
        w, penalty, _ = ridge(x_train, train_frame[f"y_{n}"].to_numpy())
        pred = np.hstack([x_valid, np.ones((len(x_valid), 1), np.float32)]) @ w
        out["ecfp4_ridge"][n] = r_squared(pred, truth[n])
        out["ridge_penalty"][n] = penalty
    out["machine"] = machine()
    return out


def markdown(record: dict[str, Any]) -> str:
    lines = ["# Semi-supervised labels: the joint head against frozen codes and ECFP4 + ridge",
             "", "Labels: logP and QED of default:moses_train molecules, kept on a share of the "
             "rows; R^2 on the 10,000 default:moses_valid molecules. Joint: the SMILES VAE's "
             "default recipe with data.label_columns, trained the minutes given. Frozen codes: "
             "a head on the shipped moses-smiles's posterior means, the same labelled rows. "
             "ECFP4 + ridge: the same rows, the penalty chosen on a tenth of them. Command: "
             "`python -m benchmarks.semisupervised --share S --minutes M`.", "",
             "| labelled share | rows | steps | property | joint | frozen codes | ECFP4 + ridge |",
             "|---:|---:|---:|---|---:|---:|---:|"]
    shares = sorted(record["shares"].values(), key=lambda r: r["share"])
    for r in shares:
        for n in PROPERTIES:
            lines.append(f"| {r['share']:.0%} | {r['labelled']:,} | {r['steps']:,} | {n} | "
                         f"{r['joint'][n]:.3f} | {r['frozen_codes'][n]:.3f} | "
                         f"{r['ecfp4_ridge'][n]:.3f} |")
    lines.append("")
    for r in shares:
        wins = [n for n in PROPERTIES
                if r["joint"][n] > max(r["frozen_codes"][n], r["ecfp4_ridge"][n])]
        lines.append(f"- {r['share']:.0%} labelled ({r['minutes']:g} minutes, "
                     f"{load_text(r['load_average'])}): the joint head is best on "
                     + (", ".join(wins) if wins else "no property") + ".")
    budget = shipped_budget()
    if shares and budget:
        rows = round(shares[0]["labelled"] / shares[0]["share"])
        lines += ["", f"Budgets: each joint model trains {shares[0]['minutes']:g} minutes on the "
                  f"{rows:,} rows of default:moses_train; the frozen codes are those of "
                  f"moses-smiles, trained {budget}."]
    if shares:
        lines += ["", "### Machine", "", machine_markdown(shares[-1]["machine"])]
    return "\n".join(lines)


def shipped_budget() -> str | None:
    """How the shipped moses-smiles was trained ("14,549 steps, 150 training minutes on the
    full MOSES training split"), from benchmarks.common.shipped_training."""
    trained = shipped_training("moses-smiles")
    if trained is None:
        return None
    data = ("the full MOSES training split" if trained["data"] == "moses:train"
            else trained["data"])
    return f"{trained['steps']:,} steps, {trained['minutes']:g} training minutes on {data}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--share", type=float, choices=SHARES)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--part", choices=["run", "table"], default="run")
    args = parser.parse_args()
    record = json.loads(RECORD.read_text()) if RECORD.is_file() else {"shares": {}}
    if args.part == "run":
        for share in ([args.share] if args.share else SHARES):
            if f"{share:g}" in record["shares"]:
                continue
            record["shares"][f"{share:g}"] = one_share(share, args.minutes)
            RECORD.write_text(json.dumps(record, indent=1) + "\n")
    (RESULTS_DIR / "semisupervised.md").write_text(markdown(record) + "\n")
    print(markdown(record))


if __name__ == "__main__":
    main()
