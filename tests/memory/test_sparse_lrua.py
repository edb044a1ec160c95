"""Sparse LRUA (top-k reads, sparse writes): against dense LRUA at k = N, against a plain
float64 autograd reference of the top-k rule at k < N, invariants, and scale at 65,536 slots."""

from __future__ import annotations

import pytest
import torch

from mann_lightning.callbacks import trace_images
from mann_lightning.memory import MEMORIES, LRUAMemory, SparseLRUAMemory, make_memory
from mann_lightning.memory.sparse_lrua import SparseLRUAState
from mann_lightning.memory.sparse_lrua_function import select
from mann_lightning.memory_stats import memory_statistics
from mann_lightning.model import MANN, detach_state
from mann_lightning.persistence import fill_state, state_leaves

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64
TOL = 1e-10


# ----------------------------------------------------------------------------- reference
def plain_step(keys, alpha, state, k, gamma, eps):
    """One step of the top-k LRUA rule with dense tensors and plain autograd ops.

    ``state``: dict of ``memory [B, N, W]``, ``usage [B, N]``, ``read_weights [B, H, N]`` and
    ``least_used [B, N]`` (0/1). Selections are Python sorts: top k by (similarity desc,
    index), least used by (usage, index).
    """
    batch, heads, _ = keys.shape
    slots = state["memory"].shape[1]
    gate = torch.sigmoid(alpha).unsqueeze(-1)
    write = gate * state["read_weights"] + (1 - gate) * state["least_used"].unsqueeze(1)
    keep = torch.ones(batch, slots, 1, dtype=F64)
    for b in range(batch):
        usage = state["usage"][b].tolist()
        keep[b, min(range(slots), key=lambda i, u=usage: (u[i], i))] = 0.0
    memory = state["memory"] * keep + write.transpose(1, 2) @ keys
    norms = torch.linalg.vector_norm(keys, dim=-1, keepdim=True) * torch.linalg.vector_norm(
        memory, dim=-1
    ).unsqueeze(1)
    sims = keys @ memory.transpose(1, 2) / (norms + eps)
    chosen = torch.zeros(batch, heads, slots, dtype=torch.bool)
    for b in range(batch):
        for h in range(heads):
            s = sims[b, h].tolist()
            chosen[b, h, sorted(range(slots), key=lambda i, s=s: (-s[i], i))[:k]] = True
    read = torch.softmax(sims.masked_fill(~chosen, float("-inf")), -1)
    reads = read @ memory
    with torch.no_grad():
        usage = gamma * state["usage"] + read.sum(1) + write.sum(1)
        least = torch.zeros_like(usage)
        for b in range(batch):
            u = usage[b].tolist()
            least[b, sorted(range(slots), key=lambda i, u=u: (u[i], i))[:heads]] = 1.0
    new = {"memory": memory, "usage": usage, "read_weights": read, "least_used": least}
    return reads, new, write


def plain_state(state: SparseLRUAState, memory: torch.Tensor | None = None) -> dict:
    slots = state.memory.shape[1]
    least = torch.zeros(state.usage.shape, dtype=F64).scatter_(1, state.least_used, 1.0)
    return {
        "memory": state.memory.clone() if memory is None else memory,
        "usage": state.usage.clone(),
        "read_weights": state.read_weights.detach().clone(),
        "least_used": least[:, :slots],
    }


def random_inputs(steps, batch, heads, width, seed):
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randn(steps, batch, heads, width, generator=gen, dtype=F64)
    alpha = torch.randn(steps, batch, heads, generator=gen, dtype=F64) * 2
    return keys.requires_grad_(), alpha.requires_grad_()


def random_memory_state(mem, batch, seed) -> SparseLRUAState:
    """A carried-looking state: random memory and distinct usages (no eq. 6 ties)."""
    gen = torch.Generator().manual_seed(seed)
    n, w = mem.memory_size, mem.word_size
    usage = torch.rand(batch, n, generator=gen, dtype=F64) * 3
    least = torch.sort(usage, dim=-1, stable=True).indices[:, : mem.num_reads]
    return mem.initial_state(batch, dtype=F64)._replace(
        memory=torch.randn(batch, n, w, generator=gen, dtype=F64), usage=usage, least_used=least
    )


