"""Binding retention as an Avalanche plugin metric, for any ``EvaluationPlugin``.

:class:`BindingRetentionMetric` runs :func:`~mann_lightning.retention.binding_retention` on the
classes of every evaluated experience (after that experience's evaluation; every experience of
every ``eval()``, so keep the measurement small or evaluate a short stream): label-consistent
streams over the experience's classes, memory never wiped, from an empty state, on the wrapped
:class:`~mann_lightning.MANN` without touching the model or the strategy. It emits

* ``BindingRetention_Exp/eval_phase/test_stream/Exp003/gap_1-1``, ``.../gap_3-4``, ... the
  accuracy in each non-empty doubling gap bin (steps since the class was last shown), and
* ``BindingRetention_Exp/eval_phase/test_stream/Exp003/accuracy`` over all repeated steps.

The experience's images are read once through its (evaluation) transforms with
:func:`~continual.episode_data.gather_pool`, which pads each class to the largest class.
:func:`~mann_lightning.retention.sample_stream` draws drawers uniformly from a rectangular
``[C, D, S, S]`` array, so :func:`retention_images` keeps the classes with at least
``min_images`` images and truncates every kept class to the smallest count among them: every
drawn image is a real one (never padding), at the price of unused images of larger classes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metric_utils import get_metric_name
from torch import Tensor

from mann_lightning.data.episodes import NUM_STRINGS
from mann_lightning.data.pool import ClassPool
from mann_lightning.data.stream import stream_seed
from mann_lightning.retention import Revisit, binding_retention
from mann_lightning.retention_bins import BindingRetention

from .episode_data import gather_pool
from .interference_metrics import experience_key


def retention_images(pool: ClassPool, side: int, min_images: int = 4) -> Tensor:
    """A ragged pool as the rectangular ``[C, D, side, side]`` images of binding retention.

    Args:
        pool: ``images [K, M, side * side]`` padded per class, ``counts [K]``.
        side: Image side ``S``.
        min_images: Classes with fewer images are left out.

    Returns:
        The kept classes (pool order), each with its first ``D`` images, ``D`` the smallest
        count among the kept classes.
    """
    keep = pool.counts >= min_images
    if not bool(keep.any()):
        raise ValueError(
            f"No class has {min_images} images (largest: {int(pool.counts.max())}); "
            "lower min_images."
        )
    drawers = int(pool.counts[keep].min())
    return pool.images[keep, :drawers].reshape(-1, drawers, side, side)


class BindingRetentionMetric(PluginMetric[dict]):
    """Accuracy by gap on label-consistent streams of every evaluated experience's classes.

    Args:
        num_classes: Classes ``K`` per stream; ``None``: all kept classes, at most the model's
            one-hot width (or 3125 string labels).
        steps: Stream length ``T``.
        batch: Streams per experience.
        seed: Seed of the streams (mixed with the stream name and experience index, so the same
            experience gets the same streams in every evaluation).
        min_images: Classes with fewer images are not used (see :func:`retention_images`).
        revisit: ``"recency"`` (gaps of many lengths) or ``"uniform"``.
        chunk: Steps per forward call (the state is carried between calls).

    Attributes:
        results: ``{(stream, experience): BindingRetention}`` of the latest evaluations.
    """

    name = "BindingRetention_Exp"

    def __init__(
        self,
        num_classes: int | None = None,
        steps: int = 200,
        batch: int = 4,
        seed: int = 0,
        min_images: int = 4,
        revisit: Revisit = "recency",
        chunk: int = 100,
    ) -> None:
        super().__init__()
        if steps < 2 or batch < 1 or min_images < 1 or chunk < 1:
            raise ValueError(
                "need steps >= 2 and batch, min_images, chunk >= 1; got "
                f"{steps}, {batch}, {min_images}, {chunk}."
            )
        self.num_classes, self.steps, self.batch, self.seed = num_classes, steps, batch, seed
        self.min_images, self.revisit, self.chunk = min_images, revisit, chunk
        self.results: dict[tuple[str, int], BindingRetention] = {}

    def __str__(self) -> str:
        return self.name

    def reset(self) -> None:
        pass

    def result(self) -> dict:
        return dict(self.results)

    def measure(self, strategy: Any) -> BindingRetention:
        """Binding retention of ``strategy.model.mann`` on the evaluated experience."""
        model = strategy.model
        side = math.isqrt(model.input_size)
        pool = gather_pool([strategy.adapted_dataset], model.input_size, strategy.device)
        images = retention_images(pool, side, self.min_images)
        encoding = model.label_encoding
        width = model.mann.num_outputs if encoding == "onehot" else None
        count = min(images.shape[0], width or NUM_STRINGS)
        stream, index = experience_key(strategy)
        return binding_retention(
            model.mann, images, torch.arange(images.shape[0], device=images.device), encoding,
            self.steps, self.batch, stream_seed(self.seed, "retention", stream, index),
            min(self.num_classes or count, count), num_labels=width, revisit=self.revisit,
            chunk=self.chunk,
        )  # fmt: skip

    def after_eval_exp(self, strategy: Any) -> list[MetricValue]:
        result = self.measure(strategy)
        self.results[experience_key(strategy)] = result
        base = get_metric_name(self, strategy, add_experience=True, add_task=False)
        step = strategy.clock.train_iterations
        values = [
            MetricValue(self, f"{base}/gap_{b.low}-{b.high}", b.accuracy, step)
            for b in result.by_gap
            if b.accuracy is not None
        ]
        if result.accuracy is not None:
            values.append(MetricValue(self, f"{base}/accuracy", result.accuracy, step))
        return values
