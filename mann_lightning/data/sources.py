"""Finding a copy of Omniglot (compact arrays, official zips or their folders) to read.

Each of the two official halves (``background``: ids 1-964, 30 alphabets; ``evaluation``:
ids 965-1623, 20 alphabets) is read from the first of these present in a folder:

1. ``images_<half>.npz`` (compact arrays, ``images`` bool ``[C, 20, 105, 105]``, True = paper),
2. ``images_<half>/<Alphabet>/characterNN/IIII_DD.png`` (an extracted official zip),
3. ``images_<half>.zip`` (the official zip, read without extracting),

looking in the folder itself and in its ``omniglot-py/`` subfolder (torchvision's layout).
Folders are searched in the order: explicit ``root``, ``$MANN_DATA_DIR``, then
``<cache>/omniglot`` (where downloads go). Every file is checked for completeness: a
corrupted, truncated or partial copy raises :class:`OmniglotDataError` naming the file (the
readers are in :mod:`.readers`).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .download import OFFICIAL_FILES, FileSpec, download_official
from .errors import OmniglotDataError, OmniglotNotFoundError
from .readers import HALVES, ID_RANGES, RawHalf, read_npz, read_official


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The writable cache folder: ``cache_dir``, else ``$MANN_CACHE_DIR``, else ``~/.cache/mann_lightning``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("MANN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mann_lightning"


@dataclass(frozen=True)
class Source:
    """One half of Omniglot found on disk."""

    half: str
    kind: Literal["npz", "folder", "zip"]
    path: Path

    def fingerprint(self) -> str:
        """Cheap identity of the file(s): path, size and modification times (no reading)."""
        stat = self.path.stat()
        parts = [self.kind, str(self.path.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
        if self.kind == "folder":
            for alphabet in sorted(os.scandir(self.path), key=lambda e: e.name):
                if alphabet.is_dir():
                    parts += [f"{c.name}:{c.stat().st_mtime_ns}" for c in os.scandir(alphabet)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def find_half(folder: Path, half: str) -> Source | None:
    """The best source of ``half`` directly in ``folder`` or its ``omniglot-py/``, if any."""
    for base in (folder, folder / "omniglot-py"):
        stem = base / f"images_{half}"
        if stem.with_suffix(".npz").is_file():
            return Source(half, "npz", stem.with_suffix(".npz"))
        if stem.is_dir() and any(stem.iterdir()):
            return Source(half, "folder", stem)
        if stem.with_suffix(".zip").is_file():
            return Source(half, "zip", stem.with_suffix(".zip"))
    return None


def search_locations(
    root: str | os.PathLike[str] | None, cache_dir: Path
) -> list[tuple[str, Path | None]]:
    """The folders searched, in order, with a label saying where each comes from."""
    env = os.environ.get("MANN_DATA_DIR")
    return [
        ("root argument", Path(root).expanduser() if root is not None else None),
        ("$MANN_DATA_DIR", Path(env).expanduser() if env else None),
        ("cache folder", cache_dir / "omniglot"),
    ]


def resolve_sources(
    root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    files: Mapping[str, FileSpec] | None = None,
    progress: bool = True,
) -> dict[str, Source]:
    """Find both halves (``root``, ``$MANN_DATA_DIR``, cache), downloading them if allowed.

    Raises:
        OmniglotNotFoundError: Nothing found and download disabled or failed; the message
            names every place searched and how to provide the files.
    """
    cache = cache_root(cache_dir)
    report = []
    for label, folder in search_locations(root, cache):
        if folder is None:
            report.append(f"  - {label}: not set")
            continue
        found = {h: find_half(folder, h) for h in HALVES}
        if all(found.values()):
            if root is not None and label != "root argument":
                warnings.warn(
                    f"Omniglot is not in the given root: {report[0].split(': ', 1)[1]}; "
                    f"using the copy in {label} {folder} instead. Fix root (or leave it unset) "
                    "to silence this.",
                    stacklevel=2,
                )
            return {h: s for h, s in found.items() if s is not None}
        have = [f"{s.path.name} ({s.kind})" for s in found.values() if s is not None]
        missing = "" if folder.is_dir() else ", the folder does not exist"
        if folder.is_file():
            missing = ", a file: give the folder that holds the Omniglot files"
        elif any(folder.glob("images_*_small*.zip")):
            missing = ", the small subsets (images_*_small*.zip) are not used"
        report.append(
            f"  - {label}: {folder} ({'only ' + ', '.join(have) if have else 'nothing'}{missing})"
        )
    failure = "download=False"
    if download:
        try:
            download_official(cache / "omniglot", files=files, progress=progress)
            found = {h: find_half(cache / "omniglot", h) for h in HALVES}
            if all(found.values()):
                return {h: s for h, s in found.items() if s is not None}
            failure = "the download did not provide both halves"
        except OmniglotDataError as error:
            failure = f"download failed: {error}"
    names = ", ".join(OFFICIAL_FILES)
    raise OmniglotNotFoundError(
        "Omniglot was not found. Searched, in order:\n"
        + "\n".join(report)
        + f"\nand could not download it ({failure}).\nTo provide it, put images_background.npz "
        f"+ images_evaluation.npz (compact arrays), or the official {names} (or their "
        "extracted folders, or torchvision's omniglot-py/), into a folder and pass root=... or "
        "set MANN_DATA_DIR to it; or allow download=True with internet access to fetch the "
        f"official zips into {cache / 'omniglot'}."
    )


def read_source(source: Source) -> RawHalf:
    """Read one half completely; raise :class:`OmniglotDataError` if anything is missing."""
    first, last = ID_RANGES[source.half]
    raw = read_npz(source.path, source.half) if source.kind == "npz" else read_official(source.path)
    expected = np.arange(first, last + 1)
    if raw.ids.shape != expected.shape or (raw.ids != expected).any():
        missing = np.setdiff1d(expected, raw.ids)
        raise OmniglotDataError(
            f"{source.path} is incomplete: it holds {len(raw.ids)} characters, expected ids "
            f"{first}-{last} ({len(missing)} missing, e.g. {missing[:5].tolist()}). Replace it "
            "with a complete copy."
        )
    return raw
