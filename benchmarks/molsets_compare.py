"""seqvae beside molsets' own VAE (molsets 0.3.1, run from its installed code) on the shipped
100k MOSES subset, on this machine: training throughput, validation reconstruction over wall
time, and sampling speed.

    python -m benchmarks.molsets_compare --part all --minutes 8
    python -m benchmarks.molsets_compare --part throughput --steps 30
    python -m benchmarks.molsets_compare --part curve --minutes 8
    python -m benchmarks.molsets_compare --part sampling --n 10000

Every measurement runs in a subprocess of its own with torch at --threads threads, one after
the other, so each peak RSS is that measurement's alone. Each part merges its figures into
benchmarks/results/molsets_compare.json and rewrites molsets_compare.md from all figures
measured so far, so the parts can be run separately. Trained weights go to
runs/molsets_compare/ (the sampling part reuses the curve part's models).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import RESULTS_DIR, machine, machine_markdown, peak_rss_mib, write_results

NAME = "molsets_compare"
RUNS = Path("runs") / NAME
PARTS = ("throughput", "curve", "sampling")
SEQVAE_CONFIGS = {"seqvae_molsets_vae": "molsets_vae.toml", "seqvae_default": "moses_smiles.toml"}
# throughput only: the same configs with other settings (key -> base key, config overrides)
VARIANTS = {"seqvae_molsets_vae_fp32": ("seqvae_molsets_vae", ['train.precision="fp32"']),
            "seqvae_default_fp32": ("seqvae_default", ['train.precision="fp32"'])}
LABELS = {
    "molsets": "molsets VAE (its own trainer code)",
    "molsets_malloc": "molsets VAE, with seqvae's allocator setting",
    "seqvae_molsets_vae": "seqvae, molsets' architecture (configs/molsets_vae.toml)",
    "seqvae_molsets_vae_fp32": "seqvae, molsets' architecture, precision fp32",
    "seqvae_default": "seqvae default (configs/moses_smiles.toml)",
    "seqvae_default_fp32": "seqvae default, precision fp32",
}
GOALS = {  # from the issue
    "throughput_same_arch": 3.0,  # seqvae / molsets molecules per second, at least
    "curve_time_ratio": 1 / 3,  # seqvae's time to molsets' final recon / molsets' time, at most
    "sampling_same_arch": 2.0,  # seqvae / molsets molecules per second, at least
    "sampling_default": 10.0,
}
ANCHOR_MOLSETS = {  # /work/shared/ANCHORS.md, measured on this kind of machine earlier
    "train_molecules_per_s": 49, "sample_molecules_per_s": 170, "validity_after_8_min": 0.011,
}
MOLSETS_MAX_LEN = 100  # VAE.sample's default max_len (characters with BOS)


# -- molsets, imported as it is installed --------------------------------------------------------

def import_molsets() -> types.SimpleNamespace:
    """molsets' VAE, trainer and vocabulary, imported without running moses/__init__.py.

    moses/__init__.py imports moses.metrics, which needs fcd_torch (not installed) and
    rdkit.six (gone from RDKit). The VAE needs neither: a bare package module for `moses`
    whose __path__ is the installed folder lets moses.vae.* and moses.utils import unchanged
    (moses.utils imports matplotlib.pyplot, which is installed; the Agg backend keeps it headless).
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    if "moses" not in sys.modules:
        package = types.ModuleType("moses")
        package.__path__ = [str(importlib.metadata.distribution("molsets").locate_file("moses"))]
        sys.modules["moses"] = package
    from moses.utils import OneHotVocab
    from moses.vae import VAE, VAETrainer, vae_parser
    from moses.vae.misc import CosineAnnealingLRWithRestart, KLAnnealer

    return types.SimpleNamespace(VAE=_sampling_fixed(VAE), VAETrainer=VAETrainer,
                                 vae_parser=vae_parser, OneHotVocab=OneHotVocab,
                                 KLAnnealer=KLAnnealer,
                                 CosineAnnealingLRWithRestart=CosineAnnealingLRWithRestart)


def _sampling_fixed(vae_class: type) -> type:
    """A subclass of molsets' VAE whose sample() runs on torch 2.x.

    VAE.sample builds its EOS mask as uint8, and torch 2.x refuses uint8 masks
    ("masked_fill_ only supports boolean masks"). The method is recompiled from molsets' own
    source with that one dtype changed to bool; everything else is its code as installed.
    """
    source = textwrap.dedent(inspect.getsource(vae_class.sample))
    old = "eos_mask = torch.zeros(n_batch, dtype=torch.uint8,"
    if source.count(old) != 1:
        raise RuntimeError("molsets' VAE.sample is not the 0.3.1 code this benchmark patches")
    namespace: dict[str, Any] = {}
    code = compile(source.replace(old, "eos_mask = torch.zeros(n_batch, dtype=torch.bool,"),
                   inspect.getsourcefile(vae_class), "exec")
    exec(code, vars(sys.modules[vae_class.__module__]), namespace)
    return type("VAE", (vae_class,), {"sample": namespace["sample"]})


