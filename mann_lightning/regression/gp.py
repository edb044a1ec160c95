"""Gaussian-process prior, sampler and exact posterior: the reference of the paper's Figs. 5-6.

Everything here is batched tensor work in float64 (inputs are promoted), on the device of
the inputs. Shapes: ``x`` is ``[..., T, d]``, ``y`` is ``[..., T]``.

The per-step predictive of :func:`gp_step_predictive` uses one Cholesky factor
``L`` of the noisy kernel ``K + s_n I`` of the whole episode: the Cholesky factor of a leading
principal block is the leading block of ``L``, so with ``z = L^{-1} y`` the exact
predictive of ``y_t`` given ``y_0..y_{t-1}`` is ``N(y_t - L_tt z_t, L_tt^2)`` for every
``t`` at once (the innovation form of sequential Gaussian conditioning).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
from torch import Tensor

KernelName = Literal["se", "matern32", "matern52"]
KERNELS: tuple[str, ...] = ("se", "matern32", "matern52")
LOG_2PI = math.log(2.0 * math.pi)


class GPPrior(NamedTuple):
    """Fixed hyperparameters of the GP that episodes are drawn from.

    Attributes:
        kernel: ``"se"`` (squared exponential), ``"matern32"`` or ``"matern52"``.
        lengthscale: Shared lengthscale ``l`` of all input dimensions.
        signal_variance: Prior variance of the function values ``s_f``.
        noise_variance: Variance ``s_n`` of the Gaussian observation noise on ``y``.
        jitter: Added to the diagonal (relative to ``signal_variance``) for noise-free factors.
    """

    kernel: KernelName = "se"
    lengthscale: float = 1.0
    signal_variance: float = 1.0
    noise_variance: float = 0.01
    jitter: float = 1e-8

    def check(self) -> GPPrior:
        """Return ``self`` after validating the hyperparameters (raises ``ValueError``)."""
        if self.kernel not in KERNELS:
            raise ValueError(f"Unknown kernel {self.kernel!r}: use one of {KERNELS}.")
        if self.lengthscale <= 0 or self.signal_variance <= 0:
            raise ValueError(
                "GP lengthscale and signal_variance must be positive, got "
                f"{self.lengthscale} and {self.signal_variance}."
            )
        if self.noise_variance < 0 or self.jitter < 0:
            raise ValueError(
                f"GP noise_variance and jitter must be >= 0, got {self.noise_variance}, {self.jitter}."
            )
        return self


def kernel_matrix(x1: Tensor, x2: Tensor, prior: GPPrior) -> Tensor:
    """Noise-free covariance ``k(x1_i, x2_j)``: ``[..., N, d]`` x ``[..., M, d]`` -> ``[..., N, M]``."""
    x1, x2 = x1.double(), x2.double()
    d2 = (x1.unsqueeze(-2) - x2.unsqueeze(-3)).pow(2).sum(-1) / prior.lengthscale**2
    if prior.kernel == "se":
        shape = torch.exp(-0.5 * d2)
    elif prior.kernel in ("matern32", "matern52"):
        nu_factor = 3.0 if prior.kernel == "matern32" else 5.0
        r = torch.sqrt(nu_factor * d2.clamp_min(0.0))
        poly = 1.0 + r if prior.kernel == "matern32" else 1.0 + r + r.pow(2) / 3.0
        shape = poly * torch.exp(-r)
    else:
        raise ValueError(f"Unknown kernel {prior.kernel!r}: use one of {KERNELS}.")
    return prior.signal_variance * shape


def _eye_like(k: Tensor) -> Tensor:
    return torch.eye(k.shape[-1], dtype=k.dtype, device=k.device)


def noisy_cholesky(x: Tensor, prior: GPPrior, noise: bool = True) -> Tensor:
    """Lower Cholesky factor of ``K(x, x) + (s_n + jitter) I``, ``[..., T, T]`` float64."""
    k = kernel_matrix(x, x, prior)
    diag = (prior.noise_variance if noise else 0.0) + prior.jitter * prior.signal_variance
    return torch.linalg.cholesky(k + diag * _eye_like(k))


def sample_gp(
    x: Tensor, prior: GPPrior, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Draw functions at ``x [..., T, d]``: returns ``(f, y)``, both ``[..., T]`` float64.

    ``f ~ N(0, K)`` are the noise-free values, ``y = f + N(0, s_n)`` the observations.
    """
    factor = noisy_cholesky(x, prior, noise=False)
    shape = x.shape[:-1]
    z = torch.randn(*shape, 1, generator=generator, dtype=torch.float64, device=x.device)
    f = (factor @ z).squeeze(-1)
    eps = torch.randn(*shape, generator=generator, dtype=torch.float64, device=x.device)
    return f, f + math.sqrt(prior.noise_variance) * eps


