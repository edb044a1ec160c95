"""Forgetting and transfer against values worked out by hand on a small synthetic matrix.

The matrix is built so that a common slip changes a result: forgetting's maximum must start at
row ``j`` (row 0 holds a high 0.90 in column 1), must stop before the last row (column 1's
last value is its highest, so forgetting there is negative), and forward transfer must read
``A[j-1][j]`` (neither ``A[j][j-1]`` nor ``A[j][j]``).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from continual.transfer import (
    NEEDS_TWO,
    NEEDS_UNTRAINED,
    backward_transfer,
    forgetting,
    forward_transfer,
    transfer_summary,
)

# 2nd presentation: row i = after training through experience i, column j = experience j.
A2 = [
    [0.50, 0.90, 0.20, 0.25],
    [0.40, 0.60, 0.15, 0.30],
    [0.45, 0.55, 0.80, 0.35],
    [0.30, 0.65, 0.70, 0.85],
]
A1 = [[0.2] * 4 for _ in range(4)]  # 1st presentation: chance everywhere
A3 = [
    [0.6, 0.9, 0.2, 0.2],
    [0.6, 0.7, 0.2, 0.3],
    [0.6, 0.7, 0.9, 0.3],
    [0.5, 0.7, 0.8, 0.9],
]
B2 = [0.20, 0.22, 0.18, 0.21]  # the untrained model at the 2nd presentation
UNTRAINED = [[0.2] * 4, B2, [0.2] * 4]


def _approx(values: list[float | None]) -> list[object]:
    return [None if v is None else pytest.approx(v) for v in values]


def test_forgetting_by_hand() -> None:
    # j=0: max(.50, .40, .45) - .30; j=1: max(.60, .55) - .65 (row 0 and the last row
    # excluded); j=2: .80 - .70; the last experience has no forgetting.
    assert forgetting(A2) == _approx([0.20, -0.05, 0.10, None])


def test_backward_transfer_by_hand() -> None:
    # A[3][j] - A[j][j]: .30 - .50, .65 - .60, .70 - .80
    assert backward_transfer(A2) == _approx([-0.20, 0.05, -0.10, None])


def test_forward_transfer_by_hand() -> None:
    # A[j-1][j] - b[j]: .90 - .22, .15 - .18, .35 - .21
    assert forward_transfer(A2, B2) == _approx([None, 0.68, -0.03, 0.14])
    assert forward_transfer(A2, None) == [None] * 4


def test_summary_headline_is_the_second_presentation() -> None:
    summary = transfer_summary([A1, A2, A3], UNTRAINED)
    assert set(summary) == {"forgetting", "backward_transfer", "forward_transfer"}
    assert summary["forgetting"]["mean"] == pytest.approx(0.25 / 3)
    assert summary["backward_transfer"]["mean"] == pytest.approx(-0.25 / 3)
    assert summary["forward_transfer"]["mean"] == pytest.approx(0.79 / 3)
    assert summary["forgetting"]["per_experience"] == _approx([0.20, -0.05, 0.10, None])
    assert all(summary[name]["note"] is None for name in summary)
    by_presentation = summary["forgetting"]["by_presentation"]
    assert [p["presentation"] for p in by_presentation] == [1, 2, 3]
    assert by_presentation[0]["mean"] == pytest.approx(0.0)
    # 3rd: max(.6, .6, .6) - .5, max(.7, .7) - .7, .9 - .8
    assert by_presentation[2]["per_experience"] == _approx([0.1, 0.0, 0.1, None])
    assert summary["forward_transfer"]["by_presentation"][2]["per_experience"] == _approx(
        [None, 0.7, 0.0, 0.1]
    )
    json.dumps(summary, allow_nan=False)  # goes into results.json as it is
    third = transfer_summary([A1, A2, A3], UNTRAINED, presentation=3)
    assert third["backward_transfer"]["mean"] == pytest.approx((-0.1 + 0.0 - 0.1) / 3)


def test_stream_stopped_early() -> None:
    partial = A2[:2]  # trained through experience 1, evaluated on all four
    summary = transfer_summary([partial, partial], [B2, B2])
    assert summary["forgetting"]["per_experience"] == _approx([0.10, None, None, None])
    assert summary["backward_transfer"]["per_experience"] == _approx([-0.10, None, None, None])
    # j = 1 from row 0, j = 2 from row 1 (the last trained), j = 3 needs a row 2
    assert summary["forward_transfer"]["per_experience"] == _approx([None, 0.68, -0.03, None])
    assert summary["forward_transfer"]["mean"] == pytest.approx(0.325)


def test_single_experience_gives_none_with_a_note() -> None:
    summary = transfer_summary([[[0.4]], [[0.7]]], untrained=[[0.2], [0.2]])
    for name in summary:
        assert summary[name]["mean"] is None and summary[name]["per_experience"] == [None]
    assert summary["forgetting"]["note"] == NEEDS_TWO
    assert summary["backward_transfer"]["note"] == NEEDS_TWO
    assert "two experiences" in summary["forward_transfer"]["note"]
    assert transfer_summary([[[0.4]], [[0.7]]])["forward_transfer"]["note"] == NEEDS_UNTRAINED


def test_nan_entries_are_missing_values() -> None:
    holes = [row[:] for row in A2]
    holes[0][0] = math.nan  # forgetting j=0 from rows 1-2 only; BWT j=0 undefined
    holes[3][2] = math.nan  # nothing at the end for j=2
    assert forgetting(holes) == _approx([0.15, -0.05, None, None])
    assert backward_transfer(holes) == _approx([None, 0.05, None, None])
    summary = transfer_summary([holes, holes])
    assert summary["forgetting"]["mean"] == pytest.approx(0.05)
    assert summary["backward_transfer"]["mean"] == pytest.approx(0.05)
    everything_missing = transfer_summary([[[math.nan, 0.1], [math.nan, 0.2]]] * 2)
    assert everything_missing["forgetting"]["mean"] is None
    assert "missing" in everything_missing["forgetting"]["note"]


def test_tensors_are_accepted() -> None:
    summary = transfer_summary(torch.tensor([A1, A2, A3], dtype=torch.float64))
    assert summary["backward_transfer"]["mean"] == pytest.approx(-0.25 / 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([[[0.1, 0.2], [0.3]]],), "rectangular"),
        (([[[0.1], [0.2]]],), "2 rows"),
        (([],), "empty"),
        (([A2, A2[:2]],), "one shape"),
        (([A2],), "presentation=2"),
        (([A2, A2], [B2]), "untrained has 1 presentations"),
        (([A2, A2], [B2, B2[:3]]), "untrained has 3 values"),
    ],
)
def test_bad_input_is_a_clear_error(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        transfer_summary(*args)
