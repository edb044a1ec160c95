"""Tests for MANNClassifier's loss on batches given directly (mann_lightning/classifier.py)."""

from __future__ import annotations

import pytest
import torch

from mann_lightning.classifier import MANNClassifier
from mann_lightning.data.episodes import EpisodeBatch


def _batch(batch: int, time: int, classes: int, chars: int | None = None) -> EpisodeBatch:
    gen = torch.Generator().manual_seed(0)
    shape = (batch, time) if chars is None else (batch, time, chars)
    targets = torch.randint(0, classes, shape, generator=gen)
    label_width = classes if chars is None else chars * classes
    return EpisodeBatch(
        inputs=torch.rand(batch, time, 9, generator=gen),
        prev_labels=torch.zeros(batch, time, label_width),
        targets=targets,
        instances=torch.ones(batch, time, dtype=torch.long),
    )


@pytest.mark.parametrize("encoding", ["onehot", "string"])
def test_transposed_targets_are_refused(encoding: str) -> None:
    """A [time, batch] target tensor has as many labels as [batch, time] and used to give a
    plausible, wrong loss (with batch == time no shape can tell them apart)."""
    chars = 5 if encoding == "string" else None
    model = MANNClassifier(
        num_classes=5, input_size=9, label_encoding=encoding, memory="none", controller_size=6
    )
    batch = _batch(4, 3, 5, chars)
    outputs, _ = model(batch.inputs, batch.prev_labels)
    assert torch.isfinite(model.loss(outputs, batch))
    wrong = batch._replace(targets=batch.targets.transpose(0, 1).contiguous())
    with pytest.raises(ValueError, match=r"targets \[3, 4.*must be \[4, 3.*transpose"):
        model.loss(outputs, wrong)
    with pytest.raises(ValueError, match="must be"):
        model.loss(outputs, batch._replace(targets=batch.targets.flatten(0, 1)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": "5"}, "num_classes must be an integer >= 2 .*got '5'"),
        ({"num_classes": 2.5}, "num_classes must be an integer >= 2 .*got 2.5"),
        ({"num_classes": True}, "num_classes must be an integer >= 2 .*got True"),
        ({"num_classes": 5, "max_classes": 7.0}, "max_classes must be an integer or None"),
    ],
)
def test_class_counts_of_the_wrong_type_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MANNClassifier(input_size=9, memory="none", controller_size=6, **kwargs)
