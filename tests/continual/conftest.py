"""Fixtures of the continual-layer tests: a small Omniglot alphabet stream and tiny models."""

from __future__ import annotations

import pytest

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
