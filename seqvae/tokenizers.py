"""Tokenizers on Hugging Face ``tokenizers``: atom-level SMILES and SELFIES, and word-level
and BPE tokenizers for English sentences.

Molecules:

Each tokenizer wraps one ``tokenizers.Tokenizer`` (``.hf``) built as a ``WordLevel`` model
behind a ``Split(Regex(pattern), behavior="isolated")`` pre-tokenizer, a ``Fuse`` decoder
(tokens joined with nothing between them, so decoding gives the input back) and a
``TemplateProcessing`` post-processor that adds ``<bos>`` and ``<eos>``. The four special
tokens ``<pad> <bos> <eos> <unk>`` have ids 0, 1, 2, 3 in every tokenizer.

Each pattern ends in a catch-all, so every character of any input lands in some token: a
round trip never drops characters silently, and characters the vocabulary has not seen
become ``<unk>`` (or an error with ``strict=True``).

A tokenizer is saved as one plain ``tokenizer.json`` that ``tokenizers.Tokenizer.from_file``
also loads. That loader rejects unknown top-level keys, so the kind is not stored in the
file: ``load_tokenizer`` reads it back from the file's structure. The model must be
``WordLevel`` and the pre-tokenizer a ``Split`` whose regex is exactly the ``pattern`` of one
class in ``TOKENIZERS`` (``SMILES_PATTERN`` -> ``"smiles"``, ``SELFIES_PATTERN`` ->
``"selfies"``). ``load_tokenizer(path, kind=...)`` overrides the detection, e.g. for a file
written by another tool or with an older pattern.

The four special strings are registered as special tokens, so if they appear literally in an
input string they are read as those tokens.

Text: both text tokenizers read raw text as people write it. Their normalizer (stored in
tokenizer.json, so training, new input and decoding all go through the same steps) applies
Unicode NFKC (``ﬁ`` -> ``fi``, full-width -> ASCII), turns control characters into spaces
and drops invisible format characters (soft hyphens, zero-width spaces), and optionally
lower-cases and maps every number (``3``, ``3.14``, ``1,000``) to the one token ``<num>``.

``WordTokenizer`` (kind ``"word"``) has two ways to split words (``split``):

- ``"punctuation"`` (the default, for raw text): a ``Metaspace`` pre-tokenizer marks each word
  that follows a space with ``▁``, then a ``Split`` on ``WORD_PATTERN`` cuts punctuation from
  words (``"house,"`` -> ``▁house`` ``,``), English clitics from their word (``isn't`` ->
  ``▁isn`` ``'t``) and keeps numbers whole. The ``Metaspace`` decoder puts the text back as
  people write it: ``"isn't it?"``, not ``"isn ' t it ?"``; an unknown word reads as
  `` <unk>`` with a space before it.
- ``"whitespace"``: for corpora already tokenized (Brown: punctuation stands apart), split on
  whitespace only and join with single spaces when decoding, as before.

Either keeps the most frequent words, capped by count (``max_vocab``) and/or by frequency
(``min_frequency``); every other word reads as ``<unk>``. ``BpeTokenizer`` (kind ``"bpe"``)
learns byte-pair merges on the training split behind a ``Metaspace`` pre-tokenizer, so
decoding gives the spacing back, and falls back to UTF-8 byte tokens (``<0xE6>``) for any
character its training text lacked, so text -> tokens -> text is exact for any input the
normalizer leaves unchanged (its spacing included; only spaces at either end go). Both are
trained by ``tokenizers``' own trainers and saved as one ``tokenizer.json``;
``load_tokenizer`` tells them apart by model type (``WordLevel`` behind ``WhitespaceSplit`` or
the ``Metaspace`` + ``Split`` sequence, or ``BPE``); files written before the normalizer
existed load and behave as they did.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from tokenizers import (Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers,
                        processors, trainers)

from seqvae.config import TEXT_SPLITS
from seqvae.errors import TokenizerError

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)

# Written so that Python's `re` and the Oniguruma engine inside `tokenizers` split alike
# (the tests check this); `[\s\S]` rather than `.` so that newlines are tokens too.
SMILES_PATTERN: str = "|".join(
    [
        r"\[[^\[\]]+\]",  # bracket atom: isotope, element, chirality @, H count, charge, class
        r"Br|Cl",  # the two-letter elements of the organic subset
        r"%\([0-9]+\)|%[0-9]{2}",  # ring-closure numbers above 9: %(123) and %12
        # Every other token is one character: B C N O P S F I, aromatic b c n o p s, a ring
        # digit, a bond - = # $ : / \, a branch ( ), the dot, *; anything unexpected too.
        r"[\s\S]",
    ]
)
SELFIES_PATTERN: str = r"\[[^\[\]]+\]|[\s\S]"  # one token per [symbol]; the dot and strays alone

# Raw text, after Metaspace has marked each word that follows a space with "▁" (Oniguruma
# syntax, run inside `tokenizers`): an English clitic ('s 't 're 've 'm 'll 'd), the number
# token, a run of letters (with their combining marks), a number with its decimal or
# thousands separators, one punctuation mark or symbol (repeats such as "..." or "--" kept
# together), or a lone space marker. Every character lands in some piece.
WORD_PATTERN: str = "|".join(
    [
        r"['’](?i:s|t|re|ve|m|ll|d)(?!\p{L})",
        r"▁?<num>",
        r"▁?[\p{L}\p{M}]+",
        r"▁?\p{N}+(?:[.,]\p{N}+)*",
        r"▁?([^\s▁\p{L}\p{M}\p{N}])\1*",
        r"▁",
    ]
)
NUMBER_PATTERN: str = r"\p{N}+(?:[.,]\p{N}+)*"  # what numbers_as_token maps to NUM
NUM = "<num>"
BYTE_TOKENS: tuple[str, ...] = tuple(f"<0x{i:02X}>" for i in range(256))  # BPE's byte fallback

_SMILES_RE = re.compile(SMILES_PATTERN)
_SELFIES_RE = re.compile(SELFIES_PATTERN)
_MAX_SHOWN = 200  # characters of an input quoted in an error message


def split_smiles(smiles: str) -> list[str]:
    """Split a SMILES string into atom-level tokens; ``"".join`` of them gives it back."""
    return _SMILES_RE.findall(smiles)


def split_selfies(selfies: str) -> list[str]:
    """Split a SELFIES string into one token per ``[...]`` symbol; ``"".join`` gives it back."""
    # Not selfies.split_selfies: it drops characters outside brackets ("garbage" -> []).
    return _SELFIES_RE.findall(selfies)


def min_model_tokens(smiles: str | list[str], representation: str) -> int:
    """A cheap lower bound on how many tokens a SMILES string (or its ``split_smiles``
    tokens) becomes in a model's representation, to turn away over-long input before RDKit
    or the SELFIES encoder spend seconds on it: exact for "smiles" (its token count); for
    "selfies" its number of atoms (bracket atoms, organic-subset letters, ``*``), as every
    atom is one SELFIES symbol."""
    tokens = split_smiles(smiles) if isinstance(smiles, str) else smiles
    if representation == "smiles":
        return len(tokens)
    return sum(1 for token in tokens if token[0] == "[" or token[0].isalpha() or token == "*")


_SURROGATES = re.compile("[\ud800-\udfff]")


def _scalar_values(text: str) -> str:
    """``text`` with any lone surrogate (a Python string that is not valid Unicode, e.g. read
    with errors="surrogateescape") replaced by U+FFFD, one character for one, so offsets
    still match; ``tokenizers`` refuses such strings."""
    return _SURROGATES.sub("\ufffd", text)


def _shown(text: str) -> str:
    """Quote an input for an error message, cut short if long."""
    return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...")


def _check_max_vocab(max_vocab: int | None) -> None:
    """Refuse a vocabulary cap that leaves no room beyond the special tokens."""
    if max_vocab is not None and max_vocab <= len(SPECIAL_TOKENS):
        raise TokenizerError(
            f"max_vocab={max_vocab} leaves no room beyond the {len(SPECIAL_TOKENS)} "
            "special tokens; pass a larger value or None"
        )


class SequenceTokenizer:
    """A regex pre-tokenizer plus a word-level vocabulary, wrapping a Hugging Face tokenizer."""

    kind: ClassVar[str]
    pattern: ClassVar[str]
    pad_id: ClassVar[int] = 0
    bos_id: ClassVar[int] = 1
    eos_id: ClassVar[int] = 2
    unk_id: ClassVar[int] = 3

    def __init__(self, hf: Tokenizer) -> None:
        """Wrap ``hf``, whose vocabulary must hold the special tokens at ids 0..3."""
        for expected_id, token in enumerate(SPECIAL_TOKENS):
            if hf.token_to_id(token) != expected_id:
                raise TokenizerError(
                    f"the tokenizer's vocabulary must hold {token!r} at id {expected_id} "
                    f"(found {hf.token_to_id(token)}); build it with {type(self).__name__}.build()"
                )
        # Set here rather than only in build() so a file loaded with kind= behaves the same.
        hf.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A {EOS}",
            special_tokens=[(BOS, self.bos_id), (EOS, self.eos_id)],
        )
        self.hf = hf
        vocab = hf.get_vocab(with_added_tokens=True)
        self._tokens: list[str] = sorted(vocab, key=vocab.__getitem__)
        if [vocab[t] for t in self._tokens] != list(range(len(self._tokens))):
            raise TokenizerError("the tokenizer's vocabulary ids must be 0..n-1 with no gaps")
        self._vocab: dict[str, int] = {token: i for i, token in enumerate(self._tokens)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

    @classmethod
    def build(
        cls, corpus: Iterable[str], min_frequency: int = 1, max_vocab: int | None = None
    ) -> SequenceTokenizer:
        """Build from strings in the model's representation; ids by descending count, then token."""
        _check_max_vocab(max_vocab)
        regex = re.compile(cls.pattern)
        counts: Counter[str] = Counter()
        for text in corpus:
            counts.update(regex.findall(text))
        return cls.from_counts(counts, min_frequency, max_vocab)

    @classmethod
    def from_counts(
        cls, counts: Mapping[str, int], min_frequency: int = 1, max_vocab: int | None = None
    ) -> SequenceTokenizer:
        """``build`` from token counts already taken (token -> occurrences), e.g. while a
        large file was checked a chunk at a time."""
        _check_max_vocab(max_vocab)
        counts = Counter(counts)
        for token in SPECIAL_TOKENS:
            counts.pop(token, None)
        ranked = sorted(
            (token for token, n in counts.items() if n >= min_frequency),
            key=lambda token: (-counts[token], token),
        )
        if max_vocab is not None:
            ranked = ranked[: max_vocab - len(SPECIAL_TOKENS)]
        if not ranked:
            raise TokenizerError(
                f"no {cls.kind} token occurs at least {min_frequency} time(s) in the corpus; "
                "pass a non-empty corpus or a lower min_frequency"
            )
        vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *ranked])}
        hf = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
        hf.pre_tokenizer = pre_tokenizers.Split(Regex(cls.pattern), behavior="isolated")
        hf.decoder = decoders.Fuse()
        hf.add_special_tokens(list(SPECIAL_TOKENS))
        return cls(hf)

    def extended(self, tokens: Iterable[str]) -> SequenceTokenizer:
        """This tokenizer with ``tokens`` it lacks appended, each existing id unchanged (a
        fine-tuned model's vocabulary grown for a new series, seqvae.model.grow_vocabulary)."""
        if not self.pattern:
            raise TokenizerError(f"a {self.kind} tokenizer cannot be extended token by token "
                                 "(its vocabulary is learned with its merges or words)")
        new = [t for t in dict.fromkeys(tokens) if t not in self._vocab]
        vocab = {token: i for i, token in enumerate([*self._tokens, *new])}
        hf = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
        hf.pre_tokenizer = pre_tokenizers.Split(Regex(self.pattern), behavior="isolated")
        hf.decoder = decoders.Fuse()
        hf.add_special_tokens(list(SPECIAL_TOKENS))
        return type(self)(hf)

    @property
    def vocab_size(self) -> int:
        """Number of tokens, the four special ones included."""
        return len(self._tokens)

    @property
    def vocab(self) -> dict[str, int]:
        """A copy of the vocabulary, token -> id, in id order."""
        return dict(self._vocab)

    def id_to_token(self, i: int) -> str:
        """The token with id ``i``."""
        if not 0 <= i < len(self._tokens):
            raise TokenizerError(
                f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})"
            )
        return self._tokens[i]

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into the pieces ``encode`` maps to ids, unknown ones included."""
        encoding = self._encode(text, add_special=False)
        return [text[start:end] for start, end in encoding.offsets]

    def _encode(self, text: str, add_special: bool) -> Any:
        """``tokenizers``' encoding of ``text``; a string holding lone surrogates is read with
        U+FFFD in their place, anything but a string is refused with a clear error."""
        if not isinstance(text, str):
            raise TokenizerError(f"a {self.kind} tokenizer encodes strings, not "
                                 f"{type(text).__name__} ({_shown(repr(text))})")
        try:
            return self.hf.encode(text, add_special_tokens=add_special)
        except TypeError:
            return self.hf.encode(_scalar_values(text), add_special_tokens=add_special)

    def unknown_tokens(self, text: str) -> list[str]:
        """The distinct tokens of ``text`` missing from the vocabulary, in order of appearance."""
        return self._unknown(text, self._encode(text, add_special=False))

    def _unknown(self, text: str, encoding: Any) -> list[str]:
        """Distinct unknown pieces of ``text`` according to its ``encoding``."""
        found = (
            text[start:end]
            for i, (start, end) in zip(encoding.ids, encoding.offsets)
            if i == self.unk_id
        )
        return list(dict.fromkeys(found))

    def _check_known(self, text: str, encoding: Any) -> None:
        """Raise if ``encoding`` of ``text`` holds any unknown token."""
        if self.unk_id in encoding.ids:
            unknown = ", ".join(repr(t) for t in self._unknown(text, encoding))
            raise TokenizerError(
                f"token(s) {unknown} of {_shown(text)} are not in the {self.kind} vocabulary; "
                "rebuild the tokenizer on a corpus that holds them, or pass strict=False to "
                f"map them to {UNK}"
            )

    def encode(self, text: str, add_special: bool = True, strict: bool = False) -> list[int]:
        """Token ids of ``text``, wrapped in BOS/EOS; ``strict`` raises on unknown tokens."""
        encoding = self._encode(text, add_special)
        if strict:
            self._check_known(text, encoding)
        return encoding.ids

    def encode_batch(
        self, texts: Sequence[str], add_special: bool = True, strict: bool = False
    ) -> list[list[int]]:
        """``encode`` over many strings at once, in parallel inside ``tokenizers``."""
        texts = list(texts)
        try:
            encodings = self.hf.encode_batch(texts, add_special_tokens=add_special)
        except TypeError:  # a lone surrogate, or something that is not a string
            encodings = [self._encode(text, add_special) for text in texts]
        if strict:
            for text, encoding in zip(texts, encodings):
                self._check_known(text, encoding)
        return [encoding.ids for encoding in encodings]

    def _kept_ids(self, ids: Any, skip_special: bool) -> list[int]:
        """Ids to render: up to the first EOS, without BOS/PAD, when ``skip_special``."""
        values = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        if values and isinstance(values[0], (list, tuple)):
            raise TokenizerError(
                "decode() takes one sequence of ids (a list or a 1-D tensor/array); "
                "use decode_batch() for a batch"
            )
        if values and (min(values) < 0 or max(values) >= len(self._tokens)):
            bad = [i for i in values if not 0 <= i < len(self._tokens)]
            raise TokenizerError(
                f"token id(s) {bad[:10]} are outside the vocabulary (0..{self.vocab_size - 1}); "
                "were these ids made with another tokenizer?"
            )
        if not skip_special:
            return values
        if self.eos_id in values:
            values = values[: values.index(self.eos_id)]
        # PAD and BOS are the only ids below EOS, which is gone now.
        return [i for i in values if i > self.eos_id]

    def decode(self, ids: Any, skip_special: bool = True) -> str:
        """The string of ``ids``; stops at the first EOS and drops BOS/PAD unless told not to."""
        # skip_special_tokens=False in HF: the ids are already filtered, and <unk> must show.
        return self.hf.decode(self._kept_ids(ids, skip_special), skip_special_tokens=False)

    def decode_batch(self, batch: Any, skip_special: bool = True) -> list[str]:
        """``decode`` over each row of a 2-D tensor/array or a list of id lists."""
        rows = batch.tolist() if hasattr(batch, "tolist") else list(batch)
        kept = [self._kept_ids(row, skip_special) for row in rows]
        return self.hf.decode_batch(kept, skip_special_tokens=False)

    def to_model_string(self, smiles_or_text: str) -> str:
        """The string in this tokenizer's representation (identity for SMILES)."""
        return smiles_or_text

    def from_model_string(self, s: str) -> str:
        """The SMILES or text of a string in this tokenizer's representation (identity here)."""
        return s

    def save(self, path: str | Path) -> None:
        """Write one ``tokenizer.json``: at ``path`` if it ends in ``.json``, else inside it."""
        path = Path(path)
        if path.is_dir() or path.suffix != ".json":
            path = path / "tokenizer.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.hf.save(str(path), pretty=True)


