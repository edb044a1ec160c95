"""A hand-written backward that refuses to be differentiated again.

The LRUA steps (fused kernel, op-by-op :class:`~mann_lightning.memory.lrua_function.LRUAStepFunction`,
sparse) and the NTM's fused kernel compute their gradients by hand, as first derivatives
only. Differentiating those gradients again (``torch.autograd.grad(..., create_graph=True)``,
then a second ``grad``) would silently treat what the hand-written backward read from the
forward as constants, a wrong answer; ``torch.autograd.function.once_differentiable`` only
raises when the incoming gradients themselves need a graph. :func:`first_order_only` raises
as soon as a backward runs with ``create_graph=True`` (autograd runs a backward with grad mode
on exactly then).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch


def first_order_only(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate an ``autograd.Function.backward``: an error under ``create_graph=True``.

    Args:
        what: The step, named in the error (``"the fused LRUA kernel"``).
    """

    def decorate(backward: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(backward)
        def wrapper(ctx: Any, *grads: Any) -> Any:
            if torch.is_grad_enabled():
                raise RuntimeError(
                    f"A second derivative (create_graph=True) through {what} is not supported: "
                    "its backward is written by hand, as a first derivative only. Use a "
                    "first-order method (e.g. first-order MAML), or call torch.autograd.grad "
                    "without create_graph."
                )
            return backward(ctx, *grads)

        return wrapper

    return decorate
