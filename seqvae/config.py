"""Dataclass configs with defaults owned by each component; TOML in and out; unknown keys refused.

A config file has up to three tables, ``[model]``, ``[data]`` and ``[train]``, each holding the
fields of the dataclass of that name. Any key not listed there is an error that names it.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError

RNN_CELLS = ("gru", "lstm")
NETWORKS = RNN_CELLS + ("transformer",)
MOLECULAR_REPRESENTATIONS = ("smiles", "selfies")
TEXT_REPRESENTATIONS = ("word", "bpe")
TEXT_SPLITS = ("punctuation", "whitespace")  # data.text_split: see seqvae.tokenizers
REPRESENTATIONS = MOLECULAR_REPRESENTATIONS + TEXT_REPRESENTATIONS
KL_SCHEDULES = ("constant", "linear", "logistic", "cyclical")
LR_SCHEDULES = ("auto", "cosine", "constant")
AUGMENTS = ("none", "encoder", "both")  # data.augment: see seqvae.augment
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# molecular properties a model can learn to predict from z (seqvae.search.objectives.NAMES)
PROPERTY_NAMES = ("qed", "logp", "sa", "plogp", "plogp_raw", "mw", "tpsa", "atoms")


@dataclass
class ModelConfig:
    """Architecture of a SequenceVAE. Vocabulary fields are filled in from the tokenizer."""

    vocab_size: int = 0
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    unk_id: int = 3
    max_length: int = 128  # longest sequence (tokens, BOS/EOS included) the model decodes

    embedding_dim: int = 64
    encoder: str = "gru"  # gru | lstm | transformer
    encoder_hidden: int = 256  # per direction for RNNs; d_model for the Transformer
    encoder_layers: int = 1
    bidirectional: bool = True
    encoder_dropout: float = 0.0

    latent_dim: int = 64  # size of the code z the decoder reads (both levels together)
    # 2: a hierarchical VAE (Sonderby et al. 2016, top-down): z = [z1, z2] with q(z1 | x),
    # q(z2 | x, z1), the prior p(z1) = N(0, I) and a learned p(z2 | z1); 1: one level
    latent_levels: int = 1
    # latent_levels = 2: the size of z2 (z1 has the rest of latent_dim); 0: half of latent_dim
    latent_dim_2: int = 0
    variational: bool = True  # False: deterministic autoencoder (z = mu, no KL)
    # BN-VAE (Zhu et al. 2020): > 0 batch-normalises the posterior means of z (z1) with this
    # fixed scale gamma and a learned shift, so each dimension's mean code varies across the
    # data by gamma and the KL cannot vanish (at least latent_dim * gamma^2 / 2 nats); 0: off
    mu_batchnorm: float = 0.0
    # a bag-of-words head: an MLP from z to the vocabulary that must predict the sequence's
    # tokens, in any order (Zhao et al. 2017), so z carries what the sequence says; its loss
    # (nats per sequence) is added with weight train.bow_weight
    bag_of_words: bool = False
    # False: a plain language model, the same decoder with no z (no encoder; z is zero)
    use_latent: bool = True

    decoder: str = "gru"  # gru | lstm | transformer
    decoder_hidden: int = 256
    decoder_layers: int = 1
    # RNN: on the input embeddings, the top layer's output and between layers; Transformer:
    # inside its layers
    decoder_dropout: float = 0.0
    # SELFIES: the decoder reads, beside each token, how many atoms the prefix has derived and
    # how many ring/branch index symbols are due (seqvae.model.counter): the index symbols
    # count atoms, which an RNN does poorly, and an index off by one is a wrong ring, not an
    # invalid string
    selfies_counter: bool = False
    # the role of each vocabulary token for selfies_counter (set by the trainer from the
    # tokenizer: seqvae.model.counter.selfies_roles)
    token_roles: list[int] = field(default_factory=list)
    z_to_input: bool = True  # RNN: concatenate z to the input of every step
    z_to_state: bool = True  # RNN: initial hidden state computed from z

    n_heads: int = 4  # Transformer encoder and decoder
    feedforward_dim: int = 512
    memory_tokens: int = 4  # Transformer decoder: z becomes this many memory vectors

    # Molecules: properties predicted from z by an MLP head trained jointly with the VAE
    # (Gomez-Bombarelli et al. 2018), comma-separated names of PROPERTY_NAMES ("qed,plogp");
    # empty: no head. The head then serves gradient ascent in seqvae.search.
    properties: str = ""
    property_hidden: int = 256
    # Molecules: a conditional VAE (Sohn et al. 2015; Lim et al. 2018 for molecules) on these
    # properties (comma-separated names of PROPERTY_NAMES, "logp,qed"), computed with RDKit for
    # every training molecule and standardised on the training split: the condition is read by
    # the encoder beside the sequence (q(z | x, y)) and given to the decoder beside z, at its
    # initial state and every step (p(x | z, y)), so z learns what the condition does not say.
    conditions: str = ""
    # the data's label columns the head learns too (data.label_columns; set by the trainer)
    labels: str = ""
    # a conditional model by category: data.condition_column and the training split's
    # categories (set by the trainer), given to encoder and decoder as a one-hot vector
    category_column: str = ""
    categories: list[str] = field(default_factory=list)

    @property
    def condition_width(self) -> int:
        """Numbers the condition adds to the encoder's summary and to z: one per property of
        model.conditions and one per category."""
        return len(self.condition_names) + len(self.categories)

    @property
    def latent_sizes(self) -> tuple[int, ...]:
        """The size of each level of z, in the order of the code: (latent_dim,) for one level,
        (size of z1, size of z2) for two, summing to latent_dim."""
        if self.latent_levels == 1:
            return (self.latent_dim,)
        second = self.latent_dim_2 or self.latent_dim // 2
        return (self.latent_dim - second, second)

    @property
    def label_names(self) -> list[str]:
        """The names in ``labels``, in order."""
        return [c.strip() for c in self.labels.split(",") if c.strip()]

    @property
    def head_names(self) -> list[str]:
        """What the joint property head predicts: model.properties, then the data's labels."""
        return self.property_names + self.label_names

    @property
    def property_names(self) -> list[str]:
        """The names in ``properties``, in order."""
        return [p.strip() for p in self.properties.split(",") if p.strip()]

    @property
    def condition_names(self) -> list[str]:
        """The names in ``conditions``, in order."""
        return [p.strip() for p in self.conditions.split(",") if p.strip()]

    @property
    def computed_properties(self) -> list[str]:
        """What the data must compute per molecule with RDKit: the head's properties, then the
        conditions the head does not already name (a condition that is a data label is read,
        not computed)."""
        names = self.property_names
        return names + [c for c in self.condition_names
                        if c not in names and c in PROPERTY_NAMES]

    def validate(self) -> None:
        """Raise ConfigError on values that cannot build a model."""
        _choice("model.encoder", self.encoder, NETWORKS)
        _choice("model.decoder", self.decoder, NETWORKS)
        for name in ("embedding_dim", "encoder_hidden", "encoder_layers", "latent_dim",
                     "decoder_hidden", "decoder_layers", "n_heads", "feedforward_dim",
                     "memory_tokens", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        self._validate_levels()
        for name in ("encoder_dropout", "decoder_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"model.{name} must be in [0, 1), got {getattr(self, name)}")
        unknown = [p for p in self.property_names if p not in PROPERTY_NAMES]
        if unknown:
            raise ConfigError(f"model.properties: unknown {', '.join(unknown)}; choose from "
                              f"{', '.join(PROPERTY_NAMES)}")
        if len(set(self.property_names)) != len(self.property_names):
            raise ConfigError(f"model.properties names a property twice: {self.properties!r}")
        unknown = [p for p in self.condition_names
                   if p not in PROPERTY_NAMES and p not in self.label_names]
        if unknown:
            raise ConfigError(f"model.conditions: unknown {', '.join(unknown)}; choose from "
                              f"{', '.join([*PROPERTY_NAMES, *self.label_names])} (names of "
                              "data.label_columns count too)")
        if len(set(self.condition_names)) != len(self.condition_names):
            raise ConfigError(f"model.conditions names a property twice: {self.conditions!r}")
        if self.property_names and self.property_hidden < 1:
            raise ConfigError("model.property_hidden must be at least 1")
        if self.mu_batchnorm < 0 or (self.mu_batchnorm and not (self.variational
                                                                and self.use_latent)):
            raise ConfigError(f"model.mu_batchnorm ({self.mu_batchnorm}) scales a VAE's "
                              "batch-normalised posterior means: it must be 0 (off) or "
                              "positive, on a model with model.variational = true and "
                              "model.use_latent = true")
        if self.bag_of_words and not self.use_latent:
            raise ConfigError("model.bag_of_words predicts a sequence's tokens from z; a "
                              "language model (model.use_latent = false) has no z")
        if self.encoder == "transformer" and self.encoder_hidden % self.n_heads:
            raise ConfigError(
                f"model.encoder_hidden ({self.encoder_hidden}) must be divisible by "
                f"model.n_heads ({self.n_heads}) for a Transformer encoder")
        if self.decoder == "transformer" and self.decoder_hidden % self.n_heads:
            raise ConfigError(
                f"model.decoder_hidden ({self.decoder_hidden}) must be divisible by "
                f"model.n_heads ({self.n_heads}) for a Transformer decoder")
        if self.decoder in RNN_CELLS and not (self.z_to_input or self.z_to_state):
            raise ConfigError("an RNN decoder needs z somewhere: set model.z_to_input or "
                              "model.z_to_state to true")

    def _validate_levels(self) -> None:
        """Raise ConfigError on latent_levels / latent_dim_2 that cannot build a model."""
        if self.latent_levels not in (1, 2):
            raise ConfigError(f"model.latent_levels must be 1 (one Gaussian latent) or 2 (a "
                              f"hierarchical latent z = [z1, z2]), got {self.latent_levels}")
        if self.latent_levels == 1:
            if self.latent_dim_2:
                raise ConfigError(f"model.latent_dim_2 ({self.latent_dim_2}) sizes the second "
                                  "latent level; set model.latent_levels = 2 or leave "
                                  "model.latent_dim_2 at 0")
            return
        if not self.variational or not self.use_latent:
            raise ConfigError("model.latent_levels = 2 is a hierarchy of Gaussian latents with "
                              "a learned prior; it needs model.variational = true and "
                              "model.use_latent = true")
        if self.latent_dim < 2:
            raise ConfigError(f"model.latent_levels = 2 splits model.latent_dim between z1 and "
                              f"z2; it must be at least 2, got {self.latent_dim}")
        if not 0 <= self.latent_dim_2 < self.latent_dim:
            raise ConfigError(f"model.latent_dim_2 ({self.latent_dim_2}) is the size of z2 "
                              f"within model.latent_dim ({self.latent_dim}); choose 1 to "
                              f"{self.latent_dim - 1}, or 0 for half")


@dataclass
class DataConfig:
    """Where the training data come from and how they are filtered."""

    train: str = "default:moses_train"  # a path, "default:NAME" (shipped) or "moses:SPLIT"
    valid: str = "default:moses_valid"
    column: str = ""  # CSV column holding the sequences; "": SMILES for molecules, text for text
    representation: str = "smiles"  # smiles | selfies (molecules) | word | bpe (sentences)
    max_length: int = 100  # longest sequence in tokens, without BOS/EOS; longer rows are skipped
    # text tokenizers, built on the training split: vocabulary size including the four special
    # tokens (0: every word for "word", 8000 for "bpe"), the rarest token kept, lower-casing
    max_vocab: int = 0
    min_frequency: int = 1
    lowercase: bool = False
    # how the word-level tokenizer splits raw text: "punctuation" (punctuation and clitics cut
    # from words, decoded back as written: "isn't it?") or "whitespace" (text already
    # tokenized, as Brown is); and every number read as the one token <num>
    text_split: str = "punctuation"
    numbers_as_token: bool = False
    # SMILES enumeration while training (seqvae.augment): "none"; "encoder" (the encoder reads
    # a random SMILES of each molecule, the decoder writes the stored one); "both" (both see
    # the same random SMILES). Molecules only; validation data stay as stored
    augment: str = "none"
    # molecules standardised before anything reads them (seqvae.standardize: RDKit's cleanup,
    # largest fragment, neutralised charges, canonical SMILES), stereo kept unless
    # keep_stereo = false; what changed is counted in the data report
    standardize: bool = False
    keep_stereo: bool = True
    # molecules: numeric columns of the training and validation CSVs (your assay values, say)
    # that the joint property head learns beside model.properties, comma-separated; empty
    # cells are missing (the row trains the VAE and the head's other outputs, semi-supervised)
    label_columns: str = ""
    # a CSV column of category labels the model is conditioned on (a conditional VAE by label:
    # Brown's genre, a compound series); its categories are the training split's. Rows without
    # a label, and validation rows of a category training lacks, are skipped and counted
    condition_column: str = ""

    @property
    def label_names(self) -> list[str]:
        """The names in ``label_columns``, in order."""
        return [c.strip() for c in self.label_columns.split(",") if c.strip()]

    def validate(self) -> None:
        """Raise ConfigError on impossible values."""
        _choice("data.representation", self.representation, REPRESENTATIONS)
        if self.label_names and self.representation in TEXT_REPRESENTATIONS:
            raise ConfigError("data.label_columns are numeric labels of molecules; sentences "
                              "cannot carry them yet")
        if len(set(self.label_names)) != len(self.label_names):
            raise ConfigError(f"data.label_columns names a column twice: {self.label_columns!r}")
        _choice("data.augment", self.augment, AUGMENTS)
        _choice("data.text_split", self.text_split, TEXT_SPLITS)
        if self.standardize and self.representation in TEXT_REPRESENTATIONS:
            raise ConfigError("data.standardize standardises molecules; it does not apply to "
                              f"text ({self.representation}): set data.standardize = false")
        if not self.keep_stereo and not self.standardize:
            raise ConfigError("data.keep_stereo = false drops stereo as a step of "
                              "standardisation: set data.standardize = true as well")
        if self.augment != "none" and self.representation in TEXT_REPRESENTATIONS:
            raise ConfigError(f"data.augment = {self.augment!r} writes molecules as random "
                              f"SMILES; it does not apply to text ({self.representation}): "
                              "set data.augment = \"none\"")
        if self.max_length < 1:
            raise ConfigError(f"data.max_length must be at least 1, got {self.max_length}")
        if self.max_vocab < 0 or self.min_frequency < 1:
            raise ConfigError(f"data.max_vocab must not be negative ({self.max_vocab}) and "
                              f"data.min_frequency must be at least 1 ({self.min_frequency})")
        if self.max_vocab and self.representation in TEXT_REPRESENTATIONS and self.max_vocab <= 4:
            raise ConfigError(f"data.max_vocab ({self.max_vocab}) must leave room beyond the "
                              "four special tokens")

    @property
    def text(self) -> bool:
        """True for sentences (word / bpe), False for molecules."""
        return self.representation in TEXT_REPRESENTATIONS

    @property
    def standardize_mode(self) -> str | None:
        """None (molecules read as given), or "keep" / "drop" (stereo) when standardised."""
        if not self.standardize:
            return None
        return "keep" if self.keep_stereo else "drop"

    @property
    def csv_column(self) -> str:
        """The CSV column read: ``column`` or, when empty, SMILES / text by representation."""
        return self.column or ("text" if self.text else "SMILES")


@dataclass
class TrainConfig:
    """Optimisation, KL schedule, evaluation and checkpointing."""

    out_dir: str = "runs/default"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    # bf16: matrix products in bfloat16 (autocast), weights, optimizer and losses in float32;
    # auto: bf16 where the hardware runs it natively (AVX-512 BF16 / AMX CPUs, recent GPUs)
    precision: str = "auto"  # auto | fp32 | bf16

    # the default recipe (benchmarks/results/recipes.md, "fast1"): on a 2-core CPU in 10
    # minutes, 75.6% valid prior samples against 12.0% for the earlier 256 / 1e-3 / KL 0.1
    batch_size: int = 128
    lr: float = 3e-3
    # cosine: decay from lr to lr_min over the budget (steps when there is a step or epoch
    # budget, else minutes); constant: lr throughout; auto: cosine over a step or epoch budget,
    # constant over a time budget (measured: a 10-minute run of the default model decayed by
    # a cosine gave half the valid samples; benchmarks/results/recipes.md)
    lr_schedule: str = "auto"
    lr_min: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    max_steps: int = 0  # 0: no step limit
    max_epochs: int = 0  # 0: no epoch limit
    max_minutes: float = 30.0  # wall-clock budget; 0: no time limit

    kl_schedule: str = "linear"  # constant | linear | logistic | cyclical
    kl_weight: float = 1.0  # final (maximum) weight beta of the KL term
    kl_start_weight: float = 0.0  # weight at step 0 (linear / logistic / cyclical)
    kl_warmup_steps: int = 1000  # steps to reach kl_weight (one cycle's length for cyclical)
    # > 0: the warm-up (or cycle) is this fraction of the budget instead, counted in the
    # budget's unit (minutes for a time budget), so it ends whatever the CPU's speed
    kl_warmup_fraction: float = 0.3
    kl_cycle_ratio: float = 0.5  # cyclical: fraction of a cycle spent increasing the weight
    free_bits: float = 0.1  # nats per latent dimension below which the KL is not penalised
    kl_target: float = 0.0  # nats of total KL below which it is not penalised (0: off)
    word_dropout: float = 0.0  # probability of replacing a decoder input token by <unk>
    # steps trained first as a plain autoencoder (z = mu, no KL term); the KL schedule starts
    # after them, and with pretrain_reset_decoder the decoder starts afresh (Li et al. 2019)
    pretrain_steps: int = 0
    # > 0: the pre-training is this share of the budget instead, counted in the budget's unit
    # (minutes for a time budget), so it ends whatever the CPU's speed
    pretrain_fraction: float = 0.0
    pretrain_reset_decoder: bool = True
    # aggressive inference-network training (He et al. 2019, "Lagging inference networks and
    # posterior collapse"): while the share of the budget spent is below this (after any
    # autoencoder pre-training), each update of the generative side (decoder, token embedding,
    # bag-of-words head) waits for the encoder and posterior layers to catch up with it, by
    # updates of them alone on the batches that follow, until their loss stops falling; then
    # one update of the generative side alone, and again. He et al. end the phase when the
    # validation MI stops rising; a share of the budget ends it whatever the CPU's speed.
    # Every batch is one step either way. 0: off, encoder and decoder updated together
    aggressive_fraction: float = 0.0
    # at most this many encoder-only updates before each decoder update (He et al.: 100)
    aggressive_max_inner: int = 20
    # the inner loop ends when the mean loss of its last this-many batches is no lower than
    # that of the this-many before (He et al. compare sums over 15 batches)
    aggressive_window: int = 5
    # weight of the property head's loss (mean squared error on standardised properties)
    property_weight: float = 1.0
    # weight of the bag-of-words loss (model.bag_of_words), nats per sequence
    bow_weight: float = 1.0
    # a model conditioned on categories (data.condition_column): weight of its classifier
    # q(y | x)'s cross-entropy on the labelled rows, per row, beside the ELBO (M2's alpha)
    classifier_weight: float = 1.0
    # batches whose loss or gradient is inf / NaN that may be skipped (no update) before the
    # run stops with an error naming the step; 0: stop at the first
    max_skipped_batches: int = 0
    # keep tokenized molecule data in a memory-mapped cache (seqvae.cache; $SEQVAE_CACHE_DIR,
    # default ~/.cache/seqvae), keyed by the files' SHA-256 and the settings
    token_cache: bool = True

    # the aggregate prior fitted at the end of a run (seqvae.priors): codes of this many
    # training rows (0: none fitted), as a mixture of this many full-covariance Gaussians
    prior_codes: int = 20_000
    prior_components: int = 1

    # fine-tuning (transfer learning): start from the weights and tokenizer of this model (a
    # shipped name, a run or a checkpoint folder) instead of fresh ones; its [model] settings
    # replace the config's and its vocabulary is kept (rows with tokens it lacks are skipped
    # and counted); the optimiser and counters start afresh. seqvae/configs/finetune.toml
    # holds settings for a small set
    init: str = ""
    # a VAE whose decoder starts as this language model's (model.use_latent = false: a shipped
    # name such as moses-charrnn, a run or a checkpoint folder): its tokenizer, token embedding
    # and recurrent decoder, with the weights that read z at zero, so the first step decodes
    # as the language model does (seqvae.model.warm_start_decoder); its decoder settings
    # replace the config's, the encoder and latent are the config's and start fresh
    init_decoder: str = ""
    # fine-tuning: keep the encoder and its posterior layer fixed (the token embedding, which
    # the decoder shares, keeps training)
    freeze_encoder: bool = False
    # fine-tuning: append the tokens of the training data the source's vocabulary lacks
    # (SMILES / SELFIES models), their embedding and output rows starting as the mean of the
    # existing tokens' rows; without it, rows holding such tokens are skipped and counted
    extend_vocab: bool = False
    # a copy of the weights (snapshots/STEP.safetensors, listed in snapshots/index.json) every
    # this many minutes of training, kept for curves over training time; 0: none
    snapshot_every_minutes: float = 0.0

    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 500
    eval_samples: int = 300  # prior samples drawn at each evaluation (validity, uniqueness)
    eval_max_molecules: int = 2000  # held-out rows used at each evaluation

    def validate(self) -> None:
        """Raise ConfigError on impossible values."""
        _choice("train.kl_schedule", self.kl_schedule, KL_SCHEDULES)
        _choice("train.precision", self.precision, PRECISIONS)
        _choice("train.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not 0.0 <= self.kl_warmup_fraction <= 1.0:
            raise ConfigError(f"train.kl_warmup_fraction must be in [0, 1], got "
                              f"{self.kl_warmup_fraction}")
        for name in ("batch_size", "log_every", "eval_every", "checkpoint_every",
                     "prior_components"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "grad_clip"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ConfigError(f"train.word_dropout must be in [0, 1), got {self.word_dropout}")
        if not 0.0 <= self.pretrain_fraction < 1.0:
            raise ConfigError(f"train.pretrain_fraction must be in [0, 1), got "
                              f"{self.pretrain_fraction}")
        if self.pretrain_fraction and self.pretrain_steps:
            raise ConfigError("train.pretrain_steps and train.pretrain_fraction both set the "
                              "autoencoder pre-training's length: set one of them to 0")
        if not 0.0 <= self.aggressive_fraction <= 1.0:
            raise ConfigError(f"train.aggressive_fraction must be in [0, 1], got "
                              f"{self.aggressive_fraction}")
        for name, otherwise in (("pretrain_fraction", ", or give it in steps "
                                 "(train.pretrain_steps)"), ("aggressive_fraction", "")):
            if getattr(self, name) and not (self.max_steps or self.max_epochs
                                            or self.max_minutes):
                raise ConfigError(f"train.{name} is a share of the budget, and this run has "
                                  "none: set train.max_steps, train.max_epochs or "
                                  f"train.max_minutes{otherwise}")
        if self.aggressive_max_inner < 1 or self.aggressive_window < 1:
            raise ConfigError(f"train.aggressive_max_inner and train.aggressive_window must be "
                              f"at least 1, got {self.aggressive_max_inner} and "
                              f"{self.aggressive_window}")
        if self.aggressive_fraction and self.freeze_encoder:
            raise ConfigError("train.aggressive_fraction trains the encoder on its own between "
                              "decoder updates, and train.freeze_encoder keeps it fixed: set one "
                              "of them")
        if not 0.0 < self.kl_cycle_ratio <= 1.0:
            raise ConfigError(f"train.kl_cycle_ratio must be in (0, 1], got {self.kl_cycle_ratio}")
        if not (self.max_steps > 0 or self.max_epochs > 0 or self.max_minutes > 0):
            raise ConfigError("set a training budget: train.max_steps, train.max_epochs or "
                              "train.max_minutes must be positive")
        if self.init and self.init_decoder:
            raise ConfigError("train.init fine-tunes a whole model and train.init_decoder builds "
                              "a VAE around a language model's decoder: set one of them")
        if self.extend_vocab and not self.init:
            raise ConfigError("train.extend_vocab grows a fine-tuned model's vocabulary; set "
                              "train.init to the model to fine-tune (a fresh model's vocabulary "
                              "is built from its data anyway)")
        if self.freeze_encoder and not self.init:
            raise ConfigError("train.freeze_encoder keeps a fine-tuned model's encoder fixed; "
                              "set train.init to the model to fine-tune (a fresh encoder "
                              "would stay random)")
        if (self.free_bits < 0 or self.kl_weight < 0 or self.kl_start_weight < 0
                or self.kl_target < 0 or self.pretrain_steps < 0 or self.property_weight < 0
                or self.classifier_weight < 0 or self.bow_weight < 0
                or self.max_skipped_batches < 0 or self.prior_codes < 0
                or self.snapshot_every_minutes < 0):
            raise ConfigError("train.free_bits, train.kl_target, train.kl_weight, "
                              "train.kl_start_weight, train.pretrain_steps, "
                              "train.property_weight, train.classifier_weight, train.bow_weight, "
                              "train.max_skipped_batches, train.prior_codes and "
                              "train.snapshot_every_minutes must not be negative")


@dataclass
class Config:
    """The whole configuration of a run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "Config":
        """Check every section; return self for chaining."""
        if self.data.label_names and not self.model.labels:  # the model learns the data's
            self.model.labels = ",".join(self.data.label_names)
        self.model.validate()
        self.data.validate()
        self.train.validate()
        if self.data.augment == "encoder" and not self.model.use_latent:
            raise ConfigError("data.augment = \"encoder\" randomises what the encoder reads; a "
                              "model without a latent (model.use_latent = false) has no encoder: "
                              "use data.augment = \"both\"")
        if self.train.init_decoder and not self.model.use_latent:
            raise ConfigError("train.init_decoder builds a VAE around a language model's "
                              "decoder, and model.use_latent = false asks for a language model: "
                              "continue the language model itself with train.init")
        if self.data.label_names and self.train.init:
            raise ConfigError("data.label_columns with train.init: a fine-tuned model keeps its "
                              "source's head; train from scratch to learn your labels")
        clash = set(self.data.label_names) & (set(PROPERTY_NAMES) | {self.data.csv_column})
        if clash:
            raise ConfigError(f"data.label_columns {sorted(clash)}: a label column may not be "
                              "named like a computed property or be the molecule column; "
                              "rename it in the CSV")
        if self.data.condition_column and self.data.condition_column in (
                {self.data.csv_column} | set(self.data.label_names)):
            raise ConfigError(f"data.condition_column {self.data.condition_column!r} is also the "
                              "sequence column or a label column; name another column")
        if self.model.condition_names and self.data.text:  # (numeric labels are molecular too)
            raise ConfigError("model.conditions are molecular properties; a text model cannot "
                              "be conditioned on them")
        if self.model.selfies_counter and self.data.representation != "selfies":
            raise ConfigError("model.selfies_counter counts the atoms a SELFIES string derives; "
                              f"data.representation is {self.data.representation!r}: set it to "
                              "\"selfies\" or model.selfies_counter = false")
        if self.model.property_names and self.data.text:
            raise ConfigError("model.properties are molecular properties; a text model "
                              f"({self.data.representation}) cannot have them")
        return self

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (JSON/TOML serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "Config":
        """Build from nested dicts, refusing unknown tables and keys."""
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(raw) - set(sections)
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(f"{source}: unknown table [{name}]{_did_you_mean(name, sections)}; "
                              f"the tables are {', '.join(sorted(sections))}")
        cfg = cls()
        for section, values in raw.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{section}] must be a table of key = value pairs")
            for key, value in values.items():
                set_value(cfg, f"{section}.{key}", value, source=source)
        return cfg


def _section_fields(obj: Any) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(obj)}


def set_value(cfg: Config, dotted: str, value: Any, source: str = "override") -> None:
    """Set ``section.key`` on cfg, checking that the key exists and the type fits."""
    if "." not in dotted:
        raise ConfigError(f"{source}: '{dotted}' must be written section.key, "
                          f"for example train.lr")
    section, key = dotted.split(".", 1)
    if section not in _section_fields(cfg):
        raise ConfigError(f"{source}: unknown table [{section}]"
                          f"{_did_you_mean(section, _section_fields(cfg))}")
    target = getattr(cfg, section)
    fields_ = _section_fields(target)
    if key not in fields_:
        raise ConfigError(f"{source}: unknown key '{section}.{key}'"
                          f"{_did_you_mean(key, fields_)}; valid keys of [{section}]: "
                          f"{', '.join(fields_)}")
    # a list's items: the field's annotation says which ("list[int]"; names otherwise)
    annotation = str(next(f.type for f in dataclasses.fields(target) if f.name == key))
    item = int if annotation == "list[int]" else str
    setattr(target, key, _coerce(f"{section}.{key}", value, type(getattr(target, key)), source,
                                 item))


def _coerce(name: str, value: Any, kind: type, source: str, item: type = str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str and isinstance(value, str):
        return value
    elif kind is list and isinstance(value, list) and all(
            isinstance(v, item) and not isinstance(v, bool) for v in value):
        return list(value)  # names (model.categories) or numbers (model.token_roles)
    raise ConfigError(f"{source}: {name} must be "
                      f"{f'a list of {item.__name__}' if kind is list else kind.__name__}, "
                      f"got {value!r}")


def _did_you_mean(name: str, options: Any) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: Config | None = None, values: dict[str, Any] | None = None) -> Config:
    """Read a TOML config (or start from base, or the defaults), apply ``section.key=value``
    overrides (values read as TOML literals, bare words as strings), then ``values``
    (``{"train.lr": 3e-4}``: Python values, set as they are, no quoting)."""
    if path is None:
        cfg = Config.from_dict(base.to_dict()) if base is not None else Config()
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        cfg = Config.from_dict(raw, source=str(path))
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like section.key=value")
        key, value = item.split("=", 1)
        set_value(cfg, key.strip(), _parse_literal(value.strip()))
    for key, value in (values or {}).items():
        set_value(cfg, key, value)
    return cfg.validate()


def _parse_literal(text: str) -> Any:
    """Parse a command-line value as a TOML literal, falling back to the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump_toml(cfg: Config) -> str:
    """Write a config as TOML text that load_config reads back to an equal Config."""
    lines = []
    for section, values in cfg.to_dict().items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = _toml_string(value)
            elif isinstance(value, list):
                text = "[" + ", ".join(_toml_string(v) if isinstance(v, str) else repr(v)
                                       for v in value) + "]"
            else:
                text = repr(value)
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)
