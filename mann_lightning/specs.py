"""``class_path``/``init_args`` specs: how configs and checkpoints name a module.

A *spec* is the dict a ``LightningCLI`` config uses, ``{"class_path": "pkg.Class",
"init_args": {...}}``. Checkpoints store memories and controllers as specs so that a
checkpoint alone rebuilds the model.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterable
from typing import Any

from torch import nn


def spec_of(module: nn.Module) -> dict[str, Any]:
    """The ``class_path``/``init_args`` spec that rebuilds ``module`` (untrained).

    Init arguments are read back from attributes of the same name, which every memory
    and controller in this package keeps; ``input_size``-like sizes filled in by
    ``build`` are left out, since the model fills them in again.
    """
    cls = type(module)
    init_args = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name == "input_size":
            continue
        if hasattr(module, name):
            init_args[name] = getattr(module, name)
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


def same_class(a: object, b: object) -> bool:
    """Whether two ``class_path`` strings name one class: ``mann_lightning.memory.LRUAMemory``
    and ``mann_lightning.memory.lrua.LRUAMemory`` do (a checkpoint saved from Python records
    the defining module, a config the public one)."""
    if a == b:
        return True
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    try:
        return import_class(a) is import_class(b)
    except (ValueError, ImportError, AttributeError):
        return False


def import_class(path: str) -> Any:
    """The object ``package.module.Name`` names (``ImportError``/``AttributeError`` if none)."""
    module_name, _, class_name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def from_spec(spec: dict[str, Any], base: type[nn.Module]) -> nn.Module:
    """Instantiate a ``class_path``/``init_args`` spec, checking it is a ``base``."""
    if isinstance(spec, dict) and "class_path" not in spec:
        raise ValueError(_missing_class_path(spec, base))
    try:
        cls = import_class(spec["class_path"])
    except (KeyError, ValueError, ImportError, AttributeError) as error:
        raise ValueError(
            f"Cannot build a {base.__name__} from {spec!r}: expected "
            "{'class_path': 'package.module.Class', 'init_args': {...}} naming an importable class."
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"{spec['class_path']} is not a {base.__name__} subclass.")
    init_args = spec.get("init_args") or {}
    if not isinstance(init_args, dict):
        raise ValueError(f"{spec['class_path']}: init_args must be a mapping, got {init_args!r}.")
    parameters = inspect.signature(cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        told = unknown_keys(init_args, [name for name in parameters if name != "self"])
        if told:  # a YAML typo reaches here with its class_path, as a bare TypeError
            raise ValueError(
                f"{spec['class_path']} takes no {', '.join(told)}; check the spelling of the "
                "init_args keys (a key of another class left behind when class_path changed?)."
            )
    return cls(**init_args)


def _missing_class_path(spec: dict[str, Any], base: type[nn.Module]) -> str:
    """Why a spec without ``class_path`` arrives, and how to fix it.

    On the command line this is almost always a value that does not fit its type, e.g.
    ``--model.init_args.memory.init_args.memory_size abc``: jsonargparse then cannot build
    the class from the config and hands over the overriding values alone.
    """
    args = spec.get("init_args", spec)
    suspects = (
        [f"{k}={v!r}" for k, v in args.items() if isinstance(v, str)]
        if isinstance(args, dict)
        else []
    )
    hint = f" (text values here: {', '.join(suspects)})" if suspects else ""
    unknown = _unknown_arguments(args, base) if isinstance(args, dict) else ""
    if unknown:
        return (
            f"Cannot build a {base.__name__} from {spec!r}: {unknown}. Check the spelling of "
            "the init_args keys."
        )
    return (
        f"Cannot build a {base.__name__} from {spec!r}: it names no class_path. From the command "
        "line this means a value given for its init_args does not fit that argument's type"
        f"{hint}: sizes are integers, rates and biases numbers. Fix the value, or give the whole "
        "spec: {'class_path': 'package.module.Class', 'init_args': {...}}."
    )


def _unknown_arguments(args: dict[str, Any], base: type[nn.Module]) -> str:
    """``"no Memory takes 'memory_sise' (did you mean 'memory_size'?)"`` for keys that no
    loaded subclass of ``base`` accepts, else ``""`` (a misspelled key on the command line
    also reaches :func:`from_spec` without its class_path)."""
    known: set[str] = set()
    pending = [base]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        known.update(inspect.signature(cls.__init__).parameters)
    told = unknown_keys(args, known)
    return f"no {base.__name__} takes {', '.join(told)}" if told else ""


def unknown_keys(keys: Iterable[str], accepted: Iterable[str]) -> list[str]:
    """Each of ``keys`` not ``accepted``, quoted, with the closest accepted spelling:
    ``["'num_clases' (did you mean 'num_classes'?)"]``."""
    accepted = sorted(accepted)
    told = []
    for key in keys:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            told.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return told
