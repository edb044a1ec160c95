"""The run folder keeps what the user had: their own config.yaml, a folder of their files."""

from __future__ import annotations

from pathlib import Path

import pytest

from continual import run_folder
from mann_lightning.errors import UserError


@pytest.fixture
def no_saved_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_folder.run_state, "load", lambda folder: None)


@pytest.mark.parametrize("restart", [False, True])
def test_a_users_own_config_yaml_is_neither_overwritten_nor_moved(
    tmp_path: Path, no_saved_run: None, restart: bool
) -> None:
    """``--config exp/config.yaml --run_dir exp``: the run would have replaced the file the
    command was given (its comments lost) by the full dump."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text("# my notes\nseed: 3\n")
    with pytest.raises(UserError, match=r"holds other files \(config.yaml\)"):
        run_folder.prepare_run_dir(exp, restart, "seed: 3\n", "digest")
    assert (exp / "config.yaml").read_text() == "# my notes\nseed: 3\n"
    assert not list(tmp_path.glob("exp.previous-*"))


def test_restart_does_not_move_a_folder_of_other_files(tmp_path: Path, no_saved_run: None) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print()")
    with pytest.raises(UserError, match=r"holds other files \(src\).*neither written into nor"):
        run_folder.prepare_run_dir(project, True, "seed: 0\n", "digest")
    assert (project / "src" / "main.py").read_text() == "print()"
    assert not list(tmp_path.glob("project.previous-*"))


def test_restart_of_the_current_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--run_dir . --restart true`` used to fail with a traceback (a path without a name)."""
    (tmp_path / "config.yaml").write_text(run_folder.WRITTEN_BY_RUN + "seed: 0\n")
    (tmp_path / "checkpoint.pt").write_bytes(b"stand-in")
    saved = {"run": {"config_hash": "digest", "position": 1}}
    monkeypatch.setattr(run_folder.run_state, "load", lambda folder: saved)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"Cannot move the previous run \(\.\) aside"):
        run_folder.prepare_run_dir(Path("."), True, "seed: 0\n", "digest")
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"stand-in"


def test_restart_moves_a_run_aside_and_writes_a_marked_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"old run")
    saved = {"run": {"config_hash": "digest", "position": 2}}
    monkeypatch.setattr(run_folder.run_state, "load", lambda f: saved if f.exists() else None)
    run_folder.prepare_run_dir(run, True, "seed: 1\n", "digest")
    (aside,) = tmp_path.glob("run.previous-*")
    assert (aside / "checkpoint.pt").read_bytes() == b"old run"
    assert (run / "config.yaml").read_text() == run_folder.WRITTEN_BY_RUN + "seed: 1\n"


def test_run_folder_takeover_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of another configuration that finished no experience is moved aside (one line);
    one that finished some is refused; a folder of other files is never overwritten."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"stand-in")
    saved = {"run": {"config_hash": "another", "position": 0}}
    monkeypatch.setattr(
        run_folder.run_state, "load", lambda folder: saved if folder.exists() else None
    )
    run_folder.prepare_run_dir(run_dir, False, "seed: 0\n", "this")
    aside = list(tmp_path.glob("run.previous-*"))
    assert len(aside) == 1 and (aside[0] / "checkpoint.pt").read_bytes() == b"stand-in"
    assert (run_dir / "config.yaml").read_text() == run_folder.WRITTEN_BY_RUN + "seed: 0\n"

    saved["run"]["position"] = 1  # a finished experience: the user's results, refused
    with pytest.raises(UserError, match=r"configuration \(changed: seed: 0 -> 1\)"):
        run_folder.prepare_run_dir(run_dir, False, "seed: 1\n", "this")

    monkeypatch.setattr(run_folder.run_state, "load", lambda folder: None)
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "results.json").write_text("{}")
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match=r"holds other files \(notes.txt, results.json\)"):
        run_folder.prepare_run_dir(mine, False, "seed: 0\n", "this")
    assert (mine / "results.json").read_text() == "{}" and not (mine / "config.yaml").exists()
    started = tmp_path / "started"  # a run that stopped before its first checkpoint
    started.mkdir()
    (started / "config.yaml").write_text(run_folder.WRITTEN_BY_RUN + "old")
    (started / "log.txt").write_text("log")
    run_folder.prepare_run_dir(started, False, "new", "this")
    assert (started / "config.yaml").read_text() == run_folder.WRITTEN_BY_RUN + "new"


def test_restart_moves_an_unreadable_run_aside_without_reading_it(tmp_path: Path) -> None:
    """The error for a corrupt ``checkpoint.pt`` says "Rerun with --restart true"; that rerun
    used to read the file first and fail the same way."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"truncated")
    with pytest.raises(UserError, match="unreadable.*--restart true"):
        run_folder.prepare_run_dir(run, False, "seed: 1\n", "digest")
    run_folder.prepare_run_dir(run, True, "seed: 1\n", "digest")
    (aside,) = tmp_path.glob("run.previous-*")
    assert (aside / "checkpoint.pt").read_bytes() == b"truncated"
    assert (run / "config.yaml").read_text() == run_folder.WRITTEN_BY_RUN + "seed: 1\n"
