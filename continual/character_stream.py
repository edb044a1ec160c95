"""Class-incremental Omniglot over characters: fixed-size groups of characters per experience.

See :mod:`continual.streams` for the class ids, image format and jitter, which this stream
shares with :class:`~continual.streams.OmniglotAlphabetStream`.
"""

from __future__ import annotations

from typing import Literal

import torch

from mann_lightning.data import load_omniglot
from mann_lightning.data.cache import check_image_size
from mann_lightning.value_checks import require_int

from .streams import Half, _OmniglotStream, character_dataset, half_rows, split_held_out


class OmniglotCharacterStream(_OmniglotStream):
    """Class-incremental Omniglot: each experience a fixed-size group of characters.

    Args:
        characters_per_experience: Characters per experience (before rotations).
        num_experiences: Experiences; ``None``: as many full groups as the characters give
            (characters left over are not used).
        characters: Characters of ``"all"``, ``"background"`` or ``"evaluation"`` alphabets.
        held_out: ``"characters"``: a seeded ``held_out_fraction`` of each group's
            characters is the test data; ``"drawers"``: all characters are trained on with
            the first ``20 - held_out_drawers`` drawers and tested on the last ones.
        held_out_fraction: Share of characters held out (``held_out="characters"``).
        held_out_drawers: Drawers held out (``held_out="drawers"``).
        shuffle: Permute the characters with ``seed`` before grouping (else id order, which
            keeps alphabets together).
        seed: Seed of the shuffle and the held-out split.
        image_size: Side of the images.
        rotations: Training images also turned by 90, 180, 270 degrees, as new classes.
        max_translation: Training jitter for the plugin (fraction of the side).
        max_rotation: Training jitter for the plugin (degrees).
        root: Folder with Omniglot; ``$MANN_DATA_DIR`` and the cache are searched after it.
        cache_dir: Writable cache folder.
        download: Download the official zips if no copy is found.
    """

    def __init__(
        self,
        characters_per_experience: int = 100,
        num_experiences: int | None = None,
        characters: Half = "all",
        held_out: Literal["characters", "drawers"] = "characters",
        held_out_fraction: float = 0.4,
        held_out_drawers: int = 5,
        shuffle: bool = True,
        seed: int = 0,
        image_size: int = 20,
        rotations: bool = False,
        max_translation: float = 0.0,
        max_rotation: float = 0.0,
        root: str | None = None,
        cache_dir: str | None = None,
        download: bool = True,
    ) -> None:
        owner = type(self).__name__
        require_int(owner, "characters_per_experience", characters_per_experience, 2)
        require_int(owner, "held_out_drawers", held_out_drawers)
        require_int(owner, "seed", seed)
        if num_experiences is not None:
            require_int(owner, "num_experiences", num_experiences, 1)
        if held_out not in ("characters", "drawers"):
            raise ValueError(f"Unknown held_out={held_out!r}; use 'characters' or 'drawers'.")
        if held_out == "characters" and not 0 < held_out_fraction < 1:
            raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}.")
        check_image_size(type(self).__name__, image_size)
        arrays = load_omniglot(root, cache_dir, image_size, download)
        num_drawers = arrays.images.shape[1]
        if held_out == "drawers" and not 1 <= held_out_drawers < num_drawers:
            raise ValueError(
                f"held_out_drawers must be in [1, {num_drawers - 1}], got {held_out_drawers}."
            )
        generator = torch.Generator().manual_seed(seed)
        rows = half_rows(arrays, characters)
        if shuffle:
            rows = rows[torch.randperm(rows.numel(), generator=generator)]
        available = rows.numel() // characters_per_experience
        if available == 0 or (
            num_experiences is not None and not 1 <= num_experiences <= available
        ):
            raise ValueError(
                f"{rows.numel()} characters ({characters!r}) give {available} groups of "
                f"{characters_per_experience}; num_experiences={num_experiences} needs at least one "
                "and at most that many: lower characters_per_experience or num_experiences."
            )
        count = available if num_experiences is None else num_experiences
        all_drawers = torch.arange(num_drawers)
        train, test = [], []
        for number in range(count):
            group = rows[
                number * characters_per_experience : (number + 1) * characters_per_experience
            ]
            if held_out == "characters":
                fit, held = split_held_out(group.sort().values, held_out_fraction, generator)
                train.append(character_dataset(arrays, fit, all_drawers, rotations))
                test.append(character_dataset(arrays, held, all_drawers, False))
            else:
                group = group.sort().values
                cut = num_drawers - held_out_drawers
                train.append(character_dataset(arrays, group, all_drawers[:cut], rotations))
                test.append(character_dataset(arrays, group, all_drawers[cut:], False))
        self.image_size = image_size
        self._build(train, test, (max_translation, max_rotation))
