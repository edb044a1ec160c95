"""User errors end a console script with a short message; bugs keep their traceback.

Every console script of the project (``mann``, ``mann-continual``, ...) wraps its entry point
in :func:`run_console`::

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

A user error prints ``prog: error: <message>`` (the option jsonargparse blamed first, the union
noise removed, at most a few lines) and exits with status 2.

Setting the environment variable ``MANN_TRACEBACK=1`` (any non-empty value but ``0``) shows the
full traceback for every error, user errors included.
"""

from __future__ import annotations

import argparse
import linecache
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

TRACEBACK_ENV = "MANN_TRACEBACK"
TRACEBACK_HINT = f"(set {TRACEBACK_ENV}=1 to see the traceback)"
EXIT_STATUS = 2
MAX_LINES = 6
MAX_LINE_CHARS = 400

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_OWN_PACKAGES = ("mann_lightning", "continual")
_UNION_NOISE = "Does not validate against any of the Union subtypes"
_PARSER_KEY = re.compile(r'Parser key "([^"]+)"')
_LITERAL_CHOICES = re.compile(r"Expected a typing\.Literal\[([^\]]*)\]")
_NOISE_PREFIXES = ("Expected a ", "Given value type:", "Given value:", "Subtypes:", "Errors:")


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


def _chain(error: BaseException) -> Iterator[BaseException]:
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


def _is_deliberate(error: BaseException) -> bool:
    """An exception that reports a user's mistake by its type or by a ``raise`` in our code."""
    if isinstance(error, _USER_TYPES):
        return True
    if {cls.__name__ for cls in type(error).__mro__} & _USER_TYPE_NAMES:
        return True
    if _out_of_memory(error):
        return True
    return isinstance(error, (ValueError, TypeError)) and _raised_on_purpose(error)


def _out_of_memory(error: BaseException) -> bool:
    """An allocation the machine could not serve: sizes too large for it, not a bug."""
    if type(error).__name__ == "OutOfMemoryError" or isinstance(error, MemoryError):
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def _is_wrapper(error: BaseException) -> bool:
    """jsonargparse's own errors: a config problem, or a wrapper around what went wrong."""
    return isinstance(error, argparse.ArgumentError) or _raised_by(error, "jsonargparse")


def _root_cause(error: BaseException) -> BaseException | None:
    """The exception that explains a user error, or ``None`` for a bug.

    Walking from the outermost exception inwards, the first deliberate one (see
    :func:`_is_deliberate`) decides; jsonargparse's errors are looked through; any other
    exception is a bug. A chain of nothing but jsonargparse errors is a config problem, told by
    its innermost informative message.
    """
    links = list(_chain(error))
    for link in links:
        if _is_deliberate(link):
            return link
        if not _is_wrapper(link):
            return None
    return next((link for link in reversed(links) if not _is_noise(str(link))), links[-1])


def _is_noise(message: str) -> bool:
    return message.startswith(_UNION_NOISE) or not message.strip()


def is_user_error(error: BaseException) -> bool:
    """True when ``error`` (or what it wraps) was caused by the user; see the module docstring."""
    if isinstance(error, (SystemExit, KeyboardInterrupt)):
        return False
    return _root_cause(error) is not None


def _informative_lines(message: str) -> list[str]:
    """Drop jsonargparse's union scaffolding; keep the reasons, the innermost first."""
    if _UNION_NOISE not in message:
        return [line.rstrip() for line in message.strip().splitlines() if line.strip()]
    reasons = []
    for line in message.splitlines():
        text = line.strip().removeprefix("- ").strip()
        if text and not text.startswith(_NOISE_PREFIXES) and _UNION_NOISE not in text:
            reasons.append(text)
    return reasons or [_UNION_NOISE]


def _option_name(error: BaseException) -> str | None:
    """The command-line option jsonargparse blamed, e.g. ``--data.init_args.num_classes``."""
    keys: list[str] = []
    for link in _chain(error):
        match = _PARSER_KEY.match(str(link))
        if match and (not keys or keys[-1] != match.group(1)):
            keys.append(match.group(1))
    return "--" + ".init_args.".join(keys) if keys else None


def _accepted_names(error: BaseException, already_told: str) -> str | None:
    """For a value that matched no member of a union with names (``memory: foo``), the names
    it accepts, unless ``already_told`` lists them: jsonargparse's own message names only the
    first member that failed."""
    messages = [str(link) for link in _chain(error)]
    found = next((m for m in map(_LITERAL_CHOICES.search, messages) if m), None)
    if found is None:
        return None
    names = found.group(1)
    if names in already_told:
        return None
    if any("dot import path" in message for message in messages):
        return f"Accepted: {names}, or a class_path (with init_args) naming a class."
    return f"Accepted: {names}."


def user_message(error: BaseException) -> str:
    """The root cause's message, unwrapped from jsonargparse's union noise, a few lines long."""
    root = _root_cause(error) or error
    message = re.sub(r"^\[Errno \d+\] ", "", str(root)) or type(root).__name__
    if "YAMLError" in {cls.__name__ for cls in type(root).__mro__}:
        where = " ".join(message.replace('in "<unicode string>", ', "at ").split())
        message = f"not valid YAML (a --config file or a value on the command line): {where}"
    lines = _informative_lines(message)
    if _out_of_memory(root):
        lines[-1] += (
            " Not enough memory for these sizes: lower batch_size, memory_size, "
            "controller_size or the episode length (num_classes x samples_per_class)."
        )
    choices = _accepted_names(error, already_told=" ".join(lines))
    if choices:
        lines.append(choices)
    option = _option_name(error)
    if option and not re.search(rf"(?<![\w.]){re.escape(option[2:])}(?![\w.])", lines[0]):
        lines[0] = f"{option}: {lines[0]}"
    lines = [
        line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..."
        for line in lines
    ]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], f"... ({len(lines) - MAX_LINES + 1} more lines)"]
    return "\n".join(lines)


def run_console(main: Callable[[], object], prog: str) -> None:
    """Run a console script's ``main``; user errors become ``prog: error: ...`` and exit 2.

    Args:
        main: The script's body, called without arguments.
        prog: The command's name, printed before the message.

    Raises:
        SystemExit: Status 2 after a user error; ``SystemExit`` from ``main`` passes unchanged.
    """
    try:
        main()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as error:
        if traceback_requested() or not is_user_error(error):
            raise
        sys.stderr.write(f"{prog}: error: {user_message(error)}\n{TRACEBACK_HINT}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_STATUS) from error
