"""The interface every external memory implements.

A memory is an ``nn.Module`` that owns exactly one learnable piece, the linear layer
(the *interface layer*) that maps the controller output ``h_t`` to the memory's own
per-step parameters (keys, gates, ...). Everything recurrent lives in a ``NamedTuple``
of tensors that is passed in and returned, never stored on ``self``::

    reads, next_state = memory(controller_output, prev_state)

so states can be detached, carried across episodes, checkpointed and compiled.

The controller's output size is known only once the memory is placed inside a model,
so the interface layer is created by :meth:`Memory.build`, which
:class:`~mann_lightning.model.MANN` calls. This lets a memory be configured on its own
(for example from a ``class_path`` in a YAML file) without repeating controller sizes.
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..value_checks import is_number, is_positive_int


class Memory(nn.Module, abc.ABC):
    """Abstract external memory with ``num_reads`` read heads over ``memory_size`` slots.

    Attributes:
        compiles_well: Whether ``torch.compile`` of the unrolled episode speeds this memory
            up (``compile="auto"`` compiles only such memories; a memory that reads values
            on the host or updates tensors in place sets it False).

    Args:
        memory_size: Number of memory slots ``N`` (rows of ``M_t``).
        word_size: Width ``W`` of each slot (columns of ``M_t``).
        num_reads: Number of read heads ``H``; each head reads one vector per step.
        input_size: Size of the controller output feeding the interface layer. Usually
            left ``None`` and filled in by the model through :meth:`build`.
    """

    compiles_well: bool = True

    def __init__(
        self,
        memory_size: int,
        word_size: int,
        num_reads: int,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        check_sizes(type(self).__name__, memory_size, word_size, num_reads)
        self.memory_size = memory_size
        self.word_size = word_size
        self.num_reads = num_reads
        self.input_size: int | None = None
        self.interface: nn.Linear | None = None
        if input_size is not None:
            self.build(input_size)

    # ------------------------------------------------------------------ sizes
    @property
    def read_size(self) -> int:
        """Features the reads add per step once flattened: ``num_reads * word_size``."""
        return self.num_reads * self.word_size

    @property
    @abc.abstractmethod
    def interface_size(self) -> int:
        """Number of per-step memory parameters (keys, gates, ...) the interface layer emits."""

    # ------------------------------------------------------------------ construction
    def build(self, input_size: int) -> None:
        """Create the interface layer for a controller output of ``input_size`` features.

        Idempotent for the same size; a different size is an error, since the layer's
        weights would silently be thrown away.

        Raises:
            ValueError: if the memory was already built for another controller size.
        """
        if not is_positive_int(input_size):
            raise ValueError(
                f"{type(self).__name__}: input_size (the controller's output features) must be "
                f"a positive integer, got {input_size!r}."
            )
        if self.interface is not None:
            if input_size != self.input_size:
                raise ValueError(
                    f"{type(self).__name__} was built for a controller output of "
                    f"{self.input_size} features and cannot be reused with {input_size}; "
                    "create a new memory for this model."
                )
            return
        self.input_size = input_size
        self.interface = nn.Linear(input_size, self.interface_size)
        self.reset_interface_parameters()

    def reset_interface_parameters(self) -> None:
        """Initialise the interface layer (override for memory-specific biases)."""

    def _interface(self, controller_output: Tensor) -> Tensor:
        if self.interface is None:
            raise RuntimeError(
                f"{type(self).__name__} has no interface layer yet: call "
                "memory.build(controller_output_size) or place it in a MANN first."
            )
        if controller_output.dim() != 2 or controller_output.shape[1] != self.interface.in_features:
            raise ValueError(
                f"{type(self).__name__}: h_t must be [batch, {self.interface.in_features}] "
                f"(the controller's output size it was built for), got "
                f"{list(controller_output.shape)}."
            )
        return self.interface(controller_output)

    def before_compile(self, device: torch.device) -> None:
        """Prepare what a graph traced by ``torch.compile`` on ``device`` needs but cannot
        build while being traced (a C++ kernel); nothing here."""

    # ------------------------------------------------------------------ recurrence
    @abc.abstractmethod
    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> NamedTuple:
        """The state before the first step of an episode, for ``batch_size`` episodes."""

    @abc.abstractmethod
    def forward(self, controller_output: Tensor, prev_state: Any) -> tuple[Tensor, Any]:
        """One time step.

        Args:
            controller_output: ``h_t``, ``[batch, input_size]``.
            prev_state: The memory state after step ``t-1``.

        Returns:
            ``(reads, next_state)`` with ``reads`` of shape ``[batch, num_reads, word_size]``.
        """

    def extra_repr(self) -> str:
        return (
            f"memory_size={self.memory_size}, word_size={self.word_size}, "
            f"num_reads={self.num_reads}"
        )


def check_sizes(owner: str, memory_size: object, word_size: object, num_reads: object) -> None:
    """A clear ``ValueError`` unless the three sizes are positive integers.

    Subclasses call it before their own checks, so that e.g. a negative ``memory_size``
    is named as such rather than through a comparison with ``num_reads``.
    """
    for name, value in (
        ("memory_size", memory_size),
        ("word_size", word_size),
        ("num_reads", num_reads),
    ):
        if not is_positive_int(value):
            raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}.")


def check_gamma(owner: str, gamma: object) -> float:
    """The usage decay ``gamma`` of eq. 5 if it lies in ``(0, 1]``, else a clear ``ValueError``."""
    if not (is_number(gamma) and 0 < gamma <= 1):
        raise ValueError(f"{owner}: gamma must lie in (0, 1], got {gamma!r}.")
    return float(gamma)


def check_eps(owner: str, eps: float) -> float:
    """``eps`` of eq. 2 if it is a positive finite number, else a clear ``ValueError`` (zero
    makes a zero memory's similarity 0/0, a negative value can divide by zero)."""
    if not (is_number(eps) and 0 < eps < float("inf")):
        raise ValueError(f"{owner}: eps must be a positive finite number, got {eps!r}.")
    return float(eps)


def check_step_shapes(owner: str, shapes: dict[str, tuple[Tensor, tuple[int, ...]]]) -> None:
    """One ``ValueError`` naming every ``name: (tensor, expected shape)`` that differs: off the
    fused kernels a wrong shape in a public ``step`` can broadcast silently (an ``alpha`` of
    ``[batch]`` when the heads number the batch). Shapes only: no host synchronisation."""
    wrong = [
        f"{name} {list(tensor.shape)}, expected {list(want)}"
        for name, (tensor, want) in shapes.items()
        if tuple(tensor.shape) != tuple(want)
    ]
    if wrong:
        raise ValueError(
            f"{owner}.step: " + "; ".join(wrong) + " (batch from the keys; heads, slots and "
            "word from this memory's sizes: pass its own interface outputs and state)."
        )


def cosine_similarity(keys: Tensor, memory: Tensor, eps: float = 1e-6) -> Tensor:
    """Cosine similarity of every key with every memory row (paper eq. 2).

    ``K(k, M(i)) = k . M(i) / (||k|| ||M(i)|| + eps)``: ``eps`` keeps a zero memory (or
    key) at similarity 0 with finite gradients (the norm's gradient at 0 is taken as 0).

    Args:
        keys: ``k_t``, ``[batch, heads, word]``.
        memory: ``M_t``, ``[batch, slots, word]``.
        eps: Added to the product of the norms.

    Returns:
        ``K``, ``[batch, heads, slots]``.
    """
    dots = torch.bmm(keys, memory.transpose(1, 2))
    key_norm = torch.linalg.vector_norm(keys, dim=-1, keepdim=True)  # [B, H, 1]
    memory_norm = torch.linalg.vector_norm(memory, dim=-1).unsqueeze(1)  # [B, 1, N]
    return dots / (key_norm * memory_norm + eps)


def resolve_device_dtype(
    device: torch.device | str | None,
    dtype: torch.dtype | None,
    batch_size: object = 0,
    owner: object = "initial_state",
) -> tuple[torch.device, torch.dtype]:
    """Defaults for ``initial_state`` (CPU, the default float type); a ``ValueError`` naming
    ``owner`` for a batch size that is not an integer >= 0 or a non-floating dtype."""
    counts = isinstance(batch_size, int | torch.SymInt) and not isinstance(batch_size, bool)
    if not counts or batch_size < 0:  # type: ignore[operator]
        raise ValueError(f"{owner}: batch_size must be an integer >= 0, got {batch_size!r}.")
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"{owner}: dtype must be a floating type, got {dtype}.")
    return torch.device(device or "cpu"), dtype or torch.get_default_dtype()


#: ``torch.amp.is_autocast_available`` (torch >= 2.4.1); older: every device type.
_autocast_available = getattr(torch.amp, "is_autocast_available", lambda _: True)


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type``; ``False`` where autocast does not exist
    (``"meta"``, on which ``torch.is_autocast_enabled`` raises)."""
    return _autocast_available(device_type) and torch.is_autocast_enabled(device_type)


def autocast_off(device_type: str) -> AbstractContextManager[Any]:
    """Autocast disabled for a memory step that keeps its own precision; nothing to do when
    it is off."""
    if autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return nullcontext()
