"""The fused C++ LRUA kernel against the op-by-op step: same values and gradients (float64)."""

from __future__ import annotations

import logging
import stat

import pytest
import torch
from helpers.memory_episodes import assert_same_episode

from mann_lightning.memory import fused_lrua, kernel_build
from mann_lightning.memory.fused_lrua import fused_lrua_available, fused_step
from mann_lightning.memory.least_used import least_used_weights_by_sort
from mann_lightning.memory.lrua import LRUAMemory
from mann_lightning.memory.lrua_function import LRUAStepFunction
from mann_lightning.memory.sparse_lrua import SparseLRUAMemory

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not fused_lrua_available(), reason="the fused kernel could not be built"),
]


def _inputs(batch: int, heads: int, slots: int, word: int, dtype: torch.dtype) -> tuple:
    gen = torch.Generator().manual_seed(batch * 1000 + heads * 100 + word)
    keys = torch.randn(batch, heads, word, generator=gen, dtype=dtype)
    alpha = torch.randn(batch, heads, generator=gen, dtype=dtype)
    memory = torch.randn(batch, slots, word, generator=gen, dtype=dtype)
    memory[0, 1] = 0.0  # a zero row: its norm's gradient is taken as 0
    read_weights = torch.softmax(torch.randn(batch, heads, slots, generator=gen, dtype=dtype), -1)
    least_used = torch.zeros(batch, slots, dtype=dtype)
    least_used[:, :heads] = 1.0
    # Usage with ties (rounded), and one all-equal row: the least slot is the lowest index.
    usage = torch.rand(batch, slots, generator=gen, dtype=dtype).mul(4).round()
    usage[-1] = 1.0
    grads = [t.requires_grad_() for t in (keys, alpha, memory, read_weights)]
    return (*grads, least_used, usage)


def _reference(keys, alpha, memory, read_weights, least_used, usage, eps, gamma=0.95):
    """The op-by-op step: LRUAStepFunction, then eqs. 5 and 6 as LRUAMemory computes them."""
    word, heads = keys.shape[-1], keys.shape[1]
    erase = torch.argmin(usage, dim=-1)
    reads, memory, rw, ww = LRUAStepFunction.apply(
        keys, torch.sigmoid(alpha).unsqueeze(-1), memory, read_weights, least_used.unsqueeze(1),
        erase.view(-1, 1, 1).expand(-1, 1, word), eps,
    )  # fmt: skip
    new_usage = (rw + ww).sum(1).detach() + gamma * usage
    return reads, memory, rw, ww, new_usage, least_used_weights_by_sort(new_usage, heads)


def _fused(keys, alpha, memory, read_weights, least_used, usage, eps, gamma=0.95):
    return fused_step(keys, alpha, memory, read_weights, least_used, usage, gamma, eps)


# heads 4 with word 16, 20 or 40 (float64: 4, 5, 10 vectors) take the vectorised path, the
# others the general loops.
@pytest.mark.parametrize("heads,word", [(4, 16), (4, 20), (4, 40), (3, 5), (1, 7), (6, 8), (4, 12)])
def test_one_step_matches_the_autograd_function(heads: int, word: int) -> None:
    inputs = _inputs(3, heads, 9, word, torch.float64)
    ours = _fused(*inputs, 1e-6)
    ref = _reference(*inputs, 1e-6)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not ours[4].requires_grad and not ours[5].requires_grad  # usage, least used
    upstream = [torch.randn_like(t) for t in ours[:4]]
    ours_g = torch.autograd.grad(ours[:4], inputs[:4], upstream)
    ref_g = torch.autograd.grad(ref[:4], inputs[:4], upstream)
    for a, b in zip(ours_g, ref_g, strict=True):
        torch.testing.assert_close(a, b.view_as(a), rtol=1e-10, atol=1e-12)


