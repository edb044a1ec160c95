"""Figures of the regression task, drawn with matplotlib's Agg canvas (no display needed).

- :func:`plot_fit_1d` (paper Fig. 5): one 1D test episode, its function, the observed
  points, and MANN mean +/- 2 std against the exact GP's, after several numbers of points.
- :func:`plot_loglik_per_step` (paper Fig. 6): mean log-likelihood per step for each model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor


class FitPanel(NamedTuple):
    """Predictions on the grid after ``observed`` points (1D tensors of grid length).

    Attributes:
        observed: Number of episode points the predictions condition on.
        mann_mean: MANN predictive mean of ``y`` on the grid.
        mann_var: MANN predictive variance of ``y``.
        gp_mean: Exact GP predictive mean of ``y``.
        gp_var: Exact GP predictive variance of ``y`` (noise included).
    """

    observed: int
    mann_mean: Tensor
    mann_var: Tensor
    gp_mean: Tensor
    gp_var: Tensor


def _band(ax, grid, mean, var, color: str, label: str) -> None:  # noqa: ANN001
    std = var.clamp_min(0).sqrt()
    ax.plot(grid, mean, color=color, lw=1.5, label=f"{label} mean")
    ax.fill_between(grid, mean - 2 * std, mean + 2 * std, color=color, alpha=0.2,
                    label=f"{label} $\\pm 2$ std")  # fmt: skip


def plot_fit_1d(
    path: Path,
    x: Tensor,
    y: Tensor,
    grid: Tensor,
    function: Tensor,
    panels: Sequence[FitPanel],
    model_name: str = "MANN",
) -> Path:
    """Fig. 5: an episode's function with MANN and GP predictive bands; writes a PNG.

    Args:
        path: PNG file to write.
        x: The episode's inputs, ``[T]``.
        y: The episode's noisy observations, ``[T]``.
        grid: Plotting inputs, ``[G]`` (sorted).
        function: The episode's noise-free function on the grid, ``[G]``.
        panels: One panel per number of observed points.
        model_name: Legend name of the network.
    """
    x, y, grid, function = (t.detach().double().cpu() for t in (x, y, grid, function))
    fig = Figure(figsize=(4.2 * len(panels), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        n = panel.observed
        ax.plot(grid, function, color="black", lw=1, ls="--", label="function")
        _band(ax, grid, panel.gp_mean.double().cpu(), panel.gp_var.double().cpu(), "tab:blue", "GP")
        _band(ax, grid, panel.mann_mean.double().cpu(), panel.mann_var.double().cpu(), "tab:red",
              model_name)  # fmt: skip
        ax.scatter(x[:n], y[:n], color="black", s=18, zorder=5, label="observed")
        ax.set_title(f"after {n} point{'s' if n != 1 else ''}")
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[-1].legend(fontsize=7, loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_loglik_per_step(
    path: Path, rows: dict[str, Sequence[float]], title: str = "log-likelihood per step"
) -> Path:
    """Fig. 6: mean predictive log-likelihood against the step index; writes a PNG.

    Args:
        path: PNG file to write.
        rows: Model name -> per-step mean log-likelihood (step 1 first).
        title: Axes title (e.g. the input dimension).
    """
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    styles = {"exact GP": {"color": "black", "ls": "--"}}
    for name, values in rows.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name,
                **styles.get(name, {}))  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step (points observed + 1)")
    ax.set_ylabel("mean log-likelihood")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
