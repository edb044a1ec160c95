"""Figures of a stream run, from its ``results.json``: PNG files, and W&B when it is a logger.

:func:`write_figures` draws (matplotlib, Agg backend) into ``<run_dir>/figures/``:

* ``accuracy_matrix.png``: the 2nd-presentation accuracy matrix as an annotated heatmap (%);
  row ``i`` = after training through experience ``i``, column ``j`` = test experience ``j``;
* ``transfer.png``: forgetting and backward transfer per experience (bars, 2nd presentation);
* ``presentations.png``: accuracy per presentation (1..10) on each test experience after the
  last trained experience (one line per experience, the untrained model dashed);
* ``diagonal_vs_final.png``: per experience, the accuracy just after training on it (the
  diagonal ``A[j][j]``) against the accuracy at the end (the last row ``A[last][j]``).

:func:`wandb_row` is the same as one W&B row: the four images, the accuracy matrix as a
``wandb.Table`` and the means of forgetting and transfer; :func:`write_figures` logs it through
every logger given that has ``log_row`` (:class:`~continual.wandb_logger.StreamWandBLogger`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

#: File name (without ``.png``) of each figure, in the order they are drawn.
FIGURES = ("accuracy_matrix", "transfer", "presentations", "diagonal_vs_final")


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def draw_accuracy_matrix(results: dict[str, Any], path: Path) -> Path:
    """Annotated heatmap of the 2nd-presentation accuracy matrix, in %."""
    matrix = [[100 * _nan(v) for v in row] for row in results["accuracy_matrix"]]
    count = len(results["experiences"])
    fig, ax = plt.subplots(figsize=(2.0 + 0.9 * count, 1.6 + 0.7 * max(len(matrix), 1)))
    shown = ax.imshow(matrix, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            text = "-" if math.isnan(value) else f"{value:.1f}"
            ax.text(j, i, text, ha="center", va="center", color="w" if value < 60 else "k")
    ax.set(xlabel="test experience", ylabel="after training through", xticks=range(count))
    ax.set_yticks(range(len(matrix)))
    ax.set_title("2nd-presentation accuracy (%)")
    fig.colorbar(shown, ax=ax)
    return _save(fig, path)


def draw_transfer(results: dict[str, Any], path: Path) -> Path:
    """Forgetting and backward transfer per experience, in percentage points (bars)."""
    count = len(results["experiences"])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * count), 3.2))
    width = 0.4
    for offset, key, label in ((-0.2, "forgetting", "forgetting"), (0.2, "backward_transfer", "backward transfer")):  # fmt: skip
        values = [100 * _nan(v) for v in results[key]["per_experience"]]
        mean = results[key]["mean"]
        text = f"{label} (mean {100 * mean:.1f})" if mean is not None else f"{label} (undefined)"
        ax.bar([j + offset for j in range(len(values))], values, width, label=text)
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set(xlabel="experience", ylabel="percentage points", xticks=range(count))
    ax.set_xlim(-0.6, count - 0.4)
    ax.set_title("Forgetting, backward transfer")
    ax.legend(fontsize="small")
    return _save(fig, path)


def draw_presentations(results: dict[str, Any], path: Path) -> Path:
    """Accuracy per presentation on each test experience after the last trained experience."""
    by_presentation = results["accuracy_by_presentation"]
    untrained = results.get("untrained_accuracy_by_presentation") or []
    presentations = list(range(1, len(by_presentation) + 1))
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for j in range(len(results["experiences"])):
        if by_presentation and by_presentation[0]:
            final = [100 * _nan(matrix[-1][j]) for matrix in by_presentation]
            (line,) = ax.plot(presentations, final, marker="o", label=f"experience {j}")
            if untrained:
                before = [100 * _nan(row[j]) for row in untrained]
                ax.plot(presentations, before, linestyle="--", color=line.get_color(), alpha=0.5)
    ax.set(xlabel="presentation", ylabel="accuracy (%)", ylim=(0, 100), xticks=presentations)
    ax.set_title("After the last experience (dashed: untrained)")
    ax.legend(fontsize="small")
    return _save(fig, path)


def draw_diagonal_vs_final(results: dict[str, Any], path: Path) -> Path:
    """Per experience: accuracy just after training on it against accuracy at the end."""
    matrix = results["accuracy_matrix"]
    trained = range(len(matrix))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(matrix)), 3.2))
    if matrix:
        ax.plot(trained, [100 * _nan(matrix[j][j]) for j in trained], marker="o",
                label="just after training on it (diagonal)")  # fmt: skip
        ax.plot(trained, [100 * _nan(matrix[-1][j]) for j in trained], marker="s",
                label="after the last experience (final row)")  # fmt: skip
        ax.legend(fontsize="small")
    ax.set(xlabel="experience", ylabel="2nd-presentation accuracy (%)", ylim=(0, 100))
    ax.set_xticks(list(trained))
    ax.set_title("Diagonal vs final row")
    return _save(fig, path)


DRAW = {
    "accuracy_matrix": draw_accuracy_matrix,
    "transfer": draw_transfer,
    "presentations": draw_presentations,
    "diagonal_vs_final": draw_diagonal_vs_final,
}


def wandb_row(results: dict[str, Any], paths: dict[str, Path]) -> dict[str, Any]:
    """The figures, the accuracy matrix (``wandb.Table``) and the transfer means as a W&B row."""
    import wandb

    row: dict[str, Any] = {f"figures/{name}": wandb.Image(str(p)) for name, p in paths.items()}
    columns = ["after"] + [str(j) for j in range(len(results["experiences"]))]
    data = [[i, *row_values] for i, row_values in enumerate(results["accuracy_matrix"])]
    row["results/accuracy_matrix"] = wandb.Table(columns=columns, data=data)
    for key in ("forgetting", "backward_transfer", "forward_transfer"):
        if results.get(key, {}).get("mean") is not None:
            row[f"results/{key}"] = results[key]["mean"]
    return row


def write_figures(
    results: dict[str, Any], folder: Path, loggers: Iterable[Any] = (), iterations: int = 0
) -> dict[str, Path]:
    """Draw every figure into ``folder`` and log them through W&B-capable ``loggers``.

    Args:
        results: The content of ``results.json`` (:meth:`StreamRunner.write_results`).
        folder: Where the PNG files go (the runner uses ``<run_dir>/figures``).
        loggers: Loggers; those with ``log_row(row, iterations)`` get :func:`wandb_row`.
        iterations: The x value of that row (the strategy's training iterations).

    Returns:
        The path of each PNG file, by figure name (:data:`FIGURES`).
    """
    folder = Path(folder)
    paths = {name: DRAW[name](results, folder / f"{name}.png") for name in FIGURES}
    for logger in loggers:
        if hasattr(logger, "log_row"):
            logger.log_row(wandb_row(results, paths), iterations)
    return paths
