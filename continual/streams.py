"""Omniglot as Avalanche benchmarks: alphabet-incremental and class-incremental streams.

Both read the project's own copy of Omniglot (``root``, ``$MANN_DATA_DIR`` or the cache,
through :func:`mann_lightning.data.load_omniglot`: same loaders, preprocessing and cache as
``OmniglotEpisodes``) and are ordinary Avalanche benchmarks (``train_stream``,
``test_stream``, ``classes_in_this_experience``...). Class ids are global: character row
``c`` (0-1622; 0-963 background, 964-1622 evaluation alphabets) is class ``c``, its turn by
``k`` quarter turns (``rotations=True``, training data only) class ``c + 1623 * k``, so ids
never overlap across experiences or across the two halves (Avalanche's ``SplitOmniglot``
maps the halves onto overlapping labels and downloads through torchvision).

Images are ``[1, S, S]`` uint8 (255 = ink); the plugin scales them to ``[0, 1]``. The jitter
options are stored on every training experience as ``episode_jitter`` and applied on the
device when the plugin samples episodes, as ``OmniglotEpisodes`` does.

* :class:`OmniglotAlphabetStream`: each experience is a group of alphabets; inside it, a
  seeded ``held_out_fraction`` of each group's characters is held out (the test stream's
  experience) and the rest is meta-trained on (the train stream's experience).
* :class:`OmniglotCharacterStream`: fixed-size groups of characters, tested on held-out
  characters of the group (``held_out="characters"``) or on held-out drawers of the same
  characters (``held_out="drawers"``).
"""

from __future__ import annotations

from typing import Literal

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.utils.classification_dataset import (
    _make_taskaware_tensor_classification_dataset,
)
from torch import Tensor

from mann_lightning.data import OmniglotArrays, load_omniglot, rotate90
from mann_lightning.data.augment import check_jitter
from mann_lightning.data.cache import check_image_size
from mann_lightning.data.splits import NUM_CHARACTERS
from mann_lightning.value_checks import require_int

Half = Literal["all", "background", "evaluation"]


def character_dataset(arrays: OmniglotArrays, rows: Tensor, drawers: Tensor, rotations: bool):
    """An Avalanche classification dataset of some characters, drawers and turns."""
    images = arrays.images[rows][:, drawers]  # [C, D, S, S] uint8
    labels = rows.unsqueeze(1).expand(-1, drawers.numel())
    turns = range(4) if rotations else range(1)
    xs, ys = [], []
    for k in turns:
        flat = images.reshape(-1, *images.shape[-2:])
        xs.append(rotate90(flat, torch.full((flat.shape[0],), k)) if k else flat)
        ys.append((labels + NUM_CHARACTERS * k).reshape(-1))
    x, y = torch.cat(xs).unsqueeze(1).contiguous(), torch.cat(ys)
    return _make_taskaware_tensor_classification_dataset(x, y, task_labels=0, targets=y)


