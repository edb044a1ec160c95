"""Fixtures of the continual-layer tests: a small Omniglot alphabet stream and tiny models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark
from torch.utils.data import TensorDataset

from continual import OmniglotAlphabetStream


@pytest.fixture(scope="session")
def small_stream(tmp_path_factory: pytest.TempPathFactory) -> OmniglotAlphabetStream:
    """Three experiences of two background alphabets each, with rotation classes."""
    from helpers.paths import omniglot_root

    root = omniglot_root()
    if root is None or not (root / "images_background.npz").is_file():
        pytest.skip(
            "Omniglot arrays not found: set MANN_DATA_DIR or provide ../shared/data/omniglot"
        )
    return OmniglotAlphabetStream(
        alphabets="background", alphabets_per_experience=2, num_experiences=3, rotations=True,
        max_translation=0.1, max_rotation=10.0, download=False,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_wandb_service():
    """Stop W&B's background service after a test that started it: a service outliving its
    test keeps that test's working folder and would write later runs' relative paths there."""
    yield
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is None:
        wandb.teardown()


def make_tensor_benchmark(experiences: int = 3, classes: int = 5, images: int = 4) -> Any:
    """``experiences`` experiences of ``classes`` classes of ``images`` random 20x20 images
    each (the same data as train and test stream): no Omniglot needed, built in milliseconds."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(experiences * classes).repeat_interleave(images)
    data = torch.rand(labels.numel(), 1, 20, 20, generator=generator)
    dataset = TensorDataset(data, labels)
    dataset.targets = labels
    return nc_benchmark(dataset, dataset, n_experiences=experiences, task_labels=False, seed=0)


@pytest.fixture
def tensor_benchmark() -> Callable[..., Any]:
    """:func:`make_tensor_benchmark`, to call with the sizes a test needs."""
    return make_tensor_benchmark
