"""torch.compile of the MANN (``compile="step"`` / ``"episode"``) computes the eager function.

Float64, random inputs, several steps, gradients too, for both memories; and a missing
compiler falls back to eager with one log line.
"""

from __future__ import annotations

import logging

import pytest
import torch

from mann_lightning import compilation
from mann_lightning.memory import LRUAMemory, NTMMemory
from mann_lightning.model import MANN


def make_model(memory: str, compile_mode: str, fused: bool = True) -> MANN:
    torch.manual_seed(0)
    kind = LRUAMemory if memory == "lrua" else NTMMemory
    mem = kind(8, 4, 2, fused_kernel=fused)
    return MANN(6, 3, "lstm", mem, controller_size=5, compile=compile_mode).double()


def episode(batch: int = 2, steps: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.rand(batch, steps, 6, generator=generator, dtype=torch.float64)
    labels = torch.randint(3, (batch, steps), generator=generator)
    prev = torch.nn.functional.one_hot(labels, 3).double().roll(1, 1)
    prev[:, 0] = 0
    return inputs, prev


def loss_and_grads(model: MANN) -> tuple[torch.Tensor, list[torch.Tensor]]:
    inputs, prev = episode()
    logits, state = model(inputs, prev)
    loss = logits.pow(2).sum() + state.memory.memory.pow(2).sum()
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return logits.detach(), [g.detach() for g in grads]


def test_unknown_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Unknown compile mode 'fast'"):
        make_model("lrua", "fast")


def test_missing_compiler_falls_back_with_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mann_lightning.memory import fused_lrua

    # What the kernel's loader finds without a compiler is undone after the test.
    monkeypatch.setitem(fused_lrua._STATE, "loaded", fused_lrua._STATE["loaded"])
    monkeypatch.setattr(compilation.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    eager, eager_grads = loss_and_grads(make_model("lrua", "none"))
    model = make_model("lrua", "episode")
    with caplog.at_level(logging.WARNING, logger="mann_lightning.compilation"):
        logits, grads = loss_and_grads(model)
        loss_and_grads(model)
    # (the fused kernel, where not yet loaded, says in its own line that it cannot be built)
    lines = [r.getMessage() for r in caplog.records if r.name == "mann_lightning.compilation"]
    assert len(lines) == 1 and "no C++ compiler" in lines[0] and "eagerly" in lines[0]
    torch.testing.assert_close(logits, eager, rtol=0, atol=0)
    # The episode's recurrent-weight gradient is still formed after the loop (one product,
    # deferred_weight_grad), so the gradients agree to rounding, not bit for bit.
    for a, b in zip(grads, eager_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_compiled_call_prepares_the_memory_before_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    if compilation.missing_compiler(torch.device("cpu")):
        pytest.skip("no C++ compiler here: nothing is compiled")
    calls: list[str] = []
    monkeypatch.setattr(
        LRUAMemory, "before_compile", lambda self, device: calls.append(device.type)
    )
    monkeypatch.setattr(compilation.torch, "compile", lambda fn, **options: fn)  # no codegen
    model = make_model("lrua", "episode")
    loss_and_grads(model)
    loss_and_grads(model)
    assert calls == ["cpu"]  # once, when the compiled call is built


def test_cpu_graphs_are_built_without_inductors_output_asserts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CPU graphs skip the per-output Python asserts of extern calls (the fused kernels)."""
    if compilation.missing_compiler(torch.device("cpu")):
        pytest.skip("no C++ compiler here: nothing is compiled")
    seen: list[dict] = []

    def fake_compile(fn, **options):
        seen.append(options)
        return fn

    monkeypatch.setattr(compilation.torch, "compile", fake_compile)
    loss_and_grads(make_model("lrua", "episode"))
    assert seen == [
        {"dynamic": False, "options": {"size_asserts": False, "alignment_asserts": False}}
    ]


COMPILED_CASES = [  # about 25 s of compiling each on 2 cores; the NTM's run with `make test-long`
    pytest.param("lrua", "step", marks=pytest.mark.slow),
    pytest.param("lrua", "episode", marks=pytest.mark.slow),
    pytest.param("ntm", "step", marks=[pytest.mark.slow, pytest.mark.long]),
    pytest.param("ntm", "episode", marks=[pytest.mark.slow, pytest.mark.long]),
]


@pytest.mark.parametrize(("memory", "mode"), COMPILED_CASES)
def test_compiled_equals_eager(memory: str, mode: str) -> None:
    """Each ``step`` case compiles the plain ops (``fused_kernel=False``) against the eager
    fused kernel, each ``episode`` case the kernel as an extern call against the eager
    op-by-op step."""
    if compilation.missing_compiler(torch.device("cpu")):
        pytest.skip("no C++ compiler here: the fallback test covers this machine")
    torch._dynamo.reset()
    compiled_fused = mode == "episode"
    eager, eager_grads = loss_and_grads(make_model(memory, "none", fused=not compiled_fused))
    model = make_model(memory, mode, fused=compiled_fused)
    logits, grads = loss_and_grads(model)
    assert compilation.compiled(model, mode, compilation_fn(mode)).compiled is not None
    torch.testing.assert_close(logits, eager, rtol=1e-10, atol=1e-12)
    for a, b in zip(grads, eager_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    with torch.no_grad():  # evaluation runs eagerly (no second compilation)
        inputs, prev = episode()
        same_eager = make_model(memory, "none", fused=compiled_fused)(inputs, prev)[0]
        torch.testing.assert_close(model(inputs, prev)[0], same_eager, rtol=0, atol=0)


def compilation_fn(mode: str):
    from mann_lightning import episode_loop

    return episode_loop.deferred_loop if mode == "episode" else episode_loop.time_step


def traced_targets(model: MANN) -> set[str]:
    """Every operator in the graphs ``torch.compile`` traces for one episode (no codegen)."""
    from mann_lightning import episode_loop

    targets: set[str] = set()

    def record(graph_module: torch.fx.GraphModule, _: object) -> object:
        for module in graph_module.modules():
            if isinstance(module, torch.fx.GraphModule):
                targets.update(str(node.target) for node in module.graph.nodes)
        return graph_module.forward

    torch._dynamo.reset()
    inputs, prev = episode()
    torch.compile(episode_loop.episode, backend=record)(model, inputs, prev, None)
    return targets


# What only the op-by-op step traces: the LRUA's softmax of eq. 3, the NTM's norms of eq. 5.
OP_BY_OP_MARK = {"lrua": "softmax", "ntm": "vector_norm"}


@pytest.mark.parametrize("memory", ["lrua", "ntm"])
@pytest.mark.parametrize("fused", [True, False])
def test_compiled_memory_takes_the_fused_kernel_when_built(memory: str, fused: bool) -> None:
    from mann_lightning.memory.fused_lrua import fused_lrua_available
    from mann_lightning.memory.fused_ntm import fused_ntm_available

    model = make_model(memory, "none", fused=fused)
    model.memory.before_compile(torch.device("cpu"))  # what the compiled call does first
    available = fused_lrua_available() if memory == "lrua" else fused_ntm_available()
    if fused and not available:
        pytest.skip("the fused kernel cannot be built here")
    targets = traced_targets(model)
    assert any(f"mann_{memory}.forward" in t for t in targets) is fused
    assert any(OP_BY_OP_MARK[memory] in t for t in targets) is not fused
