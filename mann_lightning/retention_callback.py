"""``BindingRetentionCallback``: binding retention of the model at test end (and in ``mann fit``).

Measures :func:`~mann_lightning.retention.binding_retention` on label-consistent streams of the
data module's held-out characters (upright, unjittered) and writes ``binding_retention.json``
and ``binding_retention.png`` (accuracy against the gap and against the interleaved classes)
next to the run's logs; with a ``WandbLogger`` the figure is also logged as
``retention/binding`` and the accuracy on repeated classes as ``retention/accuracy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from .retention import Revisit, binding_retention
from .retention_bins import BindingRetention, RetentionBin
from .strict_json import dumps


class BindingRetentionCallback(Callback):
    """Measure binding retention at test end and, optionally, every n validation epochs.

    Args:
        num_classes: Classes ``K`` per stream; default: the data module's ``num_classes``
            (one-hot labels allow at most the model's outputs, strings up to 3125).
        steps: Stream length ``T``.
        batch: Streams measured (each its own classes, labels and order).
        seed: Seed of the streams (the same streams at every measurement).
        revisit: ``"recency"`` (gaps of many lengths) or ``"uniform"``.
        alpha: Exponent of the ``"recency"`` distribution.
        chunk: Steps per forward call; the state is carried (detached) between calls.
        every_n_epochs: Also measure after every n-th validation of ``mann fit`` (0: never).
        filename: Stem of the JSON and PNG files in the run's log folder.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        steps: int = 1000,
        batch: int = 16,
        seed: int = 0,
        revisit: Revisit = "recency",
        alpha: float = 1.0,
        chunk: int = 100,
        every_n_epochs: int = 0,
        filename: str = "binding_retention",
    ) -> None:
        if steps < 2 or batch < 1 or chunk < 1 or every_n_epochs < 0:
            raise ValueError(
                "need steps >= 2, batch >= 1, chunk >= 1 and every_n_epochs >= 0; got "
                f"{steps}, {batch}, {chunk}, {every_n_epochs}."
            )
        self.num_classes, self.steps, self.batch, self.seed = num_classes, steps, batch, seed
        self.revisit, self.alpha, self.chunk = revisit, alpha, chunk
        self.every_n_epochs, self.filename = every_n_epochs, filename
        self.evaluations: list[dict[str, Any]] = []

    def measure(self, data: Any, model: Any) -> BindingRetention:
        """Binding retention of ``model`` (a ``MANN``) on ``data``'s held-out characters."""
        if getattr(data, "_images", None) is None:
            data.to_device(next(model.parameters()).device)
        held_out = getattr(data, "held_out_classes", None)
        classes = held_out() if held_out is not None else None
        if classes is None:
            raise ValueError(
                "BindingRetentionCallback needs a data module holding Omniglot images and "
                f"held-out classes (OmniglotEpisodes), got {type(data).__name__}."
            )
        encoding = data.label_encoding
        return binding_retention(
            model, data._images, classes.characters, encoding, self.steps, self.batch,
            self.seed, self.num_classes or data.num_classes,
            num_labels=model.num_outputs if encoding == "onehot" else None,
            revisit=self.revisit, alpha=self.alpha, chunk=self.chunk,
        )  # fmt: skip

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        n = self.every_n_epochs
        if not n or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if trainer.current_epoch % n == 0:
            self._run(trainer, pl_module, "validation")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._run(trainer, pl_module, "test")

    def _run(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.global_rank != 0:
            return
        result = self.measure(trainer.datamodule, pl_module.model)  # type: ignore[attr-defined]
        step = trainer.global_step
        result.extra.update(stage=stage, step=step, epoch=trainer.current_epoch)
        self.evaluations = [
            e for e in self.evaluations if (e["stage"], e["step"]) != (stage, step)
        ] + [result.to_dict()]
        folder = Path(pl_module.results_dir())  # type: ignore[attr-defined]
        folder.mkdir(parents=True, exist_ok=True)
        json_path = folder / f"{self.filename}.json"
        json_path.write_text(dumps({"evaluations": self.evaluations}))
        png = draw_retention(result, folder / f"{self.filename}.png")
        acc = result.accuracy
        rank_zero_info(
            f"Binding retention ({stage}, step {step}): accuracy on repeated classes "
            f"{'n/a' if acc is None else f'{acc:.3f}'}; written to {json_path} and {png.name}"
        )
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                if acc is not None:
                    logger.log_metrics({"retention/accuracy": acc}, step=step)
                logger.log_image(key="retention/binding", images=[str(png)], step=step)

    def state_dict(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.evaluations = list(state_dict.get("evaluations", []))


def draw_retention(result: BindingRetention, path: Path) -> Path:
    """Save accuracy against the gap and against the interleaved classes as a two-panel PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    panels = (
        (result.by_gap, "gap (steps since the class was last shown)"),
        (result.by_interleaved, "other classes shown in between"),
    )
    for ax, (bins, xlabel) in zip(axes, panels, strict=True):
        shown = [b for b in bins if b.count]
        ax.plot(range(len(shown)), [b.accuracy for b in shown], marker="o")
        ax.set_xticks(range(len(shown)), [_label(b) for b in shown], rotation=45)
        for i, b in enumerate(shown):
            ax.annotate(str(b.count), (i, b.accuracy or 0.0), fontsize=7, ha="center",
                        xytext=(0, 5), textcoords="offset points")  # fmt: skip
        if result.first_accuracy is not None:
            ax.axhline(result.first_accuracy, color="grey", ls="--", lw=1, label="first showing")
            ax.legend(loc="lower left", fontsize=8)
        ax.set(xlabel=xlabel, ylabel="accuracy", ylim=(0, 1.05))
    c = result.config
    fig.suptitle(
        f"Binding retention: K={c.get('num_classes')} {c.get('encoding')} labels, "
        f"{c.get('batch')} streams x {c.get('steps')} steps, {c.get('revisit')} revisits "
        "(numbers: steps per bin)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _label(b: RetentionBin) -> str:
    return str(b.low) if b.low == b.high else f"{b.low}-{b.high}"
