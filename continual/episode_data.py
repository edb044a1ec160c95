"""From an Avalanche experience's data to batches of episodes the strategy loop can consume.

:func:`gather_pool` reads datasets once (through their own transforms and collate function,
on the strategy's device) into a :class:`~mann_lightning.data.pool.ClassPool`;
:class:`EpisodeLoader` stands in for the strategy's dataloader and yields, per batch of
``B`` episodes of ``T`` steps, the minibatch ``[x, y, instances, task_labels]``:

* ``x``: ``[B, T, F + L]`` the images ``x_t`` followed by the encoded previous label
  ``y_{t-1}`` (what :class:`~continual.episodic_model.EpisodicMANN` unpacks);
* ``y``: ``[B * T]`` the label of every step (one-hot: ``0..N-1``; strings: the string's code
  in ``0..3124``), matching the model's ``[B * T, C]`` output rows;
* ``instances``: ``[B * T]`` presentation index of every step (1 = first sight of its class);
* ``task_labels``: ``[B * T]`` zeros (one head, class-incremental: task labels are ignored).

Avalanche reads ``mb_x = mbatch[0]``, ``mb_y = mbatch[1]`` and ``mb_task_id = mbatch[-1]``;
episode-aware metrics read ``mbatch[2]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from mann_lightning.data.episodes import EpisodeBatch, LabelEncoding, string_to_code
from mann_lightning.data.pool import ClassPool, to_model_inputs

#: Index of the presentation indices in the plugin's minibatches.
INSTANCES_INDEX = 2


def gather_pool(
    datasets: Sequence[Dataset],
    input_size: int,
    device: torch.device,
    current_classes: set[int] | None = None,
    min_count: int = 1,
    batch_size: int = 1024,
) -> ClassPool:
    """Read whole datasets into a pool of model inputs grouped by class.

    Args:
        datasets: Avalanche (or any ``(x, y, ...)``) datasets; their transforms apply.
        input_size: The model's features per step; images are converted by
            :func:`~mann_lightning.data.pool.to_model_inputs`.
        device: Where the pool (and so the sampling) lives.
        current_classes: Labels of the current experience (group 0); other labels form
            group 1 (e.g. replayed classes). ``None``: everything is group 0.
        min_count: Leave out classes with fewer images (``samples_per_class`` to exclude
            classes too small to give distinct images).
        batch_size: Images read per step.
    """
    features, labels = [], []
    for dataset in datasets:
        if len(dataset) == 0:  # type: ignore[arg-type]
            continue
        collate = getattr(dataset, "collate_fn", None)
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            x, y = batch[0], torch.as_tensor(batch[1])
            features.append(to_model_inputs(x.to(device), input_size))
            labels.append(y.to(device).long().reshape(-1))
    if not features:
        raise ValueError("The experience holds no data to draw episodes from.")
    all_labels = torch.cat(labels)
    groups = None
    if current_classes is not None:
        known = torch.tensor(sorted(current_classes), device=device, dtype=torch.long)
        groups = (~torch.isin(all_labels, known)).long()
    return ClassPool.from_tensors(torch.cat(features), all_labels, groups, min_count)


def to_minibatch(batch: EpisodeBatch, encoding: LabelEncoding) -> list[Tensor]:
    """An :class:`EpisodeBatch` as the strategy's ``[x, y, instances, task_labels]``."""
    packed = torch.cat([batch.inputs, batch.prev_labels.to(batch.inputs.dtype)], -1)
    targets = batch.targets if encoding == "onehot" else string_to_code(batch.targets)
    y = targets.reshape(-1)
    return [packed, y, batch.instances.reshape(-1), torch.zeros_like(y)]


def from_minibatch(mbatch: Sequence[Tensor], batch_size: int) -> dict[str, Tensor]:
    """Unflatten a plugin minibatch: ``y`` and ``instances`` as ``[B, T]``."""
    return {
        "targets": mbatch[1].view(batch_size, -1),
        "instances": mbatch[INSTANCES_INDEX].view(batch_size, -1),
    }


class EpisodeLoader:
    """A re-iterable, sized stand-in for the strategy's dataloader.

    Args:
        sample: ``sample(index)`` draws batch ``index`` (a deterministic function of it).
        num_batches: Batches per pass.
        encoding: Label encoding of the episodes.
    """

    def __init__(
        self, sample: Callable[[int], EpisodeBatch], num_batches: int, encoding: LabelEncoding
    ) -> None:
        self.sample, self.num_batches, self.encoding = sample, num_batches, encoding

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[Tensor]]:
        for index in range(self.num_batches):
            yield to_minibatch(self.sample(index), self.encoding)


def experience_classes(experience: Any) -> set[int]:
    """Labels of an experience's own data (``classes_in_this_experience`` or its targets)."""
    try:
        classes = experience.classes_in_this_experience
    except (AttributeError, ValueError):  # absent, or masked by Avalanche in this phase
        classes = None
    if classes is None:
        classes = experience.dataset.targets.uniques
    return {int(c) for c in classes}
