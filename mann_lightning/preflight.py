"""Checks the ``mann`` command runs before any work: checkpoints, folders, untrained models.

Each check raises :class:`~mann_lightning.errors.UserError` with a message that names the file
or setting and says what to do, so ``mann`` ends with one short message instead of a
traceback from deep inside Lightning or torch.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UserError
from .specs import same_class

#: Model settings that only steer training or metrics: a checkpoint's value silently wins
#: over the configuration's (Lightning restores them), so a difference is only a warning.
TRAINING_SETTINGS = frozenset(
    {
        "lr",
        "optimizer",
        "weight_decay",
        "grad_clip_norm",
        "lr_schedule",
        "warmup_steps",
        "wipe",
        "persist_memory",
        "max_instances",
    }
)
_LINKED = frozenset({"task", "_class_path", "_instantiator"})
#: How a run executes, not what it computes: the configured value applies, silently.
RUN_SETTINGS = frozenset({"compile"})
#: Settings (at any depth, e.g. ``memory.init_args.write_gate_bias``) that only choose initial
#: weights: the checkpoint's trained weights replace them, so a difference is only a warning.
INIT_SETTINGS = frozenset({"write_gate_bias"})
_SHOWN = 3


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file on the CPU, or explain why it cannot be used."""
    path = Path(path)
    if not path.exists():
        folder = path.parent
        found = sorted(p.name for p in folder.glob("*.ckpt")) if folder.is_dir() else []
        hint = f"checkpoints in {folder}: {', '.join(found)}" if found else "check the path"
        raise UserError(f"--ckpt_path {path}: no such file ({hint}).")
    if not path.is_file():
        raise UserError(f"--ckpt_path {path}: not a file; give the .ckpt file itself.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError...
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0].split(". ")[0]
        raise UserError(f"--ckpt_path {path}: {_unreadable(path, reason)}") from error
    if (
        not isinstance(checkpoint, dict)
        or "state_dict" not in checkpoint
        or "pytorch-lightning_version" not in checkpoint
    ):
        raise UserError(
            f"--ckpt_path {path}: not a Lightning checkpoint (no state_dict); give a .ckpt "
            "file written by mann fit."
        )
    return checkpoint


def _unreadable(path: Path, reason: str) -> str:
    """Why ``torch.load`` failed, told from the file's first bytes (zip, or a legacy pickle)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if zipfile.is_zipfile(path) and "Weights only load failed" in reason:
        return (
            "a PyTorch file, but not a Lightning checkpoint: it holds Python objects that a "
            "checkpoint of mann fit does not (e.g. a mann-continual checkpoint.pt). Give a "
            ".ckpt file written by mann fit."
        )
    if head.startswith(b"PK") or head[:1] == b"\x80":
        return (
            f"cannot read the checkpoint, it is corrupt or truncated ({reason[:120]}). Use "
            "another checkpoint (best.ckpt, or last.ckpt of the run)."
        )
    return "not a PyTorch checkpoint file at all; give a .ckpt file written by mann fit."


def _plain(value: Any) -> Any:
    """Namespaces (jsonargparse) as dicts, for comparison with a checkpoint's hparams."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items() if key != "__path__"}
    return value


