"""Download with checksum verification, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mann_lightning.data import (
    OFFICIAL_FILES,
    OmniglotDataError,
    OmniglotNotFoundError,
    download_file,
    download_official,
    resolve_sources,
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(zip_sample: Path, tmp_path: Path) -> Iterator[str]:
    """Base URL of a server on 127.0.0.1 serving the sample zip; stopped after the test."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(zip_sample, served / zip_sample.name)
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _digests(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()


def test_official_table_is_complete() -> None:
    for name in ("images_background.zip", "images_evaluation.zip"):
        spec = OFFICIAL_FILES[name]
        assert spec["url"].endswith("/" + name)
        assert len(spec["sha256"]) == 64 and len(spec["md5"]) == 32


def test_download_with_right_checksums(server: str, zip_sample: Path, tmp_path: Path) -> None:
    sha256, md5 = _digests(zip_sample)
    dest = tmp_path / "cache" / "sample.zip"
    url = f"{server}/{zip_sample.name}"
    path = download_file(
        url, dest, sha256=sha256, md5=md5, size=zip_sample.stat().st_size, timeout=10
    )
    assert path == dest and dest.read_bytes() == zip_sample.read_bytes()
    assert not dest.with_name("sample.zip.part").exists()


def test_download_with_wrong_checksum_leaves_nothing(
    server: str, zip_sample: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "sample.zip"
    with pytest.raises(OmniglotDataError, match="sha256"):
        download_file(
            f"{server}/{zip_sample.name}", dest, sha256="0" * 64, progress=False, timeout=10
        )
    assert list(tmp_path.iterdir()) == [tmp_path / "served"]


def test_missing_url_is_a_clear_error(server: str, tmp_path: Path) -> None:
    with pytest.raises(OmniglotDataError, match="404"):
        download_file(f"{server}/nope.zip", tmp_path / "x.zip", progress=False, timeout=10)
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.part").exists()


def test_resolution_downloads_into_cache(
    server: str, zip_sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANN_DATA_DIR", raising=False)
    sha256, _ = _digests(zip_sample)
    spec = {"url": f"{server}/{zip_sample.name}", "sha256": sha256}
    files = {"images_background.zip": spec, "images_evaluation.zip": spec}
    cache = tmp_path / "cache"
    sources = resolve_sources(tmp_path / "empty", cache, download=True, files=files, progress=False)
    assert {s.kind for s in sources.values()} == {"zip"}
    assert sources["background"].path == cache / "omniglot" / "images_background.zip"
    assert sources["evaluation"].path.read_bytes() == zip_sample.read_bytes()
    # already there and verified: not fetched again (the server is not needed)
    assert download_official(
        cache / "omniglot", files={"images_background.zip": {**spec, "url": "http://127.0.0.1:9/x"}}
    )


def test_resolution_with_bad_checksum_fails_clearly(
    server: str, zip_sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANN_DATA_DIR", raising=False)
    spec = {"url": f"{server}/{zip_sample.name}", "sha256": "f" * 64}
    files = {"images_background.zip": spec, "images_evaluation.zip": spec}
    cache = tmp_path / "cache"
    with pytest.raises(OmniglotNotFoundError, match="download failed.*sha256") as info:
        resolve_sources(None, cache, download=True, files=files, progress=False)
    assert "$MANN_DATA_DIR: not set" in str(info.value)
    assert not list((cache / "omniglot").iterdir())
