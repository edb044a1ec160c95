"""Result files as strict JSON: a non-finite number (NaN, inf) is written as ``null``.

Python's ``json.dumps`` writes ``NaN`` and ``Infinity`` by default, which strict JSON readers
(JavaScript, ``jq``, ``json.loads(..., parse_constant=...)`` checks) refuse. A ``NaN`` in a
result is a column with nothing to average (e.g. the 10th presentation when episodes show a
class fewer times), so ``null`` says the same thing in valid JSON; :mod:`mann_lightning.report`
reads both.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float, in nested dicts, lists and tuples, as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def dumps(payload: Any) -> str:
    """``payload`` as indented strict JSON with a final newline."""
    return json.dumps(finite_or_none(payload), indent=2, allow_nan=False) + "\n"
