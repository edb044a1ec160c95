"""Stock Avalanche strategies + MANNEpisodePlugin: Omniglot streams, nc_benchmark, Replay."""

from __future__ import annotations

import math

import pytest
import torch
from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark
from avalanche.training import Naive, Replay
from avalanche.training.plugins import ReplayPlugin
from helpers.continual_models import make_strategy, tiny_model
from torch.utils.data import TensorDataset

from continual import MANNEpisodePlugin


def run_stream(strategy, metric, stream) -> list[list[list[float]]]:
    """Train on each experience, evaluate on the whole test stream after it."""
    rows = []
    for experience in stream.train_stream:
        strategy.train(experience)
        strategy.eval(stream.test_stream)
        rows.append([metric.results[("test", j)] for j in range(len(stream.test_stream))])
    return rows


def test_naive_over_three_alphabet_experiences(small_stream, one_thread) -> None:
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=4, batch_size=4, train_batches=30, eval_batches=3
    )
    model = tiny_model()
    strategy, metric = make_strategy(Naive, model, plugin)
    before = [p.detach().clone() for p in model.parameters()]
    rows = run_stream(strategy, metric, small_stream)
    assert len(rows) == 3 and all(len(row) == 3 for row in rows)
    for row in rows:
        for accuracy in row:
            assert len(accuracy) == 10
            assert all(0.0 <= a <= 1.0 for a in accuracy[:4])  # 4 samples per class
            assert all(math.isnan(a) for a in accuracy[4:])  # never reached
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # the training minibatches are episodes: [x, y, instances, task labels]
    assert strategy.clock.train_iterations == 90


def test_eval_episodes_are_identical_in_every_row(small_stream, one_thread) -> None:
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=4, batch_size=4, train_batches=1, eval_batches=2
    )
    strategy, _ = make_strategy(Naive, tiny_model(), plugin)
    seen = []

    class Record:
        def after_eval_iteration(self, strategy, **kwargs):
            seen.append(strategy.mbatch[0].clone())

    strategy.plugins.append(Record())
    strategy.eval(small_stream.test_stream[1])
    strategy.train(small_stream.train_stream[0])
    strategy.eval(small_stream.test_stream[1])
    assert len(seen) == 4
    assert torch.equal(seen[0], seen[2]) and torch.equal(seen[1], seen[3])
    assert not torch.equal(seen[0], seen[1])


def test_nc_benchmark_of_a_tensor_dataset(one_thread) -> None:
    torch.manual_seed(0)
    # 12 classes of 28x28 RGB images with a class-specific pattern, ragged counts (3 to 14)
    counts = torch.arange(3, 15)
    labels = torch.arange(12).repeat_interleave(counts)
    images = torch.rand(labels.numel(), 3, 28, 28) * 0.2 + labels.view(-1, 1, 1, 1) / 12
    dataset = TensorDataset(images, labels)
    dataset.targets = labels
    bench = nc_benchmark(dataset, dataset, n_experiences=2, task_labels=False, seed=1)
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=5, batch_size=2, train_batches=3, eval_batches=2
    )
    strategy, metric = make_strategy(Naive, tiny_model(), plugin)
    strategy.train(bench.train_stream[0])
    with pytest.warns(UserWarning, match=r"of only 3 images for samples_per_class=5: .* repeat"):
        strategy.eval(bench.test_stream)  # an evaluation of repeated images is said
    assert set(metric.results) == {("test", 0), ("test", 1)}
    pool = plugin._eval_pools[("test", 1, id(bench.test_stream[1].dataset))]
    assert pool.images.shape[-1] == 400  # resized to the model's 20x20 input
    assert sorted(pool.counts.tolist()) == sorted(counts[pool.class_ids].tolist())


def test_replay_classes_join_the_episodes(small_stream, one_thread) -> None:
    plugin = MANNEpisodePlugin(
        num_classes=5,
        samples_per_class=4,
        batch_size=4,
        train_batches=2,
        eval_batches=1,
        replay_share=0.4,
    )
    strategy, _ = make_strategy(Replay, tiny_model(), plugin, mem_size=60)
    pools = []

    class Record:
        def before_training_iteration(self, strategy, **kwargs):
            pools.append(plugin._train_pool[1])

    strategy.plugins.insert(0, Record())
    strategy.train(small_stream.train_stream[0])
    assert pools[-1].group_size(1) == 0  # nothing replayed yet
    strategy.train(small_stream.train_stream[1])
    pool = pools[-1]
    old = set(small_stream.train_stream[0].classes_in_this_experience)
    replayed = set(pool.class_ids[pool.groups == 1].tolist())
    assert replayed and replayed <= old
    assert plugin._group_counts(pool) == (3, 2)  # 0.4 of 5 classes from the buffer


def test_replay_result_does_not_depend_on_plugin_order(small_stream, one_thread) -> None:
    def matrix(plugin_first: bool) -> list:
        plugin = MANNEpisodePlugin(
            num_classes=5,
            samples_per_class=3,
            batch_size=2,
            train_batches=4,
            eval_batches=1,
            replay_share=0.4,
        )
        replay = ReplayPlugin(mem_size=40)
        torch.manual_seed(0)
        model = tiny_model()
        strategy, metric = make_strategy(Naive, model, plugin, plugins=[replay])
        if not plugin_first:
            strategy.plugins.remove(plugin)
            strategy.plugins.insert(strategy.plugins.index(replay) + 1, plugin)
        torch.manual_seed(1)
        rows = run_stream(strategy, metric, small_stream)
        return [rows, [p.detach().clone() for p in model.parameters()]]

    first, second = matrix(True), matrix(False)
    torch.testing.assert_close(
        torch.tensor(first[0]), torch.tensor(second[0]), rtol=0, atol=0, equal_nan=True
    )
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1], strict=True))


