"""Which checkpoint ``--ckpt_path last`` / ``best`` names, the refusal to evaluate an
untrained model, setting an earlier run's checkpoints aside when a new ``fit`` starts
training, and :func:`prepare_run`, which gathers :class:`~mann_lightning.cli.MANNCLI`'s
checks before any work."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from .checkpointing import install_atomic_io, set_aside_previous_run
from .errors import UserError
from .guards import NonFiniteGuard
from .preflight import check_state_dict, check_writable
from .settings_checks import check_evaluation_data


def checkpoint_folders(trainer: Trainer) -> list[Path]:
    """The folders of the trainer's checkpoint callbacks (those with a ``dirpath``)."""
    return [Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if cb.dirpath]


def resolve_named_checkpoint(name: str, trainer: Trainer, fitting: bool) -> str | None:
    """The file ``--ckpt_path last`` (newest ``last*.ckpt``) or ``best`` stands for.

    Args:
        name: ``"last"`` or ``"best"``.
        trainer: The run's trainer (its checkpoint callbacks say where to look).
        fitting: ``mann fit``: ``last`` with no checkpoint yet starts afresh (``None``), and
            ``best`` is refused (a run resumes from its latest state).

    Raises:
        UserError: no such checkpoint, or ``best`` in ``fit``; the message names the folders
            and a file found there, if any.
    """
    folders = checkpoint_folders(trainer)
    if name == "last":
        found = {p for cb in trainer.checkpoint_callbacks
                 for p in cb._find_last_checkpoints(trainer)}  # fmt: skip
        if found:
            return max(found, key=os.path.getmtime)
        if fitting:
            return None  # Lightning starts afresh (and warns): handy in restart loops
    candidates = [str(f / "best.ckpt") for f in folders if (f / "best.ckpt").is_file()]
    where = ", ".join(map(str, folders))
    hint = (
        f"e.g. --ckpt_path {candidates[0]}" if candidates
        else f"none found in {where}" if where
        else "this config has no checkpoint callback with a dirpath"
    )  # fmt: skip
    where = where or "no checkpoint folder configured"
    if name == "best" and fitting:
        raise UserError(
            "mann fit --ckpt_path best: resuming continues a run from its latest state; "
            "use --ckpt_path last, or give a checkpoint file to continue from "
            f"({hint.removeprefix('e.g. --ckpt_path ')})."
        )
    if name == "best" and candidates:  # validate / test / predict: the run's best.ckpt
        return max(candidates, key=os.path.getmtime)
    raise UserError(
        f"--ckpt_path {name}: no such checkpoint for this run ({where}); "
        f"give the checkpoint file itself ({hint})."
    )


def refuse_untrained(subcommand: str, folders: list[Path], allowed: object) -> None:
    """Refuse to evaluate without ``--ckpt_path`` unless ``--allow_untrained`` (then warn).

    Raises:
        UserError: naming up to three checkpoints found in ``folders``.
    """
    if allowed:
        rank_zero_warn(
            f"mann {subcommand}: no --ckpt_path, evaluating the UNTRAINED model "
            "(--allow_untrained true): its results are those of random weights."
        )
        return
    found = sorted(str(p) for f in folders for p in f.glob("*.ckpt"))
    hint = f" (found: {', '.join(found[:3])})" if found else ""
    raise UserError(
        f"{subcommand} needs a trained model: give --ckpt_path <file.ckpt>{hint}; "
        "without it the results would be those of random initial weights. Pass "
        "--allow_untrained true to evaluate the untrained model on purpose."
    )


class SetAsidePreviousRun(Callback):
    """``mann fit``: a checkpoint folder holding another run's ``*.ckpt`` files is renamed to
    ``<folder>.previous-<k>`` (nothing is deleted), once the data is set up (callbacks'
    ``setup`` follows the data module's), so a run that stops before training (data not
    found, a bad setting) leaves the earlier run's checkpoints where they were. Placed first
    among the callbacks: before ``ModelCheckpoint.setup`` warns that the folder is not empty.

    Args:
        resuming_from: ``--ckpt_path`` of a resumed run: a folder that holds it is the run's
            own and stays; any other (the checkpoints of a newer run, when an older one is
            resumed from a folder set aside) is moved like a fresh run's.
    """

    def __init__(self, resuming_from: str | None = None) -> None:
        self.resuming_from = resuming_from

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or trainer.global_rank != 0:
            return
        own = Path(self.resuming_from).resolve().parents if self.resuming_from else ()
        folders = [f for f in checkpoint_folders(trainer) if f.resolve() not in own]
        for old, kept in set_aside_previous_run(folders):
            why = (
                f"the run resumed from {self.resuming_from} writes its checkpoints to {old}"
                if self.resuming_from
                else "to continue that run instead, use --ckpt_path last"
            )
            rank_zero_warn(f"{old} held the checkpoints of another run: moved to {kept} ({why}).")


def prepare_run(
    trainer: Trainer,
    subcommand: str,
    config: Any,
    checkpoint: dict[str, Any] | None,
    model: LightningModule,
    datamodule: LightningDataModule | None,
) -> None:
    """Before ``subcommand`` runs: folders writable, the checkpoint (already read, or None)
    fits ``model``, no evaluation of an untrained model unless allowed, then atomic saves,
    the previous run's checkpoints set aside by a fresh ``fit`` and the non-finite guard.

    Args:
        trainer: The run's trainer; its callbacks are extended here.
        subcommand: ``fit``, ``validate``, ``test`` or ``predict``.
        config: That subcommand's parsed config (``ckpt_path``, ``allow_untrained``).
        checkpoint: The ``--ckpt_path`` file's contents, or None without one.
        model: The module the checkpoint is loaded into.
        datamodule: The data, checked for evaluation batches.
    """
    folders: list[tuple[str, Any]] = [("default_root_dir", trainer.default_root_dir)]
    folders += [("logger folder", getattr(lg, "save_dir", None)) for lg in trainer.loggers]
    folders += [("checkpoint folder", cb.dirpath) for cb in trainer.checkpoint_callbacks]
    check_writable(folders)
    install_atomic_io(trainer)
    ckpt_path = config.get("ckpt_path")  # last/best: resolved before the model was built
    if checkpoint is not None:
        check_state_dict(ckpt_path, checkpoint, model)
    elif subcommand != "fit" and not ckpt_path:
        refuse_untrained(subcommand, checkpoint_folders(trainer), config.get("allow_untrained"))
    if subcommand == "fit" and "://" not in str(ckpt_path or ""):
        trainer.callbacks.insert(0, SetAsidePreviousRun(ckpt_path or None))  # once data is found
    if subcommand == "fit" and not any(isinstance(c, NonFiniteGuard) for c in trainer.callbacks):
        trainer.callbacks.append(NonFiniteGuard())
    check_evaluation_data(subcommand, trainer, datamodule)
