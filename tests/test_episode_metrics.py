"""EpisodeAccuracy (per-episode counts, cat state) and bootstrap intervals over episodes."""

from __future__ import annotations

import math

import pytest
import torch

from mann_lightning.episode_metrics import (
    EpisodeAccuracy,
    bootstrap_interval,
    paper_intervals,
    pooled_accuracy,
)
from mann_lightning.metrics import InstanceAccuracy


def _random_episodes(episodes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts of ``episodes`` 5-way episodes: 5 steps per presentation, accuracy ~0.3..0.9."""
    generator = torch.Generator().manual_seed(seed)
    total = torch.full((episodes, 10), 5, dtype=torch.long)
    rate = torch.linspace(0.3, 0.9, 10, dtype=torch.float64).expand(episodes, 10)
    correct = torch.binomial(total.double(), rate, generator=generator).long()
    return correct, total


def test_hand_counted_episodes() -> None:
    # Episode 0: the example of test_metrics (A x4, B x2, C x1);
    # episode 1: class 3 five times (its 5th presentation is in no column), class 4 twice.
    targets = torch.tensor([[0, 1, 0, 2, 0, 1, 0], [3, 3, 3, 3, 3, 4, 4]])
    instances = torch.tensor([[1, 1, 2, 1, 3, 2, 4], [1, 2, 3, 4, 5, 1, 2]])
    preds = torch.tensor([[1, 1, 0, 0, 0, 2, 1], [0, 3, 3, 0, 3, 4, 0]])
    metric = EpisodeAccuracy(max_instances=4)
    metric.update(preds[:1], targets[:1], instances[:1])
    metric.update(preds[1:], targets[1:], instances[1:])
    correct, total = metric.compute()
    assert correct.tolist() == [[1, 1, 1, 0], [1, 1, 1, 0]]
    assert total.tolist() == [[3, 2, 1, 1], [2, 2, 1, 1]]
    # Pooled over episodes it is InstanceAccuracy.
    pooled = InstanceAccuracy(max_instances=4)
    pooled.update(preds, targets, instances)
    torch.testing.assert_close(pooled_accuracy(correct, total), pooled.compute())
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert metric.compute()[0].shape == (0, 4)


def test_string_labels_need_every_character() -> None:
    targets = torch.tensor([[[0, 1, 2, 3, 4], [4, 4, 4, 4, 4]]])
    preds = torch.tensor([[[0, 1, 2, 3, 4], [4, 4, 4, 4, 0]]])
    metric = EpisodeAccuracy(max_instances=2)
    metric.update(preds, targets, torch.tensor([[1, 2]]))
    correct, total = metric.compute()
    assert (correct.tolist(), total.tolist()) == ([[1, 0]], [[1, 1]])


def test_shape_errors_are_clear() -> None:
    metric = EpisodeAccuracy()
    with pytest.raises(ValueError, match="same shape"):
        metric.update(torch.zeros(1, 3), torch.zeros(1, 4), torch.ones(1, 3))
    with pytest.raises(ValueError, match="instances"):
        metric.update(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 4))
    with pytest.raises(ValueError, match="max_instances"):
        EpisodeAccuracy(max_instances=0)
    with pytest.raises(ValueError, match="integer presentation numbers"):
        metric.update(torch.zeros(1, 3), torch.zeros(1, 3), torch.full((1, 3), 1.7))
    with pytest.raises(ValueError, match="episodes, presentations"):
        bootstrap_interval(torch.zeros(3), torch.zeros(3))


def test_zero_based_instances_are_refused() -> None:
    """0-based presentation numbers would shift every column by one: refused at compute."""
    metric = EpisodeAccuracy(max_instances=3)
    metric.update(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="1 steps had presentation indices below 1"):
        metric.compute()


def test_ddp_reduction_concatenates_every_process_episodes() -> None:
    """The states are ``cat`` states: a sync gathers all ranks' episodes (no processes here:
    the gather is faked with rank 1's states, in the order torchmetrics syncs them)."""
    reductions = EpisodeAccuracy()._reductions
    assert all(reductions[name].__name__ == "dim_zero_cat" for name in ("correct", "total"))
    # sync_on_compute=False: compute() reads the synced state instead of syncing again.
    rank0 = EpisodeAccuracy(max_instances=2, sync_on_compute=False)
    rank1 = EpisodeAccuracy(max_instances=2)
    rank0.update(torch.tensor([[0, 1]]), torch.tensor([[0, 0]]), torch.tensor([[1, 2]]))
    rank0.update(torch.tensor([[1, 1]]), torch.tensor([[1, 1]]), torch.tensor([[1, 2]]))
    rank1.update(
        torch.tensor([[0, 0], [1, 1]]),
        torch.tensor([[1, 0], [1, 1]]),
        torch.tensor([[1, 1], [1, 2]]),
    )
    other = {"correct": torch.cat(rank1.correct), "total": torch.cat(rank1.total)}
    other["below_one"] = rank1.below_one
    order = iter(rank0._reductions)

    def gather(tensor: torch.Tensor, group: object = None) -> list[torch.Tensor]:
        return [tensor, other[next(order)]]

    rank0.sync(dist_sync_fn=gather, distributed_available=lambda: True)
    correct, total = rank0.compute()
    assert correct.tolist() == [[1, 0], [1, 1], [1, 0], [1, 1]]
    assert total.tolist() == [[1, 1], [1, 1], [2, 0], [1, 1]]
    # compute() restored this rank's own episodes afterwards.
    assert not rank0._is_synced and [t.shape for t in rank0.correct] == [(1, 2), (1, 2)]


def test_interval_contains_the_estimate_and_narrows_with_more_episodes() -> None:
    few = bootstrap_interval(*_random_episodes(40))
    many = bootstrap_interval(*_random_episodes(1000))
    for counts, interval in ((_random_episodes(40), few), (_random_episodes(1000), many)):
        estimate = pooled_accuracy(*counts)
        assert torch.all(interval[:, 0] <= estimate) and torch.all(estimate <= interval[:, 1])
        assert torch.all(interval[:, 0] < interval[:, 1])
    width_few, width_many = few[:, 1] - few[:, 0], many[:, 1] - many[:, 0]
    assert torch.all(width_many < width_few / 2)  # ~ 1/sqrt(episodes): 5x narrower


def test_interval_is_reproducible_and_seeded() -> None:
    counts = _random_episodes(50)
    assert torch.equal(bootstrap_interval(*counts), bootstrap_interval(*counts))
    assert not torch.equal(bootstrap_interval(*counts), bootstrap_interval(*counts, seed=1))
    # Chunking the resamples changes nothing.
    assert torch.equal(bootstrap_interval(*counts, chunk=7), bootstrap_interval(*counts, chunk=7))


def test_degenerate_counts() -> None:
    # Every episode identical: no spread, the interval is the point.
    correct = torch.tensor([[1, 2]]).repeat(30, 1)
    total = torch.tensor([[2, 2]]).repeat(30, 1)
    torch.testing.assert_close(
        bootstrap_interval(correct, total),
        torch.tensor([[0.5, 0.5], [1.0, 1.0]], dtype=torch.float64),
    )
    # A presentation no episode reached, and no episodes at all: NaN.
    interval = bootstrap_interval(torch.tensor([[1, 0]]), torch.tensor([[1, 0]]))
    assert interval[0].tolist() == [1.0, 1.0] and all(math.isnan(v) for v in interval[1].tolist())
    assert bootstrap_interval(torch.zeros(0, 3), torch.zeros(0, 3)).isnan().all()


def test_paper_intervals_in_percent() -> None:
    interval = torch.stack([torch.linspace(0, 0.9, 10), torch.linspace(0.1, 1.0, 10)], dim=1)
    columns = paper_intervals(interval.double())
    assert list(columns) == ["1st", "2nd", "3rd", "4th", "5th", "10th"]
    assert columns["1st"] == pytest.approx([0.0, 10.0])
    assert columns["10th"] == pytest.approx([90.0, 100.0])
