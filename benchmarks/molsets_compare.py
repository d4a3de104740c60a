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
import resource
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

from benchmarks.common import (RESULTS_DIR, LoadMonitor, gemm_peak, gemm_text, load_text, machine,
                               machines_markdown, peak_rss_mib, write_results)

NAME = "molsets_compare"
RUNS = Path("runs") / NAME
PARTS = ("throughput", "curve", "sampling")
SEQVAE_CONFIGS = {"seqvae_molsets_vae": "molsets_vae.toml", "seqvae_default": "moses_smiles.toml"}
# throughput only: the same configs with other settings (key -> base key, config overrides)
VARIANTS = {"seqvae_molsets_vae_fp32": ("seqvae_molsets_vae", ['train.precision="fp32"']),
            "seqvae_molsets_vae_bf16": ("seqvae_molsets_vae", ['train.precision="bf16"']),
            "seqvae_default_fp32": ("seqvae_default", ['train.precision="fp32"']),
            "seqvae_default_bf16": ("seqvae_default", ['train.precision="bf16"'])}
LABELS = {
    "molsets": "molsets VAE (its own trainer code)",
    "molsets_malloc": "molsets VAE, with seqvae's allocator setting",
    "seqvae_molsets_vae": "seqvae, molsets' architecture (configs/molsets_vae.toml)",
    "seqvae_molsets_vae_fp32": "seqvae, molsets' architecture, precision fp32",
    "seqvae_molsets_vae_bf16": "seqvae, molsets' architecture, precision bf16",
    "seqvae_default": "seqvae default (configs/moses_smiles.toml)",
    "seqvae_default_fp32": "seqvae default, precision fp32",
    "seqvae_default_bf16": "seqvae default, precision bf16",
}
GOALS = {  # from the issue
    "throughput_same_arch": 3.0,  # seqvae / molsets molecules per second, at least
    "curve_time_ratio": 1 / 3,  # seqvae's time to molsets' final recon / molsets' time, at most
    "sampling_same_arch": 2.0,  # seqvae / molsets molecules per second, at least
    "sampling_default": 10.0,
}
ANCHOR_MOLSETS = {  # /work/shared/ANCHORS.md: 2 CPU cores, AVX2, torch 2.13 CPU, 2026-11-22
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
    annealer, SGDR learning rate, its DataLoader and collate), trained through
    VAETrainer._train_epoch, its own loop body (forward with packing, loss, backward,
    clip_grad_norm_ 50, Adam step).

    Under a Control with a time budget (Curve) the KL weight is set before every step by
    molsets' own KLAnnealer built over the budget (see train); otherwise (Meter) one epoch
    at a time at the weight its per-epoch schedule gives, exactly as its _train does.
    """

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
        self.kl_weight = self.kl_annealer(0)
        self.kl_schedule: dict[str, Any] = self.per_epoch_schedule()

    @property
    def parameters(self) -> int:
        """Parameter count (the modules are grouped twice inside VAE; each counted once)."""
        return sum(p.numel() for p in self.model.parameters())

    def per_epoch_schedule(self) -> dict[str, Any]:
        """molsets' own KL schedule: KLAnnealer(n_epoch) stepped once per epoch."""
        return {"kind": "per epoch (molsets' own _train)", "annealer": "moses.vae.misc.KLAnnealer",
                "n_epoch": self.n_epoch, "index": "epoch", "kl_start": self.config.kl_start,
                "kl_w_start": self.config.kl_w_start, "kl_w_end": self.config.kl_w_end}

    def train(self, control: Control) -> None:
        """Train until control says it is finished.

        With a time budget, molsets' KLAnnealer is built with n_epoch = the budget in whole
        seconds and called before every step with the training seconds elapsed, so the
        weight rises linearly from its kl_w_start to its published kl_w_end over the budget,
        as its own schedule does over all its n_epoch epochs. Its per-epoch schedule would hold the
        weight at kl_w_start (0) through a budget shorter than an epoch: a plain autoencoder.
        Each step is one call of _train_epoch on a one-batch feed, so the loop body is still
        molsets' own. The SGDR learning rate still steps per epoch (its default lr_start and
        lr_end are equal, so it is constant either way).
        """
        progress = control.progress()
        if progress is None:
            while self.epoch < self.n_epoch and not control.finished():
                feed = Feed(self.loader, control)
                self.kl_weight = self.kl_annealer(self.epoch)
                self.trainer._train_epoch(self.model, self.epoch, feed, self.kl_weight,
                                          self.optimizer)
                if feed.stopped:
                    return
                self.lr_annealer.step()
                self.epoch += 1
            return
        budget = max(int(round(progress[1])), 1)
        annealer = self.m.KLAnnealer(budget, self.config)
        self.kl_schedule = {**self.per_epoch_schedule(), "kind": "per step over the budget",
                            "n_epoch": budget, "index": "training seconds elapsed"}
        while self.epoch < self.n_epoch and not control.finished():
            feed = Feed(self.loader, control)
            for batch in feed:
                elapsed, _ = control.progress()
                self.kl_weight = annealer(min(int(elapsed), budget))
                self.trainer._train_epoch(self.model, self.epoch, OneBatch(batch, feed),
                                          self.kl_weight, self.optimizer)
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

    @property
    def parameters(self) -> int:
        """Parameter count."""
        return sum(p.numel() for p in self.trainer.model.parameters())

    def counts(self, batch: Any) -> tuple[int, int, int]:
        """Molecules, model tokens (with BOS/EOS) and characters (+ BOS + EOS) of a batch
        (a seqvae.trainer.Batch)."""
        tokens, lengths = batch.tokens, batch.lengths
        return tokens.size(0), int(lengths.sum()), int(self.char_len[tokens].sum())

    def train(self, control: Control) -> None:
        """Train epoch after epoch until control says it is finished (Trainer.epoch_batches
        moves the epoch counter on when an epoch's batches are all given)."""
        while not control.finished():
            feed = Feed(self.trainer.epoch_batches(), control)
            for batch in feed:
                self.trainer.train_step(batch)
            if feed.stopped:
                return

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
        """The trained model behind seqvae's user API (TrainedModel)."""
        from seqvae import TrainedModel
        return TrainedModel(self.trainer.model, self.trainer.tokenizer, self.trainer.config)


