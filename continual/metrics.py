"""Episode-aware Avalanche metrics: accuracy by presentation (the paper's table columns).

Which stock Avalanche metrics apply to the plugin's episodes: the plugin flattens every
episode step into one row of ``mb_output`` / ``mb_y`` (see :mod:`continual.episode_data`),
so ``accuracy_metrics`` report the accuracy over all steps (every presentation, 1st
included) and ``loss_metrics`` the training loss, both correct. Metrics that read the data
set's class ids from ``mb_y`` (``class_accuracy_metrics``, ``confusion_matrix_metrics``,
``amca_metrics``) see episode labels, which are reshuffled every episode, and do not apply.

:class:`PresentationAccuracy` reports, for every evaluated experience, accuracy at the 1st,
2nd, ..., ``max_instances``-th presentation of a class within an episode, as one
``MetricValue`` per presentation (``PresentationAcc_Exp/eval_phase/test_stream/Exp003/P02``)
and in :attr:`PresentationAccuracy.results`. It counts with the Lightning layer's
:class:`~mann_lightning.metrics.InstanceAccuracy`, so both layers compute the same numbers.
"""

from __future__ import annotations

from typing import Any

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metric_utils import get_metric_name

from mann_lightning.metrics import InstanceAccuracy

from .episode_data import INSTANCES_INDEX


class PresentationAccuracy(PluginMetric[list[float]]):
    """Accuracy per presentation for each evaluated experience (and each training epoch).

    Args:
        max_instances: Presentations tracked (the paper: 10).
        train: Also emit the running training accuracy at the end of every training epoch.

    Attributes:
        results: ``{(stream name, experience index): [acc at 1st, 2nd, ...]}`` of the last
            evaluation of every experience (NaN for a presentation never reached).
    """

    def __init__(self, max_instances: int = 10, train: bool = True) -> None:
        super().__init__()
        self.max_instances = max_instances
        self.train = train
        # Separate counts: an evaluation in the middle of a training epoch (``eval_every``
        # with ``peval_mode="iteration"``) must not reset or add to the epoch's training count.
        self._train_counter = InstanceAccuracy(max_instances)
        self._eval_counter = InstanceAccuracy(max_instances)
        self._evaluating = False
        self.results: dict[tuple[str, int], list[float]] = {}

    def __str__(self) -> str:
        return "PresentationAcc_Exp"

    def _active(self) -> InstanceAccuracy:
        """The counter of the phase in progress (evaluation wins inside a training epoch)."""
        return self._eval_counter if self._evaluating else self._train_counter

    def reset(self) -> None:
        """Reset the count of the phase in progress."""
        self._active().reset()

    def result(self) -> list[float]:
        """Accuracy per presentation so far in the phase in progress."""
        return [float(v) for v in self._active().compute().tolist()]

    def update(self, strategy: Any) -> None:
        """Count the current minibatch's steps by presentation (in the current phase's count)."""
        mbatch = strategy.mbatch
        if mbatch is None or len(mbatch) <= INSTANCES_INDEX + 1:
            raise ValueError(
                "PresentationAccuracy needs the minibatches of MANNEpisodePlugin "
                "([x, y, instances, task_labels]); add the plugin to the strategy."
            )
        preds = strategy.mb_output.detach().argmax(1)
        counter = self._active().to(preds.device)
        counter.update(preds, strategy.mb_y, mbatch[INSTANCES_INDEX])

    # ------------------------------------------------------------------ evaluation
    def before_eval(self, strategy: Any) -> None:
        self._evaluating = True

    def after_eval(self, strategy: Any) -> None:
        self._evaluating = False

    def before_eval_exp(self, strategy: Any) -> None:
        self._evaluating = True
        self.reset()

    def after_eval_iteration(self, strategy: Any) -> None:
        self.update(strategy)

    def after_eval_exp(self, strategy: Any) -> list[MetricValue]:
        values = self.result()
        experience = strategy.experience
        stream = getattr(getattr(experience, "origin_stream", None), "name", "eval")
        self.results[(stream, experience.current_experience)] = values
        return self._emit(strategy, values)

    # ------------------------------------------------------------------ training
    def before_training_epoch(self, strategy: Any) -> None:
        self._evaluating = False
        if self.train:
            self.reset()

    def after_training_iteration(self, strategy: Any) -> None:
        if self.train:
            self._evaluating = False
            self.update(strategy)

    def after_training_epoch(self, strategy: Any) -> list[MetricValue] | None:
        self._evaluating = False
        return self._emit(strategy, self.result()) if self.train else None

    def _emit(self, strategy: Any, values: list[float]) -> list[MetricValue]:
        base = get_metric_name(self, strategy, add_experience=True, add_task=False)
        step = strategy.clock.train_iterations
        return [
            MetricValue(self, f"{base}/P{k:02d}", value, step)
            for k, value in enumerate(values, start=1)
        ]


def presentation_accuracy_metrics(max_instances: int = 10, train: bool = True) -> list[Any]:
    """The episode-aware metrics to put in an ``EvaluationPlugin``."""
    return [PresentationAccuracy(max_instances, train)]
