"""learning_curves: curves from CSVLogger files and mann-continual results, one PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mann_lightning.learning_curves import load_curve, main, resolve

HEADER = "epoch,step,train/loss,val/acc_inst_2,val/acc_inst_3\n"


def _csv_run(root: Path, name: str, version: int, rows: str) -> Path:
    folder = root / name / f"version_{version}"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(HEADER + rows)
    return folder / "metrics.csv"


def test_csv_curves_skip_empty_rows_and_label_by_folder(tmp_path: Path) -> None:
    rows = "0,9,1.5,,\n0,9,,0.25,0.5\n1,19,1.2,,\n1,19,,0.4,0.6\n"
    file = _csv_run(tmp_path, "wipe_episode", 0, rows)
    _csv_run(tmp_path, "wipe_episode", 2, rows.replace("0.4", "0.9"))
    label, (steps, values), _ = load_curve(file, "val/acc_inst_2")
    assert (label, steps, values) == ("wipe_episode/version_0", [9.0, 19.0], [0.25, 0.4])
    assert resolve(tmp_path / "wipe_episode").parent.name == "version_2"  # highest version
    _, (_, third), _ = load_curve(tmp_path / "wipe_episode", "val/acc_inst_3")
    assert third == [0.5, 0.6]
    with pytest.raises(KeyError, match="val/acc_inst_9"):
        load_curve(file, "val/acc_inst_9")


def test_continual_results_give_the_diagonal(tmp_path: Path) -> None:
    run = tmp_path / "stream_never"
    run.mkdir()
    first = [[0.1, 0.2], [0.3, 0.4]]
    second = [[0.5, 0.6], [0.7, 0.8]]
    (run / "results.json").write_text(json.dumps({"accuracy_by_presentation": [first, second]}))
    label, curve, xlabel = load_curve(run, "val/acc_inst_2")
    assert (label, curve) == ("stream_never", ([0.0, 1.0], [0.5, 0.8]))
    assert load_curve(run, "val/acc_inst_1")[1] == ([0.0, 1.0], [0.1, 0.4])
    assert xlabel.startswith("experience")


def test_command_writes_one_png(tmp_path: Path) -> None:
    a = _csv_run(tmp_path, "a", 0, "0,9,,0.25,\n")
    b = _csv_run(tmp_path, "b", 0, "0,9,,0.3,\n")
    out = main([str(a), str(b), "--metric", "val/acc_inst_2", "--out", str(tmp_path / "c.png")])
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="1 labels for 2 runs"):
        main([str(a), str(b), "--labels", "x", "--out", str(tmp_path / "d.png")])
