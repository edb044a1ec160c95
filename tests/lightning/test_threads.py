"""``mann --threads``: one thread by default, OMP_NUM_THREADS respected, bad counts refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from mann_lightning.cli import main
from mann_lightning.threads import DEFAULT_THREADS, apply_threads, available_cores, resolve_threads

REPO = Path(__file__).resolve().parents[2]
FAST = [
    "--config", str(REPO / "configs" / "demo.yaml"), "--trainer.max_steps=1",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    "--data.init_args.train_batches_per_epoch=1", "--data.init_args.val_batches=1",
]  # fmt: skip


@pytest.fixture
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_resolve_threads() -> None:
    assert resolve_threads(None, {}) == DEFAULT_THREADS == 1
    assert resolve_threads(None, {"OMP_NUM_THREADS": "4"}) is None  # the environment decides
    assert resolve_threads(3, {"OMP_NUM_THREADS": "4"}) == 3  # --threads wins
    assert resolve_threads(0, {}) is None  # torch's default
    with pytest.raises(ValueError, match="--threads must be 0"):
        resolve_threads(-2, {})


@pytest.mark.parametrize(("argument", "expected"), [([], 1), (["--threads", "2"], 2)])
def test_fit_sets_the_threads(
    argument: list[str], expected: int, tmp_path: Path, omniglot: Path,
    monkeypatch: pytest.MonkeyPatch, restore_threads: None,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2 if expected == 1 else 1)
    main(["fit", *FAST, *argument])
    assert torch.get_num_threads() == expected


def test_a_negative_count_is_one_clear_line(
    tmp_path: Path, omniglot: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], restore_threads: None,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *FAST, "--threads", "-1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith("mann: error: --threads must be 0") for line in err), err
    assert "Traceback" not in "\n".join(err)


def test_more_threads_than_cores_warns(restore_threads: None) -> None:
    cores = available_cores()
    with pytest.warns(UserWarning, match=f"more than the {cores} cores"):
        apply_threads(cores + 1)
    assert torch.get_num_threads() == cores + 1  # told, not overridden
