"""``CurriculumCallback``: ``mann fit`` grows the classes per episode by a schedule.

The schedules (:class:`~mann_lightning.curriculum.StepSchedule`, ``ThresholdSchedule``) are in
:mod:`~mann_lightning.curriculum`; docs/curriculum.md describes the whole mechanism. The
callback is also importable as ``mann_lightning.callbacks.CurriculumCallback``, the
``class_path`` the configs use.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from .curriculum import CurriculumSchedule


class CurriculumCallback(Callback):
    """Grow the classes per episode ``N`` during ``mann fit`` by a curriculum schedule.

    Asks ``schedule.on_train_step(global_step)`` before every training step and
    ``schedule.on_validation(global_step, <monitor>)`` after every validation; on a change calls
    the data module's ``set_episode_shape(N, samples_per_class)`` (batches drawn from then on,
    and validation, use ``N``) and logs ``curriculum/num_classes``. The schedule is saved in
    checkpoints, so ``--ckpt_path last`` continues it (docs/curriculum.md).

    Args:
        schedule: A :class:`~mann_lightning.curriculum.CurriculumSchedule` (``class_path``).
        monitor: The validation metric handed to the schedule.
        select_at_current_classes: Before the first validation at a new ``N``, every
            ``ModelCheckpoint`` that monitors a metric forgets its best score, so ``best`` is the
            best checkpoint at the latest ``N`` (scores at a smaller ``N`` are higher, since the
            task is easier, and would otherwise be kept for ever).
    """

    def __init__(
        self,
        schedule: CurriculumSchedule,
        monitor: str = "val/acc_inst_2",
        select_at_current_classes: bool = True,
    ) -> None:
        self.schedule, self.monitor = schedule, monitor
        self.select_at_current_classes = select_at_current_classes
        self._validated_at: int | None = None  # N of the latest scored validation

    @staticmethod
    def _data(trainer: L.Trainer) -> Any:
        data = trainer.datamodule
        if data is None or not hasattr(data, "set_episode_shape"):
            raise ValueError(
                "CurriculumCallback needs a data module with set_episode_shape "
                f"(e.g. OmniglotEpisodes), got {type(data).__name__}."
            )
        return data

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        data, top = self._data(trainer), self.schedule.max_classes
        width = getattr(data, "max_classes", None) or data.num_classes
        if getattr(data, "label_encoding", "onehot") == "onehot" and width < top:
            raise ValueError(
                f"The curriculum grows N to {top} but one-hot labels are {width} wide; set "
                f"data.init_args.max_classes: {top} (the model follows the data)."
            )
        current, samples = data.num_classes, data.samples_per_class
        data.set_episode_shape(top, samples)  # can every N be drawn?
        data.set_episode_shape(current, samples)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._apply(trainer, announce=False)  # before the sanity check's validation

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._apply(trainer)  # the global step of a resumed run is known from here on

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.schedule.on_train_step(trainer.global_step):
            self._apply(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fitting = trainer.state.fn == "fit" and not trainer.sanity_checking
        if not fitting or not self.select_at_current_classes:
            return
        classes = self.schedule.num_classes
        if self._validated_at is not None and classes != self._validated_at:
            for checkpoint in trainer.checkpoint_callbacks:
                if isinstance(checkpoint, ModelCheckpoint) and checkpoint.monitor is not None:
                    forget_best(checkpoint)
        self._validated_at = classes

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn != "fit" or trainer.sanity_checking:  # not `mann validate`
            return
        value = trainer.callback_metrics.get(self.monitor)
        if self.schedule.on_validation(
            trainer.global_step, None if value is None else float(value)
        ):
            self._apply(trainer)

    def _apply(self, trainer: L.Trainer, announce: bool = True) -> None:
        data, classes = self._data(trainer), self.schedule.num_classes
        if data.num_classes != classes:
            data.set_episode_shape(classes, data.samples_per_class)
        if not announce:
            return
        step = trainer.global_step
        rank_zero_info(f"Curriculum: {classes} classes per episode from step {step}.")
        for logger in trainer.loggers:
            logger.log_metrics({"curriculum/num_classes": classes}, step=step)

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict(), "validated_at": self._validated_at}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.schedule.load_state_dict(state_dict["schedule"])
        self._validated_at = state_dict.get("validated_at")


def forget_best(checkpoint: ModelCheckpoint) -> None:
    """Make a ``ModelCheckpoint`` forget its best scores, so its next monitored save wins."""
    checkpoint.best_k_models, checkpoint.kth_best_model_path = {}, ""
    checkpoint.best_model_score = None
    checkpoint.kth_value = torch.tensor(torch.inf if checkpoint.mode == "min" else -torch.inf)