# -- driving a training loop -------------------------------------------------------------------------

class Control:
    """Decides when a training loop stops and what happens between its steps."""

    def finished(self) -> bool:
        """True once the loop should stop (checked before each step but an epoch's first)."""
        raise NotImplementedError

    def before_step(self, batch: Any) -> None:
        """Called with each batch just before the step that trains on it."""

    def progress(self) -> tuple[float, float] | None:
        """(training seconds so far, budget in seconds) for a time-budgeted loop, else None."""
        return None


class OneBatch:
    """A feed of one batch for molsets' _train_epoch, passing its running-loss line on."""

    def __init__(self, batch: Any, feed: Feed):
        self.batch, self.feed = batch, feed

    def __iter__(self) -> Iterator:
        yield self.batch

    def set_postfix_str(self, text: str) -> None:
        """Hand molsets' running-loss line to the epoch's feed."""
        self.feed.set_postfix_str(text)


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
    for the step after the last one, so it holds each timed step and one batch fetch each.

    The warm-up steps run under torch's FlopCounterMode (it slows them, and they are not
    timed): the floating-point operations of forward and backward per model token, which
    times the timed tokens/s gives the achieved GFLOP/s. Minor page faults are counted over
    the timed window (what the allocator setting changes)."""

    def __init__(self, counts: Callable[[Any], tuple[int, int, int]], warmup: int, steps: int,
                 max_seconds: float):
        self.counts, self.warmup, self.steps, self.max_seconds = counts, warmup, steps, max_seconds
        self.seen = 0
        self.totals = np.zeros(3, dtype=np.int64)  # molecules, tokens, characters
        self.warm_totals = np.zeros(3, dtype=np.int64)  # the same over the counted warm-up
        self.start: float | None = None
        self.end: float | None = None
        self.flop_mode: Any = None
        self.flops: int | None = None
        self.faults = 0

    def timed(self) -> int:
        """Timed steps so far."""
        return max(self.seen - self.warmup, 0)

    def finished(self) -> bool:
        if self.end is not None:
            return True
        if self.start is not None and (self.timed() >= self.steps or
                                       time.perf_counter() - self.start >= self.max_seconds):
            self.end = time.perf_counter()
            self.faults = _minor_faults() - self.faults
        return self.end is not None

    def before_step(self, batch: Any) -> None:
        if self.seen == 0 and self.warmup:
            from torch.utils.flop_counter import FlopCounterMode
            self.flop_mode = FlopCounterMode(display=False)
            self.flop_mode.__enter__()
        if self.seen == self.warmup:
            if self.flop_mode is not None:
                self.flop_mode.__exit__(None, None, None)
                self.flops = int(self.flop_mode.get_total_flops())
            print(f"  {self.warmup} warm-up steps done ({self.flops or 0:,} FLOPs counted); "
                  f"timing up to {self.steps} steps or {self.max_seconds:.0f} s", flush=True)
            self.faults = _minor_faults()
            self.start = time.perf_counter()
        if self.seen >= self.warmup:
            self.totals += self.counts(batch)
        else:
            self.warm_totals += self.counts(batch)
        self.seen += 1

    def summary(self) -> dict[str, Any]:
        """Rates over the timed window; FLOPs per model token from the warm-up steps."""
        seconds = self.end - self.start
        molecules, tokens, chars = (int(x) for x in self.totals)
        result: dict[str, Any] = {
            "timed_steps": self.timed(), "timed_seconds": seconds, "warmup_steps": self.warmup,
            "molecules": molecules, "molecules_per_s": molecules / seconds,
            "tokens_per_s": tokens / seconds, "chars_per_s": chars / seconds,
            "minor_faults_per_step": self.faults / max(self.timed(), 1)}
        warm_tokens = int(self.warm_totals[1])
        if self.flops is not None and warm_tokens:
            per_token = self.flops / warm_tokens
            result.update(warmup_flops=self.flops, warmup_tokens=warm_tokens,
                          flops_per_token=per_token,
                          flops_per_molecule=self.flops / int(self.warm_totals[0]),
                          achieved_gflops=per_token * tokens / seconds / 1e9)
        return result


def _minor_faults() -> int:
    """Minor page faults of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


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

    def progress(self) -> tuple[float, float]:
        return self.elapsed(), self.seconds

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


