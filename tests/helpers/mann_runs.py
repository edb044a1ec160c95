"""Run the real ``mann`` command in a subprocess, on a tiny config that trains in seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mann_lightning.error_report import TRACEBACK_HINT
from mann_lightning.errors import TRACEBACK_ENV

#: A MANN small enough that a few training steps take well under a second on a CPU.
TINY_CONFIG = """\
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  max_steps: {max_steps}
  log_every_n_steps: 1
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
  logger:
    class_path: lightning.pytorch.loggers.CSVLogger
    init_args: {{save_dir: runs, name: tiny}}
  callbacks:
    - class_path: mann_lightning.checkpointing.SafeModelCheckpoint
      init_args:
        dirpath: runs/tiny/checkpoints
        filename: best
        monitor: val/acc_inst_2
        mode: max
        save_last: true
        enable_version_counter: false
        last_every_n_steps: 2
    - class_path: mann_lightning.guards.NonFiniteGuard
      init_args: {{action: stop}}
model:
  class_path: mann_lightning.classifier.MANNClassifier
  init_args:
    memory:
      class_path: mann_lightning.memory.LRUAMemory
      init_args: {{memory_size: 16, word_size: 8, num_reads: 1}}
    controller: lstm
    controller_size: 32
    optimizer: adam
    lr: 0.01
data:
  class_path: mann_lightning.data.OmniglotEpisodes
  init_args:
    image_size: 10
    num_classes: 3
    samples_per_class: 3
    batch_size: 4
    train_batches_per_epoch: 5
    val_batches: 1
    test_batches: 1
"""


def write_tiny_config(folder: Path, max_steps: int = 8) -> Path:
    """Write ``tiny.yaml`` into ``folder`` (runs go to ``folder/runs``)."""
    path = folder / "tiny.yaml"
    path.write_text(TINY_CONFIG.format(max_steps=max_steps))
    return path


def mann(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m mann_lightning *args`` in ``cwd``; tracebacks not forced on."""
    environment = dict(os.environ)
    environment.pop(TRACEBACK_ENV, None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mann_lightning", *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def mann_in_process(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, warnings_shown: bool = False
) -> subprocess.CompletedProcess[str]:
    """What :func:`mann` returns, from ``main()`` in this process: no 7-second interpreter start.

    Status 2 for a user error, 1 with the traceback on stderr for any other exception; the
    working folder, the environment, warning filters and torch's thread count are restored.
    Warnings are dropped unless ``warnings_shown``, which appends each to stderr at the end.
    """
    import contextlib
    import io
    import traceback
    import warnings

    import torch

    from mann_lightning.cli import main

    out, err, code = io.StringIO(), io.StringIO(), 0
    saved_env, saved_cwd, threads = dict(os.environ), os.getcwd(), torch.get_num_threads()
    os.environ.pop(TRACEBACK_ENV, None)
    os.environ.update(env or {})
    os.chdir(cwd)
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("default" if warnings_shown else "ignore")
            try:
                main([str(arg) for arg in args])
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            except Exception:
                traceback.print_exc()
                code = 1
            for warning in caught:
                err.write(warnings.formatwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                ))  # fmt: skip
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def error_message(result: subprocess.CompletedProcess[str]) -> str:
    """Check a short user error (status 2, no traceback, hint last) and return its message."""
    stderr = result.stderr
    assert result.returncode == 2, f"status {result.returncode}\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1] == TRACEBACK_HINT, stderr[-3000:]
    start = max(i for i, line in enumerate(lines) if line.startswith("mann: error: "))
    message = lines[start:-1]
    assert 1 <= len(message) <= 6, stderr
    assert len(lines) <= 20, f"{len(lines)} lines of output:\n{stderr}"
    return "\n".join(message)
