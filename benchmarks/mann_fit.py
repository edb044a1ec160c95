"""``mann fit`` itself, timed from its own log: ms per step of a config under compile settings.

Runs the real command, ``python -m mann_lightning fit --config CONFIG --trainer.max_time
...``, once per ``--compile`` setting, one after the other, each in a fresh scratch folder,
with everything the config brings (logger, validation, checkpoints, callbacks). The run keeps
the config's ``max_steps``, so ``compile: auto`` decides as in a full run; ``max_time`` stops
it. Step times come from the ``time/wall_s`` column that ``mann_lightning.run_clock.RunClock``
logs every ``log_every_n_steps``: the median, over consecutive logged steps, of the time per
step, leaving out the first window (compiling) and windows with a validation in them (their
ends differ by more than 3x the median):

    python benchmarks/mann_fit.py --config configs/omniglot_5way_onehot.yaml --minutes 4 \\
        --compile auto none

Separate runs of one setting spread by 10-20% on a machine whose speed drifts; compare
ratios of runs made one after the other, and repeat.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import yaml

from mann_lightning.learning_curves import csv_curve
from mann_lightning.run_clock import WALL_KEY


class Timing(NamedTuple):
    """One ``mann fit`` run: what it did and how fast."""

    setting: str
    steps: int
    ms_per_step: float
    compiled: str  # what ``compile: auto`` chose, from its log line ("" if not auto)


def logged_steps(metrics: Path) -> list[tuple[int, float]]:
    """``(step, wall seconds)`` of every row of a CSV logger's ``metrics.csv`` with a wall time."""
    try:
        steps, walls = csv_curve(metrics, WALL_KEY)
    except KeyError:
        raise SystemExit(
            f"{metrics}: no {WALL_KEY} column; add the callback "
            "mann_lightning.run_clock.RunClock to the config's trainer.callbacks."
        ) from None
    return [(int(step), wall) for step, wall in zip(steps, walls, strict=True)]


def median_ms_per_step(points: list[tuple[int, float]]) -> float:
    """Median ms per step over consecutive logged steps, without the first window and
    without windows over 3x the median (a validation or checkpoint inside them)."""
    windows = [
        1000 * (t2 - t1) / (s2 - s1)
        for (s1, t1), (s2, t2) in zip(points[1:], points[2:], strict=False)
        if s2 > s1
    ]
    if not windows:
        raise SystemExit("too few logged steps: run longer (--minutes) or log more often.")
    middle = statistics.median(windows)
    return statistics.median([w for w in windows if w <= 3 * middle])


def time_fit(config: Path, setting: str, minutes: float, extra: list[str]) -> Timing:
    """Run ``mann fit`` with ``compile=setting`` for ``minutes`` and time its steps."""
    seconds = round(minutes * 60)
    max_time = f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    with tempfile.TemporaryDirectory(prefix="mann_fit_") as folder:
        command = [
            sys.executable, "-m", "mann_lightning", "fit", "--config", str(config.resolve()),
            f"--trainer.max_time={max_time}", "--trainer.enable_progress_bar=false",
            f"--model.init_args.compile={setting}", *extra,
        ]  # fmt: skip
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"mann fit failed ({setting}):\n{done.stderr[-3000:]}")
        found = sorted(Path(folder).rglob("metrics.csv"))
        if not found:
            raise SystemExit(
                f"mann fit ({setting}) wrote no metrics.csv: the config needs a CSVLogger"
            )
        points = logged_steps(found[-1])
    said = re.search(r"compile='auto'.*", done.stderr + done.stdout)
    compiled = "" if said is None else "compiled" if "compiling the" in said.group() else "eager"
    return Timing(setting, points[-1][0] if points else 0, median_ms_per_step(points), compiled)


def batch_size(config: Path, extra: list[str] | None = None) -> int:
    """Episodes per step: the last ``--data.init_args.batch_size`` among the ``extra``
    overrides, else the config's ``data.init_args.batch_size`` (16 if unset)."""
    words = list(extra or [])
    found = None
    for i, word in enumerate(words):
        flag, equals, value = word.partition("=")
        if flag in ("--data.init_args.batch_size", "--data.batch_size"):
            found = value if equals else (words[i + 1] if i + 1 < len(words) else None)
    if found is not None:
        return int(found)
    data = (yaml.safe_load(config.read_text()) or {}).get("data", {})
    return int(data.get("init_args", {}).get("batch_size", 16))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/omniglot_5way_onehot.yaml"))
    parser.add_argument("--compile", nargs="+", default=["auto", "none"])
    parser.add_argument("--minutes", type=float, default=4.0, help="wall time of each run")
    parser.add_argument("extra", nargs="*", help="more mann fit overrides, after --")
    args = parser.parse_args(argv)
    episodes = batch_size(args.config, args.extra)
    rows = [time_fit(args.config, setting, args.minutes, args.extra) for setting in args.compile]
    base = rows[-1].ms_per_step
    print(f"| compile | steps in {args.minutes:g} min | ms/step | episodes/s | last / this |")
    print("|---|---|---|---|---|")
    for row in rows:
        name = f"{row.setting} ({row.compiled})" if row.compiled else row.setting
        print(
            f"| {name} | {row.steps} | {row.ms_per_step:.1f} | "
            f"{1000 * episodes / row.ms_per_step:.0f} | {base / row.ms_per_step:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
