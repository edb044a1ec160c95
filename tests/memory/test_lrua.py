"""Tests for the LRUA memory against a loop-based float64 reference of Santoro et al. (2016)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mann_lightning.memory.lrua import (
    LRUAMemory,
    LRUAState,
    least_used_weights,
    least_used_weights_by_argmin,
)
from mann_lightning.model import MANN

TOL = 1e-10


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- reference
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _argmin_lowest(values: list[float]) -> int:
    best = 0
    for i in range(1, len(values)):
        if values[i] < values[best]:
            best = i
    return best


def ref_step(keys, alpha, state, gamma, eps):
    """One LRUA step (eqs. 2-8) with explicit loops over batch, heads and slots.

    Args:
        keys: ``[B, H, W]`` numpy float64.
        alpha: ``[B, H]`` pre-sigmoid gates.
        state: dict with ``memory [B, N, W]``, ``usage [B, N]``, ``read_weights [B, H, N]``,
            ``least_used [B, N]``.

    Returns:
        ``(reads [B, H, W], new_state dict, write_weights [B, H, N])``.
    """
    mem_prev = state["memory"]
    usage_prev = state["usage"]
    wr_prev = state["read_weights"]
    wlu_prev = state["least_used"]
    b_size, n_heads, width = keys.shape
    n_slots = mem_prev.shape[1]

    reads = np.zeros((b_size, n_heads, width))
    memory = np.zeros_like(mem_prev)
    usage = np.zeros_like(usage_prev)
    read_weights = np.zeros_like(wr_prev)
    least_used = np.zeros_like(wlu_prev)
    write_weights = np.zeros((b_size, n_heads, n_slots))

    for b in range(b_size):
        # eq. 7
        for h in range(n_heads):
            g = _sigmoid(float(alpha[b, h]))
            for i in range(n_slots):
                write_weights[b, h, i] = g * wr_prev[b, h, i] + (1.0 - g) * wlu_prev[b, i]
        # erase the least used slot after t-1, then eq. 8
        erased = _argmin_lowest([float(u) for u in usage_prev[b]])
        for i in range(n_slots):
            for j in range(width):
                value = 0.0 if i == erased else float(mem_prev[b, i, j])
                for h in range(n_heads):
                    value += write_weights[b, h, i] * keys[b, h, j]
                memory[b, i, j] = value
        # eqs. 2-4
        for h in range(n_heads):
            key_norm = math.sqrt(sum(float(v) ** 2 for v in keys[b, h]))
            sims = []
            for i in range(n_slots):
                row_norm = math.sqrt(sum(float(v) ** 2 for v in memory[b, i]))
                dot = sum(float(keys[b, h, j]) * memory[b, i, j] for j in range(width))
                sims.append(dot / (key_norm * row_norm + eps))
            top = max(sims)
            exps = [math.exp(s - top) for s in sims]
            total = sum(exps)
            for i in range(n_slots):
                read_weights[b, h, i] = exps[i] / total
            for j in range(width):
                reads[b, h, j] = sum(
                    read_weights[b, h, i] * memory[b, i, j] for i in range(n_slots)
                )
        # eq. 5
        for i in range(n_slots):
            u = gamma * usage_prev[b, i]
            for h in range(n_heads):
                u += read_weights[b, h, i] + write_weights[b, h, i]
            usage[b, i] = u
        # eq. 6: the n smallest usages, ties to the lower index
        order = sorted(range(n_slots), key=lambda i, b=b: (usage[b, i], i))
        for i in order[:n_heads]:
            least_used[b, i] = 1.0

    new_state = {
        "memory": memory,
        "usage": usage,
        "read_weights": read_weights,
        "least_used": least_used,
        "write_weights": write_weights,
    }
    return reads, new_state, write_weights


# ----------------------------------------------------------------------------- helpers
def _to_numpy_state(state: LRUAState) -> dict:
    return {name: getattr(state, name).detach().numpy().copy() for name in LRUAState._fields}


def _random_state(batch, slots, width, heads, gen, dtype=torch.float64) -> LRUAState:
    """A random but valid state: distinct usages (no ties), softmax read weights."""
    base = LRUAMemory(slots, width, heads).initial_state(batch, dtype=dtype)
    memory = torch.randn(batch, slots, width, generator=gen, dtype=dtype)
    usage = torch.rand(batch, slots, generator=gen, dtype=dtype) * 3.0
    read_weights = torch.softmax(torch.randn(batch, heads, slots, generator=gen, dtype=dtype), -1)
    order = torch.sort(usage, dim=-1, stable=True).indices[:, :heads]
    least_used = torch.zeros_like(usage).scatter_(1, order, 1.0)
    # Fields the next step does not read (e.g. the analysis-only ``write_weights``) stay
    # as initialised; the reference ignores them as inputs.
    return base._replace(
        memory=memory, usage=usage, read_weights=read_weights, least_used=least_used
    )


def _assert_state_close(state: LRUAState, ref: dict, tol: float = TOL) -> None:
    for name in LRUAState._fields:
        got = getattr(state, name).detach().numpy()
        np.testing.assert_allclose(got, ref[name], rtol=0, atol=tol, err_msg=name)


# ----------------------------------------------------------------------------- reference match
@pytest.mark.parametrize("init", ["initial", "random"])
def test_step_matches_reference(init):
    gen = torch.Generator().manual_seed(1 if init == "initial" else 2)
    batch, slots, width, heads, gamma = 3, 7, 4, 2, 0.9
    mem = LRUAMemory(slots, width, heads, gamma=gamma)
    if init == "initial":
        state = mem.initial_state(batch, dtype=torch.float64)
    else:
        state = _random_state(batch, slots, width, heads, gen)
    ref_state = _to_numpy_state(state)
    for _ in range(6):
        keys = torch.tanh(torch.randn(batch, heads, width, generator=gen, dtype=torch.float64))
        alpha = torch.randn(batch, heads, generator=gen, dtype=torch.float64) * 2.0
        reads, state = mem.step(keys, alpha, state)
        ref_reads, ref_state, _ = ref_step(keys.numpy(), alpha.numpy(), ref_state, gamma, mem.eps)
        assert isinstance(state, LRUAState)
        np.testing.assert_allclose(reads.numpy(), ref_reads, rtol=0, atol=TOL)
        _assert_state_close(state, ref_state)


def test_initial_state_least_used_is_first_slots():
    mem = LRUAMemory(5, 3, 2)
    state = mem.initial_state(2)
    expected = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0]] * 2)
    torch.testing.assert_close(state.least_used, expected)
    assert torch.count_nonzero(state.memory) == 0
    assert torch.count_nonzero(state.usage) == 0
    assert torch.count_nonzero(state.read_weights) == 0


def test_usage_ties_go_to_lowest_index():
    """From a zero state with zero keys, every usage ties; the lowest indices are marked."""
    mem = LRUAMemory(6, 3, 2, gamma=0.95)
    state = mem.initial_state(1, dtype=torch.float64)._replace(
        read_weights=torch.full((1, 2, 6), 1.0 / 6, dtype=torch.float64),
        least_used=torch.zeros(1, 6, dtype=torch.float64),
    )
    keys = torch.zeros(1, 2, 3, dtype=torch.float64)
    alpha = torch.full((1, 2), 100.0, dtype=torch.float64)  # write weights = read weights
    _, new = mem.step(keys, alpha, state)
    # uniform reads (all similarities 0) and uniform writes -> all usages equal
    assert torch.allclose(new.usage, new.usage[:, :1].expand_as(new.usage))
    torch.testing.assert_close(
        new.least_used, torch.tensor([[1.0, 1, 0, 0, 0, 0]], dtype=torch.float64)
    )


def test_forward_is_step_of_split_interface():
    torch.manual_seed(3)
    heads, width = 3, 5
    mem = LRUAMemory(8, width, heads, input_size=11).double()
    gen = torch.Generator().manual_seed(4)
    h_t = torch.randn(4, 11, generator=gen, dtype=torch.float64)
    state = _random_state(4, 8, width, heads, gen)
    reads, new = mem(h_t, state)

    params = h_t @ mem.interface.weight.t() + mem.interface.bias
    assert params.shape[1] == heads * (width + 1) == mem.interface_size
    keys = torch.tanh(params[:, : heads * width]).reshape(4, heads, width)
    alpha = params[:, heads * width :]
    ref_reads, ref_new = mem.step(keys, alpha, state)
    torch.testing.assert_close(reads, ref_reads, rtol=0, atol=1e-12)
    for a, b in zip(new, ref_new, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- invariants
def _run_steps(mem, state, steps, gen, dtype=torch.float64):
    batch = state.memory.shape[0]
    out = []
    for _ in range(steps):
        keys = torch.tanh(
            torch.randn(batch, mem.num_reads, mem.word_size, generator=gen, dtype=dtype)
        )
        alpha = torch.randn(batch, mem.num_reads, generator=gen, dtype=dtype)
        prev = state
        reads, state = mem.step(keys, alpha, prev)
        out.append((prev, keys, alpha, reads, state))
    return out


def test_least_used_marks_smallest_usages():
    gen = torch.Generator().manual_seed(5)
    mem = LRUAMemory(9, 4, 3)
    state = mem.initial_state(4, dtype=torch.float64)
    for *_, new in _run_steps(mem, state, 8, gen):
        lu = new.least_used
        assert set(lu.unique().tolist()) <= {0.0, 1.0}
        assert (lu.sum(-1) == mem.num_reads).all()
        marked_max = torch.where(lu.bool(), new.usage, -torch.inf).amax(-1)
        unmarked_min = torch.where(lu.bool(), torch.inf, new.usage).amin(-1)
        assert (marked_max <= unmarked_min).all()


@pytest.mark.parametrize("n", [1, 3, 8])
def test_least_used_by_argmin_is_the_stable_sort(n):
    """Eq. 6 under compile (``n`` argmin rounds) marks the slots the eager stable sort marks,
    ties included (few distinct usage values, so most slots tie)."""
    gen = torch.Generator().manual_seed(23)
    for dtype in (torch.float32, torch.float64):
        usage = torch.randint(0, 3, (64, 8), generator=gen).to(dtype) * 0.25
        usage[0] = 0.0  # every slot tied: slots 0..n-1
        usage[1] = torch.arange(8, 0, -1, dtype=dtype)  # no ties, smallest at the end
        by_sort = least_used_weights(usage, n)
        by_argmin = least_used_weights_by_argmin(usage, n)
        assert by_argmin.dtype == dtype
        torch.testing.assert_close(by_argmin, by_sort, rtol=0, atol=0)
        assert by_sort[0, :n].eq(1).all() and by_sort[0, n:].eq(0).all()
        assert by_sort[1, 8 - n :].eq(1).all()
        assert (by_sort.sum(-1) == n).all()


def test_memory_changes_only_where_written_or_erased():
    gen = torch.Generator().manual_seed(6)
    mem = LRUAMemory(10, 4, 2)
    state = _random_state(3, 10, 4, 2, gen)
    # Make write weights sparse: read weights one-hot, least-used one-hot-ish.
    read_weights = torch.zeros(3, 2, 10, dtype=torch.float64)
    read_weights[:, 0, 4] = 1.0
    read_weights[:, 1, 7] = 1.0
    state = state._replace(read_weights=read_weights)
    keys = torch.tanh(torch.randn(3, 2, 4, generator=gen, dtype=torch.float64))
    alpha = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    _, new = mem.step(keys, alpha, state)
    gate = torch.sigmoid(alpha).unsqueeze(-1)
    write_weights = gate * read_weights + (1 - gate) * state.least_used.unsqueeze(1)
    written = write_weights.sum(1) != 0  # [B, N]
    erased = torch.zeros_like(written)
    erased[torch.arange(3), state.usage.argmin(-1)] = True
    untouched = ~(written | erased)
    assert untouched.any()
    changed = (new.memory != state.memory).any(-1)
    assert not (changed & untouched).any()
    # An erased slot that is not written ends at exactly zero.
    for b in range(3):
        e = int(state.usage[b].argmin())
        if not written[b, e]:
            assert torch.count_nonzero(new.memory[b, e]) == 0


def test_usage_has_no_gradient_and_is_nonnegative():
    gen = torch.Generator().manual_seed(7)
    mem = LRUAMemory(8, 3, 2, gamma=0.95)
    state = mem.initial_state(2, dtype=torch.float64)
    state = state._replace(memory=state.memory.requires_grad_())
    for _ in range(4):
        keys = torch.randn(2, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
        alpha = torch.randn(2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
        reads, state = mem.step(torch.tanh(keys), alpha, state)
        assert reads.requires_grad and state.memory.requires_grad
        assert state.read_weights.requires_grad
        assert not state.usage.requires_grad
        assert state.usage.grad_fn is None
        assert not state.least_used.requires_grad
        assert (state.usage >= 0).all()


def test_usage_gamma_one_accumulates_read_and_write_mass():
    """gamma=1 (allowed): each step adds H (read weights sum to 1 per head) plus the write
    mass sum_h [sig(alpha_h) * sum_i w^r_{t-1}(h, i) + (1 - sig(alpha_h)) * H] (w^lu sums to H)."""
    gen = torch.Generator().manual_seed(8)
    heads = 2
    mem = LRUAMemory(6, 3, heads, gamma=1.0)
    state = mem.initial_state(2, dtype=torch.float64)
    for prev, _, alpha, _, new in _run_steps(mem, state, 4, gen):
        g = torch.sigmoid(alpha)
        write_mass = (g * prev.read_weights.sum(-1) + (1 - g) * heads).sum(-1)
        torch.testing.assert_close(
            new.usage.sum(-1) - prev.usage.sum(-1), heads + write_mass, rtol=0, atol=1e-12
        )
        assert (new.usage >= prev.usage).all()


# ----------------------------------------------------------------------------- gradients
def test_gradcheck_three_steps():
    gen = torch.Generator().manual_seed(9)
    slots, width, heads, batch, steps = 6, 3, 2, 2, 3
    mem = LRUAMemory(slots, width, heads)
    init = _random_state(batch, slots, width, heads, gen)
    keys = torch.randn(steps, batch, heads, width, generator=gen, dtype=torch.float64)
    alpha = torch.randn(steps, batch, heads, generator=gen, dtype=torch.float64)
    memory0 = init.memory.clone()

    def fn(keys, alpha, memory0):
        state = init._replace(memory=memory0)
        outs = []
        for t in range(steps):
            reads, state = mem.step(torch.tanh(keys[t]), alpha[t], state)
            outs.append(reads)
        return torch.stack(outs), state.memory, state.read_weights

    # random usages have no ties, so the hard argmin / sort cannot flip under eps
    inputs = tuple(t.clone().requires_grad_() for t in (keys, alpha, memory0))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_zero_memory_forward_backward_finite():
    torch.manual_seed(10)
    mem = LRUAMemory(6, 4, 2, input_size=5).double()
    state = mem.initial_state(3, dtype=torch.float64)
    # zero keys too: cosine similarity of a zero key with a zero memory
    state = state._replace(memory=state.memory.requires_grad_())
    keys = torch.zeros(3, 2, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    reads, new = mem.step(keys, alpha, state)
    (reads.sum() + new.memory.sum() + new.read_weights.square().sum()).backward()
    for t in (
        reads,
        new.memory,
        new.read_weights,
        new.usage,
        keys.grad,
        alpha.grad,
        state.memory.grad,
    ):
        assert torch.isfinite(t).all()
    # and through the interface layer from a zero memory
    h = torch.randn(3, 5, dtype=torch.float64)
    reads, new = mem(h, mem.initial_state(3, dtype=torch.float64))
    reads.sum().backward()
    assert torch.isfinite(reads).all()
    for p in mem.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_bf16_autocast_mann_forward_backward():
    """Under CPU bf16 autocast the interface layer emits bf16 gates; the step must cope."""
    torch.manual_seed(11)
    model = MANN(6, 3, "lstm", LRUAMemory(8, 4, 2), controller_size=12)
    x = torch.randn(2, 5, 6)
    y = torch.randn(2, 5, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, state = model(x, y)
    assert torch.isfinite(logits.float()).all()
    logits.float().square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


# ----------------------------------------------------------------------------- dtype / device
def test_initial_state_dtype_device():
    mem = LRUAMemory(5, 3, 2)
    state = mem.initial_state(4, device="cpu", dtype=torch.float64)
    shapes = {
        "memory": (4, 5, 3),
        "usage": (4, 5),
        "read_weights": (4, 2, 5),
        "least_used": (4, 5),
        "write_weights": (4, 2, 5),
    }
    for name in LRUAState._fields:
        t = getattr(state, name)
        assert t.dtype == torch.float64, name
        assert t.device == torch.device("cpu"), name
        assert tuple(t.shape) == shapes[name], name
    default = mem.initial_state(1)
    assert all(t.dtype == torch.get_default_dtype() for t in default)
    dev = mem.initial_state(1, device=torch.device("cpu"))
    assert all(t.device.type == "cpu" for t in dev)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_step_dtype_follows_inputs(dtype):
    gen = torch.Generator().manual_seed(12)
    mem = LRUAMemory(5, 3, 2)
    state = mem.initial_state(2, dtype=dtype)
    keys = torch.randn(2, 2, 3, generator=gen).to(dtype)
    alpha = torch.randn(2, 2, generator=gen).to(dtype)
    for _ in range(2):
        reads, state = mem.step(keys, alpha, state)
        assert reads.dtype == dtype
        assert all(t.dtype == dtype for t in state)


# ----------------------------------------------------------------------------- batch independence
def test_batch_independence():
    gen = torch.Generator().manual_seed(13)
    mem = LRUAMemory(7, 3, 2)
    batch, steps = 4, 5
    state_a = _random_state(batch, 7, 3, 2, gen)
    keys = torch.randn(steps, batch, 2, 3, generator=gen, dtype=torch.float64)
    alpha = torch.randn(steps, batch, 2, generator=gen, dtype=torch.float64)
    # Episode 1 stays; every other episode gets other inputs and another state.
    other = _random_state(batch, 7, 3, 2, gen)
    state_b = type(state_a)(
        *(torch.cat([o[:1], a[1:2], o[2:]]) for a, o in zip(state_a, other, strict=True))
    )
    keys_b = torch.randn_like(keys)
    keys_b[:, 1] = keys[:, 1]
    alpha_b = torch.randn_like(alpha)
    alpha_b[:, 1] = alpha[:, 1]
    for t in range(steps):
        reads_a, state_a = mem.step(torch.tanh(keys[t]), alpha[t], state_a)
        reads_b, state_b = mem.step(torch.tanh(keys_b[t]), alpha_b[t], state_b)
        torch.testing.assert_close(reads_a[1], reads_b[1], rtol=0, atol=1e-12)
        for a, b in zip(state_a, state_b, strict=True):
            torch.testing.assert_close(a[1], b[1], rtol=0, atol=1e-12)
        assert not torch.allclose(reads_a[0], reads_b[0])


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("gamma", [0.0, -0.5, 1.5, float("nan")])
def test_gamma_out_of_range(gamma):
    with pytest.raises(ValueError, match="gamma"):
        LRUAMemory(8, 4, 2, gamma=gamma)


@pytest.mark.parametrize("eps", [0.0, -1e-6, float("nan"), float("inf")])
def test_eps_must_be_positive_and_finite(eps):
    from mann_lightning.memory import SparseLRUAMemory

    with pytest.raises(ValueError, match="LRUAMemory: eps must be a positive finite number"):
        LRUAMemory(8, 4, 2, eps=eps)
    with pytest.raises(ValueError, match="SparseLRUAMemory: eps must be a positive finite"):
        SparseLRUAMemory(8, 4, 2, k=2, eps=eps)


def test_num_reads_exceeds_memory_size():
    with pytest.raises(ValueError, match=r"num_reads \(5\).*memory_size \(4\)"):
        LRUAMemory(4, 3, 5)
    LRUAMemory(4, 3, 4)  # equal is fine


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"memory_size": 0}, "memory_size"),
        ({"memory_size": -3}, "memory_size"),
        ({"word_size": 0}, "word_size"),
        ({"num_reads": 0}, "num_reads"),
        ({"word_size": 2.5}, "word_size"),
    ],
)
def test_non_positive_sizes(kwargs, name):
    args = {"memory_size": 8, "word_size": 4, "num_reads": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        LRUAMemory(**args)


@pytest.mark.parametrize("cls", ["LRUAMemory", "SparseLRUAMemory", "NTMMemory"])
def test_a_negative_memory_size_is_named_before_other_checks(cls):
    import mann_lightning.memory as memories

    with pytest.raises(ValueError, match=f"{cls}: memory_size must be a positive integer, got -3"):
        getattr(memories, cls)(memory_size=-3)
    with pytest.raises(ValueError, match="num_reads must be a positive integer, got True"):
        getattr(memories, cls)(memory_size=8, num_reads=True)


def test_gamma_of_wrong_type():
    with pytest.raises(ValueError, match="gamma must lie in"):
        LRUAMemory(8, 4, 2, gamma="high")


def test_forward_before_build_raises():
    mem = LRUAMemory(8, 4, 2)
    assert mem.interface is None
    with pytest.raises(RuntimeError, match="build"):
        mem(torch.randn(2, 5), mem.initial_state(2))
    mem.build(5)
    assert mem.interface.in_features == 5
    assert mem.interface.out_features == 2 * (4 + 1)
    mem.build(5)  # idempotent
    with pytest.raises(ValueError, match="built for a controller output of 5"):
        mem.build(6)


# ----------------------------------------------------------------------------- host sync
def test_no_host_sync_in_mann_steps(monkeypatch):
    torch.manual_seed(14)
    model = MANN(5, 3, "lstm", LRUAMemory(8, 4, 2), controller_size=10)
    x = torch.randn(2, 4, 5)
    y = torch.randn(2, 4, 3)

    def forbidden(*args, **kwargs):
        raise AssertionError("host synchronisation inside the LRUA step")

    monkeypatch.setattr(torch.Tensor, "item", forbidden)
    monkeypatch.setattr(torch.Tensor, "cpu", forbidden)
    monkeypatch.setattr(torch.Tensor, "tolist", forbidden)
    monkeypatch.setattr(torch.Tensor, "nonzero", forbidden)
    monkeypatch.setattr(torch.Tensor, "__bool__", forbidden)
    monkeypatch.setattr(torch, "nonzero", forbidden)
    logits, state = model(x, y)
    logits, state = model(x, y, state)
    logits.sum().backward()
    monkeypatch.undo()
    assert torch.isfinite(logits).all()


def test_plain_step_is_the_fused_step():
    """``plain_step`` (what torch.compile sees) computes ``step`` (the fused node): float64,
    random inputs, several steps, values and gradients."""
    torch.manual_seed(21)
    mem = LRUAMemory(12, 5, 3).double()
    keys = torch.randn(6, 2, 3, 5, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    runs = []
    for step in (mem.step, mem.plain_step):
        state = mem.initial_state(2, dtype=torch.float64)
        outputs = []
        for t in range(6):
            reads, state = step(torch.tanh(keys[t]), alpha[t], state)
            outputs.append(reads)
        total = torch.stack(outputs).square().sum() + state.memory.square().sum()
        runs.append((torch.stack(outputs), state, torch.autograd.grad(total, (keys, alpha))))
    (reads_a, state_a, grads_a), (reads_b, state_b, grads_b) = runs
    torch.testing.assert_close(reads_a, reads_b, rtol=1e-10, atol=1e-12)
    for a, b in zip(state_a, state_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_write_gate_bias_sets_the_gate_init_and_survives_the_spec():
    from mann_lightning.specs import spec_of

    memory = LRUAMemory(memory_size=8, word_size=4, num_reads=3, write_gate_bias=-2.0)
    memory.build(6)
    bias = memory.interface.bias.detach()
    assert torch.equal(bias[-3:], torch.full((3,), -2.0))  # alpha, one per head (eq. 7)
    assert not torch.equal(bias[:-3], torch.full((12,), -2.0))  # keys keep nn.Linear's init
    spec = spec_of(memory)
    assert spec["init_args"]["write_gate_bias"] == -2.0
    default = LRUAMemory(memory_size=8, word_size=4, num_reads=3, input_size=6)
    assert default.write_gate_bias is None and default.interface.bias[-3:].abs().max() < 1


@pytest.mark.parametrize("bias", [float("nan"), float("inf"), float("-inf"), "x", True])
def test_write_gate_bias_must_be_finite(bias):
    with pytest.raises(ValueError, match="write_gate_bias must be a finite number"):
        LRUAMemory(8, 4, 2, write_gate_bias=bias)
