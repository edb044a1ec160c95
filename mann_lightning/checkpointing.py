"""Checkpoints that survive a kill at any moment, and ``last.ckpt`` on a step interval.

:class:`AtomicCheckpointIO` writes every checkpoint to a temporary file *in the checkpoint's
own folder*, flushes it to disk, then renames it over the target with ``os.replace`` (atomic
on one filesystem), so a kill during a save leaves the previous ``last.ckpt`` intact; a stale
``.<name>.<pid>.tmp`` file is all that remains. It refuses to write a checkpoint whose weights
or optimizer state are not finite, so a diverged run never overwrites the last good one.
(Lightning's own atomic save writes to the system temp folder and moves the file, which is not
atomic when that folder is on another filesystem.)

:class:`SafeModelCheckpoint` is a ``ModelCheckpoint`` that installs :class:`AtomicCheckpointIO`
and also writes ``last.ckpt`` every ``last_every_n_steps`` training steps, so a stopped run
loses at most that much work (``mann fit ... --ckpt_path last`` resumes). The ``mann`` CLI
installs :class:`AtomicCheckpointIO` for every run, whatever the callbacks.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from .errors import UserError
from .faults import fault, kill_now


class NonFiniteCheckpointError(UserError):
    """A checkpoint about to be written holds NaN or infinite values."""


def first_non_finite(checkpoint: dict[str, Any]) -> str | None:
    """Name of the first non-finite weight or optimizer-state tensor, or ``None``."""
    for name, value in checkpoint.get("state_dict", {}).items():
        if torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all():
            return f"weight {name}"
    for index, optimizer in enumerate(checkpoint.get("optimizer_states", [])):
        for param, state in optimizer.get("state", {}).items():
            for key, value in state.items():
                floating = torch.is_tensor(value) and value.is_floating_point()
                if floating and not value.isfinite().all():
                    return f"optimizer {index} state {key!r} of parameter {param}"
    return None


def atomic_torch_save(checkpoint: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    data = buffer.getbuffer()
    temporary = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as file:
            if AtomicCheckpointIO.kill_due():
                file.write(data[: len(data) // 2])
                file.flush()
                kill_now(f"half-way through writing {temporary} (MANN_FAULT kill_in_save)")
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic and refuse non-finite checkpoints.

    Remote paths (``s3://...``) fall back to Lightning's own saving.
    """

    saves = 0  #: checkpoint writes in this process (for ``MANN_FAULT=kill_in_save=K``)

    @classmethod
    def kill_due(cls) -> bool:
        """Whether ``MANN_FAULT`` asks to die in the current (``saves``-th) write."""
        return fault("kill_in_save") == cls.saves

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options.")
        bad = first_non_finite(checkpoint)
        if bad is not None:
            raise NonFiniteCheckpointError(
                f"not writing {path}: {bad} is NaN or infinite (step "
                f"{checkpoint.get('global_step', '?')}); the previous checkpoint is kept. "
                "Lower the learning rate or clip gradients, then resume with --ckpt_path last."
            )
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path)
            return
        type(self).saves += 1
        atomic_torch_save(checkpoint, path)


def install_atomic_io(trainer: L.Trainer) -> bool:
    """Make the trainer's strategy save through :class:`AtomicCheckpointIO`.

    Only a plain ``TorchCheckpointIO`` is replaced (sharded strategies keep theirs).

    Returns:
        Whether the strategy now uses :class:`AtomicCheckpointIO`.
    """
    strategy = trainer.strategy
    current = strategy.checkpoint_io
    if type(current) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()
        return True
    return isinstance(current, AtomicCheckpointIO)


