"""What a MANN refuses or accepts beyond shapes: a carried state's float type, the meta device."""

from __future__ import annotations

import pytest
import torch

from mann_lightning.memory import LRUAMemory, NTMMemory, SparseLRUAMemory
from mann_lightning.model import MANN

MEMORIES = {
    "lrua": lambda: LRUAMemory(8, 5, 2),
    "sparse": lambda: SparseLRUAMemory(8, 5, 2, k=4),
    "ntm": lambda: NTMMemory(8, 5, 2),
}


@pytest.mark.parametrize("kind", list(MEMORIES))
def test_initial_state_follows_the_weights_and_a_mismatched_state_is_named(kind: str) -> None:
    model = MANN(7, 3, memory=MEMORIES[kind](), controller_size=6).double()
    inputs = torch.rand(2, 4, 7, dtype=torch.float64)
    labels = torch.zeros(2, 4, 3, dtype=torch.float64)
    state = model.initial_state(2)  # the weights' float type, not the default float32
    assert state.reads.dtype == state.controller.hidden.dtype == torch.float64
    _, carried = model(inputs, labels, state)
    model(inputs, labels, carried)
    with pytest.raises(
        ValueError, match=r"state.controller.hidden is torch.float32, but the inputs are torch"
    ):
        model(inputs, labels, model.initial_state(2, dtype=torch.float32))


@pytest.mark.parametrize("kind", list(MEMORIES))
def test_the_meta_device_gives_shapes(kind: str) -> None:
    """Shape inference on ``"meta"`` (no data): autocast does not exist there."""
    model = MANN(7, 3, memory=MEMORIES[kind](), controller_size=6).to("meta")
    logits, state = model(torch.rand(2, 4, 7, device="meta"), torch.rand(2, 4, 3, device="meta"))
    assert logits.shape == (2, 4, 3) and logits.device.type == "meta"
    assert state.reads.device.type == "meta"


def test_a_carried_state_under_autocast_may_hold_lower_precision() -> None:
    model = MANN(7, 3, memory=LRUAMemory(8, 5, 2), controller_size=6)
    inputs, labels = torch.rand(2, 4, 7), torch.zeros(2, 4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, state = model(inputs, labels)
        logits, _ = model(inputs, labels, state)
    assert logits.isfinite().all()


@pytest.mark.parametrize("kind", list(MEMORIES))
def test_an_empty_batch_gives_empty_outputs(kind: str) -> None:
    model = MANN(7, 3, memory=MEMORIES[kind](), controller_size=6)
    logits, _ = model(torch.rand(0, 4, 7), torch.rand(0, 4, 3))
    assert logits.shape == (0, 4, 3)


@pytest.mark.parametrize("memory", [[1], 3, {"class_path": "torch.nn.Linear"}])
def test_a_memory_of_no_known_kind_is_named(memory: object) -> None:
    with pytest.raises((ValueError, TypeError), match="memory|Memory"):
        MANN(7, 3, memory=memory)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [-3, 2.5, True])
def test_a_bad_interface_input_size_is_named(size: object) -> None:
    with pytest.raises(ValueError, match=r"input_size \(the controller's output features\)"):
        LRUAMemory(8, 5, 2, input_size=size)  # type: ignore[arg-type]
