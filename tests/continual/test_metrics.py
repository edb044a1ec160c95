"""PresentationAccuracy: training and evaluation counts kept apart."""

from __future__ import annotations

import pytest
from avalanche.training import Naive
from helpers.continual_models import make_strategy, tiny_model

from continual import MANNEpisodePlugin


def training_presentation_accuracy(bench, eval_every: int) -> list[float]:
    """The training PresentationAcc of experience 0's epoch, with periodic evaluations every
    ``eval_every`` iterations inside it (-1: none)."""
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=4, batch_size=2, train_batches=4, eval_batches=1
    )
    strategy, _ = make_strategy(
        Naive, tiny_model(), plugin, eval_every=eval_every, peval_mode="iteration"
    )
    strategy.train(bench.train_stream[0], eval_streams=[bench.test_stream[:1]])
    values = strategy.evaluator.get_all_metrics()
    names = [f"PresentationAcc_Exp/train_phase/train_stream/Exp000/P{k:02d}" for k in (1, 2, 3)]
    return [values[name][1][-1] for name in names]


def test_an_evaluation_inside_a_training_epoch_leaves_its_accuracy_alone(
    tensor_benchmark, one_thread
) -> None:
    bench = tensor_benchmark(experiences=1)
    alone = training_presentation_accuracy(bench, -1)
    with_eval = training_presentation_accuracy(bench, 3)  # an evaluation after iteration 3
    assert with_eval == pytest.approx(alone, abs=0)
