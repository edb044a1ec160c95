"""Episode sampling on synthetic images whose pixels spell out (character, drawer)."""

from __future__ import annotations

import math

import pytest
import torch

from mann_lightning.data import (
    NUM_STRINGS,
    code_to_string,
    decode_labels,
    encode_targets,
    random_affine,
    rotate90,
    sample_episodes,
    string_to_code,
)

C, D, S = 60, 20, 8


def _images() -> torch.Tensor:
    """``[C, D, S, S]`` uint8: pixel (0, 0) = character + 1, pixel (0, 1) = drawer + 1."""
    images = torch.zeros(C, D, S, S, dtype=torch.uint8)
    images[:, :, 0, 0] = torch.arange(1, C + 1)[:, None]
    images[:, :, 0, 1] = torch.arange(1, D + 1)[None, :]
    return images


def _decode(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = (inputs * 255).round().long()
    return pixels[..., 0] - 1, pixels[..., 1] - 1


def _sample(n: int = 5, s: int = 10, b: int = 32, seed: int = 0, **kwargs: object):
    generator = torch.Generator().manual_seed(seed)
    return sample_episodes(_images(), torch.arange(C), n, s, b, generator, **kwargs)


def test_shapes_and_types() -> None:
    batch = _sample(n=5, s=10, b=4)
    assert batch.inputs.shape == (4, 50, S * S) and batch.inputs.dtype == torch.float32
    assert batch.prev_labels.shape == (4, 50, 5) and batch.prev_labels.dtype == torch.float32
    assert batch.targets.shape == (4, 50) and batch.targets.dtype == torch.int64
    assert batch.instances.shape == (4, 50) and batch.instances.dtype == torch.int64
    strings = _sample(n=7, s=3, b=2, encoding="string")
    assert strings.prev_labels.shape == (2, 21, 25) and strings.targets.shape == (2, 21, 5)


@pytest.mark.parametrize("encoding", ["onehot", "string"])
def test_episode_structure(encoding: str) -> None:
    n, s = 6, 7
    batch = _sample(n=n, s=s, b=16, encoding=encoding)
    chars, drawers = _decode(batch.inputs)
    for b in range(16):
        classes = chars[b].unique()
        assert len(classes) == n
        labels = {}
        for c in classes.tolist():
            steps = (chars[b] == c).nonzero().flatten()
            assert len(steps) == s
            assert len(drawers[b, steps].unique()) == s  # distinct drawers
            assert torch.equal(batch.instances[b, steps], torch.arange(1, s + 1))
            target = batch.targets[b, steps]
            assert (target == target[0]).all()  # one label per class
            labels[c] = tuple(torch.atleast_1d(target[0]).tolist())
        assert len(set(labels.values())) == n  # distinct labels / strings
        if encoding == "onehot":
            assert sorted(v[0] for v in labels.values()) == list(range(n))


@pytest.mark.parametrize("encoding", ["onehot", "string"])
def test_previous_label_offset_and_round_trip(encoding: str) -> None:
    batch = _sample(n=5, s=4, b=8, encoding=encoding)
    assert (batch.prev_labels[:, 0] == 0).all()
    encoded = encode_targets(batch.targets, encoding, 5)
    assert torch.equal(batch.prev_labels[:, 1:], encoded[:, :-1])
    assert torch.equal(decode_labels(batch.prev_labels[:, 1:], encoding), batch.targets[:, :-1])
    if encoding == "string":
        groups = batch.prev_labels[:, 1:].view(8, 19, 5, 5)
        assert (groups.sum(-1) == 1).all()  # five independent one-hot characters


def test_string_codes_round_trip() -> None:
    codes = torch.arange(NUM_STRINGS)
    strings = code_to_string(codes)
    assert strings.shape == (NUM_STRINGS, 5) and strings.min() == 0 and strings.max() == 4
    assert torch.equal(string_to_code(strings), codes)
    assert len({tuple(row) for row in strings.tolist()}) == NUM_STRINGS


def test_labels_are_shuffled() -> None:
    batch = _sample(n=5, s=2, b=400, seed=3)
    chars, _ = _decode(batch.inputs)
    identity, first_zero = 0, 0
    for b in range(400):
        order = chars[b].unique()  # ascending character ids
        labels = [int(batch.targets[b][chars[b] == c][0]) for c in order.tolist()]
        identity += labels == list(range(5))
        first_zero += int(batch.targets[b, 0]) == 0
    assert identity < 20  # expected 400 / 120
    assert 40 < first_zero < 120  # expected 80
    assert batch.instances[:, 0].eq(1).all()


def test_seeding() -> None:
    a, b, c = _sample(seed=5), _sample(seed=5), _sample(seed=6)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a.inputs, c.inputs)


