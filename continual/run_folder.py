"""The run folder of ``mann-continual``: where it goes, the hash of the configuration it
holds, and whether to resume it, take it over, or refuse it.

A folder holding a run of the same configuration is resumed (:mod:`continual.runner`). One
of another configuration is refused once it holds a finished experience (the user's
results), and moved aside when it finished none (a run that stopped on an error at once),
so the corrected command runs. ``--restart`` moves any run aside. Nothing is deleted, and a
folder of other files is never written into nor moved, ``--restart`` or not: its
``config.yaml`` too is the user's unless it carries :data:`WRITTEN_BY_RUN`'s first line (the
folder may hold the very config file the command was given).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser, Namespace

from mann_lightning.checkpointing import move_aside
from mann_lightning.errors import UserError
from mann_lightning.preflight import leaf_differences

from . import run_state

#: What a run writes before its first checkpoint: a folder holding only these (and no
#: checkpoint) is a run that stopped at once, and a new run may take it over.
STARTED_RUN_FILES = frozenset({"config.yaml", "log.txt", "wandb", "wandb-run.json"})
#: The first line of the ``config.yaml`` a run writes.
WRITTEN_BY_RUN = "# Written by mann-continual: this run's full configuration (edit a copy).\n"

#: Options that steer the run but are not part of the experiment (not in the config hash).
RUN_OPTIONS = (
    "config", "run_dir", "restart", "print_config", "loggers", "__default_config__", "__path__",
)  # fmt: skip


def config_hash(parser: ArgumentParser, cfg: Namespace) -> str:
    """Hash of the experiment's configuration (run options such as ``run_dir`` excluded)."""
    clean = cfg.clone()
    for key in RUN_OPTIONS:
        if key in clean:
            del clean[key]
    text = parser.dump(clean, skip_none=False, skip_validation=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_run_dir(cfg: Namespace) -> Path:
    """``runs/<config file name>`` (``runs/mann-continual`` without a config file)."""
    configs = cfg.get("config") or []
    name = Path(str(configs[-1])).stem if configs else "mann-continual"
    return Path("runs") / name


def prepare_run_dir(run_dir: Path, restart: bool, text: str, digest: str) -> None:
    """Create the folder and write ``config.yaml``; refuse a folder of another config's run.

    With ``restart`` an existing run is moved aside first (nothing is deleted). A run of
    another configuration that finished no experience (it stopped on an error, e.g. a
    setting its first experience refused) is moved aside too, with one line, so the corrected
    command runs. A folder with other files and no run is refused: nothing is overwritten.
    """
    if restart and (run_dir / run_state.CHECKPOINT).is_file():
        _move_aside(run_dir, "the previous run")  # unread: it may be corrupt or foreign
    saved = run_state.load(run_dir) if run_dir.is_dir() else None
    if saved is None and run_dir.is_dir():
        others = _files_of_no_run(run_dir)
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise UserError(
                f"{run_dir} holds other files ({shown}) and no mann-continual run to resume; "
                "give a new or empty --run_dir (a folder of other files is neither written "
                "into nor moved aside)."
            )
    if restart and run_dir.is_dir() and any(run_dir.iterdir()):
        _move_aside(run_dir, "the previous run")
        saved = None
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
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(WRITTEN_BY_RUN + text)
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


def _files_of_no_run(run_dir: Path) -> list[str]:
    """Names in a folder without a run's checkpoint that no started run wrote."""
    others = []
    for path in sorted(run_dir.iterdir()):
        if path.name == "config.yaml" and path.is_file():
            with path.open() as file:
                if file.readline() == WRITTEN_BY_RUN:
                    continue
        elif path.name in STARTED_RUN_FILES:
            continue
        others.append(path.name)
    return others


def _move_aside(run_dir: Path, what: str) -> None:
    folder = run_dir.resolve()
    if Path.cwd().resolve().is_relative_to(folder):
        raise UserError(
            f"Cannot move {what} ({run_dir}) aside: it holds the current folder. Run from "
            "outside it, or give another --run_dir."
        )
    print(f"mann-continual: moved {what} to {move_aside(folder)}")
