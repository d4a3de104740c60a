"""Evaluations from files to files: what ``seqvae evaluate`` runs, one function per kind.

    from seqvae.metrics.files import evaluate_samples_file, evaluate_text_model
    written = evaluate_samples_file("samples.csv", reference="moses", output="metrics.json")
    written = evaluate_text_model(seqvae.load("runs/brown"), output="text_metrics.json")

Each writes the metrics as JSON (and its tables and pictures beside it) and returns an
``Evaluation``: the metrics and the paths written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import jsonio
from ..errors import DataError

__all__ = ["Evaluation", "evaluate_samples_file", "evaluate_text_model", "default_test_data"]


@dataclass
class Evaluation:
    """Metrics measured by an evaluate_* function, and every file it wrote."""

    metrics: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)  # what -> path


def _write_json(path: Path, record: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(jsonio.dumps(record, indent=2) + "\n")
    return path


def evaluate_samples_file(samples: str | Path, reference: str | Path = "moses",
                          output: str | Path = "metrics.json", *, column: str | None = None,
                          scaffold_reference: str | Path | None = None,
                          train: str | Path | None = None, n_jobs: int | None = None,
                          device: str = "auto", pictures: bool = True,
                          progress: bool = True) -> Evaluation:
    """The MOSES metrics (and GuacaMol scores) of the SMILES in a samples file against a
    reference ("moses" or a file; see seqvae.metrics.load_reference), written to output as
    JSON; with pictures, property histograms against the reference's test split and a grid of
    the valid molecules beside it (<output>_properties.png, <output>_molecules.png)."""
    from ..data import read_strings
    from ..runtime import resolve_device
    from . import evaluate_molecules, load_reference

    device = resolve_device(device).type
    strings = read_strings(samples, column=column)
    ref = load_reference(reference, scaffold_test=scaffold_reference, train=train,
                         n_jobs=n_jobs, device=device, progress=progress)
    report = evaluate_molecules(strings, ref, n_jobs=n_jobs, device=device, progress=progress)
    out = Path(output)
    files = {"metrics": _write_json(out, {"samples": str(samples), "reference": ref.name,
                                          "metrics": report.metrics})}
    if pictures and len(report.properties):
        from ..chem import molecule_grid
        from ..viz import property_histograms
        stem = out.with_suffix("")
        files["properties"] = property_histograms(report.properties, ref.splits["Test"].props,
                                                  f"{stem}_properties.png")
        files["molecules"] = molecule_grid(list(report.properties["SMILES"]),
                                           f"{stem}_molecules.png")
    return Evaluation(report.metrics, files)


def default_test_data(model: Any) -> str:
    """The test split that goes with a text model's shipped training data
    ("default:brown_train" -> "default:brown_test"); DataError for other training data."""
    trained_on = model.config.data.train
    if not trained_on.startswith("default:") or not trained_on.endswith("_train"):
        raise DataError("give the sentences to evaluate on (--data FILE, or default:brown_test)")
    return trained_on.removesuffix("_train") + "_test"


def evaluate_text_model(model: Any, data: str | Path | None = None,
                        output: str | Path = "text_metrics.json", *, column: str | None = None,
                        k: int = 100, n_samples: int = 1000, seed: int = 0,
                        pictures: bool = True, progress: bool = True) -> Evaluation:
    """Every figure of seqvae.metrics.text for a text model on the sentences of data (default:
    the test split of its shipped training data), written to output as JSON, with the prior
    samples and the reconstructions as CSV beside it (<output>_samples.csv,
    <output>_reconstructions.csv) and, with pictures, a latent map (<output>_latent.png)."""
    from ..data import read_strings, resolve_data
    from .text import evaluate_text

    if model.domain.name != "text":
        raise DataError(f"{model.path} is a {model.domain.name} model: sample it (seqvae "
                        "sample) and evaluate the samples file")
    data = str(data) if data is not None else default_test_data(model)
    sentences = read_strings(resolve_data(data), column=column or "text")
    report = evaluate_text(model, sentences, k=k, n_samples=n_samples,
                           train_sentences=model.training_sentences(), seed=seed,
                           progress=progress)
    out = Path(output)
    stem = out.with_suffix("")
    files = {"metrics": _write_json(out, {"model": str(model.path), "data": data,
                                          "metrics": report.metrics}),
             "samples": Path(f"{stem}_samples.csv"),
             "reconstructions": Path(f"{stem}_reconstructions.csv")}
    report.samples.to_csv(files["samples"], index=False)
    report.reconstructions.to_csv(files["reconstructions"], index=False)
    if pictures and report.metrics["latent_dim"]:
        from ..viz import latent_map
        words = [len(s.split()) for s in report.reconstructions["input"]]
        files["latent map"] = latent_map(report.mu, words, f"{stem}_latent.png", "words")
    return Evaluation(report.metrics, files)