def test_too_few_classes_is_a_clear_error(small_stream) -> None:
    plugin = MANNEpisodePlugin(num_classes=200, samples_per_class=2, batch_size=1, train_batches=1)
    strategy, _ = make_strategy(Naive, tiny_model(num_outputs=200), plugin)
    with pytest.raises(
        ValueError, match=r"Experience 0 \(training\) has \d+ classes .*num_classes=200"
    ):
        strategy.train(small_stream.train_stream[0])


def test_model_must_be_wrapped() -> None:
    from mann_lightning import MANN

    plugin = MANNEpisodePlugin()
    strategy, _ = make_strategy(Naive, MANN(400, 5, memory="lrua"), plugin)
    with pytest.raises(TypeError, match="EpisodicMANN"):
        plugin.before_training_exp(strategy)


def test_default_evaluator_reports_step_accuracy(small_stream, one_thread, capsys) -> None:
    """Avalanche's default evaluator (accuracy, loss, interactive logger) works on episodes and
    its accuracy is the accuracy over all steps of the episodes."""
    from avalanche.training.templates import SupervisedTemplate

    from continual import PresentationAccuracy

    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=4, batch_size=4, train_batches=2, eval_batches=2
    )
    model = tiny_model()
    metric = PresentationAccuracy(train=False)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        train_mb_size=4,
        plugins=[plugin, metric],
    )
    assert isinstance(strategy, SupervisedTemplate)
    strategy.train(small_stream.train_stream[0])
    results = strategy.eval(small_stream.test_stream[0])
    overall = results["Top1_Acc_Exp/eval_phase/test_stream/Exp000"]
    per_presentation = metric.results[("test", 0)][:4]
    # 5 classes x 4 presentations per episode: every presentation holds a quarter of the steps
    assert overall == pytest.approx(sum(per_presentation) / 4)
    assert "Top1_Acc_Exp" in capsys.readouterr().out


def test_strategy_sizes_below_one_are_refused_by_the_plugin() -> None:
    """Built in Python (no CLI): the plugin refuses what Avalanche would accept silently."""
    from types import SimpleNamespace

    from continual.plugin import MANNEpisodePlugin

    plugin = MANNEpisodePlugin()
    with pytest.raises(ValueError, match="train_epochs must be >= 1, got 0"):
        plugin.before_training(SimpleNamespace(train_epochs=0, train_mb_size=16))
    with pytest.raises(ValueError, match="eval_mb_size must be >= 1, got -1"):
        plugin.before_eval(SimpleNamespace(eval_mb_size=-1))
    plugin.before_training(SimpleNamespace(train_epochs=1, train_mb_size=1))  # fine


@pytest.mark.parametrize("name", ["avalanche.training.EWC", "LwF", "AGEM", "GEM"])
def test_strategies_that_feed_raw_images_are_refused(name: str) -> None:
    from continual.strategy_checks import check_strategy_supported

    with pytest.raises(ValueError, match="does not work with MANNEpisodePlugin"):
        check_strategy_supported(name)
    check_strategy_supported("avalanche.training.Replay")  # fine


def test_plugin_jitter_and_samples_per_class_are_checked() -> None:
    from continual.plugin import MANNEpisodePlugin

    for kwargs in (
        {"max_translation": 5.0},
        {"max_rotation": -1.0},
        {"max_translation": float("nan")},
    ):
        with pytest.raises(ValueError, match="need 0 <= max_translation <= 0.5"):
            MANNEpisodePlugin(**kwargs)
    with pytest.raises(ValueError, match="samples_per_class must be an integer >= 2"):
        MANNEpisodePlugin(samples_per_class=1)
    for name, value in (("samples_per_class", 2.5), ("train_batches", 1.5),
                        ("batch_size", "2"), ("num_classes", True)):  # fmt: skip
        with pytest.raises(ValueError, match=f"{name} must be an integer >= ., got {value!r}"):
            MANNEpisodePlugin(**{name: value})
    with pytest.raises(ValueError, match="seed must be an integer, got 1.5"):
        MANNEpisodePlugin(seed=1.5)
    for share in (True, "0.5", float("nan"), 1.5):
        with pytest.raises(ValueError, match="replay_share must be in"):
            MANNEpisodePlugin(replay_share=share)


def test_episodic_mann_refuses_a_module_that_is_not_a_mann() -> None:
    from torch import nn

    from continual import EpisodicMANN

    with pytest.raises(TypeError, match="EpisodicMANN wraps a mann_lightning.MANN, got Linear"):
        EpisodicMANN(nn.Linear(400, 5))


def test_episodic_mann_needs_labels_fed_back_as_output() -> None:
    from continual import EpisodicMANN
    from mann_lightning import MANN

    with pytest.raises(ValueError, match=r"label_size \(3\) must equal its num_outputs \(5\)"):
        EpisodicMANN(MANN(400, 5, label_size=3))


def test_run_options_are_checked_before_anything_runs() -> None:
    from jsonargparse import Namespace

    from continual.strategy_checks import check_run_options
    from mann_lightning.errors import UserError

    def cfg(seed: int = 0, device: str | None = "cpu") -> Namespace:
        return Namespace(seed=seed, strategy=Namespace(init_args=Namespace(device=device)))

    check_run_options(cfg())
    with pytest.raises(UserError, match="--seed must be in"):
        check_run_options(cfg(seed=-1))
    with pytest.raises(UserError, match="is not a device"):
        check_run_options(cfg(device="foo"))
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="sees no CUDA GPU"):
            check_run_options(cfg(device="cuda"))
