"""W&B logging and figures of stream runs: the wandb 0.31 traps, PNG files, offline run files,
and a crashed run resumed into the same W&B run with steps that only increase."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import wandb
import yaml
from avalanche.logging import WandBLogger
from helpers.wandb_records import logged_keys, records
from PIL import Image

from continual.cli import main
from continual.figures import FIGURES, write_figures
from continual.runner import StreamRunner
from continual.wandb_logger import SIDE_FILE, X_AXIS, StreamWandBLogger

REPO = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location(
    "continual_test_cli", Path(__file__).with_name("test_cli.py")
)
_CLI_TESTS = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_CLI_TESTS)
TINY = _CLI_TESTS.TINY  # the tiny stream of test_cli.py
P02 = "PresentationAcc_Exp/eval_phase/test_stream/Exp001/P02"
RESULTS = {  # 3 experiences, hand-made; forgetting of 0: max(0.8, 0.6) - 0.5 = 0.3
    "experiences": ["a", "b", "c"],
    "accuracy_matrix": [[0.8, 0.2, 0.2], [0.6, 0.7, 0.2], [0.5, 0.6, 0.9]],
    "accuracy_by_presentation": [
        [[0.2] * 3] * 3,
        [[0.8, 0.2, 0.2], [0.6, 0.7, 0.2], [0.5, 0.6, 0.9]],
        [[0.9, None, 0.3]] * 3,
    ],
    "untrained_accuracy_by_presentation": [[0.2] * 3, [0.2] * 3, [0.2] * 3],
    "forgetting": {"mean": 0.2, "per_experience": [0.3, 0.1, None]},
    "backward_transfer": {"mean": -0.2, "per_experience": [-0.3, -0.1, None]},
    "forward_transfer": {"mean": None, "per_experience": [None, 0.0, 0.0]},
}


def tiny_config(folder: Path) -> Path:
    config = json.loads(json.dumps(TINY))
    config["benchmark"]["init_args"]["num_experiences"] = 2
    config["episodes"]["train_batches"] = 2
    config["loggers"] = [{"class_path": "continual.wandb_logger.StreamWandBLogger"}]
    path = folder / "tiny_wandb.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def history(path: Path) -> list[dict[str, object]]:
    """Every history row of an offline run file: ``{key: value}`` with ``_step``."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for payload in records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            items = record.history.item
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items})
    return rows


def init_config(path: Path) -> dict[str, object]:
    """The ``config`` given to ``wandb.init`` (it travels in the file's ``run`` record)."""
    from wandb.proto import wandb_internal_pb2

    for payload in records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "run":
            items = record.run.config.update
            return {i.key: json.loads(i.value_json) for i in items}
    return {}


def run_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def test_stock_logger_fails_on_wandb_031_and_ours_converts(tmp_path: Path) -> None:
    with pytest.raises(AttributeError, match="generate_id"):  # gone from wandb.util too
        WandBLogger(dir=str(tmp_path), params={"mode": "disabled"})
    stock = WandBLogger(dir=str(tmp_path), params={"mode": "disabled", "id": "stock"})
    try:
        with pytest.raises(AttributeError, match="viz"):  # ContinualAI/avalanche#1674
            stock.log_single_metric("acc", 0.5, 0)
    finally:
        wandb.finish()
    ours = StreamWandBLogger()  # nothing starts before bind_run or the first row
    assert ours.run is None and wandb.run is None
    assert ours.convert(torch.tensor(0.25)) == 0.25 and ours.convert(3) == 3.0
    table = ours.convert(torch.tensor([[0.5, 0.25], [0.75, 1.0]]))  # the stock: a histogram
    assert isinstance(table, wandb.Table) and table.data == [[0.5, 0.25], [0.75, 1.0]]
    assert table.columns == ["0", "1"]
    assert isinstance(ours.convert(torch.zeros(2, 2, 2)), wandb.Histogram)
    assert ours.convert("text") is None


def test_figures_from_a_results_dict(tmp_path: Path) -> None:
    rows = []

    class Recorder:
        def log_row(self, row: dict, iterations: int) -> None:
            rows.append((row, iterations))

    paths = write_figures(RESULTS, tmp_path / "figures", [Recorder(), object()], iterations=7)
    assert list(paths) == list(FIGURES)
    for name, path in paths.items():
        assert path == tmp_path / "figures" / f"{name}.png"
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 150
    (row, iterations), = rows  # fmt: skip
    assert iterations == 7
    assert {f"figures/{name}" for name in FIGURES} <= set(row)
    table = row["results/accuracy_matrix"]
    assert table.columns == ["after", "0", "1", "2"]
    assert [r[1:] for r in table.data] == RESULTS["accuracy_matrix"]
    assert row["results/forgetting"] == 0.2 and row["results/backward_transfer"] == -0.2
    assert "results/forward_transfer" not in row  # its mean is None


