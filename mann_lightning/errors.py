"""Which errors a user caused (a short message) and which are bugs (their traceback).

Every console script of the project (``mann``, ``mann-continual``, ...) wraps its entry point
in :func:`mann_lightning.error_report.run_console`, which asks :func:`is_user_error` and, for a
user error, prints :func:`~mann_lightning.error_report.user_message`::

    def main() -> None:
        run_console(_main, prog="mann")

The rule that decides between a short message and a traceback (:func:`is_user_error`) walks
the exception and what it wraps (``__cause__``, else ``__context__``), outermost first:

* A **deliberate** report of a user's mistake decides at once, as a user error:
  :class:`UserError` and its subclasses (the project's checks: checkpoints, folders, untrained
  models, non-finite training), ``FileNotFoundError``, ``PermissionError``,
  ``IsADirectoryError``, ``NotADirectoryError``, ``FileExistsError``, ``ModuleNotFoundError``
  (an unknown ``class_path`` or a missing optional package), the data layer's
  ``OmniglotDataError``, Lightning's ``MisconfigurationException``, yaml's ``YAMLError`` (a
  config that is not valid YAML), an allocation the machine cannot serve (``MemoryError``,
  torch's "can't allocate memory" and ``OutOfMemoryError``: sizes too large for it, told with
  the sizes to lower), and a ``ValueError`` or ``TypeError`` raised by a ``raise``
  statement in this project's own code (the constructors' checks, e.g. "num_reads (2) must
  not exceed memory_size (1)"). What such an error wraps does not matter: it was raised on
  purpose to translate it.
* **jsonargparse's errors** (``ArgumentError`` and anything raised inside jsonargparse, such as
  "Does not validate against any of the Union subtypes") are looked through: they wrap the
  constructor that failed. A chain made only of them is a config problem (a bad type, an
  unknown key or class), a user error told by its innermost informative message.
* **Anything else is a bug** and keeps its traceback: ``AttributeError``, ``KeyError``,
  ``IndexError``, ``AssertionError``, a ``RuntimeError`` from torch, a ``ValueError`` raised
  inside a library, even when jsonargparse wraps it (a constructor that crashed).

Setting the environment variable ``MANN_TRACEBACK=1`` (any non-empty value but ``0``) shows the
full traceback for every error, user errors included.
"""

from __future__ import annotations

import argparse
import linecache
import os
from collections.abc import Iterator
from pathlib import Path

TRACEBACK_ENV = "MANN_TRACEBACK"

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_OWN_PACKAGES = ("mann_lightning", "continual")
UNION_NOISE = "Does not validate against any of the Union subtypes"


class UserError(Exception):
    """An error the user caused; the message says what is wrong, where, and how to fix it."""


_USER_TYPES = (
    UserError,
    PermissionError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
    ModuleNotFoundError,
)
# wandb.errors.UsageError: a setting W&B refuses (project name, mode, resume id); yaml's
# YAMLError: a config file (or a YAML value given on the command line) that is not valid YAML
_USER_TYPE_NAMES = frozenset(
    {"OmniglotDataError", "MisconfigurationException", "UsageError", "YAMLError"}
)


def traceback_requested() -> bool:
    """Whether ``MANN_TRACEBACK`` asks for full tracebacks."""
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then what caused it (``__cause__``, else ``__context__``), outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raise_site(error: BaseException) -> tuple[str, int] | None:
    """File name and line number of the innermost frame the error passed through."""
    tb = error.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def _raised_by(error: BaseException, package: str) -> bool:
    site = _raise_site(error)
    return site is not None and f"{os.sep}{package}{os.sep}" in site[0]


def _raised_on_purpose(error: BaseException) -> bool:
    """A ``raise`` statement in this project's own code (not a failed built-in call)."""
    site = _raise_site(error)
    if site is None:
        return False
    filename, lineno = site
    path = Path(filename).resolve()
    if not any(path.is_relative_to(_PACKAGE_ROOT / name) for name in _OWN_PACKAGES):
        return False
    return linecache.getline(filename, lineno).lstrip().startswith("raise")


def is_deliberate(error: BaseException) -> bool:
    """An exception that reports a user's mistake by its type or by a ``raise`` in our code."""
    if isinstance(error, _USER_TYPES):
        return True
    if {cls.__name__ for cls in type(error).__mro__} & _USER_TYPE_NAMES:
        return True
    if out_of_memory(error):
        return True
    return isinstance(error, (ValueError, TypeError)) and _raised_on_purpose(error)


def out_of_memory(error: BaseException) -> bool:
    """An allocation the machine could not serve: sizes too large for it, not a bug."""
    if type(error).__name__ == "OutOfMemoryError" or isinstance(error, MemoryError):
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def _is_wrapper(error: BaseException) -> bool:
    """jsonargparse's own errors: a config problem, or a wrapper around what went wrong."""
    return isinstance(error, argparse.ArgumentError) or _raised_by(error, "jsonargparse")


def root_cause(error: BaseException) -> BaseException | None:
    """The exception that explains a user error, or ``None`` for a bug.

    Walking from the outermost exception inwards, the first deliberate one (see
    :func:`is_deliberate`) decides; jsonargparse's errors are looked through; any other
    exception is a bug. A chain of nothing but jsonargparse errors is a config problem, told by
    its innermost informative message.
    """
    links = list(error_chain(error))
    for link in links:
        if is_deliberate(link):
            return link
        if not _is_wrapper(link):
            return None
    return next((link for link in reversed(links) if not _is_noise(str(link))), links[-1])


def _is_noise(message: str) -> bool:
    return message.startswith(UNION_NOISE) or not message.strip()


def is_user_error(error: BaseException) -> bool:
    """True when ``error`` (or what it wraps) was caused by the user; see the module docstring."""
    if isinstance(error, (SystemExit, KeyboardInterrupt)):
        return False
    return root_cause(error) is not None


_MOVED_TO_ERROR_REPORT = frozenset(
    {"run_console", "user_message", "TRACEBACK_HINT", "EXIT_STATUS", "MAX_LINES", "MAX_LINE_CHARS"}
)


def __getattr__(name: str) -> object:
    """``from mann_lightning.errors import run_console`` (where it lived before) still works."""
    if name in _MOVED_TO_ERROR_REPORT:
        from . import error_report

        return getattr(error_report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
