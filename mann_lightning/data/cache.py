"""Preprocess Omniglot once to the model's resolution and cache it on disk.

The 105x105 binary images become ink maps (ink = 1.0, paper = 0.0), are shrunk by area
averaging (an antialiased resize: each output pixel is the ink fraction of its area) and
stored as ``uint8`` (``round(255 * ink)``) in ``<cache>/preprocessed/``, one ``.npz`` per
(source fingerprint, image size). The source folder is never written to.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..value_checks import is_positive_int
from .download import FileSpec
from .sources import HALVES, cache_root, read_source, resolve_sources

log = logging.getLogger(__name__)
CACHE_VERSION = 1


@dataclass
class OmniglotArrays:
    """All 1623 Omniglot characters at one resolution, with their alphabets.

    Attributes:
        images: ``[C, 20, S, S]`` uint8, ``0`` = paper, ``255`` = full ink; row ``c`` is the
            character with official id ``character_ids[c]``, column ``k`` its drawer ``k + 1``.
        character_ids: Official ids ``[C]`` (1-964 background, 965-1623 evaluation).
        character_alphabet: Index into :attr:`alphabets` of each character, ``[C]`` int64.
        alphabets: The 50 alphabet names, background alphabets first, in id order.
        is_background: ``[C]`` bool, True for the 964 characters of ``images_background``.
        source: Human-readable description of the files the images came from.
    """

    images: Tensor
    character_ids: Tensor
    character_alphabet: Tensor
    alphabets: list[str]
    is_background: Tensor
    source: str = ""

    @property
    def image_size(self) -> int:
        """Side ``S`` of the square images."""
        return int(self.images.shape[-1])

    def to_float(self) -> Tensor:
        """Images as float32 in ``[0, 1]``, ink = 1.0."""
        return self.images.float().div_(255.0)

    def alphabet_characters(self, alphabet: int | str) -> Tensor:
        """Row indices of the characters of one alphabet (by index or name), ascending."""
        index = self.alphabets.index(alphabet) if isinstance(alphabet, str) else alphabet
        return torch.nonzero(self.character_alphabet == index).flatten()


MAX_IMAGE_SIZE = 105  # the side of Omniglot's drawings


def check_image_size(owner: str, image_size: object) -> None:
    """A clear ``ValueError`` unless ``image_size`` is an integer in ``[1, 105]``.

    Omniglot's drawings are 105x105 pixels: a larger side would only upsample them, at a
    cost that grows with its square (``image_size=5000`` asks for 51 GB).
    """
    if not is_positive_int(image_size):
        raise ValueError(f"{owner}: image_size must be a positive integer, got {image_size!r}.")
    if image_size > MAX_IMAGE_SIZE:
        raise ValueError(
            f"{owner}: image_size {image_size} is larger than Omniglot's {MAX_IMAGE_SIZE}x"
            f"{MAX_IMAGE_SIZE} drawings; use at most {MAX_IMAGE_SIZE} (the paper uses 20)."
        )


def shrink(ink: np.ndarray, image_size: int, chunk: int = 2048) -> np.ndarray:
    """Area-resize bool ink maps ``[..., H, W]`` to ``[..., S, S]`` uint8 (255 = ink)."""
    flat = ink.reshape(-1, 1, *ink.shape[-2:])
    out = np.empty((flat.shape[0], image_size, image_size), dtype=np.uint8)
    for start in range(0, flat.shape[0], chunk):
        block = torch.from_numpy(flat[start : start + chunk]).float()
        small = F.interpolate(block, size=(image_size, image_size), mode="area")
        out[start : start + chunk] = small.mul_(255).round_().to(torch.uint8)[:, 0].numpy()
    return out.reshape(*ink.shape[:-2], image_size, image_size)


def load_omniglot(
    root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    image_size: int = 20,
    download: bool = True,
    files: Mapping[str, FileSpec] | None = None,
    progress: bool = True,
) -> OmniglotArrays:
    """Load all of Omniglot at ``image_size``, from the disk cache when possible.

    Args:
        root: Folder holding the data (searched first); see :mod:`.sources`.
        cache_dir: Writable cache folder; default ``$MANN_CACHE_DIR`` or
            ``~/.cache/mann_lightning``.
        image_size: Side of the square output images (20 in the paper).
        download: Fetch the official zips into the cache if no copy is found.
        files: Override of :data:`~.download.OFFICIAL_FILES` for the download.
        progress: Show a progress bar while downloading.

    Raises:
        OmniglotNotFoundError: No data found or downloadable.
        OmniglotDataError: A data file is corrupted, truncated or incomplete.
    """
    check_image_size("load_omniglot", image_size)
    sources = resolve_sources(root, cache_dir, download, files, progress)
    key = hashlib.sha256(
        f"v{CACHE_VERSION}|{image_size}|".encode()
        + "|".join(sources[h].fingerprint() for h in HALVES).encode()
    ).hexdigest()[:20]
    description = ", ".join(f"{s.path} ({s.kind})" for s in sources.values())
    path = cache_root(cache_dir) / "preprocessed" / f"omniglot-{image_size}px-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                return _arrays({k: data[k] for k in data.files}, description)
        except Exception as error:  # our own cache file: rebuild it
            log.warning("Ignoring unreadable cache file %s (%s); rebuilding it.", path, error)
    log.info("Preprocessing Omniglot from %s to %dx%d ...", description, image_size, image_size)
    halves = [read_source(sources[h]) for h in HALVES]
    names = list(dict.fromkeys(a for h in halves for a in h.alphabets))
    content = {
        "images": np.concatenate([shrink(h.ink, image_size) for h in halves]),
        "character_ids": np.concatenate([h.ids for h in halves]).astype(np.int64),
        "character_alphabet": np.array([names.index(a) for h in halves for a in h.alphabets]),
        "alphabets": np.array(names),
        "is_background": np.concatenate(
            [np.full(len(h.ids), i == 0) for i, h in enumerate(halves)]
        ),
    }
    _write_atomic(path, content)
    return _arrays(content, description)


def _arrays(content: Mapping[str, np.ndarray], source: str) -> OmniglotArrays:
    """Wrap the cached arrays as :class:`OmniglotArrays`."""
    return OmniglotArrays(
        images=torch.from_numpy(np.ascontiguousarray(content["images"])),
        character_ids=torch.from_numpy(content["character_ids"].astype(np.int64)),
        character_alphabet=torch.from_numpy(content["character_alphabet"].astype(np.int64)),
        alphabets=[str(a) for a in content["alphabets"]],
        is_background=torch.from_numpy(content["is_background"].astype(bool)),
        source=source,
    )


def _write_atomic(path: Path, content: Mapping[str, np.ndarray]) -> None:
    """Write an ``.npz`` so that readers never see a partial file (best effort if read-only)."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **content)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        log.warning("Could not write the Omniglot cache %s (%s); set MANN_CACHE_DIR.", path, error)
