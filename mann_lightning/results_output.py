"""Where a MANN module's test results go: the run's log folder, and which checkpoint they are of.

:class:`ResultsOutput` is mixed into :class:`~mann_lightning.module.MANNModule` (before
``LightningModule``); the task's ``report`` calls :meth:`ResultsOutput.write_results`, and the
figure and analysis callbacks write next to it through :meth:`ResultsOutput.results_dir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch.utilities import rank_zero_info

from .checkpointing import keep_previous
from .strict_json import dumps

if TYPE_CHECKING:
    from lightning import Trainer


def write_result_files(folder: Path, name: str, payload: dict[str, Any], markdown: str) -> str:
    """Write ``<name>.json`` and ``<name>.md`` into ``folder``; files of those names already
    there (an earlier evaluation into the same folder) are first renamed to
    ``<name>.previous-<k>.json`` / ``.md``, nothing is overwritten. Returns a line saying
    where the earlier files went, or ``""``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{name}{suffix}" for suffix in (".json", ".md")]
    kept = keep_previous(files)
    files[0].write_text(dumps(payload))
    files[1].write_text(markdown + "\n")
    return f"earlier {name}.json/.md in {folder} kept as {kept[0].stem}.json/.md" if kept else ""


class ResultsOutput:
    """Result files of a Lightning module: needs ``self.trainer`` (a ``LightningModule``)."""

    trainer: Trainer

    def checkpoint_entry(self) -> dict[str, Any]:
        """Which checkpoint the test results are of: path, training step and wall time
        (``RunClock``), and the training run's log folder."""
        path = self.trainer.ckpt_path
        loaded = getattr(self, "loaded_checkpoint", {}) if path else {}
        return {
            "path": None if path is None else str(path),
            "global_step": loaded.get("global_step", self.trainer.global_step),
            "wall_s": loaded.get("wall_s"),
            "train_log_dir": loaded.get("log_dir"),
        }

    def results_dir(self) -> Path:
        """Folder next to the run's logs where result tables are written."""
        trainer = self.trainer
        logger = trainer.logger
        if logger is None:
            return Path(trainer.default_root_dir)
        if getattr(logger, "log_dir", None):
            return Path(logger.log_dir)  # CSV, TensorBoard: <save_dir>/<name>/version_<n>
        # W&B and others: <save_dir>/<name>/<version>, where Lightning puts checkpoints too.
        parts = [logger.save_dir or trainer.default_root_dir, logger.name, logger.version]
        return Path(*[str(part) for part in parts if part])

    def write_results(self, name: str, payload: dict[str, Any], markdown: str) -> Path | None:
        """Write ``<name>.json`` and ``<name>.md`` next to the logs (global rank 0 only)."""
        if self.trainer.global_rank != 0:
            return None
        folder = self.results_dir()
        moved = write_result_files(folder, name, payload, markdown)
        rank_zero_info(f"\n{markdown}\n\nwritten to {folder / name}.json and .md")
        if moved:
            rank_zero_info(moved)
        return folder
