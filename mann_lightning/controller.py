"""Controllers: an LSTM and a feed-forward network.

A controller sees, at step ``t``, the step input ``x_t ++ y_{t-1}`` and the flattened reads
``r_{t-1}`` of the previous step, and emits ``h_t``. The input part of its first layer
does not depend on the recurrence, so :meth:`Controller.project_inputs` applies it to all
steps at once (one matmul); :meth:`Controller.step` adds only the recurrent part.

As with memories, the input sizes are known only inside a model, which calls
:meth:`Controller.build`; a controller is configured by its own sizes alone.
"""

from __future__ import annotations

import abc
import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .lstm_function import LSTMCellFunction
from .specs import from_spec
from .value_checks import is_positive_int


class LSTMState(NamedTuple):
    """LSTM controller state: ``hidden`` ``h_t`` and ``cell`` ``c_t``, both ``[batch, units]``."""

    hidden: Tensor
    cell: Tensor


class FeedForwardState(NamedTuple):
    """A feed-forward controller keeps no state."""


class Controller(nn.Module, abc.ABC):
    """Base controller with ``hidden_size`` output features.

    Args:
        hidden_size: Output features ``h_t`` (paper: 200 LSTM units).
    """

    def __init__(self, hidden_size: int = 200) -> None:
        super().__init__()
        if not is_positive_int(hidden_size):
            raise ValueError(
                f"{type(self).__name__}: hidden_size must be a positive integer, got {hidden_size!r}."
            )
        self.hidden_size = hidden_size
        self.input_size: int | None = None
        self.read_size: int | None = None

    @property
    def output_size(self) -> int:
        """Features of ``h_t``."""
        return self.hidden_size

    @property
    @abc.abstractmethod
    def gate_size(self) -> int:
        """Width of the pre-activation the input projection produces."""

    @property
    def recurrent_size(self) -> int:
        """Width of the recurrent input of :meth:`step` (reads, and ``h_{t-1}`` for an LSTM)."""
        assert self.read_size is not None
        return self.read_size

    def build(self, input_size: int, read_size: int) -> None:
        """Create the weights for step inputs of ``input_size`` and reads of ``read_size``.

        Raises:
            ValueError: if already built with other sizes.
        """
        if self.input_size is not None:
            if (input_size, read_size) != (self.input_size, self.read_size):
                raise ValueError(
                    f"{type(self).__name__} was built for inputs {self.input_size} / reads "
                    f"{self.read_size}, not {input_size} / {read_size}; create a new controller."
                )
            return
        self.input_size, self.read_size = input_size, read_size
        bound = 1.0 / math.sqrt(self.hidden_size)
        self.input_weight = nn.Parameter(
            torch.empty(self.gate_size, input_size).uniform_(-bound, bound)
        )
        self.recurrent_weight = nn.Parameter(
            torch.empty(self.gate_size, self.recurrent_size).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(self.initial_bias())

    def initial_bias(self) -> Tensor:
        """Bias of the pre-activations (zero by default)."""
        return torch.zeros(self.gate_size)

    def project_inputs(self, inputs: Tensor) -> Tensor:
        """Input part of the first layer for all steps: ``[batch, time, input] -> [batch, time, gates]``."""
        if self.input_size is None:
            raise RuntimeError(
                f"{type(self).__name__} has no weights yet: place it in a MANN or call build()."
            )
        return nn.functional.linear(inputs, self.input_weight, self.bias)

    def _recurrent(
        self, projected: Tensor, recurrent: Tensor, weight: Tensor | None = None
    ) -> Tensor:
        """``projected + recurrent W_r^T`` (``weight`` in place of ``W_r`` if given)."""
        if recurrent.shape[-1] == 0:
            return projected
        weight = self.recurrent_weight if weight is None else weight
        return torch.addmm(projected, recurrent, weight.t())

    @abc.abstractmethod
    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> NamedTuple:
        """State before the first step."""

    def step(
        self, projected: Tensor, reads: Tensor, prev_state: NamedTuple
    ) -> tuple[Tensor, NamedTuple]:
        """One step: the pre-activation ``projected + W_r u_t`` with ``u_t`` of
        :meth:`recurrent_input`, then :meth:`activate`. A subclass may override this
        instead of the two (it then trains without :mod:`~mann_lightning.deferred_weight_grad`).

        Args:
            projected: This step's slice of :meth:`project_inputs`, ``[batch, gates]``.
            reads: Flattened reads of the previous step ``r_{t-1}``, ``[batch, read_size]``.
            prev_state: Controller state after ``t-1``.

        Returns:
            ``(h_t [batch, hidden_size], state_t)``.
        """
        recurrent = self.recurrent_input(reads, prev_state)
        return self.activate(self._recurrent(projected, recurrent), prev_state)

    def recurrent_input(self, reads: Tensor, prev_state: NamedTuple) -> Tensor:
        """``u_t``, what the recurrent weight multiplies: ``[batch, recurrent_size]``."""
        raise NotImplementedError(
            f"{type(self).__name__} defines neither step nor recurrent_input."
        )

    def activate(self, gates: Tensor, prev_state: NamedTuple) -> tuple[Tensor, NamedTuple]:
        """``(h_t, state_t)`` from the pre-activation ``gates`` ``[batch, gate_size]``."""
        raise NotImplementedError(f"{type(self).__name__} defines neither step nor activate.")

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}"


