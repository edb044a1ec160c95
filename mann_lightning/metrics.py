"""Accuracy by presentation: the paper's Table 1 / Table 2 columns.

Santoro et al. report accuracy on the 1st, 2nd, ..., 10th instance of a class within an
episode. :class:`InstanceAccuracy` counts, per presentation index, correct steps and all
steps; both are summed across processes, so the accuracy is exact under DDP and correct
when classes appear unequally often (each step counts once, in its own column).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from .value_checks import is_positive_int

PAPER_COLUMNS: tuple[int, ...] = (1, 2, 3, 4, 5, 10)


class InstanceAccuracy(Metric):
    """Accuracy per presentation index ``1..max_instances``.

    Args:
        max_instances: Columns kept; later presentations are counted in no column.

    ``update(preds, targets, instances)`` takes predicted and true labels of equal shape,
    ``[batch, time]`` (one-hot labels) or ``[batch, time, chars]`` (string labels: a step
    is correct only if every character is), and ``instances`` ``[batch, time]`` with
    1-based presentation indices. ``compute()`` returns ``[max_instances]`` accuracies,
    NaN for a column that saw no step.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, max_instances: int = 10, **kwargs) -> None:
        super().__init__(**kwargs)
        if not is_positive_int(max_instances):
            raise ValueError(
                f"InstanceAccuracy: max_instances must be an integer >= 1, got {max_instances!r}."
            )
        self.max_instances = max_instances
        self.add_state(
            "correct", torch.zeros(max_instances, dtype=torch.long), dist_reduce_fx="sum"
        )
        self.add_state("total", torch.zeros(max_instances, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("below_one", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, targets: Tensor, instances: Tensor) -> None:
        correct = correct_steps(preds, targets, instances, "InstanceAccuracy")
        instances = instances.reshape(-1).long()
        self.below_one += (instances < 1).sum()  # refused in compute (no host sync here)
        keep = (instances >= 1) & (instances <= self.max_instances)
        # Out-of-range presentations go to a spill bin that is dropped (no host sync).
        column = torch.where(keep, instances - 1, self.max_instances)
        counts = torch.zeros(2, self.max_instances + 1, dtype=torch.long, device=column.device)
        counts[0].index_add_(0, column, torch.ones_like(column))
        counts[1].index_add_(0, column, correct.reshape(-1).long())
        self.total += counts[0, : self.max_instances]
        self.correct += counts[1, : self.max_instances]

    def compute(self) -> Tensor:
        refuse_below_one(self.below_one, "InstanceAccuracy")
        total = self.total.to(torch.float64)
        return torch.where(total > 0, self.correct / total.clamp_min(1), torch.nan)


def correct_steps(preds: Tensor, targets: Tensor, instances: Tensor, name: str) -> Tensor:
    """``[batch, time]`` booleans: the step's label is right (every character of a string).

    Raises:
        ValueError: naming metric ``name``, when the shapes do not match or ``instances``
            are not integers.
    """
    if preds.shape != targets.shape:
        raise ValueError(
            f"{name}: preds {tuple(preds.shape)} and targets {tuple(targets.shape)} must have "
            "the same shape."
        )
    correct = preds == targets
    if correct.dim() == instances.dim() + 1:
        correct = correct.all(-1)
    if correct.shape != instances.shape:
        raise ValueError(
            f"{name}: instances {tuple(instances.shape)} must be [batch, time] matching the "
            f"labels {tuple(targets.shape)}."
        )
    if instances.is_floating_point() or instances.dtype == torch.bool:
        raise ValueError(
            f"{name}: instances must be integer presentation numbers (1-based), got "
            f"{instances.dtype}."
        )
    return correct


def refuse_below_one(below_one: Tensor, name: str) -> None:
    """Raise if steps had presentation indices below 1 (counted in no column, they would
    shift every column of 0-based indices by one); read in ``compute``, which syncs anyway."""
    if (count := int(below_one)) > 0:
        raise ValueError(
            f"{name}: {count} steps had presentation indices below 1; instances are 1-based "
            "(the 1st presentation of a class is 1), as OmniglotEpisodes gives them."
        )


def paper_table(accuracy: Tensor, columns: tuple[int, ...] = PAPER_COLUMNS) -> dict[str, float]:
    """The paper's columns (1st, 2nd, 3rd, 4th, 5th, 10th) as percentages."""
    values = accuracy.tolist()
    return {
        _ordinal(k): (100.0 * values[k - 1] if k <= len(values) else float("nan")) for k in columns
    }


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    """A Markdown table with one row per run name and one column per presentation."""
    columns = list(next(iter(rows.values())))
    lines = [
        "| model | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.1f}" for c in columns) + " |")
    return "\n".join(lines)


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"
