"""The run folder of ``mann-continual``: resume it, take it over, or refuse it.

A folder holding a run of the same configuration is resumed (:mod:`continual.runner`). One
of another configuration is refused once it holds a finished experience (the user's
results), and moved aside when it finished none (a run that stopped on an error at once),
so the corrected command runs. ``--restart`` moves any run aside. Nothing is deleted, and a
folder of other files is never written into.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mann_lightning.checkpointing import move_aside
from mann_lightning.errors import UserError
from mann_lightning.preflight import leaf_differences

from . import run_state

#: What a run writes before its first checkpoint: a folder holding only these (and no
#: checkpoint) is a run that stopped at once, and a new run may take it over.
STARTED_RUN_FILES = frozenset({"config.yaml", "log.txt", "wandb", "wandb-run.json"})


def prepare_run_dir(run_dir: Path, restart: bool, text: str, digest: str) -> None:
    """Create the folder and write ``config.yaml``; refuse a folder of another config's run.

    With ``restart`` an existing run is moved aside first (nothing is deleted). A run of
    another configuration that finished no experience (it stopped on an error, e.g. a
    setting its first experience refused) is moved aside too, with one line, so the corrected
    command runs. A folder with other files and no run is refused: nothing is overwritten.
    """
    if restart and run_dir.exists() and any(run_dir.iterdir()):
        _move_aside(run_dir, "the previous run")
    saved = run_state.load(run_dir) if run_dir.is_dir() else None
    if saved is not None and saved["run"]["config_hash"] != digest:
        if saved["run"].get("position", 0) == 0:
            _move_aside(run_dir, "a run of another configuration that finished no experience")
        else:
            changed = _changed_settings(run_dir / "config.yaml", text)
            raise UserError(
                f"{run_dir} holds the run of a different configuration{changed}; give another "
                "--run_dir, or --restart true to start over (the old run is moved aside, not "
                "deleted)."
            )
    elif saved is None and run_dir.is_dir():
        others = sorted(p.name for p in run_dir.iterdir() if p.name not in STARTED_RUN_FILES)
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise UserError(
                f"{run_dir} holds other files ({shown}) and no mann-continual run to resume; "
                "give a new or empty --run_dir, or --restart true to move it aside."
            )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(text)
    except OSError as error:
        raise UserError(
            f"Cannot write the run folder {run_dir} ({error}); choose --run_dir."
        ) from error


def _changed_settings(saved: Path, text: str) -> str:
    """`` (changed: a.b: 1 -> 2, ...)`` between the run's ``config.yaml`` and ``text``."""
    try:
        old, new = yaml.safe_load(saved.read_text()), yaml.safe_load(text)
    except (OSError, yaml.YAMLError):
        return ""
    changed = [d for d in leaf_differences(old, new) if d[0] not in ("restart", "run_dir")]
    if not changed:
        return ""
    shown = ", ".join(f"{k}: {was!r} -> {now!r}" for k, was, now in changed[:3])
    return f" (changed: {shown}{', ...' if len(changed) > 3 else ''})"


def _move_aside(run_dir: Path, what: str) -> None:
    print(f"mann-continual: moved {what} to {move_aside(run_dir)}")
