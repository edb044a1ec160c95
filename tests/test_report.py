"""mann-report: runs side by side with intervals, paper rows, curves, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mann_lightning.report import main
from mann_lightning.report_curves import wall_at
from mann_lightning.report_table import format_cell, format_duration, single_run_markdown

ACCURACY = {"1st": 20.0, "2nd": 45.0, "3rd": 60.0, "4th": 70.0, "5th": 75.0, "10th": 90.0}
CI = {name: [value - 1.9, value + 1.9] for name, value in ACCURACY.items()}


def _result(folder: Path, **payload: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "test_results.json"
    file.write_text(json.dumps({"stage": "test", **payload}))
    return file


def _metrics_csv(folder: Path, wall: bool = True) -> Path:
    """A CSVLogger file: training rows every 10 steps (with time/wall_s), validation at 19, 39."""
    folder.mkdir(parents=True, exist_ok=True)
    header = (
        "epoch,step,"
        + ("time/wall_s," if wall else "")
        + "train/loss,val/acc_inst_2,val/acc_inst_10"
    )
    rows = []
    for step in range(9, 40, 10):
        rows.append(f"0,{step}," + (f"{step * 3.0}," if wall else "") + "1.0,,")
        if step in (19, 39):
            rows.append(f"0,{step}," + ("," if wall else "") + f",{step / 50},{step / 45}")
    (folder / "metrics.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return folder / "metrics.csv"


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    new = _result(
        tmp_path / "runs" / "mann" / "version_1",
        model="LSTM + LRUAMemory",
        accuracy_percent=ACCURACY,
        ci95_percent=CI,
        episodes=1000,
        checkpoint={
            "path": "runs/mann/checkpoints/best.ckpt",
            "global_step": 40,
            "wall_s": 5400.0,
            "train_log_dir": "runs/mann/version_0",
        },
    )
    old = _result(  # written before intervals existed
        tmp_path / "runs" / "lstm" / "version_0",
        model="LSTM (no memory)",
        accuracy_percent={**ACCURACY, "10th": float("nan")},
    )
    return [new, old]


def test_two_runs_side_by_side(two_runs: list[Path], capsys: pytest.CaptureFixture) -> None:
    assert main([str(p) for p in two_runs]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| run | 1st | 2nd | 3rd | 4th | 5th | 10th | episodes | step | wall time |"
    assert lines[2] == (
        "| LSTM + LRUAMemory (mann/version_1) | 20.0 [18.1, 21.9] | 45.0 [43.1, 46.9] "
        "| 60.0 [58.1, 61.9] | 70.0 [68.1, 71.9] | 75.0 [73.1, 76.9] | 90.0 [88.1, 91.9] "
        "| 1000 | 40 | 90.0 min |"
    )
    assert lines[3] == (
        "| LSTM (no memory) (lstm/version_0) | 20.0 | 45.0 | 60.0 | 70.0 | 75.0 | – | – | – | – |"
    )
    assert not any(line.startswith("| paper") for line in lines)
    assert any("bootstrap interval over test episodes" in line for line in lines)


def test_paper_rows_and_labels(two_runs: list[Path], capsys: pytest.CaptureFixture) -> None:
    main([*map(str, two_runs), "--paper", "table1", "--labels", "MANN", "LSTM"])
    out = capsys.readouterr().out
    assert "| paper: MANN (LRUA) | 36.4 | 82.8 | 91.0 | 92.6 | 94.9 | 98.1 | – | – | – |" in out
    assert "| paper: Human | – | 57.3 | – | – | – | 92.4 |" in out
    assert "Feedforward" not in out  # not transcribed
    assert "| paper: LSTM | 24.4 | 49.5 | 55.3 | 61.0 | 63.6 | 62.5 |" in out
    assert "| MANN | 20.0 [18.1, 21.9]" in out and "| LSTM | 20.0 |" in out
    main([str(two_runs[0]), "--paper", "table2-15"])
    out = capsys.readouterr().out
    assert "| paper: MANN (LRUA), LSTM controller | 0.1 | 62.6 | 79.3 | 86.6 | 88.7 | 95.3 |" in out
    assert "| paper: MANN (NTM), LSTM controller | 0.0 | 35.4 | 61.2 | 71.7 | 77.7 | 88.4 |" in out
    main([str(two_runs[0]), "--paper", "table2-5"])
    out = capsys.readouterr().out
    assert "paper:" not in out and "no row transcribed" in out


def test_knn_results_and_folders_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    knn = _result(
        tmp_path / "knn", model="kNN (raw pixels)", accuracy_percent=ACCURACY, episodes=500
    )
    main([str(knn.parent)])
    assert "| kNN (raw pixels) (knn) | 20.0 | 45.0 |" in capsys.readouterr().out


def test_cells() -> None:
    assert format_cell(45.0, [43.06, 46.94]) == "45.0 [43.1, 46.9]"
    assert format_cell(45.0, None) == format_cell(45.0, [None, None]) == "45.0"
    assert format_cell(float("nan"), [1, 2]) == format_cell(None) == "–"
    assert [format_duration(s) for s in (30, 600, 9000, None)] == ["30 s", "10.0 min", "2.5 h", "–"]


def test_single_run_markdown_names_the_checkpoint(two_runs: list[Path]) -> None:
    payload = json.loads(two_runs[0].read_text())
    text = single_run_markdown("LSTM + LRUAMemory", payload)
    assert text.startswith("| model | 1st |")
    assert (
        "Checkpoint: `runs/mann/checkpoints/best.ckpt` (step 40, training wall time 90.0 min)"
        in text
    )
    assert "over the 1000 test episodes" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("epoch,step\n0,1\n", "not a JSON result file"),
        ('{"stage": "val"}', "not a test result file"),
        ('{"per_step": {}, "x_dim": 1}', "a regression result"),
        ("[1, 2]", "a JSON object is expected"),
        ('{"accuracy_percent": {}}', "must map presentations to percentages"),
        ('{"accuracy_percent": {"1st": 20.0, "2nd": "high"}}', "accuracy_percent['2nd'] is 'high'"),
        ('{"accuracy_percent": {"1st": 20.0, "2nd": 1000.0}}', "a percentage in [0, 100]"),
        ('{"accuracy_percent": {"1st": NaN, "10th": null}}', "every accuracy_percent value is"),
        ('{"accuracy_percent": {"foo": 50}}', "none of the table's presentations"),
        ('{"accuracy_percent": {"1st": 50}, "checkpoint": "x"}', "'checkpoint' is 'x'"),
        ('{"accuracy_percent": {"1st": 50}, "ci95_percent": "x"}', "a JSON object is expected"),
        ('{"accuracy_percent": {"1st": 50}, "ci95_percent": {"1st": 3}}', "[low, high]"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str | None, message: str
) -> None:
    file = tmp_path / "results.json"
    if content is not None:
        file.write_text(content)
    with pytest.raises(SystemExit) as stop:
        main([str(file)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mann-report: error:") and message in err


def test_other_usage_errors_exit_2(two_runs: list[Path], capsys: pytest.CaptureFixture) -> None:
    a_file = two_runs[0] / "test_results.json" if two_runs[0].is_dir() else two_runs[0]
    for argv in (
        [str(two_runs[0]), "--labels", "a", "b"],
        [str(two_runs[0]), "--curves"],
        [str(two_runs[0]), "--paper", "table9"],
        [str(two_runs[0]), "--out", str(a_file)],
        [str(two_runs[0]), "--out", str(a_file.parent / "o"), "--curves", "--target", "nan"],
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "2 labels for 1 result files" in err and "--curves needs --out" in err
    assert "is a file; give a folder" in err and "--target nan: an accuracy" in err
    assert err.count("\n") == 5 and "invalid choice: 'table9'" in err  # one line each


def test_wall_time_interpolated_by_step() -> None:
    clock = ([9.0, 19.0, 29.0], [30.0, 60.0, 90.0])
    np.testing.assert_allclose(wall_at([14, 19, 39, 4], clock), [45.0, 60.0, 120.0, 15.0])
    np.testing.assert_allclose(wall_at([5, 50], ([10.0], [7.0])), [7.0, 7.0])


def test_curves_from_train_log_dir_and_explicit_metrics(
    two_runs: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    # The result names runs/mann/version_0 relative to where training ran: found from the
    # result file's folders, wherever the command runs.
    _metrics_csv(tmp_path / "runs" / "mann" / "version_0", wall=True)
    no_clock = _metrics_csv(tmp_path / "other", wall=False)
    monkeypatch.chdir(tmp_path / "runs")
    out = tmp_path / "report"
    argv = [*map(str, two_runs), "--out", str(out), "--curves", "--target", "82.8"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (out / "report.md").read_text().startswith("| run |")
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "LSTM (no memory) (lstm/version_0): no training metrics.csv found" in printed

    (out / "curves.png").unlink()
    mann_csv = tmp_path / "runs" / "mann" / "version_0" / "metrics.csv"
    assert (
        main([*map(str, two_runs), "--out", str(out), "--metrics", str(mann_csv), str(no_clock)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "has no time/wall_s column" in printed and "steps plot only" in printed
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_curves_without_any_clock_and_bad_metrics(
    two_runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    no_clock = _metrics_csv(tmp_path / "a", wall=False)
    out = tmp_path / "report"
    assert main([str(two_runs[1]), "--out", str(out), "--metrics", str(no_clock)]) == 0
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    for metrics in (["missing.csv"], [str(no_clock), str(no_clock)]):
        with pytest.raises(SystemExit) as stop:
            main([str(two_runs[1]), "--out", str(out), "--metrics", *metrics])
        assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "missing.csv: no such file" in err and "2 --metrics files for 1 result files" in err
    fresh = tmp_path / "fresh"  # a count mismatch is refused before report.md is written
    with pytest.raises(SystemExit):
        main([str(two_runs[1]), "--out", str(fresh), "--metrics", str(no_clock), str(no_clock)])
    assert not (fresh / "report.md").exists()
    # Nothing to draw at all: one line, exit code 2.
    with pytest.raises(SystemExit) as stop:
        main([str(two_runs[1]), "--out", str(out), "--curves"])
    assert stop.value.code == 2 and "no learning curve to draw" in capsys.readouterr().err


def test_curves_follow_a_resumed_run_through_its_sessions(tmp_path: Path) -> None:
    from mann_lightning.report_curves import run_curves, session_chain

    logs = tmp_path / "runs" / "mann"
    first = _metrics_csv(logs / "version_0")  # steps 9..39, validation at 19 and 39
    _metrics_csv(logs / "version_1", wall=False)  # a test run's folder: not a session
    resumed = logs / "version_2" / "metrics.csv"
    resumed.parent.mkdir(parents=True)
    resumed.write_text(  # resumed from the checkpoint of step 30: redoes 30..39, goes on
        "epoch,step,time/wall_s,train/loss,val/acc_inst_2,val/acc_inst_10\n"
        "1,39,100.0,1.0,,\n1,49,130.0,1.0,,\n1,59,160.0,0.9,,\n1,59,,,0.9,0.95\n"
    )
    assert session_chain(resumed) == [first, resumed]
    assert session_chain(first) == [first]
    curves, clock, _ = run_curves(resumed)
    assert curves["val/acc_inst_2"][0] == [19.0, 59.0]  # step 39 of version_0 was redone
    assert clock[0] == [9.0, 19.0, 29.0, 39.0, 49.0, 59.0]
    assert clock[1][:3] == [27.0, 57.0, 87.0] and clock[1][3:] == [100.0, 130.0, 160.0]
