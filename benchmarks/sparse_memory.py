"""Cost of a training step against memory size: dense LRUA vs sparse LRUA (top-k).

One training step (forward, backward, RMSprop step) of ``MANN(400, 5, "lstm", memory,
controller_size=200)`` at batch 16 on 50-step episodes (5 classes x 10 instances), for
``LRUAMemory`` and ``SparseLRUAMemory(k=8)`` with 128, 1,024, 8,192 and 65,536 slots of 40
features and 4 heads. Every configuration runs in a fresh subprocess so that its peak RSS is
its own. Columns:

* ``ms/step``: median over ``--steps`` timed steps after ``--warmup`` steps.
* ``peak RSS``: the process's peak resident memory (``getrusage``), imports included.
* ``step RAM``: peak RSS minus the peak before the first training step (model, optimizer
  and data already built): the memory a training step itself takes. The final state is
  dropped before backward, as ``MANNModule.training_step`` does when it does not carry it.
* ``saved``: bytes of the distinct storages the autograd graph of one forward pass saves
  (``saved_tensors_hooks``, in a last step after the RSS is read).

Dense configurations whose graph would need more than ``--max-gb`` (extrapolated from the
smaller sizes, linear in the slots; for the first, ``train_steps.dense_saved_gb``) are not
run.

    python benchmarks/sparse_memory.py              # 1 thread, about 2 minutes on a CPU
    python benchmarks/sparse_memory.py --threads 4 --slots 128 65536
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

MEMORIES = ("dense", "sparse")
MB = 2**20


def worker(kind: str, slots: int, args: argparse.Namespace) -> dict[str, float]:
    """Build the model, time ``args.steps`` training steps, measure memory; return the row."""
    import torch

    from mann_lightning.memory import LRUAMemory, SparseLRUAMemory
    from mann_lightning.model import MANN

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if kind == "dense":
        memory = LRUAMemory(slots, 40, 4)
    else:
        memory = SparseLRUAMemory(slots, 40, 4, k=args.k, scan=args.scan)
    model = MANN(400, args.classes, "lstm", memory, controller_size=200)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4)
    length = args.classes * args.instances
    inputs = torch.rand(args.batch_size, length, 400)
    targets = torch.randint(args.classes, (args.batch_size, length))
    prev = torch.nn.functional.one_hot(targets, args.classes).float().roll(1, 1)
    prev[:, 0] = 0
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    def train_step(count_saved: bool = False) -> None:
        if count_saved:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                logits = model(inputs, prev)[0]
        else:  # the final state is dropped before backward, as in MANNModule.training_step
            logits = model(inputs, prev)[0]
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    setup_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(args.warmup):
        train_step()
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        train_step()
        seconds.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    train_step(count_saved=True)  # last: the hooks themselves raise the peak RSS
    return {
        "ms": 1000 * statistics.median(seconds),
        "peak_mb": peak_kb / 1024,
        "step_mb": (peak_kb - setup_kb) / 1024,
        "saved_mb": sum(storages.values()) / MB,
    }


def run_worker(kind: str, slots: int, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", kind, str(slots)]
    for name in ("threads", "k", "scan", "batch_size", "classes", "instances", "steps", "warmup"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {slots} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[128, 1024, 8192, 65536])
    parser.add_argument("--memories", nargs="+", default=list(MEMORIES), choices=MEMORIES)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--k", type=int, default=8, help="slots each sparse head reads")
    parser.add_argument("--scan", default="auto", choices=["auto", "window", "full"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (>= 1)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (>= 1)")
    parser.add_argument("--max-gb", type=float, default=8.0, help="skip dense above this")
    parser.add_argument("--worker", nargs=2, metavar=("MEMORY", "SLOTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be at least 1")
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args)))
        return

    import torch
    from train_steps import dense_saved_gb

    print(
        f"torch={torch.__version__} threads={args.threads} batch={args.batch_size} "
        f"steps/episode={args.classes * args.instances} k={args.k} scan={args.scan} "
        f"median of {args.steps} steps"
    )
    print(
        f"| {'memory':<6} | {'slots':>6} | {'ms/step':>8} | {'peak RSS MB':>11} "
        f"| {'step RAM MB':>11} | {'saved MB':>9} |"
    )
    print(f"|{'-' * 8}|{'-' * 8}|{'-' * 10}|{'-' * 13}|{'-' * 13}|{'-' * 11}|")
    rows: dict[tuple[str, int], dict[str, float]] = {}
    for kind in args.memories:
        for slots in sorted(args.slots):
            done = [(n, r) for (m, n), r in rows.items() if m == kind]
            if kind == "dense":  # from the largest size run, else from the measured rule
                estimate = dense_saved_gb(slots, args.batch_size, args.classes * args.instances)
                if done:
                    largest, row = max(done, key=lambda item: item[0])
                    estimate = row["saved_mb"] * slots / largest / 1024
                if estimate > args.max_gb:
                    print(
                        f"| {kind:<6} | {slots:>6} | not run: its graph would save about "
                        f"{estimate:.1f} GB (> --max-gb {args.max_gb:g}) |"
                    )
                    continue
            rows[kind, slots] = row = run_worker(kind, slots, args)
            print(
                f"| {kind:<6} | {slots:>6} | {row['ms']:>8.1f} | {row['peak_mb']:>11.0f} "
                f"| {row['step_mb']:>11.1f} | {row['saved_mb']:>9.1f} |",
                flush=True,
            )
    small, big = min(args.slots), max(args.slots)
    if ("sparse", small) in rows and ("sparse", big) in rows:
        a, b = rows["sparse", small], rows["sparse", big]
        print(
            f"sparse {big} / sparse {small}: time {b['ms'] / a['ms']:.2f}x, peak RSS "
            f"{b['peak_mb'] / a['peak_mb']:.2f}x, step RAM {b['step_mb'] / a['step_mb']:.2f}x, "
            f"saved {b['saved_mb'] / a['saved_mb']:.2f}x"
        )
    if ("dense", small) in rows and ("sparse", big) in rows:
        a, b = rows["dense", small], rows["sparse", big]
        print(
            f"sparse {big} / dense {small}: time {b['ms'] / a['ms']:.2f}x, peak RSS "
            f"{b['peak_mb'] / a['peak_mb']:.2f}x, step RAM {b['step_mb'] / a['step_mb']:.2f}x"
        )


if __name__ == "__main__":
    main()
