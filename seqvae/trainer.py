"""Training a SequenceVAE: KL schedules, free bits, word dropout, autoencoder pre-training,
resumable checkpoints (no pickle), PyTorch DDP under torchrun.

The trainer trains. Data come prepared by the run's domain (seqvae.prepare); what is recorded
around the steps (progress bar, log.csv, evaluation, checkpoints, summary, pictures) are
callbacks (seqvae.callbacks). ``train(config)`` is the whole job; ``seqvae train`` is a thin
shell over it.
"""

from __future__ import annotations

import contextlib
import copy
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .callbacks import Callback, StepStats, default_callbacks
from .checkpoint import (CHECKPOINT_DIR, load_checkpoint, load_trainer_state, optimizer_from_state,
                         optimizer_to_state, resolve_checkpoint, save_checkpoint)
from .config import Config, dump_toml
from .data import SequenceBatches
from .distributed import (any_rank, any_ranks, backend, start as start_distributed,
                          stop as stop_distributed, world_from_env)
from .domains import domain_for
from .errors import CheckpointError, ConfigError
from .evaluation import validation_metrics
from .model import SequenceVAE
from .prepare import prepare_data_distributed
from .runtime import (autocast, keep_freed_memory, precision_name, resolve_device,
                      resolve_precision)
from .schedules import kl_weight, learning_rate

__all__ = ["Trainer", "TrainState", "StepStats", "Batch", "train"]

# the decoder's architecture, which a VAE warm-started from a language model takes from it
DECODER_FIELDS = ("embedding_dim", "decoder", "decoder_hidden", "decoder_layers",
                  "selfies_counter")
DERIVED_FIELDS = ("vocab_size", "pad_id", "bos_id", "eos_id", "unk_id", "max_length",
                  "token_roles")


@dataclass
class TrainState:
    """Where a run stands; saved in the checkpoint (trainer_state.json) to resume from."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the current epoch already trained
    elapsed_s: float = 0.0  # training time, summed over resumed parts
    skipped_batches: int = 0  # batches with a non-finite loss or gradient, skipped
    pretrain_done: bool = False
    # where autoencoder pre-training ended: the KL schedule counts from here
    pretrain_end_step: int = 0
    pretrain_end_progress: float = 0.0
    # aggressive inference-network training (train.aggressive_fraction): updates of the
    # encoder alone since the last decoder update, the loss summed over the current window of
    # them and the mean of the window before (-1: none yet), whether the inner loop is over
    # (the next step updates the decoder), the counts of each kind, whether the phase is over
    aggressive_inner: int = 0
    aggressive_window_loss: float = 0.0
    aggressive_previous: float = -1.0
    aggressive_inner_over: bool = False
    aggressive_encoder_steps: int = 0
    aggressive_decoder_steps: int = 0
    aggressive_done: bool = False

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainState:
        """From a checkpoint's JSON (fields it lacks keep their defaults)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


