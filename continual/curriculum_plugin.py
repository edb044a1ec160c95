"""The curriculum in a stream: a schedule of :mod:`mann_lightning.curriculum` drives ``N``.

:class:`CurriculumPlugin` asks the same schedule objects as ``mann fit``'s
``CurriculumCallback`` (``StepSchedule``, ``ThresholdSchedule``) and sets the episode
plugin's ``num_classes``: ``schedule.on_train_step(train_iterations)`` before every training
iteration, ``schedule.on_validation(train_iterations, accuracy)`` after every evaluation made after
training started (``accuracy``: the 2nd-presentation accuracy over all episodes of that
evaluation). An evaluation of the untrained model (``train_iterations == 0``: the runner's
evaluation before the first experience, Avalanche's ``do_initial``) is not passed to the
schedule, as ``mann fit`` ignores Lightning's sanity-check validation: chance accuracy says
nothing about the curriculum, and the first row of the accuracy matrix is measured at the
starting ``N``. The
episode loader draws each batch when the loop asks for it, so a change made before iteration
``s`` applies from the batch after it (as in ``mann fit``, one batch ahead). Evaluation runs at
the current ``N``.

One-hot labels need a fixed width for ``N`` to grow under one model: build the MANN with
``max_classes`` outputs and label inputs and wrap it in :class:`CurriculumMANN` (strings need
nothing: wrap in ``EpisodicMANN(..., label_encoding="string")`` as usual).

:class:`CurriculumClassCount` makes the class count visible to Avalanche loggers: put it in the
``EvaluationPlugin`` and it emits ``CurriculumClassCount`` (x = training iterations) at every
change of the plugin's ``history``.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.training.plugins import SupervisedPlugin
from torch import Tensor

from mann_lightning.curriculum import CurriculumSchedule

from .episode_data import INSTANCES_INDEX, experience_classes
from .episodic_model import EpisodicMANN
from .interference_metrics import episode_plugin


class CurriculumMANN(EpisodicMANN):
    """An :class:`EpisodicMANN` with one-hot labels of a fixed width ``mann.num_outputs``.

    The episode plugin encodes labels ``0..N-1`` as ``N``-wide one-hot vectors; this wrapper
    zero-pads them to the model's width (as ``OmniglotEpisodes(max_classes=...)`` does) and
    returns all ``max_classes`` logits, of which labels ``N..max-1`` are never targets yet.
    ``num_classes`` is ``None``, so the plugin accepts any ``N`` up to the width.
    """

    @property
    def num_classes(self) -> int | None:
        return None

    @property
    def max_classes(self) -> int:
        """The fixed one-hot width."""
        return self.mann.label_size

    def forward(self, packed: Tensor) -> Tensor:
        have = packed.shape[-1] - self.input_size
        if self.label_encoding == "onehot" and packed.dim() == 3 and 0 < have < self.label_size:
            packed = F.pad(packed, (0, self.label_size - have))
        return super().forward(packed)


class CurriculumPlugin(SupervisedPlugin):
    """Grow ``MANNEpisodePlugin.num_classes`` by a curriculum schedule during a stream.

    Args:
        schedule: A :class:`~mann_lightning.curriculum.CurriculumSchedule`.

    Attributes:
        history: ``(train_iterations, N)`` at the first training iteration and at every change
            (``schedule.changes`` counts the schedule's own steps).

    Before each training experience it checks that the experience has at least the schedule's
    ``max_classes`` classes of its own (replayed classes are not counted) and, for one-hot
    labels, that the model is that wide; either problem is a ``ValueError`` saying what to
    change. ``replay_share`` of the episode plugin must be ``None`` (its per-group counts are
    fixed for an epoch). The schedule is saved with :meth:`state_dict`.
    """

    def __init__(self, schedule: CurriculumSchedule) -> None:
        super().__init__()
        self.schedule = schedule
        self.history: list[tuple[int, int]] = []
        self._correct, self._total = 0, 0

    def _apply(self, strategy: Any) -> None:
        """Set the schedule's ``N`` on the episode plugin; a change of ``N`` enters the history
        (a resumed run's episode plugin starts from the config's ``N``: not a change)."""
        classes = self.schedule.num_classes
        episode_plugin(strategy).num_classes = classes
        if not self.history or self.history[-1][1] != classes:
            self.history.append((strategy.clock.train_iterations, classes))

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        plugin, model, top = episode_plugin(strategy), strategy.model, self.schedule.max_classes
        if plugin.replay_share is not None:
            raise ValueError("CurriculumPlugin needs MANNEpisodePlugin(replay_share=None).")
        if model.label_encoding == "onehot" and getattr(model, "max_classes", 0) < top:
            raise ValueError(
                f"The curriculum grows N to {top}: wrap a MANN with num_outputs={top} in "
                f"continual.curriculum_plugin.CurriculumMANN (got {type(model).__name__} with "
                f"{model.mann.num_outputs} outputs)."
            )
        self.check_experience(strategy.experience)  # replayed classes are not its own
        self._apply(strategy)

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.check_experience(strategy.experience, episode_plugin(strategy).num_classes)

    def check_experience(self, experience: Any, classes: int | None = None) -> None:
        """``N``-way episodes need ``N`` classes of the experience's own (``classes``: the
        ``N`` it will meet, by default the schedule's ``max_classes``)."""
        classes = self.schedule.max_classes if classes is None else classes
        own = len(experience_classes(experience))
        if own < classes:
            stream = getattr(getattr(experience, "origin_stream", None), "name", "evaluation")
            raise ValueError(
                f"{stream.capitalize()} experience {experience.current_experience} has {own} "
                f"classes, but the curriculum grows N to {classes} for {classes}-way episodes: "
                f"lower the curriculum's max_classes (now {self.schedule.max_classes}) to at most "
                "the classes of the smallest experience, or group more classes per experience."
            )

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        if self.schedule.on_train_step(strategy.clock.train_iterations):
            self._apply(strategy)

    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        self._correct, self._total = 0, 0

    def after_eval_iteration(self, strategy: Any, **kwargs: Any) -> None:
        second = strategy.mbatch[INSTANCES_INDEX] == 2
        right = (strategy.mb_output.argmax(1) == strategy.mb_y) & second
        self._correct += int(right.sum())
        self._total += int(second.sum())

    def after_eval(self, strategy: Any, **kwargs: Any) -> None:
        if strategy.clock.train_iterations == 0:
            return  # the untrained model: its accuracy must not move the curriculum
        accuracy = self._correct / self._total if self._total else None
        if self.schedule.on_validation(strategy.clock.train_iterations, accuracy):
            self._apply(strategy)

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict(), "history": [list(h) for h in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.schedule.load_state_dict(state["schedule"])
        self.history = [(int(s), int(n)) for s, n in state.get("history", [])]


class CurriculumClassCount(PluginMetric[int]):
    """The curriculum's number of classes ``N``, emitted at every change, for any logger.

    Reads :attr:`CurriculumPlugin.history` (the strategy's plugin, or ``plugin``) after every
    training iteration, training experience and evaluation, and emits one ``MetricValue``
    named ``CurriculumClassCount`` per new entry, with x = the entry's training iterations
    (the first entry, the starting ``N``, included). A change made after an evaluation (the
    threshold schedule) is emitted by that evaluation. After a resume, the restored entries
    are emitted again at their own x (the same values) when the metric first sees the plugin.

    Args:
        plugin: The curriculum plugin; ``None``: found in ``strategy.plugins``.
    """

    name = "CurriculumClassCount"

    def __init__(self, plugin: CurriculumPlugin | None = None) -> None:
        super().__init__()
        self.plugin = plugin
        self._emitted = 0

    def __str__(self) -> str:
        return self.name

    def reset(self) -> None:
        pass

    def result(self) -> int | None:
        history = self.plugin.history if self.plugin is not None else []
        return history[-1][1] if history else None

    def _new_values(self, strategy: Any) -> list[MetricValue]:
        if self.plugin is None:
            found = [p for p in strategy.plugins if isinstance(p, CurriculumPlugin)]
            if not found:
                raise ValueError("CurriculumClassCount needs a CurriculumPlugin in the strategy.")
            self.plugin = found[0]
        history = self.plugin.history
        self._emitted = min(self._emitted, len(history))
        new = history[self._emitted :]
        self._emitted = len(history)
        return [MetricValue(self, self.name, n, step) for step, n in new]

    def after_training_iteration(self, strategy: Any) -> list[MetricValue]:
        return self._new_values(strategy)

    def after_training_exp(self, strategy: Any) -> list[MetricValue]:
        return self._new_values(strategy)

    def after_eval(self, strategy: Any) -> list[MetricValue]:
        return self._new_values(strategy)
