"""The ``mann-continual`` command: run a whole Avalanche stream through a MANN from one YAML file.

    mann-continual --config configs/continual_demo.yaml
    mann-continual --config configs/continual_demo.yaml --run_dir /tmp/run --seed 1
    mann-continual --config configs/continual_demo.yaml --print_config
    python -m continual --help

Every class and argument is settable from YAML and the command line (jsonargparse, like
``mann``): ``benchmark`` (any class or function returning an Avalanche benchmark, given by
``class_path``), ``model`` (the :class:`~mann_lightning.MANN`, sizes filled in),
``episodic_model`` (label encoding and memory wipe policy of
:class:`~continual.episodic_model.EpisodicMANN`), ``episodes`` (the
:class:`~continual.plugin.MANNEpisodePlugin`), ``optimizer`` (a callable, as in
LightningCLI), ``strategy`` (a stock strategy class such as ``avalanche.training.Naive`` or
``avalanche.training.Replay`` with its own arguments) and ``plugins`` (more plugins).

The run folder (``--run_dir``, default ``runs/<config name>``) holds ``config.yaml``,
``checkpoint.pt``, ``log.txt``, ``results.json`` and ``results.md``. Running the same command
again resumes after the last completed experience; a folder holding another configuration's
run is refused unless ``--restart true`` (which moves the old files aside first).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.logging import BaseLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace
from lightning.fabric.utilities.seed import seed_everything
from torch import nn

from mann_lightning.command_line_checks import check_config_files
from mann_lightning.error_report import run_console
from mann_lightning.errors import UserError
from mann_lightning.model import MANN
from mann_lightning.threads import apply_threads

from .curriculum_plugin import CurriculumMANN, CurriculumPlugin
from .drills import planned_drill
from .episodic_model import EpisodicMANN
from .guards import NonFiniteLossGuard
from .metrics import PresentationAccuracy
from .plugin import MANNEpisodePlugin
from .run_folder import config_hash, default_run_dir, prepare_run_dir
from .runner import StreamRunner
from .strategy_checks import check_run_options, check_strategy_sizes, check_supported
from .transfer_metric import TransferMetrics

OptimizerCallable = Callable[[Iterable], torch.optim.Optimizer]
StrategyCallable = Callable[[nn.Module, torch.optim.Optimizer, nn.Module], SupervisedTemplate]


def build_parser() -> ArgumentParser:
    """The ``mann-continual`` argument parser."""
    parser = ArgumentParser(
        prog="mann-continual",
        description="Meta-train a MANN through an Avalanche stream and evaluate after each "
        "experience (see docs/continual.md).",
        exit_on_error=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file of the run.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of weights and RNGs.")
    parser.add_argument(
        "--run_dir", type=str | None, default=None, help="Default runs/<config name>."
    )
    parser.add_argument(
        "--restart", type=bool, default=False, help="Move an existing run aside and start over."
    )
    parser.add_argument(
        "--threads", type=int, default=1,
        help="CPU threads of PyTorch (0: its default, one per core). 1 by default: these small "
        "recurrent steps gain little from more, and on a busy machine more were measured 20x "
        "slower (docs/continual.md).",
    )  # fmt: skip
    parser.add_argument(
        "--input_size", type=int | None, default=None,
        help="Features per step; default: the benchmark's image_size ** 2, else the first image's size.",
    )  # fmt: skip
    parser.add_argument(
        "--benchmark", type=CLScenario, required=True, help="class_path of a benchmark."
    )
    parser.add_class_arguments(
        MANN, "model", skip={"input_size", "num_outputs", "label_size"}, instantiate=False
    )
    parser.add_class_arguments(EpisodicMANN, "episodic_model", skip={"mann"}, instantiate=False)
    parser.add_class_arguments(MANNEpisodePlugin, "episodes", instantiate=False)
    parser.add_argument(
        "--optimizer", type=OptimizerCallable, default=_spec("torch.optim.Adam", lr=1e-3)
    )
    parser.add_argument(
        "--strategy", type=StrategyCallable, default=_spec("avalanche.training.Naive")
    )
    parser.add_argument("--plugins", type=list[SupervisedPlugin], default=[])
    parser.add_argument(
        "--metrics", type=list[PluginMetric], default=[],
        help="More Avalanche plugin metrics, e.g. continual.interference_metrics.ProactiveInterference.",
    )  # fmt: skip
    parser.add_argument("--loggers", type=list[BaseLogger], default=[])
    return parser


def _spec(class_path: str, **init_args: Any) -> Namespace:
    return Namespace(class_path=class_path, init_args=Namespace(**init_args))


def input_size_of(benchmark: Any, given: int | None) -> int:
    """Features per step: given, the benchmark's ``image_size ** 2``, or the first image's size."""
    if given is not None:
        return given
    if getattr(benchmark, "image_size", None):
        return int(benchmark.image_size) ** 2
    return int(benchmark.train_stream[0].dataset[0][0].numel())


def build_strategy(
    init: Namespace, benchmark: Any, run_dir: Path, log_file: Any
) -> tuple[Any, PresentationAccuracy]:
    """Model, optimizer, plugins, evaluator and strategy from the instantiated config."""
    episodes = MANNEpisodePlugin(**vars(init.episodes))
    encoding = init.episodic_model.label_encoding
    curriculum = next((p for p in init.plugins if isinstance(p, CurriculumPlugin)), None)
    wrapper = EpisodicMANN
    outputs = episodes.num_classes if encoding == "onehot" else 25
    if curriculum is not None:  # before any work: every experience must hold max_classes
        for experience in (*benchmark.train_stream, *benchmark.test_stream):
            curriculum.check_experience(experience)
        if encoding == "onehot":  # one-hot labels as wide as N grows
            wrapper, outputs = CurriculumMANN, curriculum.schedule.max_classes
    mann = MANN(input_size_of(benchmark, init.input_size), outputs, **vars(init.model))
    model = wrapper(mann, **vars(init.episodic_model))
    metric = PresentationAccuracy()
    evaluator = EvaluationPlugin(
        accuracy_metrics(epoch=True, experience=True),
        loss_metrics(epoch=True, experience=True),
        metric,
        TransferMetrics(),
        *init.metrics,
        loggers=[TextLogger(log_file), *init.loggers],
    )
    try:
        optimizer = init.optimizer(model.parameters())
    except ValueError as error:  # torch's own checks, e.g. "Invalid learning rate: -0.01"
        raise UserError(f"optimizer: {error}; see optimizer.init_args.") from error
    strategy = init.strategy(
        model=model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        plugins=[episodes, *init.plugins, NonFiniteLossGuard()],
        evaluator=evaluator,
    )
    if not any(isinstance(p, MANNEpisodePlugin) for p in strategy.plugins):
        raise UserError("The strategy dropped MANNEpisodePlugin from its plugins.")
    return strategy, metric


def quiet_avalanche_deprecations() -> None:
    """Hide the warnings Avalanche 0.6 raises about its own internals (e.g. Replay's buffer
    update); its decorator resets the warning filters on every call, so filter at display."""
    show = warnings.showwarning
    if getattr(show, "quiet_avalanche", False):
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, DeprecationWarning) and f"{os.sep}avalanche{os.sep}" in filename:
            return
        show(message, category, filename, lineno, file, line)

    showwarning.quiet_avalanche = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


def _main(args: list[str] | None) -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError(
            f"mann-continual runs a stream in one process, but it was launched under DDP "
            f"(WORLD_SIZE={os.environ['WORLD_SIZE']}); start it without torchrun / srun."
        )
    quiet_avalanche_deprecations()
    parser = build_parser()
    cfg = parser.parse_args(args)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    digest = config_hash(parser, cfg)
    try:
        apply_threads(cfg.threads)
    except ValueError as error:
        raise UserError(str(error)) from error
    check_run_options(cfg)
    seed_everything(cfg.seed, verbose=False)
    init = parser.instantiate(cfg)
    # before the run folder exists: a corrected config must not meet a folder it cannot use
    check_supported(str(getattr(cfg.strategy, "class_path", "")), init.plugins)
    check_strategy_sizes(
        getattr(cfg.strategy, "init_args", None),
        ("train_epochs", "train_mb_size", "eval_mb_size", "mem_size"),
    )
    prepare_run_dir(run_dir, cfg.restart, parser.dump(cfg, skip_none=False), digest)
    with open(run_dir / "log.txt", "a") as log_file:
        strategy, metric = build_strategy(init, init.benchmark, run_dir, log_file)
        drill = planned_drill()
        if drill is not None:  # after the clock: it counts the iteration just finished
            strategy.plugins.append(drill)
        runner = StreamRunner(init.benchmark, strategy, metric, run_dir, digest, cfg.seed)
        results = runner.run()
    print((run_dir / "results.md").read_text())
    print(
        f"written to {run_dir / 'results.json'} and results.md ({results['run']['train_and_eval_seconds']} s)"
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of ``mann-continual`` and ``python -m continual``; tests call it in-process."""

    def run() -> None:
        check_config_files(args, example="configs/continual_demo.yaml")
        _main(args)

    run_console(run, prog="mann-continual")


if __name__ == "__main__":
    main(sys.argv[1:])
