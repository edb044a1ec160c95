"""A straightforward LRUA for speed comparison: plain autograd, one op per formula.

The same equations as :class:`mann_lightning.memory.LRUAMemory` (paper eqs. 2-8, same state
and order), written the obvious way (``LRUAMemory.plain_step``, the form the library hands to
``torch.compile``), so that ``throughput.py`` can time the library's fused
step against it on the same machine in the same run. Not part of the library.
"""

from __future__ import annotations

from torch import Tensor

from mann_lightning.memory import LRUAMemory, LRUAState


class StraightforwardLRUA(LRUAMemory):
    """:class:`LRUAMemory` with its step written as plain autograd ops."""

    def step(self, keys: Tensor, alpha: Tensor, prev_state: LRUAState) -> tuple[Tensor, LRUAState]:
        """Eqs. 7, 8, 2-4, 5, 6 as plain ops: the library's own form for ``torch.compile``."""
        return self.plain_step(keys, alpha, prev_state)
