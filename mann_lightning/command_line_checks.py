"""Checks of a console script's own command line, before its parser runs or after it.

``--seed`` values numpy cannot take, and ``--config`` files that hold no settings: each is a
:class:`~mann_lightning.errors.UserError` naming the option and the fix, where the parser or
numpy would word it badly (jsonargparse's "Unexpected config:" names no file).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import UserError


def check_seed(option: str, seed: object) -> None:
    """A :class:`UserError` for an integer seed outside numpy's ``[0, 2**32)`` (numpy raises
    deep inside seeding otherwise); ``None`` and non-integers are left to the parser."""
    if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed < 2**32:
        raise UserError(f"{option} must be in [0, 2**32 - 1] (numpy's range), got {seed}.")


def check_config_files(args: Sequence[str] | None, example: str) -> None:
    """Refuse a ``--config``/``-c`` file that holds no settings, naming it (jsonargparse's own
    "Unexpected config:" names neither the file nor what is wrong). Missing files, files that
    are not valid YAML and inline YAML values are left to the parser, which words them.

    Args:
        args: The command line (``None``: ``sys.argv[1:]``).
        example: A config to suggest, e.g. ``configs/omniglot_5way_onehot.yaml``.

    Raises:
        UserError: the file is empty, only comments, or not a mapping of settings.
    """
    import yaml

    argv = list(sys.argv[1:] if args is None else args)
    paths = [b for a, b in zip(argv, argv[1:], strict=False) if a in ("--config", "-c")]
    paths += [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    for path in paths:
        try:
            if not Path(path).is_file():
                continue
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
            continue
        if data is None:
            what = "is empty (or only comments)"
        elif not isinstance(data, dict):
            what = f"holds a YAML {type(data).__name__}, not a mapping of settings (key: value)"
        else:
            continue
        raise UserError(f"--config {path} {what}. Give a config like {example}.")
