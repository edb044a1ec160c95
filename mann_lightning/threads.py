"""CPU threads for ``mann``: a default that holds up on a machine doing other work.

A MANN training step is thousands of small operations. With several OpenMP threads each
operation ends at a barrier where the threads wait for each other; by default they wait by
spinning. On a quiet machine that is the fastest way to wait, but as soon as another process
takes a core, a thread that is descheduled holds up every barrier while the others spin away
their time slices. Measured on 2 cores (``benchmarks/busy_machine.py``, docs/performance.md):
with 2 threads a step took 3.9x its quiet time beside a busy loop and ran at 19% of its quiet
speed when two runs trained together; sleeping instead of spinning (``OMP_WAIT_POLICY=passive``)
made the quiet step 2x slower. One thread costs about a quarter on a quiet 2-core machine
(less once the step is compiled) and loses almost nothing when the machine is shared, and
its results do not depend on how busy the machine is.

So ``mann`` uses **one thread** unless told otherwise: ``--threads N`` sets N (``0`` keeps
torch's default, one per core), and an ``OMP_NUM_THREADS`` set in the environment is
respected when ``--threads`` is not given. Runs are deterministic for a fixed thread count.
"""

from __future__ import annotations

import logging
import os
import warnings

import torch

DEFAULT_THREADS = 1
log = logging.getLogger(__name__)


def resolve_threads(requested: int | None, environ: dict[str, str] | None = None) -> int | None:
    """The torch thread count to set, or None to leave torch's own choice.

    Args:
        requested: ``--threads``: None (not given), 0 (torch's default) or a positive count.
        environ: The environment (``os.environ`` by default).

    Raises:
        ValueError: For a negative count.
    """
    environ = os.environ if environ is None else environ
    if requested is None:
        return None if environ.get("OMP_NUM_THREADS") else DEFAULT_THREADS
    if requested < 0:
        raise ValueError(
            f"--threads must be 0 (torch's default: one per core) or a positive count, got "
            f"{requested}."
        )
    return requested or None


def apply_threads(requested: int | None) -> int:
    """Set torch's intra-op threads from ``--threads`` (see :func:`resolve_threads`).

    Returns:
        The number of threads torch uses now.
    """
    count = resolve_threads(requested)
    cores = available_cores()
    if count is not None and count > cores:
        warnings.warn(
            f"--threads {count} is more than the {cores} cores this process may use: the "
            "extra threads wait on each other at every operation and make a step several "
            f"times slower (docs/performance.md). Use --threads {cores} or fewer.",
            stacklevel=2,
        )
    if count is not None and count != torch.get_num_threads():
        torch.set_num_threads(count)
    return torch.get_num_threads()


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