class SmilesTokenizer(SequenceTokenizer):
    """Atom-level SMILES tokenizer (bracket atoms, Cl/Br, %NN ring closures as single tokens)."""

    kind = "smiles"
    pattern = SMILES_PATTERN


class SelfiesTokenizer(SequenceTokenizer):
    """SELFIES tokenizer, one token per ``[...]`` symbol; converts to and from SMILES."""

    kind = "selfies"
    pattern = SELFIES_PATTERN

    def to_model_string(self, smiles_or_text: str) -> str:
        """SMILES -> SELFIES (seqvae.chem.smiles_to_selfies)."""
        from seqvae.chem import smiles_to_selfies  # chemistry is imported only where it is used

        converted = smiles_to_selfies(smiles_or_text)
        if converted is None:
            raise TokenizerError(
                f"cannot convert SMILES {_shown(smiles_or_text)} to SELFIES; "
                "check that it is a valid SMILES string"
            )
        return converted

    def from_model_string(self, s: str) -> str:
        """SELFIES -> SMILES (seqvae.chem.selfies_to_smiles); "" if it cannot be decoded."""
        from seqvae.chem import selfies_to_smiles

        return selfies_to_smiles(s) or ""


def text_normalizer(lowercase: bool = False, numbers_as_token: bool = False,
                    collapse_spaces: bool = False) -> Any:
    """The text tokenizers' normalizer: NFKC, control characters to spaces, format characters
    (soft hyphen, zero-width space, BOM) dropped, then optionally lower case, every number as
    ``NUM`` and runs of whitespace as one space; no whitespace at either end."""
    steps = [normalizers.NFKC(), normalizers.Replace(Regex(r"\p{Cc}"), " "),
             normalizers.Replace(Regex(r"\p{Cf}"), "")]
    if lowercase:
        steps.append(normalizers.Lowercase())
    if numbers_as_token:
        steps.append(normalizers.Replace(Regex(NUMBER_PATTERN), NUM))
    if collapse_spaces:
        steps.append(normalizers.Replace(Regex(r"\s+"), " "))
    steps.append(normalizers.Strip())
    return normalizers.Sequence(steps)


