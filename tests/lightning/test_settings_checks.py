"""Settings Lightning or jsonargparse would take silently, or fail on with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from mann_lightning.cli import main
from mann_lightning.errors import UserError
from mann_lightning.memory import Memory
from mann_lightning.settings_checks import check_trainer_settings
from mann_lightning.specs import from_spec

REPO = Path(__file__).resolve().parents[2]
DEMO = ["--config", str(REPO / "configs" / "demo.yaml")]


@pytest.mark.parametrize("option", ["max_steps", "max_epochs"])
def test_zero_steps_or_epochs_refused_for_fit_only(option: str) -> None:
    config = {"trainer": {option: 0}}
    with pytest.raises(UserError, match=f"--trainer.{option} 0 trains nothing"):
        check_trainer_settings(config, "fit")
    check_trainer_settings(config, "test")  # evaluation does not train
    check_trainer_settings({"trainer": {option: -1}}, "fit")


def test_a_spec_without_class_path_names_the_suspect_value() -> None:
    with pytest.raises(ValueError, match=r"no class_path.*memory_size='abc'"):
        from_spec({"memory_size": "abc", "word_size": 4}, Memory)
    with pytest.raises(ValueError, match="no class_path"):
        from_spec({"init_args": {"memory_size": 8}}, Memory)


def test_no_validation_warns_that_best_is_never_saved(
    tmp_path: Path, omniglot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "fit", *DEMO, "--trainer.max_steps=1",
        "--trainer.logger=false", "--trainer.enable_progress_bar=false",
        "--data.init_args.train_batches_per_epoch=1", "--data.init_args.val_batches=0",
    ]  # fmt: skip
    with pytest.warns(UserWarning, match="monitoring val/acc_inst_2 never saves best.ckpt"):
        main(args)
    checkpoints = tmp_path / "runs" / "demo" / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file() and not (checkpoints / "best.ckpt").exists()
