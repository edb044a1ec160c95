"""Omniglot streams: disjoint global class ids, held-out characters, determinism, bad groupings."""

from __future__ import annotations

import pytest
import torch

from continual import OmniglotAlphabetStream, OmniglotCharacterStream
from mann_lightning.data import load_omniglot
from mann_lightning.data.splits import NUM_CHARACTERS


def classes(stream) -> list[set[int]]:
    return [set(e.classes_in_this_experience) for e in stream]


def test_alphabet_stream_classes_and_held_out_characters(small_stream) -> None:
    arrays = load_omniglot(download=False)
    train, test = classes(small_stream.train_stream), classes(small_stream.test_stream)
    every = train + test
    for i, a in enumerate(every):
        for b in every[i + 1 :]:
            assert not a & b  # no class shared by two experiences (train or test)
    for number, (fit, held) in enumerate(zip(train, test, strict=True)):
        upright = {c for c in fit if c < NUM_CHARACTERS}
        assert {c % NUM_CHARACTERS for c in fit} == upright  # rotations of the same characters
        assert {c // NUM_CHARACTERS for c in fit} == {0, 1, 2, 3}
        assert all(c < NUM_CHARACTERS for c in held)  # held-out characters stay upright
        names = {arrays.alphabets[int(arrays.character_alphabet[c])] for c in upright | held}
        assert names == set(small_stream.alphabet_groups[number])
        total = len(upright) + len(held)
        assert len(held) == round(0.4 * total)
    experience = small_stream.train_stream[0]
    x, y, t = experience.dataset[0]
    assert x.shape == (1, 20, 20) and x.dtype == torch.uint8 and t == 0
    assert experience.episode_jitter == (0.1, 10.0)
    # a rotated class's images are the upright character's images turned by 90 degrees
    targets = torch.as_tensor(list(experience.dataset.targets))
    c = int(targets[0])
    upright = experience.dataset[int((targets == c).nonzero()[0])][0][0]
    turned = experience.dataset[int((targets == c + NUM_CHARACTERS).nonzero()[0])][0][0]
    assert torch.equal(turned, torch.rot90(upright, 1))


def test_background_and_evaluation_ids_never_overlap() -> None:
    stream = OmniglotAlphabetStream(groups=[["Latin"], [30], ["Korean", 31]], download=False)
    arrays = load_omniglot(download=False)
    is_background = arrays.is_background
    latin, first_eval, mixed = classes(stream.train_stream)
    assert all(is_background[c] for c in latin) and not any(is_background[c] for c in first_eval)
    assert not (latin | first_eval) & mixed
    assert stream.alphabet_groups[1] == [arrays.alphabets[30]]


def test_streams_are_deterministic_for_a_seed() -> None:
    a = OmniglotAlphabetStream(
        alphabets="evaluation", alphabets_per_experience=4, shuffle=True, seed=3, download=False
    )
    b = OmniglotAlphabetStream(
        alphabets="evaluation", alphabets_per_experience=4, shuffle=True, seed=3, download=False
    )
    c = OmniglotAlphabetStream(
        alphabets="evaluation", alphabets_per_experience=4, shuffle=True, seed=4, download=False
    )
    assert a.alphabet_groups == b.alphabet_groups and len(a.alphabet_groups) == 5
    assert classes(a.test_stream) == classes(b.test_stream)
    assert classes(a.test_stream) != classes(c.test_stream)


def test_character_stream_groups_and_held_out_drawers() -> None:
    stream = OmniglotCharacterStream(
        characters_per_experience=30,
        num_experiences=3,
        held_out="drawers",
        held_out_drawers=5,
        seed=1,
        download=False,
    )
    train, test = classes(stream.train_stream), classes(stream.test_stream)
    assert [len(t) for t in train] == [30, 30, 30] and train == test
    assert not train[0] & train[1]
    assert (
        len(stream.train_stream[0].dataset) == 30 * 15
        and len(stream.test_stream[0].dataset) == 30 * 5
    )
    by_characters = OmniglotCharacterStream(
        characters_per_experience=30, num_experiences=2, download=False
    )
    fit, held = classes(by_characters.train_stream), classes(by_characters.test_stream)
    assert [len(f) + len(h) for f, h in zip(fit, held, strict=True)] == [30, 30]
    assert not fit[0] & held[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": [["Latin"], []]}, "group 1 is empty"),
        ({"groups": []}, "groups is empty: the stream would have no experience"),
        ({"groups": [["Klingon"]]}, "Unknown alphabet 'Klingon'"),
        ({"groups": [["Greek", "Latin"], ["Greek"]]}, "'Greek' appears in groups 0 and 1"),
        ({"groups": [["Latin", 0, "Latin"]]}, "'Latin' appears twice in group 0"),
        ({"alphabets_per_experience": 10, "num_experiences": 9}, "num_experiences=9"),
        ({"held_out_fraction": 1.0}, "held_out_fraction"),
        ({"alphabets": "cyrillic"}, "Unknown alphabets"),
        ({"image_size": 200}, "OmniglotAlphabetStream: image_size 200 is larger than"),
        ({"alphabets_per_experience": True}, "alphabets_per_experience must be an integer >= 1"),
        ({"num_experiences": 1.0}, "num_experiences must be an integer >= 1, got 1.0"),
        ({"seed": "0"}, "seed must be an integer, got '0'"),
    ],
)
def test_bad_alphabet_groupings_are_clear_errors(kwargs: dict, message: str, omniglot) -> None:
    with pytest.raises(ValueError, match=message):
        OmniglotAlphabetStream(download=False, **kwargs)


def test_too_many_character_groups_is_a_clear_error(omniglot) -> None:
    with pytest.raises(ValueError, match="give 1 groups of 1000"):
        OmniglotCharacterStream(characters_per_experience=1000, num_experiences=2, download=False)
    for kwargs in ({"characters_per_experience": 2.5}, {"held_out_drawers": 1.0}):
        with pytest.raises(ValueError, match="OmniglotCharacterStream: .* must be an integer"):
            OmniglotCharacterStream(download=False, **kwargs)
