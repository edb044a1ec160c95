"""Which checkpoint ``--ckpt_path last`` / ``best`` names, the refusal to evaluate an
untrained model (:class:`~mann_lightning.cli.MANNCLI`'s checks before any work), and setting
an earlier run's checkpoints aside when a new ``fit`` starts training."""

from __future__ import annotations

import os
from pathlib import Path

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from .checkpointing import set_aside_previous_run
from .errors import UserError


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
    where = ", ".join(map(str, folders)) or "no checkpoint folder configured"
    hint = f"e.g. --ckpt_path {candidates[0]}" if candidates else f"none found in {where}"
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
    """``mann fit`` without ``--ckpt_path``: a checkpoint folder holding an earlier run's
    ``*.ckpt`` files is renamed to ``<folder>.previous-<k>`` (nothing is deleted), once the
    data is set up (callbacks' ``setup`` follows the data module's), so a run that stops
    before training (data not found, a bad setting) leaves the earlier run's checkpoints where
    they were. Placed first among the callbacks: before ``ModelCheckpoint.setup`` warns that
    the folder is not empty."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or trainer.global_rank != 0:
            return
        for old, kept in set_aside_previous_run(checkpoint_folders(trainer)):
            rank_zero_warn(
                f"{old} held the checkpoints of an earlier run: moved to {kept} (to continue "
                "that run instead, use --ckpt_path last)."
            )
