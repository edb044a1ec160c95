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


def test_prev_labels_of_another_float_type_are_named() -> None:
    model = MANN(7, 3, memory=MEMORIES["lrua"](), controller_size=6)
    inputs, labels = torch.rand(2, 4, 7), torch.zeros(2, 4, 3)
    model(inputs, labels)
    with pytest.raises(ValueError, match=r"the prev_labels are torch.float64.*prev_labels.to"):
        model(inputs, labels.double())


@pytest.mark.parametrize("kind", list(MEMORIES))
@pytest.mark.parametrize("batch", [True, 2.0, -1, "2"])
def test_initial_state_refuses_a_bad_batch_size(kind: str, batch: object) -> None:
    model = MANN(7, 3, memory=MEMORIES[kind](), controller_size=6)
    with pytest.raises(ValueError, match=r"MANN.initial_state: batch_size must be an integer"):
        model.initial_state(batch)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Memory: batch_size must be an integer"):
        model.memory.initial_state(batch)  # type: ignore[arg-type,union-attr]
    assert model.initial_state(0).reads.shape == (0, model.read_size)
    with pytest.raises(ValueError, match="dtype must be a floating type"):
        model.initial_state(2, dtype=torch.long)


@pytest.mark.parametrize("kind", list(MEMORIES))
def test_memory_forward_names_a_wrong_controller_output(kind: str) -> None:
    memory = MEMORIES[kind]()
    memory.build(6)
    state = memory.initial_state(2)
    memory(torch.rand(2, 6), state)
    for wrong in (torch.rand(2, 5), torch.rand(6)):
        with pytest.raises(ValueError, match=r"h_t must be \[batch, 6\]"):
            memory(wrong, state)
