"""TransferMetrics: the plugin metric equals transfer_summary of the evaluated matrices."""

from __future__ import annotations

import pytest
import torch
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from helpers.continual_models import tiny_model
from torch import nn

from continual import MANNEpisodePlugin, PresentationAccuracy
from continual.transfer import transfer_summary
from continual.transfer_metric import TransferMetrics


def _naive(
    train_batches: int, eval_batches: int, **strategy_args: int
) -> tuple[PresentationAccuracy, TransferMetrics, Naive]:
    """A Naive strategy on a tiny MANN with both metrics in its evaluator."""
    model = tiny_model()
    presentation, transfer = PresentationAccuracy(), TransferMetrics()
    episodes = MANNEpisodePlugin(5, 3, 4, train_batches=train_batches, eval_batches=eval_batches)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
        criterion=nn.CrossEntropyLoss(),
        plugins=[episodes],
        evaluator=EvaluationPlugin(presentation, transfer, loggers=[]),
        **strategy_args,
    )
    return presentation, transfer, strategy


def test_transfer_metric_matches_the_matrices(small_stream, one_thread) -> None:
    presentation, transfer, strategy = _naive(train_batches=6, eval_batches=2)
    stream = small_stream.test_stream
    strategy.eval(stream)
    untrained = [presentation.results[("test", j)] for j in range(3)]
    rows = []
    for experience in small_stream.train_stream:
        strategy.train(experience)
        results = strategy.eval(stream)
        rows.append([presentation.results[("test", j)] for j in range(3)])
    by_presentation = [[[row[j][k] for j in range(3)] for row in rows] for k in range(10)]
    untrained_k = [[untrained[j][k] for j in range(3)] for k in range(10)]
    expected = transfer_summary(by_presentation, untrained_k)
    assert (
        transfer.result()["forgetting"]["per_experience"]
        == expected["forgetting"]["per_experience"]
    )
    assert transfer.result()["forward_transfer"]["mean"] == pytest.approx(
        expected["forward_transfer"]["mean"]
    )
    assert results["BWT_Stream/eval_phase/test_stream/mean"] == pytest.approx(
        expected["backward_transfer"]["mean"]
    )
    assert results["Forgetting_Stream/eval_phase/test_stream/Exp000"] == pytest.approx(
        max(rows[0][0][1], rows[1][0][1]) - rows[2][0][1]
    )
    assert "Forgetting_Stream/eval_phase/test_stream/Exp002" not in results  # last: undefined
    # a resumed run restores the rows and continues with the next experience's row
    fresh = TransferMetrics()
    fresh.restore(rows[:2], untrained)
    fresh.after_training_exp(strategy)
    fresh._current = dict(enumerate(rows[2]))
    fresh.after_eval(strategy)
    assert fresh.result()["forward_transfer"] == transfer.result()["forward_transfer"]
    assert fresh.result()["forgetting"] == transfer.result()["forgetting"]


def test_other_streams_and_evaluations_inside_training_are_left_out(
    small_stream, one_thread
) -> None:
    """Periodic evaluation of the training experience (Avalanche's default ``eval_streams``)
    and mid-experience evaluations do not enter the matrix; a train-stream evaluation after
    the test stream's leaves the results as they were."""
    # evaluations after every epoch: mid-experience and at the end
    presentation, transfer, strategy = _naive(3, 1, train_epochs=2, eval_every=1)
    stream = small_stream.test_stream
    strategy.eval(stream)
    untrained = [presentation.results[("test", j)] for j in range(3)]
    rows = []
    for index, experience in enumerate(small_stream.train_stream):
        # the first experience evaluates the test stream mid-way too; the others their own
        # training experience (Avalanche's default), which is another stream
        strategy.train(experience, eval_streams=[stream] if index == 0 else None)
        # not the mid-way evaluation (repr: NaN, a presentation no episode reached, is NaN)
        assert repr(transfer.untrained) == repr(dict(enumerate(untrained)))
        strategy.eval(stream)
        rows.append([presentation.results[("test", j)] for j in range(3)])
    by_presentation = [[[row[j][k] for j in range(3)] for row in rows] for k in range(10)]
    untrained_k = [[untrained[j][k] for j in range(3)] for k in range(10)]
    expected = transfer_summary(by_presentation, untrained_k)
    assert repr(transfer.result()) == repr(expected)
    strategy.eval(small_stream.train_stream)
    assert repr(transfer.result()) == repr(expected)
    assert repr(transfer.rows) == repr([dict(enumerate(row)) for row in rows])
