"""Round trip of the SMILES and SELFIES tokenizers over the MOSES test split (176,074 molecules).

SMILES: encode -> decode must give the input string back exactly; the tokenizer is built on
the MOSES train split (1,584,663 molecules), so the test split also measures vocabulary
coverage (any test token unseen in train would show up as <unk> and break the round trip).

SELFIES: SMILES -> SELFIES (selfies.encoder) -> ids -> SELFIES must give the SELFIES string
back exactly, and SELFIES -> SMILES (selfies.decoder) must give the same molecule as the
input (RDKit canonical SMILES compared). The SELFIES tokenizer is built on the test split's
own SELFIES strings: converting the 1.58M train molecules to SELFIES would take minutes per
core, and the point here is the tokenization and the chemistry round trip, not coverage.

Writes benchmarks/results/tokenizer_roundtrip.json and .md.

    python -m benchmarks.tokenizer_roundtrip [--limit N] [--processes 2]   # from the repo root
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from benchmarks.common import RESULTS_DIR, machine
from seqvae.tokenizers import SelfiesTokenizer, SequenceTokenizer, SmilesTokenizer

CHUNK = 10_000  # strings per tokenizer batch call, so the progress bar moves
N_EXAMPLES = 20  # failures kept in the JSON for inspection


def moses_split(name: str) -> list[str]:
    """SMILES of one MOSES split shipped with molsets, read without importing moses."""
    molsets = importlib.metadata.distribution("molsets")
    path = molsets.locate_file(f"moses/dataset/data/{name}.csv.gz")
    return pd.read_csv(path)["SMILES"].tolist()


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``items`` of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def quiet_rdkit() -> None:
    """Silence RDKit's per-molecule warnings in a worker process."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")


def to_selfies(smiles: str) -> str | None:
    """SMILES -> SELFIES, None where selfies cannot encode it."""
    import selfies

    try:
        return selfies.encoder(smiles)
    except selfies.EncoderError:
        return None


def same_molecule(pair: tuple[str, str]) -> tuple[str, str | None]:
    """Decode a SELFIES and compare it with the original SMILES by RDKit canonical SMILES."""
    import selfies
    from rdkit import Chem

    smiles, selfies_string = pair
    try:
        decoded = selfies.decoder(selfies_string)
    except selfies.DecoderError:
        return "decode_failed", None
    original = Chem.MolFromSmiles(smiles)
    mol = Chem.MolFromSmiles(decoded)
    if original is None or mol is None:
        return "invalid", decoded
    same = Chem.MolToSmiles(original) == Chem.MolToSmiles(mol)
    return ("same" if same else "different"), decoded


def parallel_map(
    fn: Callable[[Any], Any], items: Sequence[Any], processes: int, desc: str
) -> tuple[list[Any], float]:
    """``fn`` over ``items`` in a process pool with a progress bar; results and seconds."""
    start = time.perf_counter()
    with multiprocessing.Pool(processes, initializer=quiet_rdkit) as pool:
        results = list(
            tqdm(pool.imap(fn, items, chunksize=500), total=len(items), desc=desc, unit="mol")
        )
    return results, time.perf_counter() - start


def token_round_trip(
    tokenizer: SequenceTokenizer, texts: list[str], label: str
) -> tuple[dict[str, Any], list[str]]:
    """Encode and decode ``texts`` in batches: figures (matches, <unk>, speed) and the decoded."""
    ids: list[list[int]] = []
    start = time.perf_counter()
    for batch in tqdm(list(chunks(texts, CHUNK)), desc=f"{label} encode", unit="batch"):
        ids.extend(tokenizer.encode_batch(batch))
    encode_s = time.perf_counter() - start

    decoded: list[str] = []
    start = time.perf_counter()
    for batch in tqdm(list(chunks(ids, CHUNK)), desc=f"{label} decode", unit="batch"):
        decoded.extend(tokenizer.decode_batch(batch))
    decode_s = time.perf_counter() - start

    n_tokens = sum(len(row) - 2 for row in ids)  # BOS and EOS not counted
    with_unk = [t for t, row in zip(texts, ids) if tokenizer.unk_id in row]
    failures = [{"input": t, "decoded": d} for t, d in zip(texts, decoded) if t != d]
    return {
        "n": len(texts),
        "vocab_size": tokenizer.vocab_size,
        "exact": len(texts) - len(failures),
        "exact_fraction": (len(texts) - len(failures)) / len(texts),
        "with_unknown_tokens": len(with_unk),
        "unknown_tokens": sorted({u for t in with_unk for u in tokenizer.unknown_tokens(t)}),
        "tokens": n_tokens,
        "mean_tokens_per_string": n_tokens / len(texts),
        "max_tokens_per_string": max(len(row) - 2 for row in ids),
        "encode_s": encode_s,
        "encode_tokens_per_s": n_tokens / encode_s,
        "encode_strings_per_s": len(texts) / encode_s,
        "decode_s": decode_s,
        "decode_tokens_per_s": n_tokens / decode_s,
        "failures": failures[:N_EXAMPLES],
    }, decoded


