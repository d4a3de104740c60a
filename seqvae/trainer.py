"""Training: data -> tokenizer -> batches -> SequenceVAE, with KL schedules, free bits, word
dropout, periodic evaluation, CSV log, curves, and resumable checkpoints (no pickle).

``train(config)`` is the whole job; the ``seqvae train`` verb is a thin shell over it.
"""

from __future__ import annotations

import csv
import itertools
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import jsonio
from .checkpoint import (CHECKPOINT_DIR, load_checkpoint, load_trainer_state, optimizer_from_state,
                         optimizer_to_state, resolve_checkpoint, save_checkpoint)
from .config import Config, dump_toml
from .distributed import (any_rank, any_ranks, backend, start as start_distributed,
                          stop as stop_distributed, world_from_env)
from .errors import CheckpointError, ConfigError, DataError, SeqVAEError
from .generate import MOLECULAR_KINDS, VAEModel, sample_table
from .model import SequenceVAE
from .runtime import autocast, keep_freed_memory, precision_name, resolve_precision
from .schedules import kl_weight, learning_rate

LOG_COLUMNS = [
    "step", "epoch", "elapsed_s", "lr", "kl_weight",
    "train_loss", "train_recon", "train_kl", "train_token_acc", "molecules_per_s", "tokens_per_s",
    "valid_neg_elbo", "valid_recon", "valid_kl", "valid_token_acc", "valid_recon_acc",
    "active_units", "sample_valid", "sample_unique",
    # models with a property head (model.properties): its training loss (standardised mean
    # squared error) and its validation R^2 from the posterior means, averaged over properties
    "train_property_mse", "valid_property_r2",
]


DERIVED_FIELDS = ("vocab_size", "pad_id", "bos_id", "eos_id", "unk_id", "max_length")


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when available, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA device here")
    return device


