"""Weights & Biases logging of stream runs: Avalanche's ``WandBLogger``, fixed for wandb 0.31.

:class:`StreamWandBLogger` subclasses ``avalanche.logging.WandBLogger`` (Avalanche 0.6.0) and
replaces what does not work with the installed wandb, without forking Avalanche:

* the stock logger refers to ``wandb.viz.CustomChart``, which wandb 0.31 no longer has, so it
  fails on the first metric (ContinualAI/avalanche#1674): values are converted here instead;
* the stock logger logs every tensor as a histogram: here a one-element tensor is a number,
  a vector or matrix a ``wandb.Table``, anything larger a histogram;
* the stock logger logs each metric with ``step=x_plot`` (the training iteration), which goes
  backwards between calls and after a resume, and W&B drops such points; here every call of
  :meth:`log_metrics` is one row at the next step of a counter that only increases, and
  ``trainer/iterations`` (the strategy's training iteration) is the charts' x axis;
* the stock logger calls ``wandb.init`` in its constructor, before the run folder and a saved
  run id are known; here the W&B run starts in :meth:`bind_run`, which
  :class:`~continual.runner.StreamRunner` calls with the run state's ``extra`` dict: the run id
  and the last step are kept there (so in ``checkpoint.pt``), and a resumed stream run continues
  the same W&B run (``resume="allow"``) after the last step it logged. The last step is also
  written to ``wandb-run.json`` in the run folder after every row, so steps logged after the
  last checkpoint (before a kill) are not reused. W&B writes rows through its background
  service in batches, so a ``kill -9`` can lose the last rows from the offline file: they
  stay a gap in the W&B run (docs/interference.md, "Resume").

Offline by default (``mode`` ``None`` means ``$WANDB_MODE``, else ``offline``; no account
needed, ``wandb sync <run_dir>/wandb/offline-run-*`` uploads later). Add it in YAML::

    loggers:
      - class_path: continual.wandb_logger.StreamWandBLogger
        init_args: {project_name: mann-continual}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from avalanche.evaluation.metric_results import AlternativeValues, TensorImage
from avalanche.logging import WandBLogger
from matplotlib.figure import Figure
from PIL.Image import Image
from torch import Tensor

from mann_lightning.errors import UserError

#: Side file in the run folder: the W&B run id and the last step logged.
SIDE_FILE = "wandb-run.json"
#: The x axis of every chart: the strategy's training iteration of the logged values.
X_AXIS = "trainer/iterations"


class WandBSettingsError(UserError, ValueError):
    """A W&B setting ``wandb.init`` would refuse: a bad value, told before the run starts."""


MODES = ("online", "offline", "disabled", "shared", "dryrun", "run")  # what wandb.init takes
PROJECT_FORBIDDEN = "/\\#?%:"


class StreamWandBLogger(WandBLogger):
    """Avalanche's W&B logger for ``mann-continual``: wandb 0.31, tables, resumable steps.

    Args:
        project_name: W&B project.
        run_name: Display name of the W&B run; default: the run folder's name.
        mode: ``offline``, ``online`` or ``disabled``; ``None``: ``$WANDB_MODE``, else offline.
        dir: Folder for W&B's files; default: the run folder (``<run_dir>/wandb``).
        log_artifacts: Log ``WeightCheckpoint`` metrics as W&B artifacts (as the stock logger).
        params: More arguments of ``wandb.init`` (e.g. ``tags``, ``group``, ``entity``).
    """

    def __init__(
        self,
        project_name: str = "mann-continual",
        run_name: str | None = None,
        mode: str | None = None,
        dir: str | None = None,  # noqa: A002 (the stock logger's name)
        log_artifacts: bool = False,
        params: dict[str, Any] | None = None,
    ) -> None:
        check_wandb_settings(project_name, mode)
        super(WandBLogger, self).__init__()  # BaseLogger: the stock __init__ starts W&B
        self.import_wandb()
        self.project_name, self.run_name, self.mode = project_name, run_name, mode
        self.log_artifacts, self.path, self.uri = log_artifacts, "Checkpoints", None
        self.sync_tfboard, self.save_code, self.config = False, False, None
        self.dir, self.params = dir, params
        self.args_parse()
        self.step, self.exp_count = 0, 0
        self.run: Any = None
        self.record: dict[str, Any] = {}
        self.run_dir: Path | None = None

    def before_run(self) -> None:
        """The stock hook that starts W&B (from ``__setstate__``): start if not started."""
        self.start()

    def bind_run(self, extra: dict[str, Any], run_dir: Path) -> None:
        """Start (or continue) the W&B run of the stream run in ``run_dir``.

        Args:
            extra: The run state's ``extra`` dict; ``extra["wandb"]`` holds the run id and the
                last step, and is updated in place as rows are logged.
            run_dir: The stream run's folder (W&B's files go to ``<run_dir>/wandb``).
        """
        self.run_dir = Path(run_dir)
        self.record = extra.setdefault("wandb", {})
        side = self.run_dir / SIDE_FILE
        if "id" in self.record and side.is_file():
            logged = json.loads(side.read_text())
            if logged.get("id") == self.record["id"]:
                self.record["step"] = max(self.record.get("step", -1), logged.get("step", -1))
        self.start(self.record.get("id"))

    def start(self, run_id: str | None = None) -> None:
        """``wandb.init``; with ``run_id`` it continues that run after its last step."""
        if self.run is not None:
            return
        if self.wandb is None:
            self.import_wandb()
        kwargs = {k: v for k, v in self.init_kwargs.items() if v is not None}
        kwargs.setdefault("mode", self.mode or os.environ.get("WANDB_MODE", "offline"))
        check_wandb_mode(kwargs["mode"], "from $WANDB_MODE or params")
        folder = Path(self.dir) if self.dir else self.run_dir
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            kwargs.setdefault("dir", str(folder))
        if self.run_dir is not None:
            kwargs.setdefault("name", self.run_name or self.run_dir.name)
            config = self.run_dir / "config.yaml"
            if "config" not in kwargs and config.is_file():
                import yaml

                kwargs["config"] = yaml.safe_load(config.read_text())
        if run_id is not None:
            kwargs.update(id=run_id, resume="allow")
        self.run = self.wandb.init(**kwargs)  # its UsageError is a user error (errors.py)
        self.run.define_metric(X_AXIS)
        self.run.define_metric("*", step_metric=X_AXIS)
        self.step = self.record.get("step", -1) + 1
        self.record["id"] = self.run.id

    def convert(self, value: Any) -> Any:
        """A metric value as W&B takes it; ``None`` for a type it cannot show."""
        wandb = self.wandb
        if isinstance(value, AlternativeValues):
            value = value.best_supported_value(Image, Tensor, TensorImage, Figure, float, int)
        if isinstance(value, bool | int | float):
            return float(value)
        if isinstance(value, Tensor):
            value = value.detach().cpu()
            if value.numel() == 1:
                return float(value.item())
            if value.dim() in (1, 2):
                rows = value.reshape(-1, value.shape[-1]).tolist()
                return wandb.Table(columns=[str(j) for j in range(len(rows[0]))], data=rows)
            return wandb.Histogram(np_histogram=np.histogram(value.float().view(-1).numpy()))
        if isinstance(value, Image | Figure):
            return wandb.Image(value)
        if isinstance(value, TensorImage):
            return wandb.Image(np.array(value))
        return None

    def log_metrics(self, metric_values: list[Any]) -> None:
        """One row per call (one Avalanche callback), at the next step."""
        row: dict[str, Any] = {}
        iterations = 0
        for metric in metric_values:
            values = (
                metric.value.items() if isinstance(metric.value, dict) else [(None, metric.value)]
            )
            for key, value in values:
                name = metric.name if key is None else f"{metric.name}/{key}"
                if name.startswith("WeightCheckpoint"):
                    if self.log_artifacts:
                        self._log_checkpoint(name, value, metric.x_plot)
                    continue
                converted = self.convert(value)
                if converted is not None:
                    row[name] = converted
            iterations = max(iterations, int(metric.x_plot))
        if row:
            self.log_row(row, iterations)

    def log_single_metric(self, name: str, value: Any, x_plot: int) -> None:
        """One metric as its own row (the stock entry point)."""
        converted = self.convert(value)
        if converted is not None:
            self.log_row({name: converted}, x_plot)

    def log_row(self, row: dict[str, Any], iterations: int) -> None:
        """Log ``row`` at the next step, with ``trainer/iterations`` as its x value."""
        self.start()
        self.run.log({**row, X_AXIS: iterations}, step=self.step)
        self.record["step"] = self.step
        self.step += 1
        if self.run_dir is not None:
            side = self.run_dir / SIDE_FILE
            temporary = side.with_name(f".{SIDE_FILE}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps({"id": self.run.id, "step": self.record["step"]}))
            os.replace(temporary, side)

    def after_training_exp(self, strategy: Any, metric_values: list[Any], **kwargs: Any) -> None:
        """Log the experience just trained (the stock one logs every metric a second time)."""
        index = strategy.experience.current_experience
        self.log_row({"TrainingExperience": index}, strategy.clock.train_iterations)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["run"] = None
        return state

    def close(self) -> None:
        """Finish the W&B run (a later :meth:`start` begins or resumes one)."""
        if self.run is not None:
            self.run.finish()
            self.run = None


def check_wandb_settings(project_name: str, mode: str | None) -> None:
    """Refuse a mode or project name ``wandb.init`` would refuse later, with a traceback."""
    if mode is not None:
        check_wandb_mode(mode, "the logger's mode")
    found = sorted(set(PROJECT_FORBIDDEN) & set(project_name))
    if not project_name or len(project_name) > 128 or found:
        raise ValueError(
            f"StreamWandBLogger: project_name {project_name!r} is not a valid W&B project: "
            f"1 to 128 characters, none of {' '.join(PROJECT_FORBIDDEN)}"
            + (f" (found {' '.join(found)})." if found else ".")
        )


def check_wandb_mode(mode: str, where: str) -> None:
    """A :class:`WandBSettingsError` for a mode ``wandb.init`` refuses (with a traceback)."""
    if mode not in MODES:
        raise WandBSettingsError(
            f"W&B mode {mode!r} ({where}) is not valid: StreamWandBLogger: mode must be "
            "'offline', 'online' (after `wandb login`) or 'disabled', or null for $WANDB_MODE "
            "(else offline)."
        )