def compare_with_config(
    path: str | Path,
    checkpoint: dict[str, Any],
    model_config: Any,
    data_config: Any | None = None,
) -> list[str]:
    """Check a checkpoint against the configured model and data.

    Args:
        path: The checkpoint (for messages).
        checkpoint: Its loaded content.
        model_config: The config's ``model`` (``class_path`` and ``init_args``).
        data_config: The config's ``data``, to compare the task sizes.

    Returns:
        Warnings about training settings where the checkpoint's value wins.

    Raises:
        UserError: The checkpoint is of another model class or has another architecture or
            task than the configuration.
    """
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    model = _plain(model_config) or {}
    trained_as = hparams.get("_class_path")
    wanted = model.get("class_path")
    if trained_as and wanted and not same_class(trained_as, wanted):
        raise UserError(
            f"--ckpt_path {path} holds a {trained_as.rsplit('.', 1)[-1]} but the configuration "
            f"builds a {wanted.rsplit('.', 1)[-1]}; use the config the checkpoint was trained "
            "with (saved as config.yaml in that run's log folder) or another checkpoint."
        )
    configured = model.get("init_args") or {}
    differences, warnings = [], []
    for key, trained in hparams.items():
        value = configured.get(key)
        if key in _LINKED or key in RUN_SETTINGS or value is None or _plain(trained) == value:
            continue
        for name, was, now in leaf_differences(_plain(trained), value, key):
            text = f"{name}={was!r} (configuration: {now!r})"
            if name.rsplit(".", 1)[-1] in INIT_SETTINGS:
                warnings.append(
                    f"--ckpt_path {path}: {text} only sets initial weights; the "
                    "checkpoint's trained weights are used."
                )
            elif key in TRAINING_SETTINGS:
                warnings.append(
                    f"--ckpt_path {path}: the checkpoint's {text} is used; Lightning restores "
                    "model settings from the checkpoint."
                )
            else:
                differences.append(text)
    task = hparams.get("task") or {}
    data_args = (_plain(data_config) or {}).get("init_args") or {}
    for key, trained in task.items():
        if data_args.get(key) is not None and data_args[key] != trained:
            differences.append(f"data {key}={trained} (configuration: {data_args[key]})")
    if differences:
        more = f" and {len(differences) - _SHOWN} more" if len(differences) > _SHOWN else ""
        raise UserError(
            f"--ckpt_path {path} was trained with another model or task: "
            f"{'; '.join(differences[:_SHOWN])}{more}. Remove these overrides, use the config the "
            "checkpoint was trained with, or train a new model."
        )
    return warnings


def leaf_differences(before: Any, after: Any, name: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted name, before, after)`` of every leaf that differs between two nested dicts
    (a key missing on one side counts as ``None``); ``name`` prefixes the dotted names."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after), key=str):
            if before.get(key) != after.get(key):
                dotted = f"{name}.{key}" if name else str(key)
                found += leaf_differences(before.get(key), after.get(key), dotted)
        return found
    if name.rsplit(".", 1)[-1] == "class_path" and same_class(before, after):
        return []
    return [(name, before, after)]


def check_state_dict(path: str | Path, checkpoint: dict[str, Any], model: nn.Module) -> None:
    """The checkpoint's weights must fit the model (names and shapes)."""
    saved = checkpoint.get("state_dict", {})
    current = model.state_dict()
    problems = [f"missing {name}" for name in current if name not in saved]
    problems += [f"unexpected {name}" for name in saved if name not in current]
    problems += [
        f"{name} is {tuple(saved[name].shape)} in the checkpoint, {tuple(tensor.shape)} here"
        for name, tensor in current.items()
        if name in saved and torch.is_tensor(saved[name]) and saved[name].shape != tensor.shape
    ]
    if problems:
        more = f" and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise UserError(
            f"--ckpt_path {path} does not fit the configured model: "
            f"{'; '.join(problems[:_SHOWN])}{more}. Use the config the checkpoint was trained "
            "with (config.yaml in that run's log folder) or another checkpoint."
        )


def check_writable(
    folders: Iterable[tuple[str, str | Path | None]],
    fix: str = "Choose a writable folder (e.g. --trainer.default_root_dir, the logger's "
    "save_dir, the checkpoint callback's dirpath) or fix the permissions.",
) -> None:
    """Every ``(role, folder)`` must be creatable and writable; ``fix`` ends the message."""
    for role, folder in folders:
        if folder is None or "://" in str(folder):
            continue
        path = Path(folder).absolute()
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        reason = None
        if not existing.is_dir():
            reason = f"{existing} is a file, not a folder"
        elif not os.access(existing, os.W_OK | os.X_OK):
            reason = f"no permission to write in {existing}"
        if reason:
            raise UserError(f"cannot write the {role} {folder}: {reason}. {fix}")
