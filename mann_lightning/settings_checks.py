"""Run settings that Lightning accepts and then ignores, or fails on deep inside.

Each check runs in :class:`~mann_lightning.cli.MANNCLI` before any training or evaluation,
so a setting that cannot do what the user asked for ends ``mann`` with one line
(:class:`~mann_lightning.errors.UserError`) or, where it may be meant, warns.
"""

from __future__ import annotations

import re
from typing import Any

from lightning import LightningDataModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from .errors import UserError

#: The data-module attribute that holds the batches each evaluating subcommand runs.
EVALUATION_BATCHES = {"validate": "val_batches", "test": "test_batches", "predict": "test_batches"}
#: LightningCLI's own optimiser options, which ``mann`` does not take (the module builds its
#: optimiser): ``--optimizer ...`` on the command line, ``optimizer:`` in a config.
_OPTIMIZER_OPTION = re.compile(
    r"(?:unrecognized arguments:.*?--|does not accept option ')(optimizer|lr_scheduler)(?=[\s.'=]|$)"
)


def check_trainer_settings(config: Any, subcommand: str | None = None) -> None:
    """Trainer settings of the parsed config that train nothing or fail inside Lightning.

    Args:
        config: The subcommand's parsed config (``trainer`` section read).
        subcommand: ``fit``, ``validate``, ``test`` or ``predict``.

    Raises:
        UserError: ``max_steps``/``max_epochs`` 0 in ``fit``; ``accumulate_grad_batches`` < 1.
    """
    trainer = config.get("trainer") or {}
    for option in ("max_steps", "max_epochs"):
        if subcommand == "fit" and trainer.get(option) == 0:
            raise UserError(
                f"--trainer.{option} 0 trains nothing (Lightning stops before the first step "
                "and saves no checkpoint): give a positive count, or -1 for no limit."
            )
    accumulate = trainer.get("accumulate_grad_batches")
    if isinstance(accumulate, int) and accumulate < 1:
        raise UserError(
            f"--trainer.accumulate_grad_batches must be >= 1 (1: no accumulation), got {accumulate}."
        )


def optimizer_option_message(parser_message: str) -> str | None:
    """What to use instead, when the parser refused LightningCLI's ``optimizer``/``lr_scheduler``.

    ``mann`` builds the optimiser and its schedule from the model's settings (recorded in
    ``hparams.yaml`` and the checkpoint), so it does not accept Lightning's top-level
    ``optimizer:`` / ``lr_scheduler:`` (``--optimizer``, ``--lr_scheduler``).

    Args:
        parser_message: The parser's error (e.g. ``unrecognized arguments: --optimizer ...``).

    Returns:
        The message to show, or ``None`` when the error is about something else.
    """
    found = _OPTIMIZER_OPTION.search(parser_message)
    if found is None:
        return None
    return (
        f"{found.group(1)} (--{found.group(1)} or '{found.group(1)}:' in a config) is not a "
        "setting of mann: the model builds its own optimiser and schedule. Use "
        "--model.init_args.optimizer (adam or rmsprop), --model.init_args.lr, "
        "--model.init_args.weight_decay, --model.init_args.lr_schedule (constant or cosine) "
        "and --model.init_args.warmup_steps (in a config: under model.init_args)."
    )


def check_evaluation_data(
    subcommand: str, trainer: Trainer, datamodule: LightningDataModule | None
) -> None:
    """Batches the subcommand needs: none to evaluate is an error, none to validate a warning.

    Raises:
        UserError: ``validate``/``test``/``predict`` with 0 of its batches (nothing would be
            evaluated and no results written).
    """
    option = EVALUATION_BATCHES.get(subcommand)
    if option is not None and getattr(datamodule, option, None) == 0:
        raise UserError(
            f"mann {subcommand}: {option} is 0, so there is nothing to {subcommand} (no results "
            f"would be written); set --data.init_args.{option} to 1 or more."
        )
    if subcommand == "fit":
        warn_no_validation(trainer, datamodule)


def warn_no_validation(trainer: Trainer, datamodule: LightningDataModule | None) -> None:
    """A checkpoint that monitors a validation metric is never written without validation."""
    no_val = getattr(datamodule, "val_batches", None) == 0 or trainer.limit_val_batches == 0
    for callback in trainer.checkpoint_callbacks if no_val else []:
        monitor = getattr(callback, "monitor", None)
        if monitor and monitor.startswith("val"):
            rank_zero_warn(
                f"No validation runs (val_batches 0 or limit_val_batches 0), so the checkpoint "
                f"callback monitoring {monitor} never saves "
                f"{getattr(callback, 'filename', None) or 'its best'}.ckpt: only last.ckpt (if "
                "save_last) is written. Set val_batches >= 1, or test with --ckpt_path last."
            )


def merge_task_value(name: str, value: Any, task: dict[str, Any], default: Any) -> Any:
    """Combine an explicit argument with the value the data module reports."""
    if name in task:
        if value is not None and value != task[name]:
            raise ValueError(
                f"model {name}={value!r} disagrees with the data module's {name}={task[name]!r}; "
                f"leave model.init_args.{name} unset (it follows the data) or make them equal."
            )
        return task[name]
    return default if value is None else value
