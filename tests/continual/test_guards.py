"""``NonFiniteLossGuard`` stops a stream run at the first NaN or infinite training loss."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from continual.guards import NonFiniteLossGuard
from mann_lightning.errors import is_user_error
from mann_lightning.guards import NonFiniteTrainingError


def strategy(loss: float) -> SimpleNamespace:
    return SimpleNamespace(
        loss=torch.tensor(loss, requires_grad=True) * 1.0,
        experience=SimpleNamespace(current_experience=3),
        clock=SimpleNamespace(train_iterations=41),
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_loss_stops_the_run_with_a_user_error(bad: float) -> None:
    with pytest.raises(
        NonFiniteTrainingError, match=r"became (nan|inf|-inf) in experience 3"
    ) as error:
        NonFiniteLossGuard().after_backward(strategy(bad))
    assert "iteration 41" in str(error.value) and is_user_error(error.value)


def test_a_finite_loss_passes() -> None:
    NonFiniteLossGuard().after_backward(strategy(3e38))  # large but finite
    NonFiniteLossGuard().after_backward(SimpleNamespace(loss=None))  # before any loss
