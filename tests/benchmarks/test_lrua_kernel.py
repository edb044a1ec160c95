"""``benchmarks/lrua_kernel.py`` stays runnable (a smoke run, not a timing test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mann_lightning.memory.fused_lrua import fused_lrua_available

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import lrua_kernel  # noqa: E402


@pytest.mark.skipif(not fused_lrua_available(), reason="the fused kernel could not be built")
def test_lrua_kernel_prints_a_row_per_thread_count_and_batch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lrua_kernel.main(["--batch-size", "2", "3", "--threads", "1", "--steps", "2", "--repeats", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.split("|")[1:-1]] for row in rows[1:]]
    assert [c[:2] for c in cells] == [["1", "2"], ["1", "3"]]
    assert all(float(v) > 0 for c in cells for v in c[2:])
