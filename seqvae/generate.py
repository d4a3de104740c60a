"""The user-facing model: sample, encode, decode, reconstruct, interpolate; all batched.

``load(path)`` returns a ``VAEModel`` that wraps a trained ``SequenceVAE`` with its tokenizer.
Strings go in and out in the user's representation (SMILES for both SMILES and SELFIES
models); the SELFIES conversion happens inside the tokenizer.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from .errors import DataError, TokenizerError
from .tokenizers import min_model_tokens
from .model import SequenceVAE

MOLECULAR_KINDS = ("smiles", "selfies")


def _integer(name: str, value: Any, minimum: int) -> int:
    """value as an int >= minimum, or a DataError that says what was wrong."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_sampling(temperature: Any = 1.0, top_k: Any = 0, top_p: Any = 1.0,
                   greedy: bool = False) -> None:
    """Refuse decoding settings that cannot work, saying which and why: a temperature that is
    not a positive finite number (unless greedy), top_k below 0, top_p outside (0, 1]."""
    if not greedy and not (isinstance(temperature, numbers.Real) and math.isfinite(temperature)
                           and temperature > 0):
        raise DataError(f"temperature must be a positive finite number (or use greedy "
                        f"decoding), got {temperature!r}")
    _integer("top_k (0: no limit)", top_k, 0)
    if not (isinstance(top_p, numbers.Real) and 0 < top_p <= 1):  # NaN fails both
        raise DataError(f"top_p must be in (0, 1] (1: no limit), got {top_p!r}")


def sample_table(strings: Sequence[str], nll: Sequence[float] | None, molecular: bool) -> pd.DataFrame:
    """Generated strings as a table: SMILES (canonical where valid), NLL, valid; or text, NLL."""
    columns: dict[str, object] = {}
    if molecular:
        from .chem import canonicalize_many
        canonical = canonicalize_many(list(strings))
        columns["SMILES"] = [c if c is not None else s for s, c in zip(strings, canonical)]
        columns["valid"] = [c is not None for c in canonical]
    else:
        columns["text"] = list(strings)
    if nll is not None:
        columns["NLL"] = [float(x) for x in nll]
    order = ["SMILES", "NLL", "valid"] if molecular else ["text", "NLL"]
    return pd.DataFrame({k: columns[k] for k in order if k in columns})


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between vectors a, b (D,) at fractions t (S,) -> (S, D)."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(omega) < 1e-6:  # (anti)parallel codes: the great circle is undefined
        return torch.lerp(a.expand(len(t), -1), b.expand(len(t), -1), t.unsqueeze(1))
    t = t.unsqueeze(1)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


