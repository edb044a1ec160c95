"""Batched, on-device sampling of Omniglot episodes (Santoro et al. 2016).

An episode chooses ``N`` classes, gives them a random permutation of the labels
``0..N-1``, draws ``samples_per_class`` drawings of each (distinct drawers while there are
enough) and shuffles all ``T = N * samples_per_class`` of them. The network sees at step
``t`` the image ``x_t`` and the encoding of the previous label ``y_{t-1}`` (zero at
``t = 0``). A whole batch is drawn with a handful of tensor operations, no Python loop.

Each class gets a label in one of the encodings of :mod:`.labels` (one-hot, or a random
five-character string distinct within the episode).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .augment import random_affine
from .labels import (  # the label encodings moved to .labels; all stay importable from here
    NUM_STRINGS,
    LabelEncoding,
    code_to_string,
    encode_targets,
    label_size,
)
from .labels import STRING_LENGTH as STRING_LENGTH
from .labels import STRING_VALUES as STRING_VALUES
from .labels import decode_labels as decode_labels
from .labels import string_to_code as string_to_code


class EpisodeBatch(NamedTuple):
    """A batch of episodes, all tensors on the sampling device.

    Attributes:
        inputs: ``x_t``, ``[batch, time, image_size ** 2]`` float32 in ``[0, 1]``, ink = 1.0.
        prev_labels: Encoding of ``y_{t-1}``, ``[batch, time, label_size]`` float32, zero at
            ``t = 0``.
        targets: ``y_t``: ``[batch, time]`` int64 labels in ``[0, N)`` (one-hot encoding) or
            ``[batch, time, 5]`` int64 characters in ``[0, 5)`` (string encoding).
        instances: ``[batch, time]`` int64: 1 at the first presentation of the step's class
            in the episode, 2 at the second, ...
    """

    inputs: Tensor
    prev_labels: Tensor
    targets: Tensor
    instances: Tensor


def check_episode_shape(
    num_classes: int,
    samples_per_class: int,
    available: int,
    encoding: LabelEncoding,
    where: str,
    fix: str = "lower num_classes (or enable rotations / use a split with more classes)",
) -> None:
    """Raise a ``ValueError`` saying what to change (``fix``) if an episode shape cannot be
    drawn from ``available`` classes of ``where``."""
    label_size(encoding, num_classes)
    if num_classes < 1 or samples_per_class < 1:
        raise ValueError(
            f"num_classes and samples_per_class must be >= 1, got {num_classes} and "
            f"{samples_per_class}."
        )
    if num_classes > available:
        raise ValueError(
            f"num_classes={num_classes} exceeds the {available} classes of {where}; {fix}."
        )
    if encoding == "string" and num_classes > NUM_STRINGS:
        raise ValueError(
            f"num_classes={num_classes} exceeds the {NUM_STRINGS} distinct five-character "
            "strings; lower num_classes or use label_encoding='onehot'."
        )


@contextlib.contextmanager
def single_threaded_on_cpu(device: torch.device) -> Iterator[None]:
    """Run CPU sampling on one intra-op thread, restoring the setting afterwards.

    A batch is a few milliseconds of small operations; spreading them over threads gains
    little, and when the cores are busy (the training step, other processes) every parallel
    region waits for a descheduled thread, which made sampling ~15x slower in measurements.
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def sample_episodes(
    images: Tensor,
    class_characters: Tensor,
    num_classes: int,
    samples_per_class: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    encoding: LabelEncoding = "onehot",
    class_rotations: Tensor | None = None,
    max_translation: float = 0.0,
    max_rotation: float = 0.0,
) -> EpisodeBatch:
    """Draw a batch of episodes on ``images.device``.

    Args:
        images: ``[C, D, S, S]`` images of ``C`` characters by ``D`` drawers, uint8
            (255 = ink) or float (1.0 = ink).
        class_characters: ``[K]`` row of ``images`` for each available class.
        num_classes: Classes per episode ``N``.
        samples_per_class: Drawings per class; episode length ``T = N * samples_per_class``.
        batch_size: Episodes per batch ``B``.
        generator: Random generator on ``images.device`` (the same seed gives the same batch).
        encoding: ``"onehot"`` or ``"string"`` labels.
        class_rotations: ``[K]`` quarter turns (0-3) of each class, or ``None`` for none.
        max_translation: Per-image random shift, as a fraction of the image side.
        max_rotation: Per-image random rotation range in degrees.

    Returns:
        The :class:`EpisodeBatch`.
    """
    check_episode_shape(
        num_classes, samples_per_class, class_characters.numel(), encoding, "this class set"
    )
    with single_threaded_on_cpu(images.device):
        return _sample(
            images, class_characters, num_classes, samples_per_class, batch_size, generator,
            encoding, class_rotations, max_translation, max_rotation,
        )  # fmt: skip