def eval_batch_size(cfg, rows: int = 500, max_elements: int = 2**24) -> int:
    """Sequences per evaluation batch: up to ``rows``, fewer where the logits of the longest
    batch (rows x max_length x vocabulary floats) would pass ``max_elements`` (64 MiB): a
    10,000-word vocabulary needs far smaller batches than 30 SMILES symbols."""
    return max(1, min(rows, max_elements // max(cfg.max_length * cfg.vocab_size, 1)))


@dataclass
class Prepared:
    """Tokenized training and validation data."""

    tokenizer: Any
    train: list[np.ndarray]
    valid: list[np.ndarray]
    reports: dict[str, Any] = field(default_factory=dict)
    # model.properties of each training / validation sequence, (N, P) float32; None if none
    train_properties: np.ndarray | None = None
    valid_properties: np.ndarray | None = None


def prepare_data(config: Config, tokenizer=None, log=print, progress: bool = False) -> Prepared:
    """Read, clean and tokenize the data; build the tokenizer on the training split if none.

    For molecules the result is cached (seqvae.cache, train.token_cache): the first run
    streams the files through the checks and the tokenizer into the cache a chunk at a time
    (flat memory whatever the file's size), and a later run on the same files with the same
    settings memory-maps the tokenized splits instead of reading them again."""
    from .data import resolve_data

    dcfg = config.data
    if dcfg.text:
        return _prepare_text(config, tokenizer, log)
    if not config.train.token_cache or config.model.property_names:
        # properties are computed from the strings, which a cached run never reads
        return _prepare_molecules(config, tokenizer, log)
    import hashlib

    from .cache import TokenArray, cache_key, file_digest, read_entry
    from .tokenizers import TOKENIZERS, load_tokenizer

    train_path, valid_path = resolve_data(dcfg.train), resolve_data(dcfg.valid)
    for path in (train_path, valid_path):
        if not Path(path).is_file():
            raise DataError(f"data file {path} does not exist")
    given = (None if tokenizer is None
             else hashlib.sha256(tokenizer.hf.to_str().encode()).hexdigest())
    settings = {"representation": dcfg.representation, "column": dcfg.csv_column,
                "max_length": dcfg.max_length, "valid": file_digest(valid_path),
                "tokenizer": given}
    key = cache_key(train_path, settings)
    entry = read_entry(key)
    if entry is not None:
        folder, meta = entry
        try:
            if tokenizer is None:
                tokenizer = load_tokenizer(folder / "tokenizer.json",
                                           TOKENIZERS[dcfg.representation].kind)
            train_ids, valid_ids = TokenArray.load(folder, "train"), TokenArray.load(folder, "valid")
        except (OSError, ValueError, SeqVAEError) as error:
            log(f"token cache {folder} unreadable ({error}); rebuilding it")
        else:
            log(f"train and valid: tokenized {len(train_ids):,} and {len(valid_ids):,} rows read "
                f"from the token cache {folder}")
            return Prepared(tokenizer, train_ids, valid_ids, meta["reports"])
    folder, tokenizer, reports = _build_molecule_cache(
        config, key, {"train": str(train_path), "valid": str(valid_path), "settings": settings},
        tokenizer, log, progress)
    log(f"tokenized data cached in {folder} (train.token_cache = false to not cache)")
    return Prepared(tokenizer, TokenArray.load(folder, "train"), TokenArray.load(folder, "valid"),
                    reports)


_CACHE_CHUNK = 10_000  # rows read, checked and tokenized at a time while building the cache
# (10,000: a chunk of Hugging Face encodings is ~40 MB; 100,000 rows took the peak to 1 GB)


def _build_molecule_cache(config: Config, key: str, meta: dict[str, Any], tokenizer, log,
                          progress: bool) -> tuple[Path, Any, dict[str, Any]]:
    """Stream the training and validation files into a token cache entry: read a chunk,
    check it (a process pool for large files), write the kept strings to a scratch file and
    count their tokens; build the tokenizer from the counts; tokenize the scratch files a
    chunk at a time into the entry's arrays. Memory holds a few chunks, never the file."""
    from tqdm.auto import tqdm

    from .cache import EntryBuilder, TokenWriter
    from .data import SkipTally, check_molecules, iter_strings
    from .tokenizers import TOKENIZERS

    dcfg = config.data
    reports: dict[str, Any] = {}
    with EntryBuilder(key) as entry:
        for split in ("train", "valid"):
            path = meta[split]
            tally = SkipTally(path)
            counts = Counter()
            bar = tqdm(desc=f"checking {split} rows", unit=" rows", unit_scale=True,
                       disable=not progress, dynamic_ncols=True, mininterval=2.0)
            with open(entry.folder / f"{split}.kept.txt", "w", encoding="utf-8") as out, bar:
                chunks = iter_strings(path, dcfg.csv_column, rows=_CACHE_CHUNK)
                # rows with tokens the training data never had are skipped: the model cannot
                # produce them
                vocabulary = None if tokenizer is None else tokenizer.vocab
                for results, chunk_counts in check_molecules(
                        chunks, dcfg.representation, dcfg.max_length, vocabulary,
                        count_tokens=split == "train" and tokenizer is None):
                    kept = tally.add(results)
                    out.writelines(f"{value}\n" for value in kept)
                    if chunk_counts:
                        counts.update(chunk_counts)
                    bar.update(len(results))
            report = tally.report()
            reports[split] = report.to_dict()
            log(f"{split}: {report.summary()}")
            if split == "train":
                if not report.n_kept:
                    raise DataError(f"no usable training rows in {dcfg.train}: {report.summary()}")
                if tokenizer is None:
                    tokenizer = TOKENIZERS[dcfg.representation].from_counts(counts)
        for split in ("train", "valid"):
            scratch = entry.folder / f"{split}.kept.txt"
            with open(scratch, encoding="utf-8") as lines, \
                    TokenWriter(entry.folder, split) as writer:
                while chunk := [line[:-1] for line in itertools.islice(lines, _CACHE_CHUNK)]:
                    writer.add(tokenizer.encode_batch(chunk))
            scratch.unlink()
        folder = entry.commit({"reports": reports, **meta},
                              {"tokenizer.json": tokenizer.hf.to_str(pretty=True)})
    return folder, tokenizer, reports


def _prepare_molecules(config: Config, tokenizer=None, log=print) -> Prepared:
    """Read, clean and tokenize molecules (no cache)."""
    from .cache import tokenize_to_array
    from .data import load_molecules, resolve_data
    from .tokenizers import TOKENIZERS

    dcfg = config.data
    train_strings, train_report = load_molecules(resolve_data(dcfg.train), column=dcfg.csv_column,
                                                 representation=dcfg.representation,
                                                 max_length=dcfg.max_length)
    log(f"train: {train_report.summary()}")
    if not train_strings:
        raise DataError(f"no usable training rows in {dcfg.train}: {train_report.summary()}")
    if tokenizer is None:
        tokenizer = TOKENIZERS[dcfg.representation].build(train_strings)
    # rows with tokens the training data never had are skipped: the model cannot produce them
    valid_strings, valid_report = load_molecules(resolve_data(dcfg.valid), column=dcfg.csv_column,
                                                 representation=dcfg.representation,
                                                 max_length=dcfg.max_length,
                                                 vocabulary=tokenizer.vocab)
    log(f"valid: {valid_report.summary()}")
    train_ids = tokenize_to_array(tokenizer, train_strings)
    valid_ids = tokenize_to_array(tokenizer, valid_strings)
    reports = {"train": train_report.to_dict(), "valid": valid_report.to_dict()}
    prepared = Prepared(tokenizer, train_ids, valid_ids, reports)
    if config.model.property_names:
        _add_properties(prepared, train_strings, valid_strings, config.model.property_names, log)
    return prepared


def _add_properties(prepared: Prepared, train_strings: list[str], valid_strings: list[str],
                    names: list[str], log=print) -> None:
    """Compute model.properties of every molecule with RDKit; molecules where one cannot be
    computed are dropped and counted (report "property_failed")."""
    from .search.heads import compute_properties

    tok = prepared.tokenizer
    for split, strings in (("train", train_strings), ("valid", valid_strings)):
        smiles = [tok.from_model_string(s) for s in strings]
        values = compute_properties(smiles, names, progress=len(smiles) >= 20000,
                                    desc=f"{split} properties").to_numpy(dtype=np.float32)
        ok = np.isfinite(values).all(axis=1)
        ids = prepared.train if split == "train" else prepared.valid
        kept = [x for x, keep in zip(ids, ok) if keep]
        dropped = int((~ok).sum())
        prepared.reports[split]["property_failed"] = dropped
        if split == "train":
            prepared.train, prepared.train_properties = kept, values[ok]
        else:
            prepared.valid, prepared.valid_properties = kept, values[ok]
        log(f"{split}: {', '.join(names)} computed for {int(ok.sum()):,} molecules"
            + (f"; {dropped} dropped (a property could not be computed)" if dropped else ""))
    if not prepared.train:
        raise DataError(f"no training molecule has all of {', '.join(names)}")


# Lines longer than this many characters per allowed token are skipped before tokenizing:
# no sentence of max_length words or BPE pieces comes near it, and a runaway line (a whole
# file without newlines) never reaches the tokenizer.
_MAX_CHARS_PER_TOKEN = 50


def _prepare_text(config: Config, tokenizer=None, log=print) -> Prepared:
    """prepare_data for sentences: clean, build the word / BPE tokenizer on the training
    split, tokenize, and drop sequences over data.max_length tokens. Words the vocabulary
    lacks read as <unk> (counted in the report, never a reason to skip)."""
    from .data import drop_long, load_sentences, resolve_data
    from .tokenizers import TOKENIZERS

    dcfg = config.data
    max_chars = _MAX_CHARS_PER_TOKEN * dcfg.max_length
    splits = {}
    for name, spec in (("train", dcfg.train), ("valid", dcfg.valid)):
        strings, report = load_sentences(resolve_data(spec), dcfg.csv_column, max_chars)
        if name == "train":
            if not strings:
                raise DataError(f"no usable training sentences in {spec}: {report.summary()}")
            if tokenizer is None:
                tokenizer = TOKENIZERS[dcfg.representation].build(
                    strings, min_frequency=dcfg.min_frequency, max_vocab=dcfg.max_vocab or None,
                    lowercase=dcfg.lowercase)
        ids = tokenizer.encode_batch(strings)
        strings, ids = drop_long(strings, ids, dcfg.max_length, report)
        n_tokens = sum(len(x) - 2 for x in ids)
        n_unk = sum(x.count(tokenizer.unk_id) for x in ids)
        log(f"{name}: {report.summary()}; {n_tokens:,} tokens, {n_unk / max(n_tokens, 1):.2%} "
            f"<unk>")
        splits[name] = ([np.asarray(x, dtype=np.int32) for x in ids],
                        {**report.to_dict(), "tokens": n_tokens, "unk_tokens": n_unk})
    return Prepared(tokenizer, splits["train"][0], splits["valid"][0],
                    {name: split[1] for name, split in splits.items()})


class CSVLog:
    """Appends one row per logged step to log.csv, with a fixed set of columns."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        if not (resume and path.exists()):
            with open(path, "w", newline="") as fh:
                csv.writer(fh).writerow(LOG_COLUMNS)

    def write(self, row: dict[str, Any]) -> None:
        """Append a row; absent columns stay empty."""
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c)) for c in LOG_COLUMNS])

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after step (they belong to work lost when a run was killed)."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as fh:
            rows = list(csv.reader(fh))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with open(self.path, "w", newline="") as fh:
            csv.writer(fh).writerows(kept)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class Trainer:
    """Trains a SequenceVAE from a Config; resumable from the run folder's checkpoint.

    Under torchrun (WORLD_SIZE > 1) it trains with PyTorch DDP: every process reads the data,
    takes its rows of each batch (train.batch_size stays the global batch), and the
    gradients are averaged; only rank 0 logs, evaluates, draws and writes checkpoints."""

    def __init__(self, config: Config, resume: bool = False, progress: bool = True, log=print):
        self.config = config.validate()
        self.out = Path(config.train.out_dir)
        self.resume = resume
        self.world = world_from_env()
        self.progress = progress and self.world.main
        self.log = log if self.world.main else (lambda *args, **kwargs: None)
        self.device = resolve_device(config.train.device)
        if self.world.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)  # one GPU per process
        self.stop_requested = False

    # -- set-up -------------------------------------------------------------------------
    def setup(self) -> None:
        """Load data, build or restore the tokenizer, model and optimizer (fit() calls it)."""
        cfg = self.config
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.dtype = resolve_precision(cfg.train.precision, self.device)
        self._created_group = start_distributed(self.world, self.device)
        torch.manual_seed(cfg.train.seed)
        self.out.mkdir(parents=True, exist_ok=True)
        checkpoint = self.out / CHECKPOINT_DIR
        self.state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed_s": 0.0}
        tokenizer = None
        if self.resume:
            try:
                directory = resolve_checkpoint(self.out)
            except CheckpointError:
                self.log(f"no checkpoint in {self.out}: starting a new run")
                self.resume = False
            else:
                model, tokenizer, saved, _ = load_checkpoint(directory, device=self.device)
                for name in DERIVED_FIELDS:  # filled from the tokenizer, not set by users
                    setattr(cfg.model, name, getattr(saved.model, name))
                for section in ("model", "data"):
                    if getattr(saved, section) != getattr(cfg, section):
                        raise ConfigError(
                            f"--resume: the [{section}] settings differ from those of the "
                            f"checkpoint in {directory}; resume with the run's own config "
                            f"({self.out / 'config.toml'}) or start a new out_dir")
        elif (checkpoint / "config.json").exists():
            raise ConfigError(f"{self.out} already holds a run; pass --resume to continue it, "
                              f"or choose another out_dir")
        self.data = self._prepare_data(tokenizer)
        self.tokenizer = self.data.tokenizer
        tok = self.tokenizer
        cfg.model.vocab_size = tok.vocab_size
        cfg.model.pad_id, cfg.model.bos_id = tok.pad_id, tok.bos_id
        cfg.model.eos_id, cfg.model.unk_id = tok.eos_id, tok.unk_id
        cfg.model.max_length = cfg.data.max_length + 2
        if self.resume:
            self.model = model.train()
        else:
            self.model = SequenceVAE(cfg.model).to(self.device)
            if self.model.property_head is not None:  # standardised on the train split
                self.model.property_head.standardise_on(
                    torch.from_numpy(self.data.train_properties))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr,
                                          weight_decay=cfg.train.weight_decay)
        # float16 needs its gradients scaled (and inf / NaN steps skipped, as the scaler does)
        self.scaler = (torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None)
        if self.resume:
            meta, tensors = load_trainer_state(directory)
            optimizer_from_state(self.optimizer, meta["optimizer"], tensors)
            if self.scaler is not None and meta.get("grad_scaler"):
                self.scaler.load_state_dict(meta["grad_scaler"])
            self.state = meta["trainer"]
            torch.set_rng_state(tensors["rng.torch"])
            self.log(f"resumed from {directory} at step {self.state['step']}")
        self.train_model: torch.nn.Module = self.model
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel
            # the same weights everywhere (DDP also broadcasts rank 0's), then each process
            # its own stream of noise (z samples, word dropout)
            self.train_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            torch.manual_seed(cfg.train.seed + 1_000_003 * self.world.rank + self.state["step"])
        if self.world.main:
            (self.out / "config.toml").write_text(dump_toml(cfg))
        from .data import SequenceBatches
        self.batches = SequenceBatches(self.data.train, cfg.train.batch_size, tok.pad_id,
                                       shuffle=True, seed=cfg.train.seed, rank=self.world.rank,
                                       world_size=self.world.size)
        self.csv = CSVLog(self.out / "log.csv", resume=self.resume) if self.world.main else None
        if self.resume and self.csv is not None:
            self.csv.truncate_after(self.state["step"])
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"model: {n_params:,} parameters; vocabulary {tok.vocab_size}; "
                 f"{len(self.data.train):,} training and {len(self.data.valid):,} validation "
                 f"sequences; device {self.device}, precision {precision_name(self.dtype)}"
                 + (f"; DDP over {self.world.size} processes ({backend(self.device)})"
                    if self.world.distributed else ""))

    def total_steps(self) -> int:
        """Steps the run will take when the budget is in steps or epochs; 0 when time-bound."""
        t = self.config.train
        by_epochs = t.max_epochs * len(self.batches) if t.max_epochs else 0
        return min(x for x in (t.max_steps, by_epochs) if x) if (t.max_steps or by_epochs) else 0

    # -- checkpoints ----------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write the run's checkpoint (model, tokenizer, config, optimizer, RNG, counters);
        under DDP only rank 0 writes (returns None elsewhere)."""
        if not self.world.main:
            return None
        meta, tensors = optimizer_to_state(self.optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        state = {"trainer": self.state, "optimizer": meta}
        if self.scaler is not None:
            state["grad_scaler"] = self.scaler.state_dict()  # numbers only: JSON
        return save_checkpoint(self.out / CHECKPOINT_DIR, self.model, self.tokenizer, self.config,
                               trainer_state=state, state_tensors=tensors)

    # -- evaluation -----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation figures: loss terms, token and string reconstruction accuracy, active
        units, and validity / uniqueness of prior samples. Uses its own RNG, so evaluating
        never changes the course of training."""
        cfg = self.config
        model = self.model.eval()
        generator = torch.Generator(device=self.device).manual_seed(cfg.train.seed + 1)
        valid = self.data.valid[:cfg.train.eval_max_molecules]
        metrics: dict[str, float] = {}
        if valid:
            from .data import SequenceBatches
            batches = SequenceBatches(valid, eval_batch_size(cfg.model), self.tokenizer.pad_id,
                                      shuffle=False)
            recon, kl, correct, tokens, mus = 0.0, 0.0, 0.0, 0, []
            exact, checked = 0, 0
            for batch, lengths in batches:
                batch, lengths = batch.to(self.device), lengths.to(self.device)
                out = model(batch, lengths, generator=generator)
                recon += float(out.recon_per_sequence.sum())
                kl += float(out.kl_per_sequence.sum())
                correct += float(out.token_accuracy) * out.n_tokens
                tokens += out.n_tokens
                mus.append(out.mu)
                if checked < 500:  # greedy decoding from the posterior mean, whole strings
                    gen = model.generate(out.mu, greedy=True)
                    decoded = self.tokenizer.decode_batch(gen.tokens.cpu())
                    targets = self.tokenizer.decode_batch(batch[:, 1:].cpu())
                    exact += sum(a == b for a, b in zip(decoded, targets))
                    checked += len(decoded)
            n = len(valid)
            metrics["valid_recon"] = recon / n
            metrics["valid_kl"] = kl / n
            metrics["valid_neg_elbo"] = (recon + kl) / n
            metrics["valid_token_acc"] = correct / max(tokens, 1)
            metrics["valid_recon_acc"] = exact / max(checked, 1)
            if len(valid) > 1:
                metrics["active_units"] = float((torch.cat(mus).var(0) > 0.01).sum())
            head = model.property_head
            if head is not None and len(valid) > 1:
                from .search.heads import r_squared
                predicted = head(torch.cat(mus).float()).cpu().numpy()
                true = self.data.valid_properties[:len(valid)]
                r2 = [r_squared(predicted[:, j], true[:, j]) for j in range(len(head.names))]
                for name, value in zip(head.names, r2):
                    metrics[f"valid_r2_{name}"] = value
                metrics["valid_property_r2"] = float(np.mean(r2))
        if cfg.train.eval_samples:
            z = torch.randn(cfg.train.eval_samples, cfg.model.latent_dim, generator=generator,
                            device=self.device)
            gen = model.generate(z, generator=generator)
            strings = [self.tokenizer.from_model_string(s)
                       for s in self.tokenizer.decode_batch(gen.tokens.cpu())]
            table = sample_table(strings, None, self.tokenizer.kind in MOLECULAR_KINDS)
            if "valid" in table:
                valid_smiles = table.loc[table["valid"], "SMILES"]
                metrics["sample_valid"] = float(table["valid"].mean())
                metrics["sample_unique"] = (valid_smiles.nunique() / len(valid_smiles)
                                            if len(valid_smiles) else 0.0)
            else:
                metrics["sample_unique"] = table["text"].nunique() / len(table)
        model.train()
        return metrics

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train until the budget (steps, epochs or minutes) is spent; returns a summary."""
        from tqdm.auto import tqdm

        self.setup()
        cfg = self.config.train
        total = self.total_steps()
        self.model.train()
        state = self.state
        previous = self._install_stop_handlers()
        bar = tqdm(total=total or None, initial=state["step"], desc="training", unit="step",
                   disable=not self.progress, dynamic_ncols=True, mininterval=2.0)
        started = time.perf_counter() - state["elapsed_s"]
        window = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "acc": 0.0, "n": 0, "seqs": 0, "tokens": 0,
                  "t0": time.perf_counter()}
        last_metrics: dict[str, float] = {}
        try:
            while not self._budget_spent(started, total):
                self.batches.set_epoch(state["epoch"])
                for index, (tokens, lengths, rows, share) in enumerate(
                        self.batches.with_indices(shares=True)):
                    if index < state["batch_in_epoch"]:
                        continue  # resuming in the middle of an epoch
                    if self._budget_spent(started, total):
                        break
                    properties = (None if self.data.train_properties is None
                                  else torch.from_numpy(self.data.train_properties[rows]))
                    self.train_step(tokens, lengths, total, window, properties, share)
                    state["batch_in_epoch"] = index + 1
                    state["elapsed_s"] = time.perf_counter() - started
                    step = state["step"]
                    bar.update(1)
                    if not self.world.main:
                        continue
                    if step % cfg.log_every == 0 and window["n"]:
                        bar.set_postfix(loss=f"{window['loss'] / window['n']:.2f}",
                                        kl=f"{window['kl'] / window['n']:.2f}",
                                        beta=f"{self.kl_weight_at(step):.3g}")
                        self.csv.write(self._train_row(window, started, total))
                    if step % cfg.eval_every == 0:
                        last_metrics = self.evaluate()
                        self.csv.write({"step": step, "epoch": state["epoch"],
                                        "elapsed_s": time.perf_counter() - started, **last_metrics})
                    if step % cfg.checkpoint_every == 0:
                        self.save()
                else:
                    state["epoch"] += 1
                    state["batch_in_epoch"] = 0
                    continue
                break
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            bar.close()
        if not self.world.main:  # rank 0 writes the summary, the checkpoint and the pictures
            stop_distributed(self._created_group)
            return {"step": state["step"], "epoch": state["epoch"], "rank": self.world.rank,
                    "finished": not self.stop_requested}
        if not self.stop_requested and state["step"] % cfg.eval_every:
            last_metrics = self.evaluate()
            self.csv.write({"step": state["step"], "epoch": state["epoch"],
                            "elapsed_s": time.perf_counter() - started, **last_metrics})
        self.save()
        summary = {"step": state["step"], "epoch": state["epoch"],
                   "elapsed_s": round(state["elapsed_s"], 1), "finished": not self.stop_requested,
                   "metrics": last_metrics, "data": self.data.reports,
                   "precision": precision_name(self.dtype),
                   "parameters": sum(p.numel() for p in self.model.parameters())}
        if self.world.distributed:
            summary["processes"] = self.world.size
        (self.out / "summary.json").write_text(jsonio.dumps(summary, indent=2))
        self._pictures()
        stop_distributed(self._created_group)
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

    def _budget_spent(self, started: float, total: int) -> bool:
        """Whether to stop now; under DDP every process stops together (a Ctrl-C or the time
        budget seen by one is seen by all)."""
        cfg = self.config.train
        spent = bool((total and self.state["step"] >= total)
                     or (cfg.max_minutes and time.perf_counter() - started >= cfg.max_minutes * 60))
        if self.world.distributed:
            self.stop_requested, spent = any_ranks([self.stop_requested, spent], self.world,
                                                   self.device)
        return self.stop_requested or spent

    def _prepare_data(self, tokenizer) -> Prepared:
        """prepare_data; under DDP with a token cache, the first process of each node builds
        the cache while the others wait, then they read it (rather than each checking and
        tokenizing the whole file at once). An error there stops every process."""
        cfg = self.config
        if not (self.world.distributed and cfg.train.token_cache):
            return prepare_data(cfg, tokenizer, self.log, progress=self.progress)
        first = self.world.local_rank == 0
        data, error = None, None
        if first:
            try:
                data = prepare_data(cfg, tokenizer, self.log, progress=self.progress)
            except SeqVAEError as caught:
                error = caught
        if any_rank(error is not None, self.world, self.device):
            raise error or DataError("the data could not be prepared: see the error of the "
                                     "first process of a node")
        return data or prepare_data(cfg, tokenizer, self.log, progress=False)

    def train_step(self, tokens: torch.Tensor, lengths: torch.Tensor, total: int,
                   window: dict[str, float], properties: torch.Tensor | None = None,
                   share: float = 1.0) -> None:
        """One optimisation step on a batch; adds its figures to window (fit()'s log buffer).
        properties (B, P): targets of the model's property head, if it has one. share: this
        process's fraction of the batch's rows under DDP; its loss is weighted by share *
        world size, so the averaged gradient is that of the whole batch's mean loss."""
        cfg = self.config.train
        step = self.state["step"]
        pretraining = step < cfg.pretrain_steps
        if step == cfg.pretrain_steps > 0 and not self.state.get("pretrain_done"):
            self._end_pretraining()
        beta = self.kl_weight_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(step, total, cfg)
        if self.device.type == "cuda":  # pinned host memory: the copy overlaps the work
            tokens = tokens.pin_memory().to(self.device, non_blocking=True)
            lengths = lengths.pin_memory().to(self.device, non_blocking=True)
        else:
            tokens, lengths = tokens.to(self.device), lengths.to(self.device)
        with autocast(self.device, self.dtype):
            out = self.train_model(tokens, lengths, kl_weight=beta, free_bits=cfg.free_bits,
                             word_dropout=cfg.word_dropout, sample_z=not pretraining,
                             kl_target=cfg.kl_target,
                             properties=None if properties is None else properties.to(self.device),
                             property_weight=cfg.property_weight)
        loss = out.loss
        self.optimizer.zero_grad(set_to_none=True)
        # under DDP all processes skip together, or one would wait forever in the all-reduce
        if any_rank(not bool(torch.isfinite(loss)), self.world, self.device):
            what = (f"the loss became {float(loss)}" if not torch.isfinite(loss)
                    else "the loss became inf or NaN on another process")
            self._skip_or_stop(step, what)
            return
        weighted = loss * (share * self.world.size) if self.world.distributed else loss
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
                self._skip_or_stop(step, f"the gradient norm became {float(norm)}")
                return
            self.optimizer.step()
        self.state["step"] = step + 1
        window["loss"] += loss.item()
        window["recon"] += out.recon_loss.item()
        window["kl"] += out.kl.item()
        window["acc"] += out.token_accuracy.item()
        if out.property_loss is not None:
            window["property"] = window.get("property", 0.0) + out.property_loss.item()
        window["n"] += 1
        window["seqs"] += tokens.size(0)
        window["tokens"] += int(lengths.sum())

    def _skip_or_stop(self, step: int, what: str) -> None:
        """A batch whose loss or gradient is not finite: skip it (no update; the step still
        counts) while train.max_skipped_batches allows, else stop with FloatingPointError.
        Either way the weights never see the inf / NaN."""
        limit = self.config.train.max_skipped_batches
        skipped = self.state.get("skipped_batches", 0)
        if skipped < limit:
            self.state["skipped_batches"] = skipped + 1
            self.state["step"] = step + 1
            self.log(f"step {step + 1}: {what}; batch skipped, weights unchanged "
                     f"({skipped + 1} of at most {limit})")
            return
        hint = ("" if limit else "; or set train.max_skipped_batches to skip such batches")
        raise FloatingPointError(
            f"{what} at step {step + 1}; no update was made. Lower train.lr or "
            f"train.grad_clip, or resume from the last checkpoint "
            f"({self.out / CHECKPOINT_DIR}){hint}"
            + (f" ({limit} batches already skipped, the most train.max_skipped_batches allows)"
               if limit else ""))

    def kl_weight_at(self, step: int) -> float:
        """The KL weight at a step: 0 while pre-training as an autoencoder, then the schedule
        counted from the end of pre-training."""
        cfg = self.config.train
        if step < cfg.pretrain_steps:
            return 0.0
        return kl_weight(step - cfg.pretrain_steps, cfg)

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
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr,
                                              weight_decay=cfg.weight_decay)
        self.state["pretrain_done"] = True
        self.log(f"step {self.state['step']}: autoencoder pre-training done; KL term on"
                 + (", decoder reset" if cfg.pretrain_reset_decoder else ""))

    def _train_row(self, window: dict[str, float], started: float, total: int) -> dict[str, Any]:
        now = time.perf_counter()
        seconds = max(now - window["t0"], 1e-9)
        n = window["n"]
        row = {"step": self.state["step"], "epoch": self.state["epoch"], "elapsed_s": now - started,
               "lr": self.optimizer.param_groups[0]["lr"],
               "kl_weight": self.kl_weight_at(self.state["step"]),
               "train_loss": window["loss"] / n, "train_recon": window["recon"] / n,
               "train_kl": window["kl"] / n, "train_token_acc": window["acc"] / n,
               "molecules_per_s": window["seqs"] / seconds, "tokens_per_s": window["tokens"] / seconds}
        if "property" in window:
            row["train_property_mse"] = window["property"] / n
        window.update(loss=0.0, recon=0.0, kl=0.0, acc=0.0, n=0, seqs=0, tokens=0, t0=now)
        window.pop("property", None)
        return row

    def _pictures(self) -> None:
        from .viz import training_curves
        training_curves(self.out / "log.csv", self.out / "curves.png")
        if self.tokenizer.kind in MOLECULAR_KINDS:
            model = VAEModel(self.model, self.tokenizer, self.config)
            samples = model.sample(48, seed=self.config.train.seed)
            valid = samples[samples["valid"]]
            if len(valid):
                from .chem import molecule_grid
                molecule_grid(list(valid["SMILES"]), self.out / "samples.png",
                              legends=[f"NLL {x:.1f}" for x in valid["NLL"]])


def train(config: Config, resume: bool = False, progress: bool = True, log=print) -> dict[str, Any]:
    """Train a model as the config says; the run folder is config.train.out_dir."""
    return Trainer(config, resume=resume, progress=progress, log=log).fit()
