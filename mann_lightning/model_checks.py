"""Checks of what a :class:`~mann_lightning.model.MANN` is given, with messages that say
what to change: inputs (shapes, float type), and a carried state (its fields' shapes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor

from .memory.base import autocast_enabled

if TYPE_CHECKING:
    from .model import MANN, MANNState


def check_call(
    model: MANN, inputs: Tensor, state: MANNState | None, prev_labels: Tensor | None = None
) -> None:
    """What ``forward`` and ``trace`` check before the episode (outside a compiled graph):
    the inputs' and labels' float type and, when one is carried, the state."""
    check_dtype(model, inputs)
    if prev_labels is not None:
        check_dtype(model, prev_labels, "prev_labels")
    if state is not None:
        check_state(model, state, inputs)


def check_dtype(model: MANN, inputs: Tensor, name: str = "inputs") -> None:
    """Inputs (or ``name``) of another float type than the weights (autocast aside) fail
    deep in torch."""
    weights = model.output.weight.dtype
    if (
        inputs.is_floating_point()
        and inputs.dtype != weights
        and not autocast_enabled(inputs.device.type)
    ):
        raise ValueError(
            f"MANN's weights are {weights} but the {name} are {inputs.dtype}: convert the "
            f"{name} ({name}.to({weights})) or the model (model.to({inputs.dtype}))."
        )


def check_state(model: MANN, state: MANNState, inputs: Tensor) -> None:
    """A ``ValueError`` naming the first field of ``state`` that does not fit this model."""
    from .model import MANNState  # at call time: model.py imports this module

    fresh_state = model.initial_state(inputs.shape[0], device="meta", dtype=inputs.dtype)
    expected = _fields(fresh_state, "state")
    given = _fields(state, "state") if isinstance(state, MANNState) else []
    if [name for name, _ in given] != [name for name, _ in expected]:
        raise ValueError(
            f"MANN: state is not a state of this model (fields {[n for n, _ in given]}, "
            f"expected {[n for n, _ in expected]}); pass state=None for a fresh episode."
        )
    # under autocast a carried state may hold lower-precision fields
    check_dtype_too = not autocast_enabled(inputs.device.type)
    for (name, tensor), (_, fresh) in zip(given, expected, strict=True):
        if tensor.shape != fresh.shape or tensor.device != inputs.device:
            raise ValueError(
                f"MANN: {name} is {list(tensor.shape)} on {tensor.device}; this model with "
                f"batch {inputs.shape[0]} on {inputs.device} needs {list(fresh.shape)}. "
                "Carry a state only between episodes of the same model and batch size "
                "(state=None starts afresh)."
            )
        if check_dtype_too and fresh.is_floating_point() and tensor.dtype != fresh.dtype:
            raise ValueError(
                f"MANN: {name} is {tensor.dtype}, but the inputs are {inputs.dtype}: a state "
                f"carried into this call must be {fresh.dtype} too. Make it with "
                "model.initial_state(batch, device, dtype=inputs.dtype), or pass state=None."
            )


def check_inputs(model: MANN, inputs: Tensor, prev_labels: Tensor) -> None:
    """Shapes, float type and agreement of ``inputs`` and ``prev_labels`` (see ``MANN.forward``)."""
    if inputs.dim() != 3 or prev_labels.dim() != 3:
        raise ValueError(
            "MANN expects inputs [batch, time, input_size] and prev_labels "
            f"[batch, time, label_size]; got {tuple(inputs.shape)} and {tuple(prev_labels.shape)}."
        )
    if inputs.shape[-1] != model.input_size or prev_labels.shape[-1] != model.label_size:
        raise ValueError(
            f"MANN was built for input_size={model.input_size}, label_size={model.label_size}; "
            f"got inputs with {inputs.shape[-1]} and prev_labels with {prev_labels.shape[-1]} "
            "features. Check the image size, classes per episode and label encoding."
        )
    if inputs.shape[1] == 0:
        raise ValueError(
            f"MANN: an episode needs at least one time step; got inputs {tuple(inputs.shape)}."
        )
    if not (inputs.is_floating_point() and prev_labels.is_floating_point()):
        raise ValueError(
            f"MANN expects floating-point inputs and prev_labels; got {inputs.dtype} and "
            f"{prev_labels.dtype} (convert with .float(); labels are one-hot or string codes)."
        )
    if inputs.shape[:2] != prev_labels.shape[:2]:
        raise ValueError(
            f"inputs {tuple(inputs.shape)} and prev_labels {tuple(prev_labels.shape)} "
            "disagree on [batch, time]."
        )


def _fields(state: Any, path: str) -> list[tuple[str, Tensor]]:
    """``(dotted name, tensor)`` of every tensor in a (nested) state, in order."""
    if isinstance(state, Tensor):
        return [(path, state)]
    if isinstance(state, tuple):
        names = getattr(state, "_fields", range(len(state)))
        return [f for n, v in zip(names, state, strict=True) for f in _fields(v, f"{path}.{n}")]
    return []
