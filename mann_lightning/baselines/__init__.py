"""The paper's non-parametric baselines (Santoro et al. 2016, Table 2).

Nearest neighbour on raw pixels and on the bottleneck features of an autoencoder trained on
the training characters, evaluated on the same test episodes as ``mann test``; the command is
``mann-knn`` (:func:`~.knn.main`). See ``docs/baselines.md``.
"""

from __future__ import annotations

from .autoencoder import Autoencoder, get_autoencoder, train_autoencoder, training_images
from .knn import (
    bootstrap_ci,
    episode_counts,
    evaluate,
    main,
    nearest_earlier_sklearn,
    nearest_earlier_torch,
    neighbour_predictions,
)

__all__ = [
    "Autoencoder",
    "bootstrap_ci",
    "episode_counts",
    "evaluate",
    "get_autoencoder",
    "main",
    "nearest_earlier_sklearn",
    "nearest_earlier_torch",
    "neighbour_predictions",
    "train_autoencoder",
    "training_images",
]
