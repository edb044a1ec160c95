"""``MANNEpisodePlugin``: stock Avalanche strategies meta-train a MANN on episodes.

The plugin overrides only what a plugin is meant to: the strategy's ``dataloader`` (in
``before_training_epoch`` and ``before_eval_exp``), and it tells the
:class:`~continual.episodic_model.EpisodicMANN` when a training experience starts. The
strategy's own loop, criterion (stock ``CrossEntropyLoss``), optimizer and other plugins run
unchanged.

Training episodes are drawn from everything the strategy would have trained on: the data
of the strategy's dataloader after every plugin's ``before_training_exp`` (so Replay's
buffer is included whatever the plugin order), read once per experience. Classes of the
current experience form group 0, other classes (replayed ones) group 1; ``replay_share``
fixes how many of an episode's ``N`` classes come from group 1. Evaluation episodes are
drawn from each evaluated experience's data, ``eval_batches`` per experience, seeded by the
experience's stream and index: every row of an accuracy matrix sees the same episodes.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import torch
from avalanche.training.plugins import SupervisedPlugin

from mann_lightning.data.augment import check_jitter
from mann_lightning.data.pool import ClassPool, sample_pool_episodes
from mann_lightning.data.stream import stream_seed
from mann_lightning.value_checks import is_number, require_int

from .episode_data import EpisodeLoader, experience_classes, gather_pool
from .episodic_model import EpisodicMANN
from .pool_warnings import warn_small_eval_classes, warn_small_replayed_classes
from .strategy_checks import check_strategy_sizes, check_supported

Ragged = Literal["replace", "exclude"]


class MANNEpisodePlugin(SupervisedPlugin):
    """Make a strategy's training and evaluation loops consume episodes.

    Args:
        num_classes: Classes per episode ``N``.
        samples_per_class: Images per class; an episode has ``N * samples_per_class`` steps.
        batch_size: Episodes per minibatch.
        train_batches: Training minibatches per epoch of an experience (``train_epochs``
            of the strategy is usually 1, making this the batches per experience).
        eval_batches: Evaluation minibatches per evaluated experience (fixed episodes).
        ragged: Classes with fewer than ``samples_per_class`` images: ``"replace"`` draws
            their images with replacement (repeats); ``"exclude"`` leaves them out.
        replay_share: Fraction of an episode's classes taken from classes that are not the
            current experience's (replayed ones), rounded to whole classes and limited by
            how many there are; ``None``: all classes drawn uniformly from the whole pool.
        max_translation: Training jitter: random shift per image, as a fraction of the side
            (square images only); ``None`` takes the experience's ``episode_jitter`` (set
            by the Omniglot streams), else 0.
        max_rotation: Training jitter: random rotation per image in degrees; ``None`` as above.
        seed: Seed of the training episodes.
        eval_seed: Seed of the evaluation episodes.
    """

    def __init__(
        self,
        num_classes: int = 5,
        samples_per_class: int = 10,
        batch_size: int = 16,
        train_batches: int = 100,
        eval_batches: int = 10,
        ragged: Ragged = "replace",
        replay_share: float | None = None,
        max_translation: float | None = None,
        max_rotation: float | None = None,
        seed: int = 0,
        eval_seed: int = 1234,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("num_classes", num_classes, 2),
            ("samples_per_class", samples_per_class, 2),  # the metrics start at the 2nd
            ("batch_size", batch_size, 1),
            ("train_batches", train_batches, 1),
            ("eval_batches", eval_batches, 1),
            ("seed", seed, None),
            ("eval_seed", eval_seed, None),
        ):
            require_int("MANNEpisodePlugin", name, value, low)
        check_jitter(  # None: the stream's own, checked there
            "MANNEpisodePlugin",
            0.0 if max_translation is None else max_translation,
            0.0 if max_rotation is None else max_rotation,
        )
        if ragged not in ("replace", "exclude"):
            raise ValueError(f"Unknown ragged={ragged!r}; use 'replace' or 'exclude'.")
        if replay_share is not None and (not is_number(replay_share) or not 0 <= replay_share <= 1):
            raise ValueError(f"replay_share must be in [0, 1] or None, got {replay_share!r}.")
        self.num_classes, self.samples_per_class = num_classes, samples_per_class
        self.batch_size, self.train_batches, self.eval_batches = (
            batch_size,
            train_batches,
            eval_batches,
        )
        self.ragged: Ragged = ragged
        self.replay_share = replay_share
        self.max_translation, self.max_rotation = max_translation, max_rotation
        self.seed, self.eval_seed = seed, eval_seed
        self._train_pool: tuple[Any, ClassPool] | None = None
        self._eval_pools: dict[Any, ClassPool] = {}

    # ------------------------------------------------------------------ callbacks
    def before_training(self, strategy: Any, **kwargs: Any) -> None:
        # Avalanche accepts these silently: 0 epochs trains nothing, a size below 1 fails
        # deep inside a DataLoader.
        check_strategy_sizes(strategy, ("train_epochs", "train_mb_size"))
        check_supported(type(strategy), getattr(strategy, "plugins", ()))

    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        check_strategy_sizes(strategy, ("eval_mb_size",))

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._model(strategy).start_experience()
        self._train_pool = None

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        model = self._model(strategy)
        key = strategy.clock.train_exp_counter
        if self._train_pool is None or self._train_pool[0] != key:
            datasets = getattr(strategy.dataloader, "datasets", None)
            if datasets is None:
                datasets = [getattr(strategy.dataloader, "dataset", strategy.adapted_dataset)]
            current = experience_classes(strategy.experience)
            pool = self._gather(strategy, datasets, current, "training")
            self._train_pool = (key, pool)
        pool = self._train_pool[1]
        if self.replay_share and key > 0 and pool.group_size(1) == 0:
            warnings.warn(
                f"replay_share={self.replay_share}, but experience {key}'s training data holds "
                "no classes of earlier experiences: nothing is replayed. The strategy keeps "
                "none (use avalanche.training.Replay with mem_size > 0).",
                stacklevel=2,
            )
        counts = self._group_counts(pool)
        parts = (self.seed, "train", key, strategy.clock.train_exp_epochs)
        strategy.dataloader = self._loader(strategy, pool, model, parts, self.train_batches, counts)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._train_pool = None  # the next experience reads its own data

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        model = self._model(strategy)
        experience = strategy.experience
        stream = getattr(getattr(experience, "origin_stream", None), "name", "eval")
        key = (stream, experience.current_experience, id(experience.dataset))
        if key not in self._eval_pools:
            self._eval_pools[key] = self._gather(strategy, [strategy.adapted_dataset], None, stream)
        parts = (self.eval_seed, "eval", stream, experience.current_experience)
        strategy.dataloader = self._loader(
            strategy, self._eval_pools[key], model, parts, self.eval_batches, None, train=False
        )

    # ------------------------------------------------------------------ helpers
    def _model(self, strategy: Any) -> EpisodicMANN:
        model = strategy.model
        if not isinstance(model, EpisodicMANN):
            raise TypeError(
                f"MANNEpisodePlugin needs the strategy's model to be an EpisodicMANN, got "
                f"{type(model).__name__}; wrap the network: EpisodicMANN(MANN(...))."
            )
        if model.num_classes is not None and model.num_classes != self.num_classes:
            raise ValueError(
                f"The model has {model.num_classes} one-hot outputs but episodes have "
                f"num_classes={self.num_classes}; build MANN(num_outputs={self.num_classes})."
            )
        return model

    def _gather(
        self, strategy: Any, datasets: list[Any], current: set[int] | None, where: str
    ) -> ClassPool:
        model = self._model(strategy)
        minimum = self.samples_per_class if self.ragged == "exclude" else 1
        pool = gather_pool(datasets, model.input_size, strategy.device, current, minimum)
        if len(pool) < self.num_classes:
            index = getattr(strategy.experience, "current_experience", "?")
            rule = (
                f"with at least samples_per_class={self.samples_per_class} images "
                "(ragged='exclude')"
                if self.ragged == "exclude"
                else "in its data"
            )
            raise ValueError(
                f"Experience {index} ({where}) has {len(pool)} classes {rule}, but an episode "
                f"needs num_classes={self.num_classes}: lower num_classes, group more classes "
                "per experience" + (", or use ragged='replace'." if minimum > 1 else ".")
            )
        if where == "training":
            if self.ragged == "replace":
                warn_small_replayed_classes(pool, self.samples_per_class, strategy.experience)
        else:
            warn_small_eval_classes(pool, self.samples_per_class, strategy.experience, where)
        return pool

    def _group_counts(self, pool: ClassPool) -> tuple[int, int] | None:
        if self.replay_share is None:
            return None
        replayed = min(round(self.replay_share * self.num_classes), pool.group_size(1))
        current = self.num_classes - replayed
        if current > pool.group_size(0):  # too few current classes: fill from replay
            current = pool.group_size(0)
            replayed = self.num_classes - current
        return current, replayed

    def _jitter(self, strategy: Any) -> tuple[float, float]:
        jitter = getattr(strategy.experience, "episode_jitter", (0.0, 0.0))
        translation = jitter[0] if self.max_translation is None else self.max_translation
        rotation = jitter[1] if self.max_rotation is None else self.max_rotation
        return translation, rotation

    def _loader(
        self,
        strategy: Any,
        pool: ClassPool,
        model: EpisodicMANN,
        parts: tuple[Any, ...],
        num_batches: int,
        group_counts: tuple[int, int] | None,
        train: bool = True,
    ) -> EpisodeLoader:
        translation, rotation = self._jitter(strategy) if train else (0.0, 0.0)
        side = math.isqrt(model.input_size)
        if side * side != model.input_size and (translation > 0 or rotation > 0):
            raise ValueError(
                f"Jitter (max_translation={translation}, max_rotation={rotation}) needs square "
                f"images, but the model's input_size={model.input_size} is not a square; set "
                "both to 0."
            )
        device = pool.images.device

        def sample(index: int):
            seed = stream_seed(*parts, index)
            generator = torch.Generator(device=device).manual_seed(seed)
            return sample_pool_episodes(
                pool, self.num_classes, self.samples_per_class, self.batch_size, generator,
                model.label_encoding, group_counts, side, translation, rotation,
            )  # fmt: skip

        return EpisodeLoader(sample, num_batches, model.label_encoding)
