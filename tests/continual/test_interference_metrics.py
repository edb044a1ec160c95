"""Interference plugin metrics on a small synthetic benchmark: same episodes, hand checks."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from helpers.continual_models import tiny_model
from torch import nn
from torch.utils.data import TensorDataset

from continual import EpisodicMANN, MANNEpisodePlugin, PresentationAccuracy
from continual.curriculum_plugin import CurriculumMANN
from continual.interference_metrics import (
    MemoryStatisticsMetric,
    ProactiveInterference,
    episode_plugin,
    minibatch_episodes,
)
from mann_lightning import MANN, LRUAMemory
from mann_lightning.memory_stats import trace_statistics


@pytest.fixture(scope="module")
def bench():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(12).repeat_interleave(8)
    images = torch.rand(labels.numel(), 1, 20, 20, generator=generator) * 0.3
    images += (labels.view(-1, 1, 1, 1) % 4) / 4
    dataset = TensorDataset(images, labels)
    dataset.targets = labels
    return nc_benchmark(dataset, dataset, n_experiences=2, task_labels=False, seed=1)


def _strategy(model: EpisodicMANN, *metrics):
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=3, batch_size=3, train_batches=2, eval_batches=2
    )
    recorded = []

    class Record:
        def after_eval_iteration(self, strategy, **kwargs):
            recorded.append(minibatch_episodes(strategy))

    strategy = Naive(
        model=model, optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
        criterion=nn.CrossEntropyLoss(), train_mb_size=3, plugins=[plugin, Record()],
        evaluator=EvaluationPlugin(*metrics, loggers=[]),
    )  # fmt: skip
    return strategy, recorded


def test_k0_is_the_presentation_accuracy_and_reruns_agree(bench, one_thread) -> None:
    presentation = PresentationAccuracy(train=False)
    interference = ProactiveInterference(ks=(0, 1, 3), num_batches=None)
    strategy, _ = _strategy(tiny_model(), presentation, interference)
    strategy.train(bench.train_stream[0])
    emitted = strategy.eval(bench.test_stream)
    for j in range(2):
        result = interference.results[("test", j)]
        assert list(result) == [0, 1, 3]
        torch.testing.assert_close(
            torch.tensor(result[0]), torch.tensor(presentation.results[("test", j)]),
            equal_nan=True,
        )  # fmt: skip
    name = "ProactiveInterference_Exp/eval_phase/test_stream/Exp001/k03/P02"
    assert name in emitted and 0.0 <= emitted[name] <= 1.0
    first = {key: dict(value) for key, value in interference.results.items()}
    strategy.eval(bench.test_stream)  # same episodes, same pre-loading episodes
    for key, value in first.items():
        torch.testing.assert_close(
            torch.tensor(list(interference.results[key].values())),
            torch.tensor(list(value.values())), equal_nan=True, rtol=0, atol=0,
        )  # fmt: skip


def test_memory_free_model_is_the_same_for_every_k(bench, one_thread) -> None:
    torch.manual_seed(0)
    mann = MANN(400, 5, controller="feedforward", memory=None, controller_size=16)
    interference = ProactiveInterference(ks=(0, 2, 8), num_batches=1)
    strategy, _ = _strategy(EpisodicMANN(mann), interference)
    strategy.eval(bench.test_stream[0])
    result = interference.results[("test", 0)]
    assert result[0][:3] == result[2][:3] == result[8][:3]  # 3 samples per class
    assert all(math.isnan(v) for v in result[8][3:])


def test_memory_statistics_are_episode_means(bench, one_thread) -> None:
    stats = MemoryStatisticsMetric(threshold=0.5, lag=1)
    model = tiny_model()
    strategy, recorded = _strategy(model, stats)
    emitted = strategy.eval(bench.test_stream[1])
    assert len(recorded) == 2
    by_hand = [
        trace_statistics(model.mann, b.inputs, b.prev_labels, b.targets, threshold=0.5, lag=1)
        for b in recorded
    ]
    result = stats.results[("test", 1)]
    for name in ("slots_written", "binding_overwrites", "usage_entropy"):
        expected = torch.cat([getattr(s, name) for s in by_hand]).nanmean()  # 6 episodes
        assert result[name] == pytest.approx(float(expected), nan_ok=True)
        assert emitted[f"MemoryStats_Exp/eval_phase/test_stream/Exp001/{name}"] == result[name]
    assert 0.0 <= result["slots_written"] <= 1.0
    assert 0.0 < result["usage_entropy"] <= math.log(16) + 1e-6  # 16 slots


def test_curriculum_model_episodes_are_padded_to_its_label_width(bench, one_thread) -> None:
    torch.manual_seed(0)
    mann = MANN(400, 7, memory=LRUAMemory(16, 8, num_reads=1), controller_size=16)
    presentation = PresentationAccuracy(train=False)
    interference = ProactiveInterference(ks=(0, 1), num_batches=None)
    stats = MemoryStatisticsMetric()
    strategy, recorded = _strategy(CurriculumMANN(mann), presentation, interference, stats)
    strategy.eval(bench.test_stream[0])  # 5-way episodes, 5 label columns; the MANN takes 7
    assert all(batch.prev_labels.shape[-1] == 7 for batch in recorded)
    torch.testing.assert_close(
        torch.tensor(interference.results[("test", 0)][0]),
        torch.tensor(presentation.results[("test", 0)]), equal_nan=True,
    )  # fmt: skip
    assert 0.0 <= stats.results[("test", 0)]["slots_written"] <= 1.0


def test_needs_the_episode_plugin() -> None:
    with pytest.raises(ValueError, match="need a strategy with MANNEpisodePlugin"):
        episode_plugin(SimpleNamespace(plugins=[object()]))
