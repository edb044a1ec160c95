"""``class_path``/``init_args`` specs: how configs and checkpoints name a module.

A *spec* is the dict a ``LightningCLI`` config uses, ``{"class_path": "pkg.Class",
"init_args": {...}}``. Checkpoints store memories and controllers as specs so that a
checkpoint alone rebuilds the model.
"""

from __future__ import annotations

import importlib
import inspect
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


def from_spec(spec: dict[str, Any], base: type[nn.Module]) -> nn.Module:
    """Instantiate a ``class_path``/``init_args`` spec, checking it is a ``base``."""
    try:
        module_name, _, class_name = spec["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
    except (KeyError, ValueError, ImportError, AttributeError) as error:
        raise ValueError(
            f"Cannot build a {base.__name__} from {spec!r}: expected "
            "{'class_path': 'package.module.Class', 'init_args': {...}} naming an importable class."
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"{spec['class_path']} is not a {base.__name__} subclass.")
    return cls(**spec.get("init_args", {}))
