"""Checks of a stock Avalanche strategy's settings that Avalanche does not make itself.

Avalanche runs ``train_epochs=0`` without a word and fails inside a DataLoader for a
minibatch size below 1; strategies that feed the model raw images (EWC, LwF, GEM, AGEM)
fail after the first experience; a CUDA device on a machine without one fails in a
PyTorch call. ``mann-continual`` checks the configuration before the run
folder is written; :class:`~continual.plugin.MANNEpisodePlugin` checks the strategy when
training starts, for Python use.
"""

from __future__ import annotations

from typing import Any

import torch
from jsonargparse import Namespace

from mann_lightning.command_line_checks import check_seed
from mann_lightning.errors import UserError


def check_strategy_sizes(strategy: Any, names: tuple[str, ...]) -> None:
    """A clear error for a setting of ``strategy`` (a strategy, or its ``init_args``) below 1.
    The episodes' own batch size is ``MANNEpisodePlugin``'s ``batch_size``; the strategy's
    minibatch sizes only need to be positive."""
    for name in names:
        value = getattr(strategy, name, None)
        if isinstance(value, int) and value < 1:
            note = " (episodes per minibatch are episodes.batch_size)" if "mb" in name else ""
            raise ValueError(
                f"The strategy's {name} must be >= 1, got {value}: set "
                f"strategy.init_args.{name}{note}."
            )


#: Stock strategies that feed the model raw images outside the plugin's episode loader
#: (EWC's importance pass, LwF's distillation targets, the gradient-episodic memories of
#: GEM and AGEM): with a MANN they fail, after the first experience.
UNSUPPORTED_STRATEGIES = frozenset({"EWC", "LwF", "GEM", "AGEM"})


def check_strategy_supported(name: str) -> None:
    """A clear error for a stock strategy known not to work on episodes."""
    if name.rsplit(".", 1)[-1] in UNSUPPORTED_STRATEGIES:
        raise ValueError(
            f"The strategy {name} does not work with MANNEpisodePlugin: it passes the "
            "experience's raw images to the model through its own data loader, not as "
            "episodes. Use Naive, Replay or Cumulative (docs/continual.md), or add a plugin."
        )


def check_run_options(cfg: Namespace) -> None:
    """The seed and the strategy's device, before anything is seeded or written."""
    check_seed("--seed", cfg.seed)
    for name in ("seed", "eval_seed"):  # the same range as every other seed of the run
        check_seed(f"--episodes.{name}", getattr(getattr(cfg, "episodes", None), name, None))
    device = getattr(getattr(cfg.strategy, "init_args", None), "device", None)
    if device is None:
        return
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as error:
        raise UserError(f"strategy.init_args.device {device!r} is not a device: {error}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(
            f"strategy.init_args.device is {device!r}, but PyTorch sees no CUDA GPU here; use cpu."
        )
