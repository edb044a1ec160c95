"""Training throughput of the MANN against the arithmetic floor, in one table.

Each row times full training steps (forward, backward, RMSprop step) of
``MANN(400, 5, "lstm", memory, controller_size=200)`` on 50-step episodes (5 classes x 10
instances, the paper's configuration; memory 40-wide words, 4 heads) and prints:

* ``ep/s`` and ``ms/step``: the median over ``--rounds`` turns of ``--steps`` steps; models
  take turns, so a busy spell hits all of them.
* ``GFLOP``: the floating-point operations of one step, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matrix products; pointwise work is left out).
* ``floor``: that count divided by the rate of a 1024x1024 fp32 GEMM timed in the same run
  (in turns with each batch size's rows, so through the same spells of a busy machine), the time the step would take if all its arithmetic ran at large-GEMM speed; ``of floor``
  is floor / measured (1.0 would be perfect).

Rows: no memory (the LSTM alone), LRUA, a straightforward autograd LRUA (``LRUA-plain``), the
NTM-style memory and sparse LRUA (top-k 8) (and, with ``--models``, the ablation
``LRUA-interface-only`` of ``interface_only.py``, and ``LRUA-op-by-op`` / ``NTM-op-by-op``
without their fused CPU kernels), at each ``--batch-size``, each eager and with
every ``--compile`` mode (:mod:`mann_lightning.compilation`; compiling takes minutes, not
timed); dense and sparse LRUA at every ``--slots`` (at the smallest ``--batch-size``, 16 by
default, beside its 128-slot rows; dense sizes whose autograd graph would exceed ``--max-gb``, estimated by
``train_steps.dense_saved_gb``, are reported as not run; sparse LRUA's count stays flat
with the slots, as its CPU step scans only the slots written so far); and one end-to-end row per compile
mode (and one with the straightforward LRUA, and one as ``mann fit`` ran before these
optimisations: eager, batches drawn in line, the LRUA op by op without its C++ kernel) through ``MANNClassifier`` + ``OmniglotEpisodes`` + Lightning's loop
(what ``mann fit`` does: sampling, forward, backward, clipping, optimizer), which needs the
Omniglot data (``MANN_DATA_DIR``). The end-to-end rows also take turns: ``--rounds`` turns
each, in one process (``end_to_end.interleaved_ms``).

    python benchmarks/throughput.py                       # all rows, about 25 minutes
    python benchmarks/throughput.py --compile --slots 128 --batch-size 16   # eager only
    python benchmarks/throughput.py --compile --batch-size 16 --models LRUA sparse-LRUA \
        --end-to-end-steps 0 --plot docs/figures/cost_vs_slots.png   # the slots plot
"""

from __future__ import annotations

import argparse
import math