def _watch_keep_freed_memory() -> list[bool]:
    """Record each call of seqvae.runtime.keep_freed_memory made in this process (by
    seqvae's trainer, wherever it imported it), so a row states whether the allocator
    setting was applied rather than assuming it. Returns the list the results go to."""
    import seqvae.runtime
    calls: list[bool] = []
    original = seqvae.runtime.keep_freed_memory

    def recorded() -> bool:
        calls.append(original())
        return calls[-1]

    for module in list(sys.modules.values()):
        if (getattr(module, "__name__", "").startswith("seqvae")
                and getattr(module, "keep_freed_memory", None) is original):
            module.keep_freed_memory = recorded
    return calls


def _parameter_groups(model: torch.nn.Module) -> dict[str, int]:
    """Parameters per top-level submodule (each parameter counted once)."""
    groups: dict[str, int] = {}
    for name, parameter in model.named_parameters():
        top = name.split(".", 1)[0]
        groups[top] = groups.get(top, 0) + parameter.numel()
    return groups


def worker_throughput(key: str, args: argparse.Namespace) -> dict[str, Any]:
    """Training throughput of one model, warm-up steps excluded."""
    import seqvae  # noqa: F401  (its modules imported first, so the watch below reaches them)
    allocator_calls = _watch_keep_freed_memory()
    if key.startswith("molsets"):
        if key == "molsets_malloc":
            from seqvae.runtime import keep_freed_memory
            allocator_calls.append(keep_freed_memory())
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
    with LoadMonitor() as load:
        run.train(meter)
        meter.finished()
    module = run.model if key.startswith("molsets") else run.vae_model().model
    return {**meter.summary(), **extra, "parameters": run.parameters,
            "parameter_groups": _parameter_groups(module),
            "keep_freed_memory": bool(allocator_calls) and all(allocator_calls),
            "load_average": load.summary(), "peak_rss_mib": peak_rss_mib()}


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
    with LoadMonitor() as load:
        run.train(curve)
        train_seconds = curve.elapsed()
    curve.record()
    result: dict[str, Any] = {
        "minutes": minutes, "train_seconds": train_seconds, "steps": curve.steps,
        "molecules_seen": curve.molecules, "molecules_per_s": curve.molecules / train_seconds,
        "eval_seconds_total": curve.paused, "parameters": run.parameters, "points": curve.points,
        "trained_by": by, "load_average": load.summary(),
    }
    if key == "molsets":
        result.update(epochs_started=run.epoch + 1, kl_weight=run.kl_weight,
                      kl_schedule=run.kl_schedule,
                      lr=run.optimizer.param_groups[0]["lr"], vocab_size=len(run.vocab))
        run.save(out)
    else:
        t = run.trainer
        result.update(epochs_started=t.state.epoch + 1,
                      kl_weight=t.kl_weight_at(t.state.step),
                      lr=t.lr, vocab_size=t.tokenizer.vocab_size)
        t.state.elapsed_s = train_seconds
        t.save()
    if key != "molsets":
        config = getattr(run.vae_model(), "config", None)
        if config is not None:  # the schedule this run trained with, for the report
            t_cfg = config.train
            result["kl_schedule"] = {"kl_schedule": t_cfg.kl_schedule, "kl_weight": t_cfg.kl_weight,
                                     "kl_warmup_steps": t_cfg.kl_warmup_steps,
                                     "free_bits": t_cfg.free_bits}
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
    with LoadMonitor() as load:
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
    result["process_load_average"] = load.summary()
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


