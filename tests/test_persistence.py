"""Memory persistence: the wipe policies, flat saving of nested states, mann fit checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mann_lightning import MANN, LRUAMemory
from mann_lightning.classifier import MANNClassifier
from mann_lightning.persistence import MemoryCarry, fill_state, state_leaves


def model_and_state(batch: int = 3) -> tuple[MANN, object]:
    torch.manual_seed(0)
    model = MANN(12, 4, memory=LRUAMemory(6, 5, num_reads=2), controller_size=8)
    _, state = model(torch.rand(batch, 5, 12), torch.rand(batch, 5, 4))
    return model, state


def test_leaves_round_trip_and_shape_checks() -> None:
    model, state = model_and_state()
    leaves = state_leaves(state)
    rebuilt = fill_state(model.initial_state(3), leaves)
    assert all(torch.equal(a, b) for a, b in zip(state_leaves(rebuilt), leaves, strict=True))
    assert type(rebuilt.memory) is type(state.memory)
    with pytest.raises(ValueError, match="another size"):
        fill_state(model.initial_state(4), leaves)


@pytest.mark.parametrize("wipe", ["episode", "experience", "never"])
def test_policies(wipe: str) -> None:
    model, state = model_and_state()
    carry = MemoryCarry(wipe)  # type: ignore[arg-type]
    template = model.initial_state
    assert carry.initial(3, template) is None  # nothing carried yet
    carry.keep(state)
    started = carry.initial(3, template)
    if wipe == "episode":
        assert started is None
        return
    assert started.memory.memory.requires_grad is False  # detached
    assert torch.equal(started.memory.memory, state.memory.memory)
    assert carry.initial(2, template) is None  # another batch size starts fresh
    carry.new_experience()
    assert (carry.initial(3, template) is None) == (wipe == "experience")


def test_carried_state_is_copied_on_a_gpu_only() -> None:
    """A compiled episode on CUDA replays as a CUDA graph that rewrites its outputs' buffers
    at the next step, so a carried GPU state is cloned; a CPU state is not copied."""
    model, state = model_and_state()
    carry = MemoryCarry("never")
    carry.keep(state)
    kept = carry.initial(3, model.initial_state)
    assert kept.memory.memory.data_ptr() == state.memory.memory.data_ptr()  # CPU: no copy
    if torch.cuda.is_available():
        gpu_state = model.to("cuda").initial_state(3, torch.device("cuda"))
        carry.keep(gpu_state)
        kept = carry.initial(3, model.initial_state)
        assert kept.memory.memory.data_ptr() != gpu_state.memory.memory.data_ptr()
        assert torch.equal(kept.memory.memory, gpu_state.memory.memory)


def test_state_dict_restores_lazily() -> None:
    model, state = model_and_state()
    carry = MemoryCarry("never")
    carry.keep(state)
    saved = carry.state_dict()
    assert saved["batch_size"] == 3 and all(
        isinstance(t, torch.Tensor) for t in saved["leaves"] if t is not None
    )
    other = MemoryCarry("never")
    other.load_state_dict(saved)
    restored = other.initial(3, model.initial_state)
    assert torch.equal(restored.memory.usage, state.memory.usage)
    assert MemoryCarry("never").state_dict()["batch_size"] == 0
    with pytest.raises(ValueError, match="Unknown memory wipe policy 'sometimes'"):
        MemoryCarry("sometimes")  # type: ignore[arg-type]


def test_module_flag_and_checkpoint(tmp_path: Path) -> None:
    assert MANNClassifier(num_classes=3, memory="lrua", persist_memory=True).carry.wipe == "never"
    assert MANNClassifier(num_classes=3, memory="lrua").carry.wipe == "episode"
    with pytest.raises(ValueError, match="contradicts"):
        MANNClassifier(num_classes=3, memory="lrua", wipe="experience", persist_memory=True)
    module = MANNClassifier(
        num_classes=4, memory=LRUAMemory(6, 5, 2), controller_size=8, input_size=12, wipe="never"
    )
    _, state = module.model(torch.rand(3, 5, 12), torch.rand(3, 5, 4))
    module.carry.keep(state)
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "c.pt")
    fresh = MANNClassifier(
        num_classes=4, memory=LRUAMemory(6, 5, 2), controller_size=8, input_size=12, wipe="never"
    )
    fresh.on_load_checkpoint(torch.load(tmp_path / "c.pt", weights_only=True))
    restored = fresh.carry.initial(3, fresh.model.initial_state)
    assert torch.equal(restored.memory.memory, state.memory.memory)
    fresh.on_train_epoch_start()  # "never": an epoch does not wipe
    assert fresh.carry.state is not None
