"""Result files are strict JSON: non-finite numbers become null."""

from __future__ import annotations

import json
import math

import pytest

from mann_lightning.strict_json import dumps, finite_or_none


def _refuse(constant: str) -> None:
    raise ValueError(constant)


def test_non_finite_numbers_are_written_as_null() -> None:
    payload = {"a": math.nan, "b": [1.5, math.inf, (-math.inf, 2)], "c": {"d": math.nan}, "e": 3}
    text = dumps(payload)
    assert text.endswith("\n")
    assert json.loads(text, parse_constant=_refuse) == {
        "a": None, "b": [1.5, None, [None, 2]], "c": {"d": None}, "e": 3,
    }  # fmt: skip


def test_finite_values_and_other_types_pass_unchanged() -> None:
    payload = {"x": 0.1, "flag": True, "name": "run", "none": None, "n": 7}
    assert finite_or_none(payload) == payload
    with pytest.raises(ValueError):
        json.loads(json.dumps({"x": math.nan}), parse_constant=_refuse)  # what it replaces
