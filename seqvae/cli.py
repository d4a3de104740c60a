"""The ``seqvae`` command: thin shells over the Python API.

seqvae train [CONFIG.toml] [--out DIR] [--resume] [--set section.key=value ...]
seqvae sample MODEL -n 1000 -o samples.csv
seqvae encode MODEL INPUT -o latents.csv
seqvae reconstruct MODEL INPUT -o reconstructions.csv
seqvae interpolate MODEL SMILES_A SMILES_B --steps 10 -o path.csv
seqvae evaluate samples.csv --reference moses -o metrics.json
seqvae optimize MODEL --objective qed --budget 500 -o best.csv
seqvae export RUN DEST --half
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .config import REPRESENTATIONS
from .errors import SeqVAEError


def _train(args: argparse.Namespace) -> None:
    from .checkpoint import read_checkpoint_config, resolve_checkpoint
    from .config import load_config
    from .trainer import train

    overrides = list(args.set)
    named = {"out": "train.out_dir", "max_minutes": "train.max_minutes", "max_steps": "train.max_steps",
             "max_epochs": "train.max_epochs", "seed": "train.seed", "device": "train.device",
             "representation": "data.representation", "train_data": "data.train",
             "valid_data": "data.valid", "column": "data.column", "batch_size": "train.batch_size"}
    for attr, key in named.items():
        value = getattr(args, attr)
        if value is not None:
            text = str(value)
            overrides.append(f"{key}={text}" if isinstance(value, (int, float)) else f'{key}="{text}"')
    config = load_config(args.config, overrides)
    if args.resume and args.config is None:
        # resume with the run's own settings, then apply what this command line changes
        try:
            saved, _ = read_checkpoint_config(resolve_checkpoint(config.train.out_dir))
        except SeqVAEError:
            pass
        else:
            config = load_config(None, overrides, base=saved)
    summary = train(config, resume=args.resume, progress=not args.no_progress)
    if "metrics" not in summary:  # a DDP process other than rank 0: rank 0 reports
        return
    out = Path(config.train.out_dir)
    metrics = summary["metrics"]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(f"trained {summary['step']} steps in {summary['elapsed_s']:.0f} s: {shown}")
    print(f"checkpoint: {out / 'checkpoint'}; log: {out / 'log.csv'}; curves: {out / 'curves.png'}")


def _sample(args: argparse.Namespace) -> None:
    from .generate import load

    model = load(args.model, device=args.device)
    start = time.perf_counter()
    table = model.sample(args.n, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         greedy=args.greedy, unique=args.unique, batch_size=args.batch_size,
                         seed=args.seed, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    line = f"wrote {len(table)} samples to {out} ({len(table) / max(seconds, 1e-9):.0f}/s)"
    if not model.molecular:
        seen = model.training_sentences()
        if seen is not None:
            table["novel"] = [t not in seen for t in table["text"]]
            table.to_csv(out, index=False)
            line += f": unique {table['text'].nunique() / max(len(table), 1):.3f}, " \
                    f"novel (not verbatim in the training data) {table['novel'].mean():.3f}"
    if model.molecular:
        valid = table[table["valid"]]
        line += (f": valid {table['valid'].mean():.3f}, unique among valid "
                 f"{valid['SMILES'].nunique() / max(len(valid), 1):.3f}")
        if len(valid) and not args.no_grid:
            from .chem import molecule_grid
            grid = molecule_grid(list(valid["SMILES"]), out.with_suffix(".png"),
                                 legends=[f"NLL {x:.1f}" for x in valid["NLL"]])
            line += f"; grid {grid}"
    print(line)


def _read_inputs(args: argparse.Namespace) -> list[str]:
    if args.smiles:
        return list(args.smiles)
    if not args.input:
        raise SeqVAEError("give an input file or --smiles S [S ...]")
    from .data import read_strings
    return read_strings(args.input, column=args.column)


def _usable(model, strings: list[str]) -> list[str]:
    """Keep the strings the model can encode; report the others (skip and count)."""
    reasons = model.check(strings)
    bad = [(i, s, r) for i, (s, r) in enumerate(zip(strings, reasons)) if r]
    if bad:
        first = "; ".join(f"row {i + 1} {s[:40]!r}: {r}" for i, s, r in bad[:3])
        print(f"skipped {len(bad)} of {len(strings)} inputs ({first})", file=sys.stderr)
    kept = [s for s, r in zip(strings, reasons) if not r]
    if not kept:
        raise SeqVAEError("none of the inputs can be encoded")
    return kept


def _encode(args: argparse.Namespace) -> None:
    import pandas as pd

    from .generate import load

    model = load(args.model, device=args.device)
    strings = _usable(model, _read_inputs(args))
    column = "SMILES" if model.molecular else "text"
    table = pd.DataFrame({column: strings})
    if args.sample:
        z = model.encode(strings, sample=True, seed=args.seed).cpu().numpy()
        table = table.join(pd.DataFrame(z, columns=[f"z_{i}" for i in range(z.shape[1])]))
    else:
        mu, logvar = model.encode(strings)
        table = table.join(pd.DataFrame(mu.cpu().numpy(), columns=[f"mu_{i}" for i in range(mu.shape[1])]))
        if args.logvar:
            table = table.join(pd.DataFrame(logvar.cpu().numpy(),
                                            columns=[f"logvar_{i}" for i in range(mu.shape[1])]))
    table.to_csv(args.output, index=False)
    print(f"wrote {len(table)} latent vectors of size {model.latent_dim} to {args.output}")


def _reconstruct(args: argparse.Namespace) -> None:
    from .generate import load

    model = load(args.model, device=args.device)
    strings = _usable(model, _read_inputs(args))
    table = model.reconstruct(strings, greedy=not args.sample_decoding, seed=args.seed)
    table.to_csv(args.output, index=False)
    print(f"wrote {len(table)} reconstructions to {args.output}: exact {table['exact'].mean():.3f}")


def _interpolate(args: argparse.Namespace) -> None:
    from .generate import load

    model = load(args.model, device=args.device)
    table = model.interpolate(args.a, args.b, steps=args.steps, method=args.method)
    table.to_csv(args.output, index=False)
    print(table.to_string(index=False))
    if model.molecular and table["valid"].any() and not args.no_grid:
        from .chem import molecule_grid
        valid = table[table["valid"]]
        grid = molecule_grid(list(valid["SMILES"]), Path(args.output).with_suffix(".png"),
                             legends=[f"t={t:.2f}" for t in valid["t"]], mols_per_row=min(len(valid), 6))
        print(f"grid: {grid}")


def _is_model(spec: str) -> bool:
    """A checkpoint or run folder, or the name of a shipped model (not a samples file)."""
    from .pretrained import pretrained_path
    path = Path(spec)
    return path.is_dir() or (not path.exists() and pretrained_path(spec) is not None)


def _evaluate_text(args: argparse.Namespace) -> None:
    from . import jsonio

    from .data import read_strings, resolve_data
    from .generate import load
    from .metrics.text import evaluate_text

    model = load(args.samples, device=args.device)
    if model.molecular:
        raise SeqVAEError(f"{args.samples} is a molecular model: sample it (seqvae sample) and "
                          "evaluate the samples file")
    data = args.data
    if data is None:
        trained_on = model.config.data.train
        if not trained_on.startswith("default:") or not trained_on.endswith("_train"):
            raise SeqVAEError("give the sentences to evaluate on with --data FILE "
                              "(or default:brown_test)")
        data = trained_on.removesuffix("_train") + "_test"
    sentences = read_strings(resolve_data(data), column=args.column or "text")
    report = evaluate_text(model, sentences, k=args.k, n_samples=args.n_samples,
                           train_sentences=model.training_sentences(), seed=args.seed or 0,
                           progress=not args.no_progress)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(jsonio.dumps({"model": str(args.samples), "data": data,
                               "metrics": report.metrics}, indent=2) + "\n")
    stem = out.with_suffix("")
    report.samples.to_csv(f"{stem}_samples.csv", index=False)
    report.reconstructions.to_csv(f"{stem}_reconstructions.csv", index=False)
    width = max(len(k) for k in report.metrics)
    for key, value in report.metrics.items():
        shown = f"{value}" if isinstance(value, int) else f"{value:.4f}"
        print(f"{key:<{width}}  {shown}")
    print(f"metrics: {out}; samples {stem}_samples.csv; reconstructions "
          f"{stem}_reconstructions.csv")
    if not args.no_pictures and report.metrics["latent_dim"]:
        from .viz import latent_map
        words = [len(s.split()) for s in report.reconstructions["input"]]
        print(f"latent map: {latent_map(report.mu, words, f'{stem}_latent.png', 'words')}")


def _evaluate(args: argparse.Namespace) -> None:
    from . import jsonio

    from .chem import molecule_grid
    from .data import read_strings
    from .metrics import evaluate_molecules, load_reference
    from .viz import property_histograms

    import torch

    if _is_model(args.samples):
        return _evaluate_text(args)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    samples = read_strings(args.samples, column=args.column)
    reference = load_reference(args.reference, scaffold_test=args.scaffold_reference,
                               train=args.train, n_jobs=args.n_jobs, device=device,
                               progress=not args.no_progress)
    report = evaluate_molecules(samples, reference, n_jobs=args.n_jobs, device=device,
                                progress=not args.no_progress)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(jsonio.dumps({"samples": str(args.samples), "reference": reference.name,
                               "metrics": report.metrics}, indent=2) + "\n")
    width = max(len(k) for k in report.metrics)
    for key, value in report.metrics.items():
        shown = f"{int(value)}" if key.startswith("n_") else f"{value:.4f}"
        print(f"{key:<{width}}  {shown}")
    print(f"metrics: {out}")
    if not args.no_pictures and len(report.properties):
        stem = out.with_suffix("")
        hist = property_histograms(report.properties, reference.splits["Test"].props,
                                   f"{stem}_properties.png")
        grid = molecule_grid(list(report.properties["SMILES"]), f"{stem}_molecules.png")
        print(f"pictures: {hist}, {grid}")


def _optimize(args: argparse.Namespace) -> None:
    import pandas as pd

    from .chem import molecule_grid
    from .data import read_strings, resolve_data
    from .errors import ConfigError
    from .generate import load
    from .search import LatentSearch, PropertyHead, fit_property_head, objectives
    from .viz import best_so_far

    model = load(args.model, device=args.device)
    objective = objectives.get(args.objective, seed=args.seed_smiles)
    if args.min_similarity is not None or args.max_similarity is not None:
        if args.seed_smiles is None:
            raise ConfigError("--min-similarity / --max-similarity need --seed-smiles")
        objective = objective.subject_to(objectives.similarity(args.seed_smiles),
                                         args.min_similarity, args.max_similarity)
    if args.max_atoms is not None:
        objective = objective.subject_to(objectives.heavy_atoms(), maximum=args.max_atoms)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    start: object = "prior"
    if args.start is not None:
        start = [s for s in read_strings(resolve_data(args.start), args.column) if s]
        if args.start_top:
            start = LatentSearch(model, objective).best_of(start, args.start_top)
            print(f"starting from the codes of the {len(start)} best molecules of {args.start}")
    head = None
    if "gradient" in methods:
        if args.head is not None:
            head = PropertyHead.load(args.head)
        elif model.property_head is not None:  # trained with the model (model.properties)
            print(f"using the model's own property head ({', '.join(model.property_head.names)})")
        else:
            terms = objective.terms or ((1.0, objective),)
            names = [o.name for _, o in terms]
            unknown = [n for n in names if n not in objectives.NAMES]
            if unknown:
                raise ConfigError(f"gradient ascent needs a property head for {unknown}: "
                                  "give --head DIR, or leave gradient out of --methods")
            data = [s for s in read_strings(resolve_data(args.head_data), args.column) if s]
            data = data[:args.head_size]
            print(f"fitting a property head for {', '.join(names)} on {len(data)} molecules "
                  f"of {args.head_data}")
            head, report = fit_property_head(model, data, properties=names, seed=args.seed,
                                             progress=not args.no_progress)
            print("property head held-out R^2: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in report.r2.items()))
            if args.save_head:
                head.save(args.save_head, report)
    out = Path(args.output)
    tables, curves = [], {}
    for method in methods:
        log = None if args.log is None else Path(args.log) / f"{method}.csv"
        search = LatentSearch(model, objective, head=head, log=log,
                              progress=not args.no_progress)
        started = time.perf_counter()
        table = search.run(method, budget=args.budget, seed=args.seed, start=start,
                           seed_smiles=args.seed_smiles)
        seconds = time.perf_counter() - started
        best = table["objective"].iloc[0] if len(table) else float("nan")
        print(f"{method}: best {objective.name} {best:.4f} after {search.oracle.calls} oracle "
              f"calls ({search.oracle.invalid} invalid decodes) in {seconds:.1f} s")
        tables.append(table)
        curves[method] = search.best_so_far()
    results = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    results = results.sort_values("objective", ascending=False, ignore_index=True)
    results = results.drop_duplicates("SMILES", ignore_index=True)
    written = results.copy()
    written["z"] = [" ".join(f"{x:.5g}" for x in z) for z in written["z"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    written.to_csv(out, index=False)
    print(f"wrote {len(results)} molecules, best first, to {out}")
    if not args.no_pictures and len(results):
        top = results.head(args.top)
        legends = [f"{o:.3f} (SA {sa:.1f})" for o, sa in zip(top["objective"], top["sa"])]
        grid = molecule_grid(top["SMILES"].tolist(), out.with_suffix(".png"), legends)
        curve = best_so_far(curves, out.with_name(out.stem + "_curve.png"), objective.name)
        print(f"pictures: {grid} (top {len(top)}), {curve}")


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
    p.add_argument("--unique", action="store_true", help="keep only valid molecules, each once")
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
        p.set_defaults(func=func)
    encode = verbs.choices["encode"]
    encode.add_argument("--sample", action="store_true", help="write one z drawn from q(z|x), not mu")
    encode.add_argument("--logvar", action="store_true", help="also write the log-variances")
    verbs.choices["reconstruct"].add_argument("--sample-decoding", action="store_true",
                                              help="sample tokens instead of greedy decoding")

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
                   help="qed, plogp (z-scored), plogp_raw, logp, sa, mw, tpsa, atoms, similarity, or a "
                        "weighted sum such as 'plogp + 0.5*qed' (default qed)")
    p.add_argument("--budget", type=int, default=500, help="oracle calls per optimiser")
    p.add_argument("--methods", default="prior,gradient,bo",
                   help="comma-separated optimisers: prior, gradient, bo (default all three)")
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
    p.set_defaults(func=_optimize)

    p = verbs.add_parser("export", help="copy a trained model (no trainer state) to share or ship")
    p.add_argument("run", help="checkpoint or run folder")
    p.add_argument("destination", help="new checkpoint folder")
    p.add_argument("--half", action="store_true", help="store the weights in float16")
    p.add_argument("--trained-by", help="the command that trained it, kept in config.json")
    p.set_defaults(func=_export)

    for verb in ("sample", "encode", "reconstruct", "interpolate", "evaluate", "optimize"):
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
