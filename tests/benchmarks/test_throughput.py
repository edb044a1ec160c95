"""``benchmarks/throughput.py`` stays runnable (a smoke run, not a timing test)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_throughput_prints_a_row_per_model(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    argv = ["throughput.py", "--steps", "1", "--rounds", "1", "--warmup", "0", "--length", "4"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(BENCHMARKS / "throughput.py"), run_name="__main__")
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == [
        "MANN-LRUA", "LRUA-plain", "MANN-NTM", "LSTM",
    ]  # fmt: skip
    assert all(float(row.split("|")[3]) > 0 for row in rows[1:])
