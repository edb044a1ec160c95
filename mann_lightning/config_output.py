"""The ``config.yaml`` a ``mann`` run writes into its log folder, without losing an earlier one."""

from __future__ import annotations

from pathlib import Path

from lightning import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

from .checkpointing import keep_previous


class KeepEarlierConfig(SaveConfigCallback):
    """Lightning's ``SaveConfigCallback``, but an existing ``config.yaml`` in the log folder is
    renamed to ``config.previous-<k>.yaml`` before the new one is written.

    With a logger each run writes into its own ``version_<n>`` folder and nothing is there
    yet; with ``--trainer.logger false`` runs share ``default_root_dir``, and the file that
    records how an earlier checkpoint was trained would be replaced by the next run's.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not self.already_saved and self.save_to_log_dir:
            folder = trainer.log_dir  # on every rank: it broadcasts
            path = Path(folder, self.config_filename) if folder else None
            local = path is not None and "://" not in str(folder)
            if local and trainer.is_global_zero and path.is_file():
                (kept,) = keep_previous([path])
                rank_zero_info(f"earlier {path} kept as {kept.name}")
        super().setup(trainer, pl_module, stage)
