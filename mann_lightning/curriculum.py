"""Curriculum schedules: how many classes per episode ``N`` as training goes on.

Santoro et al. (2016, Sec. 4.2, Fig. 4) trained a MANN first on 15 classes per episode and then
raised the number of classes on a fixed interval of training episodes, towards 100; the
accuracy stayed high as ``N`` grew. The schedules here hold that decision and nothing else:

* :class:`StepSchedule`: the paper's kind, ``N = min(max, start + increment * (step // every))``;
* :class:`ThresholdSchedule`: add ``increment`` classes whenever the validation accuracy at the
  2nd presentation reaches ``threshold`` (optionally no sooner than ``min_steps`` after the
  previous change).

The episode length follows ``N``: the data keeps its ``samples_per_class``, so an episode has
``N * samples_per_class`` steps. Schedules are plain Python (no Lightning, no Avalanche) so
that the ``mann fit`` callback (:class:`~mann_lightning.callbacks.CurriculumCallback`) and a
continual-learning plugin drive the same object: call :meth:`CurriculumSchedule.on_train_step`
before each training step and :meth:`CurriculumSchedule.on_validation` after each validation,
apply :attr:`CurriculumSchedule.num_classes` when either returns ``True``, and keep
:meth:`CurriculumSchedule.state_dict` in checkpoints so a resumed run continues the schedule.
"""

from __future__ import annotations

import math
from typing import Any


class CurriculumSchedule:
    """Base schedule: ``N`` starts at ``start_classes`` and only grows, up to ``max_classes``.

    Args:
        start_classes: ``N`` at the first training step (paper: 15).
        max_classes: Largest ``N`` (e.g. 100); one-hot labels need the data's
            ``max_classes`` at least this large.
        increment: Classes added at each change.
    """

    def __init__(self, start_classes: int = 15, max_classes: int = 100, increment: int = 1) -> None:
        if not 2 <= start_classes <= max_classes:
            raise ValueError(
                f"{type(self).__name__}: need 2 <= start_classes <= max_classes, got "
                f"start_classes={start_classes}, max_classes={max_classes}."
            )
        if increment < 1:
            raise ValueError(f"{type(self).__name__}: increment must be >= 1, got {increment}.")
        self.start_classes, self.max_classes, self.increment = start_classes, max_classes, increment
        self.num_classes = start_classes
        #: ``(step, N)`` at the start and at every change since.
        self.changes: list[tuple[int, int]] = [(0, start_classes)]

    @property
    def finished(self) -> bool:
        """Whether ``N`` has reached ``max_classes``."""
        return self.num_classes >= self.max_classes

    def on_train_step(self, step: int) -> bool:
        """Called before training step ``step`` (0-based); ``True`` if ``N`` changed."""
        return False

    def on_validation(self, step: int, accuracy: float | None) -> bool:
        """Called after a validation at ``step`` with its 2nd-presentation accuracy (``None``
        or NaN if unknown); ``True`` if ``N`` changed."""
        return False

    def _set(self, step: int, num_classes: int) -> bool:
        num_classes = min(num_classes, self.max_classes)
        if num_classes == self.num_classes:
            return False
        self.num_classes = num_classes
        self.changes.append((step, num_classes))
        return True

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue the schedule."""
        return {"num_classes": self.num_classes, "changes": [list(c) for c in self.changes]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`."""
        num_classes = int(state["num_classes"])
        if not self.start_classes <= num_classes <= self.max_classes:
            raise ValueError(
                f"{type(self).__name__}: the saved N={num_classes} is outside this schedule's "
                f"{self.start_classes}..{self.max_classes}."
            )
        self.num_classes = num_classes
        self.changes = [(int(step), int(n)) for step, n in state["changes"]]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(start_classes={self.start_classes}, "
            f"max_classes={self.max_classes}, increment={self.increment}, N={self.num_classes})"
        )


class StepSchedule(CurriculumSchedule):
    """The paper's schedule: ``increment`` more classes every ``every_n_steps`` training steps.

    ``N(step) = min(max_classes, start_classes + increment * (step // every_n_steps))``, a
    function of the step alone. The paper added one class every 10,000 episodes; with 16
    episodes per batch that is ``every_n_steps=625``.

    Args:
        start_classes: ``N`` at step 0 (paper: 15).
        max_classes: Largest ``N`` (e.g. 100).
        increment: Classes added at each change (paper: 1).
        every_n_steps: Training steps (batches) between changes.
    """

    def __init__(
        self,
        start_classes: int = 15,
        max_classes: int = 100,
        increment: int = 1,
        every_n_steps: int = 625,
    ) -> None:
        super().__init__(start_classes, max_classes, increment)
        if every_n_steps < 1:
            raise ValueError(f"StepSchedule: every_n_steps must be >= 1, got {every_n_steps}.")
        self.every_n_steps = every_n_steps

    def classes_at(self, step: int) -> int:
        """``N`` for training step ``step``."""
        grown = self.start_classes + self.increment * (step // self.every_n_steps)
        return min(self.max_classes, grown)

    def on_train_step(self, step: int) -> bool:
        return self._set(step, self.classes_at(step))


class ThresholdSchedule(CurriculumSchedule):
    """Add ``increment`` classes when the validation accuracy reaches ``threshold``.

    Args:
        start_classes: ``N`` at the start (paper: 15).
        max_classes: Largest ``N`` (e.g. 100).
        increment: Classes added at each change.
        threshold: 2nd-presentation validation accuracy (in ``[0, 1]``) that earns a change.
        min_steps: Training steps that must pass after a change before the next one.
    """

    def __init__(
        self,
        start_classes: int = 15,
        max_classes: int = 100,
        increment: int = 1,
        threshold: float = 0.8,
        min_steps: int = 0,
    ) -> None:
        super().__init__(start_classes, max_classes, increment)
        if not 0.0 <= threshold <= 1.0 or min_steps < 0:
            raise ValueError(
                "ThresholdSchedule: need 0 <= threshold <= 1 and min_steps >= 0, got "
                f"threshold={threshold}, min_steps={min_steps}."
            )
        self.threshold, self.min_steps = threshold, min_steps

    def on_validation(self, step: int, accuracy: float | None) -> bool:
        if accuracy is None or math.isnan(accuracy) or accuracy < self.threshold:
            return False
        if step - self.changes[-1][0] < self.min_steps:
            return False
        return self._set(step, self.num_classes + self.increment)
