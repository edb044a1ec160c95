"""Fixtures of the data-layer tests: the shared Omniglot copy and the official zip sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.paths import SHARED_DATA as SHARED
from helpers.paths import omniglot_root

from mann_lightning.data import OmniglotArrays, load_omniglot


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The Omniglot arrays (MANN_DATA_DIR, else ../shared/data/omniglot); the root conftest
    already points MANN_CACHE_DIR at a session temp folder."""
    found = omniglot_root()
    if found is None or not (found / "images_background.npz").is_file():
        pytest.skip(
            "Omniglot arrays not found: set MANN_DATA_DIR or provide ../shared/data/omniglot"
        )
    return found


@pytest.fixture(scope="session")
def arrays(data_dir: Path) -> OmniglotArrays:
    """All of Omniglot at 20x20 (preprocessed once per session into the private cache)."""
    return load_omniglot(root=data_dir, download=False)


@pytest.fixture(scope="session")
def zip_sample() -> Path:
    """The official ``images_background_small1.zip``."""
    path = SHARED / "omniglot-zip-sample" / "images_background_small1.zip"
    if not path.is_file():
        pytest.skip(f"official zip sample not found at {path}")
    return path
