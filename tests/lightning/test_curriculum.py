"""Curriculum schedules by hand, the fixed label width, and ``mann fit`` runs that resume."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml

from mann_lightning.callbacks import CurriculumCallback
from mann_lightning.classifier import MANNClassifier
from mann_lightning.cli import build_cli
from mann_lightning.curriculum import StepSchedule, ThresholdSchedule
from mann_lightning.data import OmniglotEpisodes

REPO = Path(__file__).resolve().parents[2]


def test_step_schedule_by_hand() -> None:
    schedule = StepSchedule(start_classes=15, max_classes=20, increment=2, every_n_steps=3)
    assert [schedule.classes_at(s) for s in range(11)] == [15] * 3 + [17] * 3 + [19] * 3 + [20] * 2
    changed = [step for step in range(11) if schedule.on_train_step(step)]
    assert changed == [3, 6, 9] and schedule.finished
    assert schedule.changes == [(0, 15), (3, 17), (6, 19), (9, 20)]
    resumed = StepSchedule(15, 20, 2, 3)
    mid = StepSchedule(15, 20, 2, 3)
    for step in range(5):
        mid.on_train_step(step)
    resumed.load_state_dict(mid.state_dict())
    assert resumed.num_classes == 17 and not resumed.on_train_step(5) and resumed.on_train_step(6)
    assert resumed.changes == [(0, 15), (3, 17), (6, 19)]


def test_threshold_schedule_by_hand() -> None:
    schedule = ThresholdSchedule(start_classes=15, max_classes=17, threshold=0.5, min_steps=10)
    calls = [(5, 0.9), (10, 0.4), (10, None), (10, math.nan), (12, 0.5), (15, 0.9), (22, 0.9)]
    assert [schedule.on_validation(*call) for call in calls] == [False] * 4 + [True, False, True]
    assert schedule.changes == [(0, 15), (12, 16), (22, 17)] and schedule.finished
    assert not schedule.on_validation(40, 1.0)  # capped at max_classes
    mid = ThresholdSchedule(15, 17, threshold=0.5, min_steps=10)
    mid.load_state_dict({"num_classes": 16, "changes": [[0, 15], [12, 16]]})
    assert not mid.on_validation(15, 0.9) and mid.on_validation(22, 0.9)  # min_steps from 12


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: StepSchedule(start_classes=20, max_classes=10), "start_classes <= max_classes"),
        (lambda: StepSchedule(increment=0), "increment"),
        (lambda: StepSchedule(every_n_steps=0), "every_n_steps"),
        (lambda: ThresholdSchedule(threshold=1.5), "threshold"),
        (lambda: StepSchedule(15, 20).load_state_dict({"num_classes": 30, "changes": []}), "N=30"),
    ],
)
def test_schedule_errors(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_label_width_stays_fixed(omniglot: Path) -> None:
    plain = OmniglotEpisodes(root=str(omniglot), download=False, num_classes=5, batch_size=4)
    wide = OmniglotEpisodes(
        root=str(omniglot), download=False, num_classes=5, batch_size=4, max_classes=10
    )
    assert wide.task["max_classes"] == 10 and plain.task["max_classes"] is None
    a, b = plain.batch("train", 3), wide.batch("train", 3)
    assert b.prev_labels.shape == (4, 50, 10) and wide.label_size == 10
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)  # same draws
    assert torch.equal(b.prev_labels[..., :5], a.prev_labels) and not b.prev_labels[..., 5:].any()
    wide.set_episode_shape(8, 10)
    grown = wide.batch("train", 4)
    assert grown.prev_labels.shape == (4, 80, 10) and grown.targets.max() == 7
    assert torch.equal(grown.prev_labels[:, 1:].argmax(-1), grown.targets[:, :-1])
    with pytest.raises(ValueError, match="max_classes=10"):
        wide.set_episode_shape(11, 10)
    with pytest.raises(ValueError, match="max_classes=10"):
        OmniglotEpisodes(download=False, num_classes=12, max_classes=10)
    with pytest.raises(ValueError, match="max_classes"):
        OmniglotEpisodes(download=False, label_encoding="string", max_classes=4000)


def test_model_width_follows_max_classes() -> None:
    task = {"num_classes": 5, "label_encoding": "onehot", "input_size": 400, "max_classes": 10}
    model = MANNClassifier(task=task, memory="none", controller_size=8)
    assert model.model.num_outputs == model.model.label_size == 10
    strings = MANNClassifier(task={**task, "label_encoding": "string"}, memory="none")
    assert strings.model.num_outputs == 25 and strings.max_classes == 10
    with pytest.raises(ValueError, match="disagrees"):
        MANNClassifier(task=task, max_classes=12, memory="none")
    with pytest.raises(ValueError, match="below num_classes"):
        MANNClassifier(num_classes=5, max_classes=4, memory="none")


def test_callback_needs_a_wide_enough_label() -> None:
    data = OmniglotEpisodes(download=False, num_classes=5)
    callback = CurriculumCallback(StepSchedule(start_classes=5, max_classes=10))
    with pytest.raises(ValueError, match="max_classes: 10"):
        callback.setup(SimpleNamespace(datamodule=data), None, "fit")  # type: ignore[arg-type]
    too_many = CurriculumCallback(StepSchedule(start_classes=5, max_classes=500))
    trainer = SimpleNamespace(datamodule=OmniglotEpisodes(download=False, max_classes=500))
    with pytest.raises(ValueError, match="num_classes=500"):
        too_many.setup(trainer, None, "fit")  # type: ignore[arg-type]


SCHEDULES = {
    # N = 3 + step // 3: changes before the training steps 3, 6 and 9
    "step": {"class_path": "mann_lightning.curriculum.StepSchedule", "init_args": {
        "start_classes": 3, "max_classes": 6, "increment": 1, "every_n_steps": 3}},
    # validations at steps 3, 6, 9 all pass; min_steps=4 lets only the one at 6 count, and a
    # resumed run must know that (a fresh schedule would grow again at 9)
    "threshold": {"class_path": "mann_lightning.curriculum.ThresholdSchedule", "init_args": {
        "start_classes": 3, "max_classes": 6, "threshold": 0.0, "min_steps": 4}},
}  # fmt: skip
EXPECTED = {"step": [(0, 3), (3, 4), (6, 5), (9, 6)], "threshold": [(0, 3), (6, 4)]}
# N of the last validation (step 9): the step schedule grew to 5 at step 6, the threshold
# schedule to 4 after the validation at step 6
LAST_VALIDATED = {"step": 5, "threshold": 4}


def _config(folder: Path, schedule: str) -> Path:
    """``curriculum_demo.yaml`` with a tiny model and data, the given schedule, a validation
    every 3 steps and ``last.ckpt`` after every step."""
    config = yaml.safe_load((REPO / "configs" / "curriculum_demo.yaml").read_text())
    trainer = config["trainer"]
    trainer.update(enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1)
    trainer["logger"]["init_args"].update(save_dir=str(folder / "runs"), name="cur")
    curriculum, checkpoint = trainer["callbacks"][:2]
    curriculum["init_args"]["schedule"] = SCHEDULES[schedule]
    checkpoint["init_args"].update(
        dirpath=str(folder / "runs" / "cur" / "checkpoints"), last_every_n_steps=1
    )
    trainer["callbacks"] = [curriculum, checkpoint]
    model = config["model"]["init_args"]
    model["controller_size"] = 16
    model["memory"]["init_args"].update(memory_size=8, word_size=8, num_reads=1)
    config["data"]["init_args"].update(
        num_classes=3, max_classes=6, samples_per_class=2, batch_size=2,
        train_batches_per_epoch=3, val_batches=1, test_batches=1,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{schedule}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _fit(config: Path, steps: int, *extra: str) -> Any:
    return build_cli(["fit", "--config", str(config), f"--trainer.max_steps={steps}", *extra])


@pytest.mark.parametrize("schedule", ["step", "threshold"])
def test_fit_resumes_mid_schedule(schedule: str, tmp_path: Path, omniglot: Path) -> None:
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    straight = _fit(_config(straight_dir, schedule), 10)
    config = _config(resumed_dir, schedule)
    _fit(config, 7)
    saved = torch.load(
        resumed_dir / "runs" / "cur" / "checkpoints" / "last.ckpt", weights_only=False
    )
    assert saved["global_step"] == 7  # mid-epoch and mid-schedule
    assert saved["callbacks"]["CurriculumCallback"]["schedule"]["changes"] == [
        list(change) for change in EXPECTED[schedule] if change[0] <= 6
    ]
    resumed = _fit(config, 10, "--ckpt_path=last")

    for cli in (straight, resumed):
        (callback,) = [c for c in cli.trainer.callbacks if isinstance(c, CurriculumCallback)]
        assert callback.schedule.changes == EXPECTED[schedule]
        assert cli.datamodule.num_classes == EXPECTED[schedule][-1][1]
        assert cli.trainer.global_step == 10
        assert cli.model.model.label_size == 6  # the width never changed
    assert resumed.datamodule.train_batches_drawn == straight.datamodule.train_batches_drawn
    for key, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, straight.model.state_dict()[key], msg=key)

    # the class count is logged at the start and at every change
    (log,) = (straight_dir / "runs" / "cur").glob("version_*/metrics.csv")
    logged = [
        (int(row["step"]), int(float(row["curriculum/num_classes"])))
        for row in csv.DictReader(log.open())
        if row.get("curriculum/num_classes")
    ]
    assert logged == EXPECTED[schedule]
    # best.ckpt is the best validation at the latest N, here the only one at that N (step 9),
    # although chance accuracy is higher at a smaller N
    best = torch.load(
        straight_dir / "runs" / "cur" / "checkpoints" / "best.ckpt", weights_only=False
    )
    assert best["callbacks"]["CurriculumCallback"]["validated_at"] == LAST_VALIDATED[schedule]
    assert best["global_step"] == 9