class MolsetsRun:
    """molsets' VAE with the objects VAETrainer._train builds (Adam on its parameters, KL
    annealer, SGDR learning rate, its DataLoader and collate), trained one epoch at a time
    through VAETrainer._train_epoch, its own loop body (forward with packing, loss,
    backward, clip_grad_norm_ 50, Adam step)."""

    def __init__(self, train: list[str], batch_size: int, seed: int):
        self.m = import_molsets()
        torch.manual_seed(seed)
        self.config = self.m.vae_parser().parse_args([])
        self.config.n_batch = batch_size
        self.vocab = self.m.OneHotVocab.from_data(train)
        self.model = self.m.VAE(self.vocab, self.config)
        self.trainer = self.m.VAETrainer(self.config)
        self.loader = self.trainer.get_dataloader(self.model, train, shuffle=True)
        self.collate = self.trainer.get_collate_fn(self.model)
        self.optimizer = torch.optim.Adam(self.trainer.get_optim_params(self.model),
                                          lr=self.config.lr_start)
        self.n_epoch = self.trainer._n_epoch()
        self.kl_annealer = self.m.KLAnnealer(self.n_epoch, self.config)
        self.lr_annealer = self.m.CosineAnnealingLRWithRestart(self.optimizer, self.config)
        self.model.zero_grad()
        self.epoch = 0

    @property
    def parameters(self) -> int:
        """Parameter count (the modules are grouped twice inside VAE; each counted once)."""
        return sum(p.numel() for p in self.model.parameters())

    def train(self, control: Control) -> None:
        """Train epoch after epoch until control says it is finished."""
        while self.epoch < self.n_epoch and not control.finished():
            feed = Feed(self.loader, control)
            self.trainer._train_epoch(self.model, self.epoch, feed, self.kl_annealer(self.epoch),
                                      self.optimizer)
            if feed.stopped:
                return
            self.lr_annealer.step()
            self.epoch += 1

    @torch.no_grad()
    def valid_nll(self, strings: list[str], seed: int) -> dict[str, float]:
        """Mean -log p(x | z) and KL per molecule, z drawn from the posterior (its forward).

        molsets' recon_loss is the cross-entropy averaged over the batch's target tokens
        (characters + EOS); times that count it is the batch's summed NLL in nats.
        """
        self.model.eval()
        recon = kl = 0.0
        with torch.random.fork_rng(devices=[]):  # the same eps at every evaluation
            torch.manual_seed(seed)
            for start in range(0, len(strings), 500):
                batch = self.collate(list(strings[start:start + 500]))
                kl_loss, recon_loss = self.model(batch)
                recon += float(recon_loss) * sum(len(t) - 1 for t in batch)
                kl += float(kl_loss) * len(batch)
        self.model.train()
        return {"recon": recon / len(strings), "kl": kl / len(strings)}

    def sample(self, n: int, batch_size: int) -> list[str]:
        """n prior samples as strings through (the fixed) VAE.sample, no RDKit."""
        out: list[str] = []
        while len(out) < n:
            out += self.model.sample(min(batch_size, n - len(out)), max_len=MOLSETS_MAX_LEN)
        return out

    def save(self, folder: Path) -> None:
        """Weights (safetensors; the model shares modules between groups) and vocabulary."""
        from safetensors.torch import save_model
        folder.mkdir(parents=True, exist_ok=True)
        save_model(self.model, str(folder / "model.safetensors"))
        chars = [self.vocab.i2c[i] for i in range(len(self.vocab) - 4)]  # the 4 specials last
        (folder / "vocab.json").write_text(json.dumps(chars))

    @classmethod
    def load(cls, folder: Path, seed: int) -> MolsetsRun:
        """A MolsetsRun holding the weights saved in folder."""
        from safetensors.torch import load_model
        run = cls(json.loads((folder / "vocab.json").read_text()), 1, seed)
        load_model(run.model, str(folder / "model.safetensors"))
        run.model.eval()
        return run


# -- seqvae, through its Trainer -------------------------------------------------------------------

