"""Run a whole stream: train on each experience, evaluate on the whole test stream after it.

:class:`StreamRunner` is what ``mann-continual`` runs, usable from Python too. After every
experience it saves the run (:mod:`continual.run_state`) and rewrites the result files in the
run folder:

* ``results.json``: ``experiences`` (names), ``accuracy_matrix`` (row ``i`` = after training
  through experience ``i``, column ``j`` = 2nd-presentation accuracy on test experience
  ``j``, in ``[0, 1]``), ``accuracy_by_presentation`` (the same matrix for presentations
  1..K, a list of matrices), ``untrained_accuracy_by_presentation`` (the model before
  training, ``[k][j]``), forgetting and transfer (:mod:`continual.transfer`),
  ``metrics_after_each_experience`` (per row, the results of the evaluator's other episode
  metrics such as proactive interference, memory statistics and binding retention, keyed
  ``"<stream>/<experience>"``), ``eval_num_classes`` (per row, the ``N`` of its ``N``-way
  evaluation episodes: it changes under a curriculum) and ``untrained_eval_num_classes``,
  and ``run`` (experiences done, wall time, seed, commit);
* ``results.md``: the 2nd-presentation matrix as a table;
* at the end, ``figures/*.png`` (:mod:`continual.figures`), also logged to W&B when a
  :class:`~continual.wandb_logger.StreamWandBLogger` is among the evaluator's loggers.

Rerunning on the same folder resumes after the last completed experience.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.plugins.clock import Clock

from mann_lightning.errors import UserError
from mann_lightning.strict_json import dumps

from . import run_state
from .drills import KillAtIteration
from .figures import write_figures
from .guards import NonFiniteLossGuard
from .metrics import PresentationAccuracy
from .plugin import MANNEpisodePlugin
from .results_files import clean, commit, jsonable, markdown_matrix
from .run_state import RunState
from .transfer import transfer_summary
from .transfer_metric import TransferMetrics

#: Plugins whose state the run does not save (rebuilt from the config, or counters saved apart).
NOT_SAVED: tuple[type, ...] = (
    EvaluationPlugin,
    Clock,
    MANNEpisodePlugin,
    KillAtIteration,
    NonFiniteLossGuard,
)


class StreamRunner:
    """Train a strategy through a benchmark's train stream, evaluating after each experience.

    Args:
        benchmark: An Avalanche benchmark with ``train_stream`` and ``test_stream``.
        strategy: A strategy with :class:`~continual.plugin.MANNEpisodePlugin` among its plugins
            and :class:`~continual.metrics.PresentationAccuracy` in its evaluator.
        metric: That :class:`~continual.metrics.PresentationAccuracy` instance.
        run_dir: Folder for the checkpoint and result files.
        config_hash: Identity of the configuration; a saved run with another one is refused.
        seed: Recorded in the results.
        log: Where progress lines go (``print`` by default).
    """

    def __init__(
        self,
        benchmark: Any,
        strategy: Any,
        metric: PresentationAccuracy,
        run_dir: Path,
        config_hash: str,
        seed: int = 0,
        log: Any = print,
    ) -> None:
        self.benchmark, self.strategy, self.metric = benchmark, strategy, metric
        self.run_dir, self.config_hash, self.seed, self.log = Path(run_dir), config_hash, seed, log
        self.test_stream = benchmark.test_stream
        self.train_stream = benchmark.train_stream
        if len(self.train_stream) != len(self.test_stream):
            raise ValueError(
                f"The benchmark's train stream has {len(self.train_stream)} experiences and its "
                f"test stream {len(self.test_stream)}; an accuracy matrix needs one test "
                "experience per training experience."
            )

    def run(self) -> dict[str, Any]:
        """Run (or resume) the stream; returns the ``results.json`` content.

        Loggers of the strategy's evaluator that have ``bind_run(extra, run_dir)`` (e.g.
        :class:`~continual.wandb_logger.StreamWandBLogger`) are started with the run state's
        ``extra`` dict before anything is logged, and closed at the end. The figures
        (:mod:`continual.figures`) are drawn into ``figures/`` at the end and logged through them.
        """
        self._bound: list[Any] = []
        try:
            return self._run()
        finally:
            for logger in self._bound:
                logger.close()

    def _bind_loggers(self, state: RunState) -> None:
        """Start the evaluator's loggers that keep state in the run (a W&B run id)."""
        for logger in getattr(self.strategy.evaluator, "loggers", []):
            if hasattr(logger, "bind_run"):
                logger.bind_run(state.extra, self.run_dir)
                self._bound.append(logger)

    def _run(self) -> dict[str, Any]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        saved = run_state.load(self.run_dir)
        if saved is not None:
            if saved["run"]["config_hash"] != self.config_hash:
                raise UserError(
                    f"{self.run_dir} holds a run of a different configuration; give another "
                    "--run_dir, or --restart true to start over (the old run is moved aside)."
                )
            state = run_state.restore(self.strategy, saved, NOT_SAVED)
            for metric in getattr(self.strategy.evaluator, "metrics", []):
                if isinstance(metric, TransferMetrics):  # its rows live in the run state
                    metric.restore(state.rows, state.untrained)
            if state.position < len(self.train_stream):
                self._bind_loggers(state)
            self.log(
                f"Resuming {self.run_dir} after experience {state.position} of {len(self.train_stream)}."
            )
        else:
            state = RunState(self.config_hash)
            self._bind_loggers(state)
            state.extra["untrained_classes"] = self._episode_classes()
            state.untrained = self._evaluate()
            state.extra["seconds"] = 0.0
            run_state.save_atomic(run_state.capture(self.strategy, state, NOT_SAVED), self.run_dir)
        total = len(self.train_stream)
        for index in range(state.position, total):
            start = time.perf_counter()
            self.strategy.train(self.train_stream[index])
            state.extra.setdefault("classes", []).append(self._episode_classes())
            row = self._evaluate()
            state.rows.append(row)
            state.extra.setdefault("metrics", []).append(self._other_metric_results())
            state.position = index + 1
            state.extra["seconds"] = state.extra.get("seconds", 0.0) + time.perf_counter() - start
            run_state.save_atomic(run_state.capture(self.strategy, state, NOT_SAVED), self.run_dir)
            results = self.write_results(state)
            second = " ".join(f"{value:.2f}" for value in results["accuracy_matrix"][index])
            self.log(
                f"experience {index + 1}/{total} done ({time.perf_counter() - start:.0f} s): "
                f"2nd-presentation accuracy per test experience: {second}"
            )
        results = self.write_results(state)
        iterations = self.strategy.clock.train_iterations
        write_figures(results, self.run_dir / "figures", self._bound, iterations)
        return results

    def _evaluate(self) -> list[list[float]]:
        """Accuracy by presentation on every test experience, ``[j][k]``."""
        self.strategy.eval(self.test_stream)
        stream = self.test_stream.name
        return [self.metric.results[(stream, j)] for j in range(len(self.test_stream))]

    def _episode_classes(self) -> int | None:
        """``N`` of the evaluation episodes about to be drawn (the episode plugin's)."""
        for plugin in self.strategy.plugins:
            if isinstance(plugin, MANNEpisodePlugin):
                return plugin.num_classes
        return None

    def _other_metric_results(self) -> dict[str, Any]:
        """Results of the evaluator's other episode metrics that keep ``results`` (proactive
        interference, memory statistics, binding retention), JSON-ready, for this row."""
        out: dict[str, Any] = {}
        for metric in getattr(self.strategy.evaluator, "metrics", []):
            results = getattr(metric, "results", None)
            if metric is self.metric or not isinstance(results, dict) or not results:
                continue
            out[str(metric)] = {
                "/".join(map(str, key)) if isinstance(key, tuple) else str(key): jsonable(value)
                for key, value in results.items()
            }
        return out

    def experience_names(self) -> list[str]:
        """Readable names: the alphabets of each experience, else ``experience i``."""
        groups = getattr(self.benchmark, "alphabet_groups", None)
        if groups is not None:
            return [" + ".join(group) for group in groups]
        return [f"experience {i}" for i in range(len(self.train_stream))]

    def write_results(self, state: RunState) -> dict[str, Any]:
        """Write ``results.json`` and ``results.md`` for the experiences done so far."""
        presentations = len(state.untrained[0]) if state.untrained else 0
        by_presentation = [
            [[clean(row[j][k]) for j in range(len(row))] for row in state.rows]
            for k in range(presentations)
        ]
        untrained = [
            [clean(state.untrained[j][k]) for j in range(len(state.untrained))]
            for k in range(presentations)
        ] if state.untrained else []  # fmt: skip
        classes = state.extra.get("classes", [])  # a run saved before N was recorded: None
        classes = [None] * (len(state.rows) - len(classes)) + classes[: len(state.rows)]
        results: dict[str, Any] = {
            "experiences": self.experience_names(),
            "accuracy_matrix": by_presentation[1] if presentations > 1 else [],
            "accuracy_by_presentation": by_presentation,
            "untrained_accuracy_by_presentation": untrained,
            **transfer_summary(by_presentation, untrained or None),
            "metrics_after_each_experience": state.extra.get("metrics", []),
            "eval_num_classes": classes,
            "untrained_eval_num_classes": state.extra.get("untrained_classes"),
            "run": {
                "experiences_done": state.position,
                "experiences_total": len(self.train_stream),
                "train_and_eval_seconds": round(state.extra.get("seconds", 0.0), 1),
                "seed": self.seed,
                "commit": commit(),
                "config_hash": self.config_hash,
            },
        }
        (self.run_dir / "results.json").write_text(dumps(results))
        (self.run_dir / "results.md").write_text(markdown_matrix(results) + "\n")
        return results
