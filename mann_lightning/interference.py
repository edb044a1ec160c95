"""Proactive interference: accuracy with the memory pre-loaded by ``k`` earlier episodes.

Santoro et al. (2016, Fig. 3) wipe the memory between episodes; without wiping, what earlier
episodes wrote interferes with new bindings. :func:`preloaded_accuracy` measures that on fixed
evaluation episodes: for each ``k`` in ``ks`` it runs ``k`` *other* episodes through the MANN,
carrying the whole recurrent state (controller and memory, row ``b`` into row ``b``), then the
evaluated episode from that state, and counts accuracy per presentation. ``k = 0`` is the
ordinary evaluation from an empty memory. The preloading episodes are the same for every
``k`` (those of ``k = 4`` are the first four of ``k = 8``), so a batch costs ``max(ks)``
preloading passes plus one evaluated pass per ``k``.

:class:`ProactiveInterferenceCallback` runs it during ``mann fit`` (docs/interference.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from .data.episodes import EpisodeBatch
from .interference_figure import draw_interference
from .metrics import InstanceAccuracy
from .strict_json import dumps

#: The numbers of pre-loading episodes of docs/interference.md.
DEFAULT_KS: tuple[int, ...] = (0, 1, 2, 4, 8, 16, 32)

#: ``preload(j)``: pre-loading episode batch ``j`` (``j = 0, 1, ...``).
Preload = Callable[[int], EpisodeBatch] | Sequence[EpisodeBatch]


def predict_labels(logits: Tensor, targets: Tensor) -> Tensor:
    """Predicted labels shaped like ``targets``: one-hot argmax, or five 5-way characters."""
    if targets.dim() == logits.dim():  # strings: targets [B, T, 5], logits [B, T, 25]
        return logits.unflatten(-1, (targets.shape[-1], -1)).argmax(-1)
    return logits.argmax(-1)


def _preload_fn(preload: Preload | None, batches: Sequence[EpisodeBatch], index: int):
    if preload is None:  # the other evaluation batches, never the evaluated one
        others = [b for i, b in enumerate(batches) if i != index]
        return lambda j: others[j]
    if callable(preload):
        return preload
    return lambda j: preload[j]  # type: ignore[index]


@torch.no_grad()
def preloaded_accuracy(
    model: Callable[..., tuple[Tensor, Any]],
    batches: Sequence[EpisodeBatch],
    ks: Sequence[int] = DEFAULT_KS,
    preload: Preload | None = None,
    max_instances: int = 10,
) -> dict[int, list[float]]:
    """Accuracy per presentation with the memory pre-loaded by ``k`` episodes, per ``k``.

    Args:
        model: A :class:`~mann_lightning.model.MANN` (or anything called as
            ``model(inputs, prev_labels, state) -> (logits, final_state)``).
        batches: The fixed evaluation batches (:class:`~.data.episodes.EpisodeBatch`).
        ks: Numbers of pre-loading episodes (distinct, ``>= 0``).
        preload: Pre-loading batches: ``preload(j)`` or a sequence, the same for every
            evaluated batch; each needs at least as many episodes as an evaluated batch (extra
            rows are dropped) and may have any length. ``None``: the other evaluation batches,
            in order (then ``max(ks)`` must be below ``len(batches)``).
        max_instances: Presentations counted.

    Returns:
        ``{k: [accuracy at the 1st, 2nd, ... presentation]}`` over all batches, NaN for a
        presentation never reached.
    """
    ks = sorted(set(int(k) for k in ks))
    if not ks or ks[0] < 0:
        raise ValueError(f"ks must be non-negative numbers of episodes, got {ks}.")
    if not batches:
        raise ValueError("preloaded_accuracy needs at least one evaluation batch.")
    if preload is None and ks[-1] >= len(batches):
        raise ValueError(
            f"k={ks[-1]} pre-loading episodes taken from the other evaluation batches needs "
            f"more than {ks[-1]} batches, got {len(batches)}; pass preload=..."
        )
    counters = {k: InstanceAccuracy(max_instances) for k in ks}
    for index, batch in enumerate(batches):
        draw, rows, state = _preload_fn(preload, batches, index), batch.inputs.shape[0], None
        for j in range(ks[-1] + 1):
            if j in counters:
                logits, _ = model(batch.inputs, batch.prev_labels, state)
                preds = predict_labels(logits, batch.targets).cpu()
                counters[j].update(preds, batch.targets.cpu(), batch.instances.cpu())
            if j < ks[-1]:
                other = draw(j)
                if other.inputs.shape[0] < rows:
                    raise ValueError(
                        f"Pre-loading batch {j} has {other.inputs.shape[0]} episodes, the "
                        f"evaluated batch {rows}: each row needs its own pre-loading episode."
                    )
                _, state = model(other.inputs[:rows], other.prev_labels[:rows], state)
    return {k: [float(v) for v in counter.compute().tolist()] for k, counter in counters.items()}


def interference_metrics(result: dict[int, list[float]], prefix: str = "interference") -> dict:
    """``{"interference/k4/acc_inst_2": value}`` for every finite value of a result."""
    return {
        f"{prefix}/k{k}/acc_inst_{i}": value
        for k, values in result.items()
        for i, value in enumerate(values, start=1)
        if not math.isnan(value)
    }


class ProactiveInterferenceCallback(Callback):
    """During ``mann fit``, every ``every_n_epochs`` validations, measure proactive interference.

    Evaluated episodes are validation batches ``0..num_batches-1`` of the data module (the
    first fixed validation episodes, at the current episode shape); the pre-loading episodes
    are validation-split batches ``preload_offset + j`` of the same seeded stream (held-out
    classes, never among the fixed validation batches while ``val_batches < preload_offset``).
    Logs ``interference/k{k}/acc_inst_{i}`` to every logger at the global step, and writes
    ``<log dir>/interference.json``: ``{"ks", "evaluations": [{"step", "epoch",
    "num_classes", "accuracy": {k: [...]}}]}`` and, next to it, ``interference.png`` (accuracy
    at the 2nd and the 10th-or-last presentation against ``k``, one line per evaluation;
    :func:`~mann_lightning.interference_figure.draw_interference`), also logged to a
    ``WandbLogger`` as the image ``interference/proactive``.

    Args:
        ks: Numbers of pre-loading episodes.
        num_batches: Evaluated batches per measurement.
        every_n_epochs: How often, in validation epochs.
        preload_offset: Index of the first pre-loading batch in the validation stream.
        filename: JSON file in the run's log folder.
        max_instances: Presentations counted.
    """

    def __init__(
        self,
        ks: Sequence[int] = DEFAULT_KS,
        num_batches: int = 1,
        every_n_epochs: int = 1,
        preload_offset: int = 1_000_000,
        filename: str = "interference.json",
        max_instances: int = 10,
    ) -> None:
        if num_batches < 1 or every_n_epochs < 1:
            raise ValueError(
                f"num_batches and every_n_epochs must be >= 1, got {num_batches}, {every_n_epochs}."
            )
        self.ks, self.num_batches, self.every_n_epochs = tuple(ks), num_batches, every_n_epochs
        self.preload_offset, self.filename = preload_offset, filename
        self.max_instances = max_instances
        self.evaluations: list[dict[str, Any]] = []

    def measure(self, data: Any, model: Any) -> dict[int, list[float]]:
        """:func:`preloaded_accuracy` of ``model`` (a MANN) on ``data``'s validation batches."""
        if not hasattr(data, "batch"):
            raise ValueError(
                "ProactiveInterferenceCallback needs an episode data module with batch(stage, "
                f"index) (e.g. OmniglotEpisodes), got {type(data).__name__}."
            )
        batches = [data.batch("val", i) for i in range(self.num_batches)]
        return preloaded_accuracy(
            model, batches, self.ks, lambda j: data.batch("val", self.preload_offset + j),
            self.max_instances,
        )  # fmt: skip

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = trainer.current_epoch % self.every_n_epochs == 0
        if trainer.sanity_checking or trainer.state.fn != "fit" or not due:
            return
        if trainer.global_rank != 0:
            return
        result = self.measure(trainer.datamodule, pl_module.model)  # type: ignore[attr-defined]
        step = trainer.global_step
        for logger in trainer.loggers:
            logger.log_metrics(interference_metrics(result), step=step)
        self.evaluations = [e for e in self.evaluations if e["step"] < step]
        self.evaluations.append(
            {
                "step": step,
                "epoch": trainer.current_epoch,
                "num_classes": getattr(trainer.datamodule, "num_classes", None),
                "accuracy": {str(k): [_json(v) for v in vs] for k, vs in result.items()},
            }
        )
        path = Path(pl_module.results_dir()) / self.filename  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"ks": sorted(set(self.ks)), "evaluations": self.evaluations}
        path.write_text(dumps(payload))
        png = draw_interference(self.evaluations, path.with_suffix(".png"))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="interference/proactive", images=[str(png)], step=step)

    def state_dict(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.evaluations = list(state_dict.get("evaluations", []))


def _json(value: float) -> float | None:
    return None if math.isnan(value) else value
