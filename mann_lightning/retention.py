"""Binding retention: the retroactive-interference curve of the memory itself.

A *label-consistent stream* shows ``K`` classes (held-out characters), each with a label that
stays FIXED for the whole stream, in one long sequence of ``T`` steps; the memory is never
wiped. As in an episode, step ``t`` shows the image ``x_t`` and the encoding of the previous
step's label ``y_{t-1}`` (zero at ``t = 0``), so the label of a presentation at step ``t'``
arrives at step ``t' + 1``.

For a step ``t`` whose class ``c`` was shown before, with ``t'`` its latest earlier step:

* the **gap** is ``t - t'`` (gap 1 = shown at the previous step, whose label arrives together
  with the query image; gap ``g`` = ``g - 1`` steps of other classes in between);
* the **interleaved classes** are the number of distinct classes other than ``c`` shown at
  steps ``t' + 1 .. t - 1`` (0 at gap 1; at most ``min(gap - 1, K - 1)``).

Steps showing a class for the first time have no gap and are not counted. Accuracy against
the gap and against the interleaved classes is how fast bindings decay as new ones are
written. Both counts, the bins and the result are in :mod:`~mann_lightning.retention_bins`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from .data.episodes import (
    NUM_STRINGS,
    LabelEncoding,
    code_to_string,
    decode_labels,
    encode_targets,
)
from .model import detach_state
from .retention_bins import BindingRetention, bin_records, gaps_and_interleaved

Revisit = Literal["uniform", "recency"]
#: ``model(inputs, prev_labels, state) -> (logits, state)``, e.g. a ``MANN``.
StreamModel = Callable[[Tensor, Tensor, Any], tuple[Tensor, Any]]


class RetentionStream(NamedTuple):
    """A batch of label-consistent streams, all tensors on the images' device.

    Attributes:
        inputs: ``x_t``, ``[batch, steps, S * S]`` float32, ink = 1.0.
        prev_labels: Encoded ``y_{t-1}``, ``[batch, steps, label_width]``, zero at ``t = 0``.
        targets: ``y_t``: ``[batch, steps]`` (one-hot) or ``[batch, steps, 5]`` (string).
        slots: ``[batch, steps]`` stream class (``0..K-1``) shown at each step.
        labels: ``[batch, K]`` fixed label of each stream class (one-hot index or string code).
    """

    inputs: Tensor
    prev_labels: Tensor
    targets: Tensor
    slots: Tensor
    labels: Tensor


def revisit_schedule(
    batch: int,
    num_classes: int,
    steps: int,
    generator: torch.Generator,
    revisit: Revisit = "uniform",
    alpha: float = 1.0,
) -> Tensor:
    """Stream class shown at each step, ``[batch, steps]`` in ``0..num_classes-1``.

    ``"uniform"``: every step an independent uniform class (gaps roughly geometric with mean
    ``K``). ``"recency"``: classes are kept in order of their latest showing (unseen ones at
    the back, in random order) and each step picks recency rank ``r = 1..K`` with probability
    proportional to ``r ** -alpha``; rank ``r`` of a shown class means exactly ``r - 1``
    interleaved classes, so short and long gaps both occur often.
    """
    device = generator.device
    if revisit == "uniform":
        shape = (batch, steps)
        return torch.randint(num_classes, shape, generator=generator, device=device)
    if revisit != "recency":
        raise ValueError(f"Unknown revisit {revisit!r}; use 'uniform' or 'recency'.")
    ranks = torch.arange(1, num_classes + 1, device=device, dtype=torch.float64)
    probs = ranks.pow(-alpha).expand(batch, num_classes)
    picks = torch.multinomial(probs, steps, replacement=True, generator=generator)  # [B, T]
    order = torch.rand(batch, num_classes, generator=generator, device=device).argsort(1)
    position = torch.arange(num_classes, device=device).expand(batch, -1)
    slots = torch.empty(batch, steps, dtype=torch.long, device=device)
    for t in range(steps):
        r = picks[:, t : t + 1]
        slots[:, t] = order.gather(1, r).squeeze(1)
        # move to front: new[0] = order[r], new[j] = order[j - 1] for 1 <= j <= r
        source = torch.where(position == 0, r, torch.where(position <= r, position - 1, position))
        order = order.gather(1, source)
    return slots


def sample_stream(
    images: Tensor,
    classes: Tensor,
    num_classes: int,
    steps: int,
    batch: int,
    generator: torch.Generator,
    encoding: LabelEncoding = "onehot",
    num_labels: int | None = None,
    revisit: Revisit = "uniform",
    alpha: float = 1.0,
) -> RetentionStream:
    """Draw ``batch`` label-consistent streams of ``steps`` steps over ``num_classes`` classes.

    Args:
        images: ``[C, D, S, S]`` images (uint8 with 255 = ink, or float with 1.0 = ink).
        classes: ``[A]`` character rows of ``images`` available (e.g. held-out characters).
        num_classes: ``K`` classes per stream, drawn distinct from ``classes``.
        steps: Stream length ``T``.
        batch: Streams drawn (each its own classes, labels and order).
        generator: Random generator on ``images.device``.
        encoding: ``"onehot"`` (labels distinct in ``0..num_labels-1``, so ``K <= num_labels``)
            or ``"string"`` (distinct five-character codes in ``0..3124``).
        num_labels: One-hot width (the model's classes); ignored for strings.
        revisit: Revisit distribution, see :func:`revisit_schedule`.
        alpha: Exponent of the ``"recency"`` distribution.

    Returns:
        The :class:`RetentionStream`; drawings are uniform over the ``D`` drawers.
    """
    limit = NUM_STRINGS if encoding == "string" else num_labels
    if limit is None:
        raise ValueError("one-hot streams need num_labels (the model's classes).")
    if not 1 <= num_classes <= min(limit, classes.numel()) or steps < 1 or batch < 1:
        raise ValueError(
            f"need 1 <= num_classes <= min(labels={limit}, classes={classes.numel()}) and "
            f"steps, batch >= 1; got num_classes={num_classes}, steps={steps}, batch={batch}."
        )
    device = images.device

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, device=device)

    chosen = classes.to(device)[rand(batch, classes.numel()).topk(num_classes, dim=1).indices]
    labels = rand(batch, limit).topk(num_classes, dim=1).indices  # [B, K] distinct, fixed
    slots = revisit_schedule(batch, num_classes, steps, generator, revisit, alpha)
    drawers, size = images.shape[1], images.shape[-1]
    drawer = torch.randint(drawers, (batch, steps), generator=generator, device=device)
    rows = chosen.gather(1, slots) * drawers + drawer
    x = images.reshape(-1, size * size).index_select(0, rows.flatten())
    x = x.float().div_(255.0) if not x.is_floating_point() else x.float()
    targets = labels.gather(1, slots)
    if encoding == "string":
        targets = code_to_string(targets)
    encoded = encode_targets(targets, encoding, limit)
    prev = torch.zeros_like(encoded)
    prev[:, 1:] = encoded[:, :-1]
    return RetentionStream(x.view(batch, steps, -1), prev, targets, slots, labels)


@torch.no_grad()
def stream_correct(
    model: StreamModel, stream: RetentionStream, encoding: LabelEncoding, chunk: int | None = None
) -> Tensor:
    """``[batch, steps]`` bool: whether each step's label was predicted (all five characters).

    The stream is unrolled from an empty state in chunks of ``chunk`` steps (all at once if
    ``None``), carrying the detached state from chunk to chunk; the memory is never wiped.
    """
    steps = stream.inputs.shape[1]
    chunk = steps if chunk is None else chunk
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}.")
    state, parts = None, []
    for start in range(0, steps, chunk):
        end = min(start + chunk, steps)
        logits, state = model(stream.inputs[:, start:end], stream.prev_labels[:, start:end], state)
        state = detach_state(state)
        parts.append(decode_labels(logits, encoding))
    correct = torch.cat(parts, 1) == stream.targets
    return correct.all(-1) if correct.dim() == 3 else correct


def binding_retention(
    model: StreamModel,
    images: Tensor,
    classes: Tensor,
    encoding: LabelEncoding,
    steps: int,
    batch: int,
    seed: int,
    num_classes: int,
    num_labels: int | None = None,
    revisit: Revisit = "recency",
    alpha: float = 1.0,
    chunk: int | None = 100,
) -> BindingRetention:
    """Accuracy of ``model`` on repeated classes of label-consistent streams, by gap.

    Args:
        model: ``model(inputs, prev_labels, state) -> (logits, state)`` (a ``MANN``); put in
            eval mode for the measurement and restored afterwards.
        images: ``[C, D, S, S]`` images on the device to measure on.
        classes: ``[A]`` character rows to draw the ``K`` stream classes from.
        encoding: ``"onehot"`` or ``"string"``.
        steps: Stream length ``T``.
        batch: Streams measured.
        seed: Seed of the streams (same seed, same streams and result).
        num_classes: ``K`` (one-hot: at most ``num_labels``; strings: at most 3125).
        num_labels: One-hot label width; default ``model.num_outputs``.
        revisit: ``"uniform"`` or ``"recency"`` (:func:`revisit_schedule`).
        alpha: Exponent of the ``"recency"`` distribution.
        chunk: Steps per forward call (the state is carried between calls).

    Returns:
        The :class:`~mann_lightning.retention_bins.BindingRetention`.
    """
    if encoding == "onehot" and num_labels is None:
        num_labels = int(getattr(model, "num_outputs"))  # noqa: B009 - duck-typed model
    generator = torch.Generator(device=images.device).manual_seed(seed)
    stream = sample_stream(
        images, classes, num_classes, steps, batch, generator, encoding, num_labels, revisit, alpha
    )
    training = getattr(model, "training", False)
    if hasattr(model, "train"):
        model.train(False)  # type: ignore[attr-defined]
    try:
        correct = stream_correct(model, stream, encoding, chunk)
    finally:
        if hasattr(model, "train"):
            model.train(training)  # type: ignore[attr-defined]
    gap, interleaved = gaps_and_interleaved(stream.slots)
    first = gap == 0
    config = {
        "encoding": encoding, "num_classes": num_classes, "num_labels": num_labels,
        "steps": steps, "batch": batch, "seed": seed, "revisit": revisit, "alpha": alpha,
    }  # fmt: skip
    return bin_records(correct[~first], gap[~first], interleaved[~first], correct[first], config)
