"""The short message a user error ends a console script with, and the wrapper that prints it.

:func:`run_console` wraps every console script's entry point. An error that
:func:`mann_lightning.errors.is_user_error` calls the user's is printed as
``prog: error: <message>`` (the option jsonargparse blamed first, the union noise removed, at
most :data:`MAX_LINES` lines) and the script exits with status 2; a bug keeps its traceback, and
``MANN_TRACEBACK=1`` shows the traceback of every error.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from .errors import (
    TRACEBACK_ENV,
    UNION_NOISE,
    error_chain,
    is_deliberate,
    is_user_error,
    out_of_memory,
    root_cause,
    traceback_requested,
)

TRACEBACK_HINT = f"(set {TRACEBACK_ENV}=1 to see the traceback)"
EXIT_STATUS = 2
MAX_LINES = 6
MAX_LINE_CHARS = 400

_PARSER_KEY = re.compile(r'Parser key "([^"]+)"')
_LITERAL_CHOICES = re.compile(r"Expected a typing\.Literal\[([^\]]*)\]")
_CLASS_REPR = re.compile(r"<class '([\w.]+)'>")
_NON_FINITE = re.compile(r"Expected a float\. Got value: ([-+]?(?:nan|inf(?:inity)?))\b", re.I)
_NOISE_PREFIXES = ("Expected a ", "Given value type:", "Given value:", "Subtypes:", "Errors:")


def _informative_lines(message: str) -> list[str]:
    """Drop jsonargparse's union scaffolding; keep the reasons, the innermost first."""
    if UNION_NOISE not in message:
        return [line.rstrip() for line in message.strip().splitlines() if line.strip()]
    reasons = []
    for line in message.splitlines():
        text = line.strip().removeprefix("- ").strip()
        if text and not text.startswith(_NOISE_PREFIXES) and UNION_NOISE not in text:
            reasons.append(text)
    return reasons or [UNION_NOISE]


def _option_name(error: BaseException) -> str | None:
    """The command-line option jsonargparse blamed, e.g. ``--data.init_args.num_classes``."""
    keys: list[str] = []
    for link in error_chain(error):
        match = _PARSER_KEY.match(str(link))
        if match and (not keys or keys[-1] != match.group(1)):
            keys.append(match.group(1))
    return "--" + ".init_args.".join(keys) if keys else None


def _accepted_names(error: BaseException, already_told: str) -> str | None:
    """For a value that matched no member of a union with names (``memory: foo``), the names
    it accepts, unless ``already_told`` lists them: jsonargparse's own message names only the
    first member that failed."""
    messages = [str(link) for link in error_chain(error)]
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
    root = root_cause(error) or error
    message = re.sub(r"^\[Errno \d+\] ", "", str(root)) or type(root).__name__
    if "YAMLError" in {cls.__name__ for cls in type(root).__mro__}:
        where = " ".join(message.replace('in "<unicode string>", ', "at ").split())
        message = f"not valid YAML (a --config file or a value on the command line): {where}"
    message = _CLASS_REPR.sub(r"\1", message)  # "Expected a <class 'float'>" -> "Expected a float"
    message = _NON_FINITE.sub(r"expected a finite number, got \1", message)
    lines = _informative_lines(message)
    if out_of_memory(root):
        lines[-1] += (
            " Not enough memory for these sizes: lower batch_size, memory_size, "
            "controller_size or the episode length (num_classes x samples_per_class)."
        )
    # the names a union accepts: for a value none of its members took, not for an error the
    # chosen member's own constructor raised (that message says what to change)
    choices = None if is_deliberate(root) else _accepted_names(error, " ".join(lines))
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
