"""No host synchronisation in a training step of any memory (the GPU path's precondition).

On CPU the methods that would copy a device value to the host are patched to fail (sparse
LRUA with ``scan="full"``, its default off CPU: on CPU its window reads the host); on a
GPU, when one is present, CUDA's own sync debugging runs the same step with
``torch.cuda.set_sync_debug_mode("error")``, eager and with the episode compiled.
"""

from __future__ import annotations

import pytest
import torch

from mann_lightning.memory import LRUAMemory, NTMMemory, SparseLRUAMemory
from mann_lightning.model import MANN

MEMORIES = {
    "lrua": lambda: LRUAMemory(16, 4, 2),
    "ntm": lambda: NTMMemory(16, 4, 2),
    # the op-by-op steps a GPU runs (on CPU the defaults above take the fused kernels)
    "lrua_op_by_op": lambda: LRUAMemory(16, 4, 2, fused_kernel=False),
    "ntm_op_by_op": lambda: NTMMemory(16, 4, 2, fused_kernel=False),
    "sparse_lrua": lambda: SparseLRUAMemory(16, 4, 2, k=4, scan="full"),  # the GPU path
}


def build(
    memory: str, device: str, compile_mode: str = "none"
) -> tuple[MANN, torch.Tensor, torch.Tensor]:
    """The model and its inputs, on ``device`` (copies to a GPU synchronise: set-up only)."""
    torch.manual_seed(3)
    model = MANN(6, 3, "lstm", MEMORIES[memory](), controller_size=10, compile=compile_mode)
    return model.to(device), torch.rand(2, 5, 6, device=device), torch.rand(2, 5, 3, device=device)


def training_step(model: MANN, inputs: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """Forward over two episodes (the second from the first's state), then backward."""
    logits, state = model(inputs, prev)
    logits, state = model(inputs, prev, state)  # a carried state too
    logits.square().mean().backward()
    return logits.detach()


@pytest.mark.parametrize("memory", sorted(MEMORIES))
def test_no_host_sync_on_cpu(memory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"host synchronisation in a {memory} training step")

    model, inputs, prev = build(memory, "cpu")
    # Reading a value back, and building a tensor from host values (on a GPU a copy that
    # waits: the sync the H200 found in sparse LRUA's `new_tensor(eps)`).
    for name in ("item", "cpu", "tolist", "nonzero", "__bool__", "numpy", "new_tensor"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    for name in ("nonzero", "tensor", "as_tensor", "from_numpy"):
        monkeypatch.setattr(torch, name, forbidden)
    logits = training_step(model, inputs, prev)
    monkeypatch.undo()
    assert torch.isfinite(logits).all()


def test_rotation_classes_are_jittered_without_host_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quarter turns came from a table built with ``torch.tensor`` at every training batch: on
    a GPU a host-to-device copy that waits for the device."""
    from mann_lightning.data.augment import random_affine

    images, turns = torch.rand(8, 10, 10), torch.arange(8) % 4
    generator = torch.Generator().manual_seed(0)
    expected = random_affine(images, generator, 0.1, 10.0, turns)
    for name in ("tensor", "as_tensor", "from_numpy"):
        monkeypatch.setattr(torch, name, lambda *a, **k: pytest.fail("a tensor of host values"))
    out = random_affine(images, generator.manual_seed(0), 0.1, 10.0, turns)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("compile_mode", ["none", "episode"])
@pytest.mark.parametrize("memory", sorted(MEMORIES))
def test_no_host_sync_on_cuda(memory: str, compile_mode: str) -> None:
    if compile_mode != "none" and memory == "sparse_lrua":
        pytest.skip("sparse LRUA is not compiled")
    model, inputs, prev = build(memory, "cuda", compile_mode)
    training_step(model, inputs, prev)  # warm-up: allocations, compilation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # only the step is checked, not the set-up
    try:
        logits = training_step(model, inputs, prev)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(logits).all()
