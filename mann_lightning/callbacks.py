"""Callbacks of the Lightning layer: memory pictures, prediction files, the curriculum.

:class:`MemoryTraceLogger` draws what the memory did over one validation episode: usage
``w^u_t`` (eq. 5) and write weights ``w^w_t`` (eq. 7, summed over heads) against time for
LRUA; read and write weights for the NTM-style memory. The picture is saved as a PNG next
to the run's logs and, when the logger is a ``WandbLogger``, logged as ``memory/trace``.
:class:`CurriculumCallback` (in :mod:`~mann_lightning.curriculum_callback`, importable from
here) grows the classes per episode by a schedule of :mod:`~mann_lightning.curriculum`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from .curriculum_callback import CurriculumCallback as CurriculumCallback  # its old home

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
        print(f"predictions written to {path}")
