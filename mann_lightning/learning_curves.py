"""Learning curves of several runs side by side, e.g. memory wiped every episode vs never.

Proactive interference, reading (a) of Santoro et al. (2016, Fig. 3): the same training with
the memory wiped at every episode and never wiped. This command draws the runs' curves in one
PNG (docs/interference.md)::

    python -m mann_lightning.learning_curves runs/a/version_0/metrics.csv \\
        runs/b/version_0/metrics.csv --metric val/acc_inst_2 --out curves.png

Each argument is a run:

* a ``mann fit`` CSVLogger file ``metrics.csv``, or a folder holding one, or a logger folder
  with ``version_*`` folders (the highest version is taken): the curve is ``--metric``
  against ``step``, rows without a value skipped;
* a ``mann-continual`` run folder (or its ``results.json``): the curve is the diagonal of the
  accuracy matrix at the presentation of ``--metric`` (``..._inst_N``, else 2): ``A[i][i]``,
  the accuracy on experience ``i`` right after training on it, against ``i``.

Labels are the run folder's name (``a/version_0`` for a version folder) unless ``--labels``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path

Curve = tuple[list[float], list[float]]


def resolve(path: Path) -> Path:
    """The ``metrics.csv`` or ``results.json`` a run argument stands for."""
    if path.is_file():
        return path
    for name in ("metrics.csv", "results.json"):
        if (path / name).is_file():
            return path / name
    versions = sorted(path.glob("version_*/metrics.csv"), key=lambda p: _number(p.parent.name))
    if versions:
        return versions[-1]
    raise FileNotFoundError(f"{path}: no metrics.csv, results.json or version_*/metrics.csv.")


def run_label(file: Path) -> str:
    """The run folder's name, with its parent for a ``version_<n>`` folder."""
    folder = file.parent
    if folder.name.startswith("version_"):
        return f"{folder.parent.name}/{folder.name}"
    return folder.name


def presentation_of(metric: str) -> int:
    """``3`` for ``val/acc_inst_3``; 2 when the name gives no presentation."""
    found = re.search(r"inst_(\d+)$", metric)
    return int(found.group(1)) if found else 2


def csv_curve(file: Path, metric: str) -> Curve:
    """``(steps, values)`` of ``metric`` in a CSVLogger ``metrics.csv``."""
    steps: list[float] = []
    values: list[float] = []
    with file.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if metric not in row:
                raise KeyError(f"{file} has no column {metric!r}.")
            if row[metric] not in ("", None):
                steps.append(float(row["step"]))
                values.append(float(row[metric]))
    return steps, values


def diagonal_curve(file: Path, presentation: int) -> Curve:
    """``(experiences, A[i][i])`` at ``presentation`` from a ``mann-continual`` results.json."""
    results = json.loads(file.read_text())
    matrices = results["accuracy_by_presentation"]
    if not 1 <= presentation <= len(matrices):
        raise ValueError(f"{file} has presentations 1..{len(matrices)}, not {presentation}.")
    matrix = matrices[presentation - 1]
    points = [(i, row[i]) for i, row in enumerate(matrix) if i < len(row) and row[i] is not None]
    return [float(i) for i, _ in points], [float(v) for _, v in points]


def load_curve(path: Path, metric: str) -> tuple[str, Curve, str]:
    """``(label, curve, x label)`` of one run argument."""
    file = resolve(path)
    if file.suffix == ".json":
        curve = diagonal_curve(file, presentation_of(metric))
        return run_label(file), curve, "experience (accuracy right after training on it)"
    return run_label(file), csv_curve(file, metric), "training step"


def draw_curves(
    paths: Sequence[Path], metric: str, out: Path, labels: Sequence[str] | None = None
) -> Path:
    """Draw the runs' curves in one PNG and return ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"{len(labels)} labels for {len(paths)} runs.")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    xlabels = set()
    for index, path in enumerate(paths):
        label, (xs, ys), xlabel = load_curve(path, metric)
        ax.plot(xs, ys, marker="o", label=labels[index] if labels else label)
        xlabels.add(xlabel)
    ax.set(xlabel=" / ".join(sorted(xlabels)), ylabel=metric, ylim=(0, 1.05))
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> Path:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="metrics.csv, results.json or folders")
    parser.add_argument("--metric", default="val/acc_inst_2", help="CSV column to draw")
    parser.add_argument("--out", type=Path, default=Path("learning_curves.png"))
    parser.add_argument("--labels", nargs="+", help="one label per run")
    args = parser.parse_args(argv)
    out = draw_curves(args.runs, args.metric, args.out, args.labels)
    print(f"Learning curves of {len(args.runs)} runs written to {out}")
    return out


def _number(name: str) -> int:
    digits = name.rsplit("_", 1)[-1]
    return int(digits) if digits.isdigit() else -1


if __name__ == "__main__":
    main()
