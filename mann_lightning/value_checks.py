"""Type tests the constructors' argument checks share (torch-only core)."""

from __future__ import annotations


def is_number(value: object) -> bool:
    """An ``int`` or ``float`` that is not a ``bool`` (``True`` is an ``int`` in Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_positive_int(value: object) -> bool:
    """An ``int`` of at least 1 that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
