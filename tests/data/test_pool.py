"""Ragged class pools: grouping, distinct vs repeated draws, groups per episode, conversion."""

from __future__ import annotations

import pytest
import torch

from mann_lightning.data.pool import ClassPool, sample_pool_episodes, to_model_inputs


def ragged_pool(counts: list[int], groups: list[int] | None = None) -> ClassPool:
    """Class ``k`` (label ``10 * k``) has ``counts[k]`` images; image feature 0 = its index."""
    labels = torch.tensor([10 * k for k, c in enumerate(counts) for _ in range(c)])
    features = torch.arange(labels.numel(), dtype=torch.float32).unsqueeze(1).repeat(1, 4)
    per_image = (
        None if groups is None else torch.tensor([groups[label // 10] for label in labels.tolist()])
    )
    return ClassPool.from_tensors(features, labels, per_image)


def test_pool_groups_images_by_class() -> None:
    pool = ragged_pool([3, 1, 5], groups=[0, 1, 0])
    assert pool.counts.tolist() == [3, 1, 5]
    assert pool.class_ids.tolist() == [0, 10, 20]
    assert pool.groups.tolist() == [0, 1, 0]
    assert pool.images[:, :, 0].tolist() == [[0, 1, 2, 0, 0], [3, 0, 0, 0, 0], [4, 5, 6, 7, 8]]
    assert (
        len(ClassPool.from_tensors(pool.images[0], torch.tensor([1, 1, 2, 2, 2]), min_count=3)) == 1
    )


def step_images(pool: ClassPool, batch) -> dict[tuple[int, int], list[int]]:
    """``{(episode, label): [image index, ...]}`` in presentation order."""
    shown: dict[tuple[int, int], list[int]] = {}
    for b in range(batch.inputs.shape[0]):
        for t in range(batch.inputs.shape[1]):
            shown.setdefault((b, int(batch.targets[b, t])), []).append(int(batch.inputs[b, t, 0]))
    return shown


def test_distinct_draws_when_a_class_has_enough_images_repeats_otherwise() -> None:
    pool = ragged_pool([6, 2, 4, 9])
    owner = {
        i: k
        for k, c in enumerate(pool.counts.tolist())
        for i in range(sum(pool.counts[:k].tolist()), sum(pool.counts[: k + 1].tolist()))
    }
    batch = sample_pool_episodes(pool, 4, 4, 32, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (32, 16, 4) and batch.prev_labels.shape == (32, 16, 4)
    for (_, _), images in step_images(pool, batch).items():
        classes = {owner[i] for i in images}
        assert len(classes) == 1  # one label, one class
        count = pool.counts[classes.pop()].item()
        if count >= 4:
            assert len(set(images)) == 4  # without replacement
        else:
            assert set(images) <= set(range(6, 8)) and len(images) == 4  # class 1: repeats
    # instances count presentations 1..4 of every label
    assert sorted(batch.instances[0].tolist()) == sorted([1, 2, 3, 4] * 4)


def test_group_counts_fix_the_classes_per_group() -> None:
    pool = ragged_pool([3] * 6, groups=[0, 0, 0, 1, 1, 1])
    batch = sample_pool_episodes(
        pool, 4, 3, 50, torch.Generator().manual_seed(1), group_counts=(3, 1)
    )
    for (_b, _), images in step_images(pool, batch).items():
        assert len(set(images)) == 3
    groups = (batch.inputs[..., 0] >= 9).long()  # images 9..17 are group 1's
    per_episode = [
        len({int(x) // 3 for x, g in zip(batch.inputs[b, :, 0], groups[b], strict=True) if g})
        for b in range(50)
    ]
    assert per_episode == [1] * 50
    with pytest.raises(ValueError, match="needs 4 classes of group 1"):
        sample_pool_episodes(pool, 5, 3, 2, group_counts=(1, 4))


def test_sampling_is_deterministic_and_strings_are_distinct() -> None:
    pool = ragged_pool([5] * 8)
    a = sample_pool_episodes(pool, 5, 2, 4, torch.Generator().manual_seed(3), "string")
    b = sample_pool_episodes(pool, 5, 2, 4, torch.Generator().manual_seed(3), "string")
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert a.targets.shape == (4, 10, 5) and a.prev_labels.shape == (4, 10, 25)
    assert torch.equal(a.prev_labels[:, 0], torch.zeros(4, 25))


def test_too_few_classes_and_jitter_without_side_are_errors() -> None:
    pool = ragged_pool([2, 2])
    with pytest.raises(ValueError, match="num_classes=3 exceeds the 2 classes"):
        sample_pool_episodes(pool, 3, 1, 1)
    with pytest.raises(ValueError, match="image_side"):
        sample_pool_episodes(pool, 2, 1, 1, max_translation=0.1)


def test_to_model_inputs_rules() -> None:
    assert to_model_inputs(torch.full((2, 1, 20, 20), 255, dtype=torch.uint8), 400).max() == 1.0
    rgb = torch.zeros(3, 3, 28, 28)
    rgb[:, 0] = 1.0  # red channel only: grey level 1/3
    out = to_model_inputs(rgb, 100)
    assert out.shape == (3, 100)
    torch.testing.assert_close(out, torch.full((3, 100), 1 / 3))
    assert to_model_inputs(torch.rand(2, 7), 7).shape == (2, 7)  # flat features as they are
    with pytest.raises(ValueError, match="input_size=50"):
        to_model_inputs(torch.rand(2, 1, 28, 28), 50)
