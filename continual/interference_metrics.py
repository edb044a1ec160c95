"""Avalanche plugin metrics of interference: pre-loaded accuracy and memory statistics.

Both read each evaluated experience's episodes as the strategy evaluates them (the
minibatches of :class:`~continual.plugin.MANNEpisodePlugin`, so the same fixed episodes in
every row of the accuracy matrix) and run the wrapped :class:`~mann_lightning.MANN` on them
once more, from an empty memory, without touching the model or the strategy:

* :class:`ProactiveInterference`: :func:`~mann_lightning.interference.preloaded_accuracy`, the
  accuracy per presentation after the memory was pre-loaded by ``k`` other episodes of the
  same experience (drawn from ``strategy.adapted_dataset`` like the plugin's evaluation
  episodes, with their own seed). Emits ``ProactiveInterference_Exp/.../Exp003/k04/P02``.
* :class:`MemoryStatisticsMetric`: :mod:`mann_lightning.memory_stats` per episode, averaged
  over the experience's evaluation episodes. Emits ``MemoryStats_Exp/.../Exp003/slots_written``.

Put them in an ``EvaluationPlugin`` next to the plugin (docs/interference.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metric_utils import get_metric_name

from mann_lightning.data.datamodule import widen_labels
from mann_lightning.data.episodes import EpisodeBatch, code_to_string
from mann_lightning.data.pool import sample_pool_episodes
from mann_lightning.data.stream import stream_seed
from mann_lightning.interference import DEFAULT_KS, preloaded_accuracy
from mann_lightning.memory_stats import trace_statistics

from .episode_data import INSTANCES_INDEX, gather_pool
from .plugin import MANNEpisodePlugin


def episode_plugin(strategy: Any) -> MANNEpisodePlugin:
    """The strategy's :class:`MANNEpisodePlugin` (a clear error without one)."""
    for plugin in getattr(strategy, "plugins", []):
        if isinstance(plugin, MANNEpisodePlugin):
            return plugin
    raise ValueError("Interference metrics need a strategy with MANNEpisodePlugin in its plugins.")


def minibatch_episodes(strategy: Any) -> EpisodeBatch:
    """The strategy's current plugin minibatch unpacked into an :class:`EpisodeBatch`.

    The packed input carries the episode's own label width: ``N`` one-hot columns, fewer than
    the model's ``label_size`` under a curriculum (:class:`~continual.curriculum_plugin.
    CurriculumMANN` pads them in its ``forward``). They are zero-padded the same way here, so
    the wrapped MANN sees what the strategy's model saw.
    """
    mbatch, model = strategy.mbatch, strategy.model
    if mbatch is None or len(mbatch) <= INSTANCES_INDEX + 1:
        raise ValueError("Interference metrics need the minibatches of MANNEpisodePlugin.")
    packed = mbatch[0]
    width = packed.shape[-1] - model.input_size
    if width < 1 or width > model.label_size:
        raise ValueError(
            f"Interference metrics got episodes with {width} label columns after the "
            f"{model.input_size} image values, but the model takes 1 to {model.label_size}: "
            "the minibatches do not come from MANNEpisodePlugin for this model."
        )
    inputs, prev_labels = packed.split([model.input_size, width], -1)
    rows = packed.shape[0]
    targets = mbatch[1].view(rows, -1)
    if model.label_encoding == "string":
        targets = code_to_string(targets)
    batch = EpisodeBatch(inputs, prev_labels, targets, mbatch[INSTANCES_INDEX].view(rows, -1))
    return widen_labels(batch, model.label_size) if model.label_encoding == "onehot" else batch


def experience_key(strategy: Any) -> tuple[str, int]:
    """``(stream name, experience index)`` of the experience being evaluated."""
    experience = strategy.experience
    stream = getattr(getattr(experience, "origin_stream", None), "name", "eval")
    return stream, experience.current_experience


def preload_sampler(strategy: Any, seed: int) -> Callable[[int], EpisodeBatch]:
    """Pre-loading episodes of the evaluated experience: batch ``j`` drawn from its data with
    the plugin's episode shape, seeded by ``(seed, "preload", stream, experience, j)``."""
    plugin, model = episode_plugin(strategy), strategy.model
    minimum = plugin.samples_per_class if plugin.ragged == "exclude" else 1
    pool = gather_pool([strategy.adapted_dataset], model.input_size, strategy.device, None, minimum)
    stream, index = experience_key(strategy)
    side = math.isqrt(model.input_size)

    def draw(j: int) -> EpisodeBatch:
        generator = torch.Generator(device=pool.images.device)
        generator.manual_seed(stream_seed(seed, "preload", stream, index, j))
        batch = sample_pool_episodes(
            pool, plugin.num_classes, plugin.samples_per_class, plugin.batch_size, generator,
            model.label_encoding, None, side,
        )  # fmt: skip
        return widen_labels(batch, model.label_size) if model.label_encoding == "onehot" else batch

    return draw