# ----------------------------------------------------------------------------- k = N vs dense
@pytest.mark.parametrize("scan", ["window", "full"])
@pytest.mark.parametrize("init", ["zero", "random"])
def test_k_equal_slots_matches_dense_lrua(init, scan):
    """Same interface weights, 7 steps through ``forward``: reads, states and gradients of the
    inputs, the interface layer and the initial memory agree with :class:`LRUAMemory`."""
    batch, slots, width, heads, steps = 3, 9, 4, 2, 7
    torch.manual_seed(0)
    dense = LRUAMemory(slots, width, heads, gamma=0.9, input_size=6).double()
    sparse = SparseLRUAMemory(slots, width, heads, gamma=0.9, k=slots, input_size=6, scan=scan)
    sparse = sparse.double()
    sparse.load_state_dict(dense.state_dict())
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(steps, batch, 6, generator=gen, dtype=F64, requires_grad=True)
    memory0 = torch.zeros(batch, slots, width, dtype=F64)
    if init == "random":
        memory0 = torch.randn(batch, slots, width, generator=gen, dtype=F64)
    memory0.requires_grad_()
    weights = torch.randn(steps, batch, heads, width, generator=gen, dtype=F64)

    def run(mem):
        state = mem.initial_state(batch, dtype=F64)._replace(memory=memory0)
        loss, states = 0.0, []
        for t in range(steps):
            reads, state = mem(hidden[t], state)
            loss = loss + (reads * weights[t]).sum() + state.read_weights.square().sum()
            states.append(state)
        loss = loss + state.memory.square().sum()
        grads = torch.autograd.grad(loss, [hidden, memory0, *mem.parameters()])
        return states, grads

    dense_states, dense_grads = run(dense)
    sparse_states, sparse_grads = run(sparse)
    for ref, got in zip(dense_states, sparse_states, strict=True):
        for name in ("usage", "read_weights", "write_weights"):
            torch.testing.assert_close(getattr(got, name), getattr(ref, name), rtol=0, atol=TOL)
        least = torch.zeros_like(got.usage).scatter_(1, got.least_used, 1.0)
        torch.testing.assert_close(least, ref.least_used, rtol=0, atol=0)
    torch.testing.assert_close(sparse_states[-1].memory, dense_states[-1].memory, rtol=0, atol=TOL)
    for ref, got in zip(dense_grads, sparse_grads, strict=True):
        torch.testing.assert_close(got, ref, rtol=0, atol=TOL)


# ----------------------------------------------------------------------------- k < N vs plain
@pytest.mark.parametrize("scan", ["window", "full"])
@pytest.mark.parametrize("init", ["zero", "random"])
def test_top_k_matches_plain_reference(init, scan):
    """Values and gradients of 6 steps at k < N against :func:`plain_step`."""
    batch, slots, width, heads, k, steps, gamma = 2, 11, 3, 2, 3, 6, 0.9
    mem = SparseLRUAMemory(slots, width, heads, gamma=gamma, k=k, scan=scan)
    if init == "zero":
        start = mem.initial_state(batch, dtype=F64)
        start = start._replace(memory=torch.zeros(batch, slots, width, dtype=F64))
    else:
        start = random_memory_state(mem, batch, seed=3)
    memory0 = start.memory.clone().requires_grad_()
    keys, alpha = random_inputs(steps, batch, heads, width, seed=4)
    weights = torch.randn(steps, batch, heads, width, dtype=F64)

    state, ref = start._replace(memory=memory0), plain_state(start, memory0)
    loss_got = loss_ref = 0.0
    for t in range(steps):
        reads, state = mem.step(torch.tanh(keys[t]), alpha[t], state)
        ref_reads, ref, ref_write = plain_step(
            torch.tanh(keys[t]), alpha[t], ref, k, gamma, mem.eps
        )
        torch.testing.assert_close(reads, ref_reads, rtol=0, atol=TOL)
        torch.testing.assert_close(state.read_weights, ref["read_weights"], rtol=0, atol=TOL)
        torch.testing.assert_close(state.write_weights, ref_write, rtol=0, atol=TOL)
        torch.testing.assert_close(state.usage, ref["usage"], rtol=0, atol=TOL)
        least = torch.zeros_like(state.usage).scatter_(1, state.least_used, 1.0)
        torch.testing.assert_close(least, ref["least_used"], rtol=0, atol=0)
        loss_got = loss_got + (reads * weights[t]).sum() + state.read_values.square().sum()
        loss_ref = loss_ref + (ref_reads * weights[t]).sum() + ref["read_weights"].square().sum()
    torch.testing.assert_close(state.memory, ref["memory"], rtol=0, atol=TOL)
    got = torch.autograd.grad(loss_got + state.memory.sum(), (keys, alpha, memory0))
    want = torch.autograd.grad(loss_ref + ref["memory"].sum(), (keys, alpha, memory0))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=TOL)  # some are ~1e5 (eps)


