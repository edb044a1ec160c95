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

from .compilation import CompileMode, check_compile_mode, compiled
from .controller import Controller, make_controller
from .deferred_weight_grad import tap
from .memory import Memory, make_memory
from .model_checks import check_call, check_inputs


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
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < low
            ):
                raise ValueError(f"MANN: {name} must be an integer >= {low}, got {value!r}.")
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
        check_call(self, inputs, state)
        if self.compile_mode == "episode" and torch.is_grad_enabled():
            if _defers_weight_grad(self.controller):
                return _deferred_episode(self, inputs, prev_labels, state)
            return compiled(self, "episode", _episode)(self, inputs, prev_labels, state)
        return _episode(self, inputs, prev_labels, state)

    def trace(
        self, inputs: Tensor, prev_labels: Tensor, state: MANNState | None = None
    ) -> tuple[Tensor, list[Any]]:
        """Like :meth:`forward`, also returning the memory state after every step."""
        check_call(self, inputs, state)
        logits, _, states = self._unroll(inputs, prev_labels, state, keep_memory_states=True)
        return logits, states

    def _unroll(
        self,
        inputs: Tensor,
        prev_labels: Tensor,
        state: MANNState | None,
        keep_memory_states: bool,
    ) -> tuple[Tensor, MANNState, list[Any]]:
        projected, state = _projected(self, inputs, prev_labels, state)
        step = _time_step
        if self.compile_mode == "step" and torch.is_grad_enabled():
            step = compiled(self, "step", _time_step)
        logits, state, memory_states, _ = _loop(self, projected, state, step, keep_memory_states)
        return logits, state, memory_states


def _projected(
    model: MANN, inputs: Tensor, prev_labels: Tensor, state: MANNState | None
) -> tuple[Tensor, MANNState]:
    """Checked inputs' projection of all steps ``[batch, time, gates]`` and the start state
    (fresh if None)."""
    check_inputs(model, inputs, prev_labels)
    if state is None:
        state = model.initial_state(inputs.shape[0], inputs.device, inputs.dtype)
    return model.controller.project_inputs(torch.cat([inputs, prev_labels], dim=-1)), state


def _loop(
    model: MANN,
    projected: Tensor,
    state: MANNState,
    step: Callable[..., Any],
    keep_memory_states: bool = False,
    weight: Tensor | None = None,
) -> tuple[Tensor, MANNState, list[Any], list[Tensor]]:
    """The time loop over ``projected`` ``[batch, time, gates]``: ``(logits, final state,
    memory states if kept, u_t of every step if ``weight`` is given)``."""
    controller_state, memory_state, reads = state
    hidden, all_reads, memory_states, recurrent_inputs = [], [], [], []
    for projected_t in projected.unbind(1):
        h, reads, controller_state, memory_state, recurrent = step(
            model, projected_t, reads, controller_state, memory_state, weight
        )
        if keep_memory_states and model.memory is not None:
            memory_states.append(memory_state)
        if recurrent is not None:
            recurrent_inputs.append(recurrent)
        hidden.append(h)
        all_reads.append(reads)
    features = torch.stack(hidden, 1)
    if model.memory is not None:
        features = torch.cat([features, torch.stack(all_reads, 1).to(features.dtype)], -1)
    logits = model.output(features)
    return logits, MANNState(controller_state, memory_state, reads), memory_states, recurrent_inputs


def _time_step(
    model: MANN,
    projected_t: Tensor,
    reads: Tensor,
    controller_state: Any,
    memory_state: Any,
    weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Any, Any, Tensor | None]:
    """One step: ``h_t`` from the controller, then ``r_t`` (flattened) from the memory.

    With ``weight`` (``W_r`` detached, :mod:`~mann_lightning.deferred_weight_grad`) the
    controller's pre-activation uses it and the step also returns its ``u_t``; else None.
    """
    controller, recurrent = model.controller, None
    if weight is None:
        h, controller_state = controller.step(projected_t, reads, controller_state)
    else:
        recurrent = controller.recurrent_input(reads, controller_state)
        gates = torch.addmm(projected_t, recurrent, weight.t())
        h, controller_state = controller.activate(gates, controller_state)
    if model.memory is not None:
        r, memory_state = model.memory(h, memory_state)
        reads = r.flatten(1)
    return h, reads, controller_state, memory_state, recurrent


def _episode(
    model: MANN, inputs: Tensor, prev_labels: Tensor, state: MANNState | None
) -> tuple[Tensor, MANNState]:
    """The unrolled episode: ``(logits, final_state)``."""
    logits, state, _ = model._unroll(inputs, prev_labels, state, keep_memory_states=False)
    return logits, state


def _defers_weight_grad(controller: Controller) -> bool:
    """Whether training can take :mod:`~mann_lightning.deferred_weight_grad`: a controller
    stepping through ``recurrent_input``/``activate`` with a recurrent weight to train, on
    a CPU (a GPU's compiled episode is a CUDA graph whose outputs, ``u`` among them, are
    overwritten by the next replay; unmeasured there, so left per step)."""
    return (
        type(controller).step is Controller.step
        and controller.recurrent_weight.device.type == "cpu"
        and controller.recurrent_size > 0
        and controller.recurrent_weight.requires_grad
    )


def _deferred_episode(
    model: MANN, inputs: Tensor, prev_labels: Tensor, state: MANNState | None
) -> tuple[Tensor, MANNState]:
    """The compiled episode with the recurrent weight's gradient formed once, after the
    loop (:mod:`~mann_lightning.deferred_weight_grad`): the input projection and its tap
    run eagerly, the loop compiled."""
    projected, state = _projected(model, inputs, prev_labels, state)
    projected, slot = tap(projected, model.controller.recurrent_weight)
    logits, state, recurrent = compiled(model, "episode", _deferred_loop)(model, projected, state)
    slot.record(recurrent)
    return logits, state


def _deferred_loop(
    model: MANN, projected: Tensor, state: MANNState
) -> tuple[Tensor, MANNState, Tensor]:
    """``(logits, final state, u [batch, time, recurrent_size])`` of the loop with ``W_r``
    detached."""
    weight = model.controller.recurrent_weight.detach()
    logits, state, _, recurrent = _loop(model, projected, state, _time_step, False, weight)
    return logits, state, torch.stack(recurrent, 1)
