"""Mean predictive log-likelihood per step index: the y-axis of the paper's Fig. 6.

:class:`StepLogLikelihood` sums log-likelihoods and counts per step index (0-based in
the state, reported 1-based: "step k" is the prediction after ``k - 1`` observed
points). Both sums are reduced by ``sum`` across processes, so the means are exact under
DDP. :func:`loglik_table` renders rows (MANN, exact GP, LSTM, ...) as Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

TABLE_STEPS: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 30, 40, 50)


class StepLogLikelihood(Metric):
    """Mean log-likelihood per step index ``0..max_steps-1``.

    Args:
        max_steps: Step indices tracked; later steps are counted in no column.

    ``update(log_lik)`` takes ``[batch, time]`` log-likelihoods; ``compute()`` returns
    ``[max_steps]`` float64 means, NaN for a step that saw no episode.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, max_steps: int = 100, **kwargs) -> None:
        super().__init__(**kwargs)
        if max_steps < 1:
            raise ValueError(f"StepLogLikelihood: max_steps must be >= 1, got {max_steps}.")
        self.max_steps = max_steps
        self.add_state("total", torch.zeros(max_steps, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(max_steps, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, log_lik: Tensor) -> None:
        if log_lik.dim() != 2:
            raise ValueError(
                f"StepLogLikelihood: expected log-likelihoods [batch, time], got {tuple(log_lik.shape)}."
            )
        steps = min(log_lik.shape[1], self.max_steps)
        values = log_lik[:, :steps].detach().to(torch.float64)
        self.total[:steps] += values.sum(0)
        self.count[:steps] += values.shape[0]

    def compute(self) -> Tensor:
        return torch.where(self.count > 0, self.total / self.count.clamp_min(1), torch.nan)


def trim(values: Tensor) -> list[float]:
    """Per-step means as a list, without the trailing steps that were never seen."""
    seen = (~torch.isnan(values)).nonzero()
    last = int(seen.max()) + 1 if len(seen) else 0
    return [float(v) for v in values[:last].tolist()]


def summary(per_step: Sequence[float], steps: Sequence[int] = TABLE_STEPS) -> dict[str, float]:
    """Columns ``step k`` (1-based, those within the episode and the last one) plus ``mean``."""
    length = len(per_step)
    chosen = [k for k in steps if k <= length]
    if length and length not in chosen:
        chosen.append(length)
    row = {f"step {k}": float(per_step[k - 1]) for k in chosen}
    row["mean"] = float(sum(per_step) / length) if length else math.nan
    return row


def loglik_table(rows: dict[str, Sequence[float]]) -> str:
    """A Markdown table, one row per model, of the mean log-likelihood at selected steps."""
    summaries = {name: summary(values) for name, values in rows.items()}
    columns: list[str] = []
    for row in summaries.values():
        columns += [c for c in row if c not in columns]
    columns.sort(key=lambda c: (c == "mean", int(c.split()[1]) if c != "mean" else 0))
    lines = [
        "| model | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, row in summaries.items():
        cells = [f"{row[c]:.3f}" if c in row else "" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
