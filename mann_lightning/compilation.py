"""``torch.compile`` of the MANN's training forward, with a clean fallback to eager.

A MANN step is some forty small operations on tensors of a few thousand numbers; run one by
one, per-operation overhead (Python, the dispatcher, autograd's bookkeeping and, on a GPU,
one kernel launch each) costs more than the arithmetic. Compiling removes most of it:

* ``"episode"``: the whole unrolled episode (forward and, through AOTAutograd, backward)
  becomes one compiled graph; pointwise operations of a step are fused into a few loops
  (CPU) or kernels, and on CUDA the graph is replayed as a CUDA graph
  (``mode="reduce-overhead"``), so a training step costs a handful of launches instead of
  thousands. Compiling takes minutes on a CPU (longer episodes take longer); it pays off in
  runs of hours.
* ``"step"``: only one time step is compiled and called ``T`` times; compiles in under a
  minute whatever the episode length, saves less.
* ``"none"``: eager (the default).
* ``"auto"`` (the Lightning module only, and the paper configs): ``"episode"`` for a run
  long enough to win the compile time back (at least :data:`AUTO_MIN_STEPS` training
  steps planned, on a CPU with a C++ compiler, a memory that compiles well), else
  ``"none"``; the module says which in one line when training starts
  (:func:`auto_compile_mode`).

Only gradient-enabled calls (training) use the compiled function; validation and testing
run eagerly, so they do not trigger a second compilation. Where the compiler is missing (no
C++ compiler for a CPU, no Triton for a GPU) or compiling fails, the model logs one line and
runs eagerly. Compiled functions are cached per model object and never stored on the model,
so models deep-copy and pickle as before. ``docs/performance.md`` has the measurements.
"""

from __future__ import annotations

import logging
import os
import shutil
import weakref
from collections.abc import Callable
from typing import Any, Literal

import torch

CompileMode = Literal["none", "step", "episode"]
COMPILE_MODES: tuple[str, ...] = ("none", "step", "episode")
#: What a Lightning module accepts: a mode, or ``"auto"`` (chosen when training starts).
CompileChoice = Literal["none", "step", "episode", "auto"]
#: ``compile="auto"`` compiles for runs of at least this many training steps. A
#: first compile of the paper's episode takes 3-5 minutes on 2 cores and saves about 30 ms
#: per step (one thread, docs/performance.md): it pays off after 6,000-10,000 steps.
AUTO_MIN_STEPS = 10_000

log = logging.getLogger(__name__)
_CACHE: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def check_compile_mode(mode: str, allow_auto: bool = False) -> str:
    """``mode`` if it is one of :data:`COMPILE_MODES` (or ``"auto"`` where allowed), else a
    clear ``ValueError``."""
    if mode not in COMPILE_MODES and not (allow_auto and mode == "auto"):
        auto = ", 'auto' (compile for long runs only)" if allow_auto else ""
        raise ValueError(
            f"Unknown compile mode {mode!r}: use 'none' (eager), 'step' (compile one time "
            f"step), 'episode' (compile the whole unrolled episode){auto}; see "
            "docs/performance.md."
        )
    return mode


def auto_compile_mode(
    planned_steps: float, device: torch.device, compiles_well: bool = True
) -> tuple[CompileMode, str]:
    """What ``compile="auto"`` means for a run, and why, in words for the log.

    Args:
        planned_steps: Training steps of the whole run (``inf`` for no limit).
        device: Where the model trains.
        compiles_well: False for a memory that gains nothing from compiling (sparse LRUA).

    Returns:
        ``("episode", why)`` on a CPU with a C++ compiler for a long run, else
        ``("none", why)``. CUDA stays eager here: its CUDA-graph path is not yet measured
        (docs/performance.md); ``compile="episode"`` selects it.
    """
    steps = "unlimited steps" if planned_steps == float("inf") else f"{int(planned_steps):,} steps"
    if device.type != "cpu":
        return "none", (
            f"compile='auto' compiles on a CPU only; running eagerly on {device.type}. An "
            "eager GPU step is bound by the host (about 125-145 ms on an H200 whatever the "
            "batch, docs/performance.md): a larger batch costs little more per step. "
            "compile='episode' selects the CUDA-graph path, not yet measured."
        )
    if not compiles_well:
        return "none", "compile='auto': this memory gains nothing from compiling; eager."
    if planned_steps < AUTO_MIN_STEPS:
        return "none", (
            f"compile='auto': a run of {steps}, fewer than {AUTO_MIN_STEPS:,}, too short to "
            "win back minutes of compiling; running eagerly (compile='episode' forces it)."
        )
    reason = missing_compiler(device)
    if reason is not None:
        return "none", f"compile='auto': {reason}; running eagerly."
    return "episode", (
        f"compile='auto': a run of {steps}: compiling the unrolled episode (minutes, once "
        "per shape; then about 1.5x faster per step; docs/performance.md)."
    )


