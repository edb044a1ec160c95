"""Type tests the constructors' argument checks share (torch-only core)."""

from __future__ import annotations

import argparse


def is_number(value: object) -> bool:
    """An ``int`` or ``float`` that is not a ``bool`` (``True`` is an ``int`` in Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_positive_int(value: object) -> bool:
    """An ``int`` of at least 1 that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def require_int(owner: str, name: str, value: object, low: int | None = None) -> None:
    """Raise a one-line ``ValueError`` unless ``value`` is an ``int`` (not a ``bool``) >= ``low``.

    Args:
        owner: The class or function named in the message.
        name: The argument's name.
        value: What was given.
        low: The smallest value allowed (``None``: any integer).
    """
    if isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low):
        return
    bound = "" if low is None else f" >= {low}"
    raise ValueError(f"{owner}: {name} must be an integer{bound}, got {value!r}.")


def at_least_one(text: str) -> int:
    """An ``argparse`` type: an integer of at least 1 (the parser names the option if not)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer of at least 1")
    return value
