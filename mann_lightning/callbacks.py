"""Callbacks of the Lightning layer: memory pictures, prediction files, the curriculum.

:class:`MemoryTraceLogger` draws what the memory did over one validation episode: usage
``w^u_t`` (eq. 5) and write weights ``w^w_t`` (eq. 7, summed over heads) against time for
LRUA; read and write weights for the NTM-style memory. The picture is saved as a PNG next
to the run's logs and, when the logger is a ``WandbLogger``, logged as ``memory/trace``.
:class:`CurriculumCallback` grows the classes per episode by a schedule of
:mod:`~mann_lightning.curriculum`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from .curriculum import CurriculumSchedule

#: State fields drawn, in this order, when the memory's state has them.
TRACE_FIELDS: tuple[str, ...] = ("usage", "write_weights", "read_weights")


def trace_images(states: list[Any]) -> dict[str, Tensor]:
    """``[time, slots]`` maps of the fields in ``TRACE_FIELDS`` for episode 0.

    Head axes (``[batch, heads, slots]``) are summed over.
    """
    images = {}
    for name in TRACE_FIELDS:
        if not states or not hasattr(states[0], name):
            continue
        rows = [getattr(state, name)[0] for state in states]
        rows = [row.sum(0) if row.dim() == 2 else row for row in rows]
        images[name] = torch.stack(rows).detach().float().cpu()
    return images


class MemoryTraceLogger(Callback):
    """Every ``every_n_epochs`` validation epochs, trace one episode and draw the memory.

    Args:
        every_n_epochs: How often (in validation epochs) to draw.
        folder: Sub-folder of the run's log folder for the PNGs.
    """

    def __init__(self, every_n_epochs: int = 1, folder: str = "memory_trace") -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}.")
        self.every_n_epochs = every_n_epochs
        self.folder = folder
        self._batch: Any = None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0:
            self._batch = batch

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = trainer.current_epoch % self.every_n_epochs == 0
        if trainer.sanity_checking or not due or self._batch is None or trainer.global_rank != 0:
            return
        model = pl_module.model  # type: ignore[attr-defined]
        if model.memory is None:
            return
        batch = self._batch
        with torch.no_grad():
            _, states = model.trace(batch.inputs[:1], batch.prev_labels[:1])
        images = trace_images(states)
        if not images:
            return
        path = Path(pl_module.results_dir()) / self.folder / f"step_{trainer.global_step:07d}.png"  # type: ignore[attr-defined]
        draw_trace(images, path, title=f"{type(model.memory).__name__}, step {trainer.global_step}")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="memory/trace", images=[str(path)], step=trainer.global_step)


def draw_trace(images: dict[str, Tensor], path: Path, title: str) -> Path:
    """Save the ``[time, slots]`` maps side by side as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(4 * len(images), 3.5), squeeze=False)
    for ax, (name, image) in zip(axes[0], images.items(), strict=True):
        shown = ax.imshow(image.numpy(), aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set(title=name, xlabel="memory slot", ylabel="time step")
        fig.colorbar(shown, ax=ax)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


class PredictionWriter(BasePredictionWriter):
    """Write what ``mann predict`` returns to ``predictions.pt`` next to the run's logs.

    Each task's ``predict_step`` returns a dict of ``[batch, time, ...]`` tensors; batches are
    concatenated along the batch axis and saved with ``torch.save`` (one file per process,
    ``predictions_rank<r>.pt`` under DDP).

    Args:
        filename: File name inside the run's log folder.
    """

    def __init__(self, filename: str = "predictions.pt") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any,
        batch_indices: Any,
    ) -> None:  # fmt: skip
        batches = (
            predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        )
        if not batches:
            return
        merged = {key: torch.cat([b[key].cpu() for b in batches]) for key in batches[0]}
        name = self.filename
        if trainer.world_size > 1:
            name = name.replace(".pt", f"_rank{trainer.global_rank}.pt")
        path = Path(pl_module.results_dir()) / name  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(merged, path)


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