import torch
from cuda_graphs import graph_node_us, kernels_per_step
from end_to_end import Setting, interleaved_ms
from train_steps import (
    ABLATIONS,
    MEMORIES,
    counted_flops,
    dense_saved_gb,
    gemm_flops_per_s,
    gemm_step,
    make_train_step,
    time_rounds,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16, 128])
    parser.add_argument("--slots", type=int, nargs="+", default=[128, 1024, 8192, 65536])
    parser.add_argument(
        "--compile",
        nargs="*",
        default=["episode"],
        choices=["step", "episode", "graph"],
        help="modes besides eager; graph: the eager step captured as a CUDA graph (--device cuda)",
    )
    parser.add_argument(
        "--models", nargs="+", default=list(MEMORIES), choices=[*MEMORIES, *ABLATIONS]
    )
    parser.add_argument("--steps", type=int, default=5, help="training steps per round (>= 1)")
    parser.add_argument("--rounds", type=int, default=3, help="turns of timing per row")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the GPU path)")
    parser.add_argument("--max-gb", type=float, default=6.0, help="largest dense graph to run")
    parser.add_argument(
        "--end-to-end-steps",
        type=int,
        default=60,
        help="timed steps per end-to-end row, in --rounds turns; 0: no end-to-end rows",
    )
    parser.add_argument(
        "--plot", default=None, help="PNG: ms/step against slots (the smallest batch size)"
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1")
    if "graph" in args.compile and not args.device.startswith("cuda"):
        parser.error("--compile graph captures a CUDA graph: it needs --device cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    gemm = gemm_flops_per_s(device=args.device)
    side = 4096 if args.device.startswith("cuda") else 1024
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    print(
        f"torch={torch.__version__} device={args.device} ({name}) threads={torch.get_num_threads()} "
        f"length={args.length} rounds={args.rounds}x{args.steps} steps; "
        f"{side}^3 fp32 GEMM: {gemm / 1e9:.0f} GFLOP/s at the start; each batch size's floor "
        "uses the GEMM timed in turns with its rows (printed above them)"
    )
    print("| model | compile | batch | slots | ep/s | ms/step | GFLOP | floor ms | of floor |")
    print("|---|---|---|---|---|---|---|---|---|")

    by_slots: dict[str, list[tuple[int, float]]] = {}
    sweep = min(args.batch_size)  # the slot sweep: at the smallest batch (16 by default)

    rates: list[float] = []

    def row(
        name: str, mode: str, batch: int, slots: int, ms: float | None, flops: int | None
    ) -> None:
        if ms is not None and batch == sweep and mode == "none" and name in ("LRUA", "sparse-LRUA"):
            by_slots.setdefault(name, []).append((slots, ms))
        if flops is None:  # not run, or failed: nothing was counted either
            cells = ["not run", "-", "-", "-", "-"]
            print(f"| {name} | {mode} | {batch} | {slots} | " + " | ".join(cells) + " |")
            return
        floor_ms = 1000 * flops / (rates[-1] if rates else gemm)
        if ms is None:
            cells = ["not run", "-", f"{flops / 1e9:.2f}", f"{floor_ms:.1f}", "-"]
        else:
            cells = [f"{1000 * batch / ms:.0f}", f"{ms:.1f}", f"{flops / 1e9:.2f}"]
            cells += [f"{floor_ms:.1f}", f"{floor_ms / ms:.2f}"]
        print(f"| {name} | {mode} | {batch} | {slots} | " + " | ".join(cells) + " |", flush=True)

    configs = [(m, c, b, 128) for b in args.batch_size for c in ["none", *args.compile]
               for m in args.models if not (c in ("step", "episode") and m in ("LRUA-plain", "sparse-LRUA"))]  # fmt: skip
    configs += [(m, "none", sweep, s) for s in args.slots if s != 128
                for m in ("LRUA", "sparse-LRUA") if m in args.models]  # fmt: skip
    for batch in sorted({c[2] for c in configs}):
        group = [c for c in configs if c[2] == batch]
        steps, flops, skipped, failed = {}, {}, {}, {}
        for name, mode, _, slots in group:
            key = f"{name}|{mode}|{slots}"
            if name == "LRUA" and dense_saved_gb(slots, batch, args.length) > args.max_gb:
                skipped[key] = dense_saved_gb(slots, batch, args.length)
                continue
            try:
                steps[key] = make_train_step(name, batch, slots, mode, args.length, args.device)
                for _ in range(args.warmup):  # compiles (or captures) here, untimed
                    steps[key]()
            except (RuntimeError, torch.OutOfMemoryError) as error:  # one row, not the table
                failed[key] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
                steps.pop(key, None)
                continue
            # a replayed graph runs no operators to count: take the eager step's arithmetic
            eager = f"{name}|none|{slots}"
            flops[key] = (
                flops[eager] if mode == "graph" and eager in flops else counted_flops(steps[key])
            )
        steps["GEMM"], gemm_flops = gemm_step(device=args.device)
        seconds = time_rounds(steps, args.steps, args.rounds, args.device)
        rates.append(gemm_flops / seconds.pop("GEMM"))
        print(
            f"(batch {batch}: {side}^3 GEMM in turns with these rows: {rates[-1] / 1e9:.0f} GFLOP/s)"
        )
        for name, mode, _, slots in group:
            key = f"{name}|{mode}|{slots}"
            if key in skipped:
                print(f"(dense LRUA, {slots} slots: would save ~{skipped[key]:.2f} GB; not run)")
                flops[key] = None
            if key in failed:
                print(f"({name}, {mode}, batch {batch}, {slots} slots failed: {failed[key]})")
                flops.setdefault(key, None)
            row(
                name,
                mode,
                batch,
                slots,
                1000 * seconds[key] if key in seconds else None,
                flops[key],
            )
    if "graph" in args.compile:
        gpu_latency(args.models, args.length, args.device)
    if args.end_to_end_steps:
        # the model's own arithmetic on mann fit's 50-step episodes; sampling is extra
        e2e_flops = counted_flops(make_train_step("LRUA", 16, 128, "none", 50, args.device))
        settings = {  # (row name, compile mode) -> setting
            # the step before these optimisations: batches in line, LRUA op by op
            ("end-to-end LRUA, before (in line, op by op)", "none"): Setting(
                "none", prefetch=False, fused=False
            ),
            ("end-to-end LRUA-plain", "none"): Setting("none", plain=True),
            **{
                ("end-to-end LRUA", mode): Setting(mode)
                for mode in ["none", *args.compile]
                if mode != "graph"
            },  # fmt: skip
        }
        turn = max(2, math.ceil(args.end_to_end_steps / args.rounds))
        ms = interleaved_ms(settings, turn, args.rounds, device=args.device)
        rates.append(gemm_flops_per_s(device=args.device))
        print(f"(end to end: {side}^3 GEMM right after these rows: {rates[-1] / 1e9:.0f} GFLOP/s)")
        for (name, mode), value in ms.items():
            row(name, mode, 16, 128, value, e2e_flops)
    if args.plot:
        plot_slots(by_slots, args.plot, torch.get_num_threads(), sweep, args.length)


def gpu_latency(models: list[str], length: int, device: str) -> None:
    """The GPU's latency floor: kernels of one eager batch-16 step times one graph node."""
    node = graph_node_us()
    print(f"\nGPU latency: {node:.2f} us per dependent kernel of a replayed CUDA graph")
    print("| model | kernels per eager step (batch 16) | latency floor ms |\n|---|---|---|")
    for name in models:
        kernels = kernels_per_step(make_train_step(name, 16, 128, "none", length, device))
        print(f"| {name} | {kernels} | {kernels * node / 1000:.1f} |", flush=True)


def plot_slots(
    by_slots: dict[str, list[tuple[int, float]]], path: str, threads: int, batch: int, length: int
) -> None:
    """ms per training step against memory slots (log-log), one line per memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in sorted(by_slots.items()):
        slots, ms = zip(*sorted(points), strict=True)
        label = "dense LRUA" if name == "LRUA" else name
        ax.plot(slots, ms, marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel="memory slots", ylabel="ms per training step")
    ax.set_title(f"Batch {batch}, {length}-step episodes, {threads} CPU thread(s)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
