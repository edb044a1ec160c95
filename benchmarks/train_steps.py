"""Training steps the benchmarks time, their counted FLOPs, and the GEMM that sets the floor.

:func:`make_train_step` builds one training step (forward, backward, RMSprop step) of
``MANN(400, 5, "lstm", memory, controller_size=200)`` on fixed random episodes, the memory
named in :data:`MEMORIES` or :data:`ABLATIONS`; :func:`counted_flops` counts its floating-point
operations; :func:`gemm_step` is the 1024^3 product whose rate sets ``throughput.py``'s floor;
:func:`time_rounds` times steps in turns. Shared by ``throughput.py``, ``compile_options.py``
and ``lrua_write.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from cuda_graphs import capture_step
from interface_only import InterfaceOnlyMemory
from straightforward_lrua import StraightforwardLRUA
from torch.utils.flop_counter import FlopCounterMode

from mann_lightning.memory import LRUAMemory, NTMMemory, SparseLRUAMemory
from mann_lightning.model import MANN

MEMORIES: dict[str, Callable[[int], torch.nn.Module | None]] = {
    "LSTM": lambda slots: None,
    "LRUA": lambda slots: LRUAMemory(slots, 40, 4),
    "LRUA-plain": lambda slots: StraightforwardLRUA(slots, 40, 4),
    "NTM": lambda slots: NTMMemory(slots, 40, 4),
    "sparse-LRUA": lambda slots: SparseLRUAMemory(slots, 40, 4, k=8),
}
ABLATIONS: dict[str, Callable[[int], torch.nn.Module | None]] = {  # rows on request only
    "LRUA-interface-only": lambda slots: InterfaceOnlyMemory(slots, 40, 4),
    "LRUA-op-by-op": lambda slots: LRUAMemory(slots, 40, 4, fused_kernel=False),
    "NTM-op-by-op": lambda slots: NTMMemory(slots, 40, 4, fused_kernel=False),
}
Step = Callable[[], None]
#: Copies of the ``[batch, slots, 40]`` memory a dense LRUA episode saves for backward per
#: step: ``sparse_memory.py`` measured 178.4 MB saved at 1,024 slots, batch 16, 50 steps
#: (1.36 copies; 2026-12-02), rounded up.
DENSE_COPIES_SAVED = 1.4


def dense_saved_gb(slots: int, batch: int, length: int, word: int = 40) -> float:
    """Estimated GB a dense LRUA episode's autograd graph saves (float32)."""
    return DENSE_COPIES_SAVED * slots * word * 4 * batch * length / 2**30


def make_train_step(
    name: str,
    batch: int,
    slots: int,
    compile_mode: str,
    length: int,
    device: str = "cpu",
    memory: Callable[[int], torch.nn.Module | None] | None = None,
) -> Step:
    """One training step (forward, backward, RMSprop step) on fixed random episodes; the
    memory is ``MEMORIES[name]`` or ``ABLATIONS[name]``, or ``memory(slots)`` when given.
    ``compile_mode="graph"`` (CUDA only): the eager step captured as one CUDA graph."""
    torch.manual_seed(0)
    made = (memory or {**MEMORIES, **ABLATIONS}[name])(slots)
    graph = compile_mode == "graph"
    if graph and not device.startswith("cuda"):
        raise ValueError("compile mode 'graph' captures a CUDA graph: it needs --device cuda")
    model = MANN(
        400, 5, "lstm", made, controller_size=200, compile="none" if graph else compile_mode
    )
    model = model.to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, capturable=graph)
    inputs = torch.rand(batch, length, 400, device=device)
    targets = torch.randint(5, (batch, length), device=device)
    prev = torch.nn.functional.one_hot(targets, 5).float().roll(1, 1)
    prev[:, 0] = 0

    def train_step() -> None:
        logits, _ = model(inputs, prev)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return capture_step(train_step, optimizer) if graph else train_step


def counted_flops(step: Step) -> int:
    """Floating-point operations of one call of ``step`` (matrix products; the fused LRUA
    kernel's counted as the same products, its formula registered when it loads, so one
    untimed call first)."""
    step()
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def gemm_step(size: int = 1024, repeats: int = 10, device: str = "cpu") -> tuple[Step, int]:
    """A step of ``repeats`` ``size`` x ``size`` fp32 products and its FLOPs, to time in turns
    with the models (so that the floor sees the same spell of the machine as they do); a GPU
    gets ``4 * size``: a 1024 product is too small to fill one."""
    if device.startswith("cuda"):
        size *= 4
    a, b = torch.rand(size, size, device=device), torch.rand(size, size, device=device)

    def step() -> None:
        for _ in range(repeats):
            a @ b

    return step, 2 * size**3 * repeats


def gemm_flops_per_s(size: int = 1024, repeats: int = 20, device: str = "cpu") -> float:
    """Rate of :func:`gemm_step`'s products on ``device``, now (after one untimed step)."""
    step, flops = gemm_step(size, repeats, device)
    step()
    synchronize(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    return flops / (time.perf_counter() - start)


def time_rounds(
    steps: dict[str, Step], count: int, rounds: int, device: str = "cpu"
) -> dict[str, float]:
    """Median seconds per step of every entry, the entries taking turns."""
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(count):
                step()
            synchronize(device)
            seconds[name].append((time.perf_counter() - start) / count)
    return {name: statistics.median(values) for name, values in seconds.items()}
