"""Warnings about episodes that repeat images: classes with fewer images than an episode shows.

With ``ragged="replace"`` (the default) a class of fewer than ``samples_per_class`` images is
sampled with replacement, so a later presentation can show the very image of an earlier one
and is easier than the paper's task. :class:`~continual.plugin.MANNEpisodePlugin` says so:

* :func:`warn_small_eval_classes`: an evaluated experience with such classes;
* :func:`warn_small_replayed_classes`: a training experience whose replayed classes (those of
  earlier experiences, kept by e.g. Replay's buffer) have such classes. A replay buffer splits
  ``mem_size`` over every class seen so far, so with a small buffer most replayed classes
  hold a handful of images. Said once per experience; training goes on.
"""

from __future__ import annotations

import warnings
from typing import Any

from mann_lightning.data.pool import ClassPool


def warn_small_eval_classes(
    pool: ClassPool, samples_per_class: int, experience: Any, where: str
) -> None:
    """Warn when an evaluation pool has a class of fewer than ``samples_per_class`` images.

    Args:
        pool: The experience's images by class.
        samples_per_class: Images of each class in an episode.
        experience: The Avalanche experience (for its index in the message).
        where: The stream's name, e.g. ``"test"``.
    """
    fewest = int(pool.counts.min())
    if fewest >= samples_per_class:
        return
    index = getattr(experience, "current_experience", "?")
    warnings.warn(
        f"Experience {index} ({where}) has classes of only {fewest} images for "
        f"samples_per_class={samples_per_class}: its episodes repeat images "
        "(ragged='replace'), so a later presentation can show the very image of an "
        "earlier one. Lower samples_per_class, hold out more drawers "
        "(held_out_drawers), or use ragged='exclude'.",
        stacklevel=3,
    )


def warn_small_replayed_classes(pool: ClassPool, samples_per_class: int, experience: Any) -> None:
    """Warn (once per call: the plugin calls it once per training experience) when replayed
    classes (group 1 of ``pool``) have fewer than ``samples_per_class`` images.

    Args:
        pool: The training experience's images by class, current classes in group 0.
        samples_per_class: Images of each class in an episode.
        experience: The Avalanche experience (its index; ``previous_classes`` if it has them).
    """
    replayed = pool.counts[pool.groups == 1]
    small = int((replayed < samples_per_class).sum())
    if small == 0:
        return
    index = getattr(experience, "current_experience", "?")
    earlier = len(getattr(experience, "previous_classes", None) or ()) or replayed.numel()
    warnings.warn(
        f"Training experience {index}: {small} of {replayed.numel()} replayed classes have "
        f"fewer than samples_per_class={samples_per_class} images (fewest: "
        f"{int(replayed.min())}), so their episodes repeat images (ragged='replace'). A replay "
        "buffer splits its mem_size over all classes seen so far: for distinct images give "
        f"mem_size >= samples_per_class x earlier classes ({samples_per_class} x {earlier} = "
        f"{samples_per_class * earlier}), or lower samples_per_class, or use ragged='exclude' "
        "(leaves such classes out).",
        stacklevel=3,
    )
