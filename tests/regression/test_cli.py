"""In-process ``mann fit`` / ``mann test`` of every regression config (a few steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mann_lightning.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
QUICK = ["--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false", "--data.init_args.batch_size", "4",
         "--data.init_args.train_batches_per_epoch", "2"]  # fmt: skip


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_config_fits_and_tests(dim: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the configs write under ./runs
    config = str(CONFIGS / f"gp_regression_{dim}d.yaml")
    main(["fit", "--config", config, *QUICK])
    run = tmp_path / "runs" / f"gp_regression_{dim}d"
    last = run / "checkpoints" / "last.ckpt"
    assert last.exists() and (run / "checkpoints" / "best.ckpt").exists()
    if dim != 1:
        return
    main(["test", "--config", config, "--ckpt_path", str(last), *QUICK,
          "--data.init_args.test_batches", "1"])  # fmt: skip
    results = sorted(run.glob("version_*/test_results.json"))
    assert results, list(run.rglob("*"))
    payload = json.loads(results[-1].read_text())
    assert payload["x_dim"] == 1 and payload["episodes"] == 4
    assert set(payload["per_step"]) == {"MANN (LRUA)", "exact GP"}
    assert len(payload["per_step"]["exact GP"]) == 20
    checkpoint = payload["checkpoint"]  # which weights: path, step, training wall time
    assert checkpoint["path"] == str(last) and checkpoint["global_step"] == 2
    assert checkpoint["wall_s"] > 0
    assert (results[-1].parent / "fit_1d.png").exists()
    assert (results[-1].parent / "loglik_per_step.png").exists()
