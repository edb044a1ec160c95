"""The fused LRUA kernel's two operators alone, us per call: hot and cold caches.

``hot`` repeats one step's tensors (they stay in cache); ``cold`` walks through ``--steps``
steps' tensors, as a training episode does (the backward then reads its saved memories from
RAM); ``chained`` runs the forward as training does: each step fed the last one's memory and
weights, every output kept until the episode ends (so each step writes its ``M_t`` to lines
not in cache at batch 128, whose 50 saved memories exceed the L3). Paper sizes: 128 slots of
40, 4 heads, random inputs.

::

    python benchmarks/lrua_kernel.py --batch-size 16 128 --threads 1 2

The library's allocations go through glibc; ``MALLOC_MMAP_THRESHOLD_=1000000000
MALLOC_TRIM_THRESHOLD_=4000000000`` in the environment keeps large outputs off fresh mappings
and the freed heap unreturned, so that two builds compare alike. Not the first alone: it
fixes glibc's trim threshold at 128 KB, and every freed output of 328 KB (batch 16) goes back
to the system and faults in again (forward 310 against 93 us per call at batch 16, one thread,
2026-12-01; 127 us with both variables). Without either, the chained forward at batch 128
faults in its kept outputs afresh in every repeat (987 against 284-321 us at 2 threads,
2026-12-02); a training step does not.
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


def time_chained(calls: list[Call], repeats: int) -> float:
    """Best-of-``repeats`` us per forward call, each step on the previous one's ``M_t``,
    ``w^r_t``, ``w^u_t`` and ``w^lu_t`` (keys and gates from its own step), outputs kept."""
    best = float("inf")
    for _ in range(repeats):
        inputs, kept = list(calls[0][0]), []
        start = time.perf_counter()
        for step_inputs, _, _ in calls:
            inputs[:2] = step_inputs[:2]
            out = torch.ops.mann_lrua.forward(*inputs)
            kept.append(out)
            inputs[2:6] = [out[1], out[2], out[5], out[4]]
        best = min(best, (time.perf_counter() - start) / len(calls) * 1e6)
        del kept
    return best


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
    print(
        "| threads | batch | forward, hot | backward, hot | forward, cold | backward, cold "
        "| forward, chained |"
    )
    print("|---|---|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch_size:
            calls = step_tensors(batch, args.slots, 40, 4, args.steps)
            hot = time_calls(calls, False, args.repeats)
            cold = time_calls(calls, True, args.repeats)
            chained = time_chained(calls, args.repeats)
            cells = " | ".join(f"{t:.1f}" for t in (*hot, *cold, chained))
            print(f"| {threads} | {batch} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
