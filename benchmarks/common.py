"""Shared by the benchmark scripts: the machine description (with its CPU features, measured
matrix-product speed and load), and writing results."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import resource
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"

# The sentence recipes as brown_lstm_vae.toml and brown_lstm_lm.toml gave them before issue 22
# made them the shipped models' (BN-VAE, schedules as shares of the budget, LSTM-448 decoders):
# the benchmarks whose rows were measured with the earlier recipe keep it by these overrides
BROWN_VAE_BEFORE_22 = ("model.decoder_hidden=512", "model.mu_batchnorm=0.0",
                       "train.pretrain_steps=500", "train.pretrain_fraction=0.0",
                       "train.kl_warmup_steps=3000", "train.kl_warmup_fraction=0.0")
BROWN_LM_BEFORE_22 = ("model.decoder_hidden=512",)

# CPU flags that decide how fast float32 and bfloat16 matrix products can run (Linux names in
# /proc/cpuinfo), per architecture: stated as present or absent in every machine description
CPU_FLAGS = {
    "x86": ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
            "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"),
    "arm": ("asimd", "asimdhp", "sve", "sve2", "bf16", "i8mm"),
}
# keys of machine() that change from run to run on the same machine; same_machine ignores them
VOLATILE_KEYS = ("date", "load_average")
# keys machine() gained with the CPU flags; older records lack them
NEWER_KEYS = ("cpu_flags", "cpu_flags_absent", "torch_cpu_capability", "onednn_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, list[str]] | None:
    """The CPU_FLAGS this CPU has and lacks, read from /proc/cpuinfo (None where it is absent:
    not Linux). x86 lists them on a 'flags' line, ARM on 'Features'."""
    if not cpuinfo.exists():
        return None
    found: set[str] | None = None
    for line in cpuinfo.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found = set(value.split())
            break  # the first CPU's; the others of one machine list the same
    if found is None:
        return None
    arch = platform.machine().lower()
    names = CPU_FLAGS["arm" if arch.startswith(("arm", "aarch")) else "x86"]
    return {"present": [f for f in names if f in found],
            "absent": [f for f in names if f not in found]}


def load_average() -> float | None:
    """The 1-minute load average now (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def machine() -> dict[str, Any]:
    """Where and with what the benchmark ran: CPU model and flags, torch's SIMD level and
    oneDNN's bfloat16 verdict, threads, versions, the load average when it was taken."""
    cpu_model = platform.processor()
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("torch", "tokenizers", "rdkit", "selfies", "pandas", "molsets"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    import torch
    flags = cpu_flags()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu_model,
        "cpu_flags": None if flags is None else flags["present"],
        "cpu_flags_absent": None if flags is None else flags["absent"],
        "torch_cpu_capability": _torch_cpu_capability(torch),
        "onednn_bf16": _onednn_bf16(torch),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "load_average": load_average(),
        "python": platform.python_version(),
        **versions,
    }


def _torch_cpu_capability(torch: Any) -> str | None:
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return None


def _onednn_bf16(torch: Any) -> bool | None:
    """oneDNN's own test for native bfloat16 (AVX-512 BF16 or AMX); None if torch lacks it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


def machine_markdown(info: dict[str, Any]) -> str:
    """The machine description as a Markdown list (lists joined with spaces)."""
    def show(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return " ".join(str(v) for v in value) or "none"
        return value
    return "\n".join(f"- {key}: {show(value)}" for key, value in info.items())


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when two machine() records describe the same machine and software (dates and
    load ignored; a key one of them lacks, from an older record, is not compared)."""
    keys = (set(a) & set(b)) - set(VOLATILE_KEYS)
    return all(a[k] == b[k] for k in keys)


def cpu_kind(info: dict[str, Any] | None) -> str:
    """The kind of CPU a machine() record describes (its name and torch's CPU capability):
    steps in a time budget, and so every figure of a budgeted run, compare only within one
    kind."""
    info = info or {}
    return f"{info.get('cpu', '?')} {info.get('torch_cpu_capability', '?')}"


def machines_markdown(records: Sequence[tuple[str, dict[str, Any] | None]],
                      heading: str = "##") -> str:
    """A Markdown description of the machines that named parts ran on: one section when all
    parts ran on the same machine, else one per group of parts that share one. Each part's
    date and load average are listed beside its name."""
    groups: list[tuple[list[str], dict[str, Any]]] = []
    missing = [name for name, info in records if not info]
    for name, info in records:
        if not info:
            continue
        for names, known in groups:
            if same_machine(known, info):
                names.append(name)
                break
        else:
            groups.append(([name], info))
    by_name = dict(records)
    lines: list[str] = []
    for names, info in groups:
        title = "Machine" if len(groups) == 1 and not missing else f"Machine ({', '.join(names)})"
        lines += [f"{heading} {title}", ""]
        shown = {k: v for k, v in info.items() if k not in VOLATILE_KEYS}
        for key in NEWER_KEYS:  # records from before these were read say so
            shown.setdefault(key, "not recorded in this record")
        lines.append(machine_markdown(shown))
        lines += ["", "| part | run at | 1-minute load average when recorded |", "|---|---|---|"]
        for name in names:
            load = by_name[name].get("load_average")
            lines.append(f"| {name} | {by_name[name].get('date', '-')} | "
                         f"{'not measured in this record' if load is None else f'{load:.2f}'} |")
        lines.append("")
    if missing:
        lines += [f"{heading} Machine not recorded", "",
                  "No machine record in: " + ", ".join(missing) + ".", ""]
    return "\n".join(lines)


class LoadMonitor:
    """Samples the 1-minute load average in a background thread while a measurement runs
    (`with LoadMonitor() as load: ...`, then load.summary()): what else the CPUs were doing."""

    def __init__(self, every: float = 5.0):
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.seconds = 0.0

    def _sample(self) -> None:
        value = load_average()
        if value is not None:
            self.samples.append(value)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> LoadMonitor:
        self._started = time.perf_counter()
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.seconds = time.perf_counter() - self._started

    def summary(self) -> dict[str, Any] | None:
        """start, end, mean, max of the samples, their count and the seconds covered."""
        if not self.samples:
            return None
        return {"start": self.samples[0], "end": self.samples[-1],
                "mean": round(sum(self.samples) / len(self.samples), 2),
                "max": max(self.samples), "samples": len(self.samples),
                "seconds": round(self.seconds, 1)}


def load_text(load: dict[str, Any] | None, threads: int | None = None,
              cpus: int | None = None) -> str:
    """A sentence fragment stating a LoadMonitor summary, or that it was not measured.

    The 1-minute load average counts the measured process's own busy threads too, so it is
    stated beside the thread count and the usable CPUs rather than read as 'idle' or 'busy'.
    """
    if not load:
        return "load average not measured in this record"
    text = (f"1-minute load average {load['mean']:.2f} on average (from {load['start']:.2f} "
            f"to {load['end']:.2f}, at most {load['max']:.2f})")
    if threads:
        text += f" with the measurement at {threads} torch thread(s)"
    if cpus:
        text += f" on {cpus} usable CPU(s)"
        if load["mean"] > cpus:
            text += "; the CPUs were oversubscribed"
    return text


def matmul_gflops(dtype: Any = None, sizes: Iterable[int] = (1024, 2048), repeats: int = 5,
                  threads: int | None = None, max_seconds: float = 20.0) -> dict[str, Any]:
    """Square matrix products (torch.mm) of each size in dtype at `threads` torch threads:
    the best of `repeats` timed products per size after one untimed, in GFLOP/s (2 n^3 flops
    each). A size whose untimed product alone takes over a quarter of max_seconds ends the
    sweep (emulated bfloat16 can be hundreds of times slower than float32)."""
    import torch
    dtype = dtype or torch.float32
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    rows = []
    started = time.perf_counter()
    try:
        generator = torch.Generator().manual_seed(0)
        for n in sizes:
            a = torch.randn(n, n, generator=generator).to(dtype)
            b = torch.randn(n, n, generator=generator).to(dtype)
            first = time.perf_counter()
            torch.mm(a, b)
            first = time.perf_counter() - first
            best = first
            for _ in range(repeats):
                if time.perf_counter() - started > max_seconds:
                    break
                t = time.perf_counter()
                torch.mm(a, b)
                best = min(best, time.perf_counter() - t)
            rows.append({"n": n, "seconds": best, "gflops": 2 * n ** 3 / best / 1e9})
            if first > max_seconds / 4 or time.perf_counter() - started > max_seconds:
                break
        threads_used = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
    best_row = max(rows, key=lambda r: r["gflops"])
    return {"dtype": str(dtype).replace("torch.", ""), "threads": threads_used,
            "gflops": best_row["gflops"], "n": best_row["n"], "sizes": rows}


def gemm_peak(threads: int | None = None) -> dict[str, Any]:
    """This machine's float32 GEMM peak (torch.mm of 1024- and 2048-square matrices) and
    bfloat16 matrix-product speed at `threads`, with the load average while measuring and
    whether bfloat16 is native (oneDNN's test) and fast (at least as fast as float32)."""
    import torch
    with LoadMonitor(every=1.0) as load:
        fp32 = matmul_gflops(torch.float32, (1024, 2048), threads=threads)
        # bf16 starts small: where it is emulated a 1024-square product takes seconds
        bf16 = matmul_gflops(torch.bfloat16, (256, 512, 1024, 2048), threads=threads,
                             max_seconds=15.0)
    return {"fp32": fp32, "bf16": bf16, "bf16_over_fp32": bf16["gflops"] / fp32["gflops"],
            "bf16_native": _onednn_bf16(torch), "bf16_fast": bf16["gflops"] >= fp32["gflops"],
            "load_average": load.summary()}


def gemm_text(peak: dict[str, Any] | None) -> str:
    """One sentence on a gemm_peak() record: fp32 peak, bf16 speed, whether bf16 is native."""
    if not peak:
        return "fp32 GEMM peak not measured in this record."
    fp32, bf16 = peak["fp32"], peak["bf16"]
    native = {True: "native on this CPU (oneDNN reports bfloat16 support)",
              False: "not native on this CPU (oneDNN reports no bfloat16 support: it is emulated)",
              None: "of unknown support (this torch has no oneDNN bfloat16 test)"}[peak["bf16_native"]]
    return (f"Measured in this run at {fp32['threads']} thread(s): fp32 GEMM peak "
            f"{fp32['gflops']:.1f} GFLOP/s (torch.mm, {fp32['n']}-square, best of several); "
            f"bfloat16 matrix products {bf16['gflops']:.2f} GFLOP/s ({bf16['n']}-square), "
            f"{peak['bf16_over_fp32']:.3g}x float32, "
            f"{'as fast or faster' if peak['bf16_fast'] else 'slower'}; bfloat16 is {native}; "
            f"{load_text(peak.get('load_average'))}.")


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def trained_for(folder: str | Path) -> dict[str, Any]:
    """Training seconds and steps of the model in a checkpoint folder: from the summary.json of
    its run (the folder or the run above it), else from its config.json notes (a shipped or
    exported model's sittings); None where neither says."""
    folder = Path(folder)
    for summary in (folder / "summary.json", folder.parent / "summary.json"):
        if summary.is_file():
            s = json.loads(summary.read_text())
            return {"train_seconds": s.get("elapsed_s"), "steps": s.get("step")}
    config = folder / "config.json"
    notes = json.loads(config.read_text()).get("notes", {}) if config.is_file() else {}
    last = (notes.get("sittings") or [{}])[-1]
    return {"train_seconds": last.get("train_seconds_to"), "steps": last.get("steps_to")}


def shipped_training(name: str) -> dict[str, Any] | None:
    """How the shipped model NAME was trained, from its config.json (trained_for's steps and
    seconds of its last sitting, the training data, and the model that training started from,
    train.init or train.init_decoder: None for a fresh start); None where it does not say."""
    folder = Path(__file__).resolve().parent.parent / "seqvae" / "pretrained" / name
    try:
        trained = trained_for(folder)
        config = json.loads((folder / "config.json").read_text())["config"]
    except (OSError, KeyError, ValueError):
        return None
    if trained["steps"] is None or trained["train_seconds"] is None:
        return None
    train = config.get("train", {})
    return {"steps": trained["steps"], "minutes": round(trained["train_seconds"] / 60),
            "data": config.get("data", {}).get("train"),
            "init": train.get("init") or train.get("init_decoder") or None}


def write_results(name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write results/NAME.json and results/NAME.md."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS_DIR / f"{name}.json", RESULTS_DIR / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    return json_path, md_path


def main() -> None:
    """Print this machine's description and its measured matrix-product speeds as JSON."""
    import argparse
    parser = argparse.ArgumentParser(description="This machine: CPU flags, fp32 GEMM peak, "
                                     "bf16 matrix-product speed.")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    args = parser.parse_args()
    peak = gemm_peak(args.threads or None)
    print(json.dumps({"machine": machine(), "gemm": peak}, indent=2))
    print(gemm_text(peak))


if __name__ == "__main__":
    main()
