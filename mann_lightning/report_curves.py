"""Learning curves for ``mann-report --curves``: accuracy against steps and wall time.

For every run, validation accuracy at the 2nd and 10th presentation (``val/acc_inst_2``,
``val/acc_inst_10``) from the training run's CSVLogger ``metrics.csv``, drawn against the
training step (left panel) and against the training wall time (right panel). The wall time
comes from ``time/wall_s``, which the :class:`~mann_lightning.run_clock.RunClock` callback
logs with the training rows; at a validation step it is interpolated (linearly, by step)
from those rows. Runs whose ``metrics.csv`` has no ``time/wall_s`` appear in the steps panel
only, with a printed note.

The ``metrics.csv`` of a run is given explicitly (``--metrics``) or found through the result
file's ``checkpoint.train_log_dir`` (the training run's log folder, stored in the checkpoint
by ``RunClock``): as written, relative to the current folder, or relative to a folder above
the result file. A resumed training run logs each session in its own ``version_*`` folder;
the curves follow the run back through the earlier sessions (:func:`session_chain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .learning_curves import csv_curve, resolve
from .run_clock import WALL_KEY

METRICS: tuple[tuple[str, str, str], ...] = (
    ("val/acc_inst_2", "2nd", "-"),
    ("val/acc_inst_10", "10th", "--"),
)


class CurvesError(ValueError):
    """No curve could be drawn (reported by ``mann-report`` in one line)."""


def find_metrics(result: Path, payload: dict[str, Any]) -> Path | None:
    """The training ``metrics.csv`` named by the result's ``checkpoint.train_log_dir``."""
    log_dir = (payload.get("checkpoint") or {}).get("train_log_dir")
    if not log_dir:
        return None
    folder = Path(log_dir)
    candidates = [folder]
    if not folder.is_absolute():
        candidates += [parent / folder for parent in result.resolve().parents]
    for candidate in candidates:
        if (candidate / "metrics.csv").is_file():
            return candidate / "metrics.csv"
    return None


def wall_at(steps: Sequence[float], clock: tuple[list[float], list[float]]) -> np.ndarray:
    """Wall time at ``steps``, linear in step between (and beyond) the logged rows."""
    known = np.asarray(clock[0], dtype=float)
    seconds = np.asarray(clock[1], dtype=float)
    order = np.argsort(known, kind="stable")
    known, seconds = known[order], seconds[order]
    at = np.asarray(steps, dtype=float)
    if len(known) == 1:
        return np.full_like(at, seconds[0])
    wall = np.interp(at, known, seconds)
    for side, (a, b) in (("low", (0, 1)), ("high", (-2, -1))):
        span = known[b] - known[a]
        if span <= 0:
            continue
        slope = (seconds[b] - seconds[a]) / span
        outside = at < known[0] if side == "low" else at > known[-1]
        edge = 0 if side == "low" else -1
        wall[outside] = seconds[edge] + slope * (at[outside] - known[edge])
    return np.maximum(wall, 0.0)


def _first_step(file: Path) -> float | None:
    try:
        steps, _ = csv_curve(file, WALL_KEY)
    except KeyError:
        return None
    return min(steps) if steps else None


def session_chain(file: Path) -> list[Path]:
    """``metrics.csv`` of every session of a resumed run, oldest first, ending with ``file``.

    A session resumed from a checkpoint logs in the next ``version_<n>`` folder and starts
    at a step above 0; while it does, the highest earlier version whose training rows begin
    below that step is taken as the session before it.
    """
    chain = [file]
    folder = file.parent
    if not folder.name.startswith("version_") or not folder.name[8:].isdigit():
        return chain
    earlier = sorted(
        (int(p.parent.name[8:]), p)
        for p in folder.parent.glob("version_*/metrics.csv")
        if p.parent.name[8:].isdigit() and int(p.parent.name[8:]) < int(folder.name[8:])
    )
    while (start := _first_step(chain[0])) is not None and start > 0 and earlier:
        _, candidate = earlier.pop()
        first = _first_step(candidate)
        if first is not None and first < start:
            chain.insert(0, candidate)
    return chain


