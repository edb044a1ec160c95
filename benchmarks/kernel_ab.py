"""Before and after of a fused kernel in one process: this tree's build against a git revision's.

The C++ sources of ``mann_lightning/memory/csrc/`` at ``--against`` (a commit, tag or branch)
are built under renamed operator namespaces (``mann_lrua_before``, ``mann_ntm_before``) and
loaded beside this tree's build; both then time the same calls in alternating rounds, cold as
in a training episode (``--steps`` steps' tensors walked through, the backward in reverse).
Paper sizes: 128 slots of 40 floats, 4 read heads (LRUA: 4 heads; NTM: and 1 write head).
The outputs of the two builds are compared too (largest difference).

::

    MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=4000000000 \\
        python benchmarks/kernel_ab.py --kernel ntm --against 7135a9f --batch-size 16 128

(the two variables keep large outputs off fresh mappings, as in ``lrua_kernel.py``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from lrua_kernel import step_tensors as lrua_calls

from mann_lightning.memory import kernel_build
from mann_lightning.memory.fused_lrua import fused_lrua_available
from mann_lightning.memory.fused_ntm import fused_ntm_available

ROOT = Path(__file__).resolve().parents[1]
CSRC = "mann_lightning/memory/csrc"
SOURCES = {"lrua": "lrua_step.cpp", "ntm": "ntm_step.cpp"}


def load_revision(revision: str, kernel: str, folder: Path) -> object:
    """The kernel's operators built from ``revision``'s sources, as ``torch.ops.<name>_before``."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout  # fmt: skip

    for name in git("ls-tree", "--name-only", f"{revision}:{CSRC}").split():
        text = git("show", f"{revision}:{CSRC}/{name}")
        for space in ("mann_lrua", "mann_ntm"):
            text = text.replace(space, f"{space}_before")
        (folder / name).write_text(text)
    library = kernel_build.build_library(folder / SOURCES[kernel], kernel_build.find_compiler())
    torch.ops.load_library(str(library))
    return getattr(torch.ops, f"mann_{kernel}_before")


def ntm_calls(batch: int, steps: int, slots: int = 128, word: int = 40) -> list:
    """Per step: the forward's inputs, and the backward's arguments after the gradients."""
    calls = []
    for _ in range(steps):
        inputs = [
            torch.tanh(torch.randn(batch, 5, word)), 1 + torch.rand(batch, 5) * 3,
            torch.rand(batch, 5), torch.softmax(torch.randn(batch, 5, 3), -1),
            1 + torch.rand(batch, 5), torch.rand(batch, 1, word),
            torch.tanh(torch.randn(batch, 1, word)), 0.3 * torch.randn(batch, slots, word),
            torch.softmax(torch.randn(batch, 4, slots), -1),
            torch.softmax(torch.randn(batch, 1, slots), -1),
        ]  # fmt: skip
        out = torch.ops.mann_ntm.forward(*inputs, 1e-6, 1e-6)
        grads = [torch.randn_like(t) for t in out[:4]]
        calls.append((inputs + [1e-6, 1e-6], grads + inputs + list(out[1:6]) + [1e-6, 1e-6]))
    return calls


def lrua_pairs(batch: int, steps: int) -> list:
    """LRUA calls as (forward arguments, backward arguments)."""
    return [(i, [*g, *s, 1e-6]) for i, s, g in lrua_calls(batch, 128, 40, 4, steps)]


def one_round(ops: object, calls: list) -> tuple[float, float, list]:
    """us per forward and per backward call over the steps; the last outputs."""
    start = time.perf_counter()
    for forward_args, _ in calls:
        out = ops.forward(*forward_args)
    middle = time.perf_counter()
    for _, backward_args in reversed(calls):
        grads = ops.backward(*backward_args)
    end = time.perf_counter()
    n = len(calls)
    return (middle - start) / n * 1e6, (end - middle) / n * 1e6, [*out, *grads]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", choices=sorted(SOURCES), default="ntm")
    parser.add_argument("--against", required=True, help="git revision of the 'before' build")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16, 128])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    if not (fused_lrua_available() if args.kernel == "lrua" else fused_ntm_available()):
        raise SystemExit(f"the fused {args.kernel} kernel cannot be built here (log line above)")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        builds = {"before": load_revision(args.against, args.kernel, Path(folder))}
    builds["after"] = getattr(torch.ops, f"mann_{args.kernel}")
    print(f"{args.kernel} kernel, {args.threads} threads, median us per call over "
          f"{args.rounds} alternating rounds of {args.steps} cold steps; before: {args.against}")  # fmt: skip
    print("| batch | forward before | forward after | backward before | backward after | "
          "step before / after | largest difference |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for batch in args.batch_size:
        calls = (ntm_calls if args.kernel == "ntm" else lrua_pairs)(batch, args.steps)
        times = {name: ([], []) for name in builds}
        outputs = {}
        for _ in range(args.rounds):
            for name, ops in builds.items():
                forward, backward, outputs[name] = one_round(ops, calls)
                times[name][0].append(forward)
                times[name][1].append(backward)
        (fb, bb), (fa, ba) = ([statistics.median(t) for t in times[n]] for n in builds)
        diff = max(
            (a.double() - b.double()).abs().max().item()
            for a, b in zip(outputs["before"], outputs["after"], strict=True)
            if a.is_floating_point()
        )
        print(f"| {batch} | {fb:.1f} | {fa:.1f} | {bb:.1f} | {ba:.1f} | "
              f"{(fb + bb) / (fa + ba):.2f}x | {diff:.1e} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