def gp_step_predictive(x: Tensor, y: Tensor, prior: GPPrior) -> tuple[Tensor, Tensor]:
    """Exact predictive of every ``y_t`` given ``y_0..y_{t-1}`` (noise included).

    Args:
        x: Inputs ``[..., T, d]``.
        y: Noisy observations ``[..., T]``.
        prior: The GP the episodes come from.

    Returns:
        ``(mean, variance)``, each ``[..., T]`` float64; step 0 is the prior ``N(0, s_f + s_n)``.
    """
    factor = noisy_cholesky(x, prior)
    z = torch.linalg.solve_triangular(factor, y.double().unsqueeze(-1), upper=False).squeeze(-1)
    scale = torch.diagonal(factor, dim1=-2, dim2=-1)
    return y.double() - scale * z, scale.pow(2)


def gp_posterior(
    x_obs: Tensor, y_obs: Tensor, x_query: Tensor, prior: GPPrior, noise: bool = True
) -> tuple[Tensor, Tensor]:
    """Posterior predictive at ``x_query [..., Q, d]`` given ``(x_obs [..., N, d], y_obs [..., N])``.

    Returns ``(mean, variance)`` ``[..., Q]`` float64, the variance of ``y`` (``noise=True``) or
    of the noise-free ``f`` (``noise=False``). With ``N = 0`` it is the prior.
    """
    k_qq = prior.signal_variance + (prior.noise_variance if noise else 0.0)
    batch = x_query.shape[:-1]
    if x_obs.shape[-2] == 0:
        zeros = torch.zeros(batch, dtype=torch.float64, device=x_query.device)
        return zeros, zeros + k_qq
    factor = noisy_cholesky(x_obs, prior)
    k_oq = kernel_matrix(x_obs, x_query, prior)
    a = torch.linalg.solve_triangular(factor, k_oq, upper=False)  # L^{-1} K_oq
    z = torch.linalg.solve_triangular(factor, y_obs.double().unsqueeze(-1), upper=False)
    mean = (a * z).sum(-2)
    return mean, (k_qq - a.pow(2).sum(-2)).clamp_min(0.0)


def sample_conditional_function(
    x_obs: Tensor,
    f_obs: Tensor,
    x_query: Tensor,
    prior: GPPrior,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Noise-free values at ``x_query`` of the same function as ``f_obs`` (a joint draw).

    Used to draw an episode's whole function on a plotting grid: ``f(x_query) | f(x_obs)``.
    """
    noiseless = prior._replace(noise_variance=0.0, jitter=max(prior.jitter, 1e-6))
    factor = noisy_cholesky(x_obs, noiseless)
    k_oq = kernel_matrix(x_obs, x_query, noiseless)
    a = torch.linalg.solve_triangular(factor, k_oq, upper=False)
    z = torch.linalg.solve_triangular(factor, f_obs.double().unsqueeze(-1), upper=False)
    cov = kernel_matrix(x_query, x_query, noiseless) - a.transpose(-1, -2) @ a
    cov = 0.5 * (
        cov + cov.transpose(-1, -2)
    ) + noiseless.jitter * prior.signal_variance * _eye_like(cov)
    chol = torch.linalg.cholesky(cov)
    eps = torch.randn(
        *cov.shape[:-1], 1, generator=generator, dtype=torch.float64, device=cov.device
    )
    return (a * z).sum(-2) + (chol @ eps).squeeze(-1)


def gaussian_log_likelihood(y: Tensor, mean: Tensor, variance: Tensor) -> Tensor:
    """Elementwise ``log N(y; mean, variance)``."""
    return -0.5 * (LOG_2PI + torch.log(variance) + (y - mean).pow(2) / variance)


def gaussian_nll(y: Tensor, mean: Tensor, variance: Tensor) -> Tensor:
    """Mean negative log-likelihood ``-log N(y; mean, variance)`` over all elements."""
    return -gaussian_log_likelihood(y, mean, variance).mean()
