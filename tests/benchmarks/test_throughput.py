"""``benchmarks/throughput.py`` stays runnable (a smoke run, not a timing test)."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_throughput_prints_a_row_per_model(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    argv = ["throughput.py", "--steps", "1", "--rounds", "1", "--warmup", "0", "--length", "4",
            "--compile", "--batch-size", "2", "--slots", "128", "256", "--end-to-end-steps", "0"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(BENCHMARKS / "throughput.py"), run_name="__main__")
    out = capsys.readouterr().out
    rates = re.findall(r"\(batch 2: 1024\^3 GEMM in turns with these rows: (\d+) GFLOP/s\)", out)
    assert len(rates) == 1 and int(rates[0]) > 0, out  # the floor's GEMM, timed in turns
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.split("|")[1:-1]] for row in rows[1:]]
    assert [(c[0], c[3]) for c in cells] == [
        ("LSTM", "128"), ("LRUA", "128"), ("LRUA-plain", "128"), ("NTM", "128"),
        ("sparse-LRUA", "128"), ("LRUA", "256"), ("sparse-LRUA", "256"),
    ]  # fmt: skip
    for c in cells:  # episodes/s, ms/step, GFLOP, floor and its fraction are all positive
        assert all(float(v) > 0 for v in c[4:]), c


def test_graph_mode_needs_a_gpu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--compile graph`` captures a CUDA graph: on a CPU, a clear error, not a crash."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", ["throughput.py", "--compile", "graph"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCHMARKS / "throughput.py"), run_name="__main__")
    assert exit_info.value.code == 2
    assert (
        "--compile graph captures a CUDA graph: it needs --device cuda" in capsys.readouterr().err
    )
    from train_steps import make_train_step

    with pytest.raises(ValueError, match="needs --device cuda"):
        make_train_step("LRUA", 2, 16, "graph", 4, "cpu")
