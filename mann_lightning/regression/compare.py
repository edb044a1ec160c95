"""Merge the ``test_results.json`` of several runs into one MANN / exact GP / LSTM table.

Each ``mann test`` of a regression run writes its own row and the exact-GP row on the
same fixed test episodes. Run, e.g.::

    python -m mann_lightning.regression.compare \\
        runs/gp_regression_1d/version_1 runs/gp_regression_1d_lstm/version_1 \\
        --out runs/gp_regression_1d_comparison

to print the combined Markdown table and write ``comparison.json``, ``comparison.md`` and
``loglik_per_step.png`` (Fig. 6 with every model) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..strict_json import dumps
from .metrics import loglik_table
from .module import GP_ROW
from .plots import plot_loglik_per_step


def load_results(path: str | Path) -> dict[str, Any]:
    """A run's results: ``path`` is a ``test_results.json`` or the folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / "test_results.json"
    if not path.is_file():
        raise FileNotFoundError(f"No regression test results at {path}; run `mann test` first.")
    payload = json.loads(path.read_text())
    if "per_step" not in payload:
        raise ValueError(f"{path} is not a regression test result (no 'per_step').")
    payload["source"] = str(path)
    return payload


def merge_results(
    results: Sequence[dict[str, Any]], tolerance: float = 1e-6
) -> dict[str, list[float]]:
    """One row per model plus a single exact-GP row.

    Raises:
        ValueError: If the runs' exact-GP rows differ, i.e. they were tested on different
            episodes or priors and are not comparable.
    """
    rows: dict[str, list[float]] = {}
    gp: list[float] | None = None
    for result in results:
        for name, values in result["per_step"].items():
            if name == GP_ROW:
                if gp is not None and (
                    len(gp) != len(values)
                    or any(
                        not math.isclose(a, b, abs_tol=tolerance)
                        for a, b in zip(gp, values, strict=True)
                    )
                ):
                    raise ValueError(
                        f"The exact-GP rows of {result['source']} and an earlier run differ: "
                        "the runs were not tested on the same episodes (same data config and "
                        "eval_seed), so their rows are not comparable."
                    )
                gp = values
                continue
            label = name
            if label in rows:
                label = f"{name} ({Path(result['source']).parent.name})"
            rows[label] = values
    if gp is not None:
        rows[GP_ROW] = gp
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, list[float]]:
    """Command line: merge runs, print the table, optionally write it with a plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="test_results.json files or their folders")
    parser.add_argument("--out", type=Path, default=None, help="folder for the merged files")
    args = parser.parse_args(argv)
    results = [load_results(run) for run in args.runs]
    rows = merge_results(results)
    table = loglik_table(rows)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"runs": [r["source"] for r in results], "per_step": rows}
        (args.out / "comparison.json").write_text(dumps(payload))
        (args.out / "comparison.md").write_text(table + "\n")
        x_dims = {r.get("x_dim") for r in results}
        title = f"GP regression, {x_dims.pop()}D inputs" if len(x_dims) == 1 else "GP regression"
        plot_loglik_per_step(args.out / "loglik_per_step.png", rows, title)
    return rows


if __name__ == "__main__":
    main()