def test_more_samples_than_drawers_and_limits() -> None:
    batch = _sample(n=2, s=30, b=4)
    chars, drawers = _decode(batch.inputs)
    for b in range(4):
        for c in chars[b].unique().tolist():
            counts = torch.bincount(drawers[b][chars[b] == c], minlength=D)
            assert counts.max() <= 2 and counts.sum() == 30
    with pytest.raises(ValueError, match="num_classes=61 exceeds the 60 classes"):
        _sample(n=61)
    many = torch.arange(C).repeat(60)  # 3600 classes
    gen = torch.Generator().manual_seed(0)
    big = sample_episodes(_images(), many, NUM_STRINGS, 1, 1, gen, "string")
    assert len({tuple(r) for r in big.targets[0].tolist()}) == NUM_STRINGS
    with pytest.raises(ValueError, match="3125 distinct five-character strings"):
        sample_episodes(_images(), many, NUM_STRINGS + 1, 1, 1, gen, "string")


def test_rotation_classes() -> None:
    turns = torch.arange(4).repeat_interleave(C)
    generator = torch.Generator().manual_seed(1)
    images = _images()
    batch = sample_episodes(
        images, torch.arange(C).repeat(4), 8, 3, 8, generator, class_rotations=turns
    )
    pixels = (batch.inputs * 255).round().to(torch.uint8).view(8, 24, S, S)
    seen = set()
    for b in range(8):
        for t in range(24):
            matches = [k for k in range(4) if torch.rot90(pixels[b, t], -k).flatten()[0] > 0]
            assert len(matches) == 1
            k = matches[0]
            upright = torch.rot90(pixels[b, t], -k)
            char, drawer = int(upright[0, 0]) - 1, int(upright[0, 1]) - 1
            assert torch.equal(upright, images[char, drawer])
            seen.add(k)
    assert seen == {0, 1, 2, 3}


def test_rotate90_matches_torch() -> None:
    images = torch.rand(4, 5, 5)
    turned = rotate90(images, torch.tensor([0, 1, 2, 3]))
    for k in range(4):
        assert torch.equal(turned[k], torch.rot90(images[k], k))


def test_jitter_ranges() -> None:
    images = torch.zeros(500, 20, 20)
    images[:, 9:11, 9:11] = 1.0  # a blob at the centre
    same = random_affine(images, torch.Generator().manual_seed(0), 0.0, 0.0)
    assert same is images
    moved = random_affine(images, torch.Generator().manual_seed(0), 0.1, 10.0)
    grid = torch.arange(20.0)
    mass = moved.sum((1, 2))
    cy = (moved.sum(2) * grid).sum(1) / mass
    cx = (moved.sum(1) * grid).sum(1) / mass
    shift = ((cx - 9.5) ** 2 + (cy - 9.5) ** 2).sqrt()
    assert shift.max() <= 2 * math.sqrt(2) + 0.05  # at most 2 px along each axis
    assert shift.mean() > 0.5  # and it does move
    assert torch.allclose(mass, torch.full_like(mass, 4.0), atol=0.05)
    rotated = random_affine(images, torch.Generator().manual_seed(0), 0.0, 10.0)
    assert torch.allclose(rotated.sum((1, 2)), torch.full((500,), 4.0), atol=0.1)


def test_thread_setting_is_restored() -> None:
    before = torch.get_num_threads()
    _sample(max_translation=0.1, max_rotation=10.0)
    assert torch.get_num_threads() == before
