"""Error types the CLI turns into a clear message and a non-zero exit."""

from __future__ import annotations

__all__ = ["DealermlError", "DataError", "ConfigError"]


class DealermlError(Exception):
    """Base class for errors a user can act on (bad input, bad config)."""


class DataError(DealermlError):
    """A table, file, column or value breaks the data contract.

    The message names the file/table, the column, the rule and the offending values or rows.
    """


class ConfigError(DealermlError):
    """An experiment config is missing a field or has a bad value."""
