"""The user-facing model: a trained SequenceVAE with its tokenizer and domain, on strings.

``load(path)`` returns a ``TrainedModel``: sample, encode, decode, reconstruct, interpolate
(all batched), and the tables and pictures the command line writes. ``SequenceVAE`` (in
seqvae.model) is the network on token ids; this class is what a user holds. Strings go in and
out in the user's representation (SMILES for both SMILES and SELFIES models; the SELFIES
conversion happens inside the tokenizer); what differs between molecules and text is the
model's ``domain`` (seqvae.domains).
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .domains import Domain, domain_for
from .errors import CheckpointError, DataError, SeqVAEError
from .model import SequenceVAE
from .priors import DEFAULT_CODES, DEFAULT_COMPONENTS, PRIORS, GaussianMixture, model_digest

__all__ = ["TrainedModel", "load", "check_sampling", "slerp"]


def _integer(name: str, value: Any, minimum: int) -> int:
    """value as an int >= minimum, or a DataError that says what was wrong."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_sampling(temperature: Any = 1.0, top_k: Any = 0, top_p: Any = 1.0,
                   greedy: bool = False, index_temperature: Any = None,
                   guidance: Any = 0.0) -> None:
    """Refuse decoding settings that cannot work, saying which and why: a temperature that is
    not a positive finite number (unless greedy), an index temperature or a guidance that is
    not a finite number >= 0, top_k below 0, top_p outside (0, 1]."""
    if not (isinstance(guidance, numbers.Real) and not isinstance(guidance, bool)
            and math.isfinite(guidance) and guidance >= 0):
        raise DataError(f"guidance must be a finite number >= 0 (0: none), got {guidance!r}")
    if not greedy and not (isinstance(temperature, numbers.Real) and math.isfinite(temperature)
                           and temperature > 0):
        raise DataError(f"temperature must be a positive finite number (or use greedy "
                        f"decoding), got {temperature!r}")
    if index_temperature is not None and not (
            isinstance(index_temperature, numbers.Real) and not isinstance(index_temperature, bool)
            and math.isfinite(index_temperature) and index_temperature >= 0):
        raise DataError(f"index_temperature must be a finite number >= 0 (0: the most likely "
                        f"index symbol; None: the temperature), got {index_temperature!r}")
    _integer("top_k (0: no limit)", top_k, 0)
    if not (isinstance(top_p, numbers.Real) and 0 < top_p <= 1):  # NaN fails both
        raise DataError(f"top_p must be in (0, 1] (1: no limit), got {top_p!r}")


def parse_conditions(given: Sequence[str] | None) -> dict[str, Any] | None:
    """Conditions written NAME=VALUE (the CLI's --condition flags) as {name: value}: a number
    for a property, else the text, a category's name."""
    if not given:
        return None
    out: dict[str, Any] = {}
    for text in given:
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise DataError(f"condition {text!r}: write NAME=VALUE, such as logp=3 or "
                            "\"genre=humor\"")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            out[name.strip()] = value.strip()
    return out


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between vectors a, b (D,) at fractions t (S,) -> (S, D)."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(omega) < 1e-6:  # (anti)parallel codes: the great circle is undefined
        return torch.lerp(a.expand(len(t), -1), b.expand(len(t), -1), t.unsqueeze(1))
    t = t.unsqueeze(1)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


