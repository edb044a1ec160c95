"""Build a C++ operator library against the installed torch, once per machine, and cache it.

Used by :mod:`~mann_lightning.memory.fused_lrua` and :mod:`~mann_lightning.memory.fused_ntm`. The library is compiled with ``-march=native``
into ``$MANN_KERNEL_CACHE`` (else ``$XDG_CACHE_HOME/mann_lightning`` or
``~/.cache/mann_lightning``, else the temp folder), named by a hash of its sources, the torch
version, the flags, the compiler and the CPU, so that a changed source or another machine
sharing the folder builds its own copy. Builds are atomic: a concurrent build of the same
library writes its own partial file and the last rename wins.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def find_compiler() -> str | None:
    """``$CXX``, ``g++`` or ``c++``: the first on PATH, or None."""
    return next((c for c in (os.environ.get("CXX"), "g++", "c++") if c and shutil.which(c)), None)


def cache_dir() -> Path:
    """Where built libraries are kept (see the module docstring)."""
    root = os.environ.get("MANN_KERNEL_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mann_lightning"


def torch_flags() -> list[str]:
    """Compile and link flags for a shared library of torch operators (C++20: torch >= 2.10
    headers need it)."""
    from torch.utils import cpp_extension

    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    flags = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++20"]
    flags.append(f"-D_GLIBCXX_USE_CXX11_ABI={abi}")
    flags += [f"-I{path}" for path in cpp_extension.include_paths()]
    paths = cpp_extension.library_paths()
    return flags + [f"-L{p}" for p in paths] + [f"-Wl,-rpath,{p}" for p in paths] + [
        "-lc10", "-ltorch_cpu",
    ]  # fmt: skip


def cpu_signature() -> str:
    """The CPU's model and flags: a library built with ``-march=native`` runs only there."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [line for line in text.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def build_library(source: Path, compiler: str, flags: list[str] | None = None) -> Path:
    """The cached library of ``source`` (which may include headers beside it), built if needed.

    Raises:
        RuntimeError: the compiler failed; the message quotes its first error line.
        OSError: no folder could be written.
    """
    flags = torch_flags() if flags is None else flags
    parts = [p.read_bytes() for p in sorted(source.parent.glob("*.[ch]*"))]
    parts += [torch.__version__.encode(), " ".join(flags).encode(), compiler.encode()]
    key = hashlib.sha256(b"\0".join([*parts, cpu_signature().encode()])).hexdigest()[:16]
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / "mann_lightning"):
        library = folder / f"{source.stem}_{key}.so"
        if library.exists():
            return library
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, partial = tempfile.mkstemp(suffix=".so", dir=folder)
        except OSError:
            continue
        os.close(handle)
        log.info("Building %s (once per machine, 10-20 s): %s", source.name, library)
        try:
            result = subprocess.run(
                [compiler, str(source), "-o", partial, *flags],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if result.returncode != 0:
                errors = [line for line in result.stderr.splitlines() if "error" in line]
                raise RuntimeError(f"{compiler} failed: {(errors or ['no message'])[0][:300]}")
            os.replace(partial, library)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return library
    raise OSError(f"no writable folder for the kernel (tried {cache_dir()} and the temp folder)")


def load(source: Path) -> str | None:
    """Build (if needed) and load ``source``'s operators into ``torch.ops``: the reason they
    are unavailable, or None."""
    if platform.system() != "Linux":
        return f"built on Linux only, this is {platform.system()}"
    compiler = find_compiler()
    if compiler is None:
        return "no C++ compiler (g++ or c++) on PATH"
    try:
        torch.ops.load_library(str(build_library(source, compiler)))
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        lines = str(error).strip().splitlines() or [""]
        return f"{type(error).__name__}: {lines[0][:300]}"
    return None


def cpu_kernel_applies(*tensors: torch.Tensor) -> bool:
    """Whether a step on these tensors can take a fused CPU kernel: all on the CPU, all
    float32 or all float64, no CPU autocast."""
    dtype = tensors[0].dtype
    return (
        dtype in (torch.float32, torch.float64)
        and all(t.device.type == "cpu" and t.dtype == dtype for t in tensors)
        and not torch.is_autocast_enabled("cpu")
    )


def available(
    state: dict[str, bool | None],
    load: Callable[[], str | None],
    what: str,
    logger: logging.Logger,
) -> bool:
    """Whether a fused kernel is loaded, calling ``load`` (build and load; the reason it is
    unavailable, or None) on the first call; ``state["loaded"]`` keeps the answer, and a
    failure is one warning line on ``logger`` naming ``what`` kernel."""
    if state["loaded"] is None:
        reason = load()
        state["loaded"] = reason is None
        if reason is not None:
            logger.warning(
                "Fused %s kernel unavailable (%s); using the op-by-op step.", what, reason
            )
    return bool(state["loaded"])


def usable(
    state: dict[str, bool | None], is_available: Callable[[], bool], *tensors: torch.Tensor
) -> bool:
    """Whether a step on ``tensors`` can take a fused CPU kernel (:func:`cpu_kernel_applies`).

    While ``torch.compile`` traces a step the kernel is used only if it was loaded before
    (``Memory.before_compile``): a build cannot run inside a traced graph.
    """
    if not cpu_kernel_applies(*tensors):
        return False
    if torch.compiler.is_compiling():
        return state["loaded"] is True
    return is_available()
