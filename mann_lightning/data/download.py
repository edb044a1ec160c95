"""Download of the official Omniglot zips with checksum verification.

The URLs are the ones :class:`torchvision.datasets.Omniglot` uses. The SHA-256 values are
those published in TensorFlow Datasets' ``url_checksums/omniglot.txt`` (together with the
file sizes); the MD5 values are the ones torchvision publishes. Both are verified. Override
them (e.g. for a mirror) by editing :data:`OFFICIAL_FILES` or by passing ``files=`` to
:func:`download_official`.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

from .errors import OmniglotDataError

BASE_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"


class FileSpec(TypedDict, total=False):
    """Where to fetch one file and how to check it. Every checksum given is verified."""

    url: str
    sha256: str
    md5: str
    size: int


OFFICIAL_FILES: dict[str, FileSpec] = {
    "images_background.zip": {
        "url": f"{BASE_URL}/images_background.zip",
        "sha256": "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640",
        "md5": "68d2efa1b9178cc56df9314c21c6e718",
        "size": 9464212,
    },
    "images_evaluation.zip": {
        "url": f"{BASE_URL}/images_evaluation.zip",
        "sha256": "1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee",
        "md5": "6b91aef0f799c5bb55b94e3f2daec811",
        "size": 6462886,
    },
}
"""Official files fetched when no local copy is found: ``file name -> FileSpec``."""


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Return the hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, verifying size and checksums before it appears there.

    The bytes go to ``dest + '.part'`` first; only a fully verified file is renamed to
    ``dest``, so an interrupted or wrong download never looks like a valid data file.

    Args:
        url: Address to fetch (``http``, ``https`` or ``file``).
        dest: Final path of the file; its folder is created.
        sha256: Expected SHA-256 hex digest, or ``None`` to skip that check.
        md5: Expected MD5 hex digest, or ``None`` to skip that check.
        size: Expected size in bytes, or ``None`` to skip that check.
        progress: Show a ``tqdm`` progress bar on stderr.
        timeout: Socket timeout in seconds.

    Returns:
        The path of the verified file.

    Raises:
        OmniglotDataError: The download failed or a check did not match.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length else size
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress
            ) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    for h in hashes.values():
                        h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as error:
        part.unlink(missing_ok=True)
        raise OmniglotDataError(f"Download of {url} to {dest} failed: {error}") from error
    problems = []
    if size is not None and received != size:
        problems.append(f"size {received} bytes, expected {size}")
    for name, expected in (("sha256", sha256), ("md5", md5)):
        actual = hashes[name].hexdigest()
        if expected is not None and actual != expected.lower():
            problems.append(f"{name} {actual}, expected {expected}")
    if problems:
        part.unlink(missing_ok=True)
        raise OmniglotDataError(
            f"Download of {url} is corrupted or not the expected file ({'; '.join(problems)}); "
            f"nothing was written to {dest}. Retry, or fetch the file by hand and put it there."
        )
    os.replace(part, dest)
    return dest


def download_official(
    dest_dir: str | os.PathLike[str],
    files: Mapping[str, FileSpec] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> list[Path]:
    """Fetch and verify every file of ``files`` (default :data:`OFFICIAL_FILES`) into ``dest_dir``.

    Files already present with the right SHA-256 (or MD5) are not fetched again.

    Returns:
        The paths of the verified files, in the order of ``files``.
    """
    files = OFFICIAL_FILES if files is None else files
    paths = []
    for name, spec in files.items():
        path = Path(dest_dir) / name
        if path.is_file() and _matches(path, spec):
            paths.append(path)
            continue
        paths.append(
            download_file(
                spec["url"],
                path,
                sha256=spec.get("sha256"),
                md5=spec.get("md5"),
                size=spec.get("size"),
                progress=progress,
                timeout=timeout,
            )
        )
    return paths


def _matches(path: Path, spec: FileSpec) -> bool:
    """Whether an existing file passes the checksum of ``spec`` (``False`` without one)."""
    for name in ("sha256", "md5"):
        expected = spec.get(name)
        if expected:
            return file_digest(path, name) == str(expected).lower()
    return False
