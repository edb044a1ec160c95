"""A straightforward LRUA for speed comparison: plain autograd, one op per formula.

The same equations as :class:`mann_lightning.memory.LRUAMemory` (paper eqs. 2-8, same state
and order), written the obvious way, so that ``throughput.py`` can time the library's fused
step against it on the same machine in the same run. Not part of the library.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mann_lightning.memory import LRUAMemory, LRUAState, cosine_similarity


class StraightforwardLRUA(LRUAMemory):
    """:class:`LRUAMemory` with its step written as plain autograd ops."""

    def step(self, keys: Tensor, alpha: Tensor, prev_state: LRUAState) -> tuple[Tensor, LRUAState]:
        memory, usage, read_weights, least_used, _ = prev_state
        gate = torch.sigmoid(alpha).unsqueeze(-1)
        write_weights = gate * read_weights + (1 - gate) * least_used.unsqueeze(1)  # eq. 7
        erase = torch.argmin(usage, dim=-1)
        keep = 1 - torch.nn.functional.one_hot(erase, memory.shape[1]).to(memory.dtype)
        memory = memory * keep.unsqueeze(-1) + write_weights.transpose(1, 2) @ keys  # eq. 8
        read_weights = torch.softmax(cosine_similarity(keys, memory, self.eps), dim=-1)  # 2-3
        reads = read_weights @ memory  # eq. 4
        usage = self.gamma * usage + (read_weights + write_weights).sum(1).detach()  # eq. 5
        order = torch.sort(usage, dim=-1, stable=True).indices[:, : self.num_reads]
        least_used = torch.zeros_like(usage).scatter_(1, order, 1.0)  # eq. 6
        return reads, LRUAState(memory, usage, read_weights, least_used, write_weights)
