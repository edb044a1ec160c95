"""``compile="auto"``: compiled for long CPU runs, eager otherwise, and one line saying which."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.cli_args import FAST_FIT_ARGS

from mann_lightning import compilation
from mann_lightning.classifier import MANNClassifier
from mann_lightning.cli import build_cli
from mann_lightning.compilation import AUTO_MIN_STEPS, auto_compile_mode
from mann_lightning.data import OmniglotEpisodes
from mann_lightning.memory import LRUAMemory, SparseLRUAMemory

REPO = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


def test_long_cpu_runs_compile_and_short_ones_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compilation, "missing_compiler", lambda device: None)
    mode, why = auto_compile_mode(100_000, CPU)
    assert mode == "episode" and "100,000 steps" in why
    assert auto_compile_mode(float("inf"), CPU)[0] == "episode"
    assert auto_compile_mode(AUTO_MIN_STEPS, CPU)[0] == "episode"
    mode, why = auto_compile_mode(AUTO_MIN_STEPS - 1, CPU)
    assert mode == "none" and "fewer than 10,000" in why and "compile='episode'" in why


def test_auto_stays_eager_without_compiler_on_cuda_and_for_sparse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mode, why = auto_compile_mode(100_000, torch.device("cuda"))
    assert mode == "none" and "CPU only" in why
    assert auto_compile_mode(100_000, CPU, compiles_well=False)[0] == "none"
    assert not SparseLRUAMemory(16, 4, 2).compiles_well and LRUAMemory(16, 4, 2).compiles_well
    monkeypatch.setattr(compilation.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    mode, why = auto_compile_mode(100_000, CPU)
    assert mode == "none" and "no C++ compiler" in why


def test_unknown_choice_names_auto() -> None:
    with pytest.raises(ValueError, match="'auto'"):
        MANNClassifier(num_classes=5, compile="fastest")  # type: ignore[arg-type]


def test_paper_config_short_run_trains_eagerly_and_says_why(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    omniglot: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = str(REPO / "configs" / "omniglot_5way_onehot.yaml")
    with caplog.at_level(logging.INFO):
        cli = build_cli(["fit", "--config", config, "--trainer.max_steps=2", *FAST_FIT_ARGS])
    assert cli.model.compile_choice == "auto"
    assert cli.model.model.compile_mode == "none"
    assert cli.trainer.global_step == 2
    lines = [r.getMessage() for r in caplog.records if "compile='auto'" in r.getMessage()]
    assert len(lines) == 1 and "a run of 2 steps, fewer than 10,000" in lines[0]


def test_long_run_compiles_the_episode(
    monkeypatch: pytest.MonkeyPatch, omniglot: Path, one_thread: None
) -> None:
    """With the threshold at 1 step, ``auto`` hands the episode to ``torch.compile`` (a spy
    here, so the test does not spend minutes compiling) for every training forward."""
    compiled: list[Any] = []

    def spy(fn: Any, **options: Any) -> Any:
        compiled.append(options)
        return fn

    monkeypatch.setattr(compilation, "AUTO_MIN_STEPS", 1)
    monkeypatch.setattr(compilation, "missing_compiler", lambda device: None)
    monkeypatch.setattr(compilation.torch, "compile", spy)
    data = OmniglotEpisodes(
        num_classes=2, samples_per_class=2, batch_size=2, train_batches_per_epoch=3
    )
    model = MANNClassifier(
        memory=LRUAMemory(8, 4, 2), controller_size=5, compile="auto", task=data.task
    )
    trainer = pl.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=data)
    assert model.model.compile_mode == "episode"
    assert compiled == [  # built once, used for every step
        {"dynamic": False, "options": compilation.CPU_INDUCTOR_OPTIONS}
    ]
    assert trainer.global_step == 3


def test_a_resumed_run_chooses_as_the_run_it_continues(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole run's steps decide, not those left: compiled and eager steps differ in the
    last bits, and a resumed run must stay bit-identical to an uninterrupted one."""
    monkeypatch.setattr(compilation, "missing_compiler", lambda device: None)
    model = MANNClassifier(num_classes=5, controller_size=5, compile="auto")
    for done in (0, 95_000):
        model.trainer = SimpleNamespace(estimated_stepping_batches=100_000, global_step=done)
        model.on_train_start()
        assert model.model.compile_mode == "episode", done
    model.trainer = SimpleNamespace(estimated_stepping_batches=5_000, global_step=0)
    model.on_train_start()
    assert model.model.compile_mode == "none"


def test_sparse_memory_stays_eager_under_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compilation, "missing_compiler", lambda device: None)
    model = MANNClassifier(
        num_classes=5, controller_size=5, memory=SparseLRUAMemory(16, 4, 2), compile="auto"
    )
    model.trainer = SimpleNamespace(estimated_stepping_batches=100_000, global_step=0)
    model.on_train_start()
    assert model.model.compile_mode == "none"
