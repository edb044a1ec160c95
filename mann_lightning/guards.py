"""Stop (or skip) a training step whose loss or gradients are NaN or infinite.

:class:`NonFiniteGuard` keeps the loss before the backward pass and checks it with the
gradients before the optimizer step (one host read per step), where it decides (all
processes together under DDP), so non-finite values never reach the weights:

* ``action="stop"`` (default) ends ``mann fit`` with a message naming the step, and exit
  status 2. No checkpoint is written after the bad step, so ``last.ckpt`` holds the last good
  weights; resume from it with ``--ckpt_path last`` after lowering the learning rate.
* ``action="skip"`` drops the step's gradients (the optimizer leaves weights and moments as
  they are; the step still counts) and goes on; after ``max_consecutive_skips`` bad steps in a
  row it stops as above.

The checkpoint writer (:class:`~mann_lightning.checkpointing.AtomicCheckpointIO`) refuses
non-finite weights in any case, as a last line of defence.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from .errors import UserError
from .faults import fault


class NonFiniteTrainingError(UserError):
    """Training produced a NaN or infinite loss or gradient."""


class NonFiniteGuard(Callback):
    """Stop or skip training steps with a non-finite loss or gradient.

    Args:
        action: ``"stop"`` ends training with an error naming the step; ``"skip"`` drops the
            step's update and continues.
        max_consecutive_skips: Under ``"skip"``, stop after this many bad steps in a row.
    """

    def __init__(
        self, action: Literal["stop", "skip"] = "stop", max_consecutive_skips: int = 10
    ) -> None:
        if action not in ("stop", "skip"):
            raise ValueError(f"NonFiniteGuard: action must be 'stop' or 'skip', got {action!r}.")
        if max_consecutive_skips < 1:
            raise ValueError(
                f"NonFiniteGuard: max_consecutive_skips must be >= 1, got {max_consecutive_skips}."
            )
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.skipped = 0  #: steps skipped in this run
        self._in_a_row = 0
        self._loss: Tensor | None = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._loss = None
        if fault("nan_at_step") == trainer.global_step:
            inputs = batch.inputs if hasattr(batch, "inputs") else batch[0]
            inputs[0, 0].fill_(math.nan)  # MANN_FAULT drill: one poisoned episode

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor
    ) -> None:
        self._loss = loss.detach()  # checked with the gradients: one host read per step

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # Decided here, after the (all-reduced) backward, and agreed by all processes, so that
        # under DDP every rank stops or skips together.
        bad_loss, bad = self._first_bad_value(pl_module, self._loss)
        local = bad_loss is not None or bad is not None
        if not trainer.strategy.reduce_boolean_decision(local, all=False):
            self._in_a_row = 0
            return
        what = f"the loss is {bad_loss}" if bad_loss is not None else ""
        what = what or (f"the gradient of {bad} is not finite" if bad else "")
        what = what or "another process has a non-finite loss"
        if self.action == "stop":
            self._stop(trainer, what)
        self._in_a_row += 1
        self.skipped += 1
        if self._in_a_row >= self.max_consecutive_skips:
            self._stop(trainer, f"{what}, after {self._in_a_row} bad steps in a row")
        for group in optimizer.param_groups:
            for param in group["params"]:
                param.grad = None  # the optimizer skips parameters without a gradient
        rank_zero_warn(f"NonFiniteGuard: skipped step {trainer.global_step}: {what}.")

    @staticmethod
    def _first_bad_value(
        pl_module: L.LightningModule, loss: Tensor | None
    ) -> tuple[float | None, str | None]:
        """The loss if it is not finite, and the first parameter whose gradient is not."""
        named = [(n, p.grad) for n, p in pl_module.named_parameters() if p.grad is not None]
        losses = [] if loss is None else [loss.float().sum()]
        if not named and not losses:
            return None, None
        # A NaN or inf anywhere in a gradient makes its sum NaN or inf, so finite sums clear
        # every element in one pass without a mask (0.05 against 1.25 ms per step for the
        # paper's MANN; docs/performance.md), and with the loss's in the same tensor one
        # host read (a wait for the device on a GPU) per step clears both. A non-finite sum,
        # or finite values whose sum overflowed, gets the element-wise check.
        sums = torch.stack(losses + [grad.detach().sum().float() for _, grad in named])
        if bool(torch.isfinite(sums).all()):
            return None, None
        bad_loss = float(sums[0]) if losses and not bool(torch.isfinite(sums[0])) else None
        if not named:
            return bad_loss, None
        finite = torch.stack([torch.isfinite(grad).all() for _, grad in named])
        if bool(finite.all()):
            return bad_loss, None
        return bad_loss, named[int((~finite).nonzero()[0])][0]

    def _stop(self, trainer: L.Trainer, what: str) -> None:
        step = trainer.global_step
        raise NonFiniteTrainingError(
            f"training stopped at step {step} (epoch {trainer.current_epoch}): {what}. "
            "No checkpoint was written after it, so last.ckpt holds the last good weights. "
            "Lower model.init_args.lr or set model.init_args.grad_clip_norm, then resume with "
            "--ckpt_path last; or skip such steps with the NonFiniteGuard callback's "
            "action: skip."
        )
