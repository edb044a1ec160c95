"""``interference.png``: proactive interference against the number of pre-loading episodes.

:class:`~mann_lightning.interference.ProactiveInterferenceCallback` writes it next to
``interference.json`` after every measurement: two panels, the accuracy at the 2nd presentation
and at the 10th (or the last presentation reached), against ``k``, one line per evaluation
(the latest :data:`MAX_LINES`, labelled by training step; the latest drawn darkest).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Evaluations drawn per panel (the latest ones).
MAX_LINES = 6


def late_presentation(evaluations: Sequence[dict[str, Any]], wanted: int = 10) -> int:
    """The presentation of the second panel: ``wanted`` if any evaluation reached it, else the
    last presentation with a value in any evaluation (at least 2)."""
    reached = 2
    for evaluation in evaluations:
        for values in evaluation["accuracy"].values():
            for index, value in enumerate(values, start=1):
                if value is not None and not math.isnan(value):
                    reached = max(reached, index)
    return min(wanted, reached)


def draw_interference(evaluations: Sequence[dict[str, Any]], path: Path) -> Path:
    """Save accuracy against ``k`` (2nd and 10th-or-last presentation) as a PNG.

    Args:
        evaluations: ``interference.json``'s ``evaluations`` (each with ``step`` and
            ``accuracy``: ``{str(k): [acc at 1st, 2nd, ...]}``, ``None`` for no value).
        path: The PNG to write (folders are created).

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = list(evaluations)[-MAX_LINES:]
    late = late_presentation(shown)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, presentation in zip(axes, (2, late), strict=True):
        for rank, evaluation in enumerate(shown, start=1):
            ks = sorted(evaluation["accuracy"], key=int)
            points = [
                (int(k), values[presentation - 1])
                for k in ks
                if len(values := evaluation["accuracy"][k]) >= presentation
                and values[presentation - 1] is not None
                and not math.isnan(values[presentation - 1])
            ]
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            shade = 0.25 + 0.75 * rank / len(shown)
            ax.plot(xs, ys, marker="o", alpha=shade, label=f"step {evaluation.get('step')}")
        ax.set_xscale("symlog", linthresh=1)
        ax.set(
            xlabel="k (episodes pre-loaded into the memory)",
            ylabel="accuracy" if presentation == 2 else None,
            title=f"presentation {presentation}",
            ylim=(0, 1.05),
        )
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Proactive interference: accuracy after k earlier episodes", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
