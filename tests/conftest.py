"""Suite-wide set-up: data from MANN_DATA_DIR (or ../shared), caches and runs in temp folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers.paths import omniglot_root


@pytest.fixture(scope="session", autouse=True)
def suite_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Never write to ~/.cache or the repository; W&B offline; shared data when present."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MANN_CACHE_DIR", str(tmp_path_factory.mktemp("mann_cache")))
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        patch.setenv("WANDB_INIT_TIMEOUT", "300")  # a busy machine starts wandb-core slowly
        root = omniglot_root()
        if root is not None:
            patch.setenv("MANN_DATA_DIR", str(root))
        yield


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add overhead (and stall on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def omniglot() -> Path:
    """Skip tests that need Omniglot when no copy is available."""
    root = omniglot_root()
    if root is None or not (root / "images_background.npz").is_file():
        pytest.skip(
            "Omniglot arrays not found: set MANN_DATA_DIR or provide ../shared/data/omniglot"
        )
    return root
