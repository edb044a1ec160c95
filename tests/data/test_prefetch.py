"""Prefetching streams: the same batches, in the same order, as drawing them in line."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from mann_lightning.data import EpisodeBatch, OmniglotEpisodes
from mann_lightning.regression.data import GPEpisodes


def _module(data_dir: Path, prefetch: bool, **kwargs: object) -> OmniglotEpisodes:
    module = OmniglotEpisodes(
        root=str(data_dir),
        download=False,
        prefetch=prefetch,
        train_batches_per_epoch=5,
        val_batches=3,
        test_batches=4,
        **kwargs,  # type: ignore[arg-type]
    )
    module.setup("fit")
    return module


def _equal(a: EpisodeBatch, b: EpisodeBatch) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("stage", ["train", "val", "test"])
def test_prefetch_gives_the_same_stream(data_dir: Path, stage: str) -> None:
    streams = {}
    for prefetch in (False, True):
        module = _module(data_dir, prefetch)
        loader = getattr(module, f"{stage}_dataloader")()
        streams[prefetch] = [list(loader), list(loader)]  # two epochs
        if stage == "train":
            assert module.train_batches_drawn == 10
    assert len(streams[True][0]) == len(streams[False][0])
    for plain, ahead in zip(streams[False], streams[True], strict=True):
        assert all(_equal(a, b) for a, b in zip(plain, ahead, strict=True))
    if stage == "train":  # the second epoch continues the stream, it does not repeat it
        assert not _equal(streams[True][0][0], streams[True][1][0])


def test_batches_are_drawn_in_a_background_thread(data_dir: Path) -> None:
    module = _module(data_dir, True)
    threads: list[str] = []
    draw = module.batch

    def recording(stage, index):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return draw(stage, index)

    module.batch = recording  # type: ignore[method-assign]
    assert len(list(module.train_dataloader())) == 5
    assert threads[0] == threading.current_thread().name  # the first batch: nothing ahead yet
    assert all(name.startswith("mann-prefetch") for name in threads[1:]) and len(threads) == 5


def test_a_shape_change_redraws_the_batch_drawn_ahead(data_dir: Path) -> None:
    """A curriculum step between batches: the next batch has the new shape, as without prefetch."""
    shapes = {}
    for prefetch in (False, True):
        module = _module(data_dir, prefetch)
        seen = []
        for i, batch in enumerate(module.train_dataloader()):
            seen.append(batch)
            if i == 1:
                module.set_episode_shape(3, 4)
        shapes[prefetch] = seen
    assert [b.inputs.shape[1] for b in shapes[True]] == [50, 50, 12, 12, 12]
    assert all(_equal(a, b) for a, b in zip(shapes[False], shapes[True], strict=True))


def test_a_moved_stream_position_redraws(data_dir: Path) -> None:
    """Moving the stream counter (as resuming does) is honoured by the next batch."""
    plain, ahead = _module(data_dir, False), _module(data_dir, True)
    for module in (plain, ahead):
        iterator = iter(module.train_dataloader())
        next(iterator)
        module.train_batches_drawn = 40
        module.second = next(iterator)  # type: ignore[attr-defined]
        iterator.close()
    assert _equal(plain.second, ahead.second)  # type: ignore[attr-defined]
    assert _equal(ahead.second, ahead.batch("train", 40))  # type: ignore[attr-defined]


def test_an_error_while_drawing_ahead_reaches_the_caller(data_dir: Path) -> None:
    module = _module(data_dir, True)
    draw = module.batch

    def failing(stage, index):  # type: ignore[no-untyped-def]
        if index == 2:
            raise RuntimeError("broken batch 2")
        return draw(stage, index)

    module.batch = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="broken batch 2"):
        list(module.train_dataloader())


def test_gp_episodes_prefetch_the_same_batches() -> None:
    streams = []
    for prefetch in (False, True):
        module = GPEpisodes(train_batches_per_epoch=4, prefetch=prefetch)
        module.setup("fit")
        streams.append(list(module.train_dataloader()))
    for a, b in zip(*streams, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_stream_left_open_at_exit_prints_nothing() -> None:
    """An iterator still drawing ahead when the interpreter exits shuts down quietly (it
    printed an "Exception ignored ... AttributeError" traceback)."""
    script = (
        "from mann_lightning.regression.data import GPEpisodes\n"
        "module = GPEpisodes(train_batches_per_epoch=4, prefetch=True)\n"
        "module.setup('fit')\n"
        "stream = iter(module.train_dataloader())\n"
        "first = next(stream)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
