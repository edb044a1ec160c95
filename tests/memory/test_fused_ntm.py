"""The fused C++ NTM kernel against the op-by-op step: same values and gradients (float64)."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers.memory_episodes import assert_same_episode

from mann_lightning.memory import fused_ntm
from mann_lightning.memory.fused_ntm import fused_ntm_available, fused_ntm_step
from mann_lightning.memory.ntm import NTMMemory, NTMParams, NTMState

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not fused_ntm_available(), reason="the fused kernel could not be built"),
]


def _raw(batch: int, mem: NTMMemory, dtype: torch.dtype, seed: int) -> tuple:
    """Raw interface outputs and a random previous state (a zero memory row included)."""
    gen = torch.Generator().manual_seed(seed)
    params = mem.split_interface(
        3 * torch.randn(batch, mem.interface_size, generator=gen, dtype=dtype)
    )
    n, w = mem.memory_size, mem.word_size
    memory = torch.randn(batch, n, w, generator=gen, dtype=dtype)
    memory[0, 1] = 0.0  # its norm's gradient is taken as 0
    read = torch.softmax(torch.randn(batch, mem.num_reads, n, generator=gen, dtype=dtype), -1)
    write = torch.softmax(torch.randn(batch, mem.num_writes, n, generator=gen, dtype=dtype), -1)
    leaves = [t.clone().requires_grad_() for t in (*params, memory, read, write)]
    return leaves


def _step(mem: NTMMemory, leaves: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    reads, state = mem.step(NTMParams(*leaves[:7]), NTMState(*leaves[7:]))
    return (reads, *state)


# (slots, word, reads, writes, shifts): the paper's heads, several write heads (the erase
# product), a shift as wide as the memory, a word not a multiple of the vector width. In
# float64 words of 8, 16, 20 and 40 take the vectorised passes (ntm_fast.h: 2, 4, 5 and 10
# vectors of 32 bytes; fewer than four read heads, slots not a whole number of 4-row blocks),
# 5 read heads the general loops; 9 shifts sum eq. 8's dL/ds apart from the fused pass.
CASES = [
    (9, 8, 4, 1, 3),
    (7, 5, 2, 3, 5),
    (5, 3, 1, 2, 5),
    (16, 40, 4, 1, 3),
    (6, 11, 3, 1, 1),
    (10, 20, 3, 1, 3),
    (7, 16, 2, 2, 3),
    (8, 8, 5, 1, 3),
    (13, 8, 2, 1, 9),
]


@pytest.mark.parametrize("slots,word,reads,writes,shifts", CASES)
def test_one_step_matches_the_op_by_op_step(slots, word, reads, writes, shifts) -> None:
    fused = NTMMemory(slots, word, reads, writes, shifts, input_size=4)
    plain = NTMMemory(slots, word, reads, writes, shifts, input_size=4, fused_kernel=False)
    leaves = _raw(3, fused, torch.float64, seed=slots * 100 + word)
    ours, ref = _step(fused, leaves), _step(plain, leaves)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    upstream = [torch.randn_like(t) for t in ours]
    ours_g = torch.autograd.grad(ours, leaves, upstream)
    ref_g = torch.autograd.grad(ref, leaves, upstream)
    for a, b in zip(ours_g, ref_g, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("slots,word,reads,writes,shifts", CASES[:3])
def test_keys_sliced_from_the_interface_output_match(slots, word, reads, writes, shifts) -> None:
    """As in NTMMemory.forward, the keys reach the kernel as a strided view of the interface
    output (read in place, not copied): values and the interface's gradient as op by op."""
    fused = NTMMemory(slots, word, reads, writes, shifts, input_size=4)
    plain = NTMMemory(slots, word, reads, writes, shifts, input_size=4, fused_kernel=False)
    leaves = _raw(3, fused, torch.float64, seed=slots * 10 + word)
    gen = torch.Generator().manual_seed(slots)
    interface = torch.randn(3, fused.interface_size, generator=gen, dtype=torch.float64)
    interface.requires_grad_()
    state = NTMState(*leaves[7:])
    params = fused.split_interface(interface)
    assert not params.keys.is_contiguous()
    reads, next_state = fused.step(params, state)
    ours = (reads, *next_state)
    reads, next_state = plain.step(plain.split_interface(interface), state)
    ref = (reads, *next_state)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    upstream = [torch.randn_like(t) for t in ours]
    ours_g = torch.autograd.grad(ours, [interface, *leaves[7:]], upstream)
    ref_g = torch.autograd.grad(ref, [interface, *leaves[7:]], upstream)
    for a, b in zip(ours_g, ref_g, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("slots,word,reads,writes,shifts", [(5, 4, 2, 1, 3), (4, 3, 1, 2, 3)])
def test_gradcheck(slots, word, reads, writes, shifts) -> None:
    """Against finite differences, in the kernel's own (activated) arguments."""
    gen = torch.Generator().manual_seed(0)
    heads = reads + writes

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen, dtype=torch.float64)

    inputs = [
        torch.randn(2, heads, word, generator=gen, dtype=torch.float64),
        1 + 2 * rand(2, heads),
        rand(2, heads),
        torch.softmax(torch.randn(2, heads, shifts, generator=gen, dtype=torch.float64), -1),
        1 + rand(2, heads),
        rand(2, writes, word),
        2 * rand(2, writes, word) - 1,
        torch.randn(2, slots, word, generator=gen, dtype=torch.float64),
        torch.softmax(torch.randn(2, reads, slots, generator=gen, dtype=torch.float64), -1),
        torch.softmax(torch.randn(2, writes, slots, generator=gen, dtype=torch.float64), -1),
    ]
    inputs = [t.requires_grad_() for t in inputs]
    assert torch.autograd.gradcheck(lambda *t: fused_ntm_step(*t, 1e-6, 1e-6), inputs)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_an_episode_from_a_zero_memory_matches(dtype: torch.dtype, tol: float) -> None:
    """Six steps from the initial state: reads, state and gradients into the interface layer."""
    torch.manual_seed(0)
    fused = NTMMemory(16, 20, 4, input_size=12).to(dtype)
    plain = NTMMemory(16, 20, 4, input_size=12, fused_kernel=False).to(dtype)
    assert_same_episode(fused, plain, dtype, tol)


