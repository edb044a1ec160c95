"""``GPEpisodes``: batch layout, determinism, resume, task, validation of arguments."""

from __future__ import annotations

import pytest
import torch

from mann_lightning.regression import GPEpisodeBatch, GPEpisodes


def test_batch_layout() -> None:
    data = GPEpisodes(x_dim=3, episode_length=12, batch_size=5, x_low=-1.0, x_high=1.0)
    data.setup()
    batch = data.batch("train", 0)
    assert isinstance(batch, GPEpisodeBatch)
    assert batch.inputs.shape == (5, 12, 3) and batch.inputs.dtype == torch.float32
    assert batch.prev_labels.shape == batch.targets.shape == (5, 12, 1)
    assert batch.function.shape == (5, 12) and batch.function.dtype == torch.float64
    assert (batch.inputs.abs() <= 1.0).all()
    assert (batch.prev_labels[:, 0] == 0).all()
    torch.testing.assert_close(batch.prev_labels[:, 1:], batch.targets[:, :-1])
    # noise of variance 0.01 around the function
    noise = batch.targets[..., 0].double() - batch.function
    assert 0.03 < noise.std().item() < 0.2
    assert data.task == {
        "x_dim": 3,
        "prior": {"kernel": "se", "lengthscale": 1.0, "signal_variance": 1.0,
                  "noise_variance": 0.01, "jitter": 1e-8},
    }  # fmt: skip


def test_fixed_eval_episodes_and_seeded_training_stream() -> None:
    a, b = GPEpisodes(seed=0, batch_size=4), GPEpisodes(seed=1, batch_size=4)
    torch.testing.assert_close(a.batch("test", 3).targets, b.batch("test", 3).targets)
    assert not torch.equal(a.batch("train", 0).targets, b.batch("train", 0).targets)
    assert not torch.equal(a.batch("val", 0).targets, a.batch("test", 0).targets)
    torch.testing.assert_close(a.batch("train", 5).inputs, a.batch("train", 5).inputs)
    assert len(a.test_dataloader()) == a.test_batches


def test_resume_continues_training_stream() -> None:
    data = GPEpisodes(batch_size=2, train_batches_per_epoch=3)
    first = [batch.targets for batch in data.train_dataloader()]
    state = data.state_dict()
    assert state == {"train_batches_drawn": 3}
    expected = next(iter(data.train_dataloader())).targets  # batch 3
    resumed = GPEpisodes(batch_size=2, train_batches_per_epoch=3)
    resumed.load_state_dict(state)
    torch.testing.assert_close(next(iter(resumed.train_dataloader())).targets, expected)
    assert not any(torch.equal(expected, t) for t in first)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"x_dim": 0}, "x_dim"), ({"x_low": 1.0, "x_high": 0.0}, "x_low"),
     ({"noise_variance": -1.0}, "noise_variance")],
)  # fmt: skip
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GPEpisodes(**kwargs)
