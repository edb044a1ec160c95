"""Lightning layer: the MANN training logic every episode task shares.

:class:`MANNModule` holds what every task shares (building the :class:`MANN`, optimiser,
clipping, carrying memory across episodes, writing result tables); a task subclass adds its
output head, loss and metrics: :class:`~mann_lightning.classifier.MANNClassifier` (the
paper's Omniglot task, Tables 1 and 2) and
:class:`~mann_lightning.regression.MANNRegressor` (Gaussian-process regression).

Task sizes come from the data module through the CLI (``task`` is linked from
``data.task``), or are given directly when the module is built in Python.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from lightning import LightningModule
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from .compilation import CompileChoice, auto_compile_mode, check_compile_mode
from .controller import Controller
from .memory import Memory
from .model import MANN, MANNState
from .optimisation import OptimisationHooks, check_settings
from .persistence import MemoryCarry, WipePolicy, gather_carried, own_carried, resolve_wipe
from .results_output import ResultsOutput
from .run_clock import checkpoint_clock
from .specs import spec_of

MemoryChoice = Memory | Literal["lrua", "ntm", "sparse_lrua", "none"] | dict | None
ControllerChoice = Controller | Literal["lstm", "feedforward"] | dict


class MANNModule(ResultsOutput, OptimisationHooks, LightningModule):
    """Shared training logic for MANN episode tasks.

    Args:
        input_size: Features of ``x_t``.
        num_outputs: Output features per step.
        label_size: Features of the previous-label input ``y_{t-1}``.
        memory: ``LRUAMemory(...)``/``NTMMemory(...)`` (``class_path`` in a config), a name
            (``"lrua"``, ``"ntm"``, ``"sparse_lrua"``: paper sizes) or ``"none"``/``None`` for no
            memory.
        controller: ``"lstm"``, ``"feedforward"`` or a ``Controller`` (``class_path``).
        controller_size: Units of a controller given by name (paper: 200).
        optimizer: ``"rmsprop"`` (default: the paper's, momentum 0.9, decay 0.95) or
            ``"adam"``.
        lr: Learning rate (default: the paper's 1e-4).
        weight_decay: L2 penalty of the optimiser.
        grad_clip_norm: Clip the gradient norm to this value unless the Trainer's
            ``gradient_clip_val`` is set; ``None`` disables.
        lr_schedule: ``"constant"`` (default, the paper) or ``"cosine"``: the learning rate
            falls from ``lr`` to 0 along a half cosine over the Trainer's ``max_steps``.
        warmup_steps: Steps of linear warm-up from 0 to ``lr`` before the schedule (0: none).
        wipe: When the memory (the whole recurrent state) is wiped during training:
            ``"episode"`` (every batch starts empty, the paper), ``"experience"`` (carried
            from batch to batch, wiped at the start of every training epoch) or ``"never"``
            (carried through the whole run). The carried state is detached between batches
            and saved in checkpoints. Evaluation always starts from an empty memory. See
            :mod:`mann_lightning.persistence`.
        persist_memory: Deprecated spelling of ``wipe``: ``True`` means ``wipe="never"``,
            ``False`` ``wipe="episode"``; ``None`` (default) leaves ``wipe`` in charge.
        compile: ``"none"``, ``"step"`` or ``"episode"``: ``torch.compile`` the training
            forward (:mod:`mann_lightning.compilation`, docs/performance.md); ``"auto"``
            (the paper configs): ``"episode"`` when training starts with at least 10,000
            steps planned on a CPU, else ``"none"``, said in one log line (a resumed run
            chooses as the run it continues, so resuming stays bit-identical).
    """

    def __init__(
        self,
        input_size: int,
        num_outputs: int,
        label_size: int,
        memory: MemoryChoice = "lrua",
        controller: ControllerChoice = "lstm",
        controller_size: int = 200,
        optimizer: Literal["adam", "rmsprop"] = "rmsprop",
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        grad_clip_norm: float | None = 10.0,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        warmup_steps: int = 0,
        wipe: WipePolicy = "episode",
        persist_memory: bool | None = None,
        compile: CompileChoice = "none",
    ) -> None:
        super().__init__()
        check_settings(optimizer, lr, lr_schedule, warmup_steps, weight_decay, grad_clip_norm)
        self.compile_choice = check_compile_mode(compile, allow_auto=True)
        self.model = MANN(
            input_size,
            num_outputs,
            controller=controller,  # type: ignore[arg-type]
            memory=memory,  # type: ignore[arg-type]
            label_size=label_size,
            controller_size=controller_size,
            compile="none" if compile == "auto" else compile,
        )
        self.optimizer_name = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip_norm = grad_clip_norm
        self.lr_schedule = lr_schedule
        self.warmup_steps = warmup_steps
        self.carry = MemoryCarry(resolve_wipe(wipe, persist_memory))

    @property
    def persist_memory(self) -> bool:
        """Whether the state is carried between training batches (deprecated; see ``wipe``)."""
        return self.carry.carries

    def save_specs_in_hparams(self) -> None:
        """Store memory/controller instances as ``class_path`` specs in ``hparams``.

        Called by subclasses after ``save_hyperparameters`` so that a checkpoint alone
        rebuilds the model (instances cannot be stored in a checkpoint safely).
        """
        for name, module in (("memory", self.model.memory), ("controller", self.model.controller)):
            if isinstance(self.hparams.get(name), nn.Module):
                self.hparams[name] = spec_of(module)

    def store_resolved_hparams(self, **values: Any) -> None:
        """Record task sizes resolved from ``task`` in the (initial) hparams, so they agree
        with the data module's hparams that Lightning merges for the loggers."""
        self.hparams.update(values)
        self._hparams_initial = copy.deepcopy(self._hparams)

    def describe(self) -> str:
        """A short model name for result tables, e.g. ``LSTM + LRUAMemory``."""
        controller = type(self.model.controller).__name__.removesuffix("Controller")
        memory = self.model.memory
        return f"{controller} + {type(memory).__name__}" if memory else f"{controller} (no memory)"

    # ------------------------------------------------------------------ task hooks
    def loss(self, outputs: Tensor, batch: Any) -> Tensor:
        """Training loss of a batch; implemented by the task."""
        raise NotImplementedError

    def update_metrics(self, stage: str, outputs: Tensor, batch: Any) -> None:
        """Accumulate validation/test metrics; implemented by the task."""

    def report(self, stage: str) -> None:
        """Log (and for test, print and write) the stage's metrics at epoch end."""

    # ------------------------------------------------------------------ steps
    def forward(
        self, inputs: Tensor, prev_labels: Tensor, state: MANNState | None = None
    ) -> tuple[Tensor, MANNState]:
        return self.model(inputs, prev_labels, state)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        inputs = batch.inputs
        state = self.carry.initial(
            inputs.shape[0],
            lambda size: self.model.initial_state(size, inputs.device, inputs.dtype),
        )
        outputs, final_state = self(inputs, batch.prev_labels, state)
        self.carry.keep(final_state)
        loss = self.loss(outputs, batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch.inputs.shape[0])
        self.log_train_metrics(outputs, batch)
        return loss

    def on_train_start(self) -> None:
        """Under ``compile="auto"``, choose compiled or eager for the run's planned steps.

        The whole run's steps, not those left: a resumed run makes the same choice as the
        run it continues, so it stays bit-identical to an uninterrupted one (compiled and
        eager steps differ in the last bits)."""
        if self.compile_choice != "auto":
            return
        memory = self.model.memory
        mode, why = auto_compile_mode(
            self.trainer.estimated_stepping_batches,
            self.device,
            compiles_well=memory is None or memory.compiles_well,
        )
        self.model.compile_mode = mode
        rank_zero_info(why)

    def on_train_epoch_start(self) -> None:
        """An epoch is ``mann fit``'s experience: wipe the carried memory under ``"experience"``."""
        self.carry.new_experience()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the carried memory (under DDP: every process's), so a resumed run continues
        from it. Lightning calls this on every rank, as the gathering needs."""
        checkpoint["carried_memory"] = own = self.carry.state_dict()
        gathers = self._trainer is not None and self.carry.carries  # "episode": nothing to keep
        if (ranks := gather_carried(own, self.trainer.world_size if gathers else 1)) is not None:
            checkpoint["carried_memory_ranks"] = ranks

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore this process's carried memory of :meth:`on_save_checkpoint` (older
        checkpoints: none); keep the checkpoint's step and training clock for the results."""
        self.loaded_checkpoint = {"global_step": checkpoint.get("global_step")}
        self.loaded_checkpoint.update(checkpoint_clock(checkpoint))
        world_size = self.trainer.world_size if self._trainer is not None else 1
        saved, warning = own_carried(checkpoint, self.global_rank, world_size)
        if warning and self.carry.carries:
            rank_zero_warn(warning)
        if saved is not None:  # its "wipe" is ignored: the policy is this run's configuration
            self.carry.load_state_dict(saved)

    def log_train_metrics(self, outputs: Tensor, batch: Any) -> None:
        """Cheap per-batch training metrics for the progress bar (task-specific)."""

    def _eval_step(self, stage: str, batch: Any) -> Tensor:
        outputs, _ = self(batch.inputs, batch.prev_labels)
        loss = self.loss(outputs, batch)
        self.log(f"{stage}/loss", loss, sync_dist=True, batch_size=batch.inputs.shape[0])
        self.update_metrics(stage, outputs, batch)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._eval_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._eval_step("test", batch)

    def on_validation_epoch_end(self) -> None:
        self.report("val")

    def on_test_epoch_end(self) -> None:
        self.report("test")
