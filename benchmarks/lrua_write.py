"""Compiled LRUA training step: eq. 8's write as a batched matmul against the fused form.

``LRUAMemory.plain_step`` (what ``torch.compile`` sees) writes ``M_t = M'_{t-1} + w^w_t^T k_t``
as a broadcast sum over the heads, which the compiler fuses with the zeroing of the
least-used slot; ``StraightforwardLRUA`` (``straightforward_lrua.py``) is the same step with
the write as a batched matmul. Both sides run without the fused C++ kernel (which would
otherwise replace the whole compiled step on a CPU), so only the write differs. This benchmark compiles the paper-size MANN (LSTM 200, LRUA
128x40, 4 heads, 50-step episodes, RMSprop) with each and times them in interleaved rounds
in one process, so that a busy spell hits both::

    python benchmarks/lrua_write.py --batch-size 16 128 --threads 1 2

Each (threads, batch) pair compiles twice (about a minute each on a CPU, cached on disk).
"""

from __future__ import annotations

import argparse

import torch
from train_steps import make_train_step, time_rounds

from mann_lightning.memory import LRUAMemory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    args = parser.parse_args(argv)
    print(
        "| threads | batch | matmul write ms | fused write ms | speed-up |\n|---|---|---|---|---|"
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch_size:
            steps = {
                "matmul": make_train_step("LRUA-plain", batch, 128, "episode", 50),
                "fused": make_train_step(  # plain_step's broadcast write, no C++ kernel
                    "LRUA", batch, 128, "episode", 50,
                    memory=lambda slots: LRUAMemory(slots, 40, 4, fused_kernel=False),
                ),
            }  # fmt: skip
            for step in steps.values():  # compiles here, untimed
                step()
            seconds = time_rounds(steps, args.steps, args.rounds)
            old, new = (1000 * seconds[name] for name in ("matmul", "fused"))
            print(f"| {threads} | {batch} | {old:.1f} | {new:.1f} | {old / new:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
