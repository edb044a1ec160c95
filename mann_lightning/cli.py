"""The ``mann`` command: a ``LightningCLI`` over every MANN task and data module.

    mann fit --config configs/omniglot_5way_onehot.yaml
    mann test --config configs/omniglot_5way_onehot.yaml --ckpt_path runs/.../best.ckpt
    python -m mann_lightning fit --config configs/demo.yaml --trainer.max_steps 100

Model and data are chosen by ``class_path`` (subclass mode), memories and controllers
too (``--model.init_args.memory mann_lightning.memory.NTMMemory``). The data module's
task sizes (classes per episode, label encoding, input size) are linked into the model,
so they are set once, on the data.
"""

from __future__ import annotations

from typing import Any

from lightning import LightningDataModule
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import WandbLogger

from .errors import run_console
from .module import MANNModule


class MANNCLI(LightningCLI):
    """``LightningCLI`` with the data-to-model task link."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.link_arguments("data.task", "model.init_args.task", apply_on="instantiate")

    def _finish_wandb(self) -> None:
        """Close W&B runs so their offline folders hold the summary and config."""
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.finish()

    def after_fit(self) -> None:
        self._finish_wandb()

    def after_validate(self) -> None:
        self._finish_wandb()

    def after_test(self) -> None:
        self._finish_wandb()

    def after_predict(self) -> None:
        self._finish_wandb()


def _parser_kwargs() -> dict[str, Any]:
    """Parsers raise instead of printing usage and exiting, so ``run_console`` words the error."""
    kwargs: dict[str, Any] = {"exit_on_error": False}
    for subcommand in MANNCLI.subcommands():
        kwargs[subcommand] = {"exit_on_error": False}
    return kwargs


def build_cli(args: list[str] | dict[str, Any] | None = None, run: bool = True) -> MANNCLI:
    """Build (and unless ``run=False``, run) the CLI; ``args`` replaces ``sys.argv[1:]``."""
    return MANNCLI(
        MANNModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"default_root_dir": "runs"},
        parser_kwargs=_parser_kwargs(),
        args=args,
        run=run,
    )


def main(args: list[str] | dict[str, Any] | None = None) -> None:
    """Entry point of ``mann`` and ``python -m mann_lightning``; tests call it in-process.

    A user error (bad setting, missing file, ...) prints ``mann: error: ...`` and raises
    ``SystemExit(2)``; ``MANN_TRACEBACK=1`` shows the traceback instead.
    """
    run_console(lambda: build_cli(args), prog="mann")


if __name__ == "__main__":
    main()
