"""OmniglotEpisodes' constructor refuses settings of the wrong type at once
(mann_lightning/data/omniglot_settings.py), not when the first batch is drawn."""

from __future__ import annotations

import pytest

from mann_lightning.data import OmniglotEpisodes


@pytest.mark.parametrize(
    ("name", "value"),
    [("num_classes", 2.5), ("batch_size", True), ("max_classes", 5.5), ("seed", 1.5),
     ("samples_per_class", "10"), ("val_batches", 2.0)],
)  # fmt: skip
def test_integer_settings_must_be_integers(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"OmniglotEpisodes: {name} must be an integer"):
        OmniglotEpisodes(**{name: value})


@pytest.mark.parametrize("name", ["prefetch", "rotations", "download"])
def test_switches_must_be_booleans(name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name} must be true or false, got 'no'"):
        OmniglotEpisodes(**{name: "no"})


def test_defaults_and_no_max_classes_are_accepted() -> None:
    OmniglotEpisodes(max_classes=None, num_classes=5, batch_size=2)