THROUGHPUT_KEYS = ("molsets", "molsets_malloc", "seqvae_molsets_vae_fp32", "seqvae_molsets_vae_bf16",
                   "seqvae_default_fp32", "seqvae_default_bf16")


def part_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Training throughput of each model in its own process, with this machine's fp32 GEMM
    peak and bf16 speed measured first at the same thread count. The bf16 rows run where
    bf16 matrix products are at least as fast as fp32 ones (or as --bf16-rows says)."""
    print(f"\n== GEMM peak at {args.threads} thread(s) ==", flush=True)
    peak = gemm_peak(args.threads)
    print(gemm_text(peak), flush=True)
    run_bf16 = {"auto": peak["bf16_fast"], "always": True, "never": False}[args.bf16_rows]
    models: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for key in THROUGHPUT_KEYS:
        if key.endswith("_bf16") and not run_bf16:
            skipped[key] = (f"not run: bf16 matrix products measured {peak['bf16']['gflops']:.2f} "
                            f"GFLOP/s against {peak['fp32']['gflops']:.1f} in fp32 on this CPU"
                            if args.bf16_rows == "auto" else "not run: --bf16-rows never")
            continue
        models[key] = child(f"throughput:{key}", args)
    return {"models": models, "skipped": skipped, "gemm": peak, **throughput_ratios(models),
            "settings": {"warmup": args.warmup, "steps": args.steps,
                         "max_seconds": args.max_seconds, "bf16_rows": args.bf16_rows}}


def _row(models: dict[str, Any], key: str) -> dict[str, Any] | None:
    """A throughput row by key; for a precision variant (..._fp32, ..._bf16) also the base
    config's row when that ran at the same precision (records from before the variants)."""
    if key in models:
        return models[key]
    base, _, precision = key.rpartition("_")
    if precision in ("fp32", "bf16") and models.get(base, {}).get("precision") == precision:
        return models[base]
    return None


# molecules/s ratios of the throughput report: name -> (numerator, denominator, label)
RATIOS = {
    "same_arch_fp32": ("seqvae_molsets_vae_fp32", "molsets_malloc",
                       "seqvae / molsets at the same architecture, fp32 against fp32"),
    "same_arch_fp32_vs_molsets_own": ("seqvae_molsets_vae_fp32", "molsets",
                                      "seqvae fp32 / molsets' own code as it runs"),
    "allocator_on_molsets": ("molsets_malloc", "molsets",
                             "the allocator setting alone, on molsets' code (with / without)"),
    "bf16_on_same_arch": ("seqvae_molsets_vae_bf16", "seqvae_molsets_vae_fp32",
                          "bf16 / fp32, seqvae at molsets' architecture"),
    "same_arch_bf16": ("seqvae_molsets_vae_bf16", "molsets_malloc",
                       "seqvae bf16 / molsets fp32 at the same architecture"),
    "default_fp32": ("seqvae_default_fp32", "molsets_malloc",
                     "seqvae default fp32 / molsets fp32 (a different, smaller model)"),
    "bf16_on_default": ("seqvae_default_bf16", "seqvae_default_fp32", "bf16 / fp32, seqvae default"),
}


def throughput_ratios(models: dict[str, Any]) -> dict[str, float]:
    """Molecules/s ratios between the rows there are. The headline, same_arch_fp32, is fp32
    against fp32 with the same allocator setting on both sides."""
    ratios = {}
    for name, (a, b, _) in RATIOS.items():
        top, bottom = _row(models, a), _row(models, b)
        if top is not None and bottom is not None:
            ratios[f"ratio_{name}"] = top["molecules_per_s"] / bottom["molecules_per_s"]
    return ratios


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


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "not recorded"}[value]


def _load_cell(load: dict[str, Any] | None) -> str:
    return "not measured in this record" if not load else f"{load['mean']:.2f} (max {load['max']:.2f})"


