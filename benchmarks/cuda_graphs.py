"""The GPU side of ``throughput.py``: a whole training step captured as one CUDA graph, and
the GPU's latency floor for small recurrent steps.

A MANN training step on a GPU is thousands of tiny kernels (about 100 per time step forward
and more backward, 50 time steps), each launched by Python, the dispatcher and autograd.
Eager, the GPU mostly waits for the host. Two ways around it, measured side by side:

* ``compile="episode"`` (the library's path): Inductor fuses each step's pointwise work into
  a few kernels and replays forward and backward as CUDA graphs (``mode="reduce-overhead"``).
* ``"graph"`` here: no compiler; the eager step (forward, backward and the RMSprop update) is
  captured once with ``torch.cuda.graph`` and replayed, so every kernel still runs but none
  is launched from Python. It is what launch removal alone gives.

The floor of such a step is not its arithmetic (a fraction of a millisecond at GEMM speed)
but the chain of dependent kernels: :func:`graph_node_us` times one dependent kernel in a
replayed graph, and :func:`kernels_per_step` counts the kernels of one eager step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

Step = Callable[[], None]


def capture_step(step: Step, optimizer: torch.optim.Optimizer, warmup: int = 3) -> Step:
    """Replay of ``step`` (forward, backward, optimizer step on static tensors) as one graph.

    ``optimizer`` must be built with ``capturable=True``; gradients are set to None before
    capture, so the graph's backward writes them afresh at every replay.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
        for _ in range(warmup):
            optimizer.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    # A host synchronisation cannot be captured, and a failed capture can leave the process's
    # allocator unusable: look for one in an ordinary step first, and stop with its name.
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    except RuntimeError as error:
        raise RuntimeError(f"not capturable, the step synchronises: {error}") from None
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        step()

    return CapturedStep(graph, step, optimizer)


class CapturedStep:
    """A captured training step: :meth:`__call__` replays it.

    A CUDA graph refers to the tensors it was captured on by address, not by reference, so
    this object keeps ``step`` (its model, optimizer and static inputs) alive with the graph.
    (The first H200 run returned ``graph.replay`` alone: the freed targets were reused, and
    cross-entropy saw garbage labels: a device-side assert.)
    """

    def __init__(self, graph: torch.cuda.CUDAGraph, step: Step, optimizer: torch.optim.Optimizer):
        self.graph, self.step, self.optimizer = graph, step, optimizer

    def __call__(self) -> None:
        self.graph.replay()


def graph_node_us(nodes: int = 2000, size: int = 16 * 200) -> float:
    """Microseconds per dependent kernel of a replayed CUDA graph (a chain of tiny in-place
    multiplies on ``size`` numbers): the latency that bounds a chain of small steps."""
    x = torch.ones(size, device="cuda")
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(nodes):
            x.mul_(1.0)
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    start = time.perf_counter()
    repeats = 10
    for _ in range(repeats):
        graph.replay()
    torch.cuda.synchronize()
    return 1e6 * (time.perf_counter() - start) / (repeats * nodes)


def kernels_per_step(step: Step) -> int:
    """GPU kernels one call of ``step`` launches (from the profiler)."""
    from torch.profiler import ProfilerActivity, profile

    step()  # allocations and lazy initialisation outside the count
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return sum(
        1 for e in kernels if "memcpy" not in e.name.lower() and "memset" not in e.name.lower()
    )
