"""What happens around training steps, as hooks the Trainer calls: the progress bar, log.csv,
periodic evaluation, checkpoints, summary.json and the pictures of a finished run.

A callback overrides any of the hooks of ``Callback``. ``default_callbacks()`` is the list a
run gets (on rank 0 only: under DDP the other processes train and nothing else); pass your own
list to ``Trainer(callbacks=...)`` to change what a run records, e.g. to add a hook that
stops early or reports to a tracking service.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import jsonio

Trainer = Any  # a seqvae.trainer.Trainer; named, not imported: the trainer imports this module

LOG_COLUMNS = [
    "step", "epoch", "elapsed_s", "lr", "kl_weight",
    "train_loss", "train_recon", "train_kl", "train_token_acc", "molecules_per_s", "tokens_per_s",
    "valid_neg_elbo", "valid_recon", "valid_kl", "valid_token_acc", "valid_recon_acc",
    "active_units", "sample_valid", "sample_unique",
    # models with a property head (model.properties): its training loss (standardised mean
    # squared error) and its validation R^2 from the posterior means, averaged over properties
    "train_property_mse", "valid_property_r2",
]


def log_columns(levels: int = 1) -> list[str]:
    """The columns of log.csv: LOG_COLUMNS, and for a hierarchical model (levels > 1) the KL
    of each level in training and validation and its active units."""
    if levels == 1:
        return list(LOG_COLUMNS)
    per_level = ("train_kl", "valid_kl", "active_units")
    return LOG_COLUMNS + [f"{prefix}_{level}" for prefix in per_level
                          for level in range(1, levels + 1)]


@dataclass
class StepStats:
    """The figures of one optimisation step (Trainer.train_step returns them)."""

    loss: float
    recon: float
    kl: float
    token_acc: float
    sequences: int
    tokens: int
    property_loss: float | None = None
    kl_per_level: tuple[float, ...] = ()  # a hierarchical model's KL of z1, of z2


class Callback:
    """Hooks into a run; each does nothing unless overridden."""

    def on_setup(self, trainer: Trainer) -> None:
        """The trainer is set up (model, data, run folder) and about to train."""

    def on_step_end(self, trainer: Trainer, stats: StepStats | None) -> None:
        """A step is done; stats is None when its batch was skipped (a non-finite loss)."""

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """Trainer.run_evaluation measured these validation figures."""

    def on_loop_end(self, trainer: Trainer) -> None:
        """The training loop is left, normally or by an exception (close what is open)."""

    def on_train_end(self, trainer: Trainer) -> None:
        """The run finished or was stopped by request (not by an error)."""


class ProgressBar(Callback):
    """A tqdm bar of steps, with the running loss, KL and KL weight."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_setup(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm
        self.bar = tqdm(total=trainer.total_steps or None, initial=trainer.state.step,
                        desc="training", unit="step", dynamic_ncols=True, mininterval=2.0)

    def on_step_end(self, trainer: Trainer, stats: StepStats | None) -> None:
        self.bar.update(1)
        if stats is not None and trainer.state.step % trainer.config.train.log_every == 0:
            self.bar.set_postfix(loss=f"{stats.loss:.2f}", kl=f"{stats.kl:.2f}",
                                 beta=f"{trainer.kl_weight_at(trainer.state.step):.3g}")

    def on_loop_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class CSVLog(Callback):
    """log.csv: a row of training figures averaged over every ``train.log_every`` steps, and
    a row of validation figures at each evaluation; a resumed run drops the rows logged after
    its checkpoint (work lost when it was killed)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.window = _Window()
        self.columns = LOG_COLUMNS

    def on_setup(self, trainer: Trainer) -> None:
        self.path = trainer.out / "log.csv"
        self.columns = log_columns(len(trainer.model.latent_sizes))
        if trainer.resumed and self.path.exists():
            self._truncate_after(trainer.state.step)
        else:
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)
        self.window.restart()

    def on_step_end(self, trainer: Trainer, stats: StepStats | None) -> None:
        if stats is not None:
            self.window.add(stats)
        if trainer.state.step % trainer.config.train.log_every == 0 and self.window.n:
            self.write({"step": trainer.state.step, "epoch": trainer.state.epoch,
                        "elapsed_s": trainer.elapsed(), "lr": trainer.lr,
                        "kl_weight": trainer.kl_weight_at(trainer.state.step),
                        **self.window.means()})

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self.write({"step": trainer.state.step, "epoch": trainer.state.epoch,
                    "elapsed_s": trainer.elapsed(), **metrics})

    def write(self, row: dict[str, Any]) -> None:
        """Append a row; absent columns stay empty."""
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c)) for c in self.columns])

    def _truncate_after(self, step: int) -> None:
        with open(self.path, newline="") as fh:
            rows = list(csv.reader(fh))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with open(self.path, "w", newline="") as fh:
            csv.writer(fh).writerows(kept)


class _Window:
    """Training figures summed since the last log row."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.t0 = time.perf_counter()
        self.n = self.sequences = self.tokens = 0
        self.sums = {"train_loss": 0.0, "train_recon": 0.0, "train_kl": 0.0,
                     "train_token_acc": 0.0}
        self.property: float | None = None

    def add(self, stats: StepStats) -> None:
        self.n += 1
        self.sequences += stats.sequences
        self.tokens += stats.tokens
        levels = [(f"train_kl_{level}", value)
                  for level, value in enumerate(stats.kl_per_level, start=1)]
        for key, value in (("train_loss", stats.loss), ("train_recon", stats.recon),
                           ("train_kl", stats.kl), ("train_token_acc", stats.token_acc),
                           *levels):
            self.sums[key] = self.sums.get(key, 0.0) + value
        if stats.property_loss is not None:
            self.property = (self.property or 0.0) + stats.property_loss

    def means(self) -> dict[str, float]:
        """Means per step and rates per second since the last row; starts a new window."""
        seconds = max(time.perf_counter() - self.t0, 1e-9)
        row = {key: value / self.n for key, value in self.sums.items()}
        row["molecules_per_s"] = self.sequences / seconds
        row["tokens_per_s"] = self.tokens / seconds
        if self.property is not None:
            row["train_property_mse"] = self.property / self.n
        self.restart()
        return row


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class Evaluation(Callback):
    """Validation figures every ``train.eval_every`` steps and at the end of the run (unless
    its last step was just evaluated or a stop was requested)."""

    def on_step_end(self, trainer: Trainer, stats: StepStats | None) -> None:
        if trainer.state.step % trainer.config.train.eval_every == 0:
            trainer.run_evaluation()

    def on_train_end(self, trainer: Trainer) -> None:
        if not trainer.stop_requested and trainer.state.step % trainer.config.train.eval_every:
            trainer.run_evaluation()


