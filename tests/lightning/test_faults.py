"""``mann fit`` survives faults: SIGKILL mid-run or mid-save, non-finite losses; determinism.

The drills run the real command on a tiny config (8 steps, ``last.ckpt`` every 2 steps) with
``MANN_FAULT`` (see :mod:`mann_lightning.faults`) placing the fault deterministically, then
compare with an uninterrupted run of the same config.
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from helpers.mann_runs import error_message, mann, mann_in_process, write_tiny_config

from mann_lightning.checkpointing import (
    AtomicCheckpointIO,
    NonFiniteCheckpointError,
    atomic_torch_save,
)
from mann_lightning.guards import NonFiniteGuard, NonFiniteTrainingError

STEPS, INTERVAL = 8, 2
CKPT = Path("runs/tiny/checkpoints")


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def fit(
    folder: Path, *args: str, fault: str | None = None, in_process: bool = False, **options: Any
) -> Any:
    """``mann fit`` on the tiny config: the real command, or ``main()`` in this process.

    The SIGKILL drills need their own process; the others run in-process, which saves an
    interpreter start (about 10 s on 2 cores) each. ``options`` go to ``mann_in_process``.
    """
    write_tiny_config(folder, max_steps=STEPS)
    env = {"MANN_FAULT": fault} if fault else None
    if in_process:
        return mann_in_process(
            "fit", "--config", "tiny.yaml", *args, cwd=folder, env=env, **options
        )
    return mann("fit", "--config", "tiny.yaml", *args, cwd=folder, env=env)


def assert_same_run(folder: Path, reference: Path) -> None:
    """Same final step, data-stream position, loop progress and bit-identical weights."""
    ours, theirs = load(folder / CKPT / "last.ckpt"), load(reference / CKPT / "last.ckpt")
    assert ours["global_step"] == theirs["global_step"] == STEPS
    assert ours["OmniglotEpisodes"] == theirs["OmniglotEpisodes"]
    loops = "epoch_loop.batch_progress"
    assert ours["loops"]["fit_loop"][loops] == theirs["loops"]["fit_loop"][loops]
    for name, value in theirs["state_dict"].items():
        assert torch.equal(ours["state_dict"][name], value), f"{name} differs"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, omniglot: Path) -> Path:
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = fit(folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.fixture(scope="module")
def omniglot() -> Path:  # module scope for the shared run above
    from helpers.paths import omniglot_root

    root = omniglot_root()
    if root is None or not (root / "images_background.npz").is_file():
        pytest.skip("Omniglot arrays not found")
    return root


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(
    tmp_path: Path, uninterrupted: Path
) -> None:
    killed = fit(tmp_path, fault="kill_at_step=3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    saved = load(tmp_path / CKPT / "last.ckpt")
    assert saved["global_step"] == 2  # at most one interval (2 steps) of work lost
    resumed = fit(tmp_path, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(tmp_path, uninterrupted)


@pytest.mark.slow
def test_sigkill_during_a_save_keeps_the_previous_checkpoint(
    tmp_path: Path, uninterrupted: Path
) -> None:
    killed = fit(tmp_path, fault="kill_in_save=2")  # the save of step 4
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (partial,) = (tmp_path / CKPT).glob(".last.ckpt.*.tmp")
    last = tmp_path / CKPT / "last.ckpt"
    assert 0 < partial.stat().st_size < last.stat().st_size  # killed half-way through
    assert load(last)["global_step"] == 2  # the previous checkpoint, intact
    resumed = fit(tmp_path, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not list((tmp_path / CKPT).glob("*.tmp")), "the stale temporary file is removed"
    assert_same_run(tmp_path, uninterrupted)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, omniglot: Path
) -> None:
    message = error_message(fit(tmp_path, fault="nan_at_step=3", in_process=True))
    assert "training stopped at step 3" in message and "loss is nan" in message
    assert "--ckpt_path last" in message
    saved = load(tmp_path / CKPT / "last.ckpt")
    assert saved["global_step"] == 2
    assert all(value.isfinite().all() for value in saved["state_dict"].values())


@pytest.mark.slow
def test_nan_loss_is_skipped_when_asked(tmp_path: Path, omniglot: Path) -> None:
    skip = "--trainer.callbacks.init_args.action=skip"
    result = fit(tmp_path, skip, fault="nan_at_step=3", in_process=True, warnings_shown=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped step 3" in result.stderr
    saved = load(tmp_path / CKPT / "last.ckpt")
    assert saved["global_step"] == STEPS
    assert all(value.isfinite().all() for value in saved["state_dict"].values())


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics(tmp_path: Path, uninterrupted: Path) -> None:
    result = fit(tmp_path, in_process=True)  # against the reference run in its own process
    assert result.returncode == 0, result.stderr[-3000:]
    ours = (tmp_path / "runs/tiny/version_0/metrics.csv").read_text()
    theirs = (uninterrupted / "runs/tiny/version_0/metrics.csv").read_text()
    assert "train/loss" in ours and "val/acc_inst_2" in ours
    assert ours == theirs  # every logged value, bit for bit (as printed by the CSV logger)
    assert_same_run(tmp_path, uninterrupted)


# ---------------------------------------------------------------- in-process unit checks
def test_atomic_save_keeps_the_old_file_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"state_dict": {"w": torch.ones(2)}}, path)

    def disk_full(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        atomic_torch_save({"state_dict": {"w": torch.zeros(2)}}, path)
    assert torch.equal(load(path)["state_dict"]["w"], torch.ones(2))
    assert list(tmp_path.iterdir()) == [path], "no temporary file is left behind"


def test_a_non_finite_checkpoint_is_never_written(tmp_path: Path) -> None:
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "global_step": 1}, path)
    bad = {"state_dict": {"w": torch.tensor([1.0, math.nan])}, "global_step": 2}
    with pytest.raises(NonFiniteCheckpointError, match="weight w is NaN or infinite"):
        io.save_checkpoint(bad, path)
    assert load(path)["global_step"] == 1


def fake_trainer(step: int) -> SimpleNamespace:
    strategy = SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: decision)
    return SimpleNamespace(global_step=step, current_epoch=0, strategy=strategy)


def test_guard_stops_on_a_non_finite_gradient_naming_step_and_parameter() -> None:
    layer = torch.nn.Linear(2, 1)
    layer.weight.grad = torch.tensor([[math.inf, 0.0]])
    layer.bias.grad = torch.zeros(1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    with pytest.raises(NonFiniteTrainingError, match="step 7 .*gradient of weight"):
        NonFiniteGuard().on_before_optimizer_step(fake_trainer(7), layer, optimizer)


def test_guard_skips_steps_until_too_many_in_a_row() -> None:
    layer = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    guard = NonFiniteGuard("skip", max_consecutive_skips=2)
    layer.weight.grad, layer.bias.grad = torch.full((1, 2), math.nan), torch.zeros(1)
    with pytest.warns(UserWarning, match="skipped step 3"):
        guard.on_before_optimizer_step(fake_trainer(3), layer, optimizer)
    assert layer.weight.grad is None and layer.bias.grad is None  # the optimizer skips them
    layer.weight.grad, layer.bias.grad = torch.full((1, 2), math.nan), torch.zeros(1)
    with pytest.raises(NonFiniteTrainingError, match="after 2 bad steps in a row"):
        guard.on_before_optimizer_step(fake_trainer(4), layer, optimizer)


def test_guard_passes_finite_gradients_whose_sum_overflows() -> None:
    # 3e38 + 3e38 overflows to inf in float32, yet every element is finite: no false alarm.
    layer = torch.nn.Linear(2, 1)
    layer.weight.grad = torch.full((1, 2), 3e38)
    layer.bias.grad = torch.zeros(1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.0)
    assert not torch.isfinite(layer.weight.grad.sum())
    guard = NonFiniteGuard()
    guard.on_before_optimizer_step(fake_trainer(5), layer, optimizer)
    assert guard.skipped == 0 and layer.weight.grad is not None


@pytest.mark.parametrize("bad", [[math.nan], [math.inf], [-math.inf], [math.inf, -math.inf]])
def test_guard_finds_one_non_finite_element_among_many(bad: list[float]) -> None:
    layer = torch.nn.Linear(1000, 300)
    layer.bias.grad = torch.randn(300)
    grad = torch.randn(300, 1000)
    for k, value in enumerate(bad):
        grad[17 + k, 123] = value
    layer.weight.grad = grad
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    with pytest.raises(NonFiniteTrainingError, match="gradient of weight"):
        NonFiniteGuard().on_before_optimizer_step(fake_trainer(2), layer, optimizer)


def test_guard_reads_the_device_once_per_good_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loss and gradients are cleared by one host read (a wait for the device on a GPU)."""
    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    guard, trainer = NonFiniteGuard(), fake_trainer(4)
    guard.on_train_batch_start(trainer, layer, (torch.ones(1, 3),), 0)
    loss = layer(torch.ones(1, 3)).sum()
    reads = []
    original = torch.Tensor.__bool__
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda t: reads.append(1) or original(t))
    guard.on_before_backward(trainer, layer, loss)
    loss.backward()
    guard.on_before_optimizer_step(trainer, layer, optimizer)
    assert len(reads) == 1
    guard.on_before_backward(trainer, layer, loss.detach() * math.nan)  # then a NaN loss
    with pytest.raises(NonFiniteTrainingError, match="step 4 .*the loss is nan"):
        guard.on_before_optimizer_step(trainer, layer, optimizer)