def missing_compiler(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot build code for ``device`` here, or None if it can."""
    if device.type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:  # pragma: no cover - very old torch
            return "torch.utils._triton is missing"
        return None if has_triton() else "Triton is not installed"
    if device.type == "cpu":
        names = [os.environ.get("CXX"), "g++", "c++", "clang++"]
        if any(name and shutil.which(name) for name in names):
            return None
        return "no C++ compiler (g++, c++ or clang++) on PATH"
    return None


# Inductor options for CPU graphs (see CompiledCall._build).
CPU_INDUCTOR_OPTIONS: dict[str, Any] = {"size_asserts": False, "alignment_asserts": False}


class CompiledCall:
    """``fn`` compiled lazily on its first call; eager for good after one failure.

    Args:
        fn: The function to compile; called as ``fn(*args)``.
        mode: The compile mode's name, for the log line.
    """

    def __init__(self, fn: Callable[..., Any], mode: str) -> None:
        self.fn = fn
        self.mode = mode
        self.compiled: Callable[..., Any] | None = None
        self.eager = False

    def _build(self, device: torch.device, args: tuple[Any, ...]) -> None:
        reason = missing_compiler(device)
        if reason is not None:
            log.warning("compile=%r: %s; running eagerly.", self.mode, reason)
            self.eager = True
            return
        for module in (a for a in args if isinstance(a, torch.nn.Module)):
            for sub in module.modules():  # e.g. the LRUA's fused kernel, built before tracing
                hook = getattr(sub, "before_compile", None)
                if callable(hook):
                    hook(device)
        options: dict[str, Any] = {"dynamic": False}
        if device.type == "cuda" and self.mode == "episode":
            options["mode"] = "reduce-overhead"  # replay the episode as one CUDA graph
        elif device.type == "cpu":
            # Inductor checks every output of every extern call (the fused memory kernels:
            # ten outputs a step) with two Python asserts; they cost 1.04x per compiled
            # training step at batch 16 (docs/performance.md). Our kernels' outputs are
            # contiguous and of the shapes their fake implementations declare
            # (tests/memory/test_fused_*.py).
            options["options"] = CPU_INDUCTOR_OPTIONS
        log.info(
            "compile=%r: compiling the MANN for %s (the first step takes longer).",
            self.mode,
            device,
        )
        self.compiled = torch.compile(self.fn, **options)

    def __call__(self, *args: Any) -> Any:
        if self.compiled is None and not self.eager:
            device = next(a.device for a in args if isinstance(a, torch.Tensor))
            self._build(device, args)
        if self.eager or self.compiled is None:
            return self.fn(*args)
        try:
            return self.compiled(*args)
        except Exception as error:  # a compiler failure; model errors recur below, eagerly
            log.warning(
                "compile=%r failed (%s: %s); running eagerly.",
                self.mode,
                type(error).__name__,
                str(error).splitlines()[0] if str(error) else "",
            )
            self.eager = True
            return self.fn(*args)


def compiled(model: Any, mode: str, fn: Callable[..., Any]) -> CompiledCall:
    """The :class:`CompiledCall` of ``fn`` for ``model`` and ``mode`` (cached per model)."""
    calls = _CACHE.setdefault(model, {})
    key = (mode, fn)
    if key not in calls:
        calls[key] = CompiledCall(fn, mode)
    return calls[key]
