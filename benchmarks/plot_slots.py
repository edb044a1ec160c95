"""Draw ms per training step against memory slots from a saved ``throughput.py`` table.

``throughput.py --plot`` draws the same figure while it measures; this script redraws it from
a table printed earlier (the rows with compile ``none`` and batch 16 of dense and sparse
LRUA), so the figure in docs/performance.md comes from the very numbers in its table.

    python benchmarks/plot_slots.py throughput_table.md docs/figures/cost_vs_slots.png
"""

from __future__ import annotations

import argparse
import re

from throughput import plot_slots

ROW = re.compile(r"^\| (LRUA|sparse-LRUA) \| none \| 16 \| (\d+) \| [\d.]+ \| ([\d.]+) \|")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="a file holding throughput.py's printed table")
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--threads", type=int, default=2, help="threads of the measured run")
    args = parser.parse_args(argv)
    by_slots: dict[str, list[tuple[int, float]]] = {}
    with open(args.table) as handle:
        for line in handle:
            found = ROW.match(line.strip())
            if found:
                by_slots.setdefault(found[1], []).append((int(found[2]), float(found[3])))
    if not by_slots:
        parser.error(f"{args.table}: no batch-16 LRUA / sparse-LRUA rows of throughput.py")
    plot_slots(by_slots, args.out, args.threads, 16, 50)


if __name__ == "__main__":
    main()