def _steps(config: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The flat list of steps of a normalizer / pre-tokenizer entry of tokenizer.json."""
    if not config:
        return []
    if config.get("type") == "Sequence":
        inner = config.get("normalizers") or config.get("pretokenizers") or []
        return [step for entry in inner for step in _steps(entry)]
    return [config]


class _TextTokenizer(SequenceTokenizer):
    """What the word-level and BPE tokenizers share: trained by a ``tokenizers`` trainer on
    the training sentences behind the text normalizer; unknown words read as ``<unk>``."""

    pattern = ""  # no regex of seqvae's molecule kinds: the pre-tokenizer is built per kind
    default_vocab: ClassVar[int | None] = None

    def __init__(self, hf: Tokenizer) -> None:
        super().__init__(hf)
        config = json.loads(hf.to_str())
        self._normalizer_steps = [step.get("type") for step in _steps(config.get("normalizer"))]
        self._numbers = any(step.get("type") == "Replace" and step.get("content") == NUM
                            for step in _steps(config.get("normalizer")))
        pre = [step.get("type") for step in _steps(config.get("pre_tokenizer"))]
        self._split = "punctuation" if "Split" in pre else "whitespace"

    @classmethod
    def _model(cls, split: str) -> tuple[Any, Any, Any]:
        """(untrained model, pre-tokenizer, decoder) of this kind."""
        raise NotImplementedError

    @classmethod
    def _trainer(cls, vocab_size: int, min_frequency: int) -> Any:
        raise NotImplementedError

    @classmethod
    def _finish(cls, hf: Tokenizer) -> Tokenizer:
        """The trained tokenizer as stored (BPE adds its byte fallback here)."""
        return hf

    @classmethod
    def build(cls, corpus: Iterable[str], min_frequency: int = 1, max_vocab: int | None = None,
              lowercase: bool = False, split: str = "punctuation",
              numbers_as_token: bool = False) -> SequenceTokenizer:
        """Train on ``corpus`` (one sentence per string) as written: ``max_vocab`` counts the
        special tokens (None: this kind's default), ``min_frequency`` drops rarer words or
        merges, ``lowercase`` and ``numbers_as_token`` (every number as ``<num>``) join the
        normalizer; ``split`` (word level only) is "punctuation" for raw text or
        "whitespace" for text already tokenized (see the module docstring)."""
        if split not in TEXT_SPLITS:
            raise TokenizerError(f"unknown text split {split!r}; choose one of {TEXT_SPLITS}")
        max_vocab = max_vocab or cls.default_vocab
        _check_max_vocab(max_vocab)
        model, pre_tokenizer, decoder = cls._model(split)
        hf = Tokenizer(model)
        # word level sees words, so runs of spaces are one; BPE keeps the text's spacing
        hf.normalizer = text_normalizer(lowercase, numbers_as_token,
                                        collapse_spaces=cls.kind == "word")
        hf.pre_tokenizer = pre_tokenizer
        if decoder is not None:
            hf.decoder = decoder
        corpus = [_scalar_values(text) for text in corpus if text and not text.isspace()]
        if not corpus:
            raise TokenizerError(f"cannot build a {cls.kind} tokenizer from an empty corpus")
        trainer = cls._trainer(max_vocab or 2**31 - 1, min_frequency)
        hf.train_from_iterator(corpus, trainer, length=len(corpus))
        if hf.get_vocab_size(with_added_tokens=True) <= len(SPECIAL_TOKENS):
            raise TokenizerError(
                f"no {cls.kind} token occurs at least {min_frequency} time(s) in the corpus; "
                "pass a larger corpus or a lower min_frequency"
            )
        hf = cls._finish(hf)
        hf.add_special_tokens(list(SPECIAL_TOKENS))
        return cls(hf)

    @property
    def lowercase(self) -> bool:
        """Whether the tokenizer lower-cases its input."""
        return "Lowercase" in self._normalizer_steps

    @property
    def numbers_as_token(self) -> bool:
        """Whether every number reads as ``<num>``."""
        return self._numbers

    @property
    def split(self) -> str:
        """How words are split: "punctuation" (raw text) or "whitespace" (pre-tokenized)."""
        return self._split

    def words(self, text: str) -> list[str]:
        """The words of ``text`` that text metrics count (BLEU, distinct-n, per-word
        perplexity): the word-level pieces when punctuation is cut from words ("house," is
        two), else its whitespace-separated words."""
        if self.kind == "word" and self._split == "punctuation":
            return [piece.strip() for piece in self.tokenize(text) if not piece.isspace()]
        return text.split()


class WordTokenizer(_TextTokenizer):
    """Word-level tokenizer: raw text split into words, clitics and punctuation (decoded back
    as people write it), or pre-tokenized text split on whitespace; out-of-vocabulary words
    read as ``<unk>``."""

    kind = "word"

    @classmethod
    def _model(cls, split: str) -> tuple[Any, Any, Any]:
        model = models.WordLevel(unk_token=UNK)
        if split == "whitespace":
            # no decoder: tokenizers then joins tokens with one space, which is what words need
            return model, pre_tokenizers.WhitespaceSplit(), None
        pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated"),
        ])
        # an unknown word most often followed a space: give <unk> one when decoding
        decoder = decoders.Sequence([decoders.Replace(UNK, "▁" + UNK),
                                     decoders.Metaspace(replacement="▁", prepend_scheme="always",
                                                        split=True)])
        return model, pre_tokenizer, decoder

    @classmethod
    def _trainer(cls, vocab_size: int, min_frequency: int) -> Any:
        return trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                         special_tokens=list(SPECIAL_TOKENS), show_progress=False)


class BpeTokenizer(_TextTokenizer):
    """Byte-pair-encoding tokenizer trained on the training sentences; spaces are kept as
    the ``▁`` marker (``Metaspace``), so decoding restores the text's spacing, and characters
    the training text lacked fall back to UTF-8 byte tokens."""

    kind = "bpe"
    default_vocab = 8000

    @classmethod
    def _model(cls, split: str) -> tuple[Any, Any, Any]:
        decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace()])
        return models.BPE(unk_token=UNK), pre_tokenizers.Metaspace(), decoder

    @classmethod
    def _trainer(cls, vocab_size: int, min_frequency: int) -> Any:
        if vocab_size <= len(SPECIAL_TOKENS) + len(BYTE_TOKENS):
            raise TokenizerError(
                f"max_vocab={vocab_size} leaves no room for BPE merges beyond the "
                f"{len(SPECIAL_TOKENS)} special tokens and the {len(BYTE_TOKENS)} byte tokens "
                f"of its fallback; pass more than {len(SPECIAL_TOKENS) + len(BYTE_TOKENS)}")
        return trainers.BpeTrainer(vocab_size=vocab_size - len(BYTE_TOKENS),
                                   min_frequency=min_frequency,
                                   special_tokens=list(SPECIAL_TOKENS), show_progress=False)

    @classmethod
    def _finish(cls, hf: Tokenizer) -> Tokenizer:
        """Append the 256 byte tokens to the learned vocabulary and turn on byte fallback."""
        config = json.loads(hf.to_str())
        vocab = config["model"]["vocab"]
        for token in BYTE_TOKENS:
            vocab.setdefault(token, len(vocab))
        config["model"]["byte_fallback"] = True
        return Tokenizer.from_str(json.dumps(config))


TOKENIZERS: dict[str, type[SequenceTokenizer]] = {
    "smiles": SmilesTokenizer,
    "selfies": SelfiesTokenizer,
    "word": WordTokenizer,
    "bpe": BpeTokenizer,
}
TEXT_KINDS = ("word", "bpe")


def _detect_kind(config: dict[str, Any]) -> str | None:
    """The kind whose pattern the file's Split pre-tokenizer uses, or None."""
    model = config.get("model")
    pre_tokenizer = config.get("pre_tokenizer")
    if not isinstance(model, dict) or not isinstance(pre_tokenizer, dict):
        return None
    if model.get("type") == "BPE" and pre_tokenizer.get("type") == "Metaspace":
        return "bpe"
    if model.get("type") != "WordLevel":
        return None
    if pre_tokenizer.get("type") == "WhitespaceSplit":
        return "word"
    if [step.get("type") for step in _steps(pre_tokenizer)] == ["Metaspace", "Split"]:
        split = _steps(pre_tokenizer)[1]
        if (split.get("pattern") or {}).get("Regex") == WORD_PATTERN:
            return "word"
        return None
    if pre_tokenizer.get("type") != "Split":
        return None
    pattern = (pre_tokenizer.get("pattern") or {}).get("Regex")
    for kind, cls in TOKENIZERS.items():
        if cls.pattern and pattern == cls.pattern:
            return kind
    return None


def load_tokenizer(path: str | Path, kind: str | None = None) -> SequenceTokenizer:
    """Load a ``tokenizer.json`` (or a directory holding one); ``kind`` overrides detection."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise TokenizerError(f"no tokenizer file at {path}; pass a tokenizer.json or its directory")
    if kind is not None and kind not in TOKENIZERS:
        raise TokenizerError(f"unknown tokenizer kind {kind!r}; choose one of {sorted(TOKENIZERS)}")
    raw = path.read_bytes()
    if raw[:1] == b"\x80":
        raise TokenizerError(
            f"{path} looks like a pickle file; seqvae never unpickles, it reads tokenizers "
            "saved as a Hugging Face tokenizer.json"
        )
    try:
        text = raw.decode("utf-8")
        config = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TokenizerError(
            f"{path} is not valid JSON ({error}); expected a Hugging Face tokenizer.json"
        ) from error
    if not isinstance(config, dict) or "model" not in config:
        raise TokenizerError(
            f"{path} is JSON but not a Hugging Face tokenizer (no top-level 'model' entry)"
        )
    try:
        hf = Tokenizer.from_str(text)
    except Exception as error:  # tokenizers raises a bare Exception for a malformed file
        raise TokenizerError(f"{path} is not a valid Hugging Face tokenizer: {error}") from error
    detected = _detect_kind(config)
    if kind is None and detected is None:
        raise TokenizerError(
            f"cannot tell which kind of tokenizer {path} is: it is neither a WordLevel model "
            f"behind a Split pre-tokenizer with one of seqvae's patterns or behind "
            f"WhitespaceSplit, nor a BPE model behind Metaspace; pass kind= (one of "
            f"{sorted(TOKENIZERS)})"
        )
    return TOKENIZERS[kind or detected](hf)
