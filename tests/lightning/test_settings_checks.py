"""Settings Lightning or jsonargparse would take silently, or fail on with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from mann_lightning.cli import main
from mann_lightning.errors import UserError
from mann_lightning.memory import Memory
from mann_lightning.settings_checks import check_trainer_settings, optimizer_option_message
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


def test_a_yaml_key_the_class_does_not_take_is_named_with_its_spelling() -> None:
    """With its class_path (a YAML file) the key reached the constructor: a bare TypeError."""
    spec = {"class_path": "mann_lightning.memory.LRUAMemory", "init_args": {"memory_sise": 8}}
    with pytest.raises(ValueError, match="LRUAMemory takes no 'memory_sise' .*'memory_size'"):
        from_spec(spec, Memory)
    ntm = {"class_path": "mann_lightning.memory.NTMMemory", "init_args": {"gamma": 0.9}}
    with pytest.raises(ValueError, match="NTMMemory takes no 'gamma'"):
        from_spec(ntm, Memory)
    assert from_spec({**spec, "init_args": {"memory_size": 8}}, Memory).memory_size == 8


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


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (["--optimizer", "torch.optim.SGD", "--optimizer.lr", "0.1"], "optimizer"),
        (["--lr_scheduler", "torch.optim.lr_scheduler.StepLR"], "lr_scheduler"),
        (["--config", "sched.yaml"], "lr_scheduler"),
    ],
)
def test_lightnings_optimizer_options_point_to_the_models(
    tmp_path: Path, given: list[str], named: str
) -> None:
    """LightningCLI's ``optimizer``/``lr_scheduler`` were taken, then ignored (a scheduler
    alone) or used while hparams.yaml recorded the model's optimiser."""
    from helpers.mann_runs import error_message, mann_in_process

    (tmp_path / "sched.yaml").write_text(
        "lr_scheduler:\n  class_path: torch.optim.lr_scheduler.StepLR\n"
    )
    message = error_message(mann_in_process("fit", *DEMO, *given, cwd=tmp_path))
    assert message.startswith(f"mann: error: {named} (--{named} or '{named}:' in a config)")
    assert "--model.init_args.lr," in message and "--model.init_args.lr_schedule" in message


def test_print_config_offers_no_lightning_optimizer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["fit", *DEMO, "--print_config"])
    printed = capsys.readouterr().out
    assert "\nmodel:" in printed
    assert "\noptimizer:" not in printed and "\nlr_scheduler:" not in printed


def test_the_models_optimizer_setting_keeps_its_own_message() -> None:
    assert optimizer_option_message("unrecognized arguments: --optimizer x") is not None
    told = "--model.init_args.optimizer: Expected a Literal['adam', 'rmsprop']. Got value: sgd"
    assert optimizer_option_message(told) is None
