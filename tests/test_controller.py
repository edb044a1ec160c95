"""Tests for the controllers against hand-written float64 references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mann_lightning.controller import (
    CONTROLLERS,
    FeedForwardController,
    FeedForwardState,
    LSTMController,
    LSTMState,
    make_controller,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def ref_lstm_step(w_x, w_r, bias, x, reads, h_prev, c_prev):
    """One LSTM step, unit by unit; gate rows ordered input, forget, output, cell candidate.

    ``w_x``: ``[4U, I]``, ``w_r``: ``[4U, R + U]`` over ``reads ++ h_prev``.
    """
    batch, units = h_prev.shape
    rec = np.concatenate([reads, h_prev], axis=1)
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    for b in range(batch):
        pre = []
        for row in range(4 * units):
            total = bias[row]
            for j in range(w_x.shape[1]):
                total += w_x[row, j] * x[b, j]
            for j in range(w_r.shape[1]):
                total += w_r[row, j] * rec[b, j]
            pre.append(total)
        for u in range(units):
            i_g = _sigmoid(pre[u])
            f_g = _sigmoid(pre[units + u])
            o_g = _sigmoid(pre[2 * units + u])
            cand = math.tanh(pre[3 * units + u])
            c[b, u] = f_g * c_prev[b, u] + i_g * cand
            h[b, u] = o_g * math.tanh(c[b, u])
    return h, c


def test_lstm_step_matches_reference():
    torch.manual_seed(0)
    units, in_size, read_size, batch, steps = 5, 4, 3, 2, 4
    ctrl = LSTMController(units)
    ctrl.build(in_size, read_size)
    ctrl.double()
    with torch.no_grad():  # perturb the bias so every gate is exercised off its init
        ctrl.bias.add_(torch.randn(4 * units, dtype=torch.float64) * 0.5)
    assert ctrl.input_weight.shape == (4 * units, in_size)
    assert ctrl.recurrent_weight.shape == (4 * units, read_size + units)
    gen = torch.Generator().manual_seed(1)
    xs = torch.randn(batch, steps, in_size, generator=gen, dtype=torch.float64)
    reads = torch.randn(steps, batch, read_size, generator=gen, dtype=torch.float64)
    projected = ctrl.project_inputs(xs)
    assert projected.shape == (batch, steps, 4 * units)

    state = ctrl.initial_state(batch, dtype=torch.float64)
    w_x = ctrl.input_weight.detach().numpy()
    w_r = ctrl.recurrent_weight.detach().numpy()
    bias = ctrl.bias.detach().numpy()
    h_ref = np.zeros((batch, units))
    c_ref = np.zeros((batch, units))
    for t in range(steps):
        out, state = ctrl.step(projected[:, t], reads[t], state)
        h_ref, c_ref = ref_lstm_step(
            w_x, w_r, bias, xs[:, t].numpy(), reads[t].numpy(), h_ref, c_ref
        )
        assert isinstance(state, LSTMState)
        np.testing.assert_allclose(out.detach().numpy(), h_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(state.hidden.detach().numpy(), h_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(state.cell.detach().numpy(), c_ref, rtol=0, atol=1e-12)


def test_lstm_forget_bias_init_and_state():
    ctrl = LSTMController(6)
    ctrl.build(3, 2)
    expected = torch.zeros(24)
    expected[6:12] = 1.0
    torch.testing.assert_close(ctrl.bias.detach(), expected)
    state = ctrl.initial_state(3, dtype=torch.float64)
    assert isinstance(state, LSTMState)
    for t in state:
        assert t.shape == (3, 6) and t.dtype == torch.float64
        assert torch.count_nonzero(t) == 0
    assert ctrl.output_size == 6
    assert ctrl.recurrent_size == 2 + 6


def test_lstm_gate_order_forget_gate_keeps_cell():
    """Saturating only the forget block (rows U..2U) must keep the cell; a wrong gate order
    would not."""
    units = 3
    ctrl = LSTMController(units)
    ctrl.build(2, 1)
    ctrl.double()
    with torch.no_grad():
        ctrl.input_weight.zero_()
        ctrl.recurrent_weight.zero_()
        ctrl.bias.zero_()
        ctrl.bias[:units] = -50.0  # input gate closed
        ctrl.bias[units : 2 * units] = 50.0  # forget gate open
        ctrl.bias[2 * units : 3 * units] = 50.0  # output gate open
    cell = torch.tensor([[0.3, -0.7, 1.2]], dtype=torch.float64)
    state = LSTMState(torch.zeros(1, units, dtype=torch.float64), cell)
    projected = ctrl.project_inputs(torch.zeros(1, 1, 2, dtype=torch.float64))[:, 0]
    h, new = ctrl.step(projected, torch.zeros(1, 1, dtype=torch.float64), state)
    torch.testing.assert_close(new.cell, cell, atol=1e-12, rtol=0)
    torch.testing.assert_close(h, torch.tanh(cell), atol=1e-12, rtol=0)


def test_feedforward_step_matches_reference():
    torch.manual_seed(2)
    units, in_size, read_size, batch = 7, 4, 6, 3
    ctrl = FeedForwardController(units)
    ctrl.build(in_size, read_size)
    ctrl.double()
    with torch.no_grad():
        ctrl.bias.copy_(torch.randn(units, dtype=torch.float64))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(batch, 2, in_size, generator=gen, dtype=torch.float64)
    reads = torch.randn(batch, read_size, generator=gen, dtype=torch.float64)
    state = ctrl.initial_state(batch)
    assert state == FeedForwardState()
    projected = ctrl.project_inputs(x)
    w_x, w_r, b = (
        p.detach().numpy() for p in (ctrl.input_weight, ctrl.recurrent_weight, ctrl.bias)
    )
    for t in range(2):
        out, new = ctrl.step(projected[:, t], reads, state)
        assert new == FeedForwardState()
        ref = np.zeros((batch, units))
        for bb in range(batch):
            for u in range(units):
                total = b[u]
                total += sum(w_x[u, j] * x[bb, t, j].item() for j in range(in_size))
                total += sum(w_r[u, j] * reads[bb, j].item() for j in range(read_size))
                ref[bb, u] = max(total, 0.0)
        np.testing.assert_allclose(out.detach().numpy(), ref, rtol=0, atol=1e-12)
        assert (out >= 0).all()


def test_feedforward_without_reads():
    ctrl = FeedForwardController(4)
    ctrl.build(3, 0)
    assert ctrl.recurrent_weight.shape == (4, 0)
    x = torch.randn(2, 1, 3)
    projected = ctrl.project_inputs(x)[:, 0]
    out, _ = ctrl.step(projected, torch.zeros(2, 0), ctrl.initial_state(2))
    torch.testing.assert_close(out, torch.relu(projected))
    torch.testing.assert_close(out, torch.relu(x[:, 0] @ ctrl.input_weight.t() + ctrl.bias))


@pytest.mark.parametrize("cls", [LSTMController, FeedForwardController])
def test_build_idempotent_and_mismatch(cls):
    ctrl = cls(5)
    ctrl.build(3, 4)
    weights = [p.detach().clone() for p in ctrl.parameters()]
    params_before = list(ctrl.parameters())
    ctrl.build(3, 4)  # same sizes: no-op, weights kept
    params_after = list(ctrl.parameters())
    assert len(params_before) == len(params_after) == 3
    for a, b in zip(params_before, params_after, strict=True):
        assert a is b
    for w, p in zip(weights, ctrl.parameters(), strict=True):
        torch.testing.assert_close(w, p.detach())
    with pytest.raises(ValueError, match="built for inputs 3 / reads 4"):
        ctrl.build(3, 5)
    with pytest.raises(ValueError, match="create a new controller"):
        ctrl.build(2, 4)


@pytest.mark.parametrize("cls", [LSTMController, FeedForwardController])
def test_project_before_build_raises(cls):
    with pytest.raises(RuntimeError, match="build"):
        cls(4).project_inputs(torch.zeros(1, 1, 2))


@pytest.mark.parametrize("size", [0, -1, 2.0, True])
def test_invalid_hidden_size(size):
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        LSTMController(size)


def test_make_controller():
    lstm = make_controller("lstm", 7)
    assert isinstance(lstm, LSTMController) and lstm.hidden_size == 7
    ff = make_controller("feedforward", 3)
    assert isinstance(ff, FeedForwardController) and ff.hidden_size == 3
    instance = LSTMController(2)
    assert make_controller(instance, 99) is instance
    assert set(CONTROLLERS) == {"lstm", "feedforward"}
    with pytest.raises(ValueError, match=r"Unknown controller 'gru'.*feedforward.*lstm"):
        make_controller("gru")
