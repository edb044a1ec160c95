"""``mann-report``: test results of several runs in one paper-style table, with curves.

Usage::

    mann-report runs/*/version_*/test_results.json --paper table1 \\
        [--labels MANN LSTM ...] [--out DIR] [--curves [--metrics a.csv b.csv ...]] \\
        [--target 82.8]

Each argument is a ``test_results.json`` written by ``mann test`` (or by the kNN baseline:
the same schema, ``model`` and ``accuracy_percent``, optional ``ci95_percent`` and
``episodes``), or a folder holding one. The command prints one Markdown table, a row per run:
accuracy (%) at the 1st, 2nd, 3rd, 4th, 5th and 10th presentation of a class with the 95%
bootstrap interval over test episodes where the file has one (``45.0 [43.1, 46.9]``), the
number of test episodes, the training step of the tested checkpoint and the training wall
time up to it. Older result files without intervals or checkpoint details are shown without
them. Regression results (log-likelihoods) are not tables of this kind and are refused.

``--paper`` adds rows of Santoro et al. (2016), labelled ``paper``, for comparison. Only
these rows are transcribed (from the project's issue tracker, which quotes the paper): Table 1
(5 classes, one-hot labels): MANN (LRUA), LSTM, and Human at the 2nd and 10th presentation
only; Table 2, 15 classes, string labels: MANN (LRUA) and MANN (NTM), both with an LSTM
controller. Table 2's other rows (kNN, feedforward, LSTM, and every 5-class row) are
left out rather than risk wrong numbers, so ``table2-5`` adds no row (a note says so).

``--out DIR`` writes the table to ``DIR/report.md``; with ``--curves`` also
``DIR/curves.png``: validation accuracy at the 2nd and 10th presentation against training
steps and against training wall time, one colour per run, read from each training run's
``metrics.csv`` (found through the result file's ``checkpoint.train_log_dir``, or given with
``--metrics``, one per result file). See :mod:`mann_lightning.report_curves`.

Bad input (a missing file, a file that is not a result) stops with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .learning_curves import run_label
from .report_curves import CurvesError, draw_report_curves
from .report_table import COLUMNS, PAPER, markdown, notes, paper_rows, result_row

RESULT_FILE = "test_results.json"


class ReportError(Exception):
    """Bad input: reported in one line, exit code 2."""


# ---------------------------------------------------------------------------- result files
def result_file(path: Path) -> Path:
    """The result file an argument stands for (a folder: its ``test_results.json``)."""
    if path.is_dir():
        if (path / RESULT_FILE).is_file():
            return path / RESULT_FILE
        raise ReportError(f"{path}: folder without {RESULT_FILE}.")
    if not path.is_file():
        raise ReportError(f"{path}: no such file.")
    return path


def load_result(path: Path) -> dict[str, Any]:
    """A classification result file as a dict; :class:`ReportError` for anything else."""
    file = result_file(path)
    try:
        payload = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{file}: not a JSON result file ({error}).") from None
    if not isinstance(payload, dict):
        raise ReportError(f"{file}: not a result file (a JSON object is expected).")
    if "accuracy_percent" not in payload:
        if "per_step" in payload:
            raise ReportError(
                f"{file}: a regression result (log-likelihood per step); mann-report tables "
                "classification accuracy by presentation only."
            )
        raise ReportError(f"{file}: not a test result file (no 'accuracy_percent').")
    accuracy = payload["accuracy_percent"]
    if not isinstance(accuracy, dict) or not accuracy:
        raise ReportError(f"{file}: 'accuracy_percent' must map presentations to percentages.")
    for column, value in accuracy.items():
        if not _is_percentage(value):
            raise ReportError(
                f"{file}: accuracy_percent[{column!r}] is {value!r}; a percentage in [0, 100] "
                "(or NaN / null for a presentation the episodes do not reach) is expected."
            )
    if all(value is None or math.isnan(value) for value in accuracy.values()):
        raise ReportError(f"{file}: every accuracy_percent value is NaN or null; nothing to show.")
    if not any(column in accuracy for column in COLUMNS):
        raise ReportError(
            f"{file}: accuracy_percent has none of the table's presentations "
            f"({', '.join(COLUMNS)}); its keys are {', '.join(map(repr, accuracy))}."
        )
    for key in ("checkpoint", "ci95_percent"):  # optional; the table reads them as mappings
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise ReportError(f"{file}: {key!r} is {payload[key]!r}; a JSON object is expected.")
    intervals = payload.get("ci95_percent") or {}
    for column, pair in intervals.items():
        if pair is not None and not (
            isinstance(pair, list) and len(pair) == 2 and all(_is_percentage(v) for v in pair)
        ):
            raise ReportError(
                f"{file}: ci95_percent[{column!r}] is {pair!r}; [low, high] percentages expected."
            )
    return payload


def _is_percentage(value: Any) -> bool:
    """A number in ``[0, 100]``, or NaN / ``None`` (a presentation the episodes do not reach)."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isnan(value) or 0 <= value <= 100


