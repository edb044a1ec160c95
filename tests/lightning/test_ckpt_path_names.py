"""``--ckpt_path last``/``best`` behave as the checkpoint file they name: its settings win."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mann_lightning.cli import build_cli

FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, omniglot: Path) -> Path:
    """A tiny run of one epoch (5 steps, then validation): ``last.ckpt`` and ``best.ckpt``."""
    from helpers.mann_runs import write_tiny_config

    monkeypatch.chdir(tmp_path)
    write_tiny_config(tmp_path, max_steps=5)
    build_cli(["fit", "--config", "tiny.yaml", *FAST])
    folder = tmp_path / "runs/tiny/checkpoints"
    assert (folder / "last.ckpt").is_file() and (folder / "best.ckpt").is_file()
    return folder


def _saved_config(tmp_path: Path) -> dict:
    newest = max(
        (tmp_path / "runs/tiny").glob("version_*/config.yaml"), key=lambda p: p.stat().st_mtime
    )
    return yaml.safe_load(newest.read_text())


def test_resume_by_name_uses_the_checkpoints_settings(trained: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"the checkpoint's grad_clip_norm=10.0 .* is used"):
        cli = build_cli(
            ["fit", "--config", "tiny.yaml", "--ckpt_path", "last", *FAST,
             "--model.init_args.grad_clip_norm", "0.0001"]
        )  # fmt: skip
    assert cli.model.grad_clip_norm == 10.0  # as with --ckpt_path runs/.../last.ckpt
    assert cli.model.hparams.grad_clip_norm == 10.0
    saved = _saved_config(tmp_path)
    assert saved["model"]["init_args"]["grad_clip_norm"] == 10.0
    assert Path(saved["ckpt_path"]).resolve() == (trained / "last.ckpt").resolve()


def test_test_by_name_uses_the_checkpoints_settings(trained: Path) -> None:
    with pytest.warns(UserWarning, match=r"the checkpoint's max_instances=10 .* is used"):
        cli = build_cli(
            ["test", "--config", "tiny.yaml", "--ckpt_path", "best", *FAST,
             "--model.init_args.max_instances", "2"]
        )  # fmt: skip
    assert cli.model.hparams.max_instances == 10
    assert Path(cli.config_init["test"]["ckpt_path"]).resolve() == (trained / "best.ckpt").resolve()


def test_fit_from_last_without_a_checkpoint_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, omniglot: Path
) -> None:
    from helpers.mann_runs import write_tiny_config

    monkeypatch.chdir(tmp_path)
    write_tiny_config(tmp_path, max_steps=1)
    cli = build_cli(["fit", "--config", "tiny.yaml", "--ckpt_path", "last", *FAST])
    assert cli.trainer.global_step == 1
    assert (tmp_path / "runs/tiny/checkpoints/last.ckpt").is_file()