def run_curves(file: Path) -> tuple[dict[str, tuple[list[float], list[float]]], Any, list[str]]:
    """``({metric: (steps, accuracy %)}, (steps, wall_s) or None, notes)`` of a run's
    ``metrics.csv``, earlier sessions of a resumed run included (rows a later session
    redid are taken from the later one)."""
    chain = session_chain(file)
    starts = [_first_step(f) for f in chain[1:]] + [None]
    curves: dict[str, tuple[list[float], list[float]]] = {}
    notes: list[str] = []
    for metric in [m for m, _, _ in METRICS] + [WALL_KEY]:
        steps: list[float] = []
        values: list[float] = []
        for part, until in zip(chain, starts, strict=True):
            try:
                part_steps, part_values = csv_curve(part, metric)
            except KeyError:
                if metric != WALL_KEY:
                    notes.append(f"{part}: no {metric} column.")
                continue
            keep = [i for i, s in enumerate(part_steps) if until is None or s < until]
            steps += [part_steps[i] for i in keep]
            values += [part_values[i] for i in keep]
        if steps and metric != WALL_KEY:
            curves[metric] = (steps, [100.0 * v for v in values])
        elif steps:
            curves[metric] = (steps, values)
    clock = curves.pop(WALL_KEY, None)
    return curves, clock, notes


def draw_report_curves(
    files: Sequence[Path],
    payloads: Sequence[dict[str, Any]],
    labels: Sequence[str],
    out: Path,
    metrics: Sequence[Path] | None = None,
    target: float | None = None,
) -> Path:
    """Draw ``out`` (PNG): a steps panel and, where any run logged its time, a time panel."""
    if metrics is not None and len(metrics) != len(files):
        raise CurvesError(f"{len(metrics)} --metrics files for {len(files)} result files.")
    runs = []
    for index, (file, payload, label) in enumerate(zip(files, payloads, labels, strict=True)):
        if metrics is not None:
            if not metrics[index].exists():
                raise CurvesError(f"{metrics[index]}: no such file.")
            csv_file: Path | None = resolve(metrics[index])
        else:
            csv_file = find_metrics(file, payload)
        if csv_file is None:
            print(
                f"note: {label}: no training metrics.csv found (checkpoint.train_log_dir); "
                "not in the curves (give it with --metrics)."
            )
            continue
        curves, clock, notes = run_curves(csv_file)
        for note in notes:
            print(f"note: {label}: {note}")
        if not curves:
            print(f"note: {label}: {csv_file} has no validation accuracy; not in the curves.")
            continue
        if clock is None:
            print(
                f"note: {label}: {csv_file} has no {WALL_KEY} column (logged by the RunClock "
                "callback); steps plot only."
            )
        runs.append((label, curves, clock))
    if not runs:
        raise CurvesError("no learning curve to draw (no run with a metrics.csv).")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [run for run in runs if run[2] is not None]
    longest = max((max(wall_at(c[m][0], clock)) for _, c, clock in timed for m in c), default=0.0)
    hours = longest > 2 * 3600
    scale, unit = (3600.0, "hours") if hours else (60.0, "minutes")
    fig, axes = plt.subplots(
        1, 2 if timed else 1, figsize=(12 if timed else 6.5, 4.2), squeeze=False
    )
    by_step, by_time = axes[0][0], (axes[0][1] if timed else None)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, curves, clock) in enumerate(runs):
        colour = colours[index % len(colours)]
        for metric, name, style in METRICS:
            if metric not in curves:
                continue
            steps, values = curves[metric]
            line = dict(color=colour, linestyle=style, marker=".", label=f"{label}, {name}")
            by_step.plot(steps, values, **line)
            if by_time is not None and clock is not None:
                by_time.plot(wall_at(steps, clock) / scale, values, **line)
    for ax, xlabel in ((by_step, "training step"), (by_time, f"training wall time ({unit})")):
        if ax is None:
            continue
        if target is not None:
            ax.axhline(target, color="grey", linestyle=":", label=f"target {target:g}%")
        ax.set(xlabel=xlabel, ylabel="validation accuracy (%)", ylim=(0, 102))
        ax.grid(alpha=0.3)
    by_step.legend(fontsize=7)
    fig.suptitle("Validation accuracy at the 2nd (solid) and 10th (dashed) presentation")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
