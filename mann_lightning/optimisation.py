"""Optimiser and learning-rate schedule of :class:`~mann_lightning.module.MANNModule`.

The paper trains with RMSprop (lr 1e-4, momentum 0.9, decay 0.95) at a constant rate;
Adam and a warm-up plus cosine schedule are options for faster recipes
(``configs/omniglot_5way_fast.yaml``, docs/results.md).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch

OPTIMIZERS = ("adam", "rmsprop")
SCHEDULES = ("constant", "cosine")


def check_settings(
    name: str,
    lr: float,
    lr_schedule: str,
    warmup_steps: int,
    weight_decay: float = 0.0,
    grad_clip_norm: float | None = None,
) -> None:
    """Refuse an unknown optimiser or schedule, a non-positive rate, a negative warm-up or
    weight decay, a clipping norm that is not positive and finite (``None``: no clipping).

    Raises:
        ValueError: naming the setting and the values it accepts.
    """
    if not 0 < lr < math.inf:  # NaN too
        raise ValueError(f"lr must be a positive finite number, got {lr}.")
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}.")
    if lr_schedule not in SCHEDULES:
        raise ValueError(f"Unknown lr_schedule {lr_schedule!r}: use one of {', '.join(SCHEDULES)}.")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be 0 or more, got {warmup_steps}.")
    if not 0 <= weight_decay < math.inf:  # NaN too
        raise ValueError(f"weight_decay must be 0 or more (and finite), got {weight_decay}.")
    if grad_clip_norm is not None and not 0 < grad_clip_norm < math.inf:  # NaN too
        raise ValueError(
            f"grad_clip_norm must be positive and finite, or null for no clipping; got "
            f"{grad_clip_norm} (a negative norm flips every gradient, zero stops training)."
        )


def check_trainer_clip(clip: float | str | None) -> None:
    """Refuse a Trainer ``gradient_clip_val`` that would silently turn clipping off.

    Raises:
        ValueError: for 0, a negative or a non-finite value (``None`` is fine: the module's
            ``grad_clip_norm`` clips then).
    """
    if clip is not None and not 0 < float(clip) < math.inf:  # NaN too
        raise ValueError(
            f"trainer.gradient_clip_val must be positive and finite, got {clip}: it "
            "replaces model.init_args.grad_clip_norm, and Lightning skips clipping for 0 "
            "or less. Leave it null to clip with grad_clip_norm."
        )


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    name: str,
    *,
    lr: float,
    weight_decay: float = 0.0,
    lr_schedule: str = "constant",
    warmup_steps: int = 0,
    max_steps: int | None = None,
) -> Any:
    """The optimiser, with a per-step ``LambdaLR`` scheduler when one is asked for.

    Args:
        params: Parameters to optimise.
        name: ``"rmsprop"`` (the paper's settings) or ``"adam"``.
        lr: Base learning rate.
        weight_decay: L2 penalty.
        lr_schedule: ``"constant"`` or ``"cosine"`` (from ``lr`` to 0 at ``max_steps``).
        warmup_steps: Linear warm-up from 0 to ``lr`` over this many steps.
        max_steps: The Trainer's ``max_steps``; needed by ``"cosine"``.

    Returns:
        An optimiser, or Lightning's ``{"optimizer", "lr_scheduler"}`` dictionary.
    """
    check_settings(name, lr, lr_schedule, warmup_steps, weight_decay)
    if name == "rmsprop":
        optimizer: torch.optim.Optimizer = torch.optim.RMSprop(
            params, lr=lr, alpha=0.95, momentum=0.9, weight_decay=weight_decay
        )
    else:
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if lr_schedule == "constant" and warmup_steps == 0:
        return optimizer
    if lr_schedule == "cosine" and (max_steps is None or max_steps <= 0):
        raise ValueError(
            "lr_schedule='cosine' needs the Trainer's max_steps (e.g. --trainer.max_steps "
            f"20000), got {max_steps}: the rate falls from lr to 0 over those steps."
        )
    if lr_schedule == "cosine" and warmup_steps >= max_steps:  # type: ignore[operator]
        # a warning, not an error: a smoke run of a cosine config (--trainer.max_steps 2) is fine
        warnings.warn(
            f"warmup_steps={warmup_steps} is not below max_steps={max_steps}: the warm-up "
            "never reaches lr and the cosine phase never runs; lower warmup_steps for a real run.",
            stacklevel=2,
        )
    factor = lr_factor(lr_schedule, warmup_steps, max(int(max_steps or 0), 1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
    }


def lr_factor(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate at optimiser step ``step`` (``LambdaLR``).

    Linear warm-up over ``warmup_steps``, then constant or a half cosine reaching 0 at
    ``total_steps``.
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        span = max(total_steps - warmup_steps, 1)
        progress = min((step - warmup_steps) / span, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class OptimisationHooks:
    """The Lightning hooks of a module's optimiser settings (``optimizer_name``, ``lr``,
    ``weight_decay``, ``lr_schedule``, ``warmup_steps``, ``grad_clip_norm``); mixed into
    :class:`~mann_lightning.module.MANNModule` before ``LightningModule``."""

    def on_fit_start(self) -> None:
        """Refuse a Trainer ``gradient_clip_val`` that would silently turn clipping off."""
        check_trainer_clip(self.trainer.gradient_clip_val)  # type: ignore[attr-defined]

    def configure_optimizers(self) -> Any:
        """:func:`build_optimizer` over the module's parameters, the schedule over the
        Trainer's ``max_steps``."""
        module: Any = self
        steps = module.trainer.max_steps if module._trainer is not None else None
        return build_optimizer(
            module.parameters(),
            module.optimizer_name,
            lr=module.lr,
            weight_decay=module.weight_decay,
            lr_schedule=module.lr_schedule,
            warmup_steps=module.warmup_steps,
            max_steps=steps,
        )

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """The Trainer's clipping if set, else the module's ``grad_clip_norm`` (by norm)."""
        module: Any = self
        if gradient_clip_val is None and module.grad_clip_norm is not None:
            gradient_clip_val, gradient_clip_algorithm = module.grad_clip_norm, "norm"
        module.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
