"""Compiled LRUA training step under other compile-time choices, A/B in one process.

Each variant is the paper-size MANN (LSTM 200, LRUA 128x40, 4 heads, 50-step episodes,
RMSprop) compiled with ``compile: episode``; they are timed in interleaved rounds in one
process, so that a busy spell hits all of them:

* ``default``: the library as it is (the whole LRUA step one fused C++ kernel per direction,
  an extern call in the graph).
* ``plain-ops``: ``LRUAMemory(fused_kernel=False)``: the compiler gets eqs. 2-8 as plain ops
  (what it compiles where the kernel cannot be built, and on a GPU).
* ``sort-eq6``: ``plain-ops`` with eq. 6 by a stable sort (the plain ops use ``num_reads``
  argmin rounds under compile, :func:`mann_lightning.memory.lrua.least_used_weights`); compare
  it with ``plain-ops``.
* ``output-asserts``: the default with Inductor's Python checks of every extern call's
  outputs (``size_asserts``, ``alignment_asserts``), which the library turns off for CPU
  graphs (:data:`mann_lightning.compilation.CPU_INDUCTOR_OPTIONS`).
* ``per-step-weight-grad``: the default with the LSTM's recurrent-weight gradient added at
  every step, as before :mod:`mann_lightning.deferred_weight_grad` (one product per episode).
* ``cpp-wrapper``: the default compiled with Inductor's C++ wrapper
  (``TORCHINDUCTOR_CPP_WRAPPER=1``), which calls the graph's kernels from C++ instead of
  Python; compiling takes about twice as long.

::

    python benchmarks/compile_options.py --batch-size 16 128 --threads 2

Every variant compiles once per (threads, batch) pair (minutes on a CPU, cached on disk).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from unittest import mock

import torch
from torch import Tensor
from train_steps import Step, make_train_step, time_rounds

from mann_lightning import compilation, episode_loop
from mann_lightning.memory import LRUAMemory
from mann_lightning.memory.lrua import least_used_weights_by_sort


class SortedLRUA(LRUAMemory):
    """The library's LRUA with eq. 6 by a stable sort under compile as well (as before)."""

    @torch.no_grad()
    def usage_step(
        self, usage: Tensor, read_weights: Tensor, write_weights: Tensor
    ) -> tuple[Tensor, Tensor]:
        # eq. 5; the library's eq. 6 result is unused, and the compiler drops it
        usage, _ = super().usage_step(usage, read_weights, write_weights)
        return usage, least_used_weights_by_sort(usage, self.num_reads)


class CppWrapperLRUA(LRUAMemory):
    """The library's LRUA; its own class only so that the compiler builds a second graph."""


class AssertedLRUA(LRUAMemory):
    """The library's LRUA; its own class only so that the compiler builds a third graph."""


VARIANTS: dict[str, tuple[Callable[[int], LRUAMemory], dict[str, bool]]] = {
    "default": (lambda slots: LRUAMemory(slots, 40, 4), {}),
    "plain-ops": (lambda slots: LRUAMemory(slots, 40, 4, fused_kernel=False), {}),
    "sort-eq6": (lambda slots: SortedLRUA(slots, 40, 4, fused_kernel=False), {}),
    "per-step-weight-grad": (lambda slots: LRUAMemory(slots, 40, 4), {}),
    "cpp-wrapper": (lambda slots: CppWrapperLRUA(slots, 40, 4), {"cpp_wrapper": True}),
    "output-asserts": (
        lambda slots: AssertedLRUA(slots, 40, 4),
        {"size_asserts": True, "alignment_asserts": True},
    ),
}


def compiled_steps(names: list[str], batch: int) -> dict[str, Step]:
    """A compiled training step per variant, each compiled (untimed) under its options."""
    import torch._inductor.config as inductor_config  # here: importing it starts Inductor

    steps = {}
    for name in names:
        memory, options = VARIANTS[name]
        step = make_train_step(name, batch, 128, "episode", 50, memory=memory)
        if name == "per-step-weight-grad":
            step = per_step_weight_grad(step)
        library = compilation.CPU_INDUCTOR_OPTIONS  # what the library passes torch.compile
        saved = dict(library)
        library.update({key: value for key, value in options.items() if key in library})
        try:
            with inductor_config.patch(options):
                step()  # compiles here
        finally:
            library.clear()
            library.update(saved)
        steps[name] = step
    return steps


def per_step_weight_grad(step: Step) -> Step:
    """``step`` with the recurrent-weight gradient formed at every time step (compiled graph
    and all: the library's choice is made at each call)."""

    def run() -> None:
        with mock.patch.object(episode_loop, "defers_weight_grad", lambda controller: False):
            step()

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    args = parser.parse_args(argv)
    names = ["default"] + [name for name in args.variants if name != "default"]
    print("| threads | batch | variant | ms/step | default / variant |\n|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch_size:
            steps = compiled_steps(names, batch)
            seconds = time_rounds(steps, args.steps, args.rounds)
            base = seconds["default"]
            for name in names:
                ms = 1000 * seconds[name]
                print(
                    f"| {threads} | {batch} | {name} | {ms:.1f} | {base / seconds[name]:.2f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