def default_label(file: Path, payload: dict[str, Any]) -> str:
    """``<model> (<run folder>)``, e.g. ``LSTM + LRUAMemory (demo/version_1)``."""
    model = str(payload.get("model", "run"))
    return f"{model} ({run_label(file)})"


# ---------------------------------------------------------------------------- command
def build_report(
    files: Sequence[Path], paper: str = "none", labels: Sequence[str] | None = None
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """``(markdown, payloads, labels)`` of the result files."""
    if labels is not None and len(labels) != len(files):
        raise ReportError(f"{len(labels)} labels for {len(files)} result files.")
    payloads = [load_result(file) for file in files]
    names = (
        list(labels)
        if labels
        else [default_label(f, p) for f, p in zip(files, payloads, strict=True)]
    )
    rows = [result_row(name, payload) for name, payload in zip(names, payloads, strict=True)]
    if paper != "none":
        rows += paper_rows(paper)
    text = markdown(rows, first="run") + "\n\n" + "\n".join(notes(payloads, paper))
    return text, payloads, names


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Bad arguments: one line on stderr, exit code 2."""
        self.exit(2, f"mann-report: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mann-report",
        description="Test results of several runs in one paper-style Markdown table.",
    )
    parser.add_argument("results", nargs="+", type=Path, help="test_results.json files or folders")
    parser.add_argument(
        "--paper", choices=["none", *PAPER], default="none", help="add the paper's rows"
    )
    parser.add_argument("--labels", nargs="+", help="one label per result file")
    parser.add_argument("--out", type=Path, help="folder for report.md (and curves.png)")
    parser.add_argument("--curves", action="store_true", help="also draw DIR/curves.png")
    parser.add_argument(
        "--metrics", nargs="+", type=Path, help="training metrics.csv per result file (curves)"
    )
    parser.add_argument("--target", type=float, help="accuracy (%%) drawn as a line on the curves")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (see the module docstring); 0, or exit code 2 on bad input."""
    args = parser().parse_args(argv)
    try:
        curves = args.curves or args.metrics is not None
        if curves and args.out is None:
            raise ReportError("--curves needs --out DIR (curves.png is written there).")
        if args.target is not None and not 0 <= args.target <= 100:  # NaN too
            raise ReportError(f"--target {args.target}: an accuracy in percent, 0 to 100.")
        if args.out is not None and args.out.exists() and not args.out.is_dir():
            raise ReportError(f"--out {args.out} is a file; give a folder for report.md.")
        files = [result_file(path) for path in args.results]
        if args.metrics is not None and len(args.metrics) != len(files):  # before writing
            raise ReportError(f"{len(args.metrics)} --metrics files for {len(files)} result files.")
        text, payloads, names = build_report(files, args.paper, args.labels)
        print(text)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "report.md").write_text(text + "\n")
            print(f"\nwritten to {args.out / 'report.md'}")
        if curves:
            out = draw_report_curves(
                files, payloads, names, args.out / "curves.png", args.metrics, args.target
            )
            print(f"learning curves written to {out}")
    except (ReportError, CurvesError, OSError) as error:
        print(f"mann-report: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
