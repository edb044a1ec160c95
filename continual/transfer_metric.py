"""Forgetting and transfer as an Avalanche plugin metric, for any ``EvaluationPlugin``.

:class:`TransferMetrics` keeps the accuracy matrices by presentation while a strategy runs
(it counts every evaluated experience's steps with the Lightning layer's
:class:`~mann_lightning.metrics.InstanceAccuracy`, as
:class:`~continual.metrics.PresentationAccuracy` does) and, after every evaluation that
follows a training experience, emits :func:`~continual.transfer.transfer_summary`:

* ``Forgetting_Stream/eval_phase/test_stream/mean`` and ``.../Exp003`` (Chaudhry et al. 2018),
* ``BWT_Stream/eval_phase/test_stream/mean`` and per experience (Lopez-Paz and Ranzato 2017),
* ``FWT_Stream/eval_phase/test_stream/mean`` and per experience, when the model was evaluated
  once before any training (that evaluation is its "untrained" row),

all at the 2nd presentation (``presentation`` to change it). Row ``i`` of the matrix is the
evaluation of the test stream after the ``i``-th training experience (columns are experience
indices; experience by experience evaluations of one row are merged, and metrics are emitted
once a row covers the experiences of the others). Only what tells the model between training
experiences counts:

* evaluations of another stream (Avalanche's default periodic evaluation of the training
  experience, ``strategy.eval(train_stream)``) are left out;
* evaluations inside a training experience (``eval_every`` > 0 mid-experience) are left out,
  so the "untrained" row comes only from an evaluation before any training;
* the periodic evaluation Avalanche runs at the end of an experience
  (``eval_streams=[test_stream]``) is that experience's row.

``mann-continual`` writes the same numbers, for every presentation, to ``results.json``.
"""

from __future__ import annotations

import math
from typing import Any

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from mann_lightning.metrics import InstanceAccuracy

from .episode_data import INSTANCES_INDEX
from .transfer import transfer_summary

NAMES = {"forgetting": "Forgetting", "backward_transfer": "BWT", "forward_transfer": "FWT"}


class TransferMetrics(PluginMetric[dict[str, Any]]):
    """Forgetting, backward and forward transfer from the evaluations of a stream.

    Args:
        max_instances: Presentations counted.
        presentation: The presentation (1-based) whose values are emitted.
        stream: Name of the evaluated stream whose matrix is kept (Avalanche's
            ``test_stream`` is named ``"test"``).
    """

    def __init__(
        self, max_instances: int = 10, presentation: int = 2, stream: str = "test"
    ) -> None:
        super().__init__()
        self.max_instances, self.presentation, self.stream = max_instances, presentation, stream
        self._in_training_exp = False
        self._counting = False
        self._counter = InstanceAccuracy(max_instances)
        self._current: dict[int, list[float]] = {}
        self.rows: list[dict[int, list[float]]] = []
        self.untrained: dict[int, list[float]] | None = None
        self._trained = 0
        self._last: dict[str, Any] = {}

    def reset(self) -> None:
        self._counter.reset()

    def restore(self, rows: list[list[list[float]]], untrained: list[list[float]] | None) -> None:
        """Continue from saved evaluations (``rows[i][j][k]``, ``untrained[j][k]``), e.g. when
        a stream run resumes: the next training experience is row ``len(rows)``."""
        self.rows = [dict(enumerate(row)) for row in rows]
        self.untrained = None if untrained is None else dict(enumerate(untrained))
        self._trained = len(rows)

    def result(self) -> dict[str, Any]:
        return self._last

    def before_training_exp(self, strategy: Any) -> None:
        self._in_training_exp = True

    def after_training_exp(self, strategy: Any) -> None:
        self._in_training_exp = False
        self._trained += 1

    def before_eval(self, strategy: Any) -> None:
        self._current = {}

    def before_eval_exp(self, strategy: Any) -> None:
        origin = getattr(strategy.experience, "origin_stream", None)
        self._counting = not self._in_training_exp and getattr(origin, "name", None) == self.stream
        self.reset()

    def after_eval_iteration(self, strategy: Any) -> None:
        if not self._counting:
            return
        preds = strategy.mb_output.detach().argmax(1)
        counter = self._counter.to(preds.device)
        counter.update(preds, strategy.mb_y, strategy.mbatch[INSTANCES_INDEX])

    def after_eval_exp(self, strategy: Any) -> None:
        if self._counting:
            values = [float(v) for v in self._counter.compute().tolist()]
            self._current[strategy.experience.current_experience] = values

    def after_eval(self, strategy: Any) -> list[MetricValue]:
        if not self._current:
            return []  # another stream, or inside a training experience
        if self._trained == 0:
            self.untrained = {**(self.untrained or {}), **self._current}
            return []
        while len(self.rows) < self._trained:
            self.rows.append({})
        self.rows[self._trained - 1].update(self._current)
        return self._emit(strategy)

    def _emit(self, strategy: Any) -> list[MetricValue]:
        columns = sorted(set().union(*self.rows))
        if not columns or any(set(row) != set(columns) for row in self.rows):
            return []  # rows must cover the same experiences (evaluate the whole stream)
        by_presentation = [
            [[row[j][k] for j in columns] for row in self.rows] for k in range(self.max_instances)
        ]
        untrained = None
        if self.untrained is not None and set(self.untrained) == set(columns):
            untrained = [[self.untrained[j][k] for j in columns] for k in range(self.max_instances)]
        self._last = transfer_summary(by_presentation, untrained, self.presentation)
        step = strategy.clock.train_iterations
        values = []
        for key, short in NAMES.items():
            summary = self._last[key]
            base = f"{short}_Stream/eval_phase/test_stream"
            if summary["mean"] is not None:
                values.append(MetricValue(self, f"{base}/mean", summary["mean"], step))
            for j, value in zip(columns, summary["per_experience"], strict=True):
                if value is not None and not math.isnan(value):
                    values.append(MetricValue(self, f"{base}/Exp{j:03d}", value, step))
        return values
