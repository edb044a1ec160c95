"""Tests for the NTM memory against a loop-based float64 reference of Graves et al. (2014)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mann_lightning.memory.base import cosine_similarity
from mann_lightning.memory.ntm import (
    NTMMemory,
    NTMParams,
    NTMState,
    shift_by_gather,
    shift_by_rolls,
)

EPS = 1e-6  # sharpening epsilon of the implementation (eq. 9)


# ----------------------------------------------------------------------------- reference
def _softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _softmax(x: list[float]) -> list[float]:
    m = max(x)
    e = [math.exp(v - m) for v in x]
    return [v / sum(e) for v in e]


def ref_address(mem, w_prev, k, beta, g, s, gamma):
    """One head of one episode, NTM eqs. 5-9 written out slot by slot."""
    n = mem.shape[0]
    # K (eq. 6) is the shared base helper, whose eps convention the base owns and tests;
    # it is called here one key at a time, everything after it is re-derived slot by slot.
    key, rows = torch.from_numpy(k)[None, None], torch.from_numpy(mem)[None]
    sim = cosine_similarity(key, rows)[0, 0].tolist()
    b = 1.0 + _softplus(beta)
    wc = _softmax([b * v for v in sim])
    gate = _sigmoid(g)
    wg = [gate * wc[i] + (1.0 - gate) * w_prev[i] for i in range(n)]
    shift = _softmax(list(s))
    half = len(shift) // 2
    wt = []
    for i in range(n):  # w~(i) = sum_j w^g(j) s(i - j), s indexed by offset -half..half
        total = 0.0
        for j in range(n):
            for idx in range(len(shift)):
                if (idx - half) % n == (i - j) % n:
                    total += wg[j] * shift[idx]
        wt.append(total)
    gam = 1.0 + _softplus(gamma)
    powered = [(v + EPS) ** gam for v in wt]
    return np.array([v / sum(powered) for v in powered])


def ref_split(vec, reads, writes, width, shifts):
    """Split one episode's interface vector by the documented layout (write heads first)."""
    heads, pos, out = reads + writes, 0, {}
    for name, size in (
        ("keys", heads * width),
        ("strengths", heads),
        ("gates", heads),
        ("shifts", heads * shifts),
        ("sharpening", heads),
        ("erase", writes * width),
        ("add", writes * width),
    ):
        out[name] = vec[pos : pos + size]
        pos += size
    assert pos == len(vec)
    out["keys"] = out["keys"].reshape(heads, width)
    out["shifts"] = out["shifts"].reshape(heads, shifts)
    out["erase"] = out["erase"].reshape(writes, width)
    out["add"] = out["add"].reshape(writes, width)
    return out


def ref_step(vec, mem, wr_prev, ww_prev, reads, writes, shifts):
    """One episode, one step: write heads address M_{t-1} and write, then reads on M_t."""
    n, width = mem.shape
    p = ref_split(vec, reads, writes, width, shifts)

    def head(h, m, prev):
        args = (p["keys"][h], p["strengths"][h], p["gates"][h], p["shifts"][h])
        return ref_address(m, prev, *args, p["sharpening"][h])

    ww = np.stack([head(h, mem, ww_prev[h]) for h in range(writes)])
    new = np.zeros_like(mem)
    for i in range(n):
        for c in range(width):
            keep, added = 1.0, 0.0
            for h in range(writes):
                keep *= 1.0 - ww[h, i] * _sigmoid(p["erase"][h, c])
                added += ww[h, i] * math.tanh(p["add"][h, c])
            new[i, c] = mem[i, c] * keep + added
    wr = np.stack([head(writes + h, new, wr_prev[h]) for h in range(reads)])
    r = np.zeros((reads, width))
    for h in range(reads):
        for c in range(width):
            r[h, c] = sum(wr[h, i] * new[i, c] for i in range(n))
    return r, new, wr, ww


# ----------------------------------------------------------------------------- helpers
def make(n=7, w=4, reads=2, writes=2, shifts=3, inp=5, dtype=torch.float64) -> NTMMemory:
    torch.manual_seed(0)
    return NTMMemory(n, w, reads, writes, shifts, input_size=inp).to(dtype)