def set_aside_previous_run(folders: list[Path]) -> list[tuple[Path, Path]]:
    """Rename each folder that holds ``*.ckpt`` files to ``<folder>.previous-<k>``.

    ``mann fit`` without ``--ckpt_path`` starts a new run; the configs give the checkpoint
    folder a fixed name (so that ``best.ckpt`` has a known path), and the new run would
    overwrite the earlier run's ``best.ckpt`` and ``last.ckpt``. Nothing is deleted: the
    earlier folder keeps its files under the first free ``k``.

    Returns:
        ``(folder, new name)`` of every folder moved.
    """
    return [
        (folder, move_aside(folder))
        for folder in folders
        if "://" not in str(folder) and folder.is_dir() and any(folder.glob("*.ckpt"))
    ]


def move_aside(folder: Path) -> Path:
    """Rename ``folder`` to ``<folder>.previous-<k>``, the first free ``k``; return the new name."""
    return keep_previous([folder], keep_suffix=False)[0]


def keep_previous(paths: list[Path], keep_suffix: bool = True) -> list[Path]:
    """Rename each existing path to ``<stem>.previous-<k><suffix>`` (``<name>.previous-<k>``
    without ``keep_suffix``), one ``k`` for all: the first that none of them has taken. A file
    and its companions (``test_results.json`` and ``.md``) keep their numbers paired. Returns
    the new names of those that existed."""

    def previous(path: Path, k: int) -> Path:
        stem, suffix = (path.stem, path.suffix) if keep_suffix else (path.name, "")
        return path.with_name(f"{stem}.previous-{k}{suffix}")

    k = 1
    while any(previous(path, k).exists() for path in paths):
        k += 1
    return [path.rename(previous(path, k)) for path in paths if path.exists()]


class SafeModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` with atomic saves and ``last.ckpt`` every ``last_every_n_steps``.

    Args:
        last_every_n_steps: Also write ``last.ckpt`` after every this many training steps
            (``None``: only when ``ModelCheckpoint`` would, e.g. after each validation).
            Needs ``save_last``, which this callback turns on when the interval is set.
        **kwargs: ``ModelCheckpoint`` arguments (``dirpath``, ``filename``, ``monitor``...).
    """

    def __init__(self, *, last_every_n_steps: int | None = None, **kwargs: Any) -> None:
        if last_every_n_steps is not None and last_every_n_steps < 1:
            raise ValueError(f"last_every_n_steps must be >= 1 or null, got {last_every_n_steps}.")
        if last_every_n_steps is not None and not kwargs.get("save_last"):
            kwargs["save_last"] = True
        super().__init__(**kwargs)
        self.last_every_n_steps = last_every_n_steps
        self._last_written_step: int | None = None  # global step of the newest last.ckpt

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        install_atomic_io(trainer)
        folder = self.dirpath
        if trainer.is_global_zero and folder and "://" not in str(folder) and Path(folder).is_dir():
            for stale in Path(folder).glob(".*.ckpt.*.tmp"):  # left by a kill during a save
                stale.unlink(missing_ok=True)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        step, interval = trainer.global_step, self.last_every_n_steps
        # The step that reaches max_steps saves too, here: within the epoch, as a periodic
        # save; at on_train_end Lightning has already counted the cut epoch as finished.
        final = self.save_last and 0 < trainer.max_steps <= step
        periodic = interval and step % interval == 0
        if (periodic or final) and not self._should_skip_saving_checkpoint(trainer):
            # Keep the "already saved at this step" mark of the top-k logic untouched, so a
            # validation at this same step still saves ``best`` (and ``last`` again).
            saved_at = self._last_global_step_saved
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._last_global_step_saved = saved_at
        if fault("kill_at_step") == step:
            kill_now(f"after training step {step} (MANN_FAULT kill_at_step)")

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_written_step = trainer.global_step

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A run that stops in the middle of an epoch ends without the validation that would
        write ``last.ckpt``: write it with the final weights (if the last training step did
        not), so that ``--ckpt_path last`` tests them and a rerun of the finished run trains
        nothing more."""
        super().on_train_end(trainer, pl_module)
        final = trainer.global_step
        if (
            self.save_last
            and final > 0
            and self._last_written_step != final
            and not trainer.fast_dev_run
            and not trainer.sanity_checking
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
