"""Tiny models and strategies for the continual-layer tests."""

from __future__ import annotations

import torch
from torch import nn

from continual import EpisodicMANN, MANNEpisodePlugin, PresentationAccuracy
from mann_lightning import MANN, LRUAMemory


def tiny_model(
    num_outputs: int = 5, encoding: str = "onehot", wipe: str = "episode", **kwargs
) -> EpisodicMANN:
    """A small LSTM + LRUA network wrapped for Avalanche (seeded)."""
    torch.manual_seed(0)
    mann = MANN(400, num_outputs, memory=LRUAMemory(16, 8, num_reads=2), controller_size=32)
    return EpisodicMANN(mann, encoding, wipe=wipe, **kwargs)  # type: ignore[arg-type]


def make_strategy(strategy_class, model: nn.Module, plugin: MANNEpisodePlugin, **kwargs):
    """A stock strategy with the episode plugin and the presentation metric."""
    from avalanche.training.plugins import EvaluationPlugin

    metric = PresentationAccuracy()
    strategy = strategy_class(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=4,
        plugins=[plugin, *kwargs.pop("plugins", [])],
        evaluator=EvaluationPlugin(metric, loggers=[]),
        **kwargs,
    )
    return strategy, metric
