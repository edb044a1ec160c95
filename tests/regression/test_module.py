"""``MANNRegressor``: task merge, Gaussian head, grid predictions, test report, learning."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from mann_lightning.memory import LRUAMemory
from mann_lightning.regression import (
    GPEpisodes,
    MANNRegressor,
    gaussian_log_likelihood,
    gp_step_predictive,
)
from mann_lightning.regression.compare import main as compare_main


def _small(data: GPEpisodes, **kwargs) -> MANNRegressor:
    torch.manual_seed(0)
    memory = LRUAMemory(16, 16, num_reads=2)
    return MANNRegressor(task=data.task, memory=memory, controller_size=48, **kwargs)


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    return L.Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, **kwargs)  # fmt: skip


def test_task_merge_and_errors() -> None:
    data = GPEpisodes(x_dim=2)
    model = MANNRegressor(task=data.task, memory="none", controller_size=8)
    assert model.x_dim == 2 and model.prior == data.prior
    assert model.model.input_size == 2 and model.model.label_size == 1
    with pytest.raises(ValueError, match="disagrees"):
        MANNRegressor(x_dim=1, task=data.task, memory="none", controller_size=8)
    with pytest.raises(ValueError, match="disagrees"):
        MANNRegressor(prior={"lengthscale": 3.0}, task=data.task, memory="none")
    with pytest.raises(ValueError, match="x_dim"):
        MANNRegressor(memory="none")
    plain = MANNRegressor(x_dim=3, memory="none", controller_size=8)
    assert plain.prior is None and plain.model_name == "LSTM"


def test_gaussian_head_and_loss() -> None:
    data = GPEpisodes(batch_size=3, episode_length=6)
    model = _small(data, min_variance=0.05)
    batch = data.batch("train", 0)
    outputs, _ = model(batch.inputs, batch.prev_labels)
    mean, var = model.predictive(outputs)
    assert mean.shape == var.shape == (3, 6) and (var >= 0.05).all()
    loss = model.loss(outputs, batch)
    expected = -gaussian_log_likelihood(batch.targets[..., 0], mean, var).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert model.model.output.weight.grad is not None


def test_predict_on_grid_matches_the_episode_step() -> None:
    data = GPEpisodes(batch_size=1, episode_length=8)
    model = _small(data).eval()
    batch = data.batch("test", 0)
    x, y = batch.inputs[0], batch.targets[0, :, 0]
    outputs, _ = model(batch.inputs, batch.prev_labels)
    mean, var = model.predictive(outputs[0])
    queries = torch.stack([x[5], x[0], x[5]])
    grid_mean, grid_var = model.predict_on_grid(x[:5], y[:5], queries)
    torch.testing.assert_close(grid_mean[[0, 2]], mean[[5, 5]], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grid_var[0], var[5], atol=1e-5, rtol=1e-4)


def test_test_report_tables_plots_and_compare(tmp_path: Path, capsys) -> None:
    data = GPEpisodes(batch_size=4, episode_length=9, test_batches=2)
    model = _small(data)
    _trainer(tmp_path).test(model, datamodule=data)
    payload = json.loads((tmp_path / "test_results.json").read_text())
    assert payload["model"] == "MANN (LRUA)" and payload["episodes"] == 8
    rows = payload["per_step"]
    assert set(rows) == {"MANN (LRUA)", "exact GP"} and len(rows["exact GP"]) == 9
    batches = [data.batch("test", i) for i in range(2)]
    y = torch.cat([b.targets[..., 0] for b in batches]).double()
    x = torch.cat([b.inputs for b in batches])
    expected = gaussian_log_likelihood(y, *gp_step_predictive(x, y, data.prior)).mean(0)
    torch.testing.assert_close(torch.tensor(rows["exact GP"], dtype=torch.float64), expected)
    assert "| exact GP |" in (tmp_path / "test_results.md").read_text()
    for png in ("loglik_per_step.png", "fit_1d.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    # a second run (the LSTM baseline) on the same episodes merges into one table
    lstm_dir = tmp_path / "lstm"
    lstm = MANNRegressor(task=data.task, memory="none", controller_size=16)
    _trainer(lstm_dir).test(lstm, datamodule=data)
    merged = compare_main([str(tmp_path), str(lstm_dir), "--out", str(tmp_path / "cmp")])
    assert list(merged) == ["MANN (LRUA)", "LSTM", "exact GP"]
    assert "| LSTM |" in capsys.readouterr().out
    assert (tmp_path / "cmp" / "loglik_per_step.png").exists()


def _test_loglik(model: MANNRegressor, data: GPEpisodes) -> float:
    model.eval()
    with torch.no_grad():
        lls = [model.log_likelihood(model(b.inputs, b.prev_labels)[0], b)
               for b in data.test_dataloader()]  # fmt: skip
    model.train()
    return torch.cat(lls).mean().item()


def _train_and_compare(tmp_path: Path, steps: int) -> tuple[float, float]:
    data = GPEpisodes(episode_length=10, batch_size=16, train_batches_per_epoch=steps,
                      val_batches=0, test_batches=4)  # fmt: skip
    model = _small(data, lr=3e-3, plot=False)
    before = _test_loglik(model, data)
    _trainer(tmp_path, max_steps=steps, limit_val_batches=0).fit(model, datamodule=data)
    return before, _test_loglik(model, data)


def test_short_training_improves_log_likelihood(tmp_path: Path) -> None:
    before, after = _train_and_compare(tmp_path, steps=150)
    # observed: about -1.49 -> -1.19 nats per step
    assert after > before + 0.15, (before, after)


@pytest.mark.slow
def test_longer_training_approaches_the_gp(tmp_path: Path) -> None:
    before, after = _train_and_compare(tmp_path, steps=600)
    # observed: about -1.49 -> -0.99 (the exact GP: -0.21)
    assert after > before + 0.35, (before, after)


def test_test_report_counts_the_episodes_of_every_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under DDP the episode count is read from the synced metric state: a second process
    with as many episodes is faked by a sync that doubles the count (compute() restores the
    local state, so the count must be read inside ``sync_context``)."""
    from contextlib import contextmanager

    from mann_lightning.regression.metrics import StepLogLikelihood

    @contextmanager
    def doubled(self: StepLogLikelihood, *args: object, **kwargs: object):
        local = self.count
        self.count = 2 * local
        try:
            yield
        finally:
            self.count = local

    monkeypatch.setattr(StepLogLikelihood, "sync_context", doubled)
    data = GPEpisodes(batch_size=4, episode_length=9, test_batches=2)
    _trainer(tmp_path).test(_small(data), datamodule=data)
    assert json.loads((tmp_path / "test_results.json").read_text())["episodes"] == 16