class Batch(NamedTuple):
    """A training batch: tokens (B, T), lengths (B,), the rows of the training data it holds,
    this process's share of the global batch (DDP) and its index in the epoch."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    rows: np.ndarray
    share: float
    index: int


class Trainer:
    """Trains a SequenceVAE from a Config; resumable from the run folder's checkpoint.

    Under torchrun (WORLD_SIZE > 1) it trains with PyTorch DDP: every process reads the data,
    takes its rows of each batch (train.batch_size stays the global batch), and the
    gradients are averaged; only rank 0 runs the callbacks (logs, evaluates, draws, writes)."""

    def __init__(self, config: Config, resume: bool = False, progress: bool = True, log=print,
                 callbacks: Sequence[Callback] | None = None):
        self.config = copy.deepcopy(config).validate()  # the caller's config is never edited
        self.out = Path(self.config.train.out_dir)
        self.resume = resume
        self.resumed = False
        self.world = world_from_env()
        self.log = log if self.world.main else (lambda *args, **kwargs: None)
        self.device = resolve_device(self.config.train.device)
        if self.world.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)  # one GPU per process
        self.progress = progress and self.world.main  # bars while preparing data, training
        self.callbacks: list[Callback] = (
            [] if not self.world.main else list(callbacks) if callbacks is not None
            else default_callbacks(self.progress))
        self.stop_requested = False
        self.state = TrainState()
        self.metrics: dict[str, float] = {}  # the last validation figures
        self.augment: Any = None  # SMILES enumeration, when data.augment asks (setup)
        self.init_source: dict[str, str] | None = None  # the model fine-tuned (train.init)
        self._started = time.perf_counter()

    # -- set-up, in named steps ---------------------------------------------------------
    def setup(self) -> None:
        """Prepare everything fit() needs: runtime, checkpoint, data, model, optimizer."""
        self._start_runtime()
        restored = self._find_checkpoint()
        source = None if restored else self._find_init()
        start = restored or source
        language_model = None if restored else self._find_decoder_source()
        self._prepare_data(start[1] if start else
                           language_model[1] if language_model else None)
        self._derive_model_config()
        self._build_model(start[0] if start else None)
        if language_model is not None:
            from .model import warm_start_decoder
            warm_start_decoder(self.model, language_model[0].to(self.device))
        self._freeze()
        if self.config.train.aggressive_fraction and self.model.encoder is None:
            raise ConfigError("train.aggressive_fraction trains the encoder on its own, and this "
                              "model has none (a language model, model.use_latent = false)")
        self._build_optimizer()
        if restored:
            self._restore_trainer_state(restored[2])
        self._distribute()
        self._open_run_folder()

    def _start_runtime(self) -> None:
        cfg = self.config.train
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.dtype = resolve_precision(cfg.precision, self.device)
        self._created_group = start_distributed(self.world, self.device)
        torch.manual_seed(cfg.seed)
        self.out.mkdir(parents=True, exist_ok=True)

    def _find_checkpoint(self) -> tuple[SequenceVAE, Any, Path] | None:
        """With resume, the checkpoint's model, tokenizer and folder (its [model] and [data]
        settings must be this run's); without, refuse a folder that already holds a run."""
        if not self.resume:
            if (self.out / CHECKPOINT_DIR / "config.json").exists():
                raise ConfigError(f"{self.out} already holds a run; pass --resume to continue "
                                  f"it, or choose another out_dir")
            return None
        try:
            directory = resolve_checkpoint(self.out)
        except CheckpointError:
            self.log(f"no checkpoint in {self.out}: starting a new run")
            return None
        model, tokenizer, saved, _ = load_checkpoint(directory, device=self.device)
        for name in DERIVED_FIELDS:  # filled from the tokenizer, not set by users
            setattr(self.config.model, name, getattr(saved.model, name))
        if self.config.train.init:  # a fine-tuning run's architecture is its source's
            self.config.model = copy.deepcopy(saved.model)
        if self.config.train.init_decoder:  # its decoder's architecture is the LM's
            for name in DECODER_FIELDS:
                setattr(self.config.model, name, getattr(saved.model, name))
        for section in ("model", "data"):
            if getattr(saved, section) != getattr(self.config, section):
                raise ConfigError(
                    f"--resume: the [{section}] settings differ from those of the checkpoint in "
                    f"{directory}; resume with the run's own config ({self.out / 'config.toml'}) "
                    f"or start a new out_dir")
        self.resumed = True
        return model, tokenizer, directory

    def _find_init(self) -> tuple[SequenceVAE, Any, Path] | None:
        """With train.init, the source model to fine-tune: its weights, tokenizer and
        architecture (its [model] settings replace the config's); it must read the
        representation the data are given in."""
        spec = self.config.train.init
        if not spec:
            return None
        model, tokenizer, saved, directory = self._load_source("init")
        self.config.model = copy.deepcopy(saved.model)
        self.log(f"fine-tuning {directory}: its weights, vocabulary of {tokenizer.vocab_size} "
                 f"tokens and architecture; a fresh optimiser")
        if self.config.train.extend_vocab:
            new = domain_for(self.config.data.representation).new_tokens(self.config, tokenizer)
            if new:
                from .model import grow_vocabulary
                tokenizer = tokenizer.extended(new)
                model = grow_vocabulary(model, new)
                self.init_source["new_tokens"] = new
                self.log(f"vocabulary extended by {len(new)} token(s) of the training data: "
                         + " ".join(new[:20]) + (" ..." if len(new) > 20 else ""))
        return model, tokenizer, directory

    def _load_source(self, key: str) -> tuple[SequenceVAE, Any, Any, Path]:
        """The model named by train.KEY (init or init_decoder): its weights, tokenizer, saved
        config and folder, recorded in init_source; it must read the data's representation."""
        from .pretrained import resolve
        from .priors import model_digest
        spec = getattr(self.config.train, key)
        model, tokenizer, saved, directory = load_checkpoint(resolve(spec), device=self.device)
        ours, theirs = self.config.data.representation, saved.data.representation
        if ours != theirs:
            raise ConfigError(f"train.{key}: {directory} is a {theirs} model and the data are "
                              f"read as {ours}; use it with data.representation = "
                              f"\"{theirs}\" (--representation {theirs})")
        self.init_source = {"spec": spec, "path": str(directory),
                            "model_sha256": model_digest(directory)}
        return model, tokenizer, saved, directory

    def _find_decoder_source(self) -> tuple[SequenceVAE, Any, Path] | None:
        """With train.init_decoder, the language model whose tokenizer, embedding and decoder
        the new VAE starts from; its decoder settings replace the config's."""
        spec = self.config.train.init_decoder
        if not spec:
            return None
        model, tokenizer, saved, directory = self._load_source("init_decoder")
        if saved.model.use_latent:
            raise ConfigError(f"train.init_decoder: {directory} is a VAE, not a language model "
                              "(model.use_latent = false); fine-tune it with train.init instead")
        if saved.model.decoder not in ("gru", "lstm") or saved.model.condition_width:
            raise ConfigError(f"train.init_decoder: {directory} has a {saved.model.decoder} "
                              + ("conditional " if saved.model.condition_width else "")
                              + "decoder; a warm start takes an unconditional GRU or LSTM "
                              "language model")
        for name in DECODER_FIELDS:
            setattr(self.config.model, name, getattr(saved.model, name))
        self.init_source["part"] = "decoder"
        self.log(f"VAE around the decoder of {directory}: its vocabulary of "
                 f"{tokenizer.vocab_size} tokens, token embedding and {saved.model.decoder} "
                 f"decoder (the weights reading z start at zero); a fresh encoder")
        return model, tokenizer, directory

    def _freeze(self) -> None:
        """train.freeze_encoder: the encoder and posterior layers take no updates."""
        if not self.config.train.freeze_encoder:
            return
        if self.model.encoder is None:
            raise ConfigError("train.freeze_encoder: this model has no encoder (a language "
                              "model, model.use_latent = false)")
        for module in self.model.inference_modules():
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    def _prepare_data(self, tokenizer: Any) -> None:
        self.data = prepare_data_distributed(self.config, tokenizer, self.world, self.device,
                                             self.log, progress=self.progress)
        self.tokenizer = self.data.tokenizer
        self.domain = domain_for(self.tokenizer.kind)

    def _derive_model_config(self) -> None:
        """The model's vocabulary and special ids come from the tokenizer."""
        model, tok = self.config.model, self.tokenizer
        model.vocab_size, model.pad_id, model.bos_id = tok.vocab_size, tok.pad_id, tok.bos_id
        model.eos_id, model.unk_id = tok.eos_id, tok.unk_id
        model.max_length = self.config.data.max_length + 2
        model.labels = ",".join(self.config.data.label_names)  # the head learns them too
        model.category_column = self.config.data.condition_column
        model.categories = list(self.data.categories or [])
        if model.selfies_counter:  # each token's part in a SELFIES derivation
            from .model.counter import selfies_roles
            model.token_roles = selfies_roles(list(tok.vocab))

    def _build_model(self, restored: SequenceVAE | None) -> None:
        if restored is not None:
            self.model = restored.train()
            return
        self.model = SequenceVAE(self.config.model).to(self.device)
        head, conditions = self.model.split_properties(
            None if self.data.train_properties is None
            else torch.from_numpy(self.data.train_properties))
        if head is not None:  # standardised on the train split
            self.model.property_head.standardise_on(head)
        if conditions is not None:
            self.model.set_condition_statistics(conditions)

    def _build_optimizer(self) -> None:
        self.optimizer = self._adam()
        # float16 needs its gradients scaled (and inf / NaN steps skipped, as the scaler does)
        self.scaler = (torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None)

    def _adam(self) -> torch.optim.Optimizer:
        """A fresh Adam over the parameters that train (frozen ones left out)."""
        cfg = self.config.train
        return torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad],
                                lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _restore_trainer_state(self, directory: Path) -> None:
        meta, tensors = load_trainer_state(directory)
        optimizer_from_state(self.optimizer, meta["optimizer"], tensors)
        if self.scaler is not None and meta.get("grad_scaler"):
            self.scaler.load_state_dict(meta["grad_scaler"])
        self.state = TrainState.from_dict(meta["trainer"])
        if self.state.pretrain_done and "pretrain_end_step" not in meta["trainer"]:
            self.state.pretrain_end_step = self.config.train.pretrain_steps  # an older checkpoint
        torch.set_rng_state(tensors["rng.torch"])
        self.log(f"resumed from {directory} at step {self.state.step}")

    def _distribute(self) -> None:
        self.augment = None
        if self.config.data.augment != "none":  # SMILES enumeration (seqvae.augment)
            from .augment import RandomizedSmiles
            self.augment = RandomizedSmiles(self.tokenizer, self.config.data.max_length,
                                            self.config.train.seed + 7_919 * self.world.rank)
        self.train_model: torch.nn.Module = self.model
        if self.world.distributed and self.config.train.aggressive_fraction:
            raise ConfigError("train.aggressive_fraction updates the encoder and the decoder in "
                              "turns, which DistributedDataParallel's gradient buckets do not "
                              "follow: train it on one process (set train.aggressive_fraction "
                              "= 0 under torchrun)")
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel
            # the same weights everywhere (DDP also broadcasts rank 0's), then each process
            # its own stream of noise (z samples, word dropout)
            self.train_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            torch.manual_seed(self.config.train.seed + 1_000_003 * self.world.rank
                              + self.state.step)

    def _open_run_folder(self) -> None:
        cfg = self.config
        if self.world.main:
            (self.out / "config.toml").write_text(dump_toml(cfg))
        self.batches = SequenceBatches(self.data.train, cfg.train.batch_size, self.tokenizer.pad_id,
                                       shuffle=True, seed=cfg.train.seed, rank=self.world.rank,
                                       world_size=self.world.size)
        t = cfg.train
        by_epochs = t.max_epochs * len(self.batches) if t.max_epochs else 0
        self.total_steps = min(x for x in (t.max_steps, by_epochs) if x) if (t.max_steps or by_epochs) else 0
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"model: {n_params:,} parameters; vocabulary {self.tokenizer.vocab_size}; "
                 f"{len(self.data.train):,} training and {len(self.data.valid):,} validation "
                 f"sequences; device {self.device}, precision {precision_name(self.dtype)}"
                 + (f"; DDP over {self.world.size} processes ({backend(self.device)})"
                    if self.world.distributed else ""))
        self._started = time.perf_counter() - self.state.elapsed_s
        for callback in self.callbacks:
            callback.on_setup(self)

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train until the budget (steps, epochs or minutes) is spent; returns the summary."""
        self.setup()
        self.model.train()
        previous = self._install_stop_handlers()
        try:
            for batch in self._batches_within_budget():
                stats = self.train_step(batch)
                self.state.elapsed_s = self.elapsed()
                for callback in self.callbacks:
                    callback.on_step_end(self, stats)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for callback in self.callbacks:
                callback.on_loop_end(self)
        for callback in self.callbacks:  # rank 0 only: the others have none
            callback.on_train_end(self)
        stop_distributed(self._created_group)
        return self.summary()

    def epoch_batches(self) -> Iterator[Batch]:
        """The batches of the current epoch from where the run stands (a resumed run goes on
        mid-epoch); once they are all given, the epoch counter moves on."""
        self.batches.set_epoch(self.state.epoch)
        for index, (tokens, lengths, rows, share) in enumerate(
                self.batches.with_indices(shares=True)):
            if index >= self.state.batch_in_epoch:
                yield Batch(tokens, lengths, rows, share, index)
        self.state.epoch += 1
        self.state.batch_in_epoch = 0

    def _batches_within_budget(self) -> Iterator[Batch]:
        while not self._budget_spent():
            for batch in self.epoch_batches():
                if self._budget_spent():
                    return
                yield batch

    @property
    def steps_per_epoch(self) -> int:
        """Optimisation steps in one pass over the training data."""
        return len(self.batches)

    def elapsed(self) -> float:
        """Seconds of training in this run, resumed parts included."""
        return time.perf_counter() - self._started

    def summary(self) -> dict[str, Any]:
        """The run's summary (summary.json): steps, time, last validation figures, data."""
        state = self.state
        if not self.world.main:
            return {"step": state.step, "epoch": state.epoch, "rank": self.world.rank,
                    "finished": not self.stop_requested}
        summary = {"step": state.step, "epoch": state.epoch,
                   "elapsed_s": round(state.elapsed_s, 1), "finished": not self.stop_requested,
                   "metrics": self.metrics, "data": self.data.reports,
                   "precision": precision_name(self.dtype),
                   "parameters": sum(p.numel() for p in self.model.parameters())}
        if self.world.distributed:
            summary["processes"] = self.world.size
        if self.config.train.aggressive_fraction:
            summary["aggressive"] = {"encoder_steps": state.aggressive_encoder_steps,
                                     "decoder_steps": state.aggressive_decoder_steps}
        if self.init_source is not None:
            summary["init"] = self.init_source
        if self.augment is not None:
            summary["augment"] = {"mode": self.config.data.augment,
                                  "this_part": self.augment.report()}
        return summary

    def _install_stop_handlers(self) -> dict[int, Any]:
        """Ctrl-C / SIGTERM finish the current step, then checkpoint and stop."""
        if threading.current_thread() is not threading.main_thread():
            return {}  # signal handlers can only be set from the main thread
        return {signum: signal.signal(signum, self._request_stop)
                for signum in (signal.SIGINT, signal.SIGTERM)}

    def _request_stop(self, signum, frame) -> None:
        if self.stop_requested:  # a second Ctrl-C: stop at once, keep the last checkpoint
            raise KeyboardInterrupt
        self.stop_requested = True
        self.log("\nstopping after this step and writing a checkpoint (Ctrl-C again to abort)")

    def _budget_spent(self) -> bool:
        """Whether to stop now; under DDP every process stops together (a Ctrl-C or the time
        budget seen by one is seen by all)."""
        cfg = self.config.train
        spent = bool((self.total_steps and self.state.step >= self.total_steps)
                     or (cfg.max_minutes and self.elapsed() >= cfg.max_minutes * 60))
        if self.world.distributed:
            self.stop_requested, spent = any_ranks([self.stop_requested, spent], self.world,
                                                   self.device)
        return self.stop_requested or spent

    # -- one step -------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate of the last step."""
        return self.optimizer.param_groups[0]["lr"]

    def train_step(self, batch: Batch) -> StepStats | None:
        """One optimisation step on a batch; None when it was skipped (non-finite loss or
        gradient). Under DDP this process's loss is weighted by its share of the batch's rows
        times the world size, so the averaged gradient is that of the whole batch's mean."""
        cfg = self.config.train
        step = self.state.step
        if self.pretraining and self._pretraining_over(step):
            self._end_pretraining()
        pretraining = self.pretraining
        phase = self._aggressive_phase(step, pretraining)
        beta = self.kl_weight_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.budget_progress(step), cfg, timed=not self.total_steps)
        tokens, lengths, encoder_input = batch.tokens, batch.lengths, None
        if self.augment is not None:
            randomised = self.augment(tokens, lengths, step)
            if self.config.data.augment == "both":
                tokens, lengths = randomised
            else:  # "encoder": the encoder reads the random spelling, the decoder the stored one
                encoder_input = tuple(self._to_device(t) for t in randomised)
        tokens, lengths = self._to_device(tokens), self._to_device(lengths)
        properties, condition = self.model.split_properties(
            None if self.data.train_properties is None
            else self._to_device(torch.from_numpy(self.data.train_properties[batch.rows])))
        self.state.batch_in_epoch = batch.index + 1
        with self._updating_only(phase):
            stats = self._update(step, batch, tokens, lengths, encoder_input, properties,
                                 condition, beta, pretraining)
        if stats is not None and phase is not None:
            self._aggressive_count(phase, stats.loss)
        return stats

    def _update(self, step: int, batch: Batch, tokens: torch.Tensor, lengths: torch.Tensor,
                encoder_input: Any, properties: torch.Tensor | None,
                condition: torch.Tensor | None, beta: float,
                pretraining: bool) -> StepStats | None:
        """The forward pass, backward pass and optimizer step of train_step."""
        cfg = self.config.train
        with autocast(self.device, self.dtype):
            out = self.train_model(tokens, lengths, kl_weight=beta, free_bits=cfg.free_bits,
                                   word_dropout=cfg.word_dropout, sample_z=not pretraining,
                                   kl_target=cfg.kl_target, properties=properties,
                                   property_weight=cfg.property_weight,
                                   encoder_input=encoder_input, condition=condition,
                                   classifier_weight=cfg.classifier_weight,
                                   bow_weight=cfg.bow_weight)
        loss = out.loss
        self.optimizer.zero_grad(set_to_none=True)
        # under DDP all processes skip together, or one would wait forever in the all-reduce
        if any_rank(not bool(torch.isfinite(loss)), self.world, self.device):
            what = (f"the loss became {loss.item()}" if not torch.isfinite(loss)
                    else "the loss became inf or NaN on another process")
            return self._skip_or_stop(step, what)
        weighted = loss * (batch.share * self.world.size) if self.world.distributed else loss
        if self.scaler is not None:
            # float16: an inf / NaN gradient means the scale is too high; the scaler skips
            # that update and lowers the scale, as it is meant to
            self.scaler.scale(weighted).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            weighted.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            if not torch.isfinite(norm):  # an update now would write inf / NaN into the weights
                self.optimizer.zero_grad(set_to_none=True)
                return self._skip_or_stop(step, f"the gradient norm became {float(norm)}")
            self.optimizer.step()
        self.state.step = step + 1
        return StepStats(loss.item(), out.recon_loss.item(), out.kl.item(),
                         out.token_accuracy.item(), tokens.size(0), int(lengths.sum()),
                         None if out.property_loss is None else out.property_loss.item(),
                         tuple(out.kl_per_level.tolist()) if len(out.kl_per_level) > 1 else ())

    # -- aggressive inference-network training (He et al. 2019) -----------------------------
    def _aggressive_phase(self, step: int, pretraining: bool) -> str | None:
        """"encoder" or "decoder": which side the step at ``step`` updates alone while
        train.aggressive_fraction lasts; None outside it (pre-training, after it, off)."""
        cfg, state = self.config.train, self.state
        if not cfg.aggressive_fraction or pretraining or state.aggressive_done:
            return None
        if (self.budget_progress(step) or 0.0) >= cfg.aggressive_fraction:
            state.aggressive_done = True
            self.log(f"step {step}: aggressive inference-network training over "
                     f"({state.aggressive_encoder_steps:,} encoder-only and "
                     f"{state.aggressive_decoder_steps:,} decoder-only updates); encoder and "
                     "decoder now trained together")
            return None
        return "decoder" if state.aggressive_inner_over else "encoder"

    @contextlib.contextmanager
    def _updating_only(self, phase: str | None) -> Iterator[None]:
        """While inside: with phase "encoder" only the inference modules (encoder, posterior
        layers) take gradients, with "decoder" only the rest; None changes nothing. The
        parameters left out get no gradient (None), so Adam leaves them and their moments be."""
        if phase is None:
            yield
            return
        inference = {id(p) for m in self.model.inference_modules() for p in m.parameters()}
        frozen = [p for p in self.model.parameters() if p.requires_grad
                  and ((id(p) in inference) != (phase == "encoder"))]
        for parameter in frozen:
            parameter.requires_grad_(False)
        try:
            yield
        finally:
            for parameter in frozen:
                parameter.requires_grad_(True)

    def _aggressive_count(self, phase: str, loss: float) -> None:
        """After an update of ``phase``'s side: count it, and end the encoder's inner loop
        when its windowed loss stops falling or train.aggressive_max_inner is reached."""
        cfg, state = self.config.train, self.state
        if phase == "decoder":
            state.aggressive_decoder_steps += 1
            state.aggressive_inner, state.aggressive_window_loss = 0, 0.0
            state.aggressive_previous, state.aggressive_inner_over = -1.0, False
            return
        state.aggressive_encoder_steps += 1
        state.aggressive_inner += 1
        state.aggressive_window_loss += loss
        if state.aggressive_inner % cfg.aggressive_window == 0:
            mean = state.aggressive_window_loss / cfg.aggressive_window
            if 0.0 <= state.aggressive_previous <= mean:
                state.aggressive_inner_over = True
            state.aggressive_previous, state.aggressive_window_loss = mean, 0.0
        if state.aggressive_inner >= cfg.aggressive_max_inner:
            state.aggressive_inner_over = True

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":  # pinned host memory: the copy overlaps the work
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _skip_or_stop(self, step: int, what: str) -> None:
        """A batch whose loss or gradient is not finite: skip it (no update; the step still
        counts) while train.max_skipped_batches allows, else stop with FloatingPointError.
        Either way the weights never see the inf / NaN."""
        limit = self.config.train.max_skipped_batches
        skipped = self.state.skipped_batches
        if skipped < limit:
            self.state.skipped_batches = skipped + 1
            self.state.step = step + 1
            self.log(f"step {step + 1}: {what}; batch skipped, weights unchanged "
                     f"({skipped + 1} of at most {limit})")
            return None
        hint = ("" if limit else "; or set train.max_skipped_batches to skip such batches")
        raise FloatingPointError(
            f"{what} at step {step + 1}; no update was made. Lower train.lr or "
            f"train.grad_clip, or resume from the last checkpoint "
            f"({self.out / CHECKPOINT_DIR}){hint}"
            + (f" ({limit} batches already skipped, the most train.max_skipped_batches allows)"
               if limit else ""))

    def budget_progress(self, step: int | None = None) -> float | None:
        """The share of the budget spent at a step (default: now): steps / the step budget
        when there is one (train.max_steps, train.max_epochs), else training time /
        train.max_minutes; None with neither. Under DDP each process reads its own clock
        (they start together, so the weights they compute differ by microseconds' worth)."""
        step = self.state.step if step is None else step
        if self.total_steps:
            return step / self.total_steps
        minutes = self.config.train.max_minutes
        return self.elapsed() / (60.0 * minutes) if minutes else None

    @property
    def pretraining(self) -> bool:
        """Whether the run is still in its autoencoder pre-training (train.pretrain_steps or
        train.pretrain_fraction)."""
        cfg = self.config.train
        return bool(cfg.pretrain_steps or cfg.pretrain_fraction) and not self.state.pretrain_done

    def _pretraining_over(self, step: int) -> bool:
        """Whether pre-training's steps or share of the budget are spent at ``step``; under
        DDP every process switches at the same step (the first to see it over decides)."""
        cfg = self.config.train
        if not cfg.pretrain_fraction:
            return step >= cfg.pretrain_steps
        over = (self.budget_progress(step) or 0.0) >= cfg.pretrain_fraction
        if self.world.distributed:
            (over,) = any_ranks([over], self.world, self.device)
        return over

    def kl_weight_at(self, step: int) -> float:
        """The KL weight at a step: 0 while pre-training as an autoencoder, then the schedule
        counted from the end of pre-training, in steps or in shares of the budget."""
        if self.pretraining:
            return 0.0
        progress = self.budget_progress(step)
        if progress is not None:
            progress -= self.state.pretrain_end_progress
        return kl_weight(step - self.state.pretrain_end_step, self.config.train, progress)

    def _end_pretraining(self) -> None:
        """Switch from autoencoder pre-training to the VAE: keep the encoder, and with
        train.pretrain_reset_decoder start the decoder (and the optimizer's moments) afresh,
        so it learns to read z before it learns to do without it (Li et al. 2019)."""
        cfg = self.config.train
        if cfg.pretrain_reset_decoder:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed + 2)
                for module in self.model.decoder.modules():
                    # nn.MultiheadAttention names its own _reset_parameters
                    reset = (getattr(module, "reset_parameters", None)
                             or getattr(module, "_reset_parameters", None))
                    if module is not self.model.decoder and reset is not None:
                        reset()
            self.optimizer = self._adam()
        self.state.pretrain_done = True
        self.state.pretrain_end_step = self.state.step
        self.state.pretrain_end_progress = self.budget_progress() or 0.0
        self.log(f"step {self.state.step}: autoencoder pre-training done; KL term on"
                 + (", decoder reset" if cfg.pretrain_reset_decoder else ""))

    # -- checkpoints and evaluation -------------------------------------------------------
    def save(self) -> Path | None:
        """Write the run's checkpoint (model, tokenizer, config, optimizer, RNG, counters);
        under DDP only rank 0 writes (returns None elsewhere)."""
        if not self.world.main:
            return None
        meta, tensors = optimizer_to_state(self.optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        state: dict[str, Any] = {"trainer": asdict(self.state), "optimizer": meta}
        if self.scaler is not None:
            state["grad_scaler"] = self.scaler.state_dict()  # numbers only: JSON
        return save_checkpoint(self.out / CHECKPOINT_DIR, self.model, self.tokenizer, self.config,
                               trainer_state=state, state_tensors=tensors)

    def run_evaluation(self) -> dict[str, float]:
        """evaluate(), kept as the run's last figures and handed to the callbacks."""
        self.metrics = self.evaluate()
        for callback in self.callbacks:
            callback.on_evaluate(self, self.metrics)
        return self.metrics

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation figures: loss terms, token and string reconstruction accuracy, active
        units, property R^2, and the domain's figures of prior samples. Uses its own RNG, so
        evaluating never changes the course of training."""
        model = self.model.eval()
        try:
            return validation_metrics(model, self.tokenizer, self.domain, self.data,
                                      self.config, self.device)
        finally:
            model.train()


def train(config: Config, resume: bool = False, progress: bool = True, log=print,
          callbacks: Sequence[Callback] | None = None) -> dict[str, Any]:
    """Train a model as the config says; the run folder is config.train.out_dir. Returns the
    run's summary (that of summary.json)."""
    return Trainer(config, resume=resume, progress=progress, log=log, callbacks=callbacks).fit()
