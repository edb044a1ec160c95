"""Proactive interference by hand: pre-loading runs k episodes first and carries their state."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from helpers.tiny_configs import shrink_demo_config
from torch import Tensor

from mann_lightning import MANN, LRUAMemory
from mann_lightning.data.episodes import EpisodeBatch
from mann_lightning.interference import (
    ProactiveInterferenceCallback,
    interference_metrics,
    preloaded_accuracy,
)
from mann_lightning.memory_stats import trace_statistics
from mann_lightning.memory_stats_callback import MemoryStatisticsCallback
from mann_lightning.metrics import InstanceAccuracy

REPO = Path(__file__).resolve().parents[1]
N = 3


def synthetic_batch(seed: int, rows: int = 2, per_class: int = 3) -> EpisodeBatch:
    """Episodes whose input at step t is the one-hot target (an oracle could read it)."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.stack(
        [torch.arange(N).repeat(per_class)[torch.randperm(N * per_class, generator=generator)]
         for _ in range(rows)]
    )  # fmt: skip
    instances = torch.zeros_like(targets)
    for label in range(N):
        mask = targets == label
        instances[mask] = mask.long().cumsum(1)[mask]
    onehot = F.one_hot(targets, N).float()
    prev = torch.cat([torch.zeros(rows, 1, N), onehot[:, :-1]], 1)
    return EpisodeBatch(onehot, prev, targets, instances)


class CountingOracle:
    """State = episodes run so far (per row); right exactly when ``good`` episodes came before."""

    def __init__(self, good: int) -> None:
        self.good, self.calls = good, 0

    def __call__(self, inputs: Tensor, prev_labels: Tensor, state: Tensor | None):
        self.calls += 1
        count = torch.zeros(inputs.shape[0]) if state is None else state
        wrong = inputs.roll(1, -1)  # label + 1 mod N
        logits = torch.where((count == self.good).view(-1, 1, 1), inputs, wrong)
        return logits, count + 1


def test_k_episodes_really_run_first() -> None:
    batches = [synthetic_batch(seed) for seed in range(3)]
    preloads = [synthetic_batch(100 + j, per_class=1) for j in range(8)]
    requested: list[int] = []

    def preload(j: int) -> EpisodeBatch:
        requested.append(j)
        return preloads[j]

    model = CountingOracle(good=2)
    result = preloaded_accuracy(model, batches, (4, 0, 2, 1), preload, max_instances=4)
    assert list(result) == [0, 1, 2, 4]
    assert result[2][:3] == [1.0, 1.0, 1.0] and math.isnan(result[2][3])
    for k in (0, 1, 4):
        assert result[k][:3] == [0.0, 0.0, 0.0]
    # per batch: 4 pre-loading passes (shared by every k) + one evaluated pass per k
    assert model.calls == 3 * (4 + 4)
    assert requested == [0, 1, 2, 3] * 3
    metrics = interference_metrics(result)
    assert (
        metrics["interference/k2/acc_inst_1"] == 1.0 and "interference/k2/acc_inst_4" not in metrics
    )


def test_default_preload_is_the_other_batches() -> None:
    batches = [synthetic_batch(seed) for seed in range(3)]
    assert preloaded_accuracy(CountingOracle(good=2), batches, (0, 2), max_instances=3) == {
        0: [0.0, 0.0, 0.0],
        2: [1.0, 1.0, 1.0],
    }
    with pytest.raises(ValueError, match="more than 3 batches"):
        preloaded_accuracy(CountingOracle(good=0), batches, (0, 3))
    with pytest.raises(ValueError, match="each row needs"):
        preloaded_accuracy(CountingOracle(0), batches, (1,), [synthetic_batch(7, rows=1)])
    with pytest.raises(ValueError, match="non-negative"):
        preloaded_accuracy(CountingOracle(0), batches, (-1,))


def _episodes(seed: int, rows: int = 4) -> EpisodeBatch:
    batch = synthetic_batch(seed, rows=rows, per_class=4)
    noise = torch.rand(
        rows, batch.inputs.shape[1], 20, generator=torch.Generator().manual_seed(seed)
    )
    return batch._replace(inputs=noise)


def test_memory_free_model_is_the_same_for_every_k() -> None:
    torch.manual_seed(0)
    model = MANN(20, N, controller="feedforward", memory=None, controller_size=16)
    result = preloaded_accuracy(model, [_episodes(0), _episodes(1)], (0, 1, 2, 4), _preload_list())
    assert all(result[k][:4] == result[0][:4] for k in result)  # 4 presentations, then NaN
    assert all(math.isnan(v) for v in result[4][4:])


def _preload_list() -> list[EpisodeBatch]:
    return [_episodes(50 + j) for j in range(4)]


