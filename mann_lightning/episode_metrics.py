"""Per-episode accuracy counts and bootstrap intervals for the test results.

:class:`~mann_lightning.metrics.InstanceAccuracy` sums correct and total steps per
presentation over the whole test set: cheap, and enough for the point estimates. How sure
those estimates are depends on how they vary from episode to episode, so the test stage also
keeps, for every episode, its correct and total counts per presentation
(:class:`EpisodeAccuracy`, a ``cat`` state: under DDP every process's episodes are gathered),
and :func:`bootstrap_interval` resamples the episodes with replacement to give a percentile
interval per presentation (95% by default, 1000 resamples, fixed seed: the same counts always
give the same interval).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from .metrics import correct_steps, paper_table, refuse_below_one
from .value_checks import is_positive_int

RESAMPLES = 1000
CONFIDENCE = 0.95
SEED = 0


class EpisodeAccuracy(Metric):
    """Correct and total steps per episode and presentation ``1..max_instances``.

    ``update(preds, targets, instances)`` takes the arguments of
    :class:`~mann_lightning.metrics.InstanceAccuracy` (a string label is correct only if
    every character is). ``compute()`` returns ``(correct, total)``, two ``long`` tensors
    ``[episodes, max_instances]``: one row per episode seen, on all processes.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, max_instances: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not is_positive_int(max_instances):
            raise ValueError(
                f"EpisodeAccuracy: max_instances must be an integer >= 1, got {max_instances!r}."
            )
        self.max_instances = max_instances
        self.add_state("correct", default=[], dist_reduce_fx="cat")
        self.add_state("total", default=[], dist_reduce_fx="cat")
        self.add_state("below_one", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, targets: Tensor, instances: Tensor) -> None:
        correct = correct_steps(preds, targets, instances, "EpisodeAccuracy")
        if instances.dim() != 2:
            raise ValueError(
                f"EpisodeAccuracy: instances {tuple(instances.shape)} must be [batch, time]."
            )
        instances = instances.long()
        self.below_one += (instances < 1).sum()  # refused in compute (no host sync here)
        keep = (instances >= 1) & (instances <= self.max_instances)
        # Later presentations go to a spill column that is dropped (no host sync).
        column = torch.where(keep, instances - 1, self.max_instances)
        counts = torch.zeros(
            2, instances.shape[0], self.max_instances + 1, dtype=torch.long, device=column.device
        )
        counts[0].scatter_add_(1, column, torch.ones_like(column))
        counts[1].scatter_add_(1, column, correct.long())
        self.total.append(counts[0, :, : self.max_instances])
        self.correct.append(counts[1, :, : self.max_instances])

    def compute(self) -> tuple[Tensor, Tensor]:
        refuse_below_one(self.below_one, "EpisodeAccuracy")
        if isinstance(self.total, list) and not self.total:
            empty = torch.zeros(0, self.max_instances, dtype=torch.long, device=self.device)
            return empty, empty.clone()
        return _rows(self.correct, self.max_instances), _rows(self.total, self.max_instances)


def _rows(state: Tensor | list[Tensor], width: int) -> Tensor:
    """The ``[episodes, width]`` counts of a state (a list, or one tensor after a DDP sync)."""
    return dim_zero_cat(state).reshape(-1, width).long()


def bootstrap_interval(
    correct: Tensor,
    total: Tensor,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
    chunk: int = 100,
) -> Tensor:
    """Percentile bootstrap interval of the pooled accuracy per presentation.

    Args:
        correct, total: ``[episodes, presentations]`` counts (:class:`EpisodeAccuracy`).
        resamples: Bootstrap resamples ``B``; each draws ``episodes`` episodes with replacement
            and pools their counts (accuracy = resampled correct / resampled total).
        confidence: Coverage of the interval (0.95: the 2.5% and 97.5% percentiles).
        seed: Seed of the generator: the same counts always give the same interval.
        chunk: Resamples drawn at once (memory: ``chunk x episodes`` weights).

    Returns:
        ``[presentations, 2]`` float64 ``(low, high)`` accuracies in ``[0, 1]``; NaN for a
        presentation that no episode reached (and for every one when there are no episodes).
    """
    if correct.shape != total.shape or correct.dim() != 2:
        raise ValueError(
            f"bootstrap_interval: correct {tuple(correct.shape)} and total "
            f"{tuple(total.shape)} must both be [episodes, presentations]."
        )
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(
            f"bootstrap_interval: needs resamples >= 1 and 0 < confidence < 1, "
            f"got {resamples} and {confidence}."
        )
    episodes, width = correct.shape
    if episodes == 0:
        return torch.full((width, 2), torch.nan, dtype=torch.float64)
    counts = torch.stack([correct, total]).to("cpu", torch.float64)  # [2, E, K]
    generator = torch.Generator().manual_seed(seed)
    accuracies = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        picks = torch.randint(episodes, (size, episodes), generator=generator)
        # How often each episode is drawn in each resample: [size, E].
        weights = torch.zeros(size, episodes, dtype=torch.float64)
        weights.scatter_add_(1, picks, torch.ones(size, episodes, dtype=torch.float64))
        pooled = weights @ counts  # [2, size, K]
        accuracies.append(torch.where(pooled[1] > 0, pooled[0] / pooled[1], torch.nan))
    samples = torch.cat(accuracies)  # [B, K]
    alpha = (1.0 - confidence) / 2
    levels = torch.tensor([alpha, 1.0 - alpha], dtype=torch.float64)
    return torch.nanquantile(samples, levels, dim=0).T.contiguous()


def pooled_accuracy(correct: Tensor, total: Tensor) -> Tensor:
    """``[presentations]`` accuracy of all episodes pooled (NaN where no step was seen)."""
    right = correct.sum(0).to(torch.float64)
    seen = total.sum(0).to(torch.float64)
    return torch.where(seen > 0, right / seen.clamp_min(1), torch.nan)


def paper_intervals(interval: Tensor) -> dict[str, list[float]]:
    """The paper's columns of a :func:`bootstrap_interval` as ``{"1st": [low, high], ...}``
    (%, rounded to 4 decimals)."""
    low, high = paper_table(interval[:, 0]), paper_table(interval[:, 1])
    return {name: [round(low[name], 4), round(high[name], 4)] for name in low}