def test_gradcheck_three_steps():
    mem = SparseLRUAMemory(8, 3, 2, k=3)
    start = random_memory_state(mem, 2, seed=5)
    keys, alpha = random_inputs(3, 2, 2, 3, seed=6)
    memory0 = start.memory.clone().requires_grad_()

    def fn(keys, alpha, memory0):
        state, outs = start._replace(memory=memory0), []
        for t in range(3):
            reads, state = mem.step(torch.tanh(keys[t]), alpha[t], state)
            outs.append(reads)
        return torch.stack(outs), state.read_values, state.memory

    assert torch.autograd.gradcheck(fn, (keys, alpha, memory0), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_select_breaks_ties_towards_lowest_index():
    values = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0, -1.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]])
    assert select(values, 3, largest=True).tolist() == [[0, 1, 3], [0, 1, 2]]
    assert select(values, 2, largest=False).tolist() == [[0, 5], [0, 1]]
    assert select(values, 6, largest=True).tolist() == [list(range(6))] * 2


@pytest.mark.parametrize("levels", [None, 3])  # continuous (fast path) / many ties (exact path)
@pytest.mark.parametrize("largest", [True, False])
def test_select_matches_sorting(levels, largest):
    gen = torch.Generator().manual_seed(13)
    values = torch.randn(5, 7, 40, generator=gen, dtype=F64)
    if levels is not None:
        values = torch.randint(levels, values.shape, generator=gen).to(F64)
    got = select(values.transpose(1, 2), 4, largest)  # a strided last axis, as in the step
    sign = -1.0 if largest else 1.0
    for row, picked in zip(values.transpose(1, 2).reshape(-1, 7), got.reshape(-1, 4), strict=True):
        r = row.tolist()
        want = sorted(range(7), key=lambda i, r=r: (sign * r[i], i))[:4]
        assert picked.tolist() == sorted(want)


# ----------------------------------------------------------------------------- edge cases
def test_zero_memory_and_zero_keys_are_finite():
    mem = SparseLRUAMemory(6, 4, 2, k=3, input_size=5).double()
    state = mem.initial_state(3, dtype=F64)
    memory0 = torch.zeros(3, 6, 4, dtype=F64, requires_grad=True)
    keys = torch.zeros(3, 2, 4, dtype=F64, requires_grad=True)
    alpha = torch.zeros(3, 2, dtype=F64, requires_grad=True)
    reads, new = mem.step(keys, alpha, state._replace(memory=memory0))
    (reads.sum() + new.memory.sum() + new.read_values.square().sum()).backward()
    for t in (reads, new.memory, new.read_values, new.usage, keys.grad, alpha.grad, memory0.grad):
        assert torch.isfinite(t).all()
    torch.testing.assert_close(new.read_values, torch.full((3, 2, 3), 1 / 3, dtype=F64))
    reads, _ = mem(torch.randn(3, 5, dtype=F64), mem.initial_state(3, dtype=F64))
    reads.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in mem.parameters())


