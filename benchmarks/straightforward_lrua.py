"""A straightforward LRUA for speed comparison: plain autograd, one op per formula.

The same equations as :class:`mann_lightning.memory.LRUAMemory` (paper eqs. 2-8, same state
and order), written the obvious way, so that ``throughput.py`` and ``end_to_end.py`` can time
the library's steps against it on the same machine in the same run. It differs from
``LRUAMemory.plain_step`` (the form the library hands to ``torch.compile``) only in eq. 8:
the write is the textbook matmul ``w^w_t^T k_t``, where the library writes a broadcast sum
that the compiler fuses (``lrua_write.py`` times the two compiled). Not part of the library.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mann_lightning.memory import LRUAMemory, LRUAState
from mann_lightning.memory.base import cosine_similarity


class StraightforwardLRUA(LRUAMemory):
    """:class:`LRUAMemory` with its step written as plain autograd ops (eager or compiled)."""

    def step(self, keys: Tensor, alpha: Tensor, prev_state: LRUAState) -> tuple[Tensor, LRUAState]:
        """Eqs. 7, 8, 2-4, 5, 6 as plain ops, the write of eq. 8 as a batched matmul."""
        memory, usage, read_weights, least_used, _ = prev_state
        gate = torch.sigmoid(alpha).unsqueeze(-1)
        lu = least_used.unsqueeze(1)
        write_weights = lu + gate * (read_weights - lu)  # eq. 7
        erase = torch.argmin(usage, dim=-1)  # the least-used slot is zeroed first
        keep = torch.arange(memory.shape[1], device=memory.device) != erase.unsqueeze(-1)
        memory = memory * keep.unsqueeze(-1).to(memory.dtype)
        memory = memory + write_weights.transpose(1, 2) @ keys  # eq. 8
        read_weights = torch.softmax(cosine_similarity(keys, memory, self.eps), dim=-1)  # 2, 3
        reads = read_weights @ memory  # eq. 4
        with torch.no_grad():  # eqs. 5 and 6
            usage = (read_weights + write_weights).sum(1).add_(usage, alpha=self.gamma)
            order = torch.sort(usage, dim=-1, stable=True).indices[:, : self.num_reads]
            least_used = torch.zeros_like(usage).scatter_(1, order, 1.0)
        return reads, LRUAState(memory, usage, read_weights, least_used, write_weights)
