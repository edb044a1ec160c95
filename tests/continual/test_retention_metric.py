"""BindingRetentionMetric: binding retention per evaluated experience, as Avalanche metrics."""

from __future__ import annotations

import pytest
import torch
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from helpers.continual_models import tiny_model
from torch import nn

from continual import MANNEpisodePlugin
from continual.episode_data import gather_pool
from continual.retention_metric import BindingRetentionMetric, retention_images
from mann_lightning.data.pool import ClassPool
from mann_lightning.data.stream import stream_seed
from mann_lightning.retention import binding_retention


def test_ragged_pool_keeps_big_classes_truncated_to_the_smallest() -> None:
    features = torch.arange(1, 10).float().repeat_interleave(4).view(9, 4)  # image i: all i
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 2])  # counts 3, 5, 1
    pool = ClassPool.from_tensors(features, labels)
    images = retention_images(pool, side=2, min_images=2)
    assert images.shape == (2, 3, 2, 2)  # class 2 left out; 3 = smallest kept count
    assert images[:, :, 0, 0].tolist() == [[1, 2, 3], [4, 5, 6]]  # real images, no padding
    with pytest.raises(ValueError, match="No class has 6 images"):
        retention_images(pool, side=2, min_images=6)


def test_metric_emits_gap_bins_and_matches_binding_retention(small_stream, one_thread) -> None:
    model = tiny_model()
    metric = BindingRetentionMetric(steps=40, batch=2, seed=3)
    strategy = Naive(
        model=model, optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
        criterion=nn.CrossEntropyLoss(), train_mb_size=4,
        plugins=[MANNEpisodePlugin(5, 3, 4, train_batches=1, eval_batches=1)],
        evaluator=EvaluationPlugin(metric, loggers=[]),
    )  # fmt: skip
    experience = small_stream.test_stream[1]
    results = strategy.eval([experience])
    base = "BindingRetention_Exp/eval_phase/test_stream/Exp001"
    result = metric.results[("test", 1)]
    assert results[f"{base}/accuracy"] == pytest.approx(result.accuracy)
    gaps = {k.rsplit("/", 1)[1]: v for k, v in results.items() if k.startswith(f"{base}/gap_")}
    assert "gap_1-1" in gaps and set(gaps) == {
        f"gap_{b.low}-{b.high}" for b in result.by_gap if b.count
    }
    counted = sum(b.count for b in result.by_gap)
    assert counted == 2 * 40 - result.first_count and result.config["num_classes"] == 5
    pool = gather_pool([experience.dataset.eval()], 400, torch.device("cpu"))
    images = retention_images(pool, 20)
    again = binding_retention(
        model.mann, images, torch.arange(len(images)), "onehot", 40, 2,
        stream_seed(3, "retention", "test", 1), 5, revisit="recency",
    )  # fmt: skip
    assert again.correct.tolist() == result.correct.tolist()
    assert again.gap.tolist() == result.gap.tolist()