def test_lrua_mann_k0_is_plain_evaluation_and_results_are_deterministic() -> None:
    torch.manual_seed(0)
    model = MANN(20, N, memory=LRUAMemory(8, 6, num_reads=1), controller_size=16)
    batches = [_episodes(0), _episodes(1)]
    first = preloaded_accuracy(model, batches, (0, 1, 4), _preload_list())
    again = preloaded_accuracy(model, batches, (0, 1, 4), _preload_list())
    torch.testing.assert_close(torch.tensor(list(again.values())), torch.tensor(list(first.values())),
                               rtol=0, atol=0, equal_nan=True)  # fmt: skip
    plain = InstanceAccuracy(10)
    for batch in batches:
        with torch.no_grad():
            plain.update(model(batch.inputs, batch.prev_labels)[0].argmax(-1), batch.targets,
                         batch.instances)  # fmt: skip
    torch.testing.assert_close(
        torch.tensor(first[0], dtype=torch.float64), plain.compute(), equal_nan=True
    )
    # a carried memory changes the outputs, so the pre-loaded runs are not the k=0 run
    _, carried = model(_preload_list()[0].inputs, _preload_list()[0].prev_labels)
    fresh = model(batches[0].inputs, batches[0].prev_labels)[0]
    assert not torch.allclose(fresh, model(batches[0].inputs, batches[0].prev_labels, carried)[0])


def test_string_labels_are_scored_whole() -> None:
    targets = torch.tensor([[[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]])
    logits = F.one_hot(targets, 5).float().flatten(-2)  # [1, 2, 25]
    logits[0, 1, 0] = 9.0  # first character of the second step wrong
    batch = EpisodeBatch(torch.zeros(1, 2, 1), torch.zeros(1, 2, 25), targets,
                         torch.tensor([[1, 2]]))  # fmt: skip
    result = preloaded_accuracy(lambda *a: (logits, None), [batch], (0,), max_instances=2)
    assert result == {0: [1.0, 0.0]}


def test_callbacks_log_and_write_json(tmp_path: Path, omniglot: Path, one_thread: None) -> None:
    from mann_lightning.cli import build_cli

    config = yaml.safe_load((REPO / "configs" / "interference_wipe_never.yaml").read_text())
    trainer = config["trainer"]
    trainer.update(enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer["logger"]["init_args"].update(save_dir=str(tmp_path), name="pi")
    (callback, stats) = [c for c in trainer["callbacks"] if "mann_lightning.memory_stats_" in
                         c["class_path"] or "ProactiveInterference" in c["class_path"]]  # fmt: skip
    callback["init_args"].update(ks=[0, 1, 3], num_batches=1)
    trainer["callbacks"] = [callback, stats]
    shrink_demo_config(config)
    path = tmp_path / "pi.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = build_cli(["fit", "--config", str(path), "--trainer.max_steps=4"])
    (log_dir,) = (tmp_path / "pi").glob("version_*")
    saved = json.loads((log_dir / "interference.json").read_text())
    assert saved["ks"] == [0, 1, 3]
    assert [e["step"] for e in saved["evaluations"]] == [2, 4]
    assert (log_dir / "interference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (found,) = [c for c in cli.trainer.callbacks if isinstance(c, ProactiveInterferenceCallback)]
    again = found.measure(cli.datamodule, cli.model.model)  # deterministic, same episodes
    assert saved["evaluations"][-1]["accuracy"]["3"][:2] == again[3][:2]
    header = (log_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"interference/k0/acc_inst_1", "interference/k3/acc_inst_2"} <= set(header)
    assert {"memory/slots_written", "memory/usage_entropy"} <= set(header)
    memory = json.loads((log_dir / "memory_stats.json").read_text())
    assert [e["step"] for e in memory["evaluations"]] == [2, 4]
    (tracer,) = [c for c in cli.trainer.callbacks if isinstance(c, MemoryStatisticsCallback)]
    by_hand = trace_statistics(cli.model.model, *_fields(cli.datamodule.batch("val", 0)))
    for name, value in by_hand.summary().items():
        assert memory["evaluations"][-1][name] == pytest.approx(value, nan_ok=True), name
    assert tracer.measure(cli.model.model, [cli.datamodule.batch("val", 0)]) == pytest.approx(
        by_hand.summary(), nan_ok=True
    )


def _fields(batch: EpisodeBatch) -> tuple[Tensor, Tensor, Tensor]:
    return batch.inputs, batch.prev_labels, batch.targets


def test_interference_png_panels(tmp_path: Path) -> None:
    from mann_lightning.interference_figure import draw_interference, late_presentation

    evaluations = [
        {"step": 2, "accuracy": {"0": [0.2, 0.5, 0.6, None], "4": [0.2, 0.3, None, None]}},
        {"step": 4, "accuracy": {"0": [0.2, 0.6, 0.7, None], "4": [0.2, 0.4, 0.5, None]}},
    ]
    assert late_presentation(evaluations) == 3  # no 10th: the last one reached
    assert late_presentation(evaluations, wanted=2) == 2
    png = draw_interference(evaluations, tmp_path / "sub" / "interference.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
