"""``mann fit`` step time on a quiet and on a busy machine, for several thread settings.

For each setting (torch threads, OpenMP wait policy) the end-to-end step of
``end_to_end.py`` (the paper's 5-way MANN through ``MANNClassifier`` + ``OmniglotEpisodes``)
is timed in a fresh process three ways:

* ``quiet``: alone;
* ``busy loop``: while a pure-Python busy loop occupies one core;
* ``two runs``: while a second identical run trains at the same time (both are timed; the
  slower is reported).

and the table gives ms per step and the slowdown against the setting's quiet time, plus the
ratio to the fastest quiet setting. Settings are ``THREADS:POLICY`` (``POLICY`` is
``OMP_WAIT_POLICY``: ``active`` spins while waiting, ``passive`` sleeps).

    python benchmarks/busy_machine.py --settings 2:active 2:passive 1:active --steps 60
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(threads: int, policy: str, steps: int, compile_mode: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": policy.upper()}
    command = [sys.executable, str(HERE / "end_to_end.py"), "--steps", str(steps),
               "--compile", compile_mode]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def ms_of(process: subprocess.Popen) -> float:
    out, err = process.communicate()
    found = re.search(r"^\| \w+ \| ([\d.]+) \|", out, re.M)
    if not found:
        raise RuntimeError(f"end_to_end.py printed no row:\n{out}\nits errors:\n{err[-2000:]}")
    return float(found.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["2:active", "2:passive", "1:active"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--compile", default="none", choices=["none", "step", "episode"])
    args = parser.parse_args(argv)
    rows = []
    for setting in args.settings:
        threads, policy = setting.split(":")
        quiet = ms_of(run(int(threads), policy, args.steps, args.compile))
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1)
        try:
            loaded = ms_of(run(int(threads), policy, args.steps, args.compile))
        finally:
            busy.kill()
        pair = [run(int(threads), policy, args.steps, args.compile) for _ in range(2)]
        together = max(ms_of(p) for p in pair)
        rows.append((setting, quiet, loaded, together))
    best = min(row[1] for row in rows)
    print(f"compile={args.compile} steps={args.steps} cpus={os.cpu_count()}")
    print(
        "| threads:policy | quiet ms | vs best quiet | busy loop ms | slowdown | two runs ms | speed vs quiet |"
    )
    print("|---|---|---|---|---|---|---|")
    for setting, quiet, loaded, together in rows:
        print(f"| {setting} | {quiet:.1f} | {quiet / best:.2f}x | {loaded:.1f} | {loaded / quiet:.2f}x "
              f"| {together:.1f} | {quiet / together:.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
