"""Suite-wide set-up: data from MANN_DATA_DIR (or ../shared), caches and runs in temp folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"


def omniglot_root() -> Path | None:
    """The Omniglot arrays folder: MANN_DATA_DIR, else ../shared/data/omniglot, else None."""
    env = os.environ.get("MANN_DATA_DIR")
    if env:
        return Path(env)
    return SHARED_OMNIGLOT if (SHARED_OMNIGLOT / "images_background.npz").is_file() else None


@pytest.fixture(scope="session", autouse=True)
def suite_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Never write to ~/.cache or the repository; W&B offline; shared data when present."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MANN_CACHE_DIR", str(tmp_path_factory.mktemp("mann_cache")))
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        root = omniglot_root()
        if root is not None:
            patch.setenv("MANN_DATA_DIR", str(root))
        yield


@pytest.fixture
def omniglot() -> Path:
    """Skip tests that need Omniglot when no copy is available."""
    root = omniglot_root()
    if root is None or not (root / "images_background.npz").is_file():
        pytest.skip(
            "Omniglot arrays not found: set MANN_DATA_DIR or provide ../shared/data/omniglot"
        )
    return root
