"""The fused LRUA kernel's two operators alone, us per call: hot and cold caches.

``hot`` repeats one step's tensors (they stay in cache); ``cold`` walks through ``--steps``
steps' tensors, as a training episode does (the backward then reads its saved memories from
RAM). Paper sizes: 128 slots of 40, 4 heads, random inputs.

::

    python benchmarks/lrua_kernel.py --batch-size 16 128 --threads 1 2

The library's allocations go through glibc; ``MALLOC_MMAP_THRESHOLD_=1000000000
MALLOC_TRIM_THRESHOLD_=4000000000`` in the environment keeps large outputs off fresh mappings
and the freed heap unreturned, so that two builds compare alike. Not the first alone: it
fixes glibc's trim threshold at 128 KB, and every freed output of 328 KB (batch 16) goes back
to the system and faults in again (forward 310 against 93 us per call at batch 16, one thread,
2026-12-01; 127 us with both variables).
"""

from __future__ import annotations

import argparse
import time

import torch

from mann_lightning.memory.fused_lrua import fused_lrua_available

Call = tuple[list, list, list]


def step_tensors(batch: int, slots: int, word: int, heads: int, steps: int) -> list[Call]:
    """Per step: the forward's inputs, the backward's saved tensors and incoming gradients."""
    calls = []
    for _ in range(steps):
        least_used = torch.zeros(batch, slots)
        least_used[:, :heads] = 1
        inputs = [
            torch.tanh(torch.randn(batch, heads, word)), torch.randn(batch, heads),
            torch.randn(batch, slots, word), torch.softmax(torch.randn(batch, heads, slots), -1),
            least_used, torch.rand(batch, slots), 0.95, 1e-6,
        ]  # fmt: skip
        out = torch.ops.mann_lrua.forward(*inputs)
        saved = [inputs[0], out[6], inputs[3], least_used, out[7], *out[1:4], out[8], out[9]]
        grads = [torch.randn_like(t) for t in out[:3]] + [torch.zeros_like(out[3])]
        calls.append((inputs, saved, grads))
    return calls


def time_calls(calls: list[Call], cold: bool, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` us per forward and per backward call over the steps."""
    forward = backward = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(len(calls)):
            torch.ops.mann_lrua.forward(*calls[i if cold else 0][0])
        middle = time.perf_counter()
        for i in reversed(range(len(calls))):
            inputs, saved, grads = calls[i if cold else 0]
            torch.ops.mann_lrua.backward(*grads, *saved, 1e-6)
        end = time.perf_counter()
        forward = min(forward, (middle - start) / len(calls) * 1e6)
        backward = min(backward, (end - middle) / len(calls) * 1e6)
    return forward, backward


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16, 128])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--slots", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    if not fused_lrua_available():
        raise SystemExit("the fused LRUA kernel cannot be built here (see the log line above)")
    print("us per call:")
    print("| threads | batch | forward, hot | backward, hot | forward, cold | backward, cold |")
    print("|---|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch_size:
            calls = step_tensors(batch, args.slots, 40, 4, args.steps)
            hot = time_calls(calls, False, args.repeats)
            cold = time_calls(calls, True, args.repeats)
            cells = " | ".join(f"{t:.1f}" for t in (*hot, *cold))
            print(f"| {threads} | {batch} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
