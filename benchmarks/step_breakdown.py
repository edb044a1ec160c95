"""Where a training step's time goes: ``torch.profiler`` self time by part, ms per step.

The paper-size MANN of ``throughput.py`` (LSTM 200, 128 x 40 memory, 4 heads, 50-step
episodes, RMSprop) on fixed random episodes; each part is the self time of its operators
over ``--steps`` profiled steps (after warm-up), so the parts add up to the profiled total.
Matrix products are told apart by how often a step calls them and their shapes: once or
twice per episode, the input projection of all steps (an operand with the 405 inputs), the
output layer (one with the 5 classes) and the recurrent weight's gradient formed once
(the rest); at every time step, the LSTM's products (an operand with ``4 * units`` gates:
forward and input gradient, and the weight gradient too where it is not deferred) and the
memory's interface (the rest). With
``--compile episode`` Inductor's kernel profiling is on, so its generated loops appear
apart from the Python that calls them.

::

    python benchmarks/step_breakdown.py --batch-size 128 --threads 1 2

The profiler adds its own time (the total is printed beside the unprofiled step): compare
parts within one table, not across runs.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch
import torch._inductor.config as inductor_config
from torch.profiler import ProfilerActivity, profile
from train_steps import MEMORIES, make_train_step

from mann_lightning.value_checks import at_least_one

LENGTH, INPUTS, CLASSES, UNITS = 50, 405, 5, 200  # make_train_step's model and episodes
OPTIMIZER_OPS = ("aten::addcdiv_", "aten::sqrt", "aten::addcmul_", "aten::mul_", "aten::add_")


def product_part(shapes: list[list[int]], calls_per_step: float) -> str:
    """The part a matrix product belongs to, from how often a step calls it (once or twice
    per episode, or at every time step) and its operands' shapes."""
    dims = {d for shape in shapes for d in shape}
    if calls_per_step < LENGTH / 2:  # products over all steps at once
        if INPUTS in dims:
            return "input projection of all steps (forward, weight gradient)"
        if CLASSES in dims:
            return "output layer"
        return "recurrent weight's gradient, once per episode"
    if 4 * UNITS in dims:
        return "LSTM per-step products"
    return "memory interface products"


def part_of(name: str, shapes: list[list[int]], calls_per_step: float) -> str:
    """The part an operator's self time is counted in."""
    if name in ("aten::addmm", "aten::mm"):
        return product_part([s for s in shapes if s], calls_per_step)
    if name.startswith(("mann_lrua::", "mann_ntm::")):
        return f"fused memory kernel, {name.split('::')[1]}"
    if name.startswith("graph_"):
        return "compiler-generated loops"
    if name.startswith("## Call CompiledFxGraph"):
        return "Python of the compiled graphs"
    if name == "aten::copy_":
        return "copies"
    if "RMSprop" in name or name in OPTIMIZER_OPS:
        return "RMSprop and gradient sums"
    return "the rest"


def breakdown(name: str, batch: int, compile_mode: str, steps: int) -> tuple[float, dict]:
    """(unprofiled ms per step, {part: profiled ms per step})."""
    step = make_train_step(name, batch, 128, compile_mode, LENGTH)
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    unprofiled = (time.perf_counter() - start) / steps * 1e3
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    parts: dict[str, float] = defaultdict(float)
    for event in prof.key_averages(group_by_input_shape=True):
        part = part_of(event.key, event.input_shapes or [], event.count / steps)
        parts[part] += event.self_cpu_time_total / 1e3 / steps
    return unprofiled, dict(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="LRUA", choices=list(MEMORIES))
    parser.add_argument("--batch-size", type=at_least_one, default=128)
    parser.add_argument("--threads", type=at_least_one, nargs="+", default=[2])
    parser.add_argument("--compile", default="episode", choices=["none", "episode", "step"])
    parser.add_argument("--steps", type=at_least_one, default=3, help="profiled steps")
    args = parser.parse_args(argv)
    inductor_config.cpp.enable_kernel_profile = args.compile != "none"
    columns = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        columns[threads] = breakdown(args.model, args.batch_size, args.compile, args.steps)
    last = columns[args.threads[-1]][1]
    parts = sorted({p for _, c in columns.values() for p in c}, key=lambda p: -last.get(p, 0.0))
    print(f"{args.model}, batch {args.batch_size}, compile={args.compile}, ms per step:")
    print("| part | " + " | ".join(f"{t} thread(s)" for t in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for part in parts:
        cells = " | ".join(f"{c.get(part, 0.0):.1f}" for _, c in columns.values())
        print(f"| {part} | {cells} |")
    totals = " | ".join(f"{sum(c.values()):.1f}" for _, c in columns.values())
    print(f"| total under the profiler | {totals} |")
    print("| unprofiled step | " + " | ".join(f"{u:.1f}" for u, _ in columns.values()) + " |")


if __name__ == "__main__":
    main()