def split_held_out(
    rows: Tensor, fraction: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Seeded split of ``rows`` into (meta-training, held-out) rows, each sorted, both non-empty."""
    count = rows.numel()
    held = min(max(round(fraction * count), 1), count - 1)
    perm = rows[torch.randperm(count, generator=generator)]
    return perm[held:].sort().values, perm[:held].sort().values


def half_rows(arrays: OmniglotArrays, half: Half) -> Tensor:
    """Character rows of ``"all"``, ``"background"`` or ``"evaluation"`` alphabets."""
    if half == "all":
        return torch.arange(arrays.images.shape[0])
    if half not in ("background", "evaluation"):
        raise ValueError(f"Unknown alphabets {half!r}; use 'all', 'background' or 'evaluation'.")
    mask = arrays.is_background if half == "background" else ~arrays.is_background
    return torch.nonzero(mask).flatten()


class _OmniglotStream(CLScenario):
    """Shared construction: datasets per experience -> benchmark with a classes timeline."""

    def _build(self, train: list, test: list, jitter: tuple[float, float]) -> None:
        check_jitter(type(self).__name__, *jitter)
        timeline = with_classes_timeline(benchmark_from_datasets(train=train, test=test))
        super().__init__(list(timeline.streams.values()))
        for experience in self.train_stream:  # type: ignore[attr-defined]
            experience.episode_jitter = jitter
        self.jitter = jitter


class OmniglotAlphabetStream(_OmniglotStream):
    """Alphabet-incremental Omniglot: one experience per group of alphabets.

    Args:
        alphabets: ``"all"`` (50), ``"background"`` (30) or ``"evaluation"`` (20) alphabets,
            in the official order (``shuffle=True`` permutes them with ``seed``).
        alphabets_per_experience: Alphabets per experience (the last may have fewer).
        groups: Explicit grouping instead: a list of experiences, each a list of alphabet
            names or indices (0-49); overrides ``alphabets`` and ``alphabets_per_experience``.
        num_experiences: Keep only the first experiences (``None``: all).
        held_out_fraction: Share of each experience's characters held out for testing.
        shuffle: Permute the alphabet order with ``seed`` before grouping.
        seed: Seed of the shuffle and the held-out split.
        image_size: Side of the images (20 in the paper).
        rotations: Training characters also appear turned by 90, 180, 270 degrees, as new
            classes (held-out characters stay upright).
        max_translation: Training jitter for the plugin (fraction of the side).
        max_rotation: Training jitter for the plugin (degrees).
        root: Folder with Omniglot; ``$MANN_DATA_DIR`` and the cache are searched after it.
        cache_dir: Writable cache folder.
        download: Download the official zips if no copy is found.
    """

    def __init__(
        self,
        alphabets: Half = "all",
        alphabets_per_experience: int = 1,
        groups: list[list[str | int]] | None = None,
        num_experiences: int | None = None,
        held_out_fraction: float = 0.4,
        shuffle: bool = False,
        seed: int = 0,
        image_size: int = 20,
        rotations: bool = False,
        max_translation: float = 0.0,
        max_rotation: float = 0.0,
        root: str | None = None,
        cache_dir: str | None = None,
        download: bool = True,
    ) -> None:
        if not 0 < held_out_fraction < 1:
            raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}.")
        owner = type(self).__name__
        require_int(owner, "alphabets_per_experience", alphabets_per_experience, 1)
        require_int(owner, "seed", seed)
        if num_experiences is not None:
            require_int(owner, "num_experiences", num_experiences, 1)
        check_image_size(type(self).__name__, image_size)
        arrays = load_omniglot(root, cache_dir, image_size, download)
        generator = torch.Generator().manual_seed(seed)
        if groups is None:
            names = sorted(
                {int(a) for a in arrays.character_alphabet[half_rows(arrays, alphabets)]}
            )
            order = torch.tensor(names)
            if shuffle:
                order = order[torch.randperm(len(names), generator=generator)]
            groups = [order[i : i + alphabets_per_experience].tolist() for i in range(0, len(names), alphabets_per_experience)]  # fmt: skip
        if not groups:
            raise ValueError(
                "groups is empty: the stream would have no experience. Give at least one "
                "group of alphabets, or leave groups unset (null) to form groups of "
                "alphabets_per_experience alphabets."
            )
        indices = [[self._alphabet_index(arrays, a) for a in group] for group in groups]
        seen: dict[int, int] = {}
        for number, group in enumerate(indices):
            if not group:
                raise ValueError(
                    f"Alphabet group {number} is empty: every experience needs alphabets."
                )
            for alphabet in group:  # a repeat would put test characters in the training data
                if alphabet in seen:
                    where = "twice in group" if seen[alphabet] == number else "in groups"
                    groups_named = (
                        f"{number}"
                        if seen[alphabet] == number
                        else f"{seen[alphabet]} and {number}"
                    )
                    raise ValueError(
                        f"Alphabet {arrays.alphabets[alphabet]!r} appears {where} "
                        f"{groups_named}: each alphabet may belong to one experience once (its "
                        "held-out characters would otherwise be trained on)."
                    )
                seen[alphabet] = number
        if num_experiences is not None:
            if not 1 <= num_experiences <= len(indices):
                raise ValueError(
                    f"num_experiences={num_experiences} must be between 1 and the "
                    f"{len(indices)} alphabet groups."
                )
            indices = indices[:num_experiences]
        drawers = torch.arange(arrays.images.shape[1])
        train, test = [], []
        for group in indices:
            rows = torch.cat([arrays.alphabet_characters(a) for a in group]).sort().values
            fit, held = split_held_out(rows, held_out_fraction, generator)
            train.append(character_dataset(arrays, fit, drawers, rotations))
            test.append(character_dataset(arrays, held, drawers, False))
        self.alphabet_groups = [[arrays.alphabets[a] for a in group] for group in indices]
        self.image_size = image_size
        self._build(train, test, (max_translation, max_rotation))

    @staticmethod
    def _alphabet_index(arrays: OmniglotArrays, alphabet: str | int) -> int:
        if isinstance(alphabet, int) and 0 <= alphabet < len(arrays.alphabets):
            return alphabet
        if isinstance(alphabet, str) and alphabet in arrays.alphabets:
            return arrays.alphabets.index(alphabet)
        raise ValueError(
            f"Unknown alphabet {alphabet!r}: give a name such as {arrays.alphabets[0]!r} or an "
            f"index 0-{len(arrays.alphabets) - 1}."
        )
