"""RunClock: ``time/wall_s`` in every row the loggers write, and only there."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from mann_lightning.run_clock import WALL_KEY, RunClock


class TinyModule(pl.LightningModule):
    """One weight; logs its loss every step, as ``MANNModule.training_step`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = (self.weight * batch).pow(2).mean()
        self.log("train/loss", loss, batch_size=batch.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(torch.randn(7, 2), batch_size=1)


@pytest.mark.parametrize("every", [1, 3])
def test_wall_time_is_in_every_written_row(tmp_path: Path, every: int) -> None:
    clock = RunClock()
    trainer = pl.Trainer(
        max_steps=17,  # over two epochs of 7 batches and a partial third
        log_every_n_steps=every,
        logger=CSVLogger(tmp_path, name="run"),
        callbacks=[clock],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(TinyModule())
    (metrics,) = tmp_path.glob("run/version_*/metrics.csv")
    rows = [r for r in csv.DictReader(metrics.open()) if r.get("train/loss")]
    assert [int(r["step"]) for r in rows] == list(range(every - 1, 17, every))
    walls = [float(r[WALL_KEY]) for r in rows]  # every written row has its wall time
    assert walls == sorted(walls) and walls[0] > 0
    assert clock.elapsed_s >= walls[-1]