def _sample(
    images: Tensor,
    class_characters: Tensor,
    num_classes: int,
    samples_per_class: int,
    batch_size: int,
    generator: torch.Generator | None,
    encoding: LabelEncoding,
    class_rotations: Tensor | None,
    max_translation: float,
    max_rotation: float,
) -> EpisodeBatch:
    """Body of :func:`sample_episodes` (arguments already checked)."""
    device = images.device
    n, s, b = num_classes, samples_per_class, batch_size
    steps, drawers, size = n * s, images.shape[1], images.shape[-1]

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, device=device)

    classes = rand(b, class_characters.numel()).topk(n, dim=1).indices  # [B, N] distinct
    labels = rand(b, n).argsort(dim=1)  # label of each chosen class
    repeats = -(-s // drawers)
    drawer = rand(b, n, repeats * drawers).argsort(dim=-1)[..., :s] % drawers  # [B, N, s]
    order, slot, instances = episode_order(b, n, s, rand)

    chosen = class_characters.to(device)[classes].gather(1, slot)
    item = chosen * drawers + drawer.view(b, steps).gather(1, order)  # [B, T] image rows
    x = images.reshape(-1, size, size).index_select(0, item.flatten())  # [B * T, S, S]
    x = x.float().div_(255.0) if not x.is_floating_point() else x.float()
    turns = None
    if class_rotations is not None:
        turns = class_rotations.to(device)[classes].gather(1, slot).flatten()
    # 90-degree class turns and per-image jitter in one resampling (exact turns alone)
    x = random_affine(x, generator, max_translation, max_rotation, turns)

    targets, prev = episode_labels(labels.gather(1, slot), encoding, n, rand)
    return EpisodeBatch(x.reshape(b, steps, -1), prev, targets, instances)


def episode_order(
    batch_size: int, num_classes: int, samples_per_class: int, rand: Callable[..., Tensor]
) -> tuple[Tensor, Tensor, Tensor]:
    """Shuffle the ``T = N * s`` items of every episode.

    Args:
        batch_size: Episodes ``B``.
        num_classes: Classes per episode ``N``.
        samples_per_class: Items per class ``s``.
        rand: ``rand(*shape)`` drawing uniform numbers from the episode's generator.

    Returns:
        ``order [B, T]`` (step ``t`` shows item ``order[t] = slot * s + j``), ``slot [B, T]``
        (the episode class shown at each step) and ``instances [B, T]`` (1 at a class's first
        presentation, 2 at its second, ...).
    """
    b, n, s = batch_size, num_classes, samples_per_class
    steps = n * s
    order = rand(b, steps).argsort(dim=1)
    slot = torch.div(order, s, rounding_mode="floor")
    # instance = rank of a step's time among the s steps of its class, plus one
    time_of = order.argsort(dim=1).view(b, n, s)
    rank = time_of.argsort(dim=-1).argsort(dim=-1).view(b, steps)
    return order, slot, rank.gather(1, order) + 1


def episode_labels(
    step_labels: Tensor, encoding: LabelEncoding, num_classes: int, rand: Callable[..., Tensor]
) -> tuple[Tensor, Tensor]:
    """Targets ``y_t`` and the encoded previous labels ``y_{t-1}`` of a batch of episodes.

    Args:
        step_labels: ``[B, T]`` episode label (``0..N-1``) of each step.
        encoding: ``"onehot"``, or ``"string"`` (each label gets a random five-character
            string, distinct within the episode).
        num_classes: ``N``.
        rand: ``rand(*shape)`` drawing from the episode's generator.

    Returns:
        ``targets`` (``[B, T]`` or ``[B, T, 5]``) and ``prev_labels`` ``[B, T, label_size]``
        (zero at ``t = 0``).
    """
    targets = step_labels
    if encoding == "string":
        codes = rand(step_labels.shape[0], NUM_STRINGS).topk(num_classes, dim=1).indices
        targets = code_to_string(codes.gather(1, targets))
    encoded = encode_targets(targets, encoding, num_classes)
    prev = torch.zeros_like(encoded)
    prev[:, 1:] = encoded[:, :-1]
    return targets, prev


def widen_labels(batch: EpisodeBatch, width: int) -> EpisodeBatch:
    """Zero-pad one-hot ``prev_labels`` ``[B, T, N]`` to ``[B, T, width]`` (``max_classes``).

    Labels stay ``0..N-1``, so the padded vectors are the one-hot codes of the wider label
    space; targets and the random draws are unchanged. A batch already ``width`` wide is
    returned as it is.
    """
    have = batch.prev_labels.shape[-1]
    if have == width:
        return batch
    if have > width:
        raise ValueError(f"Labels are {have} wide, more than the fixed width {width}.")
    return batch._replace(prev_labels=F.pad(batch.prev_labels, (0, width - have)))
