"""Training throughput of the MANN for the paper's configuration.

Measures episodes per second of a full training step (forward, backward, optimizer step)
for MANN-LRUA, MANN-NTM and the plain LSTM: batch 16, 5 classes x 10 instances = 50 steps,
20x20 inputs, LSTM 200, memory 128x40, 4 reads. ``LRUA-plain`` is the same model with a
straightforward autograd LRUA step (``straightforward_lrua.py``), timed in the same run so the
comparison does not depend on how busy the machine is. Models are timed in turns
(``--rounds``) and the median is printed.

    python benchmarks/throughput.py --device cpu
    python benchmarks/throughput.py --device cuda --batch-size 16 64
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from straightforward_lrua import StraightforwardLRUA

from mann_lightning.memory import LRUAMemory, NTMMemory
from mann_lightning.model import MANN

MODELS = {
    "MANN-LRUA": lambda: LRUAMemory(memory_size=128, word_size=40, num_reads=4),
    "LRUA-plain": lambda: StraightforwardLRUA(memory_size=128, word_size=40, num_reads=4),
    "MANN-NTM": lambda: NTMMemory(memory_size=128, word_size=40, num_reads=4),
    "LSTM": lambda: None,
}


def make_train_step(
    name: str, batch_size: int, device: torch.device, classes: int, length: int
) -> Callable[[], None]:
    """One training step (forward, backward, RMSprop step) of model ``name`` on fixed data."""
    torch.manual_seed(0)
    model = MANN(400, classes, "lstm", MODELS[name](), controller_size=200).to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4)
    inputs = torch.rand(batch_size, length, 400, device=device)
    targets = torch.randint(classes, (batch_size, length), device=device)
    prev = torch.nn.functional.one_hot(targets, classes).float().roll(1, 1)
    prev[:, 0] = 0

    def train_step() -> None:
        logits, _ = model(inputs, prev)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return train_step


def time_steps(step: Callable[[], None], steps: int, device: torch.device) -> float:
    """Seconds per call of ``step``, averaged over ``steps`` calls."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16])
    parser.add_argument("--steps", type=int, default=10, help="training steps per round (>= 1)")
    parser.add_argument("--rounds", type=int, default=5, help="turns of timing per model")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1")
    device = torch.device(args.device)
    print(
        f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"classes={args.classes} length={args.length} rounds={args.rounds}x{args.steps} steps"
    )
    print(f"| {'model':<10} | {'batch':>5} | {'episodes/s':>10} | {'ms/step':>8} |")
    print(f"|{'-' * 12}|{'-' * 7}|{'-' * 12}|{'-' * 10}|")
    for batch_size in args.batch_size:
        steps = {
            name: make_train_step(name, batch_size, device, args.classes, args.length)
            for name in args.models
        }
        for step in steps.values():
            for _ in range(args.warmup):
                step()
        seconds: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):  # models take turns, so a busy spell hits all of them
            for name, step in steps.items():
                seconds[name].append(time_steps(step, args.steps, device))
        for name, values in seconds.items():
            median = statistics.median(values)
            print(
                f"| {name:<10} | {batch_size:>5} | {batch_size / median:>10.1f} | {1000 * median:>8.1f} |"
            )


if __name__ == "__main__":
    main()