def _throughput_section(r: dict[str, Any], separate: dict[str, Any] | None = None) -> list[str]:
    """The training-throughput section of one throughput record (older records too);
    separate: a --part gemm record, named where this record has no GEMM figures of its own."""
    s, models = r["settings"], r["models"]
    gemm = r.get("gemm")
    gemm_line = gemm_text(gemm)
    if gemm is None and separate is not None:
        gemm_line += (f" (This machine's speed was measured separately at "
                      f"{separate['machine']['date']}, above; these rows ran at "
                      f"{r['machine']['date']}.)")
    peak = gemm["fp32"]["gflops"] if gemm else None
    onednn = r["machine"].get("onednn_bf16")
    auto = {True: "bf16", False: "fp32", None: "not recorded in this record"}[onednn]
    lines = ["## Training throughput", "", f"Command: `{r['command']}`", "",
             f"Each model: {s['warmup']} untimed warm-up step(s), then {s['steps']} timed steps or "
             f"{s['max_seconds']:g} s, whichever comes first. Timed: the training step "
             "(forward, loss, backward, clip, optimizer step) and fetching the next batch "
             "(molsets: its DataLoader with its collate; seqvae: its length-bucketed batches). "
             "Not timed: start-up, data reading and tokenizing, the warm-up steps. "
             "Characters/s counts characters + BOS + EOS of the same molecules for both models "
             "(molsets' own token unit); model tokens/s counts each model's own tokens with "
             "BOS/EOS. Peak RSS is the whole process.", "",
             gemm_line, "",
             "GFLOP/s achieved: the floating-point operations of the warm-up steps (forward and "
             "backward, counted by torch.utils.flop_counter.FlopCounterMode) per model token, "
             "times the timed model tokens/s; against the fp32 GEMM peak above. Precision: fp32 "
             "is float32 throughout; bf16 is seqvae's `train.precision = \"bf16\"` (matrix "
             "products in bfloat16, weights, optimizer and losses in float32). seqvae's default "
             f"`auto` picks bf16 only where oneDNN reports native bfloat16; on this record's "
             f"machine that is: {auto}. 'Keeps freed memory': whether glibc's malloc was set to "
             "keep freed memory (`seqvae.runtime.keep_freed_memory`) in that process, as "
             "recorded by the process itself (seqvae's trainer calls it; the molsets row 'with "
             "seqvae's allocator setting' calls it before running molsets' unchanged code).", "",
             "| model | precision | keeps freed memory | parameters | vocabulary | batch | timed "
             "steps | seconds | molecules/s | characters/s | model tokens/s | GFLOP/s achieved | "
             "of fp32 GEMM peak | minor page faults / step | load average (mean) | peak RSS (MiB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, m in models.items():
        achieved = m.get("achieved_gflops")
        faults = m.get("minor_faults_per_step")
        lines.append(
            f"| {LABELS.get(key, key)} | {m.get('precision', 'fp32')} | "
            f"{_yes_no(m.get('keep_freed_memory'))} | {m['parameters']:,} | {m['vocab_size']} | "
            f"{m['batch_size']} | {m['timed_steps']} | {m['timed_seconds']:.1f} | "
            f"{m['molecules_per_s']:.1f} | {m['chars_per_s']:.0f} | {m['tokens_per_s']:.0f} | "
            + ("not measured in this record" if achieved is None else f"{achieved:.1f}") + " | "
            + ("not measured in this record" if achieved is None or peak is None
               else f"{achieved / peak:.1%}") + " | "
            + ("not measured in this record" if faults is None else f"{faults:,.0f}") + " | "
            f"{_load_cell(m.get('load_average'))} | {m['peak_rss_mib']:.0f} |")
    for key, why in r.get("skipped", {}).items():
        lines.append(f"| {LABELS.get(key, key)} | {key.rsplit('_', 1)[1]} | | | | | | | {why} "
                     "| | | | | | | |")
    ratios = throughput_ratios(models)
    lines.append("")
    for name, (a, b, text) in RATIOS.items():
        if f"ratio_{name}" not in ratios:
            continue
        top, bottom = _row(models, a), _row(models, b)
        value = ratios[f"ratio_{name}"]
        alloc = (top.get("keep_freed_memory"), bottom.get("keep_freed_memory"))
        if alloc == (None, None):
            alloc_text = "allocator setting not recorded in this record"
        elif alloc[0] == alloc[1]:
            alloc_text = "the same allocator setting on both sides"
        else:
            alloc_text = f"malloc kept freed memory: {_yes_no(alloc[0])} / {_yes_no(alloc[1])}"
        chars = top["chars_per_s"] / bottom["chars_per_s"]
        if name == "same_arch_fp32":
            lines.append(f"- {text} ({alloc_text}): **{value:.2f}x** molecules/s "
                         f"({_goal(value, GOALS['throughput_same_arch'], True)}); "
                         f"{chars:.2f}x in characters/s")
        else:
            lines.append(f"- {text} ({alloc_text}): {value:.2f}x molecules/s, {chars:.2f}x "
                         "characters/s")
    for key, why in r.get("skipped", {}).items():
        lines.append(f"- {LABELS.get(key, key)}: {why}")
    if "molsets" in models and "seqvae_molsets_vae_fp32" in models:
        groups = [(key, models[key].get("parameter_groups"))
                  for key in ("molsets", "seqvae_molsets_vae_fp32")]
        if all(g for _, g in groups):
            lines.append("- parameters by module at the same architecture: " + "; ".join(
                f"{LABELS[key]} {sum(g.values()):,} (" + ", ".join(
                    f"{name} {n:,}" for name, n in g.items()) + ")" for key, g in groups))
        else:
            lines.append(f"- parameters at the same architecture: molsets "
                         f"{models['molsets']['parameters']:,}, seqvae "
                         f"{models['seqvae_molsets_vae_fp32']['parameters']:,} (per module: not "
                         "measured in this record)")
    lines.append("")
    return lines


def _kl_text(m: dict[str, Any]) -> str:
    """How molsets' KL weight was set in a curve record, from the record."""
    k = m.get("kl_schedule")
    if not k:
        return (f"in this record molsets' KL weight was set per epoch by its own annealer "
                f"({m['epochs_started']} epoch(s) started; weight at the end "
                f"{m['kl_weight']:.3g}): the per-step schedule over the budget had not been "
                "added when it was measured")
    if k["index"] == "epoch":
        return (f"molsets' KL weight was set per epoch by its own KLAnnealer over "
                f"{k['n_epoch']} epochs ({m['epochs_started']} started; weight at the end "
                f"{m['kl_weight']:.3g})")
    return (f"molsets' KL weight was set before every step by its own KLAnnealer built over the "
            f"budget ({k['n_epoch']:,} s, called with the training seconds elapsed), rising "
            f"linearly from its kl_w_start {k['kl_w_start']:g} toward its published kl_w_end "
            f"{k['kl_w_end']:g}; {m['kl_weight']:.3g} at the end (its per-epoch schedule "
            f"would have held it at {k['kl_w_start']:g} through a budget shorter than an epoch)")


def _seqvae_kl_text(m: dict[str, Any]) -> str:
    """How seqvae's KL weight was set in a curve record (or the shipped config, said so)."""
    k = m.get("kl_schedule")
    where = "in this run"
    if not k:
        k = _shipped_kl(SEQVAE_CONFIGS["seqvae_default"])
        where = "in the shipped config now (not recorded in this record)"
    return (f"seqvae's default anneals its KL weight ({k['kl_schedule']}) to {k['kl_weight']:g} "
            f"over {k['kl_warmup_steps']:,} steps with free bits {k['free_bits']:g} nats per "
            f"latent unit {where}; {m['kl_weight']:.3g} at the end")


def _shipped_kl(config_name: str) -> dict[str, Any]:
    from seqvae.config import load_config
    t = load_config(files("seqvae").joinpath("configs", config_name)).train
    return {"kl_schedule": t.kl_schedule, "kl_weight": t.kl_weight,
            "kl_warmup_steps": t.kl_warmup_steps, "free_bits": t.free_bits}


def _curve_section(r: dict[str, Any]) -> list[str]:
    """The validation-reconstruction section of one curve record."""
    mo, sq = r["models"]["molsets"], r["models"]["seqvae_default"]
    reach = r["seqvae_reaches_it"]
    lines = ["## Validation reconstruction over training time", "",
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
             "SGDR schedule its `_train` builds; seqvae through its `Trainer`. KL weight: "
             f"{_kl_text(mo)}; {_seqvae_kl_text(sq)}.", "",
             "| model | steps | molecules/s | final valid recon (nats/molecule) | final KL | "
             "KL weight at end | valid prior samples | load average while training (mean) | "
             "peak RSS (MiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, m in r["models"].items():
        last = m["points"][-1]
        lines.append(f"| {LABELS.get(key, key)} | {m['steps']} | {m['molecules_per_s']:.1f} | "
                     f"{last['recon']:.2f} | {last['kl']:.2f} | {m['kl_weight']:.3g} | "
                     f"{m['validity']:.3f} of {m['validity_samples']} | "
                     f"{_load_cell(m.get('load_average'))} | {m['peak_rss_mib']:.0f} |")
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
              "samples through its patched `VAE.sample`, seqvae through `TrainedModel.sample`)", "",
              f"![curves]({NAME}_curves.png)", ""]
    return lines


# mean sample lengths within this fraction of each other count as the same length
SAME_LENGTH = 0.01


def _sampling_section(r: dict[str, Any]) -> list[str]:
    """The sampling-speed section of one sampling record."""
    samplers = r["samplers"]
    molsets_rows = {row["n"]: row for row in samplers["molsets"]["rows"]}
    molsets_steps = sorted({row.get("decode_steps_per_batch") for row in molsets_rows.values()
                            if row.get("decode_steps_per_batch") is not None})
    lines = ["## Sampling speed", "", f"Command: `{r['command']}`", "",
             f"Batch {r['batch_size']:,}; each sampler runs once untimed on 10 samples first. "
             "Timed: drawing z, decoding, and turning tokens into strings. molsets: its "
             "`VAE.sample` (patched mask; strings, no RDKit; decoding steps per batch in this "
             f"record: {', '.join(f'{x:.0f}' for x in molsets_steps) or 'not recorded'}). "
             "seqvae `generate`: `SequenceVAE.generate` + tokenizer `decode_batch` (strings, no "
             "RDKit; a sequence leaves the batch once it has produced EOS), the like-for-like "
             "comparison. seqvae API: `TrainedModel.sample`, which also canonicalizes every sample "
             "with RDKit. Validity is computed after the clock stops for the first two. Goals "
             "are judged in characters/s where a sampler's mean sample length differs from "
             f"molsets' by more than {SAME_LENGTH:.0%} (seqvae's cost follows the length of "
             "what it samples, molsets' does not), else in molecules/s.", "",
             "Models sampled (how they were trained):", ""]
    for key, t in r["trained"].items():
        lines.append(f"- {LABELS.get(key, key)}: {t['steps']} steps in {t['train_seconds']:.0f} s, "
                     f"trained by the {t['trained_by']}")
    lines += ["", "| sampler | samples | seconds | molecules/s | x molsets | mean length "
              "(chars) | characters/s | x molsets (characters/s) | goal | decoding steps / batch | "
              "ms / decoding step | ended with EOS | valid |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    goals = {"seqvae_molsets_vae_generate": GOALS["sampling_same_arch"],
             "seqvae_default_generate": GOALS["sampling_default"]}
    names = {"molsets": "molsets `VAE.sample`",
             "seqvae_molsets_vae_generate": "seqvae `generate`, molsets' architecture",
             "seqvae_molsets_vae_api": "seqvae `TrainedModel.sample` (RDKit), molsets' architecture",
             "seqvae_default_generate": "seqvae `generate`, default config",
             "seqvae_default_api": "seqvae `TrainedModel.sample` (RDKit), default config"}
    for name, entry in samplers.items():
        for row in entry["rows"]:
            base = molsets_rows[row["n"]]
            chars = row["molecules_per_s"] * row["mean_length_chars"]
            base_chars = base["molecules_per_s"] * base["mean_length_chars"]
            ratio = row["molecules_per_s"] / base["molecules_per_s"]
            ratio_chars = chars / base_chars
            goal = ""
            if name in goals:
                differ = abs(row["mean_length_chars"] / base["mean_length_chars"] - 1) > SAME_LENGTH
                unit, value = ("characters/s", ratio_chars) if differ else ("molecules/s", ratio)
                goal = f"{_goal(value, goals[name], True)} ({unit})"
            steps = row.get("decode_steps_per_batch")
            step_ms = row.get("ms_per_decode_step")
            ended = row.get("finished_fraction")
            lines.append(f"| {names.get(name, name)} | {row['n']:,} | {row['seconds']:.1f} | "
                         f"{row['molecules_per_s']:.0f} | {ratio:.2f} | "
                         f"{row['mean_length_chars']:.1f} | {chars:.0f} | {ratio_chars:.2f} | "
                         f"{goal} | {'' if steps is None else f'{steps:.0f}'} | "
                         f"{'' if step_ms is None else f'{step_ms:.1f}'} | "
                         f"{'' if ended is None else f'{ended:.3f}'} | {row['validity']:.3f} |")
    load = r.get("process_load_average")
    lines += ["", "Decoding steps / batch: steps until the batch's last sequence ended; "
              "seqvae's later steps decode only the sequences still running, so its "
              "ms / decoding step is an average over shrinking batches. Sampling process: "
              f"{load_text(load, r.get('torch_threads'), r['machine'].get('cpus_usable'))}.", ""]
    return lines


def _part_load(r: dict[str, Any]) -> str:
    """The range of the mean load averages of a part's measurement processes."""
    loads = [m.get("process_load_average") or m.get("load_average")
             for m in r.get("models", {}).values()] + [r.get("process_load_average")]
    if isinstance(r.get("gemm"), dict):  # the matrix-product measurement of a part
        loads.append(r["gemm"].get("load_average"))
    means = [x["mean"] for x in loads if x]
    if not means:
        return "not measured in this record"
    return f"{min(means):.2f}" if len(means) == 1 else f"{min(means):.2f} to {max(means):.2f}"


def markdown(results: dict[str, Any]) -> str:
    """The report, from whatever parts have been measured."""
    data = next((r["data"] for r in results.values() if "data" in r), None)
    lines = ["# seqvae beside molsets' own VAE", "",
             "Both run on the same machine, one after the other"
             + (f", on `{data['train_file']}` ({data['train_molecules']:,} training molecules; "
                f"{data['valid_molecules']:,} validation molecules from `data/moses_valid.csv.gz`)"
                if data else "") +
             ", each measurement in its own process with torch at the thread count in the table "
             "at the end. molsets 0.3.1 runs from its installed code (its VAE, "
             "`VAETrainer._train_epoch`, collate, KL annealer, SGDR lr), with two shims inside "
             "this script and none in seqvae: `moses/__init__.py` is bypassed (it imports "
             "`moses.metrics`, which needs `fcd_torch` and `rdkit.six`), and `VAE.sample` is "
             "recompiled from its source with its EOS mask made `bool` instead of `uint8` "
             "(torch 2.x refuses uint8 masks).", "",
             "Earlier figures for molsets quoted from /work/shared/ANCHORS.md (measured there on "
             "2 CPU cores with AVX2, torch 2.13 CPU, 2026-11-22; not this run): training about "
             f"{ANCHOR_MOLSETS['train_molecules_per_s']} molecules/s, sampling about "
             f"{ANCHOR_MOLSETS['sample_molecules_per_s']} molecules/s, "
             f"{ANCHOR_MOLSETS['validity_after_8_min']:.1%} valid prior samples after 8 minutes.", ""]
    if "gemm" in results:
        g = results["gemm"]
        lines += ["## This machine's matrix-product speed", "", f"Command: `{g['command']}` "
                  f"(run at {g['machine']['date']})", "", gemm_text(g["gemm"]), ""]
    if "throughput" in results:
        lines += _throughput_section(results["throughput"], results.get("gemm"))
    if "curve" in results:
        lines += _curve_section(results["curve"])
    if "sampling" in results:
        lines += _sampling_section(results["sampling"])
    lines += ["## Commands and budget", "",
              "All parts: `python -m benchmarks.molsets_compare --part all`; rebuild this report "
              "from the JSON: `--part report`. Each part's command is in its section.", "",
              "| part | run at | wall time (min) | torch threads | load average of its "
              "measurement processes (mean) |", "|---|---|---|---|---|"]
    for part in ("gemm", *PARTS):
        if part in results:
            r = results[part]
            lines.append(f"| {part} | {r['machine']['date']} | {r['part_seconds'] / 60:.1f} | "
                         f"{r['threads']} | {_part_load(r)} |")
    lines.append("")
    lines.append(machines_markdown([(part, results[part].get("machine"))
                                    for part in ("gemm", *PARTS) if part in results]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all", "gemm", "report"], default="all",
                        help="gemm: only this machine's fp32 GEMM peak and bf16 speed (the "
                        "throughput part measures them too); report: rebuild the Markdown from "
                        "the JSON records, measuring nothing")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=3, help="throughput: untimed steps first")
    parser.add_argument("--steps", type=int, default=30, help="throughput: timed steps at most")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="throughput: stop timing after this many seconds")
    parser.add_argument("--bf16-rows", choices=("auto", "always", "never"), default="auto",
                        help="throughput: run seqvae's bf16 rows (auto: where bf16 matrix "
                        "products measure at least as fast as fp32 ones)")
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

    json_path = RESULTS_DIR / f"{NAME}.json"
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    if args.part == "report":
        if not results:
            raise SystemExit(f"no records in {json_path}: run a part first")
        write_results(NAME, results, markdown(results))
        print((RESULTS_DIR / f"{NAME}.md").read_text())
        return
    args.argv = [a for a in sys.argv[1:]]
    command = "python -m benchmarks.molsets_compare " + " ".join(shlex.quote(a) for a in args.argv)
    if args.part == "gemm":
        started = time.perf_counter()
        peak = gemm_peak(args.threads)
        torch.set_num_threads(args.threads)  # machine() reports the thread count
        results["gemm"] = {"gemm": peak, "command": command, "threads": args.threads,
                           "part_seconds": time.perf_counter() - started, "machine": machine()}
        write_results(NAME, results, markdown(results))
        print(gemm_text(peak))
        return
    prepare_inputs(args)
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



if __name__ == "__main__":
    main()
