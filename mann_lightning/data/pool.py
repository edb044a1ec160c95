"""Episodes from any labelled images: a ragged per-class pool and its batched sampler.

:class:`~.datamodule.OmniglotEpisodes` samples from a rectangular array (every character has
20 drawings). Real data sets, and the continual layer's experiences, are ragged: classes
have different numbers of images, some fewer than ``samples_per_class`` (Avalanche's
replay buffer may keep one or two images of an old class). A :class:`ClassPool` holds each
class's images padded to the largest class, and :func:`sample_pool_episodes` draws a batch
of episodes from it with a handful of tensor operations on the pool's device, no Python
loop per episode:

* a class with at least ``samples_per_class`` images gives distinct images (drawn without
  replacement); a class with fewer gives images drawn with replacement (repeats). Build the
  pool with ``min_count=samples_per_class`` to exclude such classes instead;
* with ``group_counts`` the ``N`` classes of an episode are split between the pool's groups
  (e.g. current classes and replayed classes) by fixed numbers per episode.

Images are converted to the model's input by :func:`to_model_inputs` (documented there).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .augment import random_affine
from .episodes import (
    EpisodeBatch,
    LabelEncoding,
    check_episode_shape,
    episode_labels,
    episode_order,
    single_threaded_on_cpu,
)


def to_model_inputs(images: Tensor, input_size: int) -> Tensor:
    """Images of any data set as ``[M, input_size]`` float features for the MANN.

    Rules, in order: ``uint8`` images are scaled to ``[0, 1]``; an image with exactly
    ``input_size`` values is flattened as it is; otherwise, when ``input_size`` is a square
    ``S * S``, a ``[C, H, W]`` or ``[H, W]`` image is averaged over its channels (grey
    scale) and resized to ``S x S`` (bilinear with antialiasing, which averages areas when
    shrinking); anything else is an error.

    Args:
        images: ``[M, ...]`` a batch of images (any layout with ``M`` first).
        input_size: Features per step of the model (``image_size ** 2`` for Omniglot).

    Returns:
        ``[M, input_size]`` float32.
    """
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
    count = x.shape[0]
    if x[0].numel() == input_size:
        return x.reshape(count, input_size)
    side = math.isqrt(input_size)
    if side * side != input_size or x.dim() not in (3, 4):
        raise ValueError(
            f"Images of shape {tuple(images.shape[1:])} cannot be fed to a model with "
            f"input_size={input_size}: give the model input_size={x[0].numel()} (flattened "
            "images) or a square input_size S*S (images are then grey-scaled and resized to "
            "S x S)."
        )
    if x.dim() == 3:
        x = x.unsqueeze(1)
    x = x.mean(1, keepdim=True)
    x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return x.reshape(count, input_size)


class ClassPool(NamedTuple):
    """Images of ``K`` classes, padded per class to the largest class's count ``M``.

    Attributes:
        images: ``[K, M, F]`` float features; rows past a class's count are zero padding.
        counts: ``[K]`` int64 images of each class (at least 1).
        class_ids: ``[K]`` int64 data set label of each class.
        groups: ``[K]`` int64 group of each class (e.g. 0 = current, 1 = replayed).
        group_sizes: Classes in group 0, 1, ... (read once when the pool is built, so that
            sampling never waits for the device).
    """

    images: Tensor
    counts: Tensor
    class_ids: Tensor
    groups: Tensor
    group_sizes: tuple[int, ...] = ()

    def __len__(self) -> int:
        return int(self.counts.numel())

    def group_size(self, group: int) -> int:
        """Number of classes in ``group``."""
        return self.group_sizes[group] if group < len(self.group_sizes) else 0

    @staticmethod
    def from_tensors(
        features: Tensor, labels: Tensor, groups: Tensor | None = None, min_count: int = 1
    ) -> ClassPool:
        """Group ``[M, F]`` features by their ``[M]`` labels (one loop over classes, once).

        Args:
            features: ``[M, F]`` model inputs (see :func:`to_model_inputs`).
            labels: ``[M]`` integer class labels.
            groups: ``[M]`` group of each image (a class takes its first image's group);
                ``None``: all in group 0.
            min_count: Leave out classes with fewer images than this.
        """
        labels = labels.to(features.device).long()
        class_ids, inverse, counts = labels.unique(return_inverse=True, return_counts=True)
        order = inverse.argsort(stable=True)  # images grouped by class, in data set order
        offsets = torch.cumsum(counts, 0) - counts
        position = torch.arange(labels.numel(), device=labels.device) - offsets[inverse[order]]
        padded = features.new_zeros(class_ids.numel(), int(counts.max()), features.shape[1])
        padded[inverse[order], position] = features[order]
        group_of = torch.zeros_like(class_ids)
        if groups is not None:  # a class's group is its first image's
            index = torch.arange(labels.numel(), device=labels.device)
            first = torch.full_like(class_ids, labels.numel()).scatter_reduce(
                0, inverse, index, "amin"
            )
            group_of = groups.to(labels.device).long()[first]
        keep = counts >= min_count
        sizes = tuple(torch.bincount(group_of[keep]).tolist())
        return ClassPool(padded[keep], counts[keep], class_ids[keep], group_of[keep], sizes)


def sample_pool_episodes(
    pool: ClassPool,
    num_classes: int,
    samples_per_class: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    encoding: LabelEncoding = "onehot",
    group_counts: tuple[int, ...] | None = None,
    image_side: int | None = None,
    max_translation: float = 0.0,
    max_rotation: float = 0.0,
) -> EpisodeBatch:
    """Draw a batch of episodes from a ragged :class:`ClassPool`, on its device.

    Args:
        pool: The classes and their images.
        num_classes: Classes per episode ``N``.
        samples_per_class: Images per class ``s``; an episode has ``T = N * s`` steps.
        batch_size: Episodes ``B``.
        generator: Random generator on the pool's device.
        encoding: ``"onehot"`` or ``"string"`` labels.
        group_counts: Classes per episode taken from group 0, 1, ... (summing to ``N``);
            ``None``: the ``N`` classes are drawn uniformly from the whole pool.
        image_side: Side ``S`` of the square images, needed for jitter.
        max_translation: Per-image random shift, a fraction of the side (needs ``image_side``).
        max_rotation: Per-image random rotation range in degrees (needs ``image_side``).

    Returns:
        The :class:`~.episodes.EpisodeBatch`.
    """
    check_episode_shape(num_classes, samples_per_class, len(pool), encoding, "this pool")
    if group_counts is not None:
        if sum(group_counts) != num_classes:
            raise ValueError(f"group_counts {group_counts} must sum to num_classes={num_classes}.")
        for group, wanted in enumerate(group_counts):
            if wanted > pool.group_size(group):
                raise ValueError(
                    f"An episode needs {wanted} classes of group {group}, the pool has "
                    f"{pool.group_size(group)}."
                )
    jitter = max_translation > 0 or max_rotation > 0
    if jitter and image_side is None:
        raise ValueError("Jitter (max_translation / max_rotation) needs square images: image_side.")
    with single_threaded_on_cpu(pool.images.device):
        return _sample_pool(
            pool, num_classes, samples_per_class, batch_size, generator, encoding, group_counts,
            image_side, max_translation, max_rotation,
        )  # fmt: skip


def _choose_classes(
    pool: ClassPool, b: int, n: int, group_counts: tuple[int, ...] | None, rand
) -> Tensor:
    """``[B, N]`` distinct pool rows per episode (by group when ``group_counts`` is given)."""
    keys = rand(b, len(pool))
    if group_counts is None:
        return keys.topk(n, dim=1).indices
    parts = []
    for group, wanted in enumerate(group_counts):
        if wanted:
            masked = keys.masked_fill(pool.groups != group, -1.0)
            parts.append(masked.topk(wanted, dim=1).indices)
    return torch.cat(parts, 1)


def _sample_pool(
    pool: ClassPool,
    n: int,
    s: int,
    b: int,
    generator: torch.Generator | None,
    encoding: LabelEncoding,
    group_counts: tuple[int, ...] | None,
    image_side: int | None,
    max_translation: float,
    max_rotation: float,
) -> EpisodeBatch:
    """Body of :func:`sample_pool_episodes` (arguments already checked)."""
    device = pool.images.device
    width = pool.images.shape[1]

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, device=device)

    classes = _choose_classes(pool, b, n, group_counts, rand)  # [B, N]
    labels = rand(b, n).argsort(dim=1)  # label of each chosen class
    counts = pool.counts[classes].unsqueeze(-1)  # [B, N, 1]
    # without replacement: the s smallest random keys among a class's valid positions
    keys = rand(b, n, width).masked_fill(torch.arange(width, device=device) >= counts, 2.0)
    distinct = keys.topk(min(s, width), dim=-1, largest=False).indices
    if s > width:
        distinct = torch.cat([distinct, distinct.new_zeros(b, n, s - width)], -1)
    repeats = (rand(b, n, s) * counts).long().clamp_max(counts - 1)  # with replacement
    sample = torch.where(counts >= s, distinct, repeats)  # [B, N, s]

    order, slot, instances = episode_order(b, n, s, rand)
    rows = classes.gather(1, slot)  # [B, T] pool row of each step
    columns = sample.view(b, n * s).gather(1, order)
    x = pool.images[rows, columns]  # [B, T, F]
    if max_translation > 0 or max_rotation > 0:
        assert image_side is not None
        flat = x.reshape(-1, image_side, image_side)
        x = random_affine(flat, generator, max_translation, max_rotation).reshape(x.shape)
    targets, prev = episode_labels(labels.gather(1, slot), encoding, n, rand)
    return EpisodeBatch(x, prev, targets, instances)
