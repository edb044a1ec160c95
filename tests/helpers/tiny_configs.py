"""Shrink a ``mann fit`` config (loaded YAML) to a model and data that run in seconds."""

from __future__ import annotations

from typing import Any


def shrink_demo_config(config: dict[str, Any]) -> dict[str, Any]:
    """A tiny LRUA model (controller 16, memory 8 x 8, 1 read) on 10x10, 3-way episodes of 2
    drawings per class, batches of 2, two training batches per epoch, one evaluation batch."""
    model = config["model"]["init_args"]
    model.update(controller_size=16)
    model["memory"]["init_args"].update(memory_size=8, word_size=8, num_reads=1)
    config["data"]["init_args"].update(
        image_size=10, num_classes=3, samples_per_class=2, batch_size=2,
        train_batches_per_epoch=2, val_batches=1, test_batches=1,
    )  # fmt: skip
    return config
