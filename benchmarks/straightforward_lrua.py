"""A straightforward LRUA for speed comparison: plain autograd, one op per formula.

The same equations as :class:`mann_lightning.memory.LRUAMemory` (paper eqs. 2-8, same state
and order), written the obvious way, so that ``throughput.py`` and ``end_to_end.py`` can time
the library's steps against it on the same machine in the same run. It runs
``LRUAMemory.plain_step`` (the form the library hands to ``torch.compile``) with one
difference in eq. 8: the write is the textbook matmul ``w^w_t^T k_t``, where the library
writes a broadcast sum that the compiler fuses (``lrua_write.py`` times the two compiled).
Not part of the library.
"""

from __future__ import annotations

from torch import Tensor

from mann_lightning.memory import LRUAMemory, LRUAState


class StraightforwardLRUA(LRUAMemory):
    """:class:`LRUAMemory` with its step written as plain autograd ops (eager or compiled)."""

    def step(self, keys: Tensor, alpha: Tensor, prev_state: LRUAState) -> tuple[Tensor, LRUAState]:
        """Eqs. 7, 8, 2-4, 5, 6 as plain ops (``plain_step``), with the matmul write below."""
        return self.plain_step(keys, alpha, prev_state)

    @staticmethod
    def written(write_weights: Tensor, keys: Tensor) -> Tensor:
        """Eq. 8's addition as the textbook batched matmul ``w^w_t^T k_t``."""
        return write_weights.transpose(1, 2) @ keys
