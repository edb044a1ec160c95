"""EpisodicMANN: outputs and loss equal the Lightning layer's; memory persistence policies."""

from __future__ import annotations

import pytest
import torch
from avalanche.training import Naive
from helpers.continual_models import make_strategy, tiny_model
from torch import nn

from continual import MANNEpisodePlugin, string_log_probs
from continual.episode_data import to_minibatch
from mann_lightning.classifier import MANNClassifier
from mann_lightning.data import sample_episodes
from mann_lightning.data.episodes import code_to_string, string_to_code
from mann_lightning.persistence import state_leaves


def test_string_rows_are_joint_log_probabilities() -> None:
    torch.manual_seed(0)
    logits = torch.randn(7, 25, dtype=torch.float64)
    joint = string_log_probs(logits)
    assert joint.shape == (7, 3125)
    torch.testing.assert_close(joint.exp().sum(-1), torch.ones(7, dtype=torch.float64))
    codes = torch.tensor([0, 1, 5, 124, 625, 3124, 1777])
    chars = code_to_string(codes)  # [7, 5]
    per_char = torch.log_softmax(logits.view(7, 5, 5), -1)
    expected = per_char.gather(-1, chars.unsqueeze(-1)).squeeze(-1).sum(-1)
    torch.testing.assert_close(joint[torch.arange(7), codes], expected)
    # the best string is the best character at every position
    assert torch.equal(joint.argmax(-1), string_to_code(per_char.argmax(-1)))


@pytest.mark.parametrize("encoding", ["onehot", "string"])
def test_stock_cross_entropy_is_the_lightning_loss(encoding: str) -> None:
    images = torch.rand(30, 20, 20, 20)
    batch = sample_episodes(
        images, torch.arange(30), 5, 4, 3, torch.Generator().manual_seed(0), encoding
    )
    classifier = MANNClassifier(
        num_classes=5, label_encoding=encoding, memory="lrua", controller_size=32
    )
    model = tiny_model(classifier.model.num_outputs, encoding)
    model.mann = classifier.model
    x, y, instances, task = to_minibatch(batch, encoding)
    outputs = model(x)
    assert outputs.shape == (3 * 20, 5 if encoding == "onehot" else 3125)
    assert y.shape == instances.shape == task.shape == (60,)
    lightning_outputs, _ = classifier(batch.inputs, batch.prev_labels)
    torch.testing.assert_close(
        nn.functional.cross_entropy(outputs, y), classifier.loss(lightning_outputs, batch)
    )
    correct = classifier.predict_labels(lightning_outputs) == batch.targets
    correct = correct.all(-1) if encoding == "string" else correct
    assert torch.equal(outputs.argmax(1) == y, correct.flatten())


def carried(model) -> list[torch.Tensor]:
    state = model.carry.state
    return [] if state is None else [t.clone() for t in state_leaves(state) if t is not None]


@pytest.mark.parametrize("wipe", ["episode", "experience", "never"])
def test_wipe_policies_on_the_state_tensors(small_stream, wipe: str, one_thread) -> None:
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=3, batch_size=2, train_batches=2, eval_batches=1
    )
    model = tiny_model(wipe=wipe)
    strategy, _ = make_strategy(Naive, model, plugin)
    starts = []  # memory each training batch starts from

    original = model.mann.forward

    def spy(inputs, prev_labels, state=None):
        starts.append(None if state is None else state.memory.memory.clone())
        return original(inputs, prev_labels, state)

    model.mann.forward = spy
    strategy.train(small_stream.train_stream[0])
    after_first = carried(model)
    strategy.train(small_stream.train_stream[1])
    if wipe == "episode":
        assert starts == [None] * 4 and after_first == []
        return
    assert starts[0] is None and starts[1] is not None  # carried from batch 1 to batch 2
    assert starts[1].abs().sum() > 0
    if wipe == "experience":
        assert starts[2] is None  # wiped when experience 1 started
    else:
        torch.testing.assert_close(starts[2], after_first[2], rtol=0, atol=0)  # carried over
    assert starts[3] is not None


@pytest.mark.parametrize("eval_memory", ["empty", "training"])
def test_evaluation_leaves_training_memory_unchanged(small_stream, eval_memory, one_thread) -> None:
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=3, batch_size=2, train_batches=2, eval_batches=2
    )
    model = tiny_model(wipe="never", eval_memory=eval_memory)
    strategy, metric = make_strategy(Naive, model, plugin)
    strategy.train(small_stream.train_stream[0])
    before = carried(model)
    weights = {k: v.clone() for k, v in model.state_dict().items() if k != "_extra_state"}
    strategy.eval(small_stream.test_stream)
    after = carried(model)
    assert len(before) == len(after) > 0
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


def test_eval_from_a_copy_of_training_memory_differs_from_empty(small_stream, one_thread) -> None:
    results = {}
    for eval_memory in ("empty", "training"):
        plugin = MANNEpisodePlugin(
            num_classes=5, samples_per_class=3, batch_size=2, train_batches=3, eval_batches=2
        )
        model = tiny_model(wipe="never", eval_memory=eval_memory)
        strategy, _ = make_strategy(Naive, model, plugin)
        strategy.train(small_stream.train_stream[0])
        batch = next(
            iter(
                plugin._loader(
                    strategy,
                    plugin._gather(strategy, [small_stream.test_stream[0].dataset], None, "t"),
                    model,
                    ("x",),
                    1,
                    None,
                    train=False,
                )
            )
        )
        model.eval()
        results[eval_memory] = model(batch[0])
    assert not torch.allclose(results["empty"], results["training"])


def test_carried_memory_is_saved_with_the_weights(small_stream, one_thread) -> None:
    plugin = MANNEpisodePlugin(
        num_classes=5, samples_per_class=3, batch_size=2, train_batches=2, eval_batches=1
    )
    model = tiny_model(wipe="never")
    strategy, _ = make_strategy(Naive, model, plugin)
    strategy.train(small_stream.train_stream[0])
    saved = model.state_dict()
    fresh = tiny_model(wipe="never")
    fresh.load_state_dict(saved)
    restored = fresh.carry.peek(lambda size: fresh.mann.initial_state(size))
    assert all(
        torch.equal(a, b) for a, b in zip(carried(model), state_leaves(restored), strict=True)
    )


def test_no_host_sync_when_sampling_and_stepping(monkeypatch) -> None:
    """Pool sampling (jitter, groups) and the EpisodicMANN forward/backward never read values
    back to the host, so the plugin's loop does not stall a GPU."""
    from mann_lightning.data.pool import ClassPool, sample_pool_episodes

    labels = torch.arange(8).repeat_interleave(torch.tensor([1, 2, 3, 4, 5, 6, 7, 8]))
    pool = ClassPool.from_tensors(torch.rand(labels.numel(), 400), labels, (labels > 5).long())
    model = tiny_model(wipe="never")

    def forbidden(*args, **kwargs):
        raise AssertionError("host synchronisation")

    for name in ("item", "cpu", "tolist", "nonzero", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    monkeypatch.setattr(torch, "nonzero", forbidden)
    for index in range(2):
        generator = torch.Generator().manual_seed(index)
        batch = sample_pool_episodes(pool, 5, 4, 3, generator, "onehot", (3, 2), 20, 0.1, 10.0)
        x, y, _, _ = to_minibatch(batch, "onehot")
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
    monkeypatch.undo()
    assert model.carry.state is not None and torch.isfinite(loss)
