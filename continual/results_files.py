"""Result files of a stream run: the Markdown matrix and JSON-ready values."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from mann_lightning.strict_json import finite_or_none


def markdown_matrix(results: dict[str, Any]) -> str:
    """The 2nd-presentation accuracy matrix (percent) as a Markdown table."""
    matrix = results["accuracy_matrix"]
    count = len(results["experiences"])
    lines = [
        "2nd-presentation accuracy (%): row i = after training through experience i, "
        "column j = test experience j.",
        "",
        "| after \\ test | " + " | ".join(str(j) for j in range(count)) + " |",
        "|---|" + "---|" * count,
    ]
    for i, row in enumerate(matrix):
        cells = [f"{100 * v:.1f}" if v is not None else "-" for v in row]
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    lines += ["", "Experiences:"] + [
        f"{j}. {name}" for j, name in enumerate(results["experiences"])
    ]
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    """Plain JSON values (NaN as ``None``) from metric results: dicts, lists, numbers,
    tensors and objects with ``to_dict()``."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return clean(value)
    return value


def clean(value: float) -> float | None:
    """JSON has no NaN: a presentation never reached is ``None`` (as is an infinite value)."""
    return None if value is None else finite_or_none(float(value))


def commit() -> str | None:
    """The project's git commit, when it runs from a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
