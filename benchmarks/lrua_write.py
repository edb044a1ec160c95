"""Compiled LRUA training step: eq. 8's write as a batched matmul against the fused form.

``LRUAMemory.plain_step`` (what ``torch.compile`` sees) writes ``M_t = M'_{t-1} + w^w_t^T k_t``
as a broadcast sum over the heads, which the compiler fuses with the zeroing of the
least-used slot. This benchmark compiles the paper-size MANN (LSTM 200, LRUA 128x40, 4 heads,
50-step episodes, RMSprop) both ways and times them in interleaved rounds in one process,
so that a busy spell hits both::

    python benchmarks/lrua_write.py --batch-size 16 128 --threads 1 2

Each (threads, batch) pair compiles twice (about a minute each on a CPU, cached on disk).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from throughput import MEMORIES, make_train_step

from mann_lightning.memory import LRUAMemory
from mann_lightning.memory.base import cosine_similarity
from mann_lightning.memory.lrua import LRUAState


class MatmulWriteLRUA(LRUAMemory):
    """``LRUAMemory.plain_step`` with the write of eq. 8 as ``[N, H] x [H, W]`` batched matmul."""

    def plain_step(
        self, keys: torch.Tensor, alpha: torch.Tensor, prev_state: LRUAState
    ) -> tuple[torch.Tensor, LRUAState]:
        memory, usage, read_weights, least_used, _ = prev_state
        gate = torch.sigmoid(alpha).unsqueeze(-1)
        lu = least_used.unsqueeze(1)
        write_weights = lu + gate * (read_weights - lu)  # eq. 7
        erase = torch.argmin(usage, dim=-1)
        keep = torch.arange(memory.shape[1], device=memory.device) != erase.unsqueeze(-1)
        memory = memory * keep.unsqueeze(-1).to(memory.dtype)
        memory = memory + write_weights.transpose(1, 2) @ keys  # eq. 8 as a matmul
        read_weights = torch.softmax(cosine_similarity(keys, memory, self.eps), dim=-1)
        reads = read_weights @ memory
        with torch.no_grad():
            usage = (read_weights + write_weights).sum(1).add_(usage, alpha=self.gamma)
            order = torch.sort(usage, dim=-1, stable=True).indices[:, : self.num_reads]
            least_used = torch.zeros_like(usage).scatter_(1, order, 1.0)
        return reads, LRUAState(memory, usage, read_weights, least_used, write_weights)


def main(argv: list[str] | None = None) -> None:
    MEMORIES["LRUA-matmul-write"] = lambda slots: MatmulWriteLRUA(slots, 40, 4)
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
            steps = {name: make_train_step(memory, batch, 128, "episode", 50)
                     for name, memory in (("matmul", "LRUA-matmul-write"), ("fused", "LRUA"))}  # fmt: skip
            for step in steps.values():  # compiles here, untimed
                step()
            times: dict[str, list[float]] = {name: [] for name in steps}
            for _ in range(args.rounds):
                for name, step in steps.items():
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        step()
                    times[name].append(1000 * (time.perf_counter() - start) / args.steps)
            old, new = (statistics.median(times[name]) for name in ("matmul", "fused"))
            print(f"| {threads} | {batch} | {old:.1f} | {new:.1f} | {old / new:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
