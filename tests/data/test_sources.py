"""Loading Omniglot: counts, alphabets, preprocessing, official zips/folders, cache, errors."""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mann_lightning.data import (
    OmniglotArrays,
    OmniglotDataError,
    OmniglotNotFoundError,
    load_omniglot,
    read_official,
    resolve_sources,
)
from mann_lightning.data.cache import shrink
from mann_lightning.data.sources import read_source


def _link_arrays(data_dir: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("images_background.npz", "images_evaluation.npz"):
        (folder / name).symlink_to((data_dir / name).resolve())
    return folder


def test_counts_and_alphabets(arrays: OmniglotArrays, data_dir: Path) -> None:
    assert arrays.images.shape == (1623, 20, 20, 20)
    assert arrays.images.dtype == torch.uint8
    assert torch.equal(arrays.character_ids, torch.arange(1, 1624))
    assert int(arrays.is_background.sum()) == 964
    assert len(arrays.alphabets) == 50
    table = json.loads((data_dir / "alphabets.json").read_text())
    entries = table["background"] + table["evaluation"]
    assert arrays.alphabets == [e["alphabet"] for e in entries]
    for index, entry in enumerate(entries):
        rows = arrays.alphabet_characters(entry["alphabet"])
        assert rows.tolist() == list(range(entry["first_id"] - 1, entry["last_id"]))
        assert (arrays.character_alphabet[rows] == index).all()
    ink = arrays.to_float()
    assert ink.max() == 1.0 and 0.02 < ink.mean() < 0.2  # ink is the minority


def test_preprocessing_is_area_average_of_ink(arrays: OmniglotArrays, data_dir: Path) -> None:
    with np.load(data_dir / "images_evaluation.npz") as data:
        raw = data["images"][[0, 100, 658]]  # ids 965, 1065, 1623
    ink = ~raw
    bins = [(i * 105 // 20, -(-(i + 1) * 105 // 20)) for i in range(20)]
    expected = np.array(
        [
            [[ink[c, d, a:b, e:f].mean() for e, f in bins] for a, b in bins]
            for c in range(3)
            for d in range(20)
        ]
    ).reshape(3, 20, 20, 20)
    got = arrays.to_float()[[964, 1064, 1622]].numpy()
    assert np.abs(got - expected).max() <= 0.5 / 255 + 1e-6


def test_official_zip_matches_arrays(
    zip_sample: Path, data_dir: Path, arrays: OmniglotArrays
) -> None:
    raw = read_official(zip_sample)
    assert len(raw.ids) == 2720 // 20
    assert raw.ink.shape == (136, 20, 105, 105)
    with np.load(data_dir / "images_background.npz") as data:
        reference = ~data["images"][raw.ids - 1]
    assert np.array_equal(raw.ink, reference)
    names = [arrays.alphabets[i] for i in arrays.character_alphabet[raw.ids - 1].tolist()]
    assert raw.alphabets == names
    assert torch.equal(torch.from_numpy(shrink(raw.ink, 20)), arrays.images[raw.ids - 1])


def test_extracted_folder_in_torchvision_layout(zip_sample: Path, tmp_path: Path) -> None:
    base = tmp_path / "omniglot-py"
    with zipfile.ZipFile(zip_sample) as archive:
        archive.extractall(base)
    (base / "images_background_small1").rename(base / "images_background")
    shutil.copy(zip_sample, base / "images_evaluation.zip")
    sources = resolve_sources(root=tmp_path, download=False)
    assert sources["background"].kind == "folder"
    assert sources["evaluation"].kind == "zip"
    from_folder = read_official(sources["background"].path)
    from_zip = read_official(zip_sample)
    assert np.array_equal(from_folder.ids, from_zip.ids)
    assert np.array_equal(from_folder.ink, from_zip.ink)
    # the sample is only part of the background half: refused, never used silently
    with pytest.raises(OmniglotDataError, match="incomplete"):
        read_source(sources["background"])


def test_resolution_order(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _link_arrays(data_dir, tmp_path / "a"), _link_arrays(data_dir, tmp_path / "b")
    cache = tmp_path / "cache"
    _link_arrays(data_dir, cache / "omniglot")
    monkeypatch.setenv("MANN_DATA_DIR", str(second))
    assert resolve_sources(first, cache, download=False)["background"].path.parent == first
    assert resolve_sources(None, cache, download=False)["evaluation"].path.parent == second
    monkeypatch.delenv("MANN_DATA_DIR")
    with pytest.warns(UserWarning, match="not in the given root.*does not exist.*cache folder"):
        found = resolve_sources(tmp_path / "nothing", cache, download=False)
    assert found["background"].path.parent == cache / "omniglot"
    with pytest.warns(UserWarning, match="not in the given root"):  # an explicit root is said
        resolve_sources(tmp_path, cache, download=False)


def test_offline_error_names_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MANN_DATA_DIR", raising=False)
    root, cache = tmp_path / "empty", tmp_path / "cache"
    root.mkdir()
    with pytest.raises(OmniglotNotFoundError) as info:
        load_omniglot(root=root, cache_dir=cache, download=False)
    message = str(info.value)
    for part in (str(root), "$MANN_DATA_DIR: not set", str(cache / "omniglot"), "download=True"):
        assert part in message


def test_truncated_npz_is_named(data_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    content = (data_dir / "images_background.npz").read_bytes()
    (root / "images_background.npz").write_bytes(content[: len(content) // 2])
    (root / "images_evaluation.npz").symlink_to((data_dir / "images_evaluation.npz").resolve())
    with pytest.raises(OmniglotDataError, match="images_background.npz.*corrupted or truncated"):
        load_omniglot(root=root, cache_dir=tmp_path / "cache", download=False)
    assert not list((tmp_path / "cache").glob("preprocessed/*.npz"))


def test_corrupted_zip_is_named(zip_sample: Path, tmp_path: Path) -> None:
    content = bytearray(zip_sample.read_bytes())
    with zipfile.ZipFile(zip_sample) as archive:
        info = archive.infolist()[5]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start, start + info.compress_size):
        content[offset] ^= 0xFF
    bad = tmp_path / "images_background.zip"
    bad.write_bytes(bytes(content))
    with pytest.raises(OmniglotDataError, match="images_background.zip") as caught:
        read_official(bad)
    assert f"at {info.filename!r}" in str(caught.value)  # the damaged member, not the one before


def test_a_file_as_root_and_the_small_zips_are_said(
    zip_sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANN_DATA_DIR", raising=False)
    small = tmp_path / "small"
    small.mkdir()
    (small / "images_background_small1.zip").symlink_to(zip_sample.resolve())
    with pytest.raises(OmniglotNotFoundError) as info:
        load_omniglot(root=zip_sample, cache_dir=tmp_path / "cache", download=False)
    assert f"{zip_sample} (nothing, a file: give the folder" in str(info.value)
    with pytest.raises(OmniglotNotFoundError, match=r"small subsets .* are not used"):
        load_omniglot(root=small, cache_dir=tmp_path / "cache", download=False)


def test_second_load_uses_cache(arrays: OmniglotArrays, data_dir: Path) -> None:
    cache = Path(os.environ["MANN_CACHE_DIR"])  # a session temp folder (tests/conftest.py)
    start = time.perf_counter()
    again = load_omniglot(root=data_dir, download=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert torch.equal(again.images, arrays.images)
    assert len(list((cache / "preprocessed").glob("omniglot-20px-*.npz"))) == 1
