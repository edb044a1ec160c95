"""mann-lightning: memory-augmented neural networks (Santoro et al. 2016) for Lightning.

Layers, imports pointing one way: the torch-only core (:mod:`.memory`, :mod:`.controller`,
:mod:`.model`) <- the Lightning layer (:mod:`.module`, :mod:`.data`, :mod:`.metrics`,
:mod:`.cli`) <- the continual layer (the top-level ``continual`` package).

Quick start::

    from mann_lightning import MANN, LRUAMemory
    model = MANN(input_size=400, num_outputs=5, memory=LRUAMemory(128, 40, num_reads=4))
    logits, state = model(images, prev_labels)  # [B, T, 400], [B, T, 5] -> [B, T, 5]
"""

from .controller import FeedForwardController, LSTMController
from .memory import LRUAMemory, Memory, NTMMemory
from .model import MANN, MANNState, detach_state

__version__ = "0.1.0.dev0"

__all__ = [
    "MANN",
    "FeedForwardController",
    "LRUAMemory",
    "LSTMController",
    "MANNState",
    "Memory",
    "NTMMemory",
    "detach_state",
]
