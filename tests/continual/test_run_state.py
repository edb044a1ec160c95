"""Saving and resuming a stream run: what a strategy carries across experiences on itself."""

from __future__ import annotations

import io

import pytest
import torch
from avalanche.training import Cumulative, Naive
from helpers.continual_models import make_strategy, tiny_model

from continual import MANNEpisodePlugin, run_state
from continual.runner import NOT_SAVED
from mann_lightning.errors import UserError


def build(strategy_class: type) -> object:
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=4, batch_size=2, train_batches=2, eval_batches=1
    )
    return make_strategy(strategy_class, tiny_model(), plugin)[0]


def round_trip(payload: dict) -> dict:
    """``payload`` through ``torch.save`` and ``torch.load``, as a checkpoint file."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_a_resumed_cumulative_run_trains_on_every_seen_experience(
    tensor_benchmark, one_thread
) -> None:
    bench = tensor_benchmark()
    straight = build(Cumulative)
    for experience in bench.train_stream[:2]:
        straight.train(experience)
    saved = round_trip(run_state.capture(straight, run_state.RunState("x", position=2), NOT_SAVED))
    resumed = build(Cumulative)
    run_state.restore(resumed, saved, NOT_SAVED)
    assert len(resumed.dataset) == len(straight.dataset) == 40  # 10 classes of 4 images
    for strategy in (straight, resumed):
        strategy.train(bench.train_stream[2])
        assert len(set(int(y) for y in strategy.dataset.targets)) == 15
    weights = resumed.model.state_dict()
    for name, value in straight.model.state_dict().items():
        if isinstance(value, torch.Tensor):  # not the wrapper's extra state
            assert torch.equal(value, weights[name]), name


def test_carried_attributes_by_strategy_class() -> None:
    class Mine(Naive):
        carried_attributes = ("buffer",)

    assert run_state.carried_attributes(build(Cumulative)) == ("dataset",)
    assert run_state.carried_attributes(build(Naive)) == ()
    assert run_state.carried_attributes(build(Mine)) == ("buffer",)


def test_a_checkpoint_without_the_cumulative_dataset_is_refused() -> None:
    strategy = build(Cumulative)
    saved = run_state.capture(strategy, run_state.RunState("x", position=1), NOT_SAVED)
    del saved["strategy"]  # as saved before the strategy's own state was kept
    with pytest.raises(UserError, match=r"no Cumulative.dataset .* --restart true"):
        run_state.restore(build(Cumulative), saved, NOT_SAVED)
