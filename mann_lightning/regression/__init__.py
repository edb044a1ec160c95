"""Few-shot regression against the exact Gaussian-process posterior (paper Figs. 5 and 6).

See ``docs/regression.md``. Entry points: :class:`GPEpisodes` (data), :class:`MANNRegressor`
(Lightning module), the float64 GP reference in :mod:`.gp`, and
``python -m mann_lightning.regression.compare`` to merge test tables of several runs.
"""

from __future__ import annotations

from .data import GPEpisodeBatch, GPEpisodes, sample_gp_episodes
from .gp import (
    GPPrior,
    gaussian_log_likelihood,
    gaussian_nll,
    gp_posterior,
    gp_step_predictive,
    kernel_matrix,
    noisy_cholesky,
    sample_conditional_function,
    sample_gp,
)
from .metrics import StepLogLikelihood, loglik_table
from .module import MANNRegressor

__all__ = [
    "GPEpisodeBatch",
    "GPEpisodes",
    "GPPrior",
    "MANNRegressor",
    "StepLogLikelihood",
    "gaussian_log_likelihood",
    "gaussian_nll",
    "gp_posterior",
    "gp_step_predictive",
    "kernel_matrix",
    "loglik_table",
    "noisy_cholesky",
    "sample_conditional_function",
    "sample_gp",
    "sample_gp_episodes",
]