# How alpha reaches the kernel: the base tensor it is a view of, the view, and how the
# view's gradient lands in the base.
LAYOUTS = {
    # rows 11 apart, as params.split(...)[1] in LRUAMemory.forward: read in place
    "column slice": ((5, 11), lambda b: b[:, 7:], lambda g, e: e[:, 7:].copy_(g)),
    # stride 0 between rows: read in place
    "expanded rows": ((1, 4), lambda b: b.expand(5, 4), lambda g, e: e.copy_(g.sum(0, True))),
    # columns not contiguous: copied first
    "transposed": ((4, 5), lambda b: b.t(), lambda g, e: e.copy_(g.t())),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_alpha_in_any_layout_gives_the_contiguous_result(layout: str) -> None:
    """The kernel reads a column slice of the interface output in place (no copy per step):
    the results and alpha's gradient must be those of a contiguous alpha, whatever the strides."""
    keys, _, memory, read_weights, least_used, usage = _inputs(5, 4, 9, 20, torch.float64)
    shape, make_view, scatter = LAYOUTS[layout]
    base = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    view = make_view(base)
    assert view.shape == (5, 4) and not view.is_contiguous()
    dense = view.detach().contiguous().requires_grad_()
    rest = (memory, read_weights, least_used, usage)
    ours = _fused(keys, view, *rest, 1e-6)
    ref = _fused(keys, dense, *rest, 1e-6)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    upstream = [torch.randn_like(t) for t in ours[:4]]
    (g_base,) = torch.autograd.grad(ours[:4], [base], upstream)
    (g_dense,) = torch.autograd.grad(ref[:4], [dense], upstream)
    expected = torch.zeros_like(base)
    scatter(g_dense, expected)
    torch.testing.assert_close(g_base, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("heads,word", [(4, 20), (2, 3)])
def test_gradcheck(heads: int, word: int) -> None:
    keys, alpha, memory, read_weights, least_used, usage = _inputs(2, heads, 5, word, torch.float64)
    assert torch.autograd.gradcheck(
        lambda k, a, m, r: _fused(k, a, m, r, least_used, usage, 1e-6)[:4],
        (keys, alpha, memory, read_weights),
    )


@pytest.mark.parametrize("dtype,word,tol", [(torch.float64, 20, 1e-10), (torch.float32, 40, 1e-4)])
def test_an_episode_matches_the_op_by_op_memory(dtype: torch.dtype, word: int, tol: float) -> None:
    """Several steps from a zero memory: reads, state and gradients into the interface layer."""
    torch.manual_seed(0)
    fused = LRUAMemory(16, word, 4, input_size=12).to(dtype)
    plain = LRUAMemory(16, word, 4, input_size=12, fused_kernel=False).to(dtype)
    assert_same_episode(fused, plain, dtype, tol, slots_may_permute=True)


def test_the_kernel_refuses_mismatched_shapes() -> None:
    keys, alpha, memory, read_weights, least_used, usage = _inputs(2, 4, 5, 20, torch.float64)
    with torch.no_grad():
        with pytest.raises(RuntimeError, match="read_weights must be"):
            torch.ops.mann_lrua.forward(keys, alpha, memory, read_weights[:, :, :3], least_used,
                                        usage, 0.95, 1e-6)  # fmt: skip
        with pytest.raises(RuntimeError, match="usage must be"):
            torch.ops.mann_lrua.forward(keys, alpha, memory, read_weights, least_used,
                                        usage[:, :3], 0.95, 1e-6)  # fmt: skip
        outputs = torch.ops.mann_lrua.forward(keys, alpha, memory, read_weights, least_used,
                                              usage, 0.95, 1e-6)  # fmt: skip
        saved = [keys, outputs[6], read_weights, least_used, torch.tensor([0, 5]), *outputs[1:4],
                 *outputs[8:]]  # fmt: skip
        grads = [torch.zeros_like(t) for t in outputs[:4]]
        with pytest.raises(RuntimeError, match="erase index"):
            torch.ops.mann_lrua.backward(*grads, *saved, 1e-6)


def test_a_failing_compiler_is_one_clear_error(tmp_path, monkeypatch) -> None:
    """What the fallback log line reports when the build fails: the compiler's first error."""
    compiler = tmp_path / "broken-c++"
    compiler.write_text("#!/bin/sh\necho 'x.cpp:1:1: error: no such header' >&2\nexit 1\n")
    compiler.chmod(compiler.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("MANN_KERNEL_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "src" / "k.cpp"
    source.parent.mkdir()
    source.write_text("int x;\n")
    with pytest.raises(RuntimeError, match="broken-c\\+\\+ failed: .*error: no such header"):
        kernel_build.build_library(source, str(compiler), [])
    assert not any(p.suffix == ".so" for p in (tmp_path / "cache").iterdir())


def test_unavailable_kernel_logs_one_line_and_the_memory_still_works(monkeypatch, caplog) -> None:
    monkeypatch.setitem(fused_lrua._STATE, "loaded", None)
    monkeypatch.setattr(fused_lrua, "_load", lambda: "no C++ compiler (g++ or c++) on PATH")
    with caplog.at_level(logging.WARNING, logger="mann_lightning.memory.fused_lrua"):
        assert not fused_lrua_available()
        assert not fused_lrua_available()
    assert [r.getMessage() for r in caplog.records] == [
        "Fused LRUA kernel unavailable (no C++ compiler (g++ or c++) on PATH); "
        "using the op-by-op step."
    ]
    memory = LRUAMemory(8, 5, 2, input_size=4)
    reads, _ = memory(torch.randn(2, 4), memory.initial_state(2))
    assert reads.shape == (2, 2, 5)


def test_the_switch_off_variable(monkeypatch) -> None:
    monkeypatch.setenv("MANN_FUSED_LRUA", "0")
    assert fused_lrua._load() == "MANN_FUSED_LRUA=0"


def test_fused_kernel_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="fused_kernel must be true or false"):
        LRUAMemory(8, 5, 2, fused_kernel="yes")  # type: ignore[arg-type]


def test_a_second_derivative_is_refused() -> None:
    inputs = _inputs(2, 4, 5, 20, torch.float64)
    keys = inputs[0]
    reads = _fused(*inputs, 1e-6)[0]
    with pytest.raises(RuntimeError, match="second derivative .* fused LRUA kernel .* first-order"):
        torch.autograd.grad(reads.square().sum(), keys, create_graph=True)


@pytest.mark.parametrize("path", ["fused", "op-by-op", "sparse"])
def test_a_second_derivative_through_an_episode_is_refused_not_wrong(path: str) -> None:
    """Before, an episode's second derivative through the fused or sparse step came out
    silently wrong (the hand-written backward's saved tensors taken as constants)."""
    torch.manual_seed(0)
    batch, heads = 2, 2
    if path == "sparse":
        memory = SparseLRUAMemory(6, 4, heads, k=6)
    else:
        memory = LRUAMemory(6, 4, heads, fused_kernel=path == "fused")
    keys = torch.randn(3, batch, heads, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(3, batch, heads, dtype=torch.float64)

    def loss(step: str) -> torch.Tensor:
        state, total = memory.initial_state(batch, dtype=torch.float64), 0
        for t in range(3):
            reads, state = getattr(memory, step)(torch.tanh(keys[t]), alpha[t], state)
            total = total + reads.square().sum()
        return total

    with pytest.raises(RuntimeError, match="second derivative"):
        torch.autograd.grad(loss("step"), keys, create_graph=True)


def test_float32_step_is_as_close_as_float32_allows() -> None:
    """The polynomial exp of the softmax and the vector sums: float32 within a few ulps."""
    inputs = _inputs(8, 4, 128, 40, torch.float32)
    ours = _fused(*inputs, 1e-6)
    ref = _reference(*(t.double() for t in inputs), 1e-6)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=2e-6, atol=2e-6)


def test_nan_keys_give_nan_reads_as_the_op_by_op_step() -> None:
    inputs = _inputs(2, 4, 5, 20, torch.float64)
    with torch.no_grad():
        inputs[0][0, 1, 3] = float("nan")
        ours = _fused(*inputs, 1e-6)
        ref = _reference(*inputs, 1e-6)
    for a, b in zip(ours[:4], ref[:4], strict=True):
        assert torch.equal(a.isnan(), b.isnan())


def _least_by_rounds(usage: torch.Tensor, heads: int) -> torch.Tensor:
    """Eq. 6 as ``heads`` rounds of argmin (a NaN counts as least, ties: the lower index)."""
    left, marks = usage.clone(), torch.zeros_like(usage)
    for _ in range(heads):
        index = torch.argmin(left, dim=-1, keepdim=True)
        marks.scatter_(-1, index, 1.0)
        left.scatter_(-1, index, float("inf"))
    return marks


@pytest.mark.parametrize("heads", [1, 3, 4, 6])
def test_least_used_slots_with_ties_and_nans_are_those_of_rounds_of_argmin(heads: int) -> None:
    """Zero keys and memory read every slot alike, so slots of equal usage stay exactly tied;
    a NaN usage counts as least."""
    inputs = list(_inputs(4, heads, 13, 8, torch.float64))
    with torch.no_grad():
        inputs[0].zero_()  # keys
        inputs[2].zero_()  # memory
        inputs[3].zero_()  # read weights: w^w is the least-used term alone
        gen = torch.Generator().manual_seed(heads)
        inputs[5] = torch.randint(0, 3, (4, 13), generator=gen).double()  # usage: many ties
        inputs[5][1, [2, 7]] = float("nan")
        inputs[5][2, 5:] = float("nan")
        outputs = torch.ops.mann_lrua.forward(*inputs, 0.95, 1e-6)
    new_usage, new_least_used = outputs[4], outputs[5]
    assert torch.equal(new_least_used, _least_by_rounds(new_usage, heads))
