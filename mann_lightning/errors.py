"""User errors end a console script with a short message; bugs keep their traceback.

Every console script of the project (``mann``, ``mann-continual``, ...) wraps its entry point
in :func:`run_console`::

    def main() -> None:
        run_console(_main, prog="mann")

The rule that decides between a one-line message and a traceback (:func:`is_user_error`):

* **User errors**, shown as ``prog: error: <message>`` and exit status 2:
  :class:`UserError` and its subclasses (raised by the project for bad settings, missing or
  unusable checkpoints, unwritable folders), ``FileNotFoundError``, ``PermissionError`` and other
  ``OSError`` about a file (``filename`` set), the data layer's ``OmniglotDataError``, Lightning's
  ``MisconfigurationException``, jsonargparse's ``ArgumentError`` (a bad option or value), and a
  ``ValueError`` or ``TypeError`` that is either raised by jsonargparse (config validation) or
  raised on purpose, by a ``raise`` statement in this project's own code (the constructors'
  checks such as "num_reads must not exceed memory_size").
* An error that wraps one of those (``raise ... from``, an exception raised while handling
  another, jsonargparse's "Does not validate against any of the Union subtypes") is judged by
  the cause it wraps: the chain is walked through ``__cause__`` and ``__context__``.
* **Everything else is a bug** and propagates with its traceback: ``AttributeError``,
  ``KeyError``, ``IndexError``, ``AssertionError``, a ``RuntimeError`` from torch internals, a
  ``ValueError`` raised inside a library, and so on.

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
_NOISE_PREFIXES = ("Expected a ", "Given value type:", "Given value:", "Subtypes:", "Errors:")


class UserError(Exception):
    """An error the user caused; the message says what is wrong, where, and how to fix it."""


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


def _is_user_kind(error: BaseException) -> bool:
    """Whether this one exception (ignoring its chain) is a user error."""
    if isinstance(error, (UserError, argparse.ArgumentError, PermissionError, FileNotFoundError)):
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & {"OmniglotDataError", "MisconfigurationException", "ArgumentError"}:
        return True
    if isinstance(error, (IsADirectoryError, NotADirectoryError, FileExistsError)):
        return True
    if isinstance(error, (ValueError, TypeError)):
        return _raised_by(error, "jsonargparse") or _raised_on_purpose(error)
    return False


def _root_cause(error: BaseException) -> BaseException | None:
    """The innermost user error in the chain, if any."""
    found = None
    for link in _chain(error):
        if _is_user_kind(link) and not _is_noise(str(link)):
            found = link
        elif found is not None and not _is_user_kind(link):
            break
    if found is None:
        found = next((link for link in _chain(error) if _is_user_kind(link)), None)
    return found


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


def user_message(error: BaseException) -> str:
    """The root cause's message, unwrapped from jsonargparse's union noise, a few lines long."""
    root = _root_cause(error) or error
    message = str(root) or type(root).__name__
    if (
        isinstance(root, (FileNotFoundError, PermissionError))
        and root.filename
        and not (root.strerror is None or str(root.filename) in message.replace("'", ""))
    ):
        message = f"{root.strerror}: {root.filename}"
    lines = _informative_lines(message)
    option = _option_name(error)
    if option and option.removeprefix("--") not in lines[0]:
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
