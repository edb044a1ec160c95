"""Replayed classes with fewer images than an episode shows: one warning per experience."""

from __future__ import annotations

import re
import warnings

import pytest
from avalanche.training import Replay
from helpers.continual_models import make_strategy, tiny_model

from continual import MANNEpisodePlugin


def replay_warnings(bench, mem_size: int, ragged: str = "replace") -> list[str]:
    """Messages about replayed classes while Replay trains through ``bench`` (2 epochs each)."""
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=4, batch_size=2, train_batches=1, eval_batches=1,
        ragged=ragged,
    )  # fmt: skip
    strategy, _ = make_strategy(Replay, tiny_model(), plugin, mem_size=mem_size, train_epochs=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for experience in bench.train_stream:
            strategy.train(experience)
    return [str(w.message) for w in caught if "replayed classes" in str(w.message)]


def test_a_small_replay_buffer_is_said_once_per_experience(tensor_benchmark, one_thread) -> None:
    bench = tensor_benchmark(experiences=2)  # 5 classes of 4 images each
    messages = replay_warnings(bench, mem_size=10)  # 2 images per replayed class
    assert len(messages) == 1, messages  # experience 1 only, once for its 2 epochs
    assert re.match(r"Training experience 1: \d of \d replayed classes have fewer", messages[0])
    assert "mem_size >= samples_per_class x earlier classes (4 x 5 = 20)" in messages[0]


@pytest.mark.parametrize(("mem_size", "ragged"), [(40, "replace"), (20, "exclude")])
def test_no_warning_with_a_large_buffer_or_excluded_classes(
    tensor_benchmark, one_thread, mem_size: int, ragged: str
) -> None:
    bench = tensor_benchmark(experiences=2, classes=10)  # 10 classes of 4 images each
    assert replay_warnings(bench, mem_size, ragged) == []  # 40: every image of experience 0