class TrainedModel:
    """A trained SequenceVAE with its tokenizer, working on strings."""

    def __init__(self, model: SequenceVAE, tokenizer: Any, config: Any, path: Path | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.path = path
        self.domain: Domain = domain_for(tokenizer.kind)
        self._aggregate: GaussianMixture | None = None  # fitted or loaded on first use
        self._syntax_mask = None  # the SMILES syntax mask, built on first use (_syntax)

    @functools.cached_property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the model.safetensors this model was loaded from (None for a model built
        in memory): what a fitted prior or property head is bound to."""
        if self.path is None or not (Path(self.path) / "model.safetensors").is_file():
            return None
        return model_digest(self.path)

    @property
    def molecular(self) -> bool:
        """True for SMILES and SELFIES models (the domain's name is "molecules")."""
        return self.domain.name == "molecules"

    @property
    def latent_dim(self) -> int:
        """Size of z (of the whole code [z1, z2] for a hierarchical model)."""
        return self.model.config.latent_dim

    @property
    def latent_sizes(self) -> tuple[int, ...]:
        """The size of each latent level within a code: (latent_dim,) for one level, (size of
        z1, size of z2) for a hierarchical model (model.latent_levels = 2), whose codes are
        [z1, z2]: ``mu[:, :sizes[0]]`` is z1's part, ``mu[:, sizes[0]:]`` z2's."""
        return self.model.latent_sizes

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
        return (f"{type(self).__name__}({self.tokenizer.kind}, {cfg.encoder}->{cfg.decoder}, "
                f"latent {'+'.join(map(str, self.latent_sizes))}, {n:,} parameters, from "
                f"{self.path})")

    def _generator(self, seed: int | None) -> torch.Generator | None:
        if seed is None:
            return None
        if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                or not -2**63 <= seed < 2**64):
            raise DataError(f"seed must be an integer in [-2**63, 2**64), got {seed!r}")
        return torch.Generator(device=self.device).manual_seed(seed)

    # -- inputs ---------------------------------------------------------------------------
    def check(self, strings: Sequence[str]) -> list[str | None]:
        """Why each string cannot be encoded (None where it can): empty, unparsable, unknown
        tokens, too long. Bulk paths use it to skip and count instead of failing."""
        return [reason for _, reason in self._encode_all(strings)]

    def usable(self, strings: Sequence[str]) -> tuple[list[str], list[tuple[int, str, str]]]:
        """The strings the model can encode, and (row, string, reason) of each it cannot."""
        reasons = self.check(strings)
        kept = [s for s, r in zip(strings, reasons) if r is None]
        rejected = [(i, s, r) for i, (s, r) in enumerate(zip(strings, reasons)) if r is not None]
        return kept, rejected

    def _encode_all(self, strings: Sequence[str]) -> list[tuple[list[int] | None, str | None]]:
        return self.domain.encode(strings, self.tokenizer, self.model.config.max_length)

    def _to_tokens(self, strings: Sequence[str]) -> list[list[int]]:
        """Token ids of user strings; raises DataError listing every input that can't be used."""
        prepared = self._encode_all(strings)
        problems = [f"#{i} {str(text)[:60]!r}: {reason}"
                    for i, (text, (_, reason)) in enumerate(zip(strings, prepared)) if reason]
        if problems:
            shown = "; ".join(problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise DataError(f"{len(problems)} of {len(strings)} inputs cannot be encoded: "
                            f"{shown}{more}")
        return [ids for ids, _ in prepared]

    def _batches(self, encoded: list[list[int]], batch_size: int):
        from .data import pad_rows
        batch_size = _integer("batch_size", batch_size, 1)
        for start in range(0, len(encoded), batch_size):
            tokens, lengths = pad_rows(encoded[start:start + batch_size], self.model.config.pad_id)
            yield tokens.to(self.device), lengths.to(self.device)

    # -- encoding and decoding --------------------------------------------------------------
    def standardized(self, strings: Sequence[str], standardize: bool = True,
                     keep_stereo: bool = True) -> list[str]:
        """What the model reads of each input: with standardize, the standardised parent
        molecule (seqvae.standardize; an input that cannot be standardised stays as given, so
        the error that follows names its reason), else the inputs themselves."""
        if isinstance(strings, str):
            raise TypeError("pass a list of strings, not a single string")
        strings = list(strings)
        if not standardize:
            if not keep_stereo:
                raise DataError("keep_stereo=False drops stereo as a step of standardisation: "
                                "pass standardize=True as well")
            return strings
        return self.domain.standardized(strings, keep_stereo)

    # -- conditions (model.conditions) ----------------------------------------------------
    @property
    def condition_names(self) -> list[str]:
        """The properties a conditional model is conditioned on (empty for others)."""
        return self.model.config.condition_names

    def condition_range(self) -> dict[str, tuple[float, float]]:
        """Each condition's range in the training data."""
        m = self.model
        return {name: (float(m.condition_min[i]), float(m.condition_max[i]))
                for i, name in enumerate(self.condition_names)}

    @property
    def categories(self) -> dict[str, list[str]]:
        """A model conditioned on a category column: {column: its categories}; else {}."""
        cfg = self.model.config
        return {cfg.category_column: list(cfg.categories)} if cfg.categories else {}

    def conditions_of(self, strings: Sequence[str]) -> torch.Tensor | None:
        """The conditions of inputs as the model reads them (N, C): their properties of
        model.conditions computed with RDKit (the training mean where one cannot be; NaN for
        a condition that is a data label: the model predicts it from the input), then,
        for a model conditioned on categories, -1 (the category is not known from the string:
        every category equally likely). None for a model without conditions."""
        names, categories = self.condition_names, self.categories
        if not names and not categories:
            return None
        parts = []
        if names:
            from .config import PROPERTY_NAMES
            from .search.objectives import compute_properties
            computed = [n for n in names if n in PROPERTY_NAMES]
            table = compute_properties(list(strings), computed) if computed else None
            values = torch.full((len(strings), len(names)), float("nan"), device=self.device)
            for i, name in enumerate(names):
                if name in computed:
                    column = torch.tensor(table[name].to_numpy(), dtype=torch.float32,
                                          device=self.device)
                    # a property RDKit cannot compute reads the training mean
                    values[:, i] = torch.where(torch.isfinite(column), column,
                                               self.model.condition_mean[i])
            # a condition read from the data is unknown here (NaN): the model predicts it
            parts.append(values)
        if categories:
            parts.append(torch.full((len(strings), 1), -1.0, device=self.device))
        return torch.cat(parts, dim=1)

    def condition(self, n: int, values: dict[str, Any] | None) -> torch.Tensor | None:
        """A condition (n, C) from {name: value or n values}: properties in their units (not
        named: the training mean), the category column's category by name (not named:
        unknown, every category equally likely). Unknown names and categories are refused;
        property values outside the training range warn."""
        names, categories = self.condition_names, self.categories
        if not names and not categories:
            if values:
                raise DataError(f"this model was trained without conditions (model.conditions "
                                f"and data.condition_column are empty); it cannot sample under "
                                f"{sorted(values)}")
            return None
        values = dict(values or {})
        allowed = names + list(categories)
        unknown = [k for k in values if k not in allowed]
        if unknown:
            raise DataError(f"unknown condition(s) {unknown}: this model is conditioned on "
                            f"{', '.join(allowed)}")
        parts = []
        if names:
            numeric = self.model.condition_mean.expand(n, len(names)).clone()
            for i, name in enumerate(names):
                if name not in values:
                    continue
                if isinstance(values[name], str):
                    raise DataError(f"condition {name} must be a number (a property), got "
                                    f"{values[name]!r}")
                given = torch.as_tensor(values[name], dtype=torch.float32, device=self.device)
                if given.dim() > 1 or (given.dim() == 1 and len(given) != n):
                    raise DataError(f"condition {name}: give one value or {n}, got shape "
                                    f"{tuple(given.shape)}")
                if not torch.isfinite(given).all():
                    raise DataError(f"condition {name} holds NaN or infinite values")
                numeric[:, i] = given
                low, high = self.condition_range()[name]
                if float(given.min()) < low or float(given.max()) > high:
                    warnings.warn(f"condition {name}: {given.min().item():g} to "
                                  f"{given.max().item():g} reaches outside the training range "
                                  f"{low:g} to {high:g}; the model has not seen such molecules",
                                  stacklevel=3)
            parts.append(numeric)
        for column, known in categories.items():
            index = torch.full((n, 1), -1.0, device=self.device)
            if column in values:
                given = values[column]
                asked = [given] * n if isinstance(given, str) else list(given)
                if len(asked) != n:
                    raise DataError(f"condition {column}: give one category or {n}")
                strange = sorted({a for a in asked if a not in known})
                if strange:
                    raise DataError(f"condition {column}: unknown categor"
                                    f"{'y' if len(strange) == 1 else 'ies'} {strange}; the "
                                    f"model knows {', '.join(map(repr, known))}")
                index[:, 0] = torch.tensor([known.index(a) for a in asked], dtype=torch.float32)
            parts.append(index)
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def encode(self, strings: Sequence[str], sample: bool = False, batch_size: int = 1000,
               seed: int | None = None, standardize: bool = False,
               keep_stereo: bool = True) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        """Posterior of each string: (mu, logvar), each (N, D); with sample=True one z (N, D)
        drawn from q(z|x). standardize=True reads each molecule's standardised parent
        (seqvae.standardize: salts out, charges neutralised, stereo dropped with
        keep_stereo=False). A conditional model (model.conditions) reads each molecule's own
        properties as its condition. A hierarchical model's codes are [z1, z2] (its mu: z1's
        mean, then z2's given it), split by ``latent_sizes``; sample=True draws z1, then z2 from
        q(z2|x, z1)."""
        strings = self.standardized(strings, standardize, keep_stereo)
        codes, logvar = self._posterior(self._to_tokens(strings), batch_size,
                                        self.conditions_of(strings),
                                        self._generator(seed) if sample else None, sample)
        return codes if sample else (codes, logvar)

    def _posterior(self, encoded: list[list[int]], batch_size: int,
                   conditions: torch.Tensor | None = None,
                   generator: torch.Generator | None = None,
                   sample: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of token-id sequences, batched (a conditional model under their
        conditions, (N, C), else the training mean); with sample, (z, logvar) where z is one
        code drawn from q(z|x) (the noise drawn at once for all N, from ``generator``). Empty
        (0, D) for no sequences."""
        noise = self.model.latent_noise(len(encoded), generator) if sample else None
        codes, logvars = [], []
        for i, (tokens, lengths) in enumerate(self._batches(encoded, batch_size)):
            rows = slice(i * batch_size, i * batch_size + len(tokens))
            draw = self.model.posterior_draw(
                tokens, lengths, None if conditions is None else conditions[rows],
                None if noise is None else noise[rows])
            codes.append(draw.z)
            logvars.append(draw.logvar)
        if not codes:  # no inputs: empty (0, D) codes
            empty = torch.zeros(0, self.latent_dim, device=self.device)
            codes, logvars = [empty], [empty.clone()]
        return torch.cat(codes), torch.cat(logvars)

    def latents(self, strings: Sequence[str], sample: bool = False, logvar: bool = False,
                seed: int | None = None, standardize: bool = False,
                keep_stereo: bool = True) -> pd.DataFrame:
        """A table of the strings and their codes: mu_0..mu_D (and logvar_0..logvar_D), or
        one z_0..z_D drawn from q(z|x) with sample=True (``seqvae encode``). With standardize
        (see encode) also the standardized column, what was encoded."""
        table = pd.DataFrame({self.domain.column: list(strings)})
        read = self.standardized(strings, standardize, keep_stereo)
        if standardize:
            table["standardized"] = read
        if sample:
            z = self.encode(read, sample=True, seed=seed).cpu().numpy()
            return table.join(pd.DataFrame(z, columns=[f"z_{i}" for i in range(z.shape[1])]))
        mu, log_variance = self.encode(read)
        parts = [table, pd.DataFrame(mu.cpu().numpy(),
                                     columns=[f"mu_{i}" for i in range(mu.shape[1])])]
        if logvar:
            parts.append(pd.DataFrame(log_variance.cpu().numpy(),
                                      columns=[f"logvar_{i}" for i in range(mu.shape[1])]))
        return pd.concat(parts, axis=1)

    @torch.no_grad()
    def _decode_raw(self, z: torch.Tensor, batch_size: int, generator: torch.Generator | None,
                    condition: torch.Tensor | None = None,
                    **sampling) -> tuple[list[str], np.ndarray]:
        batch_size = _integer("batch_size", batch_size, 1)
        syntax = sampling.pop("syntax", False)
        strict = sampling.pop("strict", False)
        check_sampling(**sampling)
        if sampling.get("index_temperature") is not None:
            sampling["announces"] = self._announces()
        if sampling.get("guidance"):
            self._guidable()
        if syntax:
            sampling["syntax"] = self._syntax()
        if strict:
            self._strict()
        strings, nll = [], []
        for start in range(0, len(z), batch_size):
            rows = slice(start, start + batch_size)
            out = self.model.generate(z[rows].to(self.device), generator=generator,
                                      condition=None if condition is None else condition[rows],
                                      **sampling)
            decoded = self.tokenizer.decode_batch(out.tokens.cpu())
            strings += [self._faithful(s) if strict else self.tokenizer.from_model_string(s)
                        for s in decoded]
            nll.append(out.nll.cpu().numpy())
        return strings, np.concatenate(nll) if nll else np.zeros(0)

    def _guidable(self) -> None:
        if not (self.condition_names or self.categories):
            raise DataError("guidance needs a conditional model (trained with model.conditions "
                            "or data.condition_column); this one has no condition to follow")

    def _announces(self) -> torch.Tensor:
        """Per token id, the number of index symbols it is followed by (a SELFIES ring or
        branch symbol's digit, else 0); refused for a model that writes no SELFIES."""
        if self.tokenizer.kind != "selfies":
            raise DataError(f"index_temperature applies to the ring and branch index symbols "
                            f"of a SELFIES model; this model writes {self.tokenizer.kind}: use "
                            f"temperature")
        from .model.counter import announced_indices, selfies_roles
        return announced_indices(selfies_roles(list(self.tokenizer.vocab)))

    def _strict(self) -> None:
        """strict=True is for SELFIES models; refused for the others."""
        if self.tokenizer.kind != "selfies":
            raise DataError(f"strict=True counts a SELFIES string the SELFIES decoder had to "
                            f"repair as invalid; this model writes {self.tokenizer.kind}"
                            + (", whose invalid strings are invalid already"
                               if self.tokenizer.kind == "smiles" else ""))

    def _faithful(self, selfies: str) -> str:
        """The SMILES of a sampled SELFIES string if the molecule it decodes to is written back
        as the same string (the training strings all are: each is the SELFIES encoder's
        output), else the SELFIES string itself, which no SMILES parser reads (invalid).
        SELFIES decodes every string to a molecule by repairing what a SMILES would get wrong
        (a bond order over the atom's free valence lowered, a ring closure or branch with no
        valence left dropped, the symbols after a saturated atom ignored): the model's
        mistakes become molecules unlike its training data rather than invalid strings."""
        from .chem import selfies_to_smiles, smiles_to_selfies

        smiles = selfies_to_smiles(selfies)
        return smiles if smiles and smiles_to_selfies(smiles) == selfies else selfies

    def _syntax(self):
        """The SMILES syntax mask of this model's vocabulary (seqvae.model.syntax); refused
        for a model that writes no SMILES."""
        if self.tokenizer.kind != "smiles":
            raise DataError(f"syntax=True is the SMILES syntax mask (rings closed, branches "
                            f"balanced); this model writes {self.tokenizer.kind}"
                            + (", whose every string is a molecule already"
                               if self.tokenizer.kind == "selfies" else ""))
        if self._syntax_mask is None:
            from .model.syntax import SmilesSyntax
            tok = self.tokenizer
            try:
                self._syntax_mask = SmilesSyntax(list(tok.vocab), tok.eos_id,
                                                 [tok.pad_id, tok.bos_id, tok.unk_id])
            except ValueError as exc:  # a token of a custom vocabulary it cannot place
                raise DataError(f"syntax=True: {exc}") from None
        return self._syntax_mask

    def decode(self, z: torch.Tensor | np.ndarray, greedy: bool = True, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0, batch_size: int = 1000,
               seed: int | None = None,
               condition: dict[str, Any] | torch.Tensor | None = None,
               index_temperature: float | None = None, syntax: bool = False,
               strict: bool = False, guidance: float = 0.0) -> list[str]:
        """Strings decoded from latent codes z (N, D); greedy by default. A conditional model
        decodes under ``condition``: {name: value or N values} (others at the training mean),
        or a tensor (N, C) in property units; None: the training mean. index_temperature,
        syntax, strict and guidance: see sample."""
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() != 2 or z.size(1) != self.latent_dim:
            raise DataError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            bad = sorted(set((~torch.isfinite(z)).any(dim=1).nonzero()[:, 0].tolist()))
            raise DataError(f"z holds NaN or infinite values (rows {bad[:10]}"
                            f"{' ...' if len(bad) > 10 else ''})")
        if not isinstance(condition, torch.Tensor):
            condition = self.condition(len(z), condition)
        strings, _ = self._decode_raw(z, batch_size, self._generator(seed), condition,
                                      greedy=greedy, temperature=temperature, top_k=top_k,
                                      top_p=top_p, index_temperature=index_temperature,
                                      syntax=syntax, strict=strict, guidance=guidance)
        return strings

    def sample(self, n: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               greedy: bool = False, unique: bool = False, valid: bool = False,
               batch_size: int = 1000, seed: int | None = None, max_tries: int = 10,
               progress: bool = False, novelty: bool = False, prior: str = "standard",
               triage: bool = False,
               reference: Sequence[str] | str | Path | None = None,
               condition: dict[str, float] | None = None,
               index_temperature: float | None = None, syntax: bool = False,
               strict: bool = False, guidance: float = 0.0) -> pd.DataFrame:
        """Decode n codes drawn from the prior: "standard", the model's own (N(0, I); for a
        hierarchical model z1 ~ N(0, I), z2 ~ p(z2 | z1)), or "aggregate", the
        distribution of the training codes fitted after training (``fit_prior``; stored in the
        checkpoint folder, see seqvae.priors). A conditional model samples p(x | z, y) under
        ``condition`` ({"logp": 3.0, "qed": 0.8}; conditions not named take the training
        mean).

        Returns columns SMILES (canonical where valid), NLL (-log p(x|z), nats) and valid; for
        text models text and NLL. unique=True keeps only valid molecules (any sentence), each
        once, and draws until it has n of them or has drawn max_tries * n codes; valid=True
        keeps the valid ones, repeats included (the distribution's own share of each). Either
        way the table's ``attrs`` hold "drawn" (codes decoded) and "valid_drawn" (how many of
        them were valid: valid_drawn / drawn is the validity before anything was dropped).
        novelty=True adds what needs the training data where the domain has it (text: novel,
        True where no training sentence is the same). triage=True (molecules) adds score's
        triage columns: novel and nn_similarity against the training file (or ``reference``),
        QED, SA, MW, logP, filters, alert (seqvae.scoring).

        index_temperature (SELFIES models): the temperature of the index symbols that follow a
        ring or branch symbol ([Ring1][=Branch1] closes a ring to the 6th atom back), 0 for
        the most likely one; None: ``temperature``, as every other token. An index one off
        still decodes to a valid molecule, with a ring one atom too small or too large, so a
        SELFIES model's sampling errors there are kept, not filtered out as invalid.

        syntax=True (SMILES models): each token is drawn among those that keep the string
        SMILES (seqvae.model.syntax: ring bonds closed, branches balanced, no bond without an
        atom after it), the model's probabilities renormalised over them. Strings that break
        only syntax become molecules; valence and aromaticity errors remain, and are counted
        invalid as before. NLL stays the model's own.

        strict=True (SELFIES models): a drawn string counts only if it is the string SELFIES
        writes for the molecule it decodes to, as every training string is; one the SELFIES
        decoder had to repair (a bond order over the free valence, a ring closure or branch on
        a saturated atom, symbols after the molecule ended) is invalid, its SELFIES string in
        the SMILES column. SELFIES turns a model's mistakes into molecules unlike its training
        data; strict=True hands them back as the errors they are (README, "Strict SELFIES", for
        what it changes on the shipped models), and unique=True then draws until n molecules
        remain.

        guidance=w > 0 (a conditional model): classifier-free guidance toward ``condition``,
        each token drawn from logits + w * (logits - logits at the training mean): the samples
        follow a condition far from the mean more closely, at some cost in validity (README,
        "Conditional generation", for what it does on the shipped recipe). 0: the model
        itself.
        """
        n = _integer("n", n, 0)
        max_tries = _integer("max_tries", max_tries, 1)
        batch_size = _integer("batch_size", batch_size, 1)
        check_sampling(temperature, top_k, top_p, greedy, index_temperature, guidance)
        if guidance:
            self._guidable()
        if index_temperature is not None:
            self._announces()  # refused before anything is drawn on a model without SELFIES
        if syntax:
            self._syntax()  # refused before anything is drawn on a model without SMILES
        if strict:
            self._strict()  # refused before anything is drawn on a model without SELFIES
        draw = self._prior_sampler(prior)
        bad = [k for k, v in (condition or {}).items()
               if isinstance(v, bool) or not isinstance(v, (int, float, str))]
        if bad:
            raise DataError(f"sample: condition {bad} must be a number (a property) or a name "
                            "(a category) each; decode() takes one value per code")
        self.condition(1, condition)  # checked (and warned about) once
        from tqdm.auto import tqdm
        generator = self._generator(seed)
        sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                        index_temperature=index_temperature, syntax=bool(syntax),
                        strict=bool(strict), guidance=guidance)
        key = self.domain.column
        tables, kept, drawn, valid_drawn = [], 0, 0, 0
        keep = unique or valid
        bar = tqdm(total=n, desc="sampling", unit=self.domain.unit, disable=not progress)
        seen: set[str] = set()
        while kept < n and drawn < (max_tries * n if keep else n):
            size = min(batch_size, (n - kept) if not keep else batch_size)
            z = draw(size, generator)
            with warnings.catch_warnings():  # warned once, above
                warnings.simplefilter("ignore")
                given = self.condition(size, condition)
            strings, nll = self._decode_raw(z, batch_size, generator, given, **sampling)
            table = self.domain.table(strings, nll)
            drawn += size
            usable = self.domain.usable(table)
            valid_drawn += int(usable.sum())
            if unique:
                fresh = [bool(ok) and s not in seen for s, ok in zip(table[key], usable)]
                table = table[fresh].drop_duplicates(key)
                seen.update(table[key])
            elif valid:
                table = table[usable.to_numpy(dtype=bool)]
            if keep:
                table = table.iloc[:n - kept]
            tables.append(table)
            bar.update(len(table))
            kept += len(table)
        bar.close()
        table = (pd.concat(tables, ignore_index=True) if tables
                 else self.domain.table([], []))
        if novelty:
            table = self.domain.annotate_samples(table, self.config, self.tokenizer)
        if triage:
            from .scoring import triage_columns
            extra = triage_columns(self, list(table[key]), reference, progress)
            table = pd.concat([table.reset_index(drop=True),
                               extra.drop(columns=[c for c in extra if c in table])], axis=1)
        table.attrs.update(drawn=drawn, valid_drawn=valid_drawn)
        return table

    # -- the aggregate prior ----------------------------------------------------------------
    def _prior_sampler(self, prior: str):
        if prior not in PRIORS:
            raise DataError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if prior == "standard":
            return lambda size, generator: self.model.sample_prior(size, generator, self.device)
        mixture = self.aggregate_prior()
        return lambda size, generator: mixture.sample(size, generator, self.device)

    def aggregate_prior(self) -> GaussianMixture:
        """The aggregate prior: the one fitted in this session, else the one stored in the
        checkpoint folder (checked to belong to these weights); CheckpointError says how to
        fit one when there is none."""
        if self._aggregate is None:
            if self.path is None:
                raise CheckpointError("this model has no aggregate prior yet and no checkpoint "
                                      "folder to read one from; call fit_prior() first")
            from .priors import load_prior
            self._aggregate, _ = load_prior(self.path, self.latent_dim)
        return self._aggregate

    def fit_prior(self, strings: Sequence[str] | None = None, n: int = DEFAULT_CODES,
                  components: int = DEFAULT_COMPONENTS, seed: int = 0, save: bool = True,
                  batch_size: int = 1000) -> GaussianMixture:
        """Fit the aggregate prior to codes z ~ q(z|x) of n training sequences (drawn at random
        from ``strings``, or from the model's own training data, config data.train), as a
        full-covariance Gaussian (components=1) or a mixture; with save, store it in the
        checkpoint folder (prior.safetensors + prior.json). Sequences the model cannot encode
        are skipped and counted in prior.json."""
        codes, info = self.codes_for(strings, n, seed, batch_size)
        return self.fit_prior_to(codes, components=components, seed=seed, save=save, info=info)

    def codes_for(self, strings: Sequence[str] | None = None, n: int = DEFAULT_CODES,
                  seed: int = 0, batch_size: int = 1000) -> tuple[torch.Tensor, dict[str, Any]]:
        """Codes z ~ q(z|x) (N, D), on the CPU, of n sequences drawn at random (seed) from
        ``strings``, or from the model's own training data (config data.train), and where they
        came from: source, sequences drawn, skipped (those the model cannot encode)."""
        n = _integer("n", n, 2)
        if not self.model.config.use_latent:
            raise DataError("a model without a latent space (model.use_latent = false) has no "
                            "prior to fit")
        source = "given strings"
        if strings is None:
            strings, source = self._training_strings()
        strings = list(strings)
        rng = np.random.default_rng(seed)
        if len(strings) > n:
            strings = [strings[i] for i in np.sort(rng.choice(len(strings), n, replace=False))]
        encoded = self._encode_all(strings)
        ids = [x for x, reason in encoded if reason is None]
        if len(ids) < 2:
            raise DataError(f"only {len(ids)} of {len(strings)} sequences can be encoded by "
                            f"this model: too few to fit a prior")
        codes = self.codes_of(ids, sample=True, seed=seed, batch_size=batch_size)
        return codes, {"source": source, "sequences": len(strings),
                       "skipped": len(strings) - len(ids)}

    def fit_prior_to(self, codes: torch.Tensor, components: int = DEFAULT_COMPONENTS,
                     seed: int = 0, save: bool = True,
                     info: dict[str, Any] | None = None) -> GaussianMixture:
        """Fit the aggregate prior to codes already computed (N, D), as fit_prior does."""
        from .priors import fit_mixture, save_prior
        mixture = fit_mixture(codes, components=components, seed=seed)
        self._aggregate = mixture
        if save:
            if self.path is None:
                raise CheckpointError("this model has no checkpoint folder to store the prior "
                                      "in; pass save=False")
            save_prior(self.path, mixture, {
                **(info or {}), "codes": len(codes), "seed": seed,
                "fitted_to": "z ~ q(z|x) of training sequences" if self.model.config.variational
                             else "codes of training sequences",
                "mean_log_prob_per_dim": float(mixture.log_prob(codes).mean()) / codes.shape[1]})
        return mixture

    @torch.no_grad()
    def codes_of(self, ids: Sequence[Sequence[int]], sample: bool = True, seed: int | None = None,
                 batch_size: int = 1000, conditions: torch.Tensor | None = None) -> torch.Tensor:
        """Codes of token-id sequences (BOS..EOS), on the CPU: one z ~ q(z|x) each with sample,
        else mu; a conditional model's under ``conditions`` (N, C), else the training mean."""
        codes, _ = self._posterior([list(map(int, x)) for x in ids], batch_size,
                                   None if conditions is None else conditions.to(self.device),
                                   self._generator(seed) if sample else None, sample)
        return codes.cpu()

    def _training_strings(self) -> tuple[list[str], str]:
        from .data import read_strings, resolve_data
        spec = self.config.data.train
        try:
            path = resolve_data(spec)
        except SeqVAEError as error:
            raise DataError(f"the model's training data ({spec}) is not available here "
                            f"({error}); pass the sequences to fit on: fit_prior(strings)") from None
        if not path.is_file():
            raise DataError(f"the model's training data ({spec}: {path}) is not here; pass the "
                            f"sequences to fit on: fit_prior(strings) or seqvae fit-prior "
                            f"MODEL --data FILE")
        return read_strings(path, self.config.data.csv_column), str(spec)

    def reconstruct(self, strings: Sequence[str], greedy: bool = True, sample_z: bool = False,
                    batch_size: int = 1000, seed: int | None = None, standardize: bool = False,
                    keep_stereo: bool = True) -> pd.DataFrame:
        """Encode and decode each string; columns input, reconstruction, exact (and valid).
        With standardize (see encode) also the standardized column, what was encoded and what
        exact compares the reconstruction with."""
        read = self.standardized(strings, standardize, keep_stereo)
        z = self.encode(read, sample=sample_z, batch_size=batch_size, seed=seed)
        if isinstance(z, tuple):
            z = z[0]
        # a conditional model decodes each molecule under its own properties
        out = self.decode(z, greedy=greedy, batch_size=batch_size, seed=seed,
                          condition=self.conditions_of(read))
        table = pd.DataFrame({"input": list(strings), "reconstruction": out})
        if standardize:
            table.insert(1, "standardized", read)
        for name, values in self.domain.same(read, out, self.tokenizer).items():
            table[name] = values
        return table

    def score(self, strings: Sequence[str], k: int = 32, seed: int = 0, batch_size: int = 64,
              standardize: bool = False, keep_stereo: bool = True, triage: bool = True,
              reference: Sequence[str] | str | Path | None = None,
              progress: bool = False, condition: dict[str, Any] | None = None) -> pd.DataFrame:
        """Per input, in order: -ELBO with its reconstruction and KL terms, the
        importance-weighted NLL with k codes, bits per character; for molecules (triage) the
        canonical SMILES, novelty and nearest-neighbour Tanimoto similarity to the training
        set (or ``reference``: SMILES or a file), QED, SA, MW, logP, the MOSES filters and the
        alert that fails them. A row the model cannot read gets NaN scores and its reason;
        none is dropped. A conditional model scores p(x | y): under ``condition`` ({name: one
        value or one per input}, as sample takes it) or, without, each molecule's own
        properties and an unknown category. See seqvae.scoring for each column."""
        from .scoring import score
        return score(self, strings, k=k, seed=seed, batch_size=batch_size,
                     standardize=standardize, keep_stereo=keep_stereo, triage=triage,
                     reference=reference, progress=progress, condition=condition)

    def anomaly_scores(self, strings: Sequence[str], score: str = "bits_per_char", k: int = 32,
                       seed: int = 0, **options: Any) -> np.ndarray:
        """How unusual each input is to this model (higher: more): bits_per_char (default),
        iw_nll, neg_elbo, or for molecules nn_distance (1 - nearest training similarity);
        NaN where the model cannot read the row. See seqvae.scoring."""
        from .scoring import anomaly_scores
        return anomaly_scores(self, strings, score, k, seed, **options)

    def anomaly_detector(self, normal: Sequence[str], fpr: float = 0.05,
                         score: str = "bits_per_char", k: int = 32, seed: int = 0,
                         **options: Any):
        """An AnomalyDetector whose threshold flags a share fpr of ``normal``, held-out data
        of the training distribution; its flag(model, strings) marks rows above it and rows
        the model cannot read."""
        from .scoring import AnomalyDetector
        return AnomalyDetector.calibrate(self, normal, fpr, score, k, seed, **options)

    def training_sentences(self) -> frozenset[str] | None:
        """The training sentences of a text model, as its tokenizer reads them, to flag
        samples that copy one verbatim; None for molecules or when the file is not here."""
        return self.domain.training_strings(self.config, self.tokenizer)

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
        table = self.domain.table(self.decode(z, greedy=greedy))
        table.insert(0, "t", t.cpu().numpy())
        return table

    def vary_condition(self, molecule: str, name: str, values: Sequence[float],
                       greedy: bool = True) -> pd.DataFrame:
        """A conditional model's decodes of one molecule's code (its posterior mean, read under
        its own properties) with the condition ``name`` set to each of ``values`` and the
        others kept at the molecule's own: the same scaffold moving along the property.
        Columns: the requested value, the decoded molecule, valid, and the property achieved."""
        if name not in self.condition_names:
            raise DataError(f"vary_condition: {name!r} is not a condition of this model ("
                            + (", ".join(self.condition_names) or "it has none") + ")")
        values = [float(v) for v in values]
        if not values:
            raise DataError("vary_condition: give at least one value")
        mu, _ = self.encode([molecule])
        own = self.conditions_of([molecule]).expand(len(values), -1).clone()
        column = self.condition_names.index(name)
        own[:, column] = torch.tensor(values, device=own.device)
        self.condition(len(values), {name: own[:, column]})  # warns outside the training range
        table = self.domain.table(self.decode(mu.expand(len(values), -1), greedy=greedy,
                                              condition=own))
        table.insert(0, name, values)
        achieved = self.conditions_of([s if ok else "" for s, ok in zip(
            table[self.domain.column], table["valid"])])[:, column].cpu().numpy()
        table[f"{name}_achieved"] = np.where(table["valid"], achieved, np.nan)
        return table

    # -- outputs ----------------------------------------------------------------------------
    def summary(self, table: pd.DataFrame) -> dict[str, float]:
        """Headline figures of a table of generated strings (molecules: valid, unique among
        valid; text: unique, and novel when sampled with novelty=True)."""
        return self.domain.summary(table)

    def draw(self, table: pd.DataFrame, path: str | Path,
             legends: Sequence[str] | None = None) -> Path | None:
        """A picture of a table's usable rows (molecules: a PNG grid of the valid ones, with
        their NLL or interpolation step as legends unless given); None where the domain
        draws none."""
        if legends is None:
            usable = table[self.domain.usable(table)]
            if "t" in usable:
                legends = [f"t={t:.2f}" for t in usable["t"]]
            else:
                legends = self.domain.sample_legends(table) or None
        return self.domain.draw(table, path, legends)

    def write(self, table: pd.DataFrame, path: str | Path, picture: bool = True) -> Path | None:
        """Write a table as CSV at path and, with picture, its drawing beside it (same name,
        .png); returns the picture's path, or None."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
        return self.draw(table, out.with_suffix(".png")) if picture and len(table) else None


def load(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a trained model: a checkpoint or run folder, or the name of a model shipped with
    seqvae ("moses-smiles", "moses-selfies"; seqvae.pretrained.available() lists them)."""
    from .checkpoint import load_checkpoint
    from .pretrained import resolve
    from .runtime import resolve_device

    model, tokenizer, config, directory = load_checkpoint(resolve(path),
                                                          device=resolve_device(str(device)))
    return TrainedModel(model, tokenizer, config, directory)
