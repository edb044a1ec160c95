"""Milliseconds per training step of ``mann fit``'s loop, measured inside Lightning.

The paper's 5-way configuration (``configs/omniglot_5way_onehot.yaml``: LSTM 200, LRUA
128x40 with 4 reads, batch 16, RMSprop, gradient clipping) built from ``MANNClassifier`` and
``OmniglotEpisodes`` (real Omniglot from ``MANN_DATA_DIR``) and trained by a ``Trainer``
without logger, checkpoints, progress bar or validation. A callback takes the time between
consecutive ``on_train_batch_end`` calls after ``warmup`` steps (the first steps compile
when ``compile`` is set), so sampling, forward, backward, clipping, the optimizer and
Lightning's own loop are all inside.

    python benchmarks/end_to_end.py --compile none episode --steps 200

Separate runs of this script spread by 10-20% on a machine whose speed drifts. For ratios,
``--interleave`` trains every setting in the same process, in turns of ``--steps`` steps
(``--rounds`` turns each, a fresh ``Trainer`` per turn on the same model and data, so a
compiled episode compiles once), and prints each setting's median with its ratio to the
compiled one:

    python benchmarks/end_to_end.py --interleave --threads 2 --steps 30 --rounds 6
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Hashable
from typing import Any, NamedTuple, TypeVar

import lightning.pytorch as pl
import torch
from straightforward_lrua import StraightforwardLRUA

from mann_lightning.classifier import MANNClassifier
from mann_lightning.data import OmniglotEpisodes
from mann_lightning.memory import LRUAMemory

Key = TypeVar("Key", bound=Hashable)


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
    fused: bool = True,
) -> float:
    """Median milliseconds per ``mann fit`` training step over ``steps`` steps; ``plain``
    swaps in the straightforward autograd LRUA (``straightforward_lrua.py``); ``prefetch``
    False draws every batch in line, before its step (as ``mann fit`` did before prefetching);
    ``fused`` False runs LRUA steps op by op, or as plain ops when compiled (no C++ kernel)."""
    model, data = build(compile_mode, plain, prefetch, fused)
    return 1000 * statistics.median(fit_seconds(model, data, steps, warmup, device))


class Setting(NamedTuple):
    """One way to train the paper's 5-way MANN end to end."""

    compile_mode: str = "none"
    plain: bool = False
    prefetch: bool = True
    fused: bool = True  # LRUA steps through the fused C++ kernel (memory/fused_lrua.py)


SETTINGS: dict[str, Setting] = {
    "compiled": Setting("episode"),
    "compiled, plain ops": Setting("episode", fused=False),
    "eager": Setting("none"),
    "eager, op-by-op": Setting("none", fused=False),
    "straightforward": Setting("none", plain=True),
    "before (eager, in line)": Setting("none", prefetch=False, fused=False),
}


def interleaved_ms(
    settings: dict[Key, Setting],
    steps: int = 30,
    rounds: int = 6,
    warmup: int = 3,
    device: str = "cpu",
) -> dict[Key, float]:
    """Median ms per step of each setting, trained in turns of ``steps`` steps in one process.

    Every setting first trains one untimed turn (a compiled episode compiles there); then
    ``rounds`` rounds give each setting one turn, whose first ``warmup`` steps are not timed.
    """
    built = {name: build(*setting) for name, setting in settings.items()}
    for model, data in built.values():
        fit_seconds(model, data, warmup + 1, warmup, device)
    seconds: dict[Key, list[float]] = {name: [] for name in settings}
    for _ in range(rounds):
        for name, (model, data) in built.items():
            seconds[name] += fit_seconds(model, data, steps, warmup, device)
    return {name: 1000 * statistics.median(times) for name, times in seconds.items()}


def build(
    compile_mode: str = "none", plain: bool = False, prefetch: bool = True, fused: bool = True
) -> tuple[MANNClassifier, OmniglotEpisodes]:
    """The paper's 5-way MANN and its Omniglot episodes, as ``mann fit`` builds them."""
    pl.seed_everything(0, verbose=False)
    data = OmniglotEpisodes(
        num_classes=5,
        samples_per_class=10,
        batch_size=16,
        train_batches_per_epoch=10_000,
        prefetch=prefetch,
    )
    model = MANNClassifier(
        memory=StraightforwardLRUA(128, 40, 4)
        if plain
        else LRUAMemory(128, 40, 4, fused_kernel=fused),
        controller="lstm",
        controller_size=200,
        optimizer="rmsprop",
        lr=1e-4,
        grad_clip_norm=10.0,
        compile=compile_mode,
        task=data.task,
    )
    return model, data


def fit_seconds(
    model: MANNClassifier, data: OmniglotEpisodes, steps: int, warmup: int, device: str
) -> list[float]:
    """Seconds of each of ``steps`` training steps of a fresh ``Trainer``, after ``warmup``."""
    timer = StepTimer(warmup, cuda=device.startswith("cuda"))
    trainer = pl.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        max_steps=warmup + steps + (warmup == 0),  # the first batch end only starts the clock
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=data)
    return timer.seconds


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
        "--op-by-op", action="store_true", help="LRUA steps without the fused C++ kernel"
    )
    parser.add_argument(
        "--in-line", action="store_true", help="draw batches in line (no prefetch thread)"
    )
    parser.add_argument(
        "--interleave",
        nargs="*",
        metavar="SETTING",
        choices=list(SETTINGS),
        help=f"time these settings (default: all of {list(SETTINGS)}) in turns in one process",
    )
    parser.add_argument("--rounds", type=int, default=6, help="turns per setting (--interleave)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()}")
    if args.interleave is not None:
        names = args.interleave or list(SETTINGS)
        ms = interleaved_ms(
            {n: SETTINGS[n] for n in names}, args.steps, args.rounds, device=args.device
        )
        base = ms.get("compiled")
        print("| setting | ms/step | episodes/s | setting / compiled |\n|---|---|---|---|")
        for name, value in ms.items():
            ratio = f"{value / base:.2f}x" if base else "-"
            print(f"| {name} | {value:.1f} | {16000 / value:.0f} | {ratio} |", flush=True)
        return
    print("| compile | ms/step | episodes/s |\n|---|---|---|")
    for mode in args.compile:
        ms = end_to_end_ms(
            mode,
            args.steps,
            plain=args.plain,
            device=args.device,
            prefetch=not args.in_line,
            fused=not args.op_by_op,
        )
        print(f"| {mode} | {ms:.1f} | {16000 / ms:.0f} |", flush=True)


if __name__ == "__main__":
    main()
