"""Binding retention: gaps and interleaved classes by hand, stub memories, streams, callback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from helpers.tiny_configs import shrink_demo_config
from torch import Tensor, nn

from mann_lightning.data.episodes import code_to_string, encode_targets
from mann_lightning.model import MANN
from mann_lightning.retention import (
    binding_retention,
    gaps_and_interleaved,
    revisit_schedule,
    sample_stream,
    stream_correct,
)
from mann_lightning.retention_bins import doubling_edges
from mann_lightning.retention_callback import BindingRetentionCallback

REPO = Path(__file__).resolve().parents[1]
CHARACTERS, DRAWERS = 12, 3
# character row i: every drawing is the constant image (i + 1) / 100, so a stub can tell them apart
IMAGES = ((torch.arange(CHARACTERS) + 1) / 100).view(-1, 1, 1, 1).expand(-1, DRAWERS, 2, 2)
CLASSES = torch.arange(CHARACTERS)


class StubMemory(nn.Module):
    """Answers the label it saw for the image's character if that was at most ``span`` steps ago.

    Older (or never seen) bindings are answered with a label known to be wrong (the stored
    one with every character shifted), so accuracy is exactly 1 up to gap ``span`` and 0 after.
    Its own step counter and its state (carried across calls) define the gap independently.
    """

    def __init__(self, span: float, chars: int) -> None:
        super().__init__()
        self.span, self.chars = span, chars  # chars: 1 (one-hot) or 5 (string)

    def forward(self, inputs: Tensor, prev_labels: Tensor, state: dict | None):
        batch, steps, width = prev_labels.shape
        if state is None:
            state = {"t": 0, "last": torch.full((batch,), -1), "label": {}, "time": {}}
        out = torch.zeros(batch, steps, width)
        for i in range(steps):
            t, keys = state["t"], (inputs[:, i, 0] * 100).round().long()
            for b in range(batch):
                previous = int(state["last"][b])
                if previous >= 0:  # y_{t-1} is the label of the image shown at t - 1
                    state["label"][b, previous] = prev_labels[b, i]
                    state["time"][b, previous] = t - 1
                key = int(keys[b])
                label = state["label"].get((b, key), torch.zeros(width))
                fresh = (b, key) in state["label"] and t - state["time"][b, key] <= self.span
                grouped = label.view(self.chars, -1)
                out[b, i] = (grouped if fresh else grouped.roll(1, -1)).flatten()
            state["last"], state["t"] = keys, t + 1
        return out, state


def test_gaps_and_interleaved_by_hand() -> None:
    a, b, c = 0, 1, 2
    gap, between = gaps_and_interleaved(torch.tensor([[a, b, a, c, b, a], [a, a, b, b, a, c]]))
    # A B A C B A: 2nd A: last at 0, gap 2, {B} between; B at 4: gap 3, {A, C}; A at 5: {C, B}
    assert gap.tolist() == [[0, 0, 2, 0, 3, 3], [0, 1, 0, 1, 3, 0]]
    assert between.tolist() == [[-1, -1, 1, -1, 2, 2], [-1, 0, -1, 0, 1, -1]]
    # repeats of one class in between count once: A B B B A has gap 4, 1 other class
    gap, between = gaps_and_interleaved(torch.tensor([[a, b, b, b, a]]))
    assert gap[0, 4] == 4 and between[0, 4] == 1


def test_doubling_bins() -> None:
    assert doubling_edges(1, 20) == [1, 2, 3, 5, 9, 17]
    assert doubling_edges(0, 9) == [0, 1, 2, 3, 5, 9]
    assert doubling_edges(0, 0) == [0]


@pytest.mark.parametrize("encoding", ["onehot", "string"])
@pytest.mark.parametrize("revisit", ["uniform", "recency"])
def test_perfect_memory_is_right_at_every_gap(encoding: str, revisit: str) -> None:
    chars = 5 if encoding == "string" else 1
    result = binding_retention(
        StubMemory(float("inf"), chars), IMAGES, CLASSES, encoding, steps=120, batch=2, seed=3,
        num_classes=6, num_labels=8, revisit=revisit, chunk=25,
    )  # fmt: skip
    assert result.accuracy == 1.0 and result.correct.all()
    assert result.first_count == 12  # 6 classes x 2 streams
    filled = [b for b in result.by_gap if b.count]
    assert len(filled) >= 4 and all(b.accuracy == 1.0 for b in filled)
    assert sum(b.count for b in result.by_gap) == result.correct.numel() == 240 - 12
    assert sum(b.count for b in result.by_interleaved) == 240 - 12
    json.dumps(result.to_dict())


@pytest.mark.parametrize("span", [1, 4])
def test_memory_of_length_m_is_right_up_to_gap_m(span: int) -> None:
    result = binding_retention(
        StubMemory(span, 1), IMAGES, CLASSES, "onehot", steps=150, batch=2, seed=0,
        num_classes=8, num_labels=8, revisit="recency", chunk=7,
    )  # fmt: skip
    assert torch.equal(result.correct, result.gap <= span)
    for b in result.by_gap:
        if b.count:
            assert b.accuracy == (1.0 if b.high <= span else 0.0), b
    assert result.by_gap[0].low == 1 and result.by_gap[0].accuracy == 1.0  # gap 1 is kept


def test_stream_labels_are_fixed_per_class_and_shown_one_step_late() -> None:
    generator = torch.Generator().manual_seed(5)
    stream = sample_stream(IMAGES, CLASSES, 10, 200, 3, generator, "string", revisit="recency")
    for b in range(3):
        assert stream.labels[b].unique().numel() == 10  # distinct codes
        expected = code_to_string(stream.labels[b][stream.slots[b]])
        assert torch.equal(stream.targets[b], expected)
    assert stream.slots.unique().numel() == 10
    encoded = encode_targets(stream.targets, "string", 0)
    assert torch.equal(stream.prev_labels[:, 1:], encoded[:, :-1])
    assert not stream.prev_labels[:, 0].any()
    # one image per step, of the class's character (each slot keeps one character)
    rows = (stream.inputs[..., 0] * 100).round().long()
    for b in range(3):
        for slot in range(10):
            assert rows[b][stream.slots[b] == slot].unique().numel() == 1


def test_deterministic_for_a_seed() -> None:
    def run(seed: int) -> dict:
        return binding_retention(
            StubMemory(3, 1), IMAGES, CLASSES, "onehot", 60, 2, seed, 5, num_labels=5
        ).to_dict()

    assert run(1) == run(1)
    assert run(1) != run(2)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(
        revisit_schedule(2, 5, 30, generator), revisit_schedule(2, 5, 30, generator.manual_seed(0))
    )


def test_chunks_carry_the_mann_state() -> None:
    torch.manual_seed(0)
    model = MANN(4, 5, controller_size=8, memory="lrua")
    generator = torch.Generator().manual_seed(0)
    stream = sample_stream(IMAGES, CLASSES, 5, 40, 2, generator, "onehot", num_labels=5)
    whole = stream_correct(model, stream, "onehot", chunk=None)
    for chunk in (1, 7, 40):
        assert torch.equal(stream_correct(model, stream, "onehot", chunk=chunk), whole), chunk


def test_too_many_classes_for_the_labels() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        binding_retention(StubMemory(1, 1), IMAGES, CLASSES, "onehot", 10, 1, 0, 6, num_labels=5)


def test_callback_writes_json_and_png(tmp_path: Path, omniglot: Path, one_thread: None) -> None:
    from mann_lightning.cli import build_cli

    config = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    trainer = config["trainer"]
    trainer.update(enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer["logger"]["init_args"].update(save_dir=str(tmp_path), name="ret")
    trainer["callbacks"] = [{
        "class_path": "mann_lightning.retention_callback.BindingRetentionCallback",
        "init_args": {"steps": 40, "batch": 2, "every_n_epochs": 1},
    }]  # fmt: skip
    shrink_demo_config(config)
    path = tmp_path / "ret.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = build_cli(["fit", "--config", str(path), "--trainer.max_steps=4"])
    cli.trainer.test(cli.model, datamodule=cli.datamodule)
    (log_dir,) = (tmp_path / "ret").glob("version_*")
    saved = json.loads((log_dir / "binding_retention.json").read_text())["evaluations"]
    assert [(e["stage"], e["step"]) for e in saved] == [("validation", 2), ("validation", 4),
                                                        ("test", 4)]  # fmt: skip
    assert saved[-1]["num_classes"] == 3 and saved[-1]["steps"] == 40
    assert sum(b["count"] for b in saved[-1]["by_gap"]) == saved[-1]["repeats"] == 80 - 6
    assert (log_dir / "binding_retention.png").stat().st_size > 1000
    (callback,) = [c for c in cli.trainer.callbacks if isinstance(c, BindingRetentionCallback)]
    again = callback.measure(cli.datamodule, cli.model.model).to_dict()
    assert again["by_gap"] == saved[-1]["by_gap"]  # the same streams every time