@pytest.mark.parametrize("scan", ["window", "full"])
def test_carried_memory_continues_like_the_reference(scan):
    """Episode 2 starts from episode 1's detached state (non-zero memory, frontier inside)."""
    mem = SparseLRUAMemory(40, 3, 2, gamma=0.95, k=4, scan=scan)
    keys, alpha = random_inputs(10, 2, 2, 3, seed=7)
    state = mem.initial_state(2, dtype=F64)
    for t in range(5):
        _, state = mem.step(torch.tanh(keys[t]), alpha[t], state)
    carried = detach_state(state)
    assert carried.memory.abs().sum() > 0 and (carried.frontier < 40).all()
    ref = plain_state(carried)
    for t in range(5, 10):
        reads, carried = mem.step(torch.tanh(keys[t]), alpha[t], carried)
        ref_reads, ref, _ = plain_step(torch.tanh(keys[t]), alpha[t], ref, 4, 0.95, mem.eps)
        torch.testing.assert_close(reads, ref_reads, rtol=0, atol=TOL)
    torch.testing.assert_close(carried.memory, ref["memory"], rtol=0, atol=TOL)


def test_invariants_per_step():
    """Read weights sum to 1 over k distinct slots; at most H*k + H rows change per step."""
    mem = SparseLRUAMemory(64, 5, 3, k=4)
    keys, alpha = random_inputs(8, 4, 3, 5, seed=8)
    state = random_memory_state(mem, 4, seed=9)
    for t in range(8):
        before = state.memory.clone()
        _, state = mem.step(torch.tanh(keys[t]), alpha[t], state)
        changed = (state.memory != before).any(-1).sum(-1)
        assert (changed <= 3 * 4 + 3).all()
        torch.testing.assert_close(state.read_values.sum(-1), torch.ones(4, 3, dtype=F64))
        assert (state.read_index.sort(-1).values.diff(dim=-1) > 0).all()
        assert (state.write_values >= 0).all()
        assert state.usage.argmin(-1).equal(state.least_used[:, 0])


def test_checkpointed_state_and_second_backward():
    """A state rebuilt from its flat leaves (as MemoryCarry checkpoints do) continues the same;
    a second backward pass through a retained graph gives the same gradients again."""
    mem = SparseLRUAMemory(24, 3, 2, k=3)
    keys, alpha = random_inputs(6, 2, 2, 3, seed=14)
    state = mem.initial_state(2, dtype=F64)
    for t in range(3):
        _, state = mem.step(torch.tanh(keys[t]), alpha[t], state)
    carried = detach_state(state)
    leaves = [leaf.clone() for leaf in state_leaves(carried)]
    restored = fill_state(mem.initial_state(2, dtype=F64), leaves)
    outs = []
    for start in (carried, restored):
        reads = []
        for t in range(3, 6):
            r, start = mem.step(torch.tanh(keys[t]), alpha[t], start)
            reads.append(r)
        outs.append(torch.stack(reads))
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0)
    loss = outs[0].square().sum()
    first = torch.autograd.grad(loss, (keys, alpha), retain_graph=True)
    second = torch.autograd.grad(loss, (keys, alpha))
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_stale_state_is_refused_and_a_clone_branches():
    mem = SparseLRUAMemory(16, 3, 2, k=2)
    keys, alpha = random_inputs(3, 1, 2, 3, seed=10)
    _, state = mem.step(keys[0], alpha[0], mem.initial_state(1, dtype=F64))
    branch = state._replace(memory=state.memory.clone())
    reads_a, _ = mem.step(keys[1], alpha[1], state)
    with pytest.raises(RuntimeError, match="stale"):
        mem.step(keys[2], alpha[2], state)
    with pytest.raises(RuntimeError, match="stale"):  # in another dtype too (was a silent copy)
        mem.step(keys[2].float(), alpha[2].float(), state)
    reads_b, _ = mem.step(keys[1], alpha[1], branch)
    torch.testing.assert_close(reads_a, reads_b)
    fresh = mem.initial_state(1, dtype=F64)  # an initial state can be used twice
    first, _ = mem.step(keys[0], alpha[0], fresh)
    second, _ = mem.step(keys[0], alpha[0], fresh)
    torch.testing.assert_close(first, second)