class _EvalEpisodes(PluginMetric[dict]):
    """Collects the evaluated experience's minibatches; subclasses compute at its end."""

    name = "Episodes_Exp"

    def __init__(self, num_batches: int | None = None) -> None:
        super().__init__()
        if num_batches is not None and num_batches < 1:
            raise ValueError(f"num_batches must be >= 1 or None, got {num_batches}.")
        self.num_batches = num_batches
        self._seen = 0
        self._batches: list[EpisodeBatch] = []
        self.results: dict[tuple[str, int], Any] = {}

    def __str__(self) -> str:
        return self.name

    def reset(self) -> None:
        self._seen, self._batches = 0, []

    def result(self) -> dict:
        return dict(self.results)

    def before_eval_exp(self, strategy: Any) -> None:
        self.reset()

    def after_eval_iteration(self, strategy: Any) -> None:
        if self.num_batches is None or self._seen < self.num_batches:
            self._seen += 1
            self.collect(strategy, minibatch_episodes(strategy))

    def collect(self, strategy: Any, batch: EpisodeBatch) -> None:
        self._batches.append(batch)

    def _emit(self, strategy: Any, values: dict[str, float]) -> list[MetricValue]:
        base = get_metric_name(self, strategy, add_experience=True, add_task=False)
        step = strategy.clock.train_iterations
        return [MetricValue(self, f"{base}/{key}", value, step) for key, value in values.items()]


class ProactiveInterference(_EvalEpisodes):
    """Accuracy per presentation with the memory pre-loaded by ``k`` episodes, per experience.

    Args:
        ks: Numbers of pre-loading episodes.
        num_batches: Evaluated minibatches used per experience (``None``: all of the plugin's
            ``eval_batches``).
        seed: Seed of the pre-loading episodes (drawn from the evaluated experience's data).
        max_instances: Presentations counted.

    Attributes:
        results: ``{(stream, experience): {k: [acc at 1st, 2nd, ...]}}`` of the last evaluation.
    """

    name = "ProactiveInterference_Exp"

    def __init__(
        self,
        ks: Sequence[int] = DEFAULT_KS,
        num_batches: int | None = 1,
        seed: int = 4321,
        max_instances: int = 10,
    ) -> None:
        super().__init__(num_batches)
        self.ks, self.seed, self.max_instances = tuple(ks), seed, max_instances

    def after_eval_exp(self, strategy: Any) -> list[MetricValue]:
        mann = strategy.model.mann
        result = preloaded_accuracy(
            mann, self._batches, self.ks, preload_sampler(strategy, self.seed), self.max_instances
        )
        self.results[experience_key(strategy)] = result
        self.reset()
        return self._emit(
            strategy,
            {
                f"k{k:02d}/P{i:02d}": value
                for k, values in result.items()
                for i, value in enumerate(values, start=1)
            },
        )


class MemoryStatisticsMetric(_EvalEpisodes):
    """Means over an experience's evaluation episodes of the three memory statistics.

    Args:
        threshold: Write weight at which a slot counts as written (0.5).
        lag: Step offset of the class a write stores (:mod:`mann_lightning.memory_stats`).
        num_batches: Evaluated minibatches used per experience (``None``: all).

    Attributes:
        results: ``{(stream, experience): {"slots_written": ..., "binding_overwrites": ...,
            "usage_entropy": ...}}`` (NaN-ignoring means; NaN when no episode defines one).
    """

    name = "MemoryStats_Exp"

    def __init__(self, threshold: float = 0.5, lag: int = 0, num_batches: int | None = None):
        super().__init__(num_batches)
        self.threshold, self.lag = threshold, lag
        self._stats: list[Any] = []

    def reset(self) -> None:
        super().reset()
        self._stats = []

    def collect(self, strategy: Any, batch: EpisodeBatch) -> None:
        stats = trace_statistics(
            strategy.model.mann, batch.inputs, batch.prev_labels, batch.targets,
            threshold=self.threshold, lag=self.lag,
        )  # fmt: skip
        self._stats.append(stats)

    def after_eval_exp(self, strategy: Any) -> list[MetricValue]:
        names = ("slots_written", "binding_overwrites", "usage_entropy")
        values = {
            name: float(torch.cat([getattr(s, name) for s in self._stats]).float().nanmean())
            for name in names
        }
        self.results[experience_key(strategy)] = values
        self.reset()
        return self._emit(strategy, values)
