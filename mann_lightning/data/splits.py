"""Character splits and class sets (with 90-degree rotation classes) of Omniglot.

* ``"paper"``: background and evaluation merged (1623 characters) and split by a seeded
  permutation into 1200 training and 423 held-out characters (Santoro et al. 2016).
* ``"alphabet"``: alphabet-disjoint, the 964 characters of the 30 background alphabets for
  training and the 659 of the 20 evaluation alphabets held out (Lake et al. 2015).
"""

from __future__ import annotations

import hashlib
from typing import Literal, NamedTuple

import torch
from torch import Tensor

SplitName = Literal["paper", "alphabet"]
PAPER_TRAIN_CHARACTERS = 1200
NUM_CHARACTERS = 1623
NUM_BACKGROUND = 964
SPLIT_SIZES: dict[str, tuple[int, int]] = {
    "paper": (PAPER_TRAIN_CHARACTERS, NUM_CHARACTERS - PAPER_TRAIN_CHARACTERS),
    "alphabet": (NUM_BACKGROUND, NUM_CHARACTERS - NUM_BACKGROUND),
}
"""Number of (training, held-out) characters of each split of the full data set."""


class ClassSet(NamedTuple):
    """The classes episodes are drawn from.

    Attributes:
        characters: ``[K]`` character row (into ``OmniglotArrays.images``) of each class.
        rotations: ``[K]`` quarter turns (0-3) of each class, or ``None`` (all upright).
    """

    characters: Tensor
    rotations: Tensor | None

    def __len__(self) -> int:
        return int(self.characters.numel())


def paper_split(
    num_characters: int = NUM_CHARACTERS, num_train: int = PAPER_TRAIN_CHARACTERS, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Seeded random split of ``range(num_characters)``: sorted (train, held-out) rows."""
    if not 0 < num_train < num_characters:
        raise ValueError(f"num_train must be in (0, {num_characters}), got {num_train}.")
    perm = torch.randperm(num_characters, generator=torch.Generator().manual_seed(seed))
    return perm[:num_train].sort().values, perm[num_train:].sort().values


def alphabet_split(is_background: Tensor) -> tuple[Tensor, Tensor]:
    """Background alphabets' rows for training, evaluation alphabets' rows held out."""
    return torch.nonzero(is_background).flatten(), torch.nonzero(~is_background).flatten()


def split_characters(
    split: SplitName, is_background: Tensor, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """The (training, held-out) character rows of ``split`` (``seed`` only affects ``"paper"``)."""
    if split == "paper":
        return paper_split(is_background.numel(), PAPER_TRAIN_CHARACTERS, seed)
    if split == "alphabet":
        return alphabet_split(is_background)
    raise ValueError(f"Unknown split {split!r}; use 'paper' or 'alphabet'.")


def carve_validation(train: Tensor, count: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Seeded split of the training rows into (training, validation) rows, both sorted.

    Validation characters are training characters the model never trains on, so that
    checkpoints are chosen without looking at the held-out test characters.
    """
    if not 0 <= count < train.numel():
        raise ValueError(
            f"val_characters must be in [0, {train.numel()}) (the training characters of the "
            f"split), got {count}."
        )
    if count == 0:
        return train, train[:0]
    digest = hashlib.blake2b(f"validation/{seed}".encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
    perm = train[torch.randperm(train.numel(), generator=generator)]
    return perm[count:].sort().values, perm[:count].sort().values


def make_classes(characters: Tensor, rotations: bool) -> ClassSet:
    """Classes from characters; with ``rotations`` each character gives 4 classes (0-270 deg)."""
    if not rotations:
        return ClassSet(characters, None)
    turns = torch.arange(4).repeat_interleave(characters.numel())
    return ClassSet(characters.repeat(4), turns)
