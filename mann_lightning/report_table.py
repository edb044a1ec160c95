"""The paper-style table of test results: cells, rows, the paper's rows and notes.

A row per run: accuracy (%) at the 1st, 2nd, 3rd, 4th, 5th and 10th presentation of a class
(with the 95% bootstrap interval where the result has one), test episodes, the checkpoint's
training step and wall time. Used by ``mann-report`` (:mod:`mann_lightning.report`) and by
``mann test``'s ``test_results.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

COLUMNS: tuple[str, ...] = ("1st", "2nd", "3rd", "4th", "5th", "10th")
DASH = "–"

# Santoro et al. (2016), accuracy (%) by presentation. Only the rows we are sure of (the
# module docstring of mann_lightning.report says which were left out, and why).
PAPER: dict[str, tuple[str, dict[str, tuple[float | None, ...]]]] = {
    "table1": (
        "Santoro et al. 2016, Table 1: Omniglot, 5 classes, one-hot labels",
        {
            "MANN (LRUA)": (36.4, 82.8, 91.0, 92.6, 94.9, 98.1),
            "LSTM": (24.4, 49.5, 55.3, 61.0, 63.6, 62.5),
            "Human": (None, 57.3, None, None, None, 92.4),
        },
    ),
    "table2-5": ("Santoro et al. 2016, Table 2: Omniglot, 5 classes, string labels", {}),
    "table2-15": (
        "Santoro et al. 2016, Table 2: Omniglot, 15 classes, string labels",
        {
            "MANN (LRUA), LSTM controller": (0.1, 62.6, 79.3, 86.6, 88.7, 95.3),
            "MANN (NTM), LSTM controller": (0.0, 35.4, 61.2, 71.7, 77.7, 88.4),
        },
    ),
}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def format_cell(value: Any, interval: Any = None) -> str:
    """``45.0 [43.1, 46.9]``; ``45.0`` without an interval; a dash for a missing value."""
    number = _number(value)
    if number is None:
        return DASH
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        low, high = (_number(v) for v in interval)
        if low is not None and high is not None:
            return f"{number:.1f} [{low:.1f}, {high:.1f}]"
    return f"{number:.1f}"


def format_duration(seconds: Any) -> str:
    """``45 s``, ``12.5 min`` or ``3.4 h``; a dash when unknown."""
    value = _number(seconds)
    if value is None:
        return DASH
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def result_row(label: str, payload: dict[str, Any]) -> list[str]:
    """The cells of one run: accuracies (with intervals), episodes, step, wall time."""
    accuracy = payload.get("accuracy_percent", {})
    intervals = payload.get("ci95_percent") or {}
    checkpoint = payload.get("checkpoint") or {}
    episodes = payload.get("episodes")
    step = checkpoint.get("global_step")
    return [
        label,
        *(format_cell(accuracy.get(c), intervals.get(c)) for c in COLUMNS),
        DASH if episodes is None else str(episodes),
        DASH if step is None else str(step),
        format_duration(checkpoint.get("wall_s")),
    ]


def paper_rows(table: str) -> list[list[str]]:
    """Rows of the paper's ``table`` (``table1``, ``table2-5``, ``table2-15``), labelled."""
    _, rows = PAPER[table]
    return [
        [f"paper: {name}", *(DASH if v is None else f"{v:.1f}" for v in values), DASH, DASH, DASH]
        for name, values in rows.items()
    ]


def markdown(rows: Sequence[Sequence[str]], first: str = "model") -> str:
    """A Markdown table: a row per run, the paper's presentation columns."""
    header = [first, *COLUMNS, "episodes", "step", "wall time"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def single_run_markdown(label: str, payload: dict[str, Any]) -> str:
    """The ``test_results.md`` of one ``mann test``: table, then which checkpoint it is."""
    lines = [markdown([result_row(label, payload)]), ""]
    checkpoint = payload.get("checkpoint") or {}
    if checkpoint.get("path"):
        step = checkpoint.get("global_step")
        lines.append(
            f"Checkpoint: `{checkpoint['path']}` (step {DASH if step is None else step}, "
            f"training wall time {format_duration(checkpoint.get('wall_s'))})."
        )
    else:
        lines.append("Checkpoint: none (the model's weights as they were in memory).")
    if payload.get("ci95_percent"):
        lines.append(
            f"Accuracy in %; [low, high]: 95% bootstrap interval over the "
            f"{payload.get('episodes', DASH)} test episodes (1000 resamples)."
        )
    return "\n".join(lines)


def notes(payloads: Sequence[dict[str, Any]], paper: str) -> list[str]:
    """Lines under the table: what the intervals and paper rows are."""
    lines = ["Accuracy (%) at the k-th presentation of a class within an episode."]
    if any(p.get("ci95_percent") for p in payloads):
        lines.append(
            "[low, high]: 95% percentile bootstrap interval over test episodes "
            "(episodes resampled with replacement, 1000 resamples)."
        )
    if paper != "none":
        source, rows = PAPER[paper]
        lines.append(
            f"Rows labelled paper: {source}." if rows else f"{source}: no row transcribed."
        )
    return lines
