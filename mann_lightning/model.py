"""The memory-augmented neural network (MANN) of Santoro et al. 2016.

At step ``t`` the controller reads ``x_t ++ y_{t-1}`` and the previous reads ``r_{t-1}``
and emits ``h_t``; the memory turns ``h_t`` into its parameters, updates and reads
``r_t``; the output is ``W_o [h_t ++ r_t] + b_o``. With ``memory=None`` the same class
is the plain LSTM or feed-forward baseline of the paper's Table 1 (output from ``h_t``).

Everything that does not depend on the recurrence is hoisted out of the time loop: the
input projection of all steps is one matmul before the loop and the output layer one
matmul after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from . import episode_loop
from .compilation import CompileMode, check_compile_mode
from .controller import Controller, make_controller
from .memory import Memory, make_memory
from .memory.base import resolve_device_dtype
from .model_checks import check_call
from .value_checks import require_int


class MANNState(NamedTuple):
    """Full recurrent state of a :class:`MANN` after a step.

    Attributes:
        controller: The controller's state (e.g. ``LSTMState``).
        memory: The memory's state (e.g. ``LRUAState``), or ``None`` without memory.
        reads: Flattened reads ``r_t``, ``[batch, num_reads * word_size]`` (width 0
            without memory).
    """

    controller: Any
    memory: Any
    reads: Tensor


def map_state(state: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """``state`` (tensors in tuples and NamedTuples, nested) with ``fn`` applied to every tensor."""
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, tuple):
        values = [map_state(v, fn) for v in state]
        return type(state)(*values) if hasattr(state, "_fields") else tuple(values)
    return state


def detach_state(state: Any) -> Any:
    """Detach every tensor of a (nested) state, e.g. to carry memory across episodes."""
    return map_state(state, Tensor.detach)


class MANN(nn.Module):
    """Controller + optional external memory, unrolled over an episode.

    Args:
        input_size: Features of ``x_t`` (e.g. 400 for 20x20 images).
        num_outputs: Output features per step (e.g. ``N`` classes, or 25 for five-character
            string labels).
        controller: A :class:`~mann_lightning.controller.Controller`, or ``"lstm"`` /
            ``"feedforward"``.
        memory: An external memory (``LRUAMemory``, ``NTMMemory``, ...), its name
            (``"lrua"``, ``"ntm"``, with paper defaults) or ``None``.
        label_size: Features of the previous-label encoding ``y_{t-1}``; defaults to
            ``num_outputs``.
        controller_size: Hidden units when ``controller`` is given by name.
        compile: ``"none"`` (eager), ``"step"`` or ``"episode"``: ``torch.compile`` one time
            step or the whole unrolled episode for training (gradient-enabled) calls; see
            :mod:`mann_lightning.compilation`. Eager where no compiler is available.
    """

    def __init__(
        self,
        input_size: int,
        num_outputs: int,
        controller: Controller | str = "lstm",
        memory: Memory | str | None = None,
        label_size: int | None = None,
        controller_size: int = 200,
        compile: CompileMode = "none",
    ) -> None:
        super().__init__()
        for name, value, low in (("input_size", input_size, 1), ("num_outputs", num_outputs, 1),
                                 ("label_size", label_size, 0),
                                 ("controller_size", controller_size, 1)):  # fmt: skip
            if value is not None:
                require_int("MANN", name, value, low)
        self.compile_mode = check_compile_mode(compile)
        self.input_size = input_size
        self.num_outputs = num_outputs
        self.label_size = num_outputs if label_size is None else label_size
        self.controller = make_controller(controller, controller_size)
        self.memory = memory = make_memory(memory)
        self.read_size = memory.read_size if memory is not None else 0
        self.controller.build(input_size + self.label_size, self.read_size)
        if memory is not None:
            memory.build(self.controller.output_size)
        self.output = nn.Linear(self.controller.output_size + self.read_size, num_outputs)

    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> MANNState:
        """The state before an episode's first step, on the weights' device and of their
        float type unless ``device`` or ``dtype`` says otherwise."""
        weights = self.output.weight
        resolve_device_dtype(device, dtype, batch_size, "MANN.initial_state")  # the checks
        device = weights.device if device is None else device
        dtype = weights.dtype if dtype is None else dtype
        memory = None
        if self.memory is not None:
            memory = self.memory.initial_state(batch_size, device, dtype)
        return MANNState(
            controller=self.controller.initial_state(batch_size, device, dtype),
            memory=memory,
            reads=torch.zeros(batch_size, self.read_size, device=device, dtype=dtype),
        )

    def forward(
        self, inputs: Tensor, prev_labels: Tensor, state: MANNState | None = None
    ) -> tuple[Tensor, MANNState]:
        """Unroll over the episode.

        Args:
            inputs: ``x_t`` for all steps, ``[batch, time, input_size]``.
            prev_labels: Encoded ``y_{t-1}``, ``[batch, time, label_size]`` (zero at t=0).
            state: Initial state (e.g. carried from the previous episode); fresh if None.

        Returns:
            ``(logits [batch, time, num_outputs], final_state)``.
        """
        check_call(self, inputs, state, prev_labels)
        if self.compile_mode == "episode" and torch.is_grad_enabled():
            return episode_loop.compiled_episode(self, inputs, prev_labels, state)
        return episode_loop.episode(self, inputs, prev_labels, state)

    def trace(
        self, inputs: Tensor, prev_labels: Tensor, state: MANNState | None = None
    ) -> tuple[Tensor, list[Any]]:
        """Like :meth:`forward`, also returning the memory state after every step."""
        check_call(self, inputs, state, prev_labels)
        logits, _, states = episode_loop.unroll(self, inputs, prev_labels, state, True)
        return logits, states
