"""Fault drills for stream runs: kill a real ``mann-continual`` process at a chosen point.

``MANN_FAULT=kill_at_iteration=N`` (see :mod:`mann_lightning.faults`) appends a
:class:`KillAtIteration` plugin to the strategy: the process SIGKILLs itself right after its
``N``-th training iteration of the stream, with no clean-up, as a power cut or an
out-of-memory kill would. The resume test uses it to land the kill inside an experience
deterministically. The plugin is never saved in the run's checkpoint, so the resumed run
(without ``MANN_FAULT``) has the same plugins as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

from avalanche.training.plugins import SupervisedPlugin

from mann_lightning.faults import fault, kill_now


class KillAtIteration(SupervisedPlugin):
    """SIGKILL the process once ``strategy.clock.train_iterations`` reaches ``iteration``.

    Args:
        iteration: Training iterations of the whole stream after which to die. Append the
            plugin after the strategy's clock (``strategy.plugins.append``) so that the count
            includes the iteration just finished.
    """

    def __init__(self, iteration: int) -> None:
        super().__init__()
        self.iteration = iteration

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        if strategy.clock.train_iterations >= self.iteration:
            kill_now(f"after training iteration {strategy.clock.train_iterations}")


def planned_drill() -> KillAtIteration | None:
    """The drill ``MANN_FAULT`` asks for, if any."""
    iteration = fault("kill_at_iteration")
    return None if iteration is None else KillAtIteration(iteration)
