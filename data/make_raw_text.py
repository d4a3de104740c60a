"""Make the shipped raw-English corpora: data/enwiki_{train,valid,test}.txt.gz (Wikipedia
sentences as written: punctuation attached to words, mixed case, numbers) and
data/kjv_{train,valid,test}.txt.gz (the King James Version, one verse per line), for the
raw-text tokenizer and the held-out corpus check of benchmarks/text_raw.py.

Run from the repository root:  python data/make_raw_text.py [FOLDER]
FOLDER holds the project's sentence files gensim_enwiki_sample.txt and kjv_verses.txt (one
sentence per line; see data/PROVENANCE.md for the packages they come from); by default
../shared/corpora. Each corpus is split as the Brown corpus is (make_brown.split: blocks of
neighbouring lines, permuted with a fixed seed, whole blocks to validation and test), with
validation and test each holding 1/20 of the blocks. The output is byte-for-byte
reproducible; the script prints the sha256 of each file for data/PROVENANCE.md.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from make_brown import BLOCK, split, write_txt_gz

OUT_DIR = Path(__file__).resolve().parent
DEFAULT_FOLDER = OUT_DIR.parent.parent / "shared" / "corpora"
CORPORA = {"enwiki": "gensim_enwiki_sample.txt", "kjv": "kjv_verses.txt"}
HELD_OUT_SHARE = 20  # validation and test each get one block in this many


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FOLDER
    for name, file in CORPORA.items():
        raw = (folder / file).read_bytes()
        print(f"{folder / file}  sha256 {hashlib.sha256(raw).hexdigest()}")
        lines = raw.decode("utf-8").splitlines()
        held_out = -(-len(lines) // BLOCK) // HELD_OUT_SHARE
        for part, rows in split(lines, held_out, held_out).items():
            digest = write_txt_gz(OUT_DIR / f"{name}_{part}.txt.gz", rows)
            words = sum(len(row.split()) for row in rows)
            print(f"{name}_{part}.txt.gz  sentences {len(rows)}  words {words}  sha256 {digest}")


if __name__ == "__main__":
    main()
