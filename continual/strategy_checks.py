"""Checks of a stock Avalanche strategy's settings that Avalanche does not make itself.

Avalanche runs ``train_epochs=0`` without a word and fails inside a DataLoader for a
minibatch size below 1; strategies and plugins that feed the model raw images (EWC, LwF,
GEM, AGEM, MAS) fail, some only after the first experience; a CUDA device on a machine
without one fails in a PyTorch call. ``mann-continual`` checks the configuration before the run
folder is written; :class:`~continual.plugin.MANNEpisodePlugin` checks the strategy when
training starts, for Python use.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from importlib import import_module
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
#: (EWC's and MAS's importance passes, LwF's distillation targets, the gradient-episodic
#: memories of GEM and AGEM): with a MANN they fail, some only after the first experience.
UNSUPPORTED_STRATEGIES = frozenset({"EWC", "LwF", "GEM", "AGEM", "MAS"})

#: The plugins behind them, refused the same way when given on their own (``--plugins+``).
UNSUPPORTED_PLUGINS = frozenset({"EWCPlugin", "LwFPlugin", "GEMPlugin", "AGEMPlugin", "MASPlugin"})

_FIX = "Use Naive, Replay or Cumulative and plugins that do not call the model themselves"


def class_names(target: str | type) -> list[str]:
    """Names of ``target`` and its base classes (``target``: a class, or a ``class_path``
    that is imported if it can be; otherwise its last dotted part alone)."""
    if isinstance(target, str):
        module, _, name = target.rpartition(".")
        with suppress(ImportError, AttributeError):
            target = getattr(import_module(module), name) if module else target
        if isinstance(target, str):
            return [target.rsplit(".", 1)[-1]]
    return [cls.__name__ for cls in getattr(target, "__mro__", (target,))]


def check_strategy_supported(strategy: str | type) -> None:
    """A clear error for a stock strategy (a class, its name or ``class_path``; subclasses
    included) known not to work on episodes."""
    bad = next((n for n in class_names(strategy) if n in UNSUPPORTED_STRATEGIES), None)
    if bad is not None:
        name = strategy if isinstance(strategy, str) else strategy.__name__
        raise ValueError(
            f"The strategy {name} does not work with MANNEpisodePlugin: it passes the "
            f"experience's raw images to the model through its own data loader, not as "
            f"episodes ({bad}). {_FIX} (docs/continual.md)."
        )


def check_plugins_supported(plugins: Iterable[Any]) -> None:
    """A clear error for a plugin (e.g. ``LwFPlugin``, ``MASPlugin``) known to feed the model
    raw images outside the episodes; the strategy wrappers of :data:`UNSUPPORTED_STRATEGIES`
    add these plugins themselves."""
    for plugin in plugins:
        names = class_names(type(plugin))
        bad = next((n for n in names if n in UNSUPPORTED_PLUGINS), None)
        if bad is not None:
            raise ValueError(
                f"The plugin {names[0]} does not work with MANNEpisodePlugin: it passes the "
                f"experience's raw images (or model outputs on them) to the model outside the "
                f"episodes ({bad}). Remove it from the plugins; {_FIX} (docs/continual.md)."
            )


def check_supported(strategy: str | type, plugins: Iterable[Any]) -> None:
    """:func:`check_strategy_supported` and :func:`check_plugins_supported` together."""
    check_strategy_supported(strategy)
    check_plugins_supported(plugins)


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
