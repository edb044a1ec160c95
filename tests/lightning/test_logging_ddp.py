"""W&B offline logging and DDP with 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.wandb_records import logged_keys

from mann_lightning.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "configs" / "demo.yaml")
SMALL = [
    "--trainer.enable_progress_bar=false",
    "--data.init_args.train_batches_per_epoch=2",
    "--data.init_args.val_batches=2",
    "--data.init_args.test_batches=4",
    "--trainer.max_steps=4",
]


def test_wandb_offline_run_holds_hparams_accuracy_and_memory_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, omniglot: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", DEMO, "--config", str(REPO / "configs/logger/wandb.yaml"), *SMALL])
    runs = list((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    keys = logged_keys(next(runs[0].glob("run-*.wandb")))
    assert {"lr", "memory", "controller", "num_classes", "label_encoding"} <= keys["config"]
    accuracy = {f"val/acc_inst_{k}" for k in range(1, 11)}
    assert accuracy <= keys["history"], keys["history"]
    assert any(k.startswith("memory/trace") for k in keys["history"])
    assert list(runs[0].glob("files/media/images/memory/trace*.png"))


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mann_lightning", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]


@pytest.mark.long  # 20-45 s; make test-long runs it
def test_ddp_two_cpu_processes_reduce_metrics_like_one(tmp_path: Path, omniglot: Path) -> None:
    _run(["fit", "--config", DEMO, *SMALL], tmp_path)
    ckpt = tmp_path / "runs" / "demo" / "checkpoints" / "last.ckpt"
    results = {}
    for devices in (1, 2):
        _run(
            [
                "test",
                "--config",
                DEMO,
                f"--ckpt_path={ckpt}",
                *SMALL,
                "--trainer.accelerator=cpu",
                f"--trainer.devices={devices}",
                "--trainer.strategy=" + ("ddp" if devices == 2 else "auto"),
            ],
            tmp_path,
        )
        newest = max(
            (tmp_path / "runs" / "demo").glob("version_*/test_results.json"),
            key=lambda p: p.stat().st_mtime,
        )
        results[devices] = json.loads(newest.read_text())
    # Same fixed test episodes, shared out over ranks (not duplicated) and summed.
    assert results[1]["steps_per_instance"] == results[2]["steps_per_instance"]
    assert results[1]["steps_per_instance"][0] == 4 * 16 * 5  # 4 batches x 16 episodes x 5 classes
    assert results[1]["per_instance"] == pytest.approx(results[2]["per_instance"], abs=1e-12)
