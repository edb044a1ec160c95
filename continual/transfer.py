"""Forgetting and transfer from a stream's accuracy matrices (pure Python, no Avalanche).

A stream run evaluates, after training through each experience, on every experience of the
test stream. For one presentation index (the paper's 1st, 2nd, ... instance of a class in an
episode) that gives a matrix ``A`` with row ``i`` = after training through experience ``i``
and column ``j`` = accuracy on experience ``j``; ``accuracy_by_presentation`` is the list of
these matrices for presentations ``1..K``. With ``last`` the final trained row:

* **forgetting** (Chaudhry et al. 2018, "Riemannian Walk", eq. 4) of experience ``j < last``:
  ``max_{j <= i < last} A[i][j] - A[last][j]``, the drop from the best accuracy it had while
  later experiences were trained, to the end; the mean over ``j < last`` is the average
  forgetting. Negative when the final accuracy is above every earlier one.
* **backward transfer** (Lopez-Paz and Ranzato 2017, GEM, eq. 3): ``A[last][j] - A[j][j]`` for
  ``j < last``, and its mean; negative values are forgetting of what was learnt on ``j``.
* **forward transfer** (Lopez-Paz and Ranzato 2017, eq. 4): ``A[j-1][j] - b[j]`` for ``j > 0``,
  with ``b[j]`` the untrained model's accuracy on ``j``: how much training on the earlier
  experiences helps on ``j`` before it is trained on.

The matrix may have fewer rows than columns (a stream stopped early); then ``last`` is its
final row and forward transfer also covers ``j = last + 1``. NaN (or ``None``) entries are
missing values: forgetting's maximum skips them, and a value that needs one is ``None``.
Means average the defined values; ``None`` when there is none (e.g. a single experience).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Matrix = list[list[float]]
PerExperience = list[float | None]

NEEDS_TWO = "needs at least two trained experiences (rows of the accuracy matrix)"
NEEDS_UNTRAINED = "needs the untrained model's accuracies (untrained=...)"


def _as_matrix(matrix: Any, where: str) -> Matrix:
    """Nested sequences (or a tensor / array) to a rectangular list of float rows."""
    rows = matrix.tolist() if hasattr(matrix, "tolist") else matrix
    out = [[math.nan if v is None else float(v) for v in row] for row in rows]
    if not out or any(len(row) != len(out[0]) for row in out) or not out[0]:
        raise ValueError(f"{where}: expected a non-empty rectangular matrix, got {rows!r}.")
    if len(out) > len(out[0]):
        raise ValueError(
            f"{where}: {len(out)} rows (trained experiences) but {len(out[0])} columns "
            "(evaluated experiences); every row must cover every experience."
        )
    return out


def _difference(a: float, b: float) -> float | None:
    return None if math.isnan(a) or math.isnan(b) else a - b


def forgetting(matrix: Sequence[Sequence[float]]) -> PerExperience:
    """Chaudhry et al. (2018) forgetting of every experience (``None`` where undefined).

    Args:
        matrix: ``A[i][j]``, accuracy on experience ``j`` after training through ``i``.

    Returns:
        One value per column: ``max_{j <= i < last} A[i][j] - A[last][j]`` for ``j < last``.
    """
    a = _as_matrix(matrix, "forgetting")
    last = len(a) - 1
    values: PerExperience = [None] * len(a[0])
    for j in range(last):
        earlier = [a[i][j] for i in range(j, last) if not math.isnan(a[i][j])]
        if earlier:
            values[j] = _difference(max(earlier), a[last][j])
    return values


def backward_transfer(matrix: Sequence[Sequence[float]]) -> PerExperience:
    """Lopez-Paz and Ranzato (2017) backward transfer ``A[last][j] - A[j][j]``, ``j < last``."""
    a = _as_matrix(matrix, "backward_transfer")
    last = len(a) - 1
    return [_difference(a[last][j], a[j][j]) if j < last else None for j in range(len(a[0]))]


def forward_transfer(
    matrix: Sequence[Sequence[float]], untrained: Sequence[float] | None
) -> PerExperience:
    """Lopez-Paz and Ranzato (2017) forward transfer ``A[j-1][j] - b[j]`` for ``j > 0``.

    Args:
        matrix: ``A[i][j]`` as in :func:`forgetting`.
        untrained: ``b[j]``, the untrained model's accuracy on each experience; all values
            are ``None`` without it.
    """
    a = _as_matrix(matrix, "forward_transfer")
    rows, columns = len(a), len(a[0])
    values: PerExperience = [None] * columns
    if untrained is None:
        return values
    b = [math.nan if v is None else float(v) for v in untrained]
    if len(b) != columns:
        raise ValueError(
            f"forward_transfer: untrained has {len(b)} values but the matrix {columns} columns."
        )
    for j in range(1, min(rows + 1, columns)):
        values[j] = _difference(a[j - 1][j], b[j])
    return values


def summarise(values: PerExperience) -> dict[str, Any]:
    """``{"mean", "per_experience"}``: the mean of the defined values (``None`` if none)."""
    defined = [v for v in values if v is not None]
    return {"mean": sum(defined) / len(defined) if defined else None, "per_experience": values}


def transfer_summary(
    accuracy_by_presentation: Sequence[Sequence[Sequence[float]]],
    untrained: Sequence[Sequence[float]] | None = None,
    presentation: int = 2,
) -> dict[str, dict[str, Any]]:
    """Forgetting, backward and forward transfer for every presentation index.

    Args:
        accuracy_by_presentation: One matrix per presentation ``1..K`` (index 0 is the 1st
            presentation), each ``A[i][j]`` as in :func:`forgetting`.
        untrained: The untrained model's accuracy per presentation and experience,
            ``[K][experiences]``; forward transfer is ``None`` without it.
        presentation: The presentation (1-based) whose values are the headline ``mean`` and
            ``per_experience`` (the paper's tables lead with the 2nd).

    Returns:
        ``{"forgetting": ..., "backward_transfer": ..., "forward_transfer": ...}``, each
        ``{"mean", "per_experience", "by_presentation", "note"}``: ``mean`` and
        ``per_experience`` (one value per column, ``None`` where undefined) at
        ``presentation``; ``by_presentation`` a list over presentations ``1..K`` of
        ``{"presentation", "mean", "per_experience"}``; ``note`` says why the mean is ``None``
        (``None`` otherwise).
    """
    matrices = [
        _as_matrix(m, f"presentation {k}") for k, m in enumerate(accuracy_by_presentation, 1)
    ]
    if not matrices:
        raise ValueError("transfer_summary: accuracy_by_presentation is empty.")
    if any(len(m) != len(matrices[0]) or len(m[0]) != len(matrices[0][0]) for m in matrices):
        raise ValueError("transfer_summary: the matrices of all presentations must have one shape.")
    if not 1 <= presentation <= len(matrices):
        raise ValueError(
            f"transfer_summary: presentation={presentation} but only 1..{len(matrices)} are given."
        )
    if untrained is not None and len(untrained) != len(matrices):
        raise ValueError(
            f"transfer_summary: untrained has {len(untrained)} presentations, the matrices "
            f"{len(matrices)}; give one list of per-experience accuracies per presentation."
        )
    per_presentation = {
        "forgetting": [forgetting(m) for m in matrices],
        "backward_transfer": [backward_transfer(m) for m in matrices],
        "forward_transfer": [
            forward_transfer(m, None if untrained is None else untrained[k])
            for k, m in enumerate(matrices)
        ],
    }
    summary: dict[str, dict[str, Any]] = {}
    for name, values in per_presentation.items():
        by_presentation = [{"presentation": k, **summarise(v)} for k, v in enumerate(values, 1)]
        headline = summarise(values[presentation - 1])
        note = None
        if headline["mean"] is None:
            if len(matrices[0]) < 2 and name != "forward_transfer":
                note = NEEDS_TWO
            elif name == "forward_transfer" and untrained is None:
                note = NEEDS_UNTRAINED
            elif name == "forward_transfer" and len(matrices[0][0]) < 2:
                note = "needs at least two experiences (columns of the accuracy matrix)"
            else:
                note = "every value it needs is missing (NaN)"
        summary[name] = {**headline, "by_presentation": by_presentation, "note": note}
    return summary
