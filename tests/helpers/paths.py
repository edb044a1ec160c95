"""Where the tests find Omniglot."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_OMNIGLOT = SHARED_DATA / "omniglot"


def omniglot_root() -> Path | None:
    """The Omniglot arrays folder: MANN_DATA_DIR, else ../shared/data/omniglot, else None."""
    env = os.environ.get("MANN_DATA_DIR")
    if env:
        return Path(env)
    return SHARED_OMNIGLOT if (SHARED_OMNIGLOT / "images_background.npz").is_file() else None
