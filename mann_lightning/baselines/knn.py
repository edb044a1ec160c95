"""``mann-knn``: the paper's nearest-neighbour baselines on the MANN's test episodes.

At step ``t`` of an episode the label is predicted as that of the nearest (Euclidean)
earlier step ``s < t`` of the same episode (labels are per episode), on raw pixels or on the
32 bottleneck units of an autoencoder trained on the training characters (Santoro et al.
2016, Table 2). At ``t = 0`` the prediction is a fixed guess (label 0, or the string of
zeros). The default search is scikit-learn's (one brute-force ``NearestNeighbors`` per
episode); ``--backend torch`` is a vectorised equivalent. See ``docs/baselines.md``.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
import yaml
from sklearn.neighbors import NearestNeighbors
from torch import Tensor

from mann_lightning.data import OmniglotDataError, OmniglotEpisodes
from mann_lightning.episode_metrics import EpisodeAccuracy, bootstrap_interval, paper_intervals
from mann_lightning.errors import UserError
from mann_lightning.metrics import InstanceAccuracy, markdown_table, paper_table
from mann_lightning.preflight import check_writable
from mann_lightning.specs import unknown_keys

from ..results_output import write_result_files
from ..value_checks import at_least_one
from .autoencoder import get_autoencoder

MODEL_NAMES = {"pixels": "kNN (raw pixels)", "autoencoder": "kNN (autoencoder features)"}
MAX_INSTANCES = 10

log = logging.getLogger(__name__)


def nearest_earlier_sklearn(features: Tensor) -> Tensor:
    """Index of each step's nearest earlier step, with scikit-learn, one episode at a time.

    Args:
        features: ``[B, T, D]`` features of every step.

    Returns:
        ``[B, T]`` int64: the step ``s < t`` nearest to step ``t``; ``-1`` at ``t = 0``.
    """
    x = features.detach().cpu().double().numpy()
    batch, steps = x.shape[:2]
    out = np.full((batch, steps), -1, dtype=np.int64)
    rows = np.arange(steps)
    for b in range(batch):
        search = NearestNeighbors(n_neighbors=steps, algorithm="brute").fit(x[b])
        order = search.kneighbors(x[b], return_distance=False)  # [T, T] nearest first
        first = (order < rows[:, None]).argmax(1)  # first neighbour that is earlier
        out[b, 1:] = order[rows, first][1:]
    return torch.from_numpy(out)


def nearest_earlier_torch(features: Tensor) -> Tensor:
    """Vectorised :func:`nearest_earlier_sklearn`: causal-masked ``cdist`` and ``argmin``."""
    x = features.double()
    distances = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    steps = x.shape[1]
    later = torch.ones(steps, steps, dtype=torch.bool, device=x.device).triu()  # s >= t
    nearest = distances.masked_fill(later, torch.inf).argmin(-1)
    nearest[:, 0] = -1
    return nearest


BACKENDS = {"sklearn": nearest_earlier_sklearn, "torch": nearest_earlier_torch}


def neighbour_predictions(neighbours: Tensor, targets: Tensor) -> Tensor:
    """Labels of the neighbours (``[B, T]`` or ``[B, T, 5]``); zeros where there is none."""
    index = neighbours.clamp_min(0).to(targets.device)
    if targets.dim() == 3:
        index = index.unsqueeze(-1).expand_as(targets)
    preds = targets.gather(1, index)
    none = (neighbours < 0).to(targets.device)
    return preds.masked_fill(none.view(*none.shape, *[1] * (targets.dim() - 2)), 0)


def episode_counts(preds: Tensor, targets: Tensor, instances: Tensor) -> tuple[Tensor, Tensor]:
    """Per-episode ``(correct, steps)`` ``[B, MAX_INSTANCES]`` by presentation, counted by
    :class:`~mann_lightning.episode_metrics.EpisodeAccuracy` (``mann test``'s counter)."""
    counter = EpisodeAccuracy(MAX_INSTANCES)
    counter.update(preds, targets, instances)
    return counter.compute()


def bootstrap_ci(
    correct: np.ndarray, steps: np.ndarray, resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """95% percentile intervals ``[2, K]`` of the accuracy, resampling episodes with
    replacement: :func:`~mann_lightning.episode_metrics.bootstrap_interval`, as ``mann test``.

    Args:
        correct: ``[E, K]`` correct steps per episode and presentation.
        steps: ``[E, K]`` steps per episode and presentation.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.
    """
    interval = bootstrap_interval(
        torch.as_tensor(correct), torch.as_tensor(steps), resamples=resamples, seed=seed
    )
    return interval.T.numpy()


def load_data(config: Path, num_classes: int | None, test_batches: int | None) -> OmniglotEpisodes:
    """The data module of a training config's ``data:`` section, with optional overrides."""
    if not config.is_file():
        raise ValueError(f"config not found: {config}")
    try:  # yaml's own message names "<unicode string>", not the file
        loaded = yaml.safe_load(config.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{config} is not valid YAML: {str(error).splitlines()[0]}") from None
    section = loaded.get("data") if isinstance(loaded, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f"{config} has no data: section")
    class_path = section.get("class_path", "OmniglotEpisodes")
    if class_path.rsplit(".", 1)[-1] != "OmniglotEpisodes":
        raise ValueError(f"{config}: data is {class_path}, not an Omniglot episode module")
    kwargs = dict(section.get("init_args") or {})
    settings = inspect.signature(OmniglotEpisodes.__init__).parameters
    if unknown := unknown_keys(kwargs, settings):
        raise ValueError(f"{config}: data.init_args has no setting {', '.join(unknown)}.")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
        held = kwargs.get("val_characters", settings["val_characters"].default)
        if 0 < held < num_classes:  # kNN scores test episodes only: no validation episodes
            kwargs["val_characters"] = 0
            log.info("val_characters %d -> 0: %d-way validation episodes are not drawn", held,
                     num_classes)  # fmt: skip
    if test_batches is not None:
        kwargs["test_batches"] = test_batches
    data = OmniglotEpisodes(**kwargs)
    if data.test_batches < 1:
        raise ValueError(f"test_batches is {data.test_batches}: no test episodes to score; "
                         "give --test-batches 1 or more.")  # fmt: skip
    return data


def evaluate(
    data: OmniglotEpisodes, encode: Any = None, backend: str = "sklearn"
) -> dict[str, Any]:
    """Run the 1-NN baseline on the test episodes of ``data`` and summarise it.

    Args:
        data: The data module (its test episodes are the MANN's ``mann test`` episodes).
        encode: Features of ``inputs [B, T, 400]``; ``None``: raw pixels.
        backend: ``"sklearn"`` or ``"torch"`` neighbour search.

    Returns:
        The ``test_results.json`` payload (without ``model``).
    """
    data.setup("test")
    metric, episodes = InstanceAccuracy(MAX_INSTANCES), EpisodeAccuracy(MAX_INSTANCES)
    for batch in data.test_dataloader():
        features = batch.inputs if encode is None else encode(batch.inputs)
        preds = neighbour_predictions(BACKENDS[backend](features), batch.targets)
        metric.update(preds, batch.targets, batch.instances)
        episodes.update(preds, batch.targets, batch.instances)
    accuracy = metric.compute()
    correct, steps = episodes.compute()
    return {
        "stage": "test",
        "accuracy_percent": paper_table(accuracy),
        "per_instance": [float(a) for a in accuracy.tolist()],
        "steps_per_instance": metric.total.tolist(),
        "episodes": int(correct.shape[0]),
        "ci95_percent": paper_intervals(bootstrap_interval(correct, steps)),
    }


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Bad arguments: one line on stderr, exit status 2."""
        self.exit(2, f"mann-knn: error: {message}\n")


def default_out(config: Path, features: str, num_classes: int | None) -> Path:
    """``runs/knn/<config>_<features>``, with ``_<N>way`` when ``--num-classes`` overrides the
    config's N (so that a run with another N does not overwrite the config's results)."""
    suffix = f"_{num_classes}way" if num_classes is not None else ""
    return Path("runs", "knn", f"{config.stem}_{features}{suffix}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of ``mann-knn``."""
    parser = _Parser(prog="mann-knn", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="training config (data:)")
    parser.add_argument("--features", choices=sorted(MODEL_NAMES), default="pixels")
    parser.add_argument("--out", type=Path,
                        help="results folder (default runs/knn/<config>_<features>[_<N>way])")  # fmt: skip
    parser.add_argument("--test-batches", type=at_least_one, help="override data.test_batches")
    parser.add_argument("--num-classes", type=int, help="override data.num_classes (N-way)")
    parser.add_argument("--autoencoder", type=Path, help="model file (default OUT/autoencoder.pt)")
    parser.add_argument("--autoencoder-epochs", type=at_least_one, default=30)
    parser.add_argument("--seed", type=int, default=0, help="autoencoder training seed")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="sklearn")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mann-knn``; returns 0, or exits with status 2 on bad input."""
    try:
        args = parse_args(argv)
    except SystemExit as stop:  # bad arguments (status 2) or --help (0)
        return int(stop.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    out = args.out or default_out(args.config, args.features, args.num_classes)
    try:
        check_writable([("--out folder", out)], fix="Choose another --out.")  # before the work
        data = load_data(args.config, args.num_classes, args.test_batches)
        encode, extra = None, {}
        if args.features == "autoencoder":
            path = args.autoencoder or out / "autoencoder.pt"
            model, meta = get_autoencoder(data, path, args.autoencoder_epochs, args.seed)
            encode, extra = model.features, {"autoencoder": {"path": str(path), **meta}}
        payload = evaluate(data, encode, args.backend)
    except (ValueError, OmniglotDataError, yaml.YAMLError, UserError) as error:
        print(f"mann-knn: error: {error}", file=sys.stderr)
        return 2
    name = MODEL_NAMES[args.features]
    payload = {"model": name, **payload, "config": str(args.config), "backend": args.backend,
               "num_classes": data.num_classes, "label_encoding": data.label_encoding,
               "wall_s": round(time.perf_counter() - start, 1), **extra}  # fmt: skip
    table = markdown_table({name: payload["accuracy_percent"]})
    intervals = ", ".join(
        f"{k} [{a:.1f}, {b:.1f}]" for k, (a, b) in payload["ci95_percent"].items()
    )
    markdown = f"{table}\n\n95% CI (bootstrap over {payload['episodes']} episodes): {intervals}"
    moved = write_result_files(out, "test_results", payload, markdown)
    print(
        f"{markdown}\n\nwritten to {out / 'test_results.json'} and .md" + f"\n{moved}" * bool(moved)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
