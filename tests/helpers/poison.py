"""A plugin that turns the model's weights into NaN before the first training step."""

from __future__ import annotations

from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin


class PoisonWeights(SupervisedPlugin):
    """Fill the first parameter of the strategy's model with NaN before each forward pass."""

    def before_forward(self, strategy: Any, **kwargs: Any) -> None:
        with torch.no_grad():
            next(strategy.model.parameters()).fill_(float("nan"))
