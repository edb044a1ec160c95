"""What the external memory did over an episode: three statistics per episode (torch only).

Inputs are the per-step memory states of :meth:`~mann_lightning.model.MANN.trace` (one
``LRUAState`` or ``NTMState`` after each step ``t = 0..T-1``) and the class shown at each step,
``class_ids [batch, T]`` (the episode's labels serve: one label per class within an episode;
for five-character string targets ``[batch, T, 5]`` use :func:`class_ids_of`). Write weights
``w^w_t`` (Santoro et al. 2016 eq. 7; NTM eqs. 3-4 for the NTM-style memory) are summed over
the write heads, giving ``w_t(s)`` for slot ``s``. With ``theta = 0.5`` (``threshold``):

* **slots written**: the share of slots with ``sum_t w_t(s) >= theta``: how much of the
  memory an episode uses.
* **binding overwrites**: a *write* is a pair ``(t, s)`` with ``w_t(s) >= theta``; it stores
  the class of step ``t - lag`` (``lag=0``: the image of step ``t``; ``lag=1``: the label that
  arrives at ``t``, shown one step late; none when ``t - lag < 0``), and the slot's *owner* is
  the class of its latest earlier write. The statistic is the share of writes whose slot has an
  owner that is a different class from the one written and is shown again at a step ``>= t``
  (in both memories a step writes before it reads, so a binding overwritten at ``t`` is lost
  for the read at ``t`` too): a binding that is still needed is destroyed. Slots written
  before the episode (carried memory) have no owner. NaN for an episode with no write.
* **usage entropy**: ``H = -sum_s p(s) log p(s)`` (nats, ``0 log 0 = 0``) of the final usage
  ``w^u_T`` (eq. 5) normalised to ``p = w^u_T / sum_s w^u_T(s)``; at most ``log(slots)``
  (usage spread evenly), 0 when one slot holds all usage. NaN for a memory without usage
  (NTM-style) or with zero usage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor


class MemoryStatistics(NamedTuple):
    """Per-episode statistics, each ``[batch]`` float (see the module docstring).

    Attributes:
        slots_written: Share of slots whose summed write weight reaches the threshold.
        binding_overwrites: Share of writes that destroy a binding still needed.
        usage_entropy: Entropy (nats) of the final normalised usage.
    """

    slots_written: Tensor
    binding_overwrites: Tensor
    usage_entropy: Tensor

    def summary(self) -> dict[str, float]:
        """Means over the batch, ignoring NaN episodes (NaN if all are)."""
        return {name: float(value.float().nanmean()) for name, value in self._asdict().items()}


def stack_field(states: Sequence[Any], name: str) -> Tensor:
    """Stack a state field over the steps of a trace: ``[batch, T, ...]``."""
    if not states:
        raise ValueError("No memory states: trace a MANN that has a memory.")
    if not hasattr(states[0], name):
        raise ValueError(f"{type(states[0]).__name__} has no field {name!r}.")
    return torch.stack([getattr(state, name).detach() for state in states], 1)


def _per_slot(write_weights: Tensor) -> Tensor:
    """``[batch, T, heads, slots]`` (or ``[batch, T, slots]``) to head sums ``[batch, T, slots]``."""
    if write_weights.dim() == 4:
        return write_weights.sum(2)
    if write_weights.dim() == 3:
        return write_weights
    raise ValueError(
        f"write weights must be [batch, T, heads, slots] or [batch, T, slots], "
        f"got {tuple(write_weights.shape)}."
    )


def slots_written(write_weights: Tensor, threshold: float = 0.5) -> Tensor:
    """Share of slots whose write weight summed over steps and heads is ``>= threshold``."""
    return (_per_slot(write_weights).sum(1) >= threshold).float().mean(-1)


def binding_overwrites(
    write_weights: Tensor, class_ids: Tensor, threshold: float = 0.5, lag: int = 0
) -> Tensor:
    """Share of writes onto a slot owned by another class that is shown again at ``>= t``.

    Args:
        write_weights: ``[batch, T, heads, slots]`` or ``[batch, T, slots]``.
        class_ids: ``[batch, T]`` integer class (or label) of each step.
        threshold: Weight at which a slot counts as written at a step.
        lag: A write at step ``t`` stores the class of step ``t - lag`` (``lag >= 0``).

    Returns:
        ``[batch]`` shares, NaN for an episode without writes.
    """
    written = _per_slot(write_weights) >= threshold  # [B, T, S]
    batch, steps, slots = written.shape
    if class_ids.shape != (batch, steps):
        raise ValueError(
            f"class_ids must be [batch, T] = {(batch, steps)}, got {tuple(class_ids.shape)}."
        )
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}.")
    device = written.device
    time = torch.arange(steps, device=device)
    same_class = class_ids[:, :, None] == class_ids[:, None, :]  # [B, T, T]
    last_shown = torch.where(same_class, time, -1).amax(-1)  # [B, T]: last step of u's class
    owner = torch.full((batch, slots), -1, dtype=torch.long, device=device)  # source step
    overwrites = torch.zeros(batch, dtype=torch.long, device=device)
    for t in range(steps):
        source = t - lag
        index = owner.clamp_min(0)
        needed = (owner >= 0) & (last_shown.gather(1, index) >= t)
        if source >= 0:
            needed &= class_ids.gather(1, index) != class_ids[:, source : source + 1]
        overwrites += (written[:, t] & needed).sum(1)
        owner = torch.where(written[:, t], source if source >= 0 else -1, owner)
    writes = written.sum((1, 2))
    share = overwrites.float() / writes.clamp_min(1).float()
    return torch.where(writes > 0, share, torch.nan)


def usage_entropy(usage: Tensor, normalised: bool = False) -> Tensor:
    """Entropy of ``usage [batch, slots]`` normalised to a distribution (nats).

    Args:
        usage: Final usage ``w^u_T`` (eq. 5), non-negative.
        normalised: Divide by ``log(slots)`` so that 1 is usage spread over every slot.

    Returns:
        ``[batch]``, NaN where the usage sums to zero.
    """
    usage = usage.detach().double()
    total = usage.sum(-1, keepdim=True)
    p = usage / total.clamp_min(torch.finfo(usage.dtype).tiny)
    entropy = -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(-1)
    if normalised:
        entropy = entropy / math.log(usage.shape[-1]) if usage.shape[-1] > 1 else entropy * 0
    return torch.where(total.squeeze(-1) > 0, entropy, torch.nan).float()


def class_ids_of(targets: Tensor) -> Tensor:
    """Class ids ``[batch, T]`` from episode targets: labels as they are, or string targets
    ``[batch, T, chars]`` read as base-``(max + 1)`` numbers (distinct strings stay distinct)."""
    if targets.dim() == 2:
        return targets.long()
    base = int(targets.max()) + 1
    powers = base ** torch.arange(targets.shape[-1] - 1, -1, -1, device=targets.device)
    return (targets.long() * powers).sum(-1)


def memory_statistics(
    states: Sequence[Any], class_ids: Tensor, threshold: float = 0.5, lag: int = 0
) -> MemoryStatistics:
    """The three statistics of an episode from the states of ``MANN.trace``.

    Args:
        states: One memory state per step (fields ``write_weights`` and, for the usage
            entropy, ``usage``), e.g. the second value ``MANN.trace`` returns.
        class_ids: ``[batch, T]`` class of each step (see :func:`class_ids_of`).
        threshold: Write weight at which a slot counts as written (0.5).
        lag: Step offset of the class a write stores (see :func:`binding_overwrites`).
    """
    weights = stack_field(states, "write_weights")
    usage = (
        usage_entropy(states[-1].usage)
        if hasattr(states[-1], "usage")
        else torch.full((weights.shape[0],), torch.nan, device=weights.device)
    )
    return MemoryStatistics(
        slots_written=slots_written(weights, threshold),
        binding_overwrites=binding_overwrites(weights, class_ids, threshold, lag),
        usage_entropy=usage,
    )


@torch.no_grad()
def trace_statistics(
    model: Any,
    inputs: Tensor,
    prev_labels: Tensor,
    targets: Tensor,
    state: Any = None,
    threshold: float = 0.5,
    lag: int = 0,
) -> MemoryStatistics:
    """Run ``model.trace`` (a :class:`~mann_lightning.model.MANN`) on a batch, then
    :func:`memory_statistics`; ``targets`` as in an episode batch, ``state`` e.g. carried."""
    _, states = model.trace(inputs, prev_labels, state)
    return memory_statistics(states, class_ids_of(targets), threshold, lag)
