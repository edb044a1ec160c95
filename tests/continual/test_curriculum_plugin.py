"""CurriculumPlugin: the schedule sets N batch by batch; fixed one-hot width; clear errors."""

from __future__ import annotations

import pytest
import torch
from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.utils.data import TensorDataset

from continual import EpisodicMANN, MANNEpisodePlugin
from continual.curriculum_plugin import CurriculumClassCount, CurriculumMANN, CurriculumPlugin
from mann_lightning import MANN, LRUAMemory
from mann_lightning.curriculum import StepSchedule, ThresholdSchedule

SAMPLES = 2


@pytest.fixture(scope="module")
def bench():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(12).repeat_interleave(4)
    images = torch.rand(labels.numel(), 1, 10, 10, generator=generator)
    dataset = TensorDataset(images, labels)
    dataset.targets = labels
    return nc_benchmark(dataset, dataset, n_experiences=2, task_labels=False, seed=1)


def _model(width: int, wrapper=CurriculumMANN) -> EpisodicMANN:
    torch.manual_seed(0)
    return wrapper(MANN(100, width, memory=LRUAMemory(8, 6, num_reads=1), controller_size=16))


def _strategy(
    model: EpisodicMANN, curriculum: CurriculumPlugin, train_batches: int = 6, metrics=()
):
    episodes = MANNEpisodePlugin(
        num_classes=curriculum.schedule.start_classes, samples_per_class=SAMPLES, batch_size=2,
        train_batches=train_batches, eval_batches=1,
    )  # fmt: skip
    shapes: list[tuple[int, int]] = []

    class Record:
        def before_training_iteration(self, strategy, **kwargs):  # the batch already drawn
            x, y = strategy.mbatch[0], strategy.mbatch[1]
            shapes.append((int(y.max()) + 1, x.shape[1]))

    strategy = Naive(
        model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        criterion=nn.CrossEntropyLoss(), train_mb_size=2,
        plugins=[episodes, curriculum, Record()], evaluator=EvaluationPlugin(*metrics, loggers=[]),
    )  # fmt: skip
    return strategy, episodes, shapes


def test_step_schedule_sets_n_one_batch_ahead(bench, one_thread) -> None:
    curriculum = CurriculumPlugin(StepSchedule(start_classes=3, max_classes=5, every_n_steps=2))
    model = _model(5)
    strategy, episodes, shapes = _strategy(model, curriculum)
    strategy.train(bench.train_stream[0])
    # N = 3 + step // 2; the change asked before iteration s applies to batch s + 1
    assert [n for n, _ in shapes] == [3, 3, 3, 4, 4, 5]
    assert [t for _, t in shapes] == [SAMPLES * n for n, _ in shapes]
    assert curriculum.history == [(0, 3), (2, 4), (4, 5)] and episodes.num_classes == 5
    assert model.mann.label_size == 5  # the width never changed
    strategy.eval(bench.test_stream[0])  # evaluation at the current N
    saved = curriculum.state_dict()
    restored = CurriculumPlugin(StepSchedule(start_classes=3, max_classes=5, every_n_steps=2))
    restored.load_state_dict(saved)
    assert restored.schedule.num_classes == 5 and restored.history == curriculum.history
    # a resumed run's episode plugin starts from the config's N: no change enters the history
    strategy, episodes, _ = _strategy(model, restored)
    strategy.clock.train_iterations = 6  # the runner restores the clock with the plugins
    strategy.train(bench.train_stream[1])
    assert restored.history == curriculum.history and episodes.num_classes == 5


def test_threshold_schedule_grows_after_evaluations(bench, one_thread) -> None:
    schedule = ThresholdSchedule(start_classes=3, max_classes=6, increment=2, threshold=0.0)
    curriculum = CurriculumPlugin(schedule)
    strategy, episodes, _ = _strategy(_model(6), curriculum, train_batches=1)
    strategy.train(bench.train_stream[0])
    assert episodes.num_classes == 3
    strategy.eval(bench.test_stream[0])  # any accuracy passes threshold 0
    assert episodes.num_classes == 5 and schedule.changes == [(0, 3), (1, 5)]
    strategy.eval(bench.test_stream[0])
    assert episodes.num_classes == 6


def test_an_untrained_evaluation_does_not_move_the_curriculum(bench, one_thread, tmp_path) -> None:
    from continual import PresentationAccuracy
    from continual.runner import StreamRunner

    schedule = ThresholdSchedule(start_classes=3, max_classes=6, increment=2, threshold=0.0)
    metric = PresentationAccuracy(train=False)
    strategy, episodes, _ = _strategy(
        _model(6), CurriculumPlugin(schedule), train_batches=1, metrics=[metric]
    )
    strategy.eval(bench.test_stream[0])  # before any training: any accuracy passes 0 ...
    assert episodes.num_classes == 3 and schedule.num_classes == 3  # ... but is not counted
    results = StreamRunner(bench, strategy, metric, tmp_path, "h", log=lambda line: None).run()
    assert results["untrained_eval_num_classes"] == 3
    assert results["eval_num_classes"] == [3, 5]  # each row's N; it grows after row 0


def test_clear_errors(bench, one_thread) -> None:
    too_many = CurriculumPlugin(StepSchedule(start_classes=3, max_classes=7, every_n_steps=2))
    strategy, _, _ = _strategy(_model(7), too_many)
    with pytest.raises(ValueError, match="has 6 classes, but the curriculum grows N to"):
        strategy.train(bench.train_stream[0])
    with pytest.raises(
        ValueError, match="Test experience 0 has 6 classes, but the curriculum grows N to 7"
    ):
        too_many.check_experience(bench.test_stream[0])  # what mann-continual checks first
    grown = CurriculumPlugin(StepSchedule(start_classes=3, max_classes=6, every_n_steps=1))
    strategy, episodes, _ = _strategy(_model(6), grown)
    strategy.train(bench.train_stream[0])
    episodes.num_classes = 7  # as if the test experience had fewer classes than N
    with pytest.raises(
        ValueError, match=r"Test experience 0 has 6 classes|0 \(test\) has 6 classes"
    ):
        strategy.eval(bench.test_stream[0])
    narrow = CurriculumPlugin(StepSchedule(start_classes=3, max_classes=5, every_n_steps=2))
    strategy, _, _ = _strategy(_model(3, EpisodicMANN), narrow)
    with pytest.raises(ValueError, match="CurriculumMANN"):
        strategy.train(bench.train_stream[0])


def test_class_count_metric_is_emitted_at_every_change(bench, one_thread) -> None:
    curriculum = CurriculumPlugin(StepSchedule(start_classes=3, max_classes=5, every_n_steps=2))
    count = CurriculumClassCount()
    strategy, _, _ = _strategy(_model(5), curriculum, metrics=[count])
    strategy.train(bench.train_stream[0])
    steps, values = strategy.evaluator.get_all_metrics()["CurriculumClassCount"]
    assert (steps, values) == ([0, 2, 4], [3, 4, 5]) and count.result() == 5
    schedule = ThresholdSchedule(start_classes=3, max_classes=6, increment=2, threshold=0.0)
    count = CurriculumClassCount(CurriculumPlugin(schedule))
    strategy, _, _ = _strategy(_model(6), count.plugin, train_batches=1, metrics=[count])
    strategy.train(bench.train_stream[0])
    results = strategy.eval(bench.test_stream[0])  # the change after evaluation is emitted
    assert results["CurriculumClassCount"] == 5
    assert strategy.evaluator.get_all_metrics()["CurriculumClassCount"] == ([0, 1], [3, 5])
