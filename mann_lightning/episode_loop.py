"""The unrolled episode of a :class:`~mann_lightning.model.MANN`: the input projection of all
steps, the time loop (controller step, then memory step) and the output layer after it, and
the compiled episode that forms the recurrent weight's gradient once
(:mod:`~mann_lightning.deferred_weight_grad`).

Functions of the model rather than methods, so that ``torch.compile`` traces one function
per mode (:func:`~mann_lightning.compilation.compiled`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .compilation import compiled
from .controller import Controller
from .deferred_weight_grad import tap
from .model_checks import check_inputs

if TYPE_CHECKING:
    from .model import MANN, MANNState


def compiled_episode(
    model: MANN, inputs: Tensor, prev_labels: Tensor, state: MANNState | None
) -> tuple[Tensor, MANNState]:
    """The training episode under ``compile="episode"``: compiled whole, with the recurrent
    weight's gradient formed once where :func:`defers_weight_grad` allows."""
    if defers_weight_grad(model.controller):
        return deferred_episode(model, inputs, prev_labels, state)
    return compiled(model, "episode", episode)(model, inputs, prev_labels, state)


def episode(
    model: MANN, inputs: Tensor, prev_labels: Tensor, state: MANNState | None
) -> tuple[Tensor, MANNState]:
    """The unrolled episode: ``(logits, final_state)``."""
    logits, state, _ = unroll(model, inputs, prev_labels, state, keep_memory_states=False)
    return logits, state


def unroll(
    model: MANN,
    inputs: Tensor,
    prev_labels: Tensor,
    state: MANNState | None,
    keep_memory_states: bool,
) -> tuple[Tensor, MANNState, list[Any]]:
    """``(logits, final state, memory states if kept)``; each time step compiled under
    ``compile="step"`` in training."""
    projected, state = projected_inputs(model, inputs, prev_labels, state)
    step = time_step
    if model.compile_mode == "step" and torch.is_grad_enabled():
        step = compiled(model, "step", time_step)
    logits, state, memory_states, _ = unroll_loop(model, projected, state, step, keep_memory_states)
    return logits, state, memory_states


def projected_inputs(
    model: MANN, inputs: Tensor, prev_labels: Tensor, state: MANNState | None
) -> tuple[Tensor, MANNState]:
    """Checked inputs' projection of all steps ``[batch, time, gates]`` and the start state
    (fresh if None)."""
    check_inputs(model, inputs, prev_labels)
    if state is None:
        state = model.initial_state(inputs.shape[0], inputs.device, inputs.dtype)
    return model.controller.project_inputs(torch.cat([inputs, prev_labels], dim=-1)), state


def unroll_loop(
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
    return (
        logits,
        state._replace(controller=controller_state, memory=memory_state, reads=reads),
        memory_states,
        recurrent_inputs,
    )


def time_step(
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


def defers_weight_grad(controller: Controller) -> bool:
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


def deferred_episode(
    model: MANN, inputs: Tensor, prev_labels: Tensor, state: MANNState | None
) -> tuple[Tensor, MANNState]:
    """The compiled episode with the recurrent weight's gradient formed once, after the
    loop (:mod:`~mann_lightning.deferred_weight_grad`): the input projection and its tap
    run eagerly, the loop compiled."""
    projected, state = projected_inputs(model, inputs, prev_labels, state)
    projected, slot = tap(projected, model.controller.recurrent_weight)
    logits, state, recurrent = compiled(model, "episode", deferred_loop)(model, projected, state)
    slot.record(recurrent)
    return logits, state


def deferred_loop(
    model: MANN, projected: Tensor, state: MANNState
) -> tuple[Tensor, MANNState, Tensor]:
    """``(logits, final state, u [batch, time, recurrent_size])`` of the loop with ``W_r``
    detached."""
    weight = model.controller.recurrent_weight.detach()
    logits, state, _, recurrent = unroll_loop(model, projected, state, time_step, False, weight)
    return logits, state, torch.stack(recurrent, 1)
