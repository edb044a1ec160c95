"""An ablation for ``throughput.py``: LRUA's interface layer without the memory.

:class:`InterfaceOnlyMemory` maps ``h_t`` through the same interface layer as
:class:`~mann_lightning.memory.LRUAMemory` (``num_reads * (word_size + 1)`` outputs) and
returns the keys, ``tanh``-squashed, as the step's reads. The controller therefore still
receives ``num_reads * word_size`` read features per step, so its products are as wide as in
the MANN, but nothing is written, addressed or read (eqs. 2-8 are skipped). The step time of
MANN-LRUA minus that of this model is what the memory's addressing and state cost; this
model's own time is the controller's share (with the interface and output layers).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mann_lightning.memory import LRUAMemory
from mann_lightning.memory.base import Memory


class InterfaceOnlyState(NamedTuple):
    """No state: nothing is stored between steps."""


class InterfaceOnlyMemory(Memory):
    """Reads ``tanh(k_t)``, the keys LRUA would emit; no memory (an ablation, not a model)."""

    interface_size = LRUAMemory.interface_size  # LRUA's: one key and one gate per head

    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> InterfaceOnlyState:
        return InterfaceOnlyState()

    def forward(
        self, controller_output: Tensor, prev_state: InterfaceOnlyState
    ) -> tuple[Tensor, InterfaceOnlyState]:
        """``h_t [batch, input_size]`` -> ``(tanh(k_t) [batch, heads, word], state)``."""
        keys = self._interface(controller_output)[:, : self.read_size]
        return torch.tanh(keys).view(-1, self.num_reads, self.word_size), prev_state
