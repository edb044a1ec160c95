"""The sampling benchmark runs end to end (tiny repeat count, synthetic images)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sampling.py"


def test_sampling_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mann_lightning.model")
    main = runpy.run_path(str(SCRIPT))["main"]
    assert main(["--device", "cpu", "--synthetic", "--repeats", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| omniglot | 5 | 50 |" in out and "| pool | 5 | 50 |" in out
    assert "sampling costs at most" in out
