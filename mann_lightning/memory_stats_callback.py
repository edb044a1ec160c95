"""``MemoryStatisticsCallback``: the memory statistics of validation episodes during ``mann fit``.

Every ``every_n_epochs`` validations it traces the first ``num_batches`` validation batches
(:meth:`~mann_lightning.model.MANN.trace`, from an empty memory, as validation runs) and
computes :func:`~mann_lightning.memory_stats.memory_statistics` per episode: the share of
slots written, the share of writes that overwrite a binding still needed, and the entropy of
the final usage (docs/interference.md). Their means over the episodes are logged as
``memory/slots_written``, ``memory/binding_overwrites`` and ``memory/usage_entropy`` at the
global step and appended to ``<log dir>/memory_stats.json``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from .memory_stats import MemoryStatistics, trace_statistics
from .strict_json import dumps

STATISTICS: tuple[str, ...] = MemoryStatistics._fields


class MemoryStatisticsCallback(Callback):
    """Log the memory statistics of validation episodes.

    Args:
        every_n_epochs: How often, in validation epochs.
        num_batches: Validation batches traced (the first ones; fixed episodes).
        threshold: Write weight at which a slot counts as written (0.5).
        lag: A write at step ``t`` stores the class of step ``t - lag`` (0: the image; 1: the
            label, which arrives one step late).
        filename: JSON file in the run's log folder.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        num_batches: int = 1,
        threshold: float = 0.5,
        lag: int = 0,
        filename: str = "memory_stats.json",
    ) -> None:
        if every_n_epochs < 1 or num_batches < 1:
            raise ValueError(
                f"every_n_epochs and num_batches must be >= 1, got {every_n_epochs}, {num_batches}."
            )
        self.every_n_epochs, self.num_batches = every_n_epochs, num_batches
        self.threshold, self.lag, self.filename = threshold, lag, filename
        self.evaluations: list[dict[str, Any]] = []
        self._batches: list[Any] = []

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._batches = []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx < self.num_batches:
            self._batches.append(batch)

    def measure(self, model: Any, batches: list[Any]) -> dict[str, float]:
        """Means over the episodes of ``batches`` of each statistic of ``model`` (a MANN)."""
        stats = [
            trace_statistics(
                model, b.inputs, b.prev_labels, b.targets, threshold=self.threshold, lag=self.lag
            )
            for b in batches
        ]
        return {
            name: float(torch.cat([getattr(s, name) for s in stats]).float().nanmean())
            for name in STATISTICS
        }

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = trainer.current_epoch % self.every_n_epochs == 0
        if trainer.sanity_checking or trainer.state.fn != "fit" or not due or not self._batches:
            return
        model = pl_module.model  # type: ignore[attr-defined]
        if trainer.global_rank != 0 or model.memory is None:
            return
        values = self.measure(model, self._batches)
        step = trainer.global_step
        finite = {f"memory/{k}": v for k, v in values.items() if not math.isnan(v)}
        for logger in trainer.loggers:
            logger.log_metrics(finite, step=step)
        self.evaluations = [e for e in self.evaluations if e["step"] < step]
        record = {k: (None if math.isnan(v) else v) for k, v in values.items()}
        self.evaluations.append({"step": step, "epoch": trainer.current_epoch, **record})
        path = Path(pl_module.results_dir()) / self.filename  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"threshold": self.threshold, "lag": self.lag, "evaluations": self.evaluations}
        path.write_text(dumps(payload))

    def state_dict(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.evaluations = list(state_dict.get("evaluations", []))
