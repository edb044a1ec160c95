"""Fixtures of the data-layer tests: the shared Omniglot copy and a private cache folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mann_lightning.data import OmniglotArrays, load_omniglot

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def _data_dir() -> Path | None:
    env = os.environ.get("MANN_DATA_DIR")
    if env:
        return Path(env)
    default = SHARED / "omniglot"
    return default if (default / "images_background.npz").is_file() else None


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point MANN_CACHE_DIR at a session temp folder: tests never write to ~/.cache."""
    cache = tmp_path_factory.mktemp("mann_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MANN_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The Omniglot arrays (MANN_DATA_DIR, else ../shared/data/omniglot)."""
    found = _data_dir()
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