def test_full_scan_reads_nothing_on_the_host(monkeypatch):
    """``scan="full"`` (the default off CPU) never reads a tensor value on the host."""
    torch.manual_seed(15)
    model = MANN(6, 3, "lstm", SparseLRUAMemory(16, 4, 2, k=4, scan="full"), controller_size=10)
    x, y = torch.rand(2, 5, 6), torch.rand(2, 5, 3)

    def forbidden(*args, **kwargs):
        raise AssertionError("host read in a scan='full' step")

    for name in ("item", "tolist", "numpy", "cpu", "nonzero", "__bool__", "__int__", "__float__"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    logits, state = model(x, y)
    logits, state = model(x, y, state)  # a carried state: copied, frontier recomputed
    logits.square().mean().backward()
    monkeypatch.undo()
    assert torch.isfinite(logits).all()


def test_validation_registry_and_spec():
    with pytest.raises(ValueError, match="k must"):
        SparseLRUAMemory(8, 4, 2, k=9)
    with pytest.raises(ValueError, match="k must"):
        SparseLRUAMemory(8, 4, 2, k=0)
    with pytest.raises(ValueError, match="gamma"):
        SparseLRUAMemory(8, 4, 2, gamma=0.0)
    with pytest.raises(ValueError, match="scan"):
        SparseLRUAMemory(8, 4, 2, scan="some")
    assert MEMORIES["sparse_lrua"] is SparseLRUAMemory
    mem = make_memory(
        {"class_path": "mann_lightning.memory.SparseLRUAMemory", "init_args": {"k": 8}}
    )
    assert isinstance(mem, SparseLRUAMemory) and mem.memory_size == 128 and mem.k == 8


def test_mann_trace_images_and_bf16_autocast():
    torch.manual_seed(11)
    model = MANN(6, 3, "lstm", SparseLRUAMemory(32, 4, 2, k=4), controller_size=12)
    x, y = torch.randn(2, 5, 6), torch.randn(2, 5, 3)
    with torch.no_grad():
        _, states = model.trace(x, y)
    images = trace_images(states)
    stats = memory_statistics(states, torch.randint(3, (2, 5)))
    assert all(torch.isfinite(v).all() for v in stats)
    assert {name: tuple(v.shape) for name, v in images.items()} == {
        "usage": (5, 32), "write_weights": (5, 32), "read_weights": (5, 32)
    }  # fmt: skip
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, state = model(x, y)
    logits.float().square().mean().backward()
    assert state.memory.memory.dtype == torch.float32
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


# ----------------------------------------------------------------------------- scale
def saved_bytes(model: MANN, slots_batch: int, steps: int) -> int:
    """Bytes of the distinct storages the autograd graph of one forward pass saves."""
    storages: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    x = torch.rand(slots_batch, steps, 400)
    y = torch.zeros(slots_batch, steps, 5)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits, _ = model(x, y)
    logits.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    return sum(storages.values())


def test_65536_slots_graph_holds_no_memory_copies():
    """MANN(400, 5, lstm, 65,536 x 40 slots, k=8), batch 2, 50 steps, forward + backward: the
    graph saves about what it saves at 128 slots, far below one memory (21 MB) per step."""
    torch.manual_seed(12)
    small = saved_bytes(MANN(400, 5, "lstm", SparseLRUAMemory(128, 40, 4, k=8)), 2, 50)
    big = saved_bytes(MANN(400, 5, "lstm", SparseLRUAMemory(65536, 40, 4, k=8)), 2, 50)
    one_memory = 2 * 65536 * 40 * 4
    assert big < 1.1 * small + 1e6, (small, big)
    assert big < one_memory / 4, (big, one_memory)


def test_inference_mode_steps() -> None:
    """Lightning tests under torch.inference_mode, whose tensors keep no version counter."""
    torch.manual_seed(0)
    model = MANN(6, 3, "lstm", SparseLRUAMemory(16, 4, 2, k=4), controller_size=5)
    inputs, prev = torch.rand(2, 5, 6), torch.rand(2, 5, 3)
    with torch.no_grad():
        expected, _ = model(inputs, prev)
    with torch.inference_mode():
        logits, state = model(inputs, prev)
        again, _ = model(inputs, prev, state)  # a carried inference state too
    torch.testing.assert_close(logits, expected)
    assert torch.isfinite(again).all()
