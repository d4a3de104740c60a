"""The ``seqvae`` command: it parses the command line and calls one public API function per
verb (the README's Python section shows each), then prints what came back.

seqvae train [CONFIG.toml] [--out DIR] [--resume] [--set section.key=value ...]
seqvae sample MODEL -n 1000 -o samples.csv
seqvae encode MODEL INPUT -o latents.csv
seqvae reconstruct MODEL INPUT -o reconstructions.csv
seqvae interpolate MODEL SMILES_A SMILES_B --steps 10 -o path.csv
seqvae evaluate samples.csv --reference moses -o metrics.json
seqvae optimize MODEL --objective qed --budget 500 -o best.csv
seqvae export RUN DEST --half
seqvae fit-prior MODEL [--data FILE] [--n 20000] [--components 1]
seqvae standardize FILE -o standardized.csv [--drop-stereo]
seqvae score MODEL FILE -o scores.csv [--k 32] [--reference FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .config import REPRESENTATIONS
from .errors import SeqVAEError


# train's flags and the config keys they set
TRAIN_FLAGS = {"out": "train.out_dir", "max_minutes": "train.max_minutes",
               "max_steps": "train.max_steps", "max_epochs": "train.max_epochs",
               "seed": "train.seed", "device": "train.device", "batch_size": "train.batch_size",
               "representation": "data.representation", "train_data": "data.train",
               "valid_data": "data.valid", "column": "data.column", "init": "train.init",
               "init_decoder": "train.init_decoder"}


def _train(args: argparse.Namespace) -> None:
    from .checkpoint import run_config
    from .trainer import train

    if args.init and args.resume:
        raise SeqVAEError("--init starts a new run from another model's weights and --resume "
                          "continues this run's own: give one (a resumed fine-tuning run "
                          "already knows its source)")
    if args.init_decoder and args.resume:
        raise SeqVAEError("--init-decoder starts a new VAE from a language model's decoder and "
                          "--resume continues this run's own weights: give one")
    values = {key: getattr(args, flag) for flag, key in TRAIN_FLAGS.items()
              if getattr(args, flag) is not None}
    config = run_config(args.config, args.set, values, resume=args.resume)
    summary = train(config, resume=args.resume, progress=not args.no_progress)
    if "metrics" not in summary:  # a DDP process other than rank 0: rank 0 reports
        return
    out = Path(config.train.out_dir)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in summary["metrics"].items())
    print(f"trained {summary['step']} steps in {summary['elapsed_s']:.0f} s: {shown}")
    print(f"checkpoint: {out / 'checkpoint'}; log: {out / 'log.csv'}; curves: {out / 'curves.png'}")


def _figures(figures: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3f}" for name, value in figures.items())


def _sample(args: argparse.Namespace) -> None:
    from .trained import load, parse_conditions

    model = load(args.model, device=args.device)
    start = time.perf_counter()
    table = model.sample(args.n, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         greedy=args.greedy, unique=args.unique, valid=args.valid,
                         batch_size=args.batch_size,
                         seed=args.seed, progress=not args.no_progress, novelty=True,
                         prior=args.prior, triage=args.triage,
                         condition=parse_conditions(args.condition),
                         index_temperature=args.index_temperature, syntax=args.syntax,
                         strict=args.strict, guidance=args.guidance)
    rate = len(table) / max(time.perf_counter() - start, 1e-9)
    picture = model.write(table, args.output, picture=not args.no_grid)
    print(f"wrote {len(table)} samples to {args.output} ({rate:.0f}/s): "
          f"{_figures(model.summary(table))}" + (f"; picture {picture}" if picture else ""))


def _read_inputs(args: argparse.Namespace) -> list[str]:
    """The strings given: --smiles, else the rows of the input file."""
    from .data import read_strings

    if not (args.smiles or args.input):
        raise SeqVAEError("give an input file or --smiles S [S ...]")
    return list(args.smiles) if args.smiles else read_strings(args.input, column=args.column)


def _inputs(args: argparse.Namespace, model) -> list[str]:
    """The inputs (--smiles or a file) the model can encode; the others are reported on
    stderr and skipped."""
    strings = _read_inputs(args)
    # judged as the model will read them (standardised when asked); the inputs are kept
    read = model.standardized(strings, **_standardizing(args))
    reasons = model.check(read)
    kept = [s for s, why in zip(strings, reasons) if why is None]
    rejected = [(i, s, why) for i, (s, why) in enumerate(zip(strings, reasons)) if why]
    if rejected:
        first = "; ".join(f"row {i + 1} {s[:40]!r}: {r}" for i, s, r in rejected[:3])
        print(f"skipped {len(rejected)} of {len(strings)} inputs ({first})", file=sys.stderr)
    if not kept:
        raise SeqVAEError("none of the inputs can be encoded")
    return kept


def _standardizing(args: argparse.Namespace) -> dict[str, bool]:
    """encode / reconstruct's standardize and keep_stereo from the flags (--drop-stereo
    implies --standardize)."""
    return {"standardize": bool(args.standardize or args.drop_stereo),
            "keep_stereo": not args.drop_stereo}


def _standardize(args: argparse.Namespace) -> None:
    from .standardize import standardize

    table = standardize(_read_inputs(args), keep_stereo=not args.drop_stereo)
    table.to_csv(args.output, index=False)
    failed = int(table["SMILES"].isna().sum())
    steps = table.loc[table["changes"] != "", "changes"].str.split(",").explode().value_counts()
    print(f"wrote {len(table)} standardised molecules to {args.output}: "
          f"{int(table['changed'].sum())} changed"
          + (" (" + ", ".join(f"{k} {v}" for k, v in steps.items()) + ")" if len(steps) else "")
          + f", {failed} could not be standardised")


def _score(args: argparse.Namespace) -> None:
    from .trained import load

    model = load(args.model, device=args.device)
    strings = _read_inputs(args)
    start = time.perf_counter()
    table = model.score(strings, k=args.k, seed=args.seed, triage=not args.no_triage,
                        reference=args.reference, progress=not args.no_progress,
                        **_standardizing(args))
    rate = len(table) / max(time.perf_counter() - start, 1e-9)
    table.to_csv(args.output, index=False)
    scored = int(table["reason"].isna().sum())
    print(f"wrote scores of {len(table)} rows to {args.output} ({rate:.0f}/s, k={table['k'][0]}): "
          f"{scored} scored, {len(table) - scored} unreadable (NaN, reason given); mean "
          f"bits per character {table['bits_per_char'].mean():.3f}")


def _encode(args: argparse.Namespace) -> None:
    from .trained import load

    model = load(args.model, device=args.device)
    table = model.latents(_inputs(args, model), sample=args.sample, logvar=args.logvar,
                          seed=args.seed, **_standardizing(args))
    table.to_csv(args.output, index=False)
    levels = model.latent_sizes
    split = (f" (z1: the first {levels[0]}, z2: the last {levels[1]})" if len(levels) > 1 else "")
    print(f"wrote {len(table)} latent vectors of size {model.latent_dim}{split} to {args.output}")


def _reconstruct(args: argparse.Namespace) -> None:
    from .trained import load

    model = load(args.model, device=args.device)
    table = model.reconstruct(_inputs(args, model), greedy=not args.sample_decoding,
                              seed=args.seed, **_standardizing(args))
    table.to_csv(args.output, index=False)
    similar = (f", mean Tanimoto similarity {table['similarity'].mean():.3f}"
               if "similarity" in table else "")
    print(f"wrote {len(table)} reconstructions to {args.output}: exact {table['exact'].mean():.3f}"
          + similar)


def _interpolate(args: argparse.Namespace) -> None:
    from .trained import load

    model = load(args.model, device=args.device)
    table = model.interpolate(args.a, args.b, steps=args.steps, method=args.method)
    picture = model.write(table, args.output, picture=not args.no_grid)
    print(table.to_string(index=False))
    if picture:
        print(f"picture: {picture}")


def _is_model(spec: str) -> bool:
    """A checkpoint or run folder, or the name of a shipped model (not a samples file)."""
    from .pretrained import pretrained_path
    path = Path(spec)
    return path.is_dir() or (not path.exists() and pretrained_path(spec) is not None)


def _evaluate(args: argparse.Namespace) -> None:
    from .metrics.files import evaluate_samples_file, evaluate_text_model

    if _is_model(args.samples):
        from .trained import load
        result = evaluate_text_model(load(args.samples, device=args.device), args.data,
                                     args.output, column=args.column, k=args.k,
                                     n_samples=args.n_samples, seed=args.seed or 0,
                                     pictures=not args.no_pictures, progress=not args.no_progress)
    else:
        result = evaluate_samples_file(args.samples, args.reference, args.output,
                                       column=args.column,
                                       scaffold_reference=args.scaffold_reference,
                                       train=args.train, n_jobs=args.n_jobs, device=args.device,
                                       pictures=not args.no_pictures,
                                       progress=not args.no_progress)
    width = max(len(k) for k in result.metrics)
    for key, value in result.metrics.items():
        shown = f"{int(value)}" if isinstance(value, int) or key.startswith("n_") else f"{value:.4f}"
        print(f"{key:<{width}}  {shown}")
    print("; ".join(f"{what}: {path}" for what, path in result.files.items()))


def _optimize(args: argparse.Namespace) -> None:
    from .search import optimize
    from .search.optimize import parse_options
    from .trained import load

    result = optimize(load(args.model, device=args.device), args.objective,
                      methods=args.methods.split(","), budget=args.budget, seed=args.seed,
                      seed_smiles=args.seed_smiles, min_similarity=args.min_similarity,
                      max_similarity=args.max_similarity, max_atoms=args.max_atoms,
                      start=args.start or "prior", start_top=args.start_top, column=args.column,
                      head=args.head, head_data=args.head_data, head_size=args.head_size,
                      save_head=args.save_head, log_dir=args.log, progress=not args.no_progress,
                      triage=args.triage, options=parse_options(args.option))
    files = result.write(args.output, top=args.top, pictures=not args.no_pictures)
    print(f"wrote {len(result.results)} molecules, best first, to {args.output}; "
          + "; ".join(f"{what}: {path}" for what, path in files.items() if what != "results"))


def _fit_prior(args: argparse.Namespace) -> None:
    from .data import read_strings
    from .trained import load

    model = load(args.model, device=args.device)
    strings = read_strings(args.data, args.column) if args.data else None
    mixture = model.fit_prior(strings, n=args.n, components=args.components, seed=args.seed)
    print(f"fitted the aggregate prior of {model.path} ({mixture.components} full-covariance "
          f"component{'s' if mixture.components > 1 else ''} over {mixture.dim} dimensions): "
          f"{model.path / 'prior.json'}; sample from it with: seqvae sample {args.model} "
          f"--prior aggregate")


def _export(args: argparse.Namespace) -> None:
    from .checkpoint import export_checkpoint

    notes = {"trained_by": args.trained_by} if args.trained_by else None
    out = export_checkpoint(args.run, args.destination, half=args.half, notes=notes)
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"exported {args.run} to {out} ({size:.1f} MiB{', float16 weights' if args.half else ''})")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the seqvae command."""
    parser = argparse.ArgumentParser(prog="seqvae", description="Sequence VAEs for molecules and text.")
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("train", help="train a model (defaults: SMILES VAE on the shipped MOSES subset)")
    p.add_argument("config", nargs="?", help="TOML config; without it the defaults are used")
    p.add_argument("--out", help="run folder (train.out_dir)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--init", help="fine-tune this model (a shipped name, a run or checkpoint "
                                  "folder): its weights, tokenizer and architecture")
    p.add_argument("--init-decoder", help="a VAE whose decoder starts as this language model's "
                                          "(model.use_latent = false, e.g. moses-charrnn): its "
                                          "tokenizer, embedding and decoder; a fresh encoder")
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--representation", choices=list(REPRESENTATIONS),
                   help="smiles or selfies (molecules), word or bpe (sentences)")
    p.add_argument("--train-data", help="training file, default:NAME or moses:SPLIT")
    p.add_argument("--valid-data", help="validation file, default:NAME or moses:SPLIT")
    p.add_argument("--column", help="CSV column with the sequences")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set train.lr=3e-4 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    p = verbs.add_parser("sample", help="sample from the prior and write CSV (+ PNG grid)")
    p.add_argument("model", help="checkpoint or run folder")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("-o", "--output", default="samples.csv")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--greedy", action="store_true")
    p.add_argument("--index-temperature", type=float, metavar="T",
                   help="SELFIES models: the temperature of the ring and branch index symbols "
                        "(0: the most likely one); default: --temperature")
    p.add_argument("--syntax", action="store_true",
                   help="SMILES models: draw each token among those that keep the string SMILES "
                        "(rings closed, branches balanced)")
    p.add_argument("--strict", action="store_true",
                   help="SELFIES models: a drawn string the SELFIES decoder had to repair (not "
                        "the string SELFIES writes for the molecule it decodes to) is invalid; "
                        "with --unique or --valid, drawn again")
    p.add_argument("--guidance", type=float, default=0.0, metavar="W",
                   help="conditional models: classifier-free guidance toward --condition, "
                        "logits + W * (logits - logits at the training mean); 0: none")
    p.add_argument("--prior", choices=["standard", "aggregate"], default="standard",
                   help="draw codes from N(0, I) (standard) or from the fitted distribution of "
                        "the training codes (aggregate; seqvae fit-prior)")
    p.add_argument("--unique", action="store_true", help="keep only valid molecules, each once")
    p.add_argument("--valid", action="store_true",
                   help="keep only valid molecules, repeats included, drawing until -n remain")
    p.add_argument("--condition", action="append", metavar="NAME=VALUE",
                   help="a conditional model: sample under this property value or category, "
                        "e.g. --condition logp=3 --condition qed=0.8, --condition "
                        "\"genre=humor\"")
    p.add_argument("--triage", action="store_true", help="add novelty, nearest training "
                   "similarity, QED, SA, MW, logP, MOSES filters and alert (molecules)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--seed", type=int)
    p.add_argument("--no-grid", action="store_true", help="skip the PNG grid")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_sample)

    for name, func, helptext in (("encode", _encode, "write latent vectors of the inputs to CSV"),
                                 ("reconstruct", _reconstruct, "encode and decode the inputs")):
        p = verbs.add_parser(name, help=helptext)
        p.add_argument("model")
        p.add_argument("input", nargs="?", help=".csv/.smi/.txt file")
        p.add_argument("--smiles", nargs="+", help="inputs given on the command line")
        p.add_argument("--column", default=None, help="CSV column (default SMILES)")
        p.add_argument("-o", "--output", default=f"{name}d.csv" if name == "encode" else "reconstructions.csv")
        p.add_argument("--seed", type=int)
        p.add_argument("--standardize", action="store_true",
                       help="read each molecule's standardised parent (salts out, charges "
                            "neutralised; seqvae.standardize)")
        p.add_argument("--drop-stereo", action="store_true",
                       help="standardise and drop stereo (implies --standardize)")
        p.set_defaults(func=func)
    encode = verbs.choices["encode"]
    encode.add_argument("--sample", action="store_true", help="write one z drawn from q(z|x), not mu")
    encode.add_argument("--logvar", action="store_true", help="also write the log-variances")
    verbs.choices["reconstruct"].add_argument("--sample-decoding", action="store_true",
                                              help="sample tokens instead of greedy decoding")

    p = verbs.add_parser("score", help="per input: -ELBO, its terms, importance-weighted NLL, "
                                       "bits per character; for molecules novelty, nearest-"
                                       "neighbour similarity to the training set, QED, SA, MW, "
                                       "logP, MOSES filters and alert")
    p.add_argument("model")
    p.add_argument("input", nargs="?", help=".csv/.smi/.txt file")
    p.add_argument("--smiles", nargs="+", help="inputs given on the command line")
    p.add_argument("--column", default=None, help="CSV column (default SMILES / text)")
    p.add_argument("--k", type=int, default=32, help="codes per input for the importance-"
                                                     "weighted NLL (default 32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", default=None,
                   help="molecules to measure novelty and similarity against (default: the "
                        "model's training file)")
    p.add_argument("--no-triage", action="store_true", help="likelihoods only")
    p.add_argument("--standardize", action="store_true", help="score each standardised parent")
    p.add_argument("--drop-stereo", action="store_true", help="standardise and drop stereo")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-o", "--output", default="scores.csv")
    p.set_defaults(func=_score)

    p = verbs.add_parser("standardize", help="standardise molecules (RDKit MolStandardize: "
                                             "largest fragment, neutral charges, canonical "
                                             "SMILES) and say what changed per row")
    p.add_argument("input", nargs="?", help=".csv/.smi/.txt file")
    p.add_argument("--smiles", nargs="+", help="inputs given on the command line")
    p.add_argument("--column", default=None, help="CSV column (default SMILES)")
    p.add_argument("--drop-stereo", action="store_true", help="also drop stereo")
    p.add_argument("-o", "--output", default="standardized.csv")
    p.set_defaults(func=_standardize)

    p = verbs.add_parser("interpolate", help="decode points between the codes of two inputs")
    p.add_argument("model")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--method", choices=["linear", "slerp"], default="linear")
    p.add_argument("-o", "--output", default="interpolation.csv")
    p.add_argument("--no-grid", action="store_true")
    p.set_defaults(func=_interpolate)

    p = verbs.add_parser("evaluate", help="MOSES metrics (and GuacaMol scores) of sampled SMILES; "
                                          "NLL, KL, active units, MI, BLEU of a text model")
    p.add_argument("samples", help=".csv (column SMILES), .smi or .txt of generated SMILES; or a "
                                   "text model (run or checkpoint folder) to evaluate on --data")
    p.add_argument("--column", default=None, help="CSV column (default SMILES, text for sentences)")
    p.add_argument("--data", help="text models: sentences to evaluate on (.txt, .csv or "
                                  "default:NAME; default: the test split of the training data)")
    p.add_argument("--k", type=int, default=100,
                   help="text models: importance samples per sentence for the NLL (default 100)")
    p.add_argument("--n-samples", type=int, default=1000,
                   help="text models: prior samples for distinct-n and self-BLEU (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", default="moses",
                   help="moses (MOSES test and scaffold-test splits, needs molsets) or a file of "
                        "reference SMILES")
    p.add_argument("--scaffold-reference", help="a second reference file, reported as /TestSF")
    p.add_argument("--train", help="training SMILES for novelty (moses: its training split)")
    p.add_argument("-o", "--output", default="metrics.json")
    p.add_argument("--n-jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--no-pictures", action="store_true",
                   help="skip the property histograms and the molecule grid")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_evaluate)

    p = verbs.add_parser("optimize", help="search the latent space for molecules that score "
                                          "better on an objective (QED, penalized logP, ...)")
    p.add_argument("model", help="checkpoint, run folder or shipped model name")
    p.add_argument("--objective", default="qed",
                   help="qed, plogp (z-scored), plogp_raw, logp, sa, mw, tpsa, atoms, similarity, "
                        "pmo:TASK (a PMO oracle, e.g. pmo:celecoxib_rediscovery), or a weighted "
                        "sum such as 'plogp + 0.5*qed' (default qed)")
    p.add_argument("--budget", type=int, default=500, help="oracle calls per optimiser")
    p.add_argument("--methods", default="prior,gradient,bo",
                   help="comma-separated optimisers: prior, gradient, bo, reinvent, ga, or a "
                        "hand-over in one budget such as ga:2000+reinvent (the GA until 2,000 "
                        "calls, then REINVENT from its best codes) (default prior,gradient,bo)")
    p.add_argument("--option", action="append", metavar="METHOD.NAME=VALUE",
                   help="an optimiser's setting, e.g. reinvent.lr=0.001 or ga.population=50 "
                        "(repeat for more)")
    p.add_argument("--seed-smiles", help="seed molecule: start from its code (and the "
                                         "similarity objective and constraints refer to it)")
    p.add_argument("--min-similarity", type=float, help="constraint: similarity to the seed >= this")
    p.add_argument("--max-similarity", type=float, help="constraint: similarity to the seed <= this")
    p.add_argument("--max-atoms", type=int,
                   help="constraint: at most this many heavy atoms (38 is ZINC250k's largest); "
                        "keeps penalized logP from being gamed by long carbon chains")
    p.add_argument("--start", help="start from the codes of these molecules (.csv/.smi or "
                                   "default:NAME) instead of the prior")
    p.add_argument("--start-top", type=int, default=0,
                   help="start from the N molecules of --start that score best (default: all)")
    p.add_argument("--column", default=None, help="CSV column of --start and --head-data")
    p.add_argument("--head", help="property head folder for gradient ascent (head.json + "
                                  "head.safetensors)")
    p.add_argument("--head-data", default="default:moses_train",
                   help="molecules to fit a head on when neither --head is given nor the "
                        "model has its own")
    p.add_argument("--head-size", type=int, default=5000, help="how many of them (default 5000)")
    p.add_argument("--save-head", help="write the fitted head to this folder")
    p.add_argument("--log", help="folder of per-optimiser CSV logs; rerunning with it resumes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=24, help="molecules in the PNG grid")
    p.add_argument("-o", "--output", default="best.csv")
    p.add_argument("--no-pictures", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--triage", action="store_true", help="add novelty, nearest training "
                   "similarity, QED, SA, MW, logP, MOSES filters and alert")
    p.set_defaults(func=_optimize)

    p = verbs.add_parser("export", help="copy a trained model (no trainer state) to share or ship")
    p.add_argument("run", help="checkpoint or run folder")
    p.add_argument("destination", help="new checkpoint folder")
    p.add_argument("--half", action="store_true", help="store the weights in float16")
    p.add_argument("--trained-by", help="the command that trained it, kept in config.json")
    p.set_defaults(func=_export)

    p = verbs.add_parser("fit-prior", help="fit the aggregate prior (the distribution of the "
                                           "training codes) and store it with the model")
    p.add_argument("model", help="checkpoint or run folder")
    p.add_argument("--data", help="sequences to fit on (default: the model's training data)")
    p.add_argument("--column", default=None, help="CSV column of --data")
    p.add_argument("--n", type=int, default=20_000, help="sequences drawn at random (20,000)")
    p.add_argument("--components", type=int, default=1,
                   help="full-covariance Gaussians in the mixture (1: one Gaussian)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_fit_prior)

    for verb in ("sample", "encode", "reconstruct", "interpolate", "evaluate", "optimize",
                 "fit-prior", "score"):
        verbs.choices[verb].add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the seqvae console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SeqVAEError as exc:
        print(f"seqvae {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:
        print(f"seqvae {args.verb}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
