"""External memories behind one interface (:class:`Memory`).

- :class:`LRUAMemory`: least-recently-used access, Santoro et al. 2016, eqs. 2-8.
- :class:`NTMMemory`: NTM-style content + location addressing with erase/add writes.
- :class:`SparseLRUAMemory`: LRUA with top-k reads and sparse writes (Rae et al. 2016).
"""

from ..specs import from_spec
from .base import Memory, cosine_similarity
from .lrua import LRUAMemory, LRUAState
from .ntm import NTMMemory, NTMState
from .sparse_lrua import SparseLRUAMemory, SparseLRUAState

MEMORIES: dict[str, type[Memory]] = {
    "lrua": LRUAMemory,
    "ntm": NTMMemory,
    "sparse_lrua": SparseLRUAMemory,
}


def make_memory(memory: Memory | str | dict | None) -> Memory | None:
    """A memory from an instance, a name in ``MEMORIES``, ``"none"``/None, or a
    ``class_path``/``init_args`` spec."""
    if memory is None or isinstance(memory, Memory):
        return memory
    if isinstance(memory, dict):
        return from_spec(memory, Memory)  # type: ignore[return-value]
    if memory == "none":
        return None
    if isinstance(memory, str) and memory in MEMORIES:
        return MEMORIES[memory]()
    raise ValueError(
        f"Unknown memory {memory!r}: use one of {sorted(MEMORIES)} or 'none', or a Memory "
        "instance / class_path (e.g. mann_lightning.memory.LRUAMemory)."
    )


__all__ = [
    "MEMORIES",
    "LRUAMemory",
    "LRUAState",
    "Memory",
    "NTMMemory",
    "NTMState",
    "SparseLRUAMemory",
    "SparseLRUAState",
    "cosine_similarity",
    "make_memory",
]
