"""The result of a binding-retention measurement: accuracy by gap and by interleaved classes.

:func:`~mann_lightning.retention.binding_retention` records, for every step of its streams whose
class was shown before, whether the label was predicted, the gap and the interleaved classes
(definitions in :mod:`~mann_lightning.retention`; computed by :func:`gaps_and_interleaved`).
:func:`bin_records` aggregates these records
into doubling bins, ``[1] [2] [3-4] [5-8] [9-16] ...`` for the gap and ``[0] [1] [2] [3-4]
[5-8] ...`` for the interleaved classes, as a :class:`BindingRetention`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


def doubling_edges(low: int, high: int) -> list[int]:
    """Lower edges of doubling bins from ``low`` up to ``high``: ``low`` and the values
    ``1, 2, 3, 5, 9, 17, ...`` (1 and ``1 + 2 ** i``) between ``low`` and ``high``.

    ``doubling_edges(1, 20) == [1, 2, 3, 5, 9, 17]`` (bins 1, 2, 3-4, 5-8, 9-16, 17-20) and
    ``doubling_edges(0, 9) == [0, 1, 2, 3, 5, 9]``.
    """
    edges, power = {low, 1}, 1
    while 1 + power <= high:
        edges.add(1 + power)
        power *= 2
    return sorted(e for e in edges if low <= e <= max(high, low))


def gaps_and_interleaved(slots: Tensor) -> tuple[Tensor, Tensor]:
    """Gap and interleaved classes of every step (defined in :mod:`~mann_lightning.retention`).

    Args:
        slots: ``[batch, steps]`` class shown at each step (any non-negative ids).

    Returns:
        ``gap [batch, steps]`` (0 at a class's first showing) and ``interleaved
        [batch, steps]`` (-1 at a first showing). E.g. ``A B A C B A`` gives gaps
        ``0 0 2 0 3 3`` and interleaved ``-1 -1 1 -1 2 2``.
    """
    batch, steps = slots.shape
    width = int(slots.max()) + 1 if slots.numel() else 1
    last = torch.full((batch, width), -1, dtype=torch.long, device=slots.device)
    gap = torch.zeros_like(slots)
    interleaved = torch.full_like(slots, -1)
    for t in range(steps):
        c = slots[:, t : t + 1]
        seen = last.gather(1, c)  # [B, 1] latest earlier step, -1 if none
        shown = seen.squeeze(1) >= 0
        gap[:, t] = torch.where(shown, t - seen.squeeze(1), 0)
        # classes whose latest showing is after t' were shown in (t', t); c itself is not
        others = (last > seen).sum(1)
        interleaved[:, t] = torch.where(shown, others, -1)
        last.scatter_(1, c, t)
    return gap, interleaved


@dataclass(frozen=True)
class RetentionBin:
    """Steps whose gap (or interleaved classes) lies in ``low..high``, inclusive.

    Attributes:
        low: Smallest value in the bin.
        high: Largest value in the bin.
        count: Steps in the bin.
        correct: Of these, steps whose label was predicted.
    """

    low: int
    high: int
    count: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        """``correct / count``, ``None`` for an empty bin."""
        return self.correct / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``low``, ``high``, ``count``, ``correct``, ``accuracy``."""
        return {
            "low": self.low, "high": self.high, "count": self.count, "correct": self.correct,
            "accuracy": self.accuracy,
        }  # fmt: skip


def make_bins(values: Tensor, correct: Tensor, edges: list[int], high: int) -> list[RetentionBin]:
    """Count ``values`` (1-D) and their ``correct`` flags into bins with lower ``edges``.

    The last bin reaches ``high``; values outside ``edges[0]..high`` are counted in no bin.
    """
    bins = []
    for i, low in enumerate(edges):
        top = edges[i + 1] - 1 if i + 1 < len(edges) else high
        inside = (values >= low) & (values <= top)
        bins.append(RetentionBin(low, top, int(inside.sum()), int((inside & correct).sum())))
    return bins


@dataclass
class BindingRetention:
    """Accuracy on repeated classes of label-consistent streams.

    Attributes:
        config: The measurement's settings (encoding, ``K``, steps, batch, seed, revisit, ...).
        correct: ``[R]`` bool, one per repeated step (all streams, flattened in step order).
        gap: ``[R]`` steps since the class was last shown (1 = at the previous step).
        interleaved: ``[R]`` distinct other classes shown since then.
        by_gap: Accuracy in doubling gap bins.
        by_interleaved: Accuracy in doubling interleaved-class bins.
        accuracy: Accuracy over all repeated steps (``None`` if there were none).
        first_accuracy: Accuracy at first showings (chance level; ``None`` if none).
        first_count: Number of first showings.
        extra: More JSON-ready entries for :meth:`to_dict` (e.g. the training step).
    """

    config: dict[str, Any]
    correct: Tensor
    gap: Tensor
    interleaved: Tensor
    by_gap: list[RetentionBin]
    by_interleaved: list[RetentionBin]
    accuracy: float | None
    first_accuracy: float | None
    first_count: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the bins, not the per-step records)."""
        return {
            **self.config,
            "repeats": int(self.correct.numel()),
            "accuracy": self.accuracy,
            "first_count": self.first_count,
            "first_accuracy": self.first_accuracy,
            "by_gap": [b.to_dict() for b in self.by_gap],
            "by_interleaved": [b.to_dict() for b in self.by_interleaved],
            **self.extra,
        }


def bin_records(
    correct: Tensor,
    gap: Tensor,
    interleaved: Tensor,
    first_correct: Tensor,
    config: dict[str, Any],
) -> BindingRetention:
    """Aggregate per-step records of repeated classes into a :class:`BindingRetention`.

    Args:
        correct: Bool flags of the repeated steps (any shape; flattened).
        gap: Their gaps (>= 1).
        interleaved: Their interleaved-class counts (>= 0).
        first_correct: Bool flags of the first showings.
        config: Settings stored with the result; ``steps`` and ``num_classes``, when present,
            bound the last gap bin (``steps - 1``) and interleaved bin (``num_classes - 1``).
    """
    correct, gap = correct.flatten().bool().cpu(), gap.flatten().long().cpu()
    interleaved = interleaved.flatten().long().cpu()
    first_correct = first_correct.flatten().bool().cpu()
    max_gap = max(int(config.get("steps", _top(gap) + 1)) - 1, 1)
    classes = int(config.get("num_classes", _top(interleaved) + 1))
    max_between = max(classes - 1, 0)
    return BindingRetention(
        config=dict(config),
        correct=correct,
        gap=gap,
        interleaved=interleaved,
        by_gap=make_bins(gap, correct, doubling_edges(1, max_gap), max_gap),
        by_interleaved=make_bins(interleaved, correct, doubling_edges(0, max_between), max_between),
        accuracy=_mean(correct),
        first_accuracy=_mean(first_correct),
        first_count=int(first_correct.numel()),
    )


def _top(values: Tensor) -> int:
    return int(values.max()) if values.numel() else 0


def _mean(flags: Tensor) -> float | None:
    return float(flags.float().mean()) if flags.numel() else None
