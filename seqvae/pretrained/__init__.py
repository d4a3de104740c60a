"""Models that ship inside the package, loadable by name: ``seqvae.load("moses-smiles")``.

Each is a checkpoint folder here (config.json with the training command under "notes",
model.safetensors in float16, tokenizer.json), written by ``seqvae export RUN DEST --half``.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def available() -> list[str]:
    """Names of the models shipped with this installation."""
    return sorted(p.name for p in _HERE.iterdir() if (p / "config.json").is_file())


def pretrained_path(name: str) -> Path | None:
    """The folder of a shipped model, or None if no model has that name."""
    path = _HERE / name
    return path if name and "/" not in name and (path / "config.json").is_file() else None


def resolve(spec: str | Path) -> Path:
    """A model folder from what a user names: an existing path (run or checkpoint folder), or
    the name of a shipped model. CheckpointError lists the shipped names when neither."""
    from ..errors import CheckpointError

    path = Path(spec)
    if path.exists() or "/" in str(spec):
        return path
    shipped = pretrained_path(str(spec))
    if shipped is None:
        names = ", ".join(available()) or "none in this installation"
        raise CheckpointError(f"checkpoint {spec} does not exist, and no model shipped with "
                              f"seqvae has that name (shipped: {names})")
    return shipped