class LSTMController(Controller):
    """LSTM controller (the paper's default, 200 units); forget-gate bias starts at 1."""

    @property
    def gate_size(self) -> int:
        return 4 * self.hidden_size

    @property
    def recurrent_size(self) -> int:
        return super().recurrent_size + self.hidden_size

    def initial_bias(self) -> Tensor:
        bias = torch.zeros(self.gate_size)
        bias[self.hidden_size : 2 * self.hidden_size] = (
            1.0  # gate order: input, forget, output, cell
        )
        return bias

    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> LSTMState:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return LSTMState(hidden=zeros, cell=zeros)

    def recurrent_input(self, reads: Tensor, prev_state: LSTMState) -> Tensor:
        return torch.cat([reads, prev_state.hidden.to(reads.dtype)], dim=-1)

    def activate(self, gates: Tensor, prev_state: LSTMState) -> tuple[Tensor, LSTMState]:
        cell = prev_state.cell
        dtype = torch.promote_types(gates.dtype, cell.dtype)  # keep c_t in full precision
        hidden, cell = LSTMCellFunction.apply(gates.to(dtype), cell.to(dtype))
        return hidden, LSTMState(hidden, cell)


class FeedForwardController(Controller):
    """One ReLU layer over ``x_t ++ y_{t-1} ++ r_{t-1}``; stateless."""

    @property
    def gate_size(self) -> int:
        return self.hidden_size

    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> FeedForwardState:
        return FeedForwardState()

    def recurrent_input(self, reads: Tensor, prev_state: FeedForwardState) -> Tensor:
        return reads

    def activate(
        self, gates: Tensor, prev_state: FeedForwardState
    ) -> tuple[Tensor, FeedForwardState]:
        return torch.relu(gates), prev_state


CONTROLLERS: dict[str, type[Controller]] = {
    "lstm": LSTMController,
    "feedforward": FeedForwardController,
}


def make_controller(controller: Controller | str | dict, hidden_size: int = 200) -> Controller:
    """A controller from an instance, a name in ``CONTROLLERS`` (with ``hidden_size``
    units), or a ``class_path``/``init_args`` spec."""
    if isinstance(controller, Controller):
        return controller
    if isinstance(controller, dict):
        return from_spec(controller, Controller)  # type: ignore[return-value]
    if controller in CONTROLLERS:
        return CONTROLLERS[controller](hidden_size)
    raise ValueError(
        f"Unknown controller {controller!r}: use one of {sorted(CONTROLLERS)} or a Controller "
        "instance / class_path (e.g. mann_lightning.controller.LSTMController)."
    )
