"""Fault injection for drills and tests: make a real ``mann fit`` fail at a chosen point.

Set the environment variable ``MANN_FAULT`` to a comma-separated list of ``name=value``:

* ``kill_at_step=N``: SIGKILL the process right after training step ``N`` (and after any
  checkpoint due at that step), as a power cut or an out-of-memory kill would.
* ``kill_in_save=K``: SIGKILL the process in the middle of its ``K``-th checkpoint write
  (half of the temporary file written, the target not yet replaced).
* ``nan_at_step=N``: put a NaN into the inputs of the batch of step ``N``, so the loss and
  the gradients of that step are not finite.
* ``kill_at_iteration=N``: SIGKILL a ``mann-continual`` run right after its ``N``-th training
  iteration of the whole stream (Avalanche's ``clock.train_iterations``).

Steps count completed optimizer steps (``trainer.global_step``): ``kill_at_step=5`` kills when
``global_step`` reaches 5; ``nan_at_step=3`` poisons the batch trained while it is 3. The hooks
are read by :class:`~mann_lightning.checkpointing.SafeModelCheckpoint`,
:class:`~mann_lightning.checkpointing.AtomicCheckpointIO` and
:class:`~mann_lightning.guards.NonFiniteGuard`; without ``MANN_FAULT`` they do nothing.
"""

from __future__ import annotations

import os
import signal
import sys

FAULT_ENV = "MANN_FAULT"
KNOWN_FAULTS = ("kill_at_step", "kill_in_save", "nan_at_step", "kill_at_iteration")


def planned_faults() -> dict[str, int]:
    """The faults ``MANN_FAULT`` asks for, e.g. ``{"kill_at_step": 5}``.

    Raises:
        ValueError: An entry is not ``name=integer`` or the name is unknown.
    """
    text = os.environ.get(FAULT_ENV, "").strip()
    faults: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = entry.partition("=")
        if name not in KNOWN_FAULTS or not value.strip().isdigit():
            raise ValueError(
                f"{FAULT_ENV}: cannot read {entry!r}; use name=integer with a name among "
                f"{', '.join(KNOWN_FAULTS)}."
            )
        faults[name] = int(value)
    return faults


def fault(name: str) -> int | None:
    """The value of one planned fault, or ``None``."""
    return planned_faults().get(name)


def kill_now(reason: str) -> None:
    """SIGKILL this process (no clean-up, no ``finally``), after saying why on stderr."""
    sys.stderr.write(f"{FAULT_ENV}: killing the process {reason}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
