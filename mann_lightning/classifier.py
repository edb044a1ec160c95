"""The paper's Omniglot task: few-shot classification of episodes (Tables 1 and 2)."""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

from .episode_metrics import EpisodeAccuracy, bootstrap_interval, paper_intervals
from .metrics import InstanceAccuracy, paper_table
from .module import MANNModule
from .report_table import single_run_markdown
from .settings_checks import merge_task_value
from .value_checks import is_positive_int


class MANNClassifier(MANNModule):
    """Few-shot classification of episodes (the paper's Omniglot task).

    Args:
        num_classes: Classes per episode ``N``; taken from the data module when None.
        label_encoding: ``"onehot"`` (N outputs) or ``"string"`` (five characters of
            five values: 25 outputs read as five softmaxes); from the data when None.
        input_size: Features of ``x_t`` (400 for 20x20 images); from the data when None.
        task: Filled in by the CLI from ``data.task``; explicit arguments must agree.
        max_instances: Presentations tracked by the accuracy metric (paper: 10).
        max_classes: Fixed one-hot label width, so that ``N`` can grow up to it under one model
            (a curriculum); from the data when None there, else the width is ``num_classes``.
            String labels are 25 wide regardless (``max_classes`` only bounds ``N``).
        **kwargs: Memory, controller and optimisation arguments of :class:`MANNModule`.
    """

    STRING_CHARS = 5
    STRING_VALUES = 5

    def __init__(
        self,
        num_classes: int | None = None,
        label_encoding: Literal["onehot", "string"] | None = None,
        input_size: int | None = None,
        task: dict[str, Any] | None = None,
        max_instances: int = 10,
        max_classes: int | None = None,
        **kwargs: Any,
    ) -> None:
        task = dict(task or {})
        num_classes = merge_task_value("num_classes", num_classes, task, default=None)
        label_encoding = merge_task_value("label_encoding", label_encoding, task, default="onehot")
        input_size = merge_task_value("input_size", input_size, task, default=400)
        max_classes = merge_task_value("max_classes", max_classes, task, default=None)
        if num_classes is None or not is_positive_int(num_classes) or num_classes < 2:
            raise ValueError(
                f"MANNClassifier: num_classes must be an integer >= 2 (classes per episode), got "
                f"{num_classes!r}; set model.init_args.num_classes or use a data module that "
                "provides it."
            )
        if max_classes is not None and not is_positive_int(max_classes):
            raise ValueError(
                f"MANNClassifier: max_classes must be an integer or None, got {max_classes!r}."
            )
        if max_classes is not None and max_classes < num_classes:
            raise ValueError(
                f"MANNClassifier: max_classes={max_classes} is below num_classes={num_classes}."
            )
        if label_encoding == "onehot":
            num_outputs = num_classes if max_classes is None else max_classes
        elif label_encoding == "string":
            if max(num_classes, max_classes or 0) > self.STRING_VALUES**self.STRING_CHARS:
                raise ValueError(
                    f"string labels name at most 3125 classes, got {max(num_classes, max_classes or 0)}."
                )
            num_outputs = self.STRING_CHARS * self.STRING_VALUES
        else:
            raise ValueError(
                f"Unknown label_encoding {label_encoding!r}: use 'onehot' or 'string'."
            )
        super().__init__(
            input_size=input_size, num_outputs=num_outputs, label_size=num_outputs, **kwargs
        )
        self.save_hyperparameters()
        self.save_specs_in_hparams()
        self.store_resolved_hparams(
            num_classes=num_classes,
            label_encoding=label_encoding,
            input_size=input_size,
            max_classes=max_classes,
        )
        self.num_classes = num_classes
        self.max_classes = max_classes
        self.label_encoding = label_encoding
        self.val_accuracy = InstanceAccuracy(max_instances)
        self.test_accuracy = InstanceAccuracy(max_instances)
        self.test_episodes = EpisodeAccuracy(max_instances)  # bootstrap intervals (test only)

    def logits(self, outputs: Tensor) -> Tensor:
        """``[B, T, N]`` for one-hot labels, ``[B, T, 5, 5]`` (chars x values) for strings."""
        if self.label_encoding == "string":
            return outputs.unflatten(-1, (self.STRING_CHARS, self.STRING_VALUES))
        return outputs

    def predict_labels(self, outputs: Tensor) -> Tensor:
        """Predicted labels, shaped like the targets."""
        return self.logits(outputs).argmax(-1)

    def loss(self, outputs: Tensor, batch: Any) -> Tensor:
        """Cross-entropy over all steps; for strings, summed over the five characters."""
        logits = self.logits(outputs).float()
        if batch.targets.shape != logits.shape[:-1]:
            raise ValueError(
                f"MANNClassifier: targets {list(batch.targets.shape)} must be "
                f"{list(logits.shape[:-1])} ([batch, time]"
                + (", 5 characters" if self.label_encoding == "string" else "")
                + "), the outputs' steps; a [time, batch] tensor needs .transpose(0, 1)."
            )
        ce = nn.functional.cross_entropy(
            logits.flatten(0, -2), batch.targets.flatten(), reduction="none"
        )
        if self.label_encoding == "string":
            return ce.view(-1, self.STRING_CHARS).sum(-1).mean()
        return ce.mean()

    def log_train_metrics(self, outputs: Tensor, batch: Any) -> None:
        correct = self.predict_labels(outputs) == batch.targets
        if correct.dim() == 3:
            correct = correct.all(-1)
        second = batch.instances == 2
        acc = (correct & second).sum() / second.sum().clamp_min(1)
        self.log("train/acc_inst_2", acc, prog_bar=True, batch_size=batch.inputs.shape[0])

    def update_metrics(self, stage: str, outputs: Tensor, batch: Any) -> None:
        metric = self.val_accuracy if stage == "val" else self.test_accuracy
        preds = self.predict_labels(outputs)
        metric.update(preds, batch.targets, batch.instances)
        if stage == "test":
            self.test_episodes.update(preds, batch.targets, batch.instances)

    def report(self, stage: str) -> None:
        metric = self.val_accuracy if stage == "val" else self.test_accuracy
        accuracy = metric.compute()
        with metric.sync_context():  # step counts summed over all processes
            steps = metric.total.tolist()
        for k, value in enumerate(accuracy, start=1):
            self.log(f"{stage}/acc_inst_{k}", value.float(), prog_bar=(k == 2 and stage == "val"))
        metric.reset()
        if stage != "test":
            return
        correct, total = self.test_episodes.compute()  # every process's episodes
        self.test_episodes.reset()
        if not self.trainer.sanity_checking:
            interval = bootstrap_interval(correct, total)
            payload = {
                "stage": stage,
                "model": self.describe(),
                "accuracy_percent": paper_table(accuracy),
                "ci95_percent": paper_intervals(interval),
                "episodes": int(correct.shape[0]),
                "checkpoint": self.checkpoint_entry(),
                "per_instance": [float(a) for a in accuracy.tolist()],
                "steps_per_instance": steps,
            }
            markdown = single_run_markdown(self.describe(), payload)
            self.write_results("test_results", payload, markdown)

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        outputs, _ = self(batch.inputs, batch.prev_labels)
        return {
            "preds": self.predict_labels(outputs),
            "targets": batch.targets,
            "instances": batch.instances,
        }
