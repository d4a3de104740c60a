"""Checkpoint folders: config.json, model.safetensors, tokenizer.json, and for resuming
trainer_state.json + trainer_state.safetensors. Nothing is ever pickled or unpickled.

A folder is written under a temporary name and renamed into place, so a crash mid-write leaves
the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .config import Config
from .errors import CheckpointError, ConfigError, SeqVAEError, TokenizerError

FORMAT = "seqvae-checkpoint"
FORMAT_VERSION = 1
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")
STATE_FILES = ("trainer_state.json", "trainer_state.safetensors")
CHECKPOINT_DIR = "checkpoint"  # inside a run folder

PICKLE_HINT = ("seqvae never loads pickle files (unpickling can run arbitrary code); a seqvae "
               "checkpoint is a folder holding " + ", ".join(MODEL_FILES))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def save_checkpoint(directory: str | Path, model: torch.nn.Module, tokenizer: Any, config: Config,
                    trainer_state: dict[str, Any] | None = None,
                    state_tensors: dict[str, torch.Tensor] | None = None,
                    weights_dtype: torch.dtype | None = None,
                    notes: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder atomically; returns its path.

    weights_dtype (e.g. torch.float16) stores the floating-point weights in that type (loading
    casts them back to the model's); notes (JSON) are kept in config.json, e.g. how the model
    was trained.

    trainer_state (JSON-serialisable) and state_tensors (optimizer moments, RNG states) are
    written only when given, for resuming.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    old = directory.parent / f".{directory.name}.old"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    _write_json(tmp / "config.json", {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "seqvae_version": __version__,
        "tokenizer_kind": tokenizer.kind,
        "config": config.to_dict(),
        **({"notes": notes} if notes else {}),
    })
    weights = model.state_dict()
    if weights_dtype is not None:
        weights = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in weights.items()}
    save_tensors(weights, tmp / "model.safetensors")
    tokenizer.save(tmp / "tokenizer.json")
    if trainer_state is not None:
        _write_json(tmp / "trainer_state.json", trainer_state)
        save_tensors(state_tensors or {}, tmp / "trainer_state.safetensors")
    _fsync_dir(tmp)
    # At every moment a complete checkpoint is in place: the folder, or (between the two
    # renames, or after a crash there) .NAME.old, which resolve_checkpoint also accepts.
    if directory.exists():
        if old.exists():  # left by an earlier crash; the folder itself is complete
            shutil.rmtree(old)
        directory.rename(old)
    tmp.rename(directory)
    _fsync_dir(directory.parent)
    if old.exists():
        shutil.rmtree(old)
    for stale in directory.parent.glob(f".{directory.name}.tmp-*"):  # from killed writers
        shutil.rmtree(stale, ignore_errors=True)
    return directory


def _refuse_non_folder(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise CheckpointError(f"{path} looks like a pickle or torch.save file. {PICKLE_HINT}")
    raise CheckpointError(f"{path} is a file, not a checkpoint folder. {PICKLE_HINT}")


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder for a path: a checkpoint folder itself, a run folder holding one,
    or a file inside a checkpoint folder. Raises CheckpointError with what is missing."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_file():
        if path.name in MODEL_FILES + STATE_FILES:
            path = path.parent
        else:
            _refuse_non_folder(path)
    if not (path / "config.json").exists():
        for name in (CHECKPOINT_DIR, f".{CHECKPOINT_DIR}.old"):
            # a run folder; .checkpoint.old survives a crash between the two renames
            if (path / name / "config.json").exists():
                return path / name
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        pickles = sorted(p.name for p in path.glob("*") if p.suffix in (".pt", ".pth", ".pkl", ".ckpt", ".bin"))
        hint = f" (found {', '.join(pickles)}: {PICKLE_HINT})" if pickles else ""
        raise CheckpointError(f"{path} is not a complete seqvae checkpoint: missing "
                              f"{', '.join(missing)}{hint}")
    return path


def read_checkpoint_config(directory: str | Path) -> tuple[Config, str]:
    """The run config and tokenizer kind stored in a checkpoint folder."""
    path = resolve_checkpoint(directory) / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is corrupt (not valid JSON: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a seqvae checkpoint config (no \"format\": \"{FORMAT}\")")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer seqvae ({meta.get('seqvae_version')}); "
                              f"upgrade seqvae to load it")
    try:
        return Config.from_dict(meta["config"], source=str(path)).validate(), meta["tokenizer_kind"]
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} holds an unusable config: {exc}") from None


def _load_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt or not a safetensors file ({exc}); "
                              f"use an earlier checkpoint or retrain") from None


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """Load (model, tokenizer, config, folder) from a checkpoint; the model is in eval mode."""
    from .model import SequenceVAE
    from .tokenizers import load_tokenizer

    directory = resolve_checkpoint(path)
    config, kind = read_checkpoint_config(directory)
    try:
        tokenizer = load_tokenizer(directory / "tokenizer.json", kind=kind)
    except TokenizerError as exc:
        raise CheckpointError(f"{directory}: bad tokenizer.json: {exc}") from None
    if tokenizer.vocab_size != config.model.vocab_size:
        raise CheckpointError(f"{directory}: tokenizer.json has {tokenizer.vocab_size} tokens but "
                              f"the model was built for {config.model.vocab_size}")
    model = SequenceVAE(config.model)
    state = _load_tensors(directory / "model.safetensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{directory}/model.safetensors does not match config.json: "
                              f"{' '.join(first[:3])}") from None
    return model.to(device).eval(), tokenizer, config, directory


def load_trainer_state(directory: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON trainer state and its tensors (optimizer moments, RNG) for resuming."""
    directory = resolve_checkpoint(directory)
    missing = [name for name in STATE_FILES if not (directory / name).is_file()]
    if missing:
        raise CheckpointError(f"{directory} cannot be resumed: missing {', '.join(missing)}")
    try:
        state = json.loads((directory / "trainer_state.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{directory}/trainer_state.json is corrupt: {exc}") from None
    return state, _load_tensors(directory / "trainer_state.safetensors")


def optimizer_to_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Split an optimizer's state dict into JSON (hyper-parameters) and tensors."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in sd["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return {"param_groups": sd["param_groups"], "scalars": scalars}, tensors


def optimizer_from_state(optimizer: torch.optim.Optimizer, meta: dict[str, Any],
                         tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of optimizer_to_state."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"optimizer state does not match the model: {exc}") from None


def export_checkpoint(source: str | Path, destination: str | Path, half: bool = False,
                      notes: dict[str, Any] | None = None) -> Path:
    """Copy a checkpoint's model (config, weights, tokenizer; no trainer state) to a new
    folder, with the weights in float16 when half is set: a model to share or to ship."""
    model, tokenizer, config, directory = load_checkpoint(source)
    meta = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    merged = {**meta.get("notes", {}), **(notes or {})}
    out = save_checkpoint(destination, model, tokenizer, config,
                          weights_dtype=torch.float16 if half else None, notes=merged or None)
    from .priors import PRIOR_JSON, has_prior, load_prior, save_prior
    if has_prior(directory):  # the aggregate prior goes with its model
        mixture, info = load_prior(directory, config.model.latent_dim)
        kept = {k: v for k, v in info.items() if k not in
                ("format", "format_version", "model_sha256", "kind", "components", "latent_dim")}
        save_prior(out, mixture, {**kept, "exported_from": str(directory / PRIOR_JSON),
                                  "weights": "float16" if half else "float32"})
    return out


def run_config(path: str | Path | None = None, overrides: list[str] | None = None,
               values: dict[str, Any] | None = None, resume: bool = False) -> Config:
    """The config a run trains with: ``load_config(path, overrides, values=values)``; but when
    resuming without a config file, the run's own saved settings (from the checkpoint in its
    train.out_dir) with the overrides and values applied on top."""
    from .config import load_config

    config = load_config(path, overrides, values=values)
    if resume and path is None:
        try:
            saved, _ = read_checkpoint_config(resolve_checkpoint(config.train.out_dir))
        except SeqVAEError:
            return config  # nothing to resume: the trainer starts a new run and says so
        config = load_config(None, overrides, base=saved, values=values)
    return config
