"""Under DDP every process carries its own memory; a checkpoint keeps each and a resumed
process continues from its own (it was rank 0's for all)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from mann_lightning import LRUAMemory, persistence
from mann_lightning.classifier import MANNClassifier
from mann_lightning.persistence import own_carried


def small(wipe: str = "never") -> MANNClassifier:
    return MANNClassifier(
        num_classes=4, memory=LRUAMemory(6, 5, 2), controller_size=8, input_size=12, wipe=wipe
    )


def carried_by(module: MANNClassifier, seed: int) -> torch.Tensor:
    """Run a batch from ``seed``'s inputs and carry its final state; return its memory."""
    generator = torch.Generator().manual_seed(seed)
    inputs, labels = (
        torch.rand(3, 5, 12, generator=generator),
        torch.rand(3, 5, 4, generator=generator),
    )
    _, state = module.model(inputs, labels)
    module.carry.keep(state)
    return state.memory.memory


def as_rank(module: MANNClassifier, rank: int, world_size: int) -> None:
    module._trainer = SimpleNamespace(world_size=world_size, global_rank=rank)  # type: ignore[assignment]


def test_each_rank_saves_and_resumes_its_own_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rank 1 of 2 writes both ranks' states (the gather is emulated: rank 0's state is
    another batch's); each resumed rank restores its own."""
    other = small()
    memory_rank0 = carried_by(other, seed=0)
    module = small()
    memory_rank1 = carried_by(module, seed=1)
    as_rank(module, 1, 2)

    def all_gather_object(gathered: list[Any], own: dict[str, Any]) -> None:
        gathered[:] = [other.carry.state_dict(), own]

    monkeypatch.setattr(persistence.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(persistence.dist, "all_gather_object", all_gather_object)
    checkpoint: dict[str, Any] = {}
    module.on_save_checkpoint(checkpoint)
    assert len(checkpoint["carried_memory_ranks"]) == 2
    torch.save(checkpoint, tmp_path / "c.pt")
    for rank, memory in ((0, memory_rank0), (1, memory_rank1)):
        fresh = small()
        as_rank(fresh, rank, 2)
        fresh.on_load_checkpoint(torch.load(tmp_path / "c.pt", weights_only=True))
        restored = fresh.carry.initial(3, fresh.model.initial_state)
        assert torch.equal(restored.memory.memory, memory), f"rank {rank}"


def test_no_gathering_for_one_process_or_without_carrying() -> None:
    module = small()
    carried_by(module, seed=0)
    checkpoint: dict[str, Any] = {}
    module.on_save_checkpoint(checkpoint)  # no trainer: one process
    assert "carried_memory_ranks" not in checkpoint and checkpoint["carried_memory"]["leaves"]
    episode = small("episode")
    as_rank(episode, 0, 2)  # would need a process group if it gathered
    episode.on_save_checkpoint(checkpoint := {})
    assert "carried_memory_ranks" not in checkpoint


def test_another_number_of_processes_is_told() -> None:
    states = [{"batch_size": 3, "leaves": [torch.full((1,), float(r))]} for r in range(2)]
    checkpoint = {"carried_memory": states[0], "carried_memory_ranks": states}
    assert own_carried(checkpoint, 1, 2) == (states[1], None)
    state, warning = own_carried(checkpoint, 2, 4)
    assert state is None and "memory of 2 processes, this run has 4" in str(warning)
    state, warning = own_carried({"carried_memory": states[0]}, 1, 2)
    assert state is states[0] and "comes from one process; all 2 processes" in str(warning)
    assert own_carried({"carried_memory": states[0]}, 0, 1) == (states[0], None)
    assert own_carried({}, 0, 2) == (None, None)
