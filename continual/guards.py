"""``NonFiniteLossGuard``: a stream run stops at the first NaN or infinite training loss.

Without it a diverged run goes on to the end of the stream and reports chance accuracy as if
it were a result (the loss of every later iteration is NaN too). ``mann-continual`` adds the
guard to every strategy; it is never saved in a run's checkpoint, and the last checkpoint (the
end of the last finished experience) holds the last good weights.
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin

from mann_lightning.guards import NonFiniteTrainingError


class NonFiniteLossGuard(SupervisedPlugin):
    """Raise :class:`~mann_lightning.guards.NonFiniteTrainingError` when ``strategy.loss`` is
    not finite after a training iteration (one host read of a scalar per iteration)."""

    def after_backward(self, strategy: Any, **kwargs: Any) -> None:
        loss = getattr(strategy, "loss", None)
        if isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss.detach()).all()):
            experience = getattr(strategy.experience, "current_experience", "?")
            raise NonFiniteTrainingError(
                f"the training loss became {loss.item()} in experience {experience} (stream "
                f"iteration {strategy.clock.train_iterations}). The run's checkpoint holds the "
                "weights after the last finished experience. Lower optimizer.init_args.lr, or "
                "check the episodes' settings (e.g. a NaN jitter), and run again."
            )
