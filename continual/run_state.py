"""Saving and resuming a stream run: one file, written atomically, after every experience.

Avalanche's own ``save_checkpoint`` pickles the whole strategy, which fails with current
dependency versions and leaves a corrupt file behind. A :class:`RunState` holds instead
exactly what continuing needs: the model's weights with its carried memory
(``EpisodicMANN`` keeps it in its ``state_dict``), the optimizer's state, the state of the
other plugins (e.g. Replay's buffer), the attributes a strategy carries from one experience
to the next on itself (:func:`carried_attributes`, e.g. ``Cumulative``'s growing ``dataset``),
the strategy's clock, the random number generators, the position in the stream and the
results so far. It is written to a temporary file in the
run folder and renamed over ``checkpoint.pt``, so a kill at any moment leaves either the
previous or the new checkpoint, never a partial one.
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mann_lightning.errors import UserError

FORMAT = "mann-continual-run/1"
CHECKPOINT = "checkpoint.pt"

#: Attributes that stock Avalanche strategies keep on the strategy itself (not in a plugin)
#: from one experience to the next, by class name (subclasses inherit them). A strategy of
#: your own can list its own in a ``carried_attributes`` class attribute.
CARRIED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Cumulative": ("dataset",),  # the concatenation of every experience trained so far
}


@dataclass
class RunState:
    """Where a stream run stands.

    Attributes:
        config_hash: Hash of the run's configuration (a different one may not resume it).
        position: Experiences of the train stream completed (trained and evaluated).
        rows: Accuracy by presentation after each completed experience:
            ``rows[i][j] = [acc at presentation 1, 2, ...]`` on test experience ``j``.
        untrained: The same for the model before training, ``[j][k]``.
        extra: Anything else a run stores (e.g. a logger's run id).
    """

    config_hash: str
    position: int = 0
    rows: list[list[list[float]]] = field(default_factory=list)
    untrained: list[list[float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def carried_attributes(strategy: Any) -> tuple[str, ...]:
    """Names of the attributes ``strategy`` carries across experiences on itself.

    Args:
        strategy: An Avalanche strategy.

    Returns:
        Its class's ``carried_attributes`` if it declares them, else the entries of
        :data:`CARRIED_ATTRIBUTES` for its class and base classes (empty for ``Naive``,
        ``Replay``: their state is in the model, the optimizer and the plugins).
    """
    declared = getattr(type(strategy), "carried_attributes", None)
    if declared is not None:
        return tuple(declared)
    names = (n for cls in type(strategy).__mro__ for n in CARRIED_ATTRIBUTES.get(cls.__name__, ()))
    return tuple(dict.fromkeys(names))


def capture(strategy: Any, state: RunState, skip: tuple[type, ...]) -> dict[str, Any]:
    """Everything needed to continue ``strategy`` after the current experience."""
    plugins = {}
    for index, plugin in enumerate(strategy.plugins):
        if isinstance(plugin, skip):
            continue
        payload = plugin.state_dict() if hasattr(plugin, "state_dict") else dict(vars(plugin))
        plugins[f"{index}:{type(plugin).__name__}"] = payload
    return {
        "format": FORMAT,
        "run": vars(state),
        "model": strategy.model.state_dict(),
        "optimizer": strategy.optimizer.state_dict(),
        "plugins": plugins,
        "strategy": {name: getattr(strategy, name) for name in carried_attributes(strategy)},
        "clock": dict(vars(strategy.clock)),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        },
    }


def restore(strategy: Any, saved: dict[str, Any], skip: tuple[type, ...]) -> RunState:
    """Put ``saved`` (from :func:`capture`) back into a freshly built ``strategy``."""
    strategy.model.load_state_dict(saved["model"])
    strategy.optimizer.load_state_dict(saved["optimizer"])
    # The optimizer already knows the model's parameters: Avalanche must not reset its state
    # at the next experience, as it does on a strategy's first experience.
    strategy.optimized_param_id = dict(strategy.model.named_parameters())
    for index, plugin in enumerate(strategy.plugins):
        if isinstance(plugin, skip):
            continue
        key = f"{index}:{type(plugin).__name__}"
        if key not in saved["plugins"]:
            raise UserError(
                f"The saved run has no state for plugin {key}; the plugins changed since it "
                "was saved. Start over with --restart true."
            )
        payload = saved["plugins"][key]
        if hasattr(plugin, "load_state_dict"):
            plugin.load_state_dict(payload)
        else:
            vars(plugin).update(payload)
    carried = saved.get("strategy", {})
    for name in carried_attributes(strategy):
        if name not in carried:
            raise UserError(
                f"The saved run has no {type(strategy).__name__}.{name} (saved by an older "
                "version, or with another strategy); resuming would train on the wrong data. "
                "Start over with --restart true."
            )
        setattr(strategy, name, carried[name])
    vars(strategy.clock).update(saved["clock"])
    rng = saved["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():  # the GPUs present now, if fewer
        for index, state in enumerate(rng["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    return RunState(**saved["run"])


def save_atomic(payload: dict[str, Any], folder: Path) -> Path:
    """Write ``payload`` to ``folder/checkpoint.pt`` through a temporary file and a rename."""
    buffer = io.BytesIO()
    try:
        torch.save(payload, buffer)
    except Exception as error:  # e.g. a plugin holding a lambda or an open file
        raise UserError(
            f"Could not save the run ({type(error).__name__}: {error}): a plugin's state cannot "
            "be pickled. Give that plugin state_dict() / load_state_dict() methods."
        ) from error
    target = folder / CHECKPOINT
    temporary = folder / f".{CHECKPOINT}.{os.getpid()}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


def load(folder: Path) -> dict[str, Any] | None:
    """The saved run in ``folder``, ``None`` if there is none; a clear error if unreadable."""
    path = folder / CHECKPOINT
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise UserError(
            f"The saved run {path} is unreadable ({type(error).__name__}: {error}); it is "
            "corrupt. Rerun with --restart true to start over (the old files are kept aside)."
        ) from error
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a mann-continual run (format {saved.get('format') if isinstance(saved, dict) else type(saved).__name__!r}); "
            "use another --run_dir or --restart true."
        )
    return saved
