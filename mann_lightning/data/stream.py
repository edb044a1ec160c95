"""What every episode data module shares: seeded batch streams, DDP shares, resuming.

A task's data module (Omniglot classification, GP regression, ...) subclasses
:class:`EpisodeDataModule` and implements :meth:`EpisodeDataModule.batch`; this base supplies
the dataloaders (plain re-iterable objects, batches sampled on the device, no workers), the
seeding rule, each DDP rank's share of the fixed evaluation batches, and the training-stream
position stored in checkpoints so that a resumed run continues the same data.

On a CPU the next batch is drawn by one background thread while the model trains on the
current one (``prefetch``): batch ``i`` is a function of the seeds, ``i`` and the episode
shape only, so the stream is the same batch for batch with or without it; a batch drawn
for a shape that has changed since (a curriculum step) is drawn again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import lightning as L
import torch

Stage = Literal["train", "val", "test"]


def stream_seed(*parts: object) -> int:
    """A 63-bit seed derived from ``parts`` (e.g. ``(seed, "train", rank, index)``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class EpisodeStream:
    """Re-iterable sequence of one stage's batches (what the dataloaders return)."""

    def __init__(self, module: EpisodeDataModule, stage: Stage) -> None:
        self.module, self.stage = module, stage

    def __len__(self) -> int:
        return len(self.module.batch_indices(self.stage))

    def __iter__(self) -> Iterator[Any]:
        module, stage = self.module, self.stage
        positions = module.batch_indices(stage)

        def index_at(position: int, claim: bool) -> int:
            """Batch index at ``position`` (training: the stream counter, advanced if ``claim``)."""
            if stage != "train":
                return positions[position]
            index = module.train_batches_drawn
            module.train_batches_drawn += int(claim)
            return index

        if not module.prefetch or module.device.type != "cpu":
            for position in range(len(positions)):
                yield module.batch(stage, index_at(position, claim=True))
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mann-prefetch")
        ahead: tuple[Hashable, Future[Any]] | None = None
        try:
            for position in range(len(positions)):
                index = index_at(position, claim=True)
                if ahead is not None and ahead[0] == (index, module.batch_signature()):
                    batch = ahead[1].result()
                else:  # nothing drawn ahead, or drawn for another position or shape
                    batch = module.batch(stage, index)
                ahead = None
                if position + 1 < len(positions):
                    upcoming = index_at(position + 1, claim=False)
                    future = executor.submit(module.batch, stage, upcoming)
                    ahead = ((upcoming, module.batch_signature()), future)
                yield batch
        finally:
            # At most one batch is pending; let it finish rather than cancel it: cancelling
            # needs the ``queue`` module, which is gone when an iterator left open is
            # collected at interpreter exit (an "Exception ignored" traceback).
            executor.shutdown(wait=True)


class EpisodeDataModule(L.LightningDataModule):
    """Base of the episode data modules.

    Args:
        train_batches_per_epoch: Training batches per epoch (the stream never repeats).
        val_batches: Fixed validation batches (shared out among DDP ranks).
        test_batches: Fixed test (and predict) batches (shared out among DDP ranks).
        seed: Seed of the training stream: batch ``i`` depends only on ``(seed, rank, i)``.
        eval_seed: Seed of the validation/test batches, independent of ``seed`` so runs
            with different training seeds are evaluated on the same episodes.
        prefetch: On a CPU, draw the next batch in a background thread while the model
            trains on the current one (the same batches either way).
    """

    def __init__(
        self,
        train_batches_per_epoch: int,
        val_batches: int,
        test_batches: int,
        seed: int,
        eval_seed: int,
        prefetch: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for key, value, low in (
            ("train_batches_per_epoch", train_batches_per_epoch, 1),
            ("val_batches", val_batches, 0),
            ("test_batches", test_batches, 0),
        ):
            if value < low:
                raise ValueError(f"{name}: {key} must be >= {low}, got {value}.")
        self.train_batches_per_epoch = train_batches_per_epoch
        self.val_batches, self.test_batches = val_batches, test_batches
        self.seed, self.eval_seed = seed, eval_seed
        self.train_batches_drawn = 0
        self.device = torch.device("cpu")
        self.prefetch = prefetch

    def batch_signature(self) -> Hashable:
        """What, besides its index, decides a batch's content and may change during a run
        (e.g. the episode shape); a batch drawn ahead under another signature is redrawn."""
        return self.device

    def batch(self, stage: Stage, index: int) -> Any:
        """Batch ``index`` of ``stage``; draw it with :meth:`generator`."""
        raise NotImplementedError

    def rank_and_world(self) -> tuple[int, int]:
        """This process's global rank and the number of processes (0, 1 without a trainer)."""
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def trainer_device(self) -> torch.device:
        """The trainer's root device, where batches are sampled (CPU without a trainer)."""
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def generator(self, stage: Stage, index: int) -> torch.Generator:
        """The seeded generator of one batch: training batches differ per rank; evaluation
        batches are the same everywhere (each rank draws its own indices)."""
        rank, _ = self.rank_and_world()
        parts = (
            (self.seed, "train", rank, index)
            if stage == "train"
            else (self.eval_seed, stage, index)
        )
        return torch.Generator(device=self.device).manual_seed(stream_seed(*parts))

    def batch_indices(self, stage: Stage) -> range:
        """Batch indices this rank draws (training indices come from the stream counter)."""
        if stage == "train":
            return range(self.train_batches_per_epoch)
        rank, world = self.rank_and_world()
        batches, option = (
            (self.val_batches, "val_batches") if stage == "val" else
            (self.test_batches, "test_batches")
        )  # fmt: skip
        if 0 < batches < world:
            raise ValueError(
                f"{type(self).__name__}: {option}={batches} cannot be shared out among {world} "
                f"processes (each evaluates whole batches, and one would get none); set "
                f"--data.init_args.{option} to {world} or more (a multiple of {world} shares "
                "them evenly)."
            )
        return range(rank, batches, world)

    def train_dataloader(self) -> EpisodeStream:
        """Training batches, continuing the stream from :attr:`train_batches_drawn`."""
        return EpisodeStream(self, "train")

    def val_dataloader(self) -> EpisodeStream:
        """The fixed validation batches (this rank's share)."""
        return EpisodeStream(self, "val")

    def test_dataloader(self) -> EpisodeStream:
        """The fixed test batches (this rank's share)."""
        return EpisodeStream(self, "test")

    def predict_dataloader(self) -> EpisodeStream:
        """The test batches."""
        return EpisodeStream(self, "test")

    def state_dict(self) -> dict[str, Any]:
        """Position in the training stream (Lightning stores it in checkpoints)."""
        return {"train_batches_drawn": self.train_batches_drawn}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the training stream where :meth:`state_dict` left it."""
        self.train_batches_drawn = int(state_dict["train_batches_drawn"])
