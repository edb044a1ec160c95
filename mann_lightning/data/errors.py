"""Errors raised by the Omniglot data layer."""

from __future__ import annotations


class OmniglotDataError(RuntimeError):
    """A data file is missing, corrupted, truncated or incomplete; the message names it."""


class OmniglotNotFoundError(OmniglotDataError, FileNotFoundError):
    """No copy of Omniglot was found (and none could be downloaded)."""
