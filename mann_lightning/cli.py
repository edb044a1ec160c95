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
from lightning.pytorch.utilities import rank_zero_warn

from .checkpoint_choice import prepare_run, resolve_named_checkpoint
from .command_line_checks import check_config_files, check_seed
from .config_output import KeepEarlierConfig
from .error_report import run_console, user_message
from .errors import UserError, is_user_error
from .module import MANNModule
from .preflight import compare_with_config, load_checkpoint
from .settings_checks import check_trainer_settings, optimizer_option_message
from .threads import apply_threads

#: ``--ckpt_path`` values Lightning resolves itself.
SPECIAL_CKPT_PATHS = ("last", "best", "hpc", "registry")


class MANNCLI(LightningCLI):
    """``LightningCLI`` with the data-to-model task link and checks before any work.

    Before running, it checks the checkpoint (readable, same model and task as the
    configuration), that the run's folders are writable, and refuses to evaluate a model that
    was never trained unless ``--allow_untrained true`` is given. Every checkpoint is written
    atomically (:class:`~mann_lightning.checkpointing.AtomicCheckpointIO`) and ``fit`` stops on
    a non-finite loss (:class:`~mann_lightning.guards.NonFiniteGuard`, added when the config
    has none).
    """

    _checkpoint: dict[str, Any] | None = None

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.link_arguments("data.task", "model.init_args.task", apply_on="instantiate")
        parser.add_argument(
            "--threads",
            type=int | None,
            default=None,
            help="CPU threads for torch. Default: 1 (fast and robust on a shared machine; "
            "OMP_NUM_THREADS is respected when set); 0: torch's default, one per core. "
            "See docs/performance.md.",
        )

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> Any:
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand != "fit":
            parser.add_argument(
                "--allow_untrained",
                type=bool,
                default=False,
                help="Evaluate the configured model without --ckpt_path (its initial weights).",
            )
        return parser

    def parse_arguments(self, parser: Any, args: Any) -> None:
        """Lightning's parsing; LightningCLI's ``optimizer``/``lr_scheduler`` are pointed to the
        model's own settings (not accepted: the module builds its optimiser)."""
        try:
            super().parse_arguments(parser, args)
        except Exception as error:
            message = optimizer_option_message(str(error))
            if message is None:
                raise
            raise UserError(message) from error

    def _parse_ckpt_path(self) -> None:
        """Check an explicit ``--ckpt_path`` before Lightning merges its hparams in."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in SPECIAL_CKPT_PATHS:
            self._load_checkpoint(ckpt_path, self.config[subcommand])
        try:
            if not self._merge_python_hparams(subcommand):
                super()._parse_ckpt_path()
        except Exception as error:
            if self._checkpoint is None or not is_user_error(error):
                raise
            raise UserError(
                f"--ckpt_path {ckpt_path}: its settings do not fit this configuration: "
                f"{user_message(error)}"
            ) from error

    def _merge_python_hparams(self, subcommand: str) -> bool:
        """A checkpoint saved by a ``Trainer`` in Python records no ``_class_path`` and
        Lightning would merge its hparams as the configured base class's: merge them into the
        configured class (checked against it by :meth:`_load_checkpoint`). ``False``: not such
        a checkpoint, Lightning's merge applies."""
        hparams = dict((self._checkpoint or {}).get("hyper_parameters") or {})
        class_path = (self.config[subcommand].get("model") or {}).get("class_path")
        if not hparams or "_class_path" in hparams or not class_path:
            return False
        model = {"class_path": class_path, "dict_kwargs": hparams}
        self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)
        return True

    def _load_checkpoint(self, ckpt_path: str, config: Any) -> None:
        """Read ``ckpt_path``, refuse it if it does not fit ``config``'s model and data, and warn
        about settings where the checkpoint's value wins."""
        self._checkpoint = load_checkpoint(ckpt_path)
        for warning in compare_with_config(
            ckpt_path, self._checkpoint, config.get("model"), config.get("data")
        ):
            rank_zero_warn(warning)

    def _set_seed(self) -> None:
        """Check the seed first: numpy refuses one outside [0, 2**32) with a traceback."""
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        check_seed("--seed_everything", config.get("seed_everything"))
        super()._set_seed()

    def instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        try:
            apply_threads(config.get("threads"))
        except ValueError as error:
            raise UserError(str(error)) from error
        check_trainer_settings(config, self.subcommand)
        self._instantiate()
        if self._merge_named_checkpoint():
            self._set_seed()  # as with the file given: one instantiation after seeding
            self._instantiate()

    def _merge_named_checkpoint(self) -> bool:
        """Replace ``--ckpt_path last``/``best`` by its file and merge its hparams, as Lightning
        does for a file only; the caller then rebuilds model and trainer from the merged config
        (saved as ``config.yaml``). ``False``: not named, or ``fit`` with no checkpoint yet."""
        config = self.config[self.subcommand]
        if config.get("ckpt_path") not in ("last", "best"):
            return False
        path = resolve_named_checkpoint(config.ckpt_path, self.trainer, self.subcommand == "fit")
        if path is None:
            return False
        config["ckpt_path"] = str(path)
        self._parse_ckpt_path()
        vars(self).pop("config_dump", None)  # the models' hparams come from a fresh dump
        return True

    def _instantiate(self) -> None:
        """Lightning's instantiation; a task mismatch with the checkpoint is worded."""
        try:
            super().instantiate_classes()
        except Exception as error:
            if self._checkpoint is None or not is_user_error(error):
                raise
            ckpt_path = self.config[self.subcommand].get("ckpt_path")
            task = (self._checkpoint.get("hyper_parameters") or {}).get("task") or {}
            trained = ", ".join(f"{key}={value}" for key, value in task.items())
            raise UserError(
                f"--ckpt_path {ckpt_path} was trained for another task ({trained}) than the "
                f"configured data gives ({user_message(error).split(';')[0]}); use the data "
                "settings it was trained with, or train a new model."
            ) from error

    def _preflight(self) -> None:
        """The checks before any work (:func:`~mann_lightning.checkpoint_choice.prepare_run`)."""
        config = self.config_init[self.subcommand]
        prepare_run(
            self.trainer, self.subcommand, config, self._checkpoint, self.model, self.datamodule
        )

    def before_fit(self) -> None:
        self._preflight()

    def before_validate(self) -> None:
        self._preflight()

    def before_test(self) -> None:
        self._preflight()

    def before_predict(self) -> None:
        self._preflight()

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
        auto_configure_optimizers=False,  # the module's own settings (lr, lr_schedule, ...)
        save_config_callback=KeepEarlierConfig,  # an earlier config.yaml renamed, not replaced
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

    def run() -> None:
        if not isinstance(args, dict):
            check_config_files(args, example="configs/omniglot_5way_onehot.yaml")
        build_cli(args)

    run_console(run, prog="mann")


if __name__ == "__main__":
    main()
