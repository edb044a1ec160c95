"""The throughput ablation keeps LRUA's interface and read width, and skips the memory."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from interface_only import InterfaceOnlyMemory  # noqa: E402

from mann_lightning.memory import LRUAMemory  # noqa: E402
from mann_lightning.model import MANN  # noqa: E402


def test_interface_only_reads_the_keys_lrua_would_emit() -> None:
    torch.manual_seed(0)
    ablation, lrua = InterfaceOnlyMemory(128, 40, 4), LRUAMemory(128, 40, 4)
    model = MANN(400, 5, "lstm", ablation, controller_size=200)
    MANN(400, 5, "lstm", lrua, controller_size=200)
    assert ablation.interface.weight.shape == lrua.interface.weight.shape  # same product
    h = torch.randn(3, 200)
    reads, state = ablation(h, ablation.initial_state(3))
    keys = ablation.interface(h)[:, :160]
    torch.testing.assert_close(reads, torch.tanh(keys).view(3, 4, 40))
    assert state == ()
    logits, _ = model(torch.rand(3, 6, 400), torch.zeros(3, 6, 5))
    logits.sum().backward()
    assert model.controller.recurrent_weight.shape[1] == 200 + 160  # reads widen the LSTM
    assert ablation.interface.weight.grad.abs().sum() > 0  # the reads feed the next step