class SeqvaeRun:
    """seqvae's Trainer set up as train() sets it up, stepped by Trainer.train_step (the
    exact step train() runs: KL schedule, lr, forward, backward, clip, Adam) from this loop,
    so that evaluation time can be kept off the training clock."""

    def __init__(self, key: str, args: argparse.Namespace, out: Path, minutes: float,
                 config_file: Path | None = None, extra: Sequence[str] = ()):
        from seqvae import Trainer, load_config
        key, variant = VARIANTS.get(key, (key, []))
        overrides = [*variant, *extra, f'train.out_dir="{out}"', f'data.train="{args.train_file}"',
                     f'data.valid="{args.valid_file}"', f"train.threads={args.threads}",
                     f"train.seed={args.seed}", f"train.max_minutes={max(minutes, 0.01)}"]
        if args.batch_size:
            overrides.append(f"train.batch_size={args.batch_size}")
        config_file = config_file or files("seqvae").joinpath("configs", SEQVAE_CONFIGS[key])
        config = load_config(config_file, overrides)
        if out.exists():
            shutil.rmtree(out)
        self.trainer = Trainer(config, progress=False)
        self.trainer.setup()
        tokenizer = self.trainer.tokenizer
        self.char_len = torch.tensor([len(tokenizer.id_to_token(i)) for i in range(tokenizer.vocab_size)])
        self.char_len[[tokenizer.pad_id]] = 0
        self.char_len[[tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id]] = 1
        self.window = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "acc": 0.0, "n": 0, "seqs": 0,
                       "tokens": 0, "t0": time.perf_counter()}

    @property
    def parameters(self) -> int:
        """Parameter count."""
        return sum(p.numel() for p in self.trainer.model.parameters())

    def counts(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[int, int, int]:
        """Molecules, model tokens (with BOS/EOS) and characters (+ BOS + EOS) of a batch."""
        tokens, lengths = batch
        return tokens.size(0), int(lengths.sum()), int(self.char_len[tokens].sum())

    def train(self, control: Control) -> None:
        """Train epoch after epoch until control says it is finished."""
        state = self.trainer.state
        while not control.finished():
            self.trainer.batches.set_epoch(state["epoch"])
            feed = Feed(self.trainer.batches, control)
            for tokens, lengths in feed:
                self.trainer.train_step(tokens, lengths, 0, self.window)
            if feed.stopped:
                return
            state["epoch"] += 1

    @torch.no_grad()
    def valid_nll(self, strings: list[str], seed: int) -> dict[str, float]:
        """Mean -log p(x | z) and KL per molecule, z drawn from the posterior (its forward)."""
        from seqvae.data import SequenceBatches
        model, tokenizer = self.trainer.model.eval(), self.trainer.tokenizer
        ids = tokenizer.encode_batch(strings)
        if any(tokenizer.unk_id in x for x in ids):
            raise RuntimeError("a validation molecule holds a token the seqvae vocabulary lacks")
        generator = torch.Generator().manual_seed(seed)
        recon = kl = 0.0
        for tokens, lengths in SequenceBatches(ids, 500, tokenizer.pad_id, shuffle=False):
            out = model(tokens, lengths, generator=generator)
            recon += float(out.recon_per_sequence.sum())
            kl += float(out.kl_per_sequence.sum())
        model.train()
        return {"recon": recon / len(strings), "kl": kl / len(strings)}

    def vae_model(self):
        """The trained model behind seqvae's user API (VAEModel)."""
        from seqvae import VAEModel
        return VAEModel(self.trainer.model, self.trainer.tokenizer, self.trainer.config)


# -- driving a training loop -------------------------------------------------------------------------

class Control:
    """Decides when a training loop stops and what happens between its steps."""

    def finished(self) -> bool:
        """True once the loop should stop (checked before each step but an epoch's first)."""
        raise NotImplementedError

    def before_step(self, batch: Any) -> None:
        """Called with each batch just before the step that trains on it."""


class Feed:
    """Wraps a batch iterable for a training loop, asking a Control before each batch.

    An epoch's first batch is always let through (the caller checked finished() just before),
    because molsets' _train_epoch cannot end an epoch that saw no batch. set_postfix_str
    stands in for the tqdm bar _train_epoch reports its running losses to.
    """

    def __init__(self, batches: Iterable, control: Control):
        self.batches = batches
        self.control = control
        self.stopped = False
        self.postfix = ""

    def __iter__(self) -> Iterator:
        for index, batch in enumerate(self.batches):
            if index and self.control.finished():
                self.stopped = True
                return
            self.control.before_step(batch)
            yield batch

    def set_postfix_str(self, text: str) -> None:
        """Keep molsets' running-loss line."""
        self.postfix = text


class Meter(Control):
    """Throughput: `warmup` untimed steps, then `steps` timed ones (or fewer once `max_seconds`
    have passed). The window runs from just before the first timed step until the loop asks
    for the step after the last one, so it holds each timed step and one batch fetch each."""

    def __init__(self, counts: Callable[[Any], tuple[int, int, int]], warmup: int, steps: int,
                 max_seconds: float):
        self.counts, self.warmup, self.steps, self.max_seconds = counts, warmup, steps, max_seconds
        self.seen = 0
        self.totals = np.zeros(3, dtype=np.int64)  # molecules, tokens, characters
        self.start: float | None = None
        self.end: float | None = None

    def timed(self) -> int:
        """Timed steps so far."""
        return max(self.seen - self.warmup, 0)

    def finished(self) -> bool:
        if self.end is not None:
            return True
        if self.start is not None and (self.timed() >= self.steps or
                                       time.perf_counter() - self.start >= self.max_seconds):
            self.end = time.perf_counter()
        return self.end is not None

    def before_step(self, batch: Any) -> None:
        if self.seen == self.warmup:
            self.start = time.perf_counter()
            print(f"  {self.warmup} warm-up steps done; timing up to {self.steps} steps "
                  f"or {self.max_seconds:.0f} s", flush=True)
        if self.seen >= self.warmup:
            self.totals += self.counts(batch)
        self.seen += 1

    def summary(self) -> dict[str, float]:
        """Rates over the timed window."""
        seconds = self.end - self.start
        molecules, tokens, chars = (int(x) for x in self.totals)
        return {"timed_steps": self.timed(), "timed_seconds": seconds,
                "warmup_steps": self.warmup, "molecules": molecules,
                "molecules_per_s": molecules / seconds, "tokens_per_s": tokens / seconds,
                "chars_per_s": chars / seconds}


class Curve(Control):
    """Trains for `seconds` on a clock that stops while the validation figure is computed;
    evaluates at 0 s, then every max(5, min(elapsed / 2, every)) seconds, and at the end."""

    def __init__(self, name: str, seconds: float, every: float,
                 evaluate: Callable[[], dict[str, float]] | None):
        self.name, self.seconds, self.every, self.evaluate = name, seconds, every, evaluate
        self.steps = 0
        self.started = time.perf_counter()
        self.paused = 0.0
        self.next_eval = 0.0
        self.molecules = 0
        self.points: list[dict[str, float]] = []

    def elapsed(self) -> float:
        """Training seconds so far, evaluation pauses left out."""
        return time.perf_counter() - self.started - self.paused

    def finished(self) -> bool:
        return self.elapsed() >= self.seconds

    def before_step(self, batch: Any) -> None:
        if self.evaluate is not None and self.elapsed() >= self.next_eval:
            self.record()
            self.next_eval = self.elapsed() + max(5.0, min(self.elapsed() / 2, self.every))
        self.molecules += len(batch[0]) if isinstance(batch, tuple) else len(batch)
        self.steps += 1  # steps finished when the next batch is asked for

    def record(self) -> None:
        """Evaluate now, off the clock."""
        if self.evaluate is None:
            return
        at = self.elapsed()
        paused = time.perf_counter()
        figures = self.evaluate()
        eval_seconds = time.perf_counter() - paused
        self.paused += eval_seconds
        self.points.append({"train_seconds": at, "steps": self.steps,
                            "molecules_seen": self.molecules, "eval_seconds": eval_seconds,
                            **figures})
        print(f"  {self.name}: {at:6.1f} s, step {self.steps}: valid recon "
              f"{figures['recon']:.2f} nats/molecule, KL {figures['kl']:.2f} "
              f"(eval {eval_seconds:.1f} s)", flush=True)


# -- workers (each runs in its own subprocess) -------------------------------------------------------

def _strings(path: str) -> list[str]:
    from seqvae.data import read_strings
    return read_strings(path)


def worker_throughput(key: str, args: argparse.Namespace) -> dict[str, Any]:
    """Training throughput of one model, warm-up steps excluded."""
    if key.startswith("molsets"):
        if key == "molsets_malloc":
            from seqvae.runtime import keep_freed_memory
            keep_freed_memory()
        run = MolsetsRun(_strings(args.train_file), args.batch_size or 512, args.seed)
        counts = lambda batch: (len(batch), sum(len(t) for t in batch), sum(len(t) for t in batch))
        extra = {"batch_size": run.config.n_batch, "vocab_size": len(run.vocab), "precision": "fp32",
                 "tokens": "characters + BOS + EOS (molsets' tokens are characters)"}
    else:
        from seqvae.runtime import precision_name
        run = SeqvaeRun(key, args, RUNS / f"throughput_{key}", minutes=30)
        counts = run.counts
        extra = {"batch_size": run.trainer.config.train.batch_size,
                 "precision": precision_name(run.trainer.dtype),
                 "vocab_size": run.trainer.tokenizer.vocab_size,
                 "tokens": "seqvae's atom-level SMILES tokens + BOS + EOS"}
    meter = Meter(counts, args.warmup, args.steps, args.max_seconds)
    print(f"{LABELS[key]}: {run.parameters:,} parameters", flush=True)
    run.train(meter)
    meter.finished()
    return {**meter.summary(), **extra, "parameters": run.parameters, "peak_rss_mib": peak_rss_mib()}


def _validity(strings: list[str]) -> float:
    from seqvae.chem import canonicalize_many
    return sum(c is not None for c in canonicalize_many(strings)) / max(len(strings), 1)


def worker_train(key: str, args: argparse.Namespace, minutes: float, with_curve: bool,
                 by: str) -> dict[str, Any]:
    """Train one model for `minutes` of training time; with_curve: evaluate along the way.
    Saves the weights in runs/ and, with the curve, the validity of prior samples."""
    valid = _strings(args.valid_file)
    out = RUNS / key
    if key == "molsets":
        run = MolsetsRun(_strings(args.train_file), args.batch_size or 512, args.seed)
    else:
        run = SeqvaeRun(key, args, out, minutes)
    evaluate = (lambda: run.valid_nll(valid, args.seed + 1)) if with_curve else None
    curve = Curve(key, minutes * 60, args.eval_seconds, evaluate)
    print(f"{LABELS[key]}: {run.parameters:,} parameters; training {minutes:g} min", flush=True)
    run.train(curve)
    train_seconds = curve.elapsed()
    curve.record()
    result: dict[str, Any] = {
        "minutes": minutes, "train_seconds": train_seconds, "steps": curve.steps,
        "molecules_seen": curve.molecules, "molecules_per_s": curve.molecules / train_seconds,
        "eval_seconds_total": curve.paused, "parameters": run.parameters, "points": curve.points,
        "trained_by": by,
    }
    if key == "molsets":
        result.update(epochs_started=run.epoch + 1, kl_weight=run.kl_annealer(run.epoch),
                      lr=run.optimizer.param_groups[0]["lr"], vocab_size=len(run.vocab))
        run.save(out)
    else:
        t = run.trainer
        from seqvae.schedules import kl_weight
        result.update(epochs_started=t.state["epoch"] + 1,
                      kl_weight=kl_weight(t.state["step"], t.config.train),
                      lr=t.optimizer.param_groups[0]["lr"], vocab_size=t.tokenizer.vocab_size)
        t.state["elapsed_s"] = train_seconds
        t.save()
    if with_curve:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            if key == "molsets":
                run.model.eval()
                strings = run.sample(args.validity_samples, 1000)
                result["validity"] = _validity(strings)
            else:
                table = run.vae_model().sample(args.validity_samples, seed=args.seed)
                result["validity"] = float(table["valid"].mean())
        result["validity_samples"] = args.validity_samples
    result["peak_rss_mib"] = peak_rss_mib()
    (out / "trained.json").write_text(json.dumps(
        {k: result[k] for k in ("minutes", "train_seconds", "steps", "trained_by")}))
    return result


def worker_sampling(args: argparse.Namespace) -> dict[str, Any]:
    """Sampling speed of each trained model at each size; decoding to strings included."""
    from seqvae import load
    sizes = sorted({min(1000, args.n), args.n})
    batch = min(1000, args.n)
    molsets = MolsetsRun.load(RUNS / "molsets", args.seed)
    vaes = {key: load(RUNS / key) for key in SEQVAE_CONFIGS}
    trained = {key: json.loads((RUNS / key / "trained.json").read_text())
               for key in ("molsets", *SEQVAE_CONFIGS)}

    def molsets_strings(n: int) -> tuple[list[str], dict[str, Any]]:
        n_batches = -(-n // batch)
        return molsets.sample(n, batch), {"decode_steps_per_batch": MOLSETS_MAX_LEN - 1,
                                          "decode_steps": n_batches * (MOLSETS_MAX_LEN - 1)}

    def raw(vae) -> Callable[[int], tuple[list[str], dict[str, Any]]]:
        def run(n: int) -> tuple[list[str], dict[str, Any]]:
            generator = torch.Generator().manual_seed(args.seed)
            strings, steps, finished = [], [], 0
            while len(strings) < n:
                z = torch.randn(min(batch, n - len(strings)), vae.latent_dim, generator=generator)
                out = vae.model.generate(z, generator=generator)
                strings += [vae.tokenizer.from_model_string(s)
                            for s in vae.tokenizer.decode_batch(out.tokens)]
                steps.append(out.tokens.size(1))
                finished += int(out.finished.sum())
            return strings, {"decode_steps_per_batch": float(np.mean(steps)),
                             "decode_steps": int(np.sum(steps)), "finished_fraction": finished / n}
        return run

    def full(vae) -> Callable[[int], tuple[list[str], dict[str, Any]]]:
        def run(n: int) -> tuple[list[str], dict[str, Any]]:
            table = vae.sample(n, seed=args.seed, batch_size=batch)
            return list(table["SMILES"]), {"validity": float(table["valid"].mean())}
        return run

    samplers = {
        "molsets": ("molsets", molsets_strings),
        "seqvae_molsets_vae_generate": ("seqvae_molsets_vae", raw(vaes["seqvae_molsets_vae"])),
        "seqvae_molsets_vae_api": ("seqvae_molsets_vae", full(vaes["seqvae_molsets_vae"])),
        "seqvae_default_generate": ("seqvae_default", raw(vaes["seqvae_default"])),
        "seqvae_default_api": ("seqvae_default", full(vaes["seqvae_default"])),
    }
    results: dict[str, Any] = {"sizes": sizes, "batch_size": batch, "trained": trained,
                               "samplers": {}}
    for name, (model_key, sample) in samplers.items():
        torch.manual_seed(args.seed)
        sample(min(10, args.n))  # warm-up, untimed
        rows = []
        for n in sizes:
            torch.manual_seed(args.seed)
            start = time.perf_counter()
            strings, extra = sample(n)
            seconds = time.perf_counter() - start
            row = {"n": n, "seconds": seconds, "molecules_per_s": n / seconds,
                   "mean_length_chars": float(np.mean([len(s) for s in strings])), **extra}
            if "decode_steps" in row:
                row["ms_per_decode_step"] = 1000 * seconds / row["decode_steps"]
            if "validity" not in row:
                row["validity"] = _validity(strings)  # after the clock stopped
            rows.append(row)
            print(f"  {name}: {n} samples in {seconds:.1f} s, {n / seconds:.0f} molecules/s, "
                  f"valid {row['validity']:.3f}", flush=True)
        results["samplers"][name] = {"model": model_key, "rows": rows}
    results["peak_rss_mib"] = peak_rss_mib()
    return results


def run_worker(args: argparse.Namespace) -> None:
    """Entry point of a subprocess: one measurement, its figures written as JSON."""
    torch.set_num_threads(args.threads)
    kind, _, key = args.worker.partition(":")
    if kind == "throughput":
        result = worker_throughput(key, args)
    elif kind == "curve":
        result = worker_train(key, args, args.minutes, with_curve=True,
                              by=f"curve part ({args.minutes:g} min)")
    elif kind == "train":
        result = worker_train(key, args, args.sampling_train_minutes, with_curve=False,
                              by=f"sampling part ({args.sampling_train_minutes:g} min, no curve)")
    else:
        result = worker_sampling(args)
    result["torch_threads"] = torch.get_num_threads()
    Path(args.worker_out).write_text(json.dumps(result, indent=2))


# -- the parent: data, subprocesses, reports ---------------------------------------------------------

def child(worker: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one worker in a fresh Python process and return its figures."""
    out = RUNS / f"{worker.replace(':', '_')}.result.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "benchmarks.molsets_compare", *args.argv, "--worker", worker,
            "--train-file", args.train_file, "--valid-file", args.valid_file,
            "--worker-out", str(out)]
    print(f"\n== {worker} ==", flush=True)
    started = time.perf_counter()
    completed = subprocess.run(argv, check=False)
    if completed.returncode:
        raise SystemExit(f"the {worker} measurement failed (exit status {completed.returncode})")
    result = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - started
    return result


def prepare_inputs(args: argparse.Namespace) -> None:
    """The training file (the shipped 100k, or its first --train-limit rows) and the
    validation molecules both models are scored on: the first --valid rows of
    moses_valid that RDKit parses, with at most 100 atom tokens, and whose characters and
    atom tokens all occur in the training file (so neither vocabulary maps them to <unk>)."""
    from seqvae.chem import is_valid
    from seqvae.data import default_data_path, read_strings
    from seqvae.tokenizers import split_smiles

    RUNS.mkdir(parents=True, exist_ok=True)
    train_path = default_data_path("moses_train")
    train = read_strings(train_path)
    if args.train_limit:
        train = train[:args.train_limit]
        train_path = RUNS / f"train_{args.train_limit}.csv"
        train_path.write_text("SMILES\n" + "\n".join(train) + "\n")
    chars = set("".join(train))
    tokens = {t for s in train for t in split_smiles(s)}
    kept = []
    for text in read_strings(default_data_path("moses_valid")):
        pieces = split_smiles(text)
        if (len(pieces) <= 100 and set(text) <= chars and set(pieces) <= tokens
                and is_valid(text)):
            kept.append(text)
            if len(kept) == args.valid:
                break
    valid_path = RUNS / f"valid_{len(kept)}.csv"
    valid_path.write_text("SMILES\n" + "\n".join(kept) + "\n")
    args.train_file, args.valid_file = str(train_path), str(valid_path)
    args.data = {"train_file": str(train_path), "train_molecules": len(train),
                 "valid_molecules": len(kept), "valid_file": str(valid_path)}


def part_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Training throughput of the three models, each in its own process."""
    keys = ("molsets", "molsets_malloc", "seqvae_molsets_vae", "seqvae_molsets_vae_fp32",
            "seqvae_default", "seqvae_default_fp32")
    models = {key: child(f"throughput:{key}", args) for key in keys}
    base = models["molsets"]["molecules_per_s"]
    rate = {key: m["molecules_per_s"] for key, m in models.items()}
    return {"models": models,
            "ratio_same_arch": rate["seqvae_molsets_vae"] / base,
            "ratio_same_arch_fp32": rate["seqvae_molsets_vae_fp32"] / base,
            "ratio_same_arch_vs_malloc": rate["seqvae_molsets_vae"] / rate["molsets_malloc"],
            "ratio_same_arch_fp32_vs_malloc": (rate["seqvae_molsets_vae_fp32"]
                                               / rate["molsets_malloc"]),
            "ratio_default": rate["seqvae_default"] / base,
            "settings": {"warmup": args.warmup, "steps": args.steps,
                         "max_seconds": args.max_seconds}}


def crossing(points: list[dict[str, float]], target: float) -> dict[str, Any]:
    """When a curve first reaches target: linear interpolation between the two evaluations
    around the crossing, with the bracket."""
    previous = None
    for point in points:
        if point["recon"] <= target:
            if previous is None:
                return {"seconds": point["train_seconds"], "bracket": [0.0, point["train_seconds"]]}
            t0, r0 = previous["train_seconds"], previous["recon"]
            t1, r1 = point["train_seconds"], point["recon"]
            seconds = t0 + (t1 - t0) * (r0 - target) / (r0 - r1)
            return {"seconds": seconds, "bracket": [t0, t1]}
        previous = point
    return {"seconds": None, "bracket": None}


def part_curve(args: argparse.Namespace) -> dict[str, Any]:
    """Validation reconstruction over training time of molsets' VAE and seqvae's default."""
    models = {key: child(f"curve:{key}", args) for key in ("molsets", "seqvae_default")}
    target = models["molsets"]["points"][-1]["recon"]
    reach = crossing(models["seqvae_default"]["points"], target)
    molsets_seconds = models["molsets"]["train_seconds"]
    result = {"models": models, "molsets_final_recon": target, "seqvae_reaches_it": reach,
              "time_ratio": None if reach["seconds"] is None else reach["seconds"] / molsets_seconds,
              "time_ratio_upper": (None if reach["seconds"] is None
                                   else reach["bracket"][1] / molsets_seconds),
              "data_valid_molecules": args.data["valid_molecules"],
              "settings": {"minutes": args.minutes, "eval_seconds": args.eval_seconds,
                           "validity_samples": args.validity_samples}}
    plot_curves(result, RESULTS_DIR / f"{NAME}_curves.png")
    return result


def plot_curves(result: dict[str, Any], path: Path) -> None:
    """Validation reconstruction (nats per molecule) against training time, both models."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for key, model in result["models"].items():
        t = [p["train_seconds"] for p in model["points"]]
        r = [p["recon"] for p in model["points"]]
        ax.plot(t, r, marker=".", label=LABELS[key])
    ax.axhline(result["molsets_final_recon"], color="grey", linestyle="--", linewidth=1,
               label=f"molsets after {result['settings']['minutes']:g} min")
    if result["seqvae_reaches_it"]["seconds"] is not None:
        ax.axvline(result["seqvae_reaches_it"]["seconds"], color="grey", linestyle=":",
                   linewidth=1, label="seqvae reaches it")
    ax.set_xlabel("training time, s (evaluation excluded)")
    ax.set_ylabel("validation -log p(x|z), nats per molecule")
    ax.set_title(f"Validation reconstruction on {result['data_valid_molecules']:,} molecules, "
                 "z sampled from the posterior")
    ax.legend(fontsize=8)
    fig.tight_layout()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def part_sampling(args: argparse.Namespace) -> dict[str, Any]:
    """Sampling speed; trains the models it finds no weights for first."""
    training = {}
    for key in ("molsets", *SEQVAE_CONFIGS):
        marker = RUNS / key / "trained.json"
        fresh = key == "seqvae_molsets_vae" and args.retrain_same_arch
        if fresh or not marker.exists():
            training[key] = child(f"train:{key}", args)
    result = child("sampling", args)
    result["trained_here"] = {k: {x: v[x] for x in ("minutes", "steps", "train_seconds")}
                              for k, v in training.items()}
    by_name = result["samplers"]
    base = {row["n"]: row["molecules_per_s"] for row in by_name["molsets"]["rows"]}
    for entry in by_name.values():
        for row in entry["rows"]:
            row["ratio_to_molsets"] = row["molecules_per_s"] / base[row["n"]]
    result["settings"] = {"n": args.n, "sampling_train_minutes": args.sampling_train_minutes}
    return result


# -- Markdown ------------------------------------------------------------------------------------------

def _goal(value: float | None, goal: float, at_least: bool) -> str:
    if value is None:
        return "not reached"
    met = value >= goal if at_least else value <= goal
    return f"goal {'>=' if at_least else '<='} {goal:.3g}: " + ("met" if met else "not met")


def markdown(results: dict[str, Any]) -> str:
    """The report, from whatever parts have been measured."""
    lines = ["# seqvae beside molsets' own VAE, on this machine", "",
             "Both run here, one after the other, on the shipped 100k MOSES subset "
             "(`data/moses_train.csv.gz`; validation molecules from `data/moses_valid.csv.gz`), "
             "each measurement in its own process with torch at the same thread count. molsets "
             "0.3.1 runs from its installed code (its VAE, `VAETrainer._train_epoch`, collate, "
             "KL annealer, SGDR lr), with two shims inside this script and none in seqvae: "
             "`moses/__init__.py` is bypassed (it imports `moses.metrics`, which needs `fcd_torch` "
             "and `rdkit.six`), and `VAE.sample` is recompiled from its source with its EOS mask "
             "made `bool` instead of `uint8` (torch 2.x refuses uint8 masks).", "",
             "Earlier figures for molsets on this kind of machine (/work/shared/ANCHORS.md): "
             f"training about {ANCHOR_MOLSETS['train_molecules_per_s']} molecules/s, sampling about "
             f"{ANCHOR_MOLSETS['sample_molecules_per_s']} molecules/s, "
             f"{ANCHOR_MOLSETS['validity_after_8_min']:.1%} valid prior samples after 8 minutes.", ""]
    machines = []
    if "throughput" in results:
        r = results["throughput"]
        s = r["settings"]
        lines += ["## Training throughput", "",
                  f"Command: `{r['command']}`", "",
                  f"Each model: {s['warmup']} untimed warm-up step(s), then {s['steps']} timed steps or "
                  f"{s['max_seconds']:g} s, whichever comes first. Timed: the training step "
                  "(forward, loss, backward, clip, optimizer step) and fetching the next batch "
                  "(molsets: its DataLoader with its collate, which builds tensors per string; "
                  "seqvae: its length-bucketed batches). Not timed: start-up, data reading and "
                  "tokenizing, the warm-up steps. Characters/s counts characters + BOS + EOS of "
                  "the same molecules for both models (molsets' own token unit); model tokens/s "
                  "counts each model's own tokens with BOS/EOS (seqvae's are atom-level, so "
                  "fewer per molecule). Peak RSS is the whole process (imports, data, training).", "",
                  "Precision: fp32 is float32 throughout; bf16 is seqvae's mixed precision "
                  "(`train.precision`, `auto` by default, which picks bf16 on this CPU: it has "
                  "AVX-512 BF16): matrix products in bfloat16, weights, optimizer, GRU state and "
                  "losses in float32. seqvae's trainer also sets glibc's malloc to keep freed "
                  "memory (`seqvae.runtime.keep_freed_memory`); the row 'with seqvae's allocator "
                  "setting' runs molsets' unchanged code in a process with that setting too, to "
                  "show how much of the gap it accounts for.", "",
                  "| model | precision | parameters | vocabulary | batch | timed steps | seconds | "
                  "molecules/s | characters/s | model tokens/s | peak RSS (MiB) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for key, m in r["models"].items():
            lines.append(f"| {LABELS[key]} | {m.get('precision', 'fp32')} | {m['parameters']:,} | "
                         f"{m['vocab_size']} | "
                         f"{m['batch_size']} | {m['timed_steps']} | {m['timed_seconds']:.1f} | "
                         f"{m['molecules_per_s']:.1f} | {m['chars_per_s']:.0f} | "
                         f"{m['tokens_per_s']:.0f} | {m['peak_rss_mib']:.0f} |")
        lines += ["",
                  f"- seqvae / molsets at the same architecture: **{r['ratio_same_arch']:.2f}x** "
                  f"({_goal(r['ratio_same_arch'], GOALS['throughput_same_arch'], True)}); "
                  f"{r['ratio_same_arch_vs_malloc']:.2f}x against molsets with the same allocator "
                  f"setting",
                  f"- the same in fp32: {r['ratio_same_arch_fp32']:.2f}x "
                  f"({_goal(r['ratio_same_arch_fp32'], GOALS['throughput_same_arch'], True)}); "
                  f"{r['ratio_same_arch_fp32_vs_malloc']:.2f}x against molsets with the same "
                  "allocator setting",
                  f"- seqvae default / molsets: {r['ratio_default']:.2f}x (molecules/s; a smaller model)",
                  f"- parameters at the same architecture: molsets "
                  f"{r['models']['molsets']['parameters']:,}, seqvae "
                  f"{r['models']['seqvae_molsets_vae']['parameters']:,} (ANCHORS: molsets 4.55M with "
                  "the full MOSES 29-token vocabulary). Most of the difference: seqvae maps z to "
                  "its own initial state for each of the 3 decoder layers, molsets repeats one; "
                  "the rest is the vocabularies (characters vs atom tokens).",
                  ""]
        machines.append(("throughput", r["machine"]))
    if "curve" in results:
        r = results["curve"]
        mo, sq = r["models"]["molsets"], r["models"]["seqvae_default"]
        reach = r["seqvae_reaches_it"]
        lines += ["## Validation reconstruction over training time", "",
                  f"Command: `{r['command']}`", "",
                  f"Each model trains for {r['settings']['minutes']:g} minutes of training time "
                  f"({r['data']['train_molecules']:,} training molecules). Figure: mean "
                  f"-log p(x | z) in nats per molecule (summed over characters/tokens and EOS) on "
                  f"the same {r['data']['valid_molecules']:,} validation molecules, z drawn from "
                  "the posterior as in training (fixed noise seed per model), KL reported beside "
                  "it; molsets' per-token cross-entropy times its token count gives the same "
                  "quantity. Evaluated at 0 s, then every max(5, min(t/2, "
                  f"{r['settings']['eval_seconds']:g})) s of training, and at the end; the clock "
                  "stops while evaluating, so the times are training time only. molsets is "
                  "driven through `VAETrainer._train_epoch` with the optimizer, KL annealer and "
                  "SGDR schedule its `_train` builds (its `fit` has no time limit); seqvae "
                  "through its `Trainer` (set up as `train()` does, stepped by "
                  "`Trainer.train_step`). Note: molsets' KL weight is set per epoch and is 0 "
                  "throughout its first epoch, so within this budget it trains as a plain "
                  "autoencoder; " + _seqvae_kl_note(), "",
                  "| model | steps | molecules/s | final valid recon (nats/molecule) | final KL | "
                  "KL weight at end | valid prior samples | peak RSS (MiB) |",
                  "|---|---|---|---|---|---|---|---|"]
        for key, m in r["models"].items():
            last = m["points"][-1]
            lines.append(f"| {LABELS[key]} | {m['steps']} | {m['molecules_per_s']:.1f} | "
                         f"{last['recon']:.2f} | {last['kl']:.2f} | {m['kl_weight']:.3g} | "
                         f"{m['validity']:.3f} of {m['validity_samples']} | {m['peak_rss_mib']:.0f} |")
        when = ("not reached within the budget" if reach["seconds"] is None else
                f"{reach['seconds']:.0f} s (between the evaluations at {reach['bracket'][0]:.0f} s "
                f"and {reach['bracket'][1]:.0f} s, interpolated)")
        lines += ["",
                  f"- molsets' final validation reconstruction: {r['molsets_final_recon']:.2f} "
                  f"nats/molecule after {mo['train_seconds']:.0f} s",
                  f"- seqvae's default reaches it after {when}",
                  "- time ratio seqvae / molsets: " +
                  ("-" if r["time_ratio"] is None else
                   f"**{r['time_ratio']:.3f}** (at most {r['time_ratio_upper']:.3f}, taking the "
                   "evaluation after the crossing)") +
                  f" ({_goal(r['time_ratio'], GOALS['curve_time_ratio'], False)})",
                  f"- validity of {sq['validity_samples']} prior samples: molsets "
                  f"{mo['validity']:.3f}, seqvae {sq['validity']:.3f} (RDKit parse; molsets "
                  "samples through its patched `VAE.sample`, seqvae through `VAEModel.sample`)", "",
                  f"![curves]({NAME}_curves.png)", ""]
        machines.append(("curve", r["machine"]))
    if "sampling" in results:
        r = results["sampling"]
        lines += ["## Sampling speed", "",
                  f"Command: `{r['command']}`", "",
                  f"Batch {r['batch_size']:,}; each sampler runs once untimed on 10 samples first. "
                  "Timed: drawing z, decoding, and turning tokens into strings. molsets: its "
                  "`VAE.sample` (patched mask; strings, no RDKit; it always runs "
                  f"{MOLSETS_MAX_LEN - 1} decoding steps). seqvae `generate`: "
                  "`SequenceVAE.generate` + tokenizer `decode_batch` (strings, no RDKit; a sequence "
                  "leaves the batch once it has produced EOS, at most 101 steps; float32), the "
                  "like-for-like comparison. seqvae API: `VAEModel.sample`, which also "
                  "canonicalizes every sample with RDKit. Validity is computed after the clock "
                  "stops for the first two.", "",
                  "Models sampled (how they were trained):", ""]
        for key, t in r["trained"].items():
            lines.append(f"- {LABELS[key]}: {t['steps']} steps in {t['train_seconds']:.0f} s, "
                         f"trained by the {t['trained_by']}")
        lines += ["", "| sampler | samples | seconds | molecules/s | x molsets | goal | mean length "
                  "(chars) | characters/s | x molsets (characters/s) | decoding steps / batch | "
                  "ms / decoding step | ended with EOS | valid |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        molsets_chars = {row["n"]: row["molecules_per_s"] * row["mean_length_chars"]
                         for row in r["samplers"]["molsets"]["rows"]}
        goals = {"seqvae_molsets_vae_generate": GOALS["sampling_same_arch"],
                 "seqvae_default_generate": GOALS["sampling_default"]}
        names = {"molsets": "molsets `VAE.sample`",
                 "seqvae_molsets_vae_generate": "seqvae `generate`, molsets' architecture",
                 "seqvae_molsets_vae_api": "seqvae `VAEModel.sample` (RDKit), molsets' architecture",
                 "seqvae_default_generate": "seqvae `generate`, default config",
                 "seqvae_default_api": "seqvae `VAEModel.sample` (RDKit), default config"}
        for name, entry in r["samplers"].items():
            for row in entry["rows"]:
                goal = _goal(row["ratio_to_molsets"], goals[name], True) if name in goals else ""
                steps = row.get("decode_steps_per_batch")
                step_ms = row.get("ms_per_decode_step")
                ended = row.get("finished_fraction")
                chars = row["molecules_per_s"] * row["mean_length_chars"]
                lines.append(f"| {names[name]} | {row['n']:,} | {row['seconds']:.1f} | "
                             f"{row['molecules_per_s']:.0f} | {row['ratio_to_molsets']:.2f} | {goal} | "
                             f"{row['mean_length_chars']:.1f} | {chars:.0f} | "
                             f"{chars / molsets_chars[row['n']]:.2f} | "
                             f"{'' if steps is None else f'{steps:.0f}'} | "
                             f"{'' if step_ms is None else f'{step_ms:.1f}'} | "
                             f"{'' if ended is None else f'{ended:.3f}'} | {row['validity']:.3f} |")
        lines += ["", "Decoding steps / batch: steps until the batch's last sequence ended; "
                  "seqvae's later steps decode only the sequences still running, so its "
                  "ms / decoding step is an average over shrinking batches. For the same "
                  "reason seqvae's cost follows the lengths of its samples, while molsets' does "
                  "not (it always decodes 99 steps): where the models sampled write strings of "
                  "different lengths, characters/s is the fairer ratio.", ""]
        machines.append(("sampling", r["machine"]))
    lines += ["## Commands and budget", "",
              "All parts: `python -m benchmarks.molsets_compare --part all --minutes 8`. Each "
              "part's command is shown in its section; `--threads` sets torch's threads in "
              "every measurement process.", "",
              "| part | run at | wall time (min) | torch threads |", "|---|---|---|---|"]
    for part in PARTS:
        if part in results:
            lines.append(f"| {part} | {results[part]['machine']['date']} | "
                         f"{results[part]['part_seconds'] / 60:.1f} | {results[part]['threads']} |")
    lines.append("")
    described: list[tuple[list[str], dict[str, Any]]] = []  # parts run on the same machine
    for part, info in machines:
        same = {k: v for k, v in info.items() if k != "date"}
        for parts, known in described:
            if known == same:
                parts.append(part)
                break
        else:
            described.append(([part], same))
    for parts, info in described:
        lines += [f"## Machine ({', '.join(parts)})", "", machine_markdown(info), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=3, help="throughput: untimed steps first")
    parser.add_argument("--steps", type=int, default=30, help="throughput: timed steps at most")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="throughput: stop timing after this many seconds")
    parser.add_argument("--minutes", type=float, default=8.0, help="curve: training minutes per model")
    parser.add_argument("--eval-seconds", type=float, default=30.0,
                        help="curve: longest training interval between evaluations")
    parser.add_argument("--valid", type=int, default=2000, help="validation molecules")
    parser.add_argument("--validity-samples", type=int, default=1000)
    parser.add_argument("--n", type=int, default=10000, help="sampling: largest number of samples")
    parser.add_argument("--sampling-train-minutes", type=float, default=2.0,
                        help="sampling: training minutes of models the curve part did not train")
    parser.add_argument("--retrain-same-arch", action=argparse.BooleanOptionalAction, default=True,
                        help="sampling: retrain seqvae at molsets' architecture even if saved")
    parser.add_argument("--train-limit", type=int, default=0,
                        help="use only the first N training molecules (quick trials)")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="override every model's batch size (quick trials only)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--train-file", help=argparse.SUPPRESS)
    parser.add_argument("--valid-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return

    args.argv = [a for a in sys.argv[1:]]
    command = "python -m benchmarks.molsets_compare " + " ".join(shlex.quote(a) for a in args.argv)
    prepare_inputs(args)
    json_path = RESULTS_DIR / f"{NAME}.json"
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    parts = PARTS if args.part == "all" else (args.part,)
    for part in parts:
        started = time.perf_counter()
        figures = {"throughput": part_throughput, "curve": part_curve,
                   "sampling": part_sampling}[part](args)
        torch.set_num_threads(args.threads)  # machine() reports the thread count
        figures.update(command=command, data=args.data, threads=args.threads,
                       part_seconds=time.perf_counter() - started, machine=machine())
        results[part] = figures
        write_results(NAME, results, markdown(results))
        print(f"\n{part}: done in {figures['part_seconds'] / 60:.1f} min", flush=True)
    print((RESULTS_DIR / f"{NAME}.md").read_text())



def _seqvae_kl_note() -> str:
    """One sentence on the default config's KL schedule, read from the shipped config."""
    from importlib.resources import files
    from seqvae.config import load_config
    t = load_config(files("seqvae").joinpath("configs", SEQVAE_CONFIGS["seqvae_default"])).train
    return (f"seqvae's default anneals its KL weight ({t.kl_schedule}) to {t.kl_weight:g} over "
            f"{t.kl_warmup_steps:,} steps, with free bits {t.free_bits:g} nats per latent unit.")

if __name__ == "__main__":
    main()