class VAEModel:
    """A trained SequenceVAE with its tokenizer, working on strings."""

    def __init__(self, model: SequenceVAE, tokenizer, config, path: Path | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.path = path

    @property
    def molecular(self) -> bool:
        """True for SMILES and SELFIES models."""
        return self.tokenizer.kind in MOLECULAR_KINDS

    @property
    def latent_dim(self) -> int:
        """Size of z."""
        return self.model.config.latent_dim

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return self.model.device

    @property
    def property_head(self):
        """The property head trained with the model (model.properties), or None."""
        return getattr(self.model, "property_head", None)

    def __repr__(self) -> str:
        cfg = self.model.config
        n = sum(p.numel() for p in self.model.parameters())
        return (f"VAEModel({self.tokenizer.kind}, {cfg.encoder}->{cfg.decoder}, "
                f"latent {cfg.latent_dim}, {n:,} parameters, from {self.path})")

    def _generator(self, seed: int | None) -> torch.Generator | None:
        if seed is None:
            return None
        if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                or not -2**63 <= seed < 2**64):
            raise DataError(f"seed must be an integer in [-2**63, 2**64), got {seed!r}")
        return torch.Generator(device=self.device).manual_seed(seed)

    def check(self, strings: Sequence[str]) -> list[str | None]:
        """Why each string cannot be encoded (None where it can): empty, unparsable, unknown
        tokens, too long. Bulk paths use it to skip and count instead of failing."""
        return [reason for _, reason in self._prepare(strings)]

    def _prepare(self, strings: Sequence[str]) -> list[tuple[list[int] | None, str | None]]:
        if isinstance(strings, str):
            raise TypeError("pass a list of strings, not a single string")
        max_tokens = self.model.config.max_length
        prepared = []
        for text in strings:
            if not isinstance(text, str) or not text.strip():
                prepared.append((None, "empty"))
                continue
            least = (min_model_tokens(text.strip(), self.tokenizer.kind) if self.molecular
                     else 0)
            if least > max_tokens - 2:  # known without parsing: a runaway line costs no time
                prepared.append((None, f"at least {least} tokens, more than the model's limit "
                                       f"of {max_tokens - 2}"))
                continue
            if self.molecular and not _parses(text):
                prepared.append((None, "RDKit cannot parse it as SMILES"))
                continue
            if not self.molecular and not any(ch.isalnum() for ch in text):
                prepared.append((None, "no words: only punctuation or symbols"))
                continue
            try:  # molecules must be spelled in known tokens; in text an unknown word is <unk>
                ids = self.tokenizer.encode(self.tokenizer.to_model_string(text.strip()),
                                            strict=self.molecular)
            except TokenizerError as exc:
                prepared.append((None, str(exc)))
                continue
            if len(ids) > max_tokens:
                prepared.append((None, f"{len(ids) - 2} tokens, more than the model's limit of "
                                       f"{max_tokens - 2}"))
                continue
            prepared.append((ids, None))
        return prepared

    def _to_tokens(self, strings: Sequence[str]) -> list[list[int]]:
        """Token ids of user strings; raises DataError listing every input that can't be used."""
        prepared = self._prepare(strings)
        problems = [f"#{i} {str(text)[:60]!r}: {reason}"
                    for i, (text, (_, reason)) in enumerate(zip(strings, prepared)) if reason]
        if problems:
            shown = "; ".join(problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise DataError(f"{len(problems)} of {len(strings)} inputs cannot be encoded: "
                            f"{shown}{more}")
        return [ids for ids, _ in prepared]

    def _batches(self, encoded: list[list[int]], batch_size: int):
        batch_size = _integer("batch_size", batch_size, 1)
        pad = self.model.config.pad_id
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start:start + batch_size]
            lengths = torch.tensor([len(x) for x in chunk])
            tokens = torch.full((len(chunk), int(lengths.max())), pad, dtype=torch.long)
            for row, ids in enumerate(chunk):
                tokens[row, :len(ids)] = torch.tensor(ids)
            yield tokens.to(self.device), lengths.to(self.device)

    @torch.no_grad()
    def encode(self, strings: Sequence[str], sample: bool = False, batch_size: int = 1000,
               seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        """Posterior of each string: (mu, logvar), each (N, D); with sample=True one z (N, D)."""
        encoded = self._to_tokens(strings)
        mus, logvars = [], []
        for tokens, lengths in self._batches(encoded, batch_size):
            mu, logvar = self.model.encode(tokens, lengths)
            mus.append(mu)
            logvars.append(logvar)
        if not mus:  # no inputs: empty (0, D) codes
            empty = torch.zeros(0, self.latent_dim, device=self.device)
            mus, logvars = [empty], [empty.clone()]
        mu, logvar = torch.cat(mus), torch.cat(logvars)
        if sample:
            return self.model.reparameterize(mu, logvar, self._generator(seed))
        return mu, logvar

    @torch.no_grad()
    def _decode_raw(self, z: torch.Tensor, batch_size: int, generator: torch.Generator | None,
                    **sampling) -> tuple[list[str], np.ndarray]:
        batch_size = _integer("batch_size", batch_size, 1)
        check_sampling(**sampling)
        strings, nll = [], []
        for start in range(0, len(z), batch_size):
            out = self.model.generate(z[start:start + batch_size].to(self.device),
                                      generator=generator, **sampling)
            decoded = self.tokenizer.decode_batch(out.tokens.cpu())
            strings += [self.tokenizer.from_model_string(s) for s in decoded]
            nll.append(out.nll.cpu().numpy())
        return strings, np.concatenate(nll) if nll else np.zeros(0)

    def decode(self, z: torch.Tensor | np.ndarray, greedy: bool = True, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0, batch_size: int = 1000,
               seed: int | None = None) -> list[str]:
        """Strings decoded from latent codes z (N, D); greedy by default."""
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() != 2 or z.size(1) != self.latent_dim:
            raise DataError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            bad = sorted(set((~torch.isfinite(z)).any(dim=1).nonzero()[:, 0].tolist()))
            raise DataError(f"z holds NaN or infinite values (rows {bad[:10]}"
                            f"{' ...' if len(bad) > 10 else ''})")
        strings, _ = self._decode_raw(z, batch_size, self._generator(seed), greedy=greedy, temperature=temperature,
                                      top_k=top_k, top_p=top_p)
        return strings

    def sample(self, n: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               greedy: bool = False, unique: bool = False, batch_size: int = 1000,
               seed: int | None = None, max_tries: int = 10, progress: bool = False) -> pd.DataFrame:
        """Decode n codes drawn from the prior N(0, I).

        Returns columns SMILES (canonical where valid), NLL (-log p(x|z), nats) and valid; for
        text models text and NLL. unique=True keeps only valid molecules, each once, and draws
        until it has n of them or has drawn max_tries * n codes.
        """
        n = _integer("n", n, 0)
        max_tries = _integer("max_tries", max_tries, 1)
        batch_size = _integer("batch_size", batch_size, 1)
        check_sampling(temperature, top_k, top_p, greedy)
        from tqdm.auto import tqdm
        generator = self._generator(seed)
        sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy)
        tables, kept, drawn = [], 0, 0
        bar = tqdm(total=n, desc="sampling", unit="mol" if self.molecular else "seq",
                   disable=not progress)
        seen: set[str] = set()
        while kept < n and drawn < (max_tries * n if unique else n):
            size = min(batch_size, (n - kept) if not unique else batch_size)
            z = torch.randn(size, self.latent_dim, generator=generator, device=self.device)
            strings, nll = self._decode_raw(z, batch_size, generator, **sampling)
            table = sample_table(strings, nll, self.molecular)
            drawn += size
            if unique:
                key = "SMILES" if self.molecular else "text"
                mask = table["valid"] if self.molecular else pd.Series(True, index=table.index)
                fresh = [bool(v) and s not in seen for s, v in zip(table[key], mask)]
                table = table[fresh].drop_duplicates(key)
                seen.update(table[key])
                table = table.iloc[:n - kept]
            tables.append(table)
            bar.update(len(table))
            kept += len(table)
        bar.close()
        if not tables:
            return sample_table([], [], self.molecular)
        return pd.concat(tables, ignore_index=True)

    def reconstruct(self, strings: Sequence[str], greedy: bool = True, sample_z: bool = False,
                    batch_size: int = 1000, seed: int | None = None) -> pd.DataFrame:
        """Encode and decode each string; columns input, reconstruction, exact (and valid)."""
        z = self.encode(strings, sample=sample_z, batch_size=batch_size, seed=seed)
        if isinstance(z, tuple):
            z = z[0]
        out = self.decode(z, greedy=greedy, batch_size=batch_size, seed=seed)
        table = pd.DataFrame({"input": list(strings), "reconstruction": out})
        if self.molecular:
            from .chem import canonicalize_many
            canon_in = canonicalize_many(list(strings))
            canon_out = canonicalize_many(out)
            table["valid"] = [c is not None for c in canon_out]
            table["exact"] = [a is not None and a == b for a, b in zip(canon_in, canon_out)]
        else:  # against the input as the tokenizer reads it (<unk>, lower case)
            read = self.tokenizer.decode_batch(self.tokenizer.encode_batch(
                [" ".join(s.split()) for s in strings]))
            table["exact"] = [a == b for a, b in zip(read, out)]
        return table

    def training_sentences(self) -> set[str] | None:
        """The training sentences of a text model, as its tokenizer reads them, to flag
        samples that copy one verbatim; None for molecules or when the file is not here."""
        if self.molecular:
            return None
        if getattr(self, "_training", None) is None:
            from .data import load_sentences, resolve_data
            try:
                strings, _ = load_sentences(resolve_data(self.config.data.train),
                                            self.config.data.csv_column)
            except DataError:
                return None
            self._training = set(self.tokenizer.decode_batch(self.tokenizer.encode_batch(strings)))
        return self._training

    def interpolate(self, a: str, b: str, steps: int = 10, method: str = "linear",
                    greedy: bool = True) -> pd.DataFrame:
        """Decode points on the line (or great circle, method="slerp") between the codes of a and b."""
        if steps < 2:
            raise DataError(f"steps must be at least 2, got {steps}")
        if method not in ("linear", "slerp"):
            raise DataError(f"method must be 'linear' or 'slerp', got {method!r}")
        mu, _ = self.encode([a, b])
        t = torch.linspace(0.0, 1.0, steps, device=mu.device)
        if method == "linear":
            z = torch.lerp(mu[0].expand(steps, -1), mu[1].expand(steps, -1), t.unsqueeze(1))
        else:
            z = slerp(mu[0], mu[1], t)
        strings = self.decode(z, greedy=greedy)
        table = sample_table(strings, None, self.molecular)
        table.insert(0, "t", t.cpu().numpy())
        return table


def _parses(smiles: str) -> bool:
    from .chem import is_valid
    return is_valid(smiles)


def load(path: str | Path, device: str | torch.device = "cpu") -> VAEModel:
    """Load a trained model: a checkpoint or run folder, or the name of a model shipped with
    seqvae ("moses-smiles", "moses-selfies"; seqvae.pretrained.available() lists them)."""
    from .checkpoint import load_checkpoint
    from .pretrained import pretrained_path
    from .trainer import resolve_device

    if not Path(path).exists() and "/" not in str(path):
        shipped = pretrained_path(str(path))
        if shipped is None:
            from .errors import CheckpointError
            from .pretrained import available
            names = ", ".join(available()) or "none in this installation"
            raise CheckpointError(f"checkpoint {path} does not exist, and no model shipped with "
                                  f"seqvae has that name (shipped: {names})")
        path = shipped
    model, tokenizer, config, directory = load_checkpoint(path, device=resolve_device(str(device)))
    return VAEModel(model, tokenizer, config, directory)