def run(limit: int | None, processes: int) -> dict[str, Any]:
    """Run both round trips and return the results."""
    test = moses_split("test")[:limit]

    start = time.perf_counter()
    train = moses_split("train")
    smiles_tokenizer = SmilesTokenizer.build(train)
    smiles_build_s = time.perf_counter() - start
    smiles, _ = token_round_trip(smiles_tokenizer, test, "SMILES")
    smiles.update(built_on="MOSES train split", build_corpus=len(train), build_s=smiles_build_s)
    del train

    selfies_strings, encode_s = parallel_map(to_selfies, test, processes, "SMILES -> SELFIES")
    encodable = [(s, f) for s, f in zip(test, selfies_strings) if f is not None]
    selfies_tokenizer = SelfiesTokenizer.build(f for _, f in encodable)
    selfies, decoded = token_round_trip(selfies_tokenizer, [f for _, f in encodable], "SELFIES")
    outcomes, decode_s = parallel_map(
        same_molecule,
        [(s, d) for (s, _), d in zip(encodable, decoded)],
        processes,
        "SELFIES -> SMILES, compare",
    )
    counts = {
        k: sum(o == k for o, _ in outcomes)
        for k in ("same", "different", "invalid", "decode_failed")
    }
    mismatches = [
        {"smiles": s, "selfies": f, "decoded_smiles": d, "outcome": o}
        for (s, f), (o, d) in zip(encodable, outcomes)
        if o != "same"
    ]
    selfies.update(
        built_on="the SELFIES of the MOSES test split itself",
        smiles_to_selfies_failed=len(test) - len(encodable),
        smiles_to_selfies_s=encode_s,
        smiles_to_selfies_per_s=len(test) / encode_s,
        same_molecule=counts["same"],
        same_molecule_fraction=counts["same"] / len(test),
        molecule_outcomes=counts,
        selfies_to_smiles_and_compare_s=decode_s,
        molecule_mismatches=mismatches[:N_EXAMPLES],
    )
    return {
        "dataset": "MOSES test split (molsets 0.3.1, moses/dataset/data/test.csv.gz)",
        "n_molecules": len(test),
        "processes": processes,
        "machine": machine(),
        "smiles": smiles,
        "selfies": selfies,
    }


def markdown(results: dict[str, Any]) -> str:
    """A short human-readable report of ``results``."""
    sm, sf, m = results["smiles"], results["selfies"], results["machine"]
    lines = [
        "# Tokenizer round trip on the MOSES test split",
        "",
        f"{results['n_molecules']:,} molecules from {results['dataset']}.",
        "",
        "| | SMILES | SELFIES |",
        "|---|---|---|",
        f"| tokenizer built on | {sm['built_on']} ({sm['build_corpus']:,} molecules, "
        f"{sm['build_s']:.1f} s incl. reading) | {sf['built_on']} |",
        f"| vocabulary size (4 specials incl.) | {sm['vocab_size']} | {sf['vocab_size']} |",
        f"| exact string round trip | {sm['exact']:,} / {sm['n']:,} ({sm['exact_fraction']:.4%}) "
        f"| {sf['exact']:,} / {sf['n']:,} ({sf['exact_fraction']:.4%}) |",
        f"| strings with unknown tokens | {sm['with_unknown_tokens']:,} "
        f"| {sf['with_unknown_tokens']:,} |",
        f"| tokens (BOS/EOS excluded) | {sm['tokens']:,} | {sf['tokens']:,} |",
        f"| tokens per string, mean / max | {sm['mean_tokens_per_string']:.1f} / "
        f"{sm['max_tokens_per_string']} | {sf['mean_tokens_per_string']:.1f} / "
        f"{sf['max_tokens_per_string']} |",
        f"| encode_batch | {sm['encode_tokens_per_s']:,.0f} tokens/s ({sm['encode_s']:.1f} s) "
        f"| {sf['encode_tokens_per_s']:,.0f} tokens/s ({sf['encode_s']:.1f} s) |",
        f"| decode_batch | {sm['decode_tokens_per_s']:,.0f} tokens/s ({sm['decode_s']:.1f} s) "
        f"| {sf['decode_tokens_per_s']:,.0f} tokens/s ({sf['decode_s']:.1f} s) |",
        "",
        "SELFIES chemistry:",
        "",
        f"- SMILES -> SELFIES (selfies.encoder): {sf['smiles_to_selfies_failed']:,} failures, "
        f"{sf['smiles_to_selfies_per_s']:,.0f} molecules/s on {results['processes']} processes.",
        f"- SELFIES -> SMILES gives the same molecule (RDKit canonical SMILES): "
        f"{sf['same_molecule']:,} / {results['n_molecules']:,} "
        f"({sf['same_molecule_fraction']:.4%}); "
        f"outcomes {sf['molecule_outcomes']}.",
    ]
    for case in sf["molecule_mismatches"][:5]:
        lines.append(f"  - `{case['smiles']}` -> `{case['decoded_smiles']}` ({case['outcome']})")
    lines += [
        "",
        "Machine:",
        "",
        *(f"- {key}: {value}" for key, value in m.items()),
        "",
        "Throughput is wall time of the tokenizer calls on a machine shared with other jobs.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run, write the JSON and Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N test molecules")
    parser.add_argument("--processes", type=int, default=2, help="processes for selfies and RDKit")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where to write results")
    args = parser.parse_args()

    results = run(args.limit, args.processes)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "tokenizer_roundtrip.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "tokenizer_roundtrip.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