class Checkpoints(Callback):
    """The run's checkpoint every ``train.checkpoint_every`` steps and at the end."""

    def on_step_end(self, trainer: Trainer, stats: StepStats | None) -> None:
        if trainer.state.step % trainer.config.train.checkpoint_every == 0:
            trainer.save()

    def on_train_end(self, trainer: Trainer) -> None:
        trainer.save()


class Snapshots(Callback):
    """A copy of the weights every ``train.snapshot_every_minutes`` of training time (resumed
    parts included), as snapshots/STEP.safetensors, each listed with its step and training
    seconds in snapshots/index.json: the points of a curve over training time (FCD against
    minutes, say). Off when the setting is 0."""

    INDEX = "index.json"

    def on_setup(self, trainer: Trainer) -> None:
        self.every = 60.0 * trainer.config.train.snapshot_every_minutes
        self.folder = trainer.out / "snapshots"
        index = self.folder / self.INDEX
        self.entries = json.loads(index.read_text())["snapshots"] if index.is_file() else []
        # a resumed run keeps the snapshots taken up to its checkpoint, drops any taken after
        self.entries = [e for e in self.entries if e["step"] <= trainer.state.step]
        done = self.entries[-1]["elapsed_s"] if self.entries else 0.0
        self.next_s = (int(done // self.every) + 1) * self.every if self.every else None

    def on_step_end(self, trainer: Trainer, stats: StepStats | None) -> None:
        if self.next_s is not None and trainer.state.elapsed_s >= self.next_s:
            self.take(trainer)
            while self.next_s <= trainer.state.elapsed_s:
                self.next_s += self.every

    def take(self, trainer: Trainer) -> None:
        """Write the current weights and list them in the index."""
        from .checkpoint import save_tensors

        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{trainer.state.step:08d}.safetensors"
        save_tensors(trainer.model.state_dict(), self.folder / name)
        self.entries.append({"step": trainer.state.step,
                             "elapsed_s": round(trainer.state.elapsed_s, 3), "file": name})
        (self.folder / self.INDEX).write_text(jsonio.dumps({"snapshots": self.entries}, indent=2))


class AggregatePrior(Callback):
    """The aggregate prior fitted to the final weights and stored in the checkpoint
    (prior.safetensors + prior.json; seqvae.priors): a full-covariance Gaussian, or a mixture
    of train.prior_components, fitted to codes z ~ q(z|x) of train.prior_codes training rows
    drawn at random. Models without a latent space (and train.prior_codes = 0) skip it."""

    def on_train_end(self, trainer: Trainer) -> None:
        from .checkpoint import CHECKPOINT_DIR
        from .trained import TrainedModel

        cfg = trainer.config.train
        if not trainer.model.config.use_latent or cfg.prior_codes == 0:
            return
        import numpy as np
        import torch
        data = trainer.data.train
        rng = np.random.default_rng(cfg.seed)
        rows = np.sort(rng.choice(len(data), min(cfg.prior_codes, len(data)), replace=False))
        model = TrainedModel(trainer.model, trainer.tokenizer, trainer.config,
                             trainer.out / CHECKPOINT_DIR)
        values = trainer.data.train_properties
        _, conditions = trainer.model.split_properties(
            None if values is None else torch.from_numpy(values[rows]))
        # a conditional model's codes are each read under its own molecule's condition
        codes = model.codes_of([data[int(i)] for i in rows], sample=True, seed=cfg.seed,
                               conditions=conditions)
        model.fit_prior_to(codes, components=cfg.prior_components, seed=cfg.seed,
                           info={"source": f"training rows of the run ({trainer.config.data.train})",
                                 "sequences": len(rows), "skipped": 0})
        trainer.model.train()


class Summary(Callback):
    """summary.json: steps, time, last validation figures, data reports, precision."""

    def on_train_end(self, trainer: Trainer) -> None:
        (trainer.out / "summary.json").write_text(jsonio.dumps(trainer.summary(), indent=2))


class Pictures(Callback):
    """curves.png from log.csv, and the domain's picture of prior samples (samples.png: a
    grid of 48 molecules; text models draw none)."""

    def on_train_end(self, trainer: Trainer) -> None:
        from .trained import TrainedModel
        from .viz import training_curves

        training_curves(trainer.out / "log.csv", trainer.out / "curves.png")
        if not trainer.domain.draws:  # nothing to draw: no samples to decode either
            return
        model = TrainedModel(trainer.model, trainer.tokenizer, trainer.config)
        model.draw(model.sample(48, seed=trainer.config.train.seed), trainer.out / "samples.png")
        trainer.model.train()


def default_callbacks(progress: bool = True) -> list[Callback]:
    """What a run records: progress bar (when progress), log.csv, evaluation, checkpoints,
    snapshots of the weights (when asked), the aggregate prior, summary.json and pictures, in that order (a checkpoint holds the last
    evaluation; the prior is fitted to the weights of the final checkpoint)."""
    callbacks: list[Callback] = [ProgressBar()] if progress else []
    return callbacks + [CSVLog(), Evaluation(), Checkpoints(), Snapshots(), AggregatePrior(),
                        Summary(), Pictures()]
