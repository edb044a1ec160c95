"""Optimiser and learning-rate schedule (``mann_lightning.optimisation``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers.cli_args import FAST_FIT_ARGS

from mann_lightning.cli import build_cli
from mann_lightning.optimisation import build_optimizer, lr_factor

REPO = Path(__file__).resolve().parents[2]


def test_warmup_then_cosine_reaches_zero_at_max_steps() -> None:
    factor = lr_factor("cosine", warmup_steps=10, total_steps=110)
    assert [factor(s) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5)
    assert factor(35) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))
    assert factor(110) == pytest.approx(0.0) and factor(500) == pytest.approx(0.0)
    values = [factor(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_constant_without_warmup_is_a_bare_optimizer() -> None:
    params = [torch.nn.Parameter(torch.zeros(3))]
    rmsprop = build_optimizer(params, "rmsprop", lr=1e-4)
    assert isinstance(rmsprop, torch.optim.RMSprop)
    assert rmsprop.defaults["momentum"] == 0.9 and rmsprop.defaults["alpha"] == 0.95
    warm = build_optimizer(params, "adam", lr=1e-3, warmup_steps=4)
    assert isinstance(warm["optimizer"], torch.optim.Adam)
    assert warm["lr_scheduler"]["interval"] == "step"
    assert warm["optimizer"].param_groups[0]["lr"] == pytest.approx(1e-3 / 4)


def test_cosine_without_max_steps_is_explained() -> None:
    params = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError, match="max_steps"):
        build_optimizer(params, "adam", lr=1e-3, lr_schedule="cosine", max_steps=-1)


def test_schedule_steps_in_training_and_survives_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, omniglot: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    config = str(REPO / "configs" / "demo.yaml")
    schedule = [
        "--model.init_args.lr=0.01",
        "--model.init_args.lr_schedule=cosine",
        "--model.init_args.warmup_steps=2",
    ]
    cli = build_cli(["fit", "--config", config, "--trainer.max_steps=6", *schedule, *FAST_FIT_ARGS])
    (optimizer,) = cli.trainer.optimizers
    # After 6 optimiser steps the scheduler stands at step 6 = max_steps: rate 0.
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    straight = {k: v.clone() for k, v in cli.model.state_dict().items()}

    for path in (tmp_path / "runs").rglob("*.ckpt"):
        path.unlink()
    # Interrupted after 2 epochs of 2 batches, with the schedule still planned over 6 steps.
    build_cli(
        [
            "fit",
            "--config",
            config,
            "--trainer.max_steps=6",
            "--trainer.max_epochs=2",
            *schedule,
            *FAST_FIT_ARGS,
        ]
    )
    resumed = build_cli(
        [
            "fit",
            "--config",
            config,
            "--trainer.max_steps=6",
            "--ckpt_path=last",
            *schedule,
            *FAST_FIT_ARGS,
        ]
    )
    assert resumed.trainer.global_step == 6
    for key, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, straight[key], msg=f"{key} differs after resume")


def test_unknown_schedule_is_rejected() -> None:
    from mann_lightning.classifier import MANNClassifier

    with pytest.raises(ValueError, match="lr_schedule"):
        MANNClassifier(num_classes=5, lr_schedule="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warmup_steps"):
        MANNClassifier(num_classes=5, warmup_steps=-1)


def test_build_optimizer_refuses_an_unknown_name() -> None:
    params = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
        build_optimizer(params, "sgd", lr=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": float("nan")}, "lr must be a positive finite number"),
        ({"lr": float("inf")}, "lr must be a positive finite number"),
        ({"lr": 1e-3, "weight_decay": float("inf")}, "weight_decay must be 0 or more"),
        ({"lr": 1e-3, "weight_decay": float("nan")}, "weight_decay must be 0 or more"),
    ],
)
def test_non_finite_rates_are_refused(kwargs: dict, message: str) -> None:
    """From YAML (``.nan``, ``.inf``) these reached the optimizer, or trained on NaN."""
    params = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError, match=message):
        build_optimizer(params, "rmsprop", **kwargs)


def test_a_warm_up_past_the_last_step_warns() -> None:
    """A warning, not an error: a smoke run of a cosine config (max_steps 2) is legitimate."""
    params = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.warns(UserWarning, match="warmup_steps=100 is not below max_steps=5"):
        build_optimizer(
            params, "adam", lr=1e-3, lr_schedule="cosine", warmup_steps=100, max_steps=5
        )
