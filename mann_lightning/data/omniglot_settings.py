"""Checks of :class:`~.datamodule.OmniglotEpisodes`' settings, made before any data is read.

Each check raises a ``ValueError`` that names the setting, the value given and what to change;
the ``mann`` command prints it as one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..value_checks import require_int
from .augment import check_jitter
from .cache import check_image_size
from .episodes import check_episode_shape
from .labels import NUM_STRINGS, LabelEncoding, label_size
from .splits import SPLIT_SIZES

WHO = "OmniglotEpisodes"


def check_omniglot_settings(settings: Mapping[str, Any]) -> dict[str, int]:
    """Check the constructor's settings; return the classes each stage can draw from.

    Args:
        settings: ``OmniglotEpisodes``' arguments by name (its ``hparams``).

    Returns:
        ``{"train": ..., "val": ..., "test": ...}``, counted from the split's sizes (rotations
        make four training classes of a character).
    """
    for name in ("num_classes", "samples_per_class", "batch_size", "split_seed", "seed",
                 "eval_seed", "val_characters", "max_classes", "train_batches_per_epoch",
                 "val_batches", "test_batches"):  # fmt: skip
        value = settings.get(name)
        if name in settings and not (value is None and name == "max_classes"):
            require_int(WHO, name, value)
    for name in ("rotations", "download", "prefetch"):
        if name in settings and not isinstance(settings[name], bool):
            raise ValueError(f"{WHO}: {name} must be true or false, got {settings[name]!r}.")
    split, num_classes, max_classes = (settings[k] for k in ("split", "num_classes", "max_classes"))
    label_encoding, val_characters = settings["label_encoding"], settings["val_characters"]
    if split not in SPLIT_SIZES:
        raise ValueError(f"Unknown split {split!r}; use 'paper' or 'alphabet'.")
    label_size(label_encoding, num_classes)  # validates the encoding
    limit = NUM_STRINGS if label_encoding == "string" else None
    if max_classes is not None and (max_classes < 2 or (limit and max_classes > limit)):
        raise ValueError(
            f"{WHO}: max_classes must be >= 2 (and <= {NUM_STRINGS} for string "
            f"labels), got {max_classes}."
        )
    check_image_size(WHO, settings["image_size"])
    if settings["batch_size"] < 1:
        raise ValueError(f"{WHO}: batch_size must be >= 1, got {settings['batch_size']}.")
    check_jitter(WHO, settings["max_translation"], settings["max_rotation"])
    train, held_out = SPLIT_SIZES[split]
    if not 0 <= val_characters < train:
        raise ValueError(
            f"{WHO}: val_characters must be in [0, {train}) (the training "
            f"characters of split={split!r}), got {val_characters}."
        )
    available = {
        "train": (train - val_characters) * (4 if settings["rotations"] else 1),
        "val": val_characters or held_out,
        "test": held_out,
    }
    if max_classes is not None and max_classes > available["train"]:
        raise ValueError(
            f"{WHO}: max_classes={max_classes} exceeds the {available['train']} classes of "
            f"the training characters of split={split!r}; no episode can have that many "
            "classes. Lower max_classes."
        )
    return available


def check_shape_for_stages(
    num_classes: int,
    samples_per_class: int,
    available: dict[str, int],
    *,
    split: str,
    rotations: bool,
    val_characters: int,
    label_encoding: LabelEncoding,
) -> None:
    """Check that every stage can draw episodes of ``num_classes`` x ``samples_per_class``.

    Args:
        available: Classes per stage, from :func:`check_omniglot_settings` or counted on the
            loaded data.
    """
    rot = "x 4 rotations" if rotations else "no rotations"
    where = {
        "train": f"the training characters of split={split!r} ({rot})",
        "val": f"the validation characters (val_characters={val_characters})"
        if val_characters
        else f"the held-out characters of split={split!r} (val_characters=0)",
        "test": f"the held-out test characters of split={split!r}",
    }
    fixes = {  # rotations turn training characters only
        "train": "lower num_classes" + ("" if rotations else " or set rotations=true")
        + " (or use a split with more classes)",
        "val": "lower num_classes or raise val_characters",
        "test": "lower num_classes (the split fixes the held-out characters)",
    }  # fmt: skip
    for key, text in where.items():
        check_episode_shape(
            num_classes, samples_per_class, available[key], label_encoding, text, fixes[key]
        )
    for name, value, why in (  # the paper's task needs both, beyond what can be drawn
        ("samples_per_class", samples_per_class, "accuracy is reported from a class's 2nd "
         "presentation, so one drawing per class leaves nothing to learn or measure"),
        ("num_classes", num_classes, "with one class per episode every label is the same, "
         "so any model scores 100% without memory"),
    ):  # fmt: skip
        if value < 2:
            raise ValueError(f"{WHO}: {name} must be >= 2, got {value}: {why}.")
