"""Milliseconds per training step of ``mann fit``'s loop, measured inside Lightning.

The paper's 5-way configuration (``configs/omniglot_5way_onehot.yaml``: LSTM 200, LRUA
128x40 with 4 reads, batch 16, RMSprop, gradient clipping) built from ``MANNClassifier`` and
``OmniglotEpisodes`` (real Omniglot from ``MANN_DATA_DIR``) and trained by a ``Trainer``
without logger, checkpoints, progress bar or validation. A callback takes the time between
consecutive ``on_train_batch_end`` calls after ``warmup`` steps (the first steps compile
when ``compile`` is set), so sampling, forward, backward, clipping, the optimizer and
Lightning's own loop are all inside.

    python benchmarks/end_to_end.py --compile none episode --steps 200
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import lightning.pytorch as pl
import torch
from straightforward_lrua import StraightforwardLRUA

from mann_lightning.classifier import MANNClassifier
from mann_lightning.data import OmniglotEpisodes
from mann_lightning.memory import LRUAMemory


class StepTimer(pl.Callback):
    """Wall time between consecutive training batch ends, after ``warmup`` of them."""

    def __init__(self, warmup: int, cuda: bool = False) -> None:
        self.warmup = warmup
        self.cuda = cuda  # wait for the GPU, so a step's time is its own
        self.last: float | None = None
        self.seconds: list[float] = []
        self.seen = 0

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.seen += 1
        if self.last is not None and self.seen > self.warmup:
            self.seconds.append(now - self.last)
        self.last = now


def end_to_end_ms(
    compile_mode: str = "none",
    steps: int = 100,
    warmup: int = 10,
    plain: bool = False,
    device: str = "cpu",
    prefetch: bool = True,
) -> float:
    """Median milliseconds per ``mann fit`` training step over ``steps`` steps; ``plain``
    swaps in the straightforward autograd LRUA (``straightforward_lrua.py``); ``prefetch``
    False draws every batch in line, before its step (as ``mann fit`` did before prefetching)."""
    pl.seed_everything(0, verbose=False)
    data = OmniglotEpisodes(
        num_classes=5,
        samples_per_class=10,
        batch_size=16,
        train_batches_per_epoch=10_000,
        prefetch=prefetch,
    )
    model = MANNClassifier(
        memory=(StraightforwardLRUA if plain else LRUAMemory)(128, 40, 4),
        controller="lstm",
        controller_size=200,
        optimizer="rmsprop",
        lr=1e-4,
        grad_clip_norm=10.0,
        compile=compile_mode,
        task=data.task,
    )
    timer = StepTimer(warmup, cuda=device.startswith("cuda"))
    trainer = pl.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        max_steps=warmup + steps + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=data)
    return 1000 * statistics.median(timer.seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--compile", nargs="+", default=["none"], choices=["none", "step", "episode"]
    )
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--plain", action="store_true", help="the straightforward LRUA")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--in-line", action="store_true", help="draw batches in line (no prefetch thread)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()}")
    print("| compile | ms/step | episodes/s |\n|---|---|---|")
    for mode in args.compile:
        ms = end_to_end_ms(
            mode, args.steps, plain=args.plain, device=args.device, prefetch=not args.in_line
        )
        print(f"| {mode} | {ms:.1f} | {16000 / ms:.0f} |", flush=True)


if __name__ == "__main__":
    main()
