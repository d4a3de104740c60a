"""Training throughput: molecules and tokens per second of the shipped default model.

    python -m benchmarks.throughput --device cpu                      # this machine
    python -m benchmarks.throughput --device cpu --processes 2        # DDP, gloo, 2 processes
    python -m benchmarks.throughput --device cuda --precision bf16    # where a GPU is lent
    python -m benchmarks.throughput --device cuda --precision fp16
    python -m benchmarks.throughput --table

Each measurement is a real ``seqvae train`` command (``torchrun --nproc_per_node=N -m seqvae
train`` for N > 1) of a shipped config (default: seqvae/configs/moses_smiles.toml, the SMILES
VAE on the shipped 100k MOSES subset) for ``--steps`` steps with no evaluation; the figure is
the median over the log windows of its log.csv (molecules_per_s, tokens_per_s: training
sequences and tokens per second), the first window left out as warm-up. Under DDP the log
counts rank 0's share of each global batch; every process takes an equal share (to one
row), so the figure is that times the number of processes. Results merge into benchmarks/results/throughput.json (one row per config,
device, precision and process count) and throughput.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, machine, machine_markdown

RUNS = Path("runs/throughput")
RESULTS = RESULTS_DIR / "throughput.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch
        return torch.cuda.get_device_name(0)
    return f"{machine()['cpu']} ({os.cpu_count()} cores)"


def measure(config: str, device: str, precision: str, processes: int, steps: int,
            log_every: int) -> dict[str, Any]:
    name = f"{Path(config).stem}-{device}-{precision}-{processes}"
    out = RUNS / name
    shutil.rmtree(out, ignore_errors=True)
    settings = [f"train.log_every={log_every}", f"train.eval_every={10 * steps}",
                f"train.checkpoint_every={10 * steps}", "train.eval_samples=0",
                "train.max_minutes=0", f'train.precision="{precision}"']
    train = ["-m", "seqvae", "train", config, "--out", str(out), "--device", device,
             "--max-steps", str(steps), "--no-progress",
             *[arg for item in settings for arg in ("--set", item)]]
    env = dict(os.environ)
    if processes > 1:
        # one thread per process on a CPU: the processes share the cores between them
        if device == "cpu":
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
        command = [sys.executable, "-m", "torch.distributed.run",
                   f"--nproc_per_node={processes}", "--master_addr=127.0.0.1",
                   f"--master_port={_free_port()}", *train]
    else:
        command = [sys.executable, *train]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    rows = [r for r in csv.DictReader(open(out / "log.csv")) if r.get("molecules_per_s")]
    windows = rows[1:] or rows  # the first window holds the warm-up
    summary = json.loads((out / "summary.json").read_text())
    return {"config": config, "device": device, "device_name": device_name(device),
            "precision": summary.get("precision", precision), "processes": processes,
            "steps": steps, "windows": len(windows),
            # log.csv counts rank 0's rows; every process takes an equal share of each batch
            "molecules_per_s": processes * statistics.median(
                float(r["molecules_per_s"]) for r in windows),
            "tokens_per_s": processes * statistics.median(
                float(r["tokens_per_s"]) for r in windows),
            "parameters": summary.get("parameters"), "wall_s": wall,
            "command": " ".join(["python", *command[1:]]), "machine": machine()}


def table(records: list[dict[str, Any]]) -> str:
    lines = ["# Training throughput", "",
             "Median molecules and tokens per second over the log windows of a real `seqvae "
             "train` run of the shipped default model (the first window left out as warm-up), "
             "no evaluation; with several processes, all of them together (rank 0's figure "
             "times the number of processes, each taking an equal share of every batch). Rerun: `python -m benchmarks.throughput --device cpu` (see the "
             "script for GPU and DDP).", "",
             "| config | device | precision | processes | molecules/s | tokens/s | steps | "
             "measured |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {Path(r['config']).stem} | {r['device_name']} | {r['precision']} | "
                     f"{r['processes']} | {r['molecules_per_s']:,.0f} | "
                     f"{r['tokens_per_s']:,.0f} | {r['steps']} | {r['machine']['date'][:10]} |")
    lines += ["", "Where a GPU was lent to a session its rows appear here; each row's machine "
              "is in throughput.json.", ""]
    if records:
        lines += ["## Machine of the last row", "", machine_markdown(records[-1]["machine"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="seqvae/configs/moses_smiles.toml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--table", action="store_true", help="only rewrite throughput.md")
    args = parser.parse_args()
    records = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    if not args.table:
        record = measure(args.config, args.device, args.precision, args.processes, args.steps,
                         args.log_every)
        key = ("config", "device_name", "precision", "processes")
        records = [r for r in records if any(r[k] != record[k] for k in key)] + [record]
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(records, indent=2) + "\n")
    text = table(records)
    (RESULTS_DIR / "throughput.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
