"""Exceptions a user can cause. Each message says what was wrong and how to fix it."""


class SeqVAEError(Exception):
    """Base class of every error seqvae raises on purpose."""


class ConfigError(SeqVAEError, ValueError):
    """A configuration file or option is wrong (unknown key, bad value)."""


class DataError(SeqVAEError, ValueError):
    """An input file or column is missing or unusable."""


class TokenizerError(SeqVAEError, ValueError):
    """A string cannot be tokenized (unknown tokens, too long) or a tokenizer file is bad."""


class CheckpointError(SeqVAEError):
    """A checkpoint folder is missing, incomplete, corrupt or not in seqvae's format."""
