"""Reading one half of Omniglot: the compact ``.npz`` arrays or an official zip / folder.

The readers return :class:`RawHalf` (full-resolution ink, official ids, alphabet names) and
raise :class:`~.errors.OmniglotDataError` naming the file when it is corrupted, truncated or
partial. Which file to read is decided in :mod:`.sources`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import numpy as np

from .errors import OmniglotDataError

HALVES = ("background", "evaluation")
ID_RANGES = {"background": (1, 964), "evaluation": (965, 1623)}
NUM_DRAWERS = 20
_PNG = re.compile(r"(?:^|/)([^/]+)/character\d+/(\d+)_(\d+)\.png$")


@cache
def alphabet_table() -> dict[str, list[tuple[str, int, int]]]:
    """Official alphabets per half as ``(name, first_id, last_id)``, ordered by id."""
    with open(Path(__file__).with_name("alphabets.json")) as handle:
        raw = json.load(handle)
    return {h: [(a["alphabet"], a["first_id"], a["last_id"]) for a in raw[h]] for h in HALVES}


@dataclass
class RawHalf:
    """Full-resolution images of some characters, as read from a source.

    Attributes:
        ids: Official character ids ``[C]`` (1-1623), ascending.
        ink: ``[C, 20, H, W]`` bool, True = ink; drawer ``k`` is file suffix ``k + 1``.
        alphabets: Alphabet folder name of each character, length ``C``.
    """

    ids: np.ndarray
    ink: np.ndarray
    alphabets: list[str]


def read_npz(path: Path, half: str) -> RawHalf:
    """Read ``images_<half>.npz`` (checked against a ``SHA256SUMS`` next to it, if present)."""
    sums = path.with_name("SHA256SUMS")
    if sums.is_file():
        listed = dict(
            reversed(line.split()) for line in sums.read_text().splitlines() if line.strip()
        )
        if (
            path.name in listed
            and hashlib.sha256(path.read_bytes()).hexdigest() != listed[path.name]
        ):
            raise OmniglotDataError(f"{path} does not match its checksum in {sums}: corrupted.")
    try:
        with np.load(path) as data:
            images = np.asarray(data["images"])
    except Exception as error:
        raise OmniglotDataError(
            f"Could not read {path} ({type(error).__name__}: {error}): the file is corrupted or "
            "truncated. Replace it with a fresh copy."
        ) from error
    first, last = ID_RANGES[half]
    if images.ndim != 4 or images.shape[:2] != (last - first + 1, NUM_DRAWERS):
        raise OmniglotDataError(
            f"{path}: 'images' has shape {images.shape}, expected ({last - first + 1}, 20, H, W)."
        )
    ids = np.arange(first, last + 1)
    names = [n for n, lo, hi in alphabet_table()[half] for _ in range(lo, hi + 1)]
    ink = ~images if images.dtype == np.bool_ else images == 0
    return RawHalf(ids=ids, ink=ink, alphabets=names)


def _members(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """``(relative name, reader of its bytes)`` of every PNG of an official zip or extracted
    folder."""
    if path.is_dir():
        for file in sorted(path.rglob("*.png")):
            yield file.relative_to(path).as_posix(), file.read_bytes
        return
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".png") and "__MACOSX" not in info.filename:
                yield info.filename, partial(archive.read, info)


def read_official(path: Path) -> RawHalf:
    """Read an official zip or folder (``<Alphabet>/characterNN/IIII_DD.png``), complete characters only."""
    from PIL import Image

    images: dict[int, dict[int, np.ndarray]] = {}
    alphabet_of: dict[int, str] = {}
    name = "?"
    try:
        for name, read in _members(path):  # read after naming it: an error names its file
            match = _PNG.search(name)
            if match is None:
                continue
            alphabet, char_id, drawer = match[1], int(match[2]), int(match[3])
            with Image.open(io.BytesIO(read())) as image:
                images.setdefault(char_id, {})[drawer] = np.asarray(image.convert("L")) < 128
            alphabet_of[char_id] = alphabet
    except Exception as error:
        raise OmniglotDataError(
            f"Could not read {path} (at {name!r}: {type(error).__name__}: {error}): the file is "
            "corrupted or truncated. Replace it with a fresh copy."
        ) from error
    if not images:
        raise OmniglotDataError(f"{path} holds no Omniglot PNGs (<Alphabet>/characterNN/*.png).")
    ids = np.array(sorted(images), dtype=np.int64)
    bad = [i for i in ids if sorted(images[i]) != list(range(1, NUM_DRAWERS + 1))]
    if bad:
        raise OmniglotDataError(
            f"{path} is incomplete: {len(bad)} characters lack some of the 20 drawings "
            f"(e.g. id {bad[0]} has {sorted(images[bad[0]])})."
        )
    shapes = {img.shape for i in ids for img in images[i].values()}
    if len(shapes) != 1:
        raise OmniglotDataError(f"{path}: images of different sizes {sorted(shapes)}.")
    ink = np.stack([np.stack([images[i][d + 1] for d in range(NUM_DRAWERS)]) for i in ids])
    return RawHalf(ids=ids, ink=ink, alphabets=[alphabet_of[i] for i in ids])