def test_tiny_stream_writes_pngs_and_a_wandb_run(tmp_path: Path, omniglot, one_thread) -> None:
    run_dir = tmp_path / "run"
    main(["--config", str(tiny_config(tmp_path)), "--run_dir", str(run_dir)])
    for name in FIGURES:
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 1000
    (path,) = run_files(run_dir)
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=False)["run"]["extra"]["wandb"]
    assert path.name == f"run-{saved['id']}.wandb"
    config = init_config(path)  # from config.yaml
    assert config["episodes"]["train_batches"] == 2, config
    keys = logged_keys(path)
    expected = {P02, X_AXIS, "TrainingExperience", "Loss_Epoch/train_phase/train_stream"}
    expected |= {f"figures/{name}" for name in FIGURES} | {"results/accuracy_matrix"}
    # media (images, tables) are stored as nested keys: figures/transfer/path, ...
    logged = keys["history"] | {k.rsplit("/", 1)[0] for k in keys["history"]}
    assert expected <= logged, expected - logged
    media = path.parent / "files" / "media"
    assert len(list((media / "images" / "figures").glob("*.png"))) == len(FIGURES)
    assert list((media / "table" / "results").glob("accuracy_matrix*.table.json"))
    rows = history(path)
    steps = [row["_step"] for row in rows]
    assert steps == list(range(len(steps)))  # one row per step, none dropped
    final = json.loads((run_dir / "results.json").read_text())["accuracy_matrix"]
    logged = [row[P02] for row in rows if P02 in row]
    assert len(logged) == 3 and math.isclose(logged[-1], final[1][1])  # untrained, after 0, 1
    assert json.loads((run_dir / SIDE_FILE).read_text()) == {"id": saved["id"], "step": steps[-1]}


class Crash(Exception):
    """Stands for a kill in the middle of the second experience."""


def test_a_crashed_run_resumes_the_same_wandb_run_with_increasing_steps(
    tmp_path: Path, omniglot, one_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    args = ["--config", str(tiny_config(tmp_path)), "--run_dir", str(run_dir)]
    evaluate = StreamRunner._evaluate
    calls = []

    def crash_after_second_training(self: StreamRunner) -> list:
        calls.append(1)
        if len(calls) == 3:  # untrained, after experience 0, now after experience 1
            raise Crash
        return evaluate(self)

    with monkeypatch.context() as patch:
        patch.setattr(StreamRunner, "_evaluate", crash_after_second_training)
        with pytest.raises(Crash):
            main(args)
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=False)["run"]
    assert saved["position"] == 1
    (first,) = run_files(run_dir)
    before = [row["_step"] for row in history(first)]
    # experience 1's training rows were logged after the checkpoint: the side file knows them
    assert max(before) > saved["extra"]["wandb"]["step"]
    main(args)  # resume
    files = run_files(run_dir)
    assert len(files) == 2 and {p.name for p in files} == {first.name}  # the same run id
    (second,) = [p for p in files if p != first]
    after = history(second)
    steps = [row["_step"] for row in after]
    assert steps == list(range(max(before) + 1, max(before) + 1 + len(steps)))
    assert any(P02 in row for row in after), sorted({k for row in after for k in row})
    assert any(key.startswith("figures/transfer/") for row in after for key in row)
    assert json.loads((run_dir / "results.json").read_text())["run"]["experiences_done"] == 2


def test_the_wandb_demo_config_is_the_demo_plus_the_logger() -> None:
    demo = yaml.safe_load((REPO / "configs" / "continual_demo.yaml").read_text())
    ours = yaml.safe_load((REPO / "configs" / "continual_demo_wandb.yaml").read_text())
    (logger,) = ours.pop("loggers")
    assert logger["class_path"] == "continual.wandb_logger.StreamWandBLogger"
    assert ours == demo


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "bogus"}, "mode must be 'offline', 'online'"),
        ({"project_name": "a/b?"}, r"not a valid W&B project.*found / \?"),
        ({"project_name": ""}, "not a valid W&B project"),
    ],
)
def test_bad_wandb_settings_are_refused_before_the_run(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StreamWandBLogger(**kwargs)


def test_a_bad_wandb_mode_in_the_environment_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mann_lightning.errors import UserError

    monkeypatch.setenv("WANDB_MODE", "weird")
    with pytest.raises(UserError, match="W&B mode 'weird'"):
        StreamWandBLogger(dir=str(tmp_path)).start()