def random_state(mem: NTMMemory, batch: int, gen: torch.Generator) -> NTMState:
    def dist(heads):
        return torch.softmax(torch.randn(batch, heads, mem.memory_size, generator=gen), -1)

    memory = torch.randn(batch, mem.memory_size, mem.word_size, generator=gen)
    s = NTMState(memory, dist(mem.num_reads), dist(mem.num_writes))
    return NTMState(*(t.double() for t in s))


def assert_distribution(w: torch.Tensor) -> None:
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize(
    ("n", "w", "reads", "writes", "shifts", "random_start"),
    [(7, 4, 2, 2, 3, False), (7, 4, 2, 2, 3, True), (5, 3, 3, 1, 5, True), (6, 2, 1, 1, 1, True)],
)
def test_matches_loop_reference(n, w, reads, writes, shifts, random_start) -> None:
    mem, batch, gen = make(n, w, reads, writes, shifts), 2, torch.Generator().manual_seed(1)
    state = (
        random_state(mem, batch, gen)
        if random_start
        else mem.initial_state(batch, dtype=torch.float64)
    )
    refs = [tuple(f[b].double().numpy() for f in state) for b in range(batch)]
    for _ in range(5):
        h = 2 * torch.randn(batch, 5, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            reads_t, state = mem(h, state)
            vecs = mem.interface(h).numpy()
        for b in range(batch):
            r, m, wr, ww = ref_step(vecs[b], *refs[b], reads, writes, shifts)
            refs[b] = (m, wr, ww)
            got = (reads_t[b], *(f[b] for f in state))
            for g, want in zip(got, (r, m, wr, ww), strict=True):
                np.testing.assert_allclose(g.numpy(), want, rtol=1e-9, atol=1e-12)


def test_weights_are_distributions_and_noop_write_keeps_memory() -> None:
    mem, gen = make(), torch.Generator().manual_seed(2)
    state = random_state(mem, 3, gen)
    for scale in (0.1, 1.0, 30.0, 1e4):  # includes saturated gates and huge sharpening
        raw = scale * torch.randn(3, mem.interface_size, generator=gen, dtype=torch.float64)
        params = mem.split_interface(raw)
        params = params._replace(erase=torch.full_like(params.erase, -1e4))  # e = 0
        params = params._replace(add=torch.zeros_like(params.add))  # a = 0
        _, nxt = mem.step(params, state)
        assert torch.equal(nxt.memory, state.memory)
        assert_distribution(nxt.read_weights)
        assert_distribution(nxt.write_weights)
        _, state = mem.step(mem.split_interface(raw), state)
        assert_distribution(state.read_weights)
        assert_distribution(state.write_weights)
        assert torch.isfinite(state.memory).all()


def test_gradcheck_through_three_steps() -> None:
    mem = make(n=6, w=3, reads=2, writes=2, shifts=3, inp=4)
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(3, 2, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    m0 = torch.randn(2, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def run(h, m0):
        state = mem.initial_state(2, dtype=torch.float64)._replace(memory=m0)
        outs = []
        for t in range(3):
            reads, state = mem(h[t], state)
            outs.append(reads)
        return torch.stack(outs), *state

    assert torch.autograd.gradcheck(run, (h, m0), eps=1e-6, atol=1e-5)


def test_gradcheck_step_raw_params_and_prev_weights() -> None:
    mem, gen = make(n=6, w=3, reads=2, writes=1, shifts=3, inp=4), torch.Generator().manual_seed(4)
    state = random_state(mem, 2, gen)
    raw = torch.randn(2, mem.interface_size, generator=gen, dtype=torch.float64)
    inputs = [t.clone().requires_grad_() for t in (*mem.split_interface(raw), *state)]

    def run(*tensors):
        reads, nxt = mem.step(NTMParams(*tensors[:7]), NTMState(*tensors[7:]))
        return reads, *nxt

    assert torch.autograd.gradcheck(run, tuple(inputs), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_zero_memory_forward_backward_finite(scale) -> None:
    mem = make(dtype=torch.float32)
    state = mem.initial_state(2)
    assert not state.memory.any()
    h = (scale * torch.randn(3, 2, 5)).requires_grad_()
    loss = 0.0
    for t in range(3):
        reads, state = mem(h[t], state)
        assert torch.isfinite(reads).all()
        loss = loss + reads.square().sum() + sum(f.sum() for f in state)
    loss.backward()
    assert torch.isfinite(h.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in mem.parameters())


def test_bf16_autocast_runs_and_is_finite() -> None:
    mem = make(dtype=torch.float32)
    h = torch.randn(4, 2, 5, requires_grad=True)
    state = mem.initial_state(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for t in range(4):
            reads, state = mem(h[t], state)
            assert torch.isfinite(reads).all()
            assert all(torch.isfinite(f).all() for f in state)
    assert all(f.dtype == torch.float32 for f in state)
    (reads.float().sum() + state.memory.sum()).backward()
    assert torch.isfinite(h.grad).all()


def test_batch_independence() -> None:
    mem, gen = make(), torch.Generator().manual_seed(5)
    start = random_state(mem, 3, gen)
    h = torch.randn(4, 3, 5, generator=gen, dtype=torch.float64)

    def run(h, state):
        outs = []
        for t in range(4):
            reads, state = mem(h[t], state)
            outs.append(torch.cat([reads.flatten(1), *(f.flatten(1) for f in state)], 1))
        return torch.stack(outs)

    base = run(h, start)
    h2 = h.clone()
    h2[:, 1] += 3.0
    start2 = start._replace(memory=start.memory.clone())
    start2.memory[1] = 0.0
    other = run(h2, start2)
    torch.testing.assert_close(other[:, [0, 2]], base[:, [0, 2]], rtol=0, atol=1e-14)
    assert not torch.allclose(other[:, 1], base[:, 1])


def test_initial_state_and_shapes_follow_device_and_dtype() -> None:
    mem = NTMMemory(9, 4, num_reads=3, num_writes=2, num_shifts=5, input_size=6)
    assert mem.interface.out_features == mem.interface_size == 5 * (4 + 3 + 5) + 2 * 2 * 4
    assert NTMMemory().interface_size == 5 * (40 + 3 + 3) + 2 * 40
    s = mem.initial_state(2, dtype=torch.float64)
    assert s.memory.shape == (2, 9, 4) and not s.memory.any()
    assert s.read_weights.shape == (2, 3, 9) and s.write_weights.shape == (2, 2, 9)
    assert (s.read_weights[..., 0] == 1).all() and (s.write_weights[..., 0] == 1).all()
    assert all(f.dtype == torch.float64 for f in s)
    meta = mem.to("meta")  # catches tensors created on the default device inside a step
    reads, nxt = meta(torch.empty(2, 6, device="meta"), meta.initial_state(2, device="meta"))
    assert reads.shape == (2, 3, 4) and reads.is_meta and all(f.is_meta for f in nxt)
    assert [f.shape for f in nxt] == [f.shape for f in s]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_shifts": 4}, "num_shifts must be odd"),
        ({"memory_size": 3, "num_shifts": 5}, "at most memory_size=3"),
        ({"num_shifts": 0}, "num_shifts must be a positive integer"),
        ({"num_writes": 0}, "num_writes must be a positive integer"),
        ({"num_writes": True}, "num_writes must be a positive integer"),
        ({"memory_size": 0}, "memory_size must be a positive integer"),
        ({"word_size": -1}, "word_size must be a positive integer"),
    ],
)
def test_invalid_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        NTMMemory(**kwargs)


def test_forward_before_build_raises() -> None:
    mem = NTMMemory(8, 4, 2)
    with pytest.raises(RuntimeError, match="no interface layer"):
        mem(torch.zeros(1, 5), mem.initial_state(1))
    mem.build(5)
    reads, _ = mem(torch.zeros(1, 5), mem.initial_state(1))
    assert reads.shape == (1, 2, 4)


@pytest.mark.parametrize(("slots", "shifts"), [(7, 1), (7, 3), (9, 5), (5, 5)])
def test_shift_by_rolls_is_shift_by_gather(slots: int, shifts: int) -> None:
    """Eq. 8 as compiled (one roll per offset) against the eager gather: float64, values and
    gradients, including as many offsets as slots."""
    gen = torch.Generator().manual_seed(slots * 10 + shifts)
    gated = torch.rand(3, 2, slots, generator=gen, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(3, 2, shifts, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 2, slots, generator=gen, dtype=torch.float64)
    results = []
    for shift in (shift_by_gather, shift_by_rolls):
        out = shift(gated, torch.softmax(logits, -1))
        results.append((out, *torch.autograd.grad((out * weights).sum(), (gated, logits))))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
