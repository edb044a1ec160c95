"""``MANNRegressor``: the shared :class:`MANNModule` with a Gaussian output head.

The network reads ``(x_t, y_{t-1})`` and emits two numbers per step, the predictive mean
of ``y_t`` and a raw variance mapped through ``softplus`` (plus ``min_variance``); it is
trained by the Gaussian negative log-likelihood. At validation and test time the exact
GP posterior predictive of the same steps is computed alongside (float64), and ``mann
test`` prints and writes the per-step log-likelihood table and the Fig. 5 / Fig. 6 PNGs.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor, nn

from ..module import MANNModule
from ..settings_checks import merge_task_value
from .data import GPEpisodeBatch
from .gp import (
    GPPrior,
    gaussian_log_likelihood,
    gaussian_nll,
    gp_posterior,
    gp_step_predictive,
    sample_conditional_function,
)
from .metrics import StepLogLikelihood, loglik_table, summary, trim
from .plots import FitPanel, plot_fit_1d, plot_loglik_per_step

GP_ROW = "exact GP"


class MANNRegressor(MANNModule):
    """Few-shot regression of functions drawn from a GP (the paper's Figs. 5 and 6).

    Args:
        x_dim: Input dimensions ``d``; taken from the data module when None.
        prior: GP hyperparameters (:class:`~.gp.GPPrior` fields) for the exact-GP reference;
            taken from the data module when None. Without one the GP row is left out.
        task: Filled in by the CLI from ``data.task``; explicit arguments must agree.
        min_variance: Floor added to the predicted variance (keeps the NLL bounded).
        max_tracked_steps: Step indices kept by the per-step log-likelihood metric.
        plot: Write the Fig. 5 (1D only) and Fig. 6 PNGs at the end of ``test``.
        **kwargs: Memory, controller and optimisation arguments of :class:`MANNModule`.
    """

    def __init__(
        self,
        x_dim: int | None = None,
        prior: dict[str, Any] | None = None,
        task: dict[str, Any] | None = None,
        min_variance: float = 1e-4,
        max_tracked_steps: int = 100,
        plot: bool = True,
        **kwargs: Any,
    ) -> None:
        task = dict(task or {})
        x_dim = merge_task_value("x_dim", x_dim, task, default=None)
        if prior is not None:
            prior = dict(GPPrior(**prior).check()._asdict())
        prior = merge_task_value("prior", prior, task, default=None)
        if x_dim is None or x_dim < 1:
            raise ValueError(
                f"MANNRegressor: x_dim must be >= 1, got {x_dim}; set model.init_args.x_dim "
                "or use a data module that provides it (GPEpisodes)."
            )
        if min_variance <= 0:
            raise ValueError(f"MANNRegressor: min_variance must be positive, got {min_variance}.")
        super().__init__(input_size=x_dim, num_outputs=2, label_size=1, **kwargs)
        self.save_hyperparameters()
        self.save_specs_in_hparams()
        self.x_dim, self.min_variance, self.plot = x_dim, min_variance, plot
        self.prior = GPPrior(**prior).check() if prior is not None else None
        self.model_ll = nn.ModuleDict(
            {s: StepLogLikelihood(max_tracked_steps) for s in ("val", "test")}
        )
        self.gp_ll = nn.ModuleDict(
            {s: StepLogLikelihood(max_tracked_steps) for s in ("val", "test")}
        )
        self._plot_episode: tuple[Tensor, ...] | None = None

    @property
    def model_name(self) -> str:
        """Row name: ``MANN (LRUA)``, ``MANN (NTM)``, or the bare controller (``LSTM``)."""
        if self.model.memory is not None:
            return f"MANN ({type(self.model.memory).__name__.removesuffix('Memory')})"
        return type(self.model.controller).__name__.removesuffix("Controller")

    def predictive(self, outputs: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance ``[..., T]`` of ``y_t`` from the raw outputs ``[..., T, 2]``."""
        outputs = outputs.float()
        return outputs[..., 0], nn.functional.softplus(outputs[..., 1]) + self.min_variance

    def log_likelihood(self, outputs: Tensor, batch: GPEpisodeBatch) -> Tensor:
        """Per-step log-likelihood ``[B, T]`` of the targets under the network."""
        mean, var = self.predictive(outputs)
        return gaussian_log_likelihood(batch.targets[..., 0].float(), mean, var)

    def loss(self, outputs: Tensor, batch: GPEpisodeBatch) -> Tensor:
        """Gaussian negative log-likelihood, averaged over all steps."""
        return gaussian_nll(batch.targets[..., 0].float(), *self.predictive(outputs))

    def log_train_metrics(self, outputs: Tensor, batch: GPEpisodeBatch) -> None:
        mse = (self.predictive(outputs)[0] - batch.targets[..., 0]).pow(2).mean()
        self.log("train/mse", mse, prog_bar=True, batch_size=batch.inputs.shape[0])

    def update_metrics(self, stage: str, outputs: Tensor, batch: GPEpisodeBatch) -> None:
        self.model_ll[stage].update(self.log_likelihood(outputs, batch))
        y = batch.targets[..., 0].double()
        if self.prior is not None:
            mean, var = gp_step_predictive(batch.inputs, y, self.prior)
            self.gp_ll[stage].update(gaussian_log_likelihood(y, mean, var))
        if stage == "test" and self._plot_episode is None:
            self._plot_episode = (
                batch.inputs[0].detach(),
                y[0].detach(),
                batch.function[0].detach(),
            )

    def on_test_epoch_start(self) -> None:
        self._plot_episode = None

    def report(self, stage: str) -> None:
        rows = {self.model_name: trim(self.model_ll[stage].compute())}
        if self.prior is not None:
            rows[GP_ROW] = trim(self.gp_ll[stage].compute())
        with self.model_ll[stage].sync_context():  # episodes summed over all processes
            episodes = int(self.model_ll[stage].count[0].item())
        for metric in (self.model_ll[stage], self.gp_ll[stage]):
            metric.reset()
        if not rows[self.model_name]:
            return
        means = {name: summary(values)["mean"] for name, values in rows.items()}
        self.log(f"{stage}/ll", means[self.model_name], prog_bar=stage == "val")
        if GP_ROW in rows and rows[GP_ROW]:
            self.log(f"{stage}/gp_ll", means[GP_ROW])
            self.log(f"{stage}/ll_gap", means[GP_ROW] - means[self.model_name])
        if stage != "test" or self.trainer.sanity_checking:
            return
        payload = {
            "stage": stage, "model": self.model_name, "x_dim": self.x_dim,
            "prior": None if self.prior is None else dict(self.prior._asdict()),
            "episodes": episodes, "checkpoint": self.checkpoint_entry(), "per_step": rows,
            "summary": {name: summary(values) for name, values in rows.items()},
        }  # fmt: skip
        folder = self.write_results("test_results", payload, loglik_table(rows))
        if folder is not None and self.plot:
            self.write_plots(folder, rows)

    def write_plots(self, folder: Any, rows: dict[str, list[float]]) -> None:
        """Write the Fig. 6 PNG (and Fig. 5 for 1D), and log them to W&B if it is the logger."""
        paths = {"loglik_per_step": plot_loglik_per_step(
            folder / "loglik_per_step.png", rows, f"GP regression, {self.x_dim}D inputs")}  # fmt: skip
        if self.x_dim == 1 and self.prior is not None and self._plot_episode is not None:
            paths["fit_1d"] = plot_fit_1d(folder / "fit_1d.png", *self.fit_panels(*self._plot_episode),
                                          model_name=self.model_name)  # fmt: skip
        if isinstance(self.logger, WandbLogger):
            for key, path in paths.items():
                self.logger.log_image(key=f"test/{key}", images=[str(path)])

    @torch.no_grad()
    def fit_panels(
        self, x: Tensor, y: Tensor, f: Tensor, grid_size: int = 200
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, list[FitPanel]]:
        """Fig. 5 data for one 1D episode: ``(x, y, grid, function on grid, panels)``."""
        assert self.prior is not None
        span = float(x.max() - x.min())
        grid = torch.linspace(float(x.min()) - 0.05 * span, float(x.max()) + 0.05 * span,
                              grid_size, dtype=torch.float64, device=x.device)[:, None]  # fmt: skip
        generator = torch.Generator(device=x.device).manual_seed(0)
        function = sample_conditional_function(x.double(), f, grid, self.prior, generator)
        steps = len(y)
        panels = []
        for n in sorted({max(1, (steps - 1) // 4), max(1, (steps - 1) // 2), max(1, steps - 1)}):
            mean, var = self.predict_on_grid(x[:n], y[:n], grid)
            gp_mean, gp_var = gp_posterior(x[:n], y[:n], grid, self.prior)
            panels.append(FitPanel(n, mean.cpu(), var.cpu(), gp_mean.cpu(), gp_var.cpu()))
        return x[:, 0].cpu(), y.cpu(), grid[:, 0].cpu(), function.cpu(), panels

    @torch.no_grad()
    def predict_on_grid(
        self, x_obs: Tensor, y_obs: Tensor, x_query: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Network predictive of ``y`` at each ``x_query [Q, d]`` after ``(x_obs [n, d], y_obs [n])``.

        The ``n`` points are fed as an episode, then each query is the step ``n`` from the
        same state (with ``y_{n-1}`` as its previous label), all queries in one batch.
        """
        dtype = next(self.model.parameters()).dtype
        prev = torch.cat([y_obs.new_zeros(1), y_obs[:-1]]).to(dtype)
        _, state = self.model(x_obs[None].to(dtype), prev[None, :, None])
        queries = x_query.shape[0]
        state = _repeat_state(state, queries)
        last = y_obs[-1].to(dtype).expand(queries, 1, 1)
        outputs, _ = self.model(x_query[:, None].to(dtype), last, state)
        return self.predictive(outputs[:, 0])

    def predict_step(self, batch: GPEpisodeBatch, batch_idx: int) -> dict[str, Tensor]:
        outputs, _ = self(batch.inputs, batch.prev_labels)
        mean, var = self.predictive(outputs)
        result = {"mean": mean, "variance": var, "targets": batch.targets[..., 0],
                  "inputs": batch.inputs}  # fmt: skip
        if self.prior is not None:
            gp_mean, gp_var = gp_step_predictive(batch.inputs, batch.targets[..., 0], self.prior)
            result.update(gp_mean=gp_mean, gp_variance=gp_var)
        return result


def _repeat_state(state: Any, copies: int) -> Any:
    """Repeat a batch-of-one (nested) state ``copies`` times along the batch dimension."""
    if isinstance(state, Tensor):
        return state.expand(copies, *state.shape[1:]).contiguous()
    if isinstance(state, tuple):
        values = [_repeat_state(v, copies) for v in state]
        return type(state)(*values) if hasattr(state, "_fields") else tuple(values)
    return state
