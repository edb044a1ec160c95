"""``benchmarks/step_breakdown.py`` stays runnable and sorts products by shape (a smoke
run, not a timing test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import step_breakdown  # noqa: E402


def test_products_are_told_apart_by_calls_and_shapes() -> None:
    part = step_breakdown.product_part
    assert part([[800, 6400], [6400, 405]], 1).startswith("input projection")
    assert part([[800, 405], [405, 800]], 1).startswith("input projection")  # batch 16
    assert part([[800, 800], [800, 360]], 1).startswith("recurrent weight")  # batch 16
    assert part([[6400, 360], [360, 5]], 1) == "output layer"
    assert part([[16, 360], [360, 800]], 50) == "LSTM per-step products"
    assert part([[800, 16], [16, 360]], 49) == "LSTM per-step products"  # eager weight grad
    assert part([[128, 200], [200, 164]], 50) == "memory interface products"
    assert step_breakdown.part_of("mann_lrua::backward", [], 50) == "fused memory kernel, backward"


def test_breakdown_prints_parts_that_add_up(capsys: pytest.CaptureFixture[str]) -> None:
    step_breakdown.main(["--model", "LSTM", "--batch-size", "2", "--compile", "none",
                         "--threads", "1", "--steps", "1"])  # fmt: skip
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    cells = {row.split("|")[1].strip(): float(row.split("|")[2]) for row in rows[1:]}
    assert cells["LSTM per-step products"] > 0
    assert cells["input projection of all steps (forward, weight gradient)"] > 0
    parts = sum(v for k, v in cells.items() if not k.startswith(("total", "unprofiled")))
    assert parts == pytest.approx(cells["total under the profiler"], abs=0.1 * len(cells))
    assert cells["unprofiled step"] > 0


def test_bad_settings_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        step_breakdown.main(["--steps", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--steps" in err and "is not an integer of at least 1" in err
