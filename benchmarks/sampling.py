"""Episode-batch sampling time against a MANN training step (the paper's configuration).

The paper's configuration: 5 classes x 10 samples = 50 steps, 20x20 images, batch 16,
MANN-LRUA (LSTM 200, memory 128x40, 4 reads). Sampling must cost under 5% of a training
step (forward + backward + optimizer step)::

    python benchmarks/sampling.py --device cpu
    python benchmarks/sampling.py --device cuda --classes 5 15 --check

Uses Omniglot from ``--root`` / ``$MANN_DATA_DIR`` / the cache; ``--synthetic`` uses random
images of the same shape instead (sampling cost does not depend on the pixel values).

Two samplers are timed: ``omniglot`` (``OmniglotEpisodes``: 1200 training characters with
rotations and jitter) and ``pool`` (the continual layer's path, ``MANNEpisodePlugin``: a
ragged :class:`~mann_lightning.data.pool.ClassPool` the size of a large experience, 800
classes holding 1 to 20 images each, with jitter; evaluation from 200 classes of 20).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch

from mann_lightning.data import EpisodeBatch, OmniglotEpisodes, sample_episodes
from mann_lightning.data.pool import ClassPool, sample_pool_episodes
from mann_lightning.memory import LRUAMemory
from mann_lightning.model import MANN


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall time of one call of ``fn`` in milliseconds (synchronising CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 1000 * (time.perf_counter() - start)


def make_sampler(
    args: argparse.Namespace, classes: int, device: torch.device
) -> tuple[Callable[[int], EpisodeBatch], Callable[[int], EpisodeBatch]]:
    """(training-batch sampler, evaluation-batch sampler), each taking a batch index."""
    if args.synthetic:
        images = torch.randint(0, 256, (1623, 20, 20, 20), dtype=torch.uint8, device=device)
        train = torch.arange(1200, device=device).repeat(4)
        turns = torch.arange(4, device=device).repeat_interleave(1200)

        def draw(index: int, augment: bool) -> EpisodeBatch:
            gen = torch.Generator(device=device).manual_seed(index)
            jitter = (0.1, 10.0) if augment else (0.0, 0.0)
            rot = turns if augment else None
            return sample_episodes(
                images, train, classes, 10, args.batch_size, gen, "onehot", rot, *jitter
            )

        return (lambda i: draw(i, True)), (lambda i: draw(i, False))
    module = OmniglotEpisodes(
        root=args.root, num_classes=classes, batch_size=args.batch_size, download=False
    )
    module.to_device(device)
    return (lambda i: module.batch("train", i)), (lambda i: module.batch("val", i))


def make_pool_sampler(
    args: argparse.Namespace, classes: int, device: torch.device
) -> tuple[Callable[[int], EpisodeBatch], Callable[[int], EpisodeBatch]]:
    """The continual plugin's path: ragged pools (800 classes of 1-20 images, 200 of 20)."""
    generator = torch.Generator().manual_seed(0)
    counts = torch.randint(1, 21, (800,), generator=generator)
    labels = torch.arange(800).repeat_interleave(counts)
    images = torch.rand(labels.numel(), 400, generator=generator)
    train_pool = ClassPool.from_tensors(images.to(device), labels.to(device))
    eval_labels = torch.arange(200).repeat_interleave(20)
    eval_images = torch.rand(eval_labels.numel(), 400, generator=generator)
    eval_pool = ClassPool.from_tensors(eval_images.to(device), eval_labels.to(device))

    def draw(pool: ClassPool, index: int, augment: bool) -> EpisodeBatch:
        gen = torch.Generator(device=device).manual_seed(index)
        jitter = (0.1, 10.0) if augment else (0.0, 0.0)
        return sample_pool_episodes(
            pool, classes, 10, args.batch_size, gen, "onehot", None, 20, *jitter
        )

    return (lambda i: draw(train_pool, i, True)), (lambda i: draw(eval_pool, i, False))


def measure(
    args: argparse.Namespace, classes: int, device: torch.device, sampler: str = "omniglot"
) -> tuple[float, ...]:
    """Median ms of (training-batch sampling, evaluation-batch sampling, training step)."""
    make = make_pool_sampler if sampler == "pool" else make_sampler
    sample_train, sample_eval = make(args, classes, device)
    torch.manual_seed(0)
    memory = LRUAMemory(memory_size=128, word_size=40, num_reads=4)
    model = MANN(input_size=400, num_outputs=classes, controller="lstm", memory=memory)
    model = model.to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4)
    batch: EpisodeBatch = sample_train(0)

    def train_step() -> None:
        logits, _ = model(batch.inputs, batch.prev_labels)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for index in range(3):  # warm-up
        sample_train(index), sample_eval(index), train_step()
    # interleaved, so that both see the same machine load; medians over the repeats
    times: list[tuple[float, float, float]] = []
    for index in range(args.repeats):
        times.append(
            (
                timed(lambda i=index: sample_train(i), device),
                timed(lambda i=index: sample_eval(i), device),
                timed(train_step, device),
            )
        )
    train_ms, eval_ms, step_ms = (statistics.median(column) for column in zip(*times, strict=True))
    return train_ms, eval_ms, step_ms


def main(argv: list[str] | None = None) -> int:
    """Print the table; return 1 with ``--check`` if sampling costs 5% of a step or more."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--classes", type=int, nargs="+", default=[5])
    parser.add_argument(
        "--samplers", nargs="+", choices=["omniglot", "pool"], default=["omniglot", "pool"]
    )
    parser.add_argument("--root", default=None, help="Omniglot folder (else MANN_DATA_DIR)")
    parser.add_argument("--synthetic", action="store_true", help="random images, no data")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--check", action="store_true", help="exit 1 if sampling >= 5%%")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(
        f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"batch={args.batch_size} samples/class=10 image=20x20 model=MANN-LRUA "
        f"data={'synthetic' if args.synthetic else 'omniglot'}"
    )
    print(
        "| sampler | classes | steps | sample train ms | sample eval ms | train step ms "
        "| sampling/step |"
    )
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for sampler in args.samplers:
        for classes in args.classes:
            train_ms, eval_ms, step_ms = measure(args, classes, device, sampler)
            percent = 100 * train_ms / step_ms
            worst = max(worst, percent)
            print(
                f"| {sampler} | {classes} | {classes * 10} | {train_ms:.2f} | {eval_ms:.2f} "
                f"| {step_ms:.1f} | {percent:.1f}% |"
            )
    verdict = "PASS" if worst < 5.0 else "FAIL"
    print(f"{verdict}: sampling costs at most {worst:.1f}% of a training step (limit 5%).")
    return 1 if args.check and worst >= 5.0 else 0


if __name__ == "__main__":
    sys.exit(main())
