"""Wall time of a training run, logged beside its steps and kept across resumes.

Time-to-accuracy curves (``mann-report``, ``docs/results.md``) need the wall time at which
each validation result was reached. :class:`RunClock` logs ``time/wall_s``, the seconds
spent in training so far (validation included, start-up excluded), with the training
metrics, and stores it in checkpoints, so a resumed run continues its clock instead of
restarting it at zero. It also stores the run's log folder, so ``mann test`` of a checkpoint
can say which training run (and which ``metrics.csv``) it came from.
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl

WALL_KEY = "time/wall_s"


def writes_step_logs(trainer: pl.Trainer) -> bool:
    """Whether the loggers write this training step's values (every ``log_every_n_steps``).

    Lightning's own test; True where a Lightning version does not have it. A ``self.log``
    costs about 0.3 ms, so a value only the written rows need is logged on those steps.
    """
    if trainer.fast_dev_run:
        return True
    connector = getattr(trainer, "_logger_connector", None)
    return bool(getattr(connector, "should_update_logs", True))


class RunClock(pl.Callback):
    """Logs ``time/wall_s`` on the training steps the loggers write (``log_every_n_steps``)."""

    def __init__(self) -> None:
        self.offset_s = 0.0  # wall time of earlier sessions of this run (from the checkpoint)
        self.started: float | None = None
        self.log_dir: str | None = None

    @property
    def elapsed_s(self) -> float:
        """Training wall time so far, earlier sessions included."""
        if self.started is None:
            return self.offset_s
        return self.offset_s + time.monotonic() - self.started

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.monotonic()
        self.log_dir = trainer.log_dir

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.offset_s = self.elapsed_s
        self.started = None

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if writes_step_logs(trainer):
            pl_module.log(WALL_KEY, self.elapsed_s, on_step=True, on_epoch=False, batch_size=1)

    def state_dict(self) -> dict[str, Any]:
        return {"wall_s": self.elapsed_s, "log_dir": self.log_dir}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.offset_s = float(state_dict.get("wall_s", 0.0))


def checkpoint_clock(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """``{"wall_s", "log_dir"}`` stored by a :class:`RunClock` in ``checkpoint`` (or ``{}``)."""
    for key, state in checkpoint.get("callbacks", {}).items():
        if str(key).startswith("RunClock") and isinstance(state, dict):
            return dict(state)
    return {}
