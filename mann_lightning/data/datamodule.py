"""``OmniglotEpisodes``: the paper's episode task as a ``LightningDataModule``.

Batches are sampled on the training device with tensor operations (see
:func:`~.episodes.sample_episodes`); the dataloaders are plain re-iterable objects with a
length, so no DataLoader workers are involved.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

import torch

from .cache import OmniglotArrays, load_omniglot
from .episodes import (
    EpisodeBatch,
    LabelEncoding,
    label_size,
    sample_episodes,
    widen_labels,
)
from .omniglot_settings import check_omniglot_settings, check_shape_for_stages
from .splits import (
    ClassSet,
    SplitName,
    carve_validation,
    make_classes,
    split_characters,
)
from .stream import EpisodeDataModule, Stage

log = logging.getLogger(__name__)


class OmniglotEpisodes(EpisodeDataModule):
    """Batches of Omniglot episodes (Santoro et al. 2016) for fit / validate / test / predict.

    Training episodes come from the training characters (with rotation classes and per-image
    jitter); validation episodes from ``val_characters`` characters carved out of the training
    characters (never trained on); test and predict episodes from the held-out characters.
    Evaluation episodes are upright, unjittered and fixed by ``eval_seed``.

    Args:
        root: Folder with Omniglot (``.npz`` arrays, official zips or folders); searched
            before ``$MANN_DATA_DIR`` and the cache folder.
        cache_dir: Writable folder for downloads and preprocessed images; default
            ``$MANN_CACHE_DIR`` or ``~/.cache/mann_lightning``.
        image_size: Side of the square images fed to the model (20 in the paper).
        num_classes: Classes per episode ``N``; change later with :meth:`set_episode_shape`.
        samples_per_class: Drawings per class; an episode has ``N * samples_per_class`` steps.
        label_encoding: ``"onehot"`` (``N`` outputs) or ``"string"`` (five 5-way characters,
            25 outputs).
        batch_size: Episodes per batch.
        split: ``"paper"`` (random 1200 / 423 characters) or ``"alphabet"`` (background /
            evaluation alphabets).
        split_seed: Seed of the ``"paper"`` split's permutation.
        rotations: Rotations by 90, 180 and 270 degrees make new training classes.
        max_translation: Training jitter: largest random shift per image, as a fraction of the
            image side (0.1 = 2 pixels at 20x20); 0 disables it.
        max_rotation: Training jitter: largest random rotation per image in degrees; 0
            disables it.
        train_batches_per_epoch: Training batches per epoch.
        val_batches: Fixed validation batches (shared out among DDP ranks).
        test_batches: Fixed test (and predict) batches (shared out among DDP ranks).
        seed: Seed of the training episodes; batch ``i`` depends only on ``(seed, rank, i)`` and
            the episode shape.
        eval_seed: Seed of the validation / test episodes, independent of ``seed`` so that runs
            with different training seeds are evaluated on the same episodes.
        download: Download the official zips into the cache folder if no copy is found.
        val_characters: Training characters set aside (seeded by ``split_seed``) for validation
            episodes, so that checkpoints are chosen without touching the test characters (the
            paper split becomes 1100 training, 100 validation, 423 test); 0 validates on the
            held-out test characters instead.
        max_classes: Largest ``N`` this run will use (e.g. under a curriculum): one-hot labels
            get this fixed width, so one model serves every ``N`` up to it; ``None``: the width
            is ``num_classes``. String labels are 25 wide either way.
        prefetch: On a CPU, draw the next batch in a background thread while the model
            trains on the current one (the same batches either way; ``docs/performance.md``).
    """

    def __init__(
        self,
        root: str | None = None,
        cache_dir: str | None = None,
        image_size: int = 20,
        num_classes: int = 5,
        samples_per_class: int = 10,
        label_encoding: LabelEncoding = "onehot",
        batch_size: int = 16,
        split: SplitName = "paper",
        split_seed: int = 0,
        rotations: bool = True,
        max_translation: float = 0.1,
        max_rotation: float = 10.0,
        train_batches_per_epoch: int = 1000,
        val_batches: int = 25,
        test_batches: int = 100,
        seed: int = 0,
        eval_seed: int = 1234,
        download: bool = True,
        max_classes: int | None = None,
        val_characters: int = 100,
        prefetch: bool = True,
    ) -> None:
        super().__init__(
            train_batches_per_epoch, val_batches, test_batches, seed, eval_seed, prefetch
        )
        self.save_hyperparameters()
        self._available = check_omniglot_settings(self.hparams)
        self.max_classes = max_classes
        self.root, self.cache_dir, self.download = root, cache_dir, download
        self.image_size, self.batch_size = image_size, batch_size
        self.label_encoding: LabelEncoding = label_encoding
        self.split, self.split_seed, self.rotations = split, split_seed, rotations
        self.max_translation, self.max_rotation = max_translation, max_rotation
        self.arrays: OmniglotArrays | None = None
        self._images: torch.Tensor | None = None
        self._classes: dict[str, ClassSet] = {}
        self.val_characters = val_characters
        self.set_episode_shape(num_classes, samples_per_class)

    @property
    def input_size(self) -> int:
        """Features of ``x_t``: ``image_size ** 2``."""
        return self.image_size**2

    @property
    def label_size(self) -> int:
        """Features of the previous-label input: ``max_classes`` or else ``N`` (one-hot), or 25
        (string)."""
        return label_size(self.label_encoding, self.max_classes or self.num_classes)

    @property
    def num_outputs(self) -> int:
        """Outputs the model needs per step: ``N`` (one-hot) or 25 (string)."""
        return self.label_size

    @property
    def task(self) -> dict[str, Any]:
        """What the model must match; the CLI links it into ``model.init_args.task``."""
        return {
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "label_encoding": self.label_encoding,
            "max_classes": self.max_classes,
        }

    def set_episode_shape(self, num_classes: int, samples_per_class: int) -> None:
        """Change ``N`` and the drawings per class of all batches drawn from now on.

        A curriculum calls this as it grows ``N`` (up to ``max_classes`` when that is set).
        """
        if self.max_classes is not None and num_classes > self.max_classes:
            raise ValueError(
                f"num_classes={num_classes} exceeds max_classes={self.max_classes}, the label "
                "width the model was built for; raise max_classes (and start a new model)."
            )
        check_shape_for_stages(
            num_classes,
            samples_per_class,
            self._available,
            split=self.split,
            rotations=self.rotations,
            val_characters=self.val_characters,
            label_encoding=self.label_encoding,
        )
        self.num_classes, self.samples_per_class = num_classes, samples_per_class

    def batch_signature(self) -> Hashable:
        """The device and the episode shape (:meth:`set_episode_shape` may change it)."""
        return (self.device, self.num_classes, self.samples_per_class)

    def prepare_data(self) -> None:
        """Find or download the data and fill the preprocessed cache (once per node)."""
        load_omniglot(self.root, self.cache_dir, self.image_size, self.download)

    def setup(self, stage: str | None = None) -> None:
        """Load the images onto the trainer's root device (CPU without a trainer)."""
        self.to_device(self.trainer_device())

    def to_device(self, device: torch.device | str) -> OmniglotEpisodes:
        """Load the data if needed and keep it on ``device``, where batches are then sampled."""
        device = torch.device(device)
        if self.arrays is None:
            self.arrays = load_omniglot(self.root, self.cache_dir, self.image_size, self.download)
            train, held_out = split_characters(
                self.split, self.arrays.is_background, self.split_seed
            )
            train, val = carve_validation(train, self.val_characters, self.split_seed)
            self._classes = {
                "train": make_classes(train, self.rotations),
                "val": make_classes(val if self.val_characters else held_out, False),
                "test": make_classes(held_out, False),
            }
            self._available = {k: len(v) for k, v in self._classes.items()}
            self.set_episode_shape(self.num_classes, self.samples_per_class)
        if self._images is None or self.device != device:
            self.device = device
            self._images = self.arrays.to_float().to(device)  # float32, ink = 1.0
            self._classes = {
                k: ClassSet(*(t.to(device) if t is not None else None for t in v))
                for k, v in self._classes.items()
            }
        return self

    def batch(self, stage: Stage, index: int) -> EpisodeBatch:
        """Batch ``index`` of a stage: a deterministic function of the seeds, rank, index and shape."""
        if self._images is None:
            self.setup()
        assert self._images is not None
        train = stage == "train"
        generator = self.generator(stage, index)
        classes = self._classes[stage if stage in ("val", "test") else "train"]
        batch = sample_episodes(
            self._images,
            classes.characters,
            self.num_classes,
            self.samples_per_class,
            self.batch_size,
            generator,
            self.label_encoding,
            classes.rotations,
            self.max_translation if train else 0.0,
            self.max_rotation if train else 0.0,
        )
        return widen_labels(batch, self.label_size)

    def held_out_classes(self) -> ClassSet:
        """The held-out test characters (upright), after :meth:`setup` / :meth:`to_device`."""
        if "test" not in self._classes:
            self.setup()
        return self._classes["test"]

    def state_dict(self) -> dict[str, Any]:
        """Position in the training stream and the current episode shape."""
        return {
            **super().state_dict(),
            "num_classes": self.num_classes,
            "samples_per_class": self.samples_per_class,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the training stream where :meth:`state_dict` left it."""
        self.set_episode_shape(state_dict["num_classes"], state_dict["samples_per_class"])
        super().load_state_dict(state_dict)
