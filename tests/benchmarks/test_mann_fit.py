"""``benchmarks/mann_fit.py`` times the real ``mann fit`` from the steps it logs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers.mann_runs import TINY_CONFIG

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import mann_fit  # noqa: E402


def test_median_leaves_out_the_compile_window_and_validation_spikes() -> None:
    points = [(49, 10.0), (99, 60.0), (149, 65.0), (199, 85.0), (249, 90.0), (299, 95.5)]
    # windows after the first: 100, 400 (a validation), 100, 110 ms per step
    assert mann_fit.median_ms_per_step(points) == pytest.approx(100.0)
    with pytest.raises(SystemExit, match="too few logged steps"):
        mann_fit.median_ms_per_step(points[:2])


def test_a_log_without_wall_time_is_explained(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,step,train/loss\n0,1,0.5\n")
    with pytest.raises(SystemExit, match="RunClock"):
        mann_fit.logged_steps(metrics)


@pytest.mark.long  # 20-45 s; make test-long runs it
def test_a_short_real_run_is_timed(tmp_path: Path, omniglot: Path) -> None:
    config = tmp_path / "tiny.yaml"
    text = TINY_CONFIG.format(max_steps=5_000).replace(
        "  callbacks:\n", "  callbacks:\n    - class_path: mann_lightning.run_clock.RunClock\n"
    )
    config.write_text(text)
    timing = mann_fit.time_fit(config, "auto", minutes=0.15, extra=[])
    assert timing.compiled == "eager"  # auto: 5,000 steps planned are too few to compile
    assert timing.steps > 10 and 0 < timing.ms_per_step < 1000
    assert mann_fit.batch_size(config) == 4