def test_the_kernel_refuses_mismatched_shapes() -> None:
    mem = NTMMemory(6, 4, 2, input_size=4)
    leaves = [t.detach() for t in _raw(2, mem, torch.float64, seed=1)]
    args = [
        leaves[0], leaves[1], leaves[2], leaves[3].softmax(-1), leaves[4], leaves[5],
        leaves[6], *leaves[7:],
    ]  # fmt: skip
    bad = [*args[:8], args[8][:, :, :3], args[9]]
    with pytest.raises(RuntimeError, match="read_weights must be"):
        torch.ops.mann_ntm.forward(*bad, 1e-6, 1e-6)
    bad = [*args[:7], args[7].float(), *args[8:]]
    with pytest.raises(RuntimeError, match="all inputs must be"):
        torch.ops.mann_ntm.forward(*bad, 1e-6, 1e-6)


def test_unavailable_kernel_logs_one_line_and_the_memory_still_works(monkeypatch, caplog) -> None:
    monkeypatch.setitem(fused_ntm._STATE, "loaded", None)
    monkeypatch.setattr(fused_ntm, "_load", lambda: "no C++ compiler (g++ or c++) on PATH")
    with caplog.at_level(logging.WARNING, logger="mann_lightning.memory.fused_ntm"):
        assert not fused_ntm_available()
        memory = NTMMemory(8, 5, 2, input_size=4)
        reads, _ = memory(torch.randn(2, 4), memory.initial_state(2))
    assert [r.getMessage() for r in caplog.records] == [
        "Fused NTM kernel unavailable (no C++ compiler (g++ or c++) on PATH); "
        "using the op-by-op step."
    ]
    assert reads.shape == (2, 2, 5)


def test_the_switch_off_variable(monkeypatch) -> None:
    monkeypatch.setenv("MANN_FUSED_NTM", "0")
    assert fused_ntm._load() == "MANN_FUSED_NTM=0"


def test_fused_kernel_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="fused_kernel must be true or false"):
        NTMMemory(8, 5, 2, fused_kernel=1)  # type: ignore[arg-type]


def test_a_second_derivative_is_refused() -> None:
    mem = NTMMemory(6, 4, 2, input_size=4)
    leaves = _raw(2, mem, torch.float64, seed=2)
    reads = _step(mem, leaves)[0]
    with pytest.raises(RuntimeError, match="second derivative .* fused NTM kernel .* first-order"):
        torch.autograd.grad(reads.square().sum(), leaves[0], create_graph=True)
    # without create_graph the first derivative is as before
    reads = _step(mem, leaves)[0]
    assert torch.autograd.grad(reads.square().sum(), leaves[0])[0].isfinite().all()


@pytest.mark.parametrize("slots", [128, 13])
def test_float32_paper_sizes_are_as_close_as_float32_allows(slots: int) -> None:
    """The paper's word of 40 floats (five 32-byte vectors; 13 slots: a last block of five)."""
    fused = NTMMemory(slots, 40, 4, input_size=4)
    plain = NTMMemory(slots, 40, 4, input_size=4, fused_kernel=False)
    leaves = _raw(8, fused, torch.float32, seed=3)
    wide = [t.detach().double().requires_grad_() for t in leaves]
    ours, ref = _step(fused, leaves), _step(plain, wide)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-5)
    upstream = [torch.randn_like(t) for t in ref]
    ours_g = torch.autograd.grad(ours, leaves, [u.float() for u in upstream])
    ref_g = torch.autograd.grad(ref, wide, upstream)
    for a, b in zip(ours_g, ref_g, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4)
