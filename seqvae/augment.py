"""SMILES enumeration as data augmentation: each training molecule written, batch by batch, as
a random valid SMILES of itself instead of its one stored (canonical) form.

Randomised SMILES make a chemical language model generalise better from the same molecules
(Arús-Pous et al., "Randomized SMILES strings improve the quality of molecular generative
models", J. Cheminform. 2019); fed to the encoder only, with the canonical form as the
decoder's target, they teach the encoder that all spellings of a molecule are one molecule
(the "heteroencoder" of Bjerrum & Sattarov, Biomolecules 2018). ``data.augment`` chooses:

- ``"none"``: the stored strings (default);
- ``"encoder"``: the encoder reads a randomised SMILES, the decoder writes the stored one;
- ``"both"``: encoder and decoder see the same randomised SMILES (a language model's only
  option: it has no encoder).

SELFIES models get the SELFIES of a randomised SMILES. The randomisation is RDKit's own
(MolToRandomSmilesVect) with a seed from the run's seed, the step and the row, so a resumed run
sees the same strings as an uninterrupted one. A row whose random form holds a token the
vocabulary lacks, or is longer than data.max_length, keeps its stored form (counted).
"""

from __future__ import annotations

from typing import Any

import torch

from .config import AUGMENTS  # noqa: F401  (the choices of data.augment)


class RandomizedSmiles:
    """Rewrites batches of token ids as random SMILES (or SELFIES) of the same molecules."""

    def __init__(self, tokenizer: Any, max_length: int, seed: int):
        self.tokenizer, self.max_length, self.seed = tokenizer, max_length, seed
        self.rows = 0  # rows seen
        self.kept = 0  # rows that kept their stored form

    def row_seed(self, step: int, row: int) -> int:
        """RDKit's seed for one row of one step: a positive 31-bit integer (RDKit reads a
        seed of 0 as 'not seeded')."""
        return (self.seed * 1_000_003 + step * 8_191 + row) % (2 ** 31 - 2) + 1

    def strings(self, tokens: torch.Tensor, step: int) -> list[str | None]:
        """A random model string of each row's molecule; None where there is none."""
        from .chem import random_smiles

        tok = self.tokenizer
        out: list[str | None] = []
        for row, model_string in enumerate(tok.decode_batch(tokens)):
            smiles = random_smiles(tok.from_model_string(model_string), self.row_seed(step, row))
            if smiles is None:
                out.append(None)
                continue
            try:
                out.append(tok.to_model_string(smiles))
            except Exception:  # a SELFIES conversion that fails: keep the stored form
                out.append(None)
        return out

    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor,
                 step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens, lengths) of the batch with each row randomised where it can be; padded
        like the input (BOS ... EOS, then pad)."""
        tok = self.tokenizer
        randomised = self.strings(tokens, step)
        encoded = tok.encode_batch([s or "" for s in randomised])
        rows = []
        for i, (text, ids) in enumerate(zip(randomised, encoded)):
            if text is None or tok.unk_id in ids or len(ids) - 2 > self.max_length:
                rows.append(tokens[i, :int(lengths[i])].tolist())
                self.kept += 1
            else:
                rows.append(ids)
        self.rows += len(rows)
        from .data import pad_rows
        return pad_rows(rows, tok.pad_id)

    def report(self) -> dict[str, int]:
        """Rows randomised and rows that kept their stored form, in this process's run part."""
        return {"rows": self.rows, "kept_stored_form": self.kept}
