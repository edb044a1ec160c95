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
    "sparse_lrua": lambda: SparseLRUAMemory(16, 4, 2, k=4, scan="full"),  # the GPU path
}


def training_step(memory: str, device: str, compile_mode: str = "none") -> torch.Tensor:
    torch.manual_seed(3)
    model = MANN(6, 3, "lstm", MEMORIES[memory](), controller_size=10, compile=compile_mode)
    model = model.to(device)
    inputs = torch.rand(2, 5, 6, device=device)
    prev = torch.rand(2, 5, 3, device=device)
    logits, state = model(inputs, prev)
    logits, state = model(inputs, prev, state)  # a carried state too
    logits.square().mean().backward()
    return logits.detach()


@pytest.mark.parametrize("memory", sorted(MEMORIES))
def test_no_host_sync_on_cpu(memory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"host synchronisation in a {memory} training step")

    for name in ("item", "cpu", "tolist", "nonzero", "__bool__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    monkeypatch.setattr(torch, "nonzero", forbidden)
    logits = training_step(memory, "cpu")
    monkeypatch.undo()
    assert torch.isfinite(logits).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("compile_mode", ["none", "episode"])
@pytest.mark.parametrize("memory", sorted(MEMORIES))
def test_no_host_sync_on_cuda(memory: str, compile_mode: str) -> None:
    if compile_mode != "none" and memory == "sparse_lrua":
        pytest.skip("sparse LRUA is not compiled")
    training_step(memory, "cuda", compile_mode)  # warm-up: allocations, compilation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        logits = training_step(memory, "cuda", compile_mode)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(logits).all()
