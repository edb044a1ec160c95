"""The float64 GP reference: sampler, exact per-step posterior, posterior on a grid, NLL."""

from __future__ import annotations

import math

import pytest
import torch

from mann_lightning.regression import (
    GPPrior,
    gaussian_log_likelihood,
    gaussian_nll,
    gp_posterior,
    gp_step_predictive,
    kernel_matrix,
    sample_conditional_function,
    sample_gp,
)


@pytest.mark.parametrize("kernel", ["se", "matern52"])
def test_sampler_empirical_covariance_matches_kernel(kernel: str) -> None:
    prior = GPPrior(kernel, lengthscale=0.7, signal_variance=1.5, noise_variance=0.1)
    x = torch.tensor([[-1.0], [-0.5], [0.0], [0.3], [1.2]], dtype=torch.float64)
    draws = 40_000
    g = torch.Generator().manual_seed(0)
    f, y = sample_gp(x.expand(draws, 5, 1), prior, g)
    assert f.shape == y.shape == (draws, 5) and f.dtype == torch.float64
    k = kernel_matrix(x, x, prior)
    # Standard error of a covariance entry is about sqrt(2/n) * variance = 0.011 here.
    torch.testing.assert_close(f.T @ f / draws, k, atol=0.05, rtol=0)
    noisy = k + prior.noise_variance * torch.eye(5, dtype=torch.float64)
    torch.testing.assert_close(y.T @ y / draws, noisy, atol=0.05, rtol=0)
    assert f.mean(0).abs().max() < 0.03


def test_kernel_values() -> None:
    prior = GPPrior("se", lengthscale=2.0, signal_variance=3.0)
    x1 = torch.tensor([[0.0, 0.0]])
    x2 = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    expected = 3.0 * torch.tensor([[math.exp(-0.5 * 2 / 4), 1.0]], dtype=torch.float64)
    torch.testing.assert_close(kernel_matrix(x1, x2, prior), expected)


def _direct_predictive(x: torch.Tensor, y: torch.Tensor, prior: GPPrior, t: int):
    """Textbook float64 solve for y_t given y_0..y_{t-1} (noise included)."""
    k = kernel_matrix(x, x, prior) + (
        prior.noise_variance + prior.jitter * prior.signal_variance
    ) * torch.eye(len(x), dtype=torch.float64)
    if t == 0:
        return 0.0, float(k[0, 0])
    weights = torch.linalg.solve(k[:t, :t], k[:t, t])
    return float(weights @ y[:t]), float(k[t, t] - k[t, :t] @ weights)


def test_step_predictive_matches_direct_solve() -> None:
    prior = GPPrior("se", lengthscale=0.8, signal_variance=1.3, noise_variance=0.05)
    g = torch.Generator().manual_seed(1)
    x = 4 * torch.rand(3, 7, 2, generator=g, dtype=torch.float64) - 2
    _, y = sample_gp(x, prior, g)
    mean, var = gp_step_predictive(x, y, prior)
    assert mean.shape == var.shape == (3, 7) and mean.dtype == torch.float64
    for b in range(3):
        for t in range(7):
            m, v = _direct_predictive(x[b], y[b], prior, t)
            assert mean[b, t].item() == pytest.approx(m, abs=1e-10)
            assert var[b, t].item() == pytest.approx(v, abs=1e-10)
    # the first step is the prior predictive
    torch.testing.assert_close(var[:, 0], torch.full((3,), 1.35, dtype=torch.float64))


def test_posterior_on_queries_agrees_with_step_predictive() -> None:
    prior = GPPrior()
    g = torch.Generator().manual_seed(2)
    x = 4 * torch.rand(2, 6, 1, generator=g, dtype=torch.float64) - 2
    _, y = sample_gp(x, prior, g)
    step_mean, step_var = gp_step_predictive(x, y, prior)
    for t in range(6):
        mean, var = gp_posterior(x[:, :t], y[:, :t], x[:, t : t + 1], prior)
        torch.testing.assert_close(mean[:, 0], step_mean[:, t])
        torch.testing.assert_close(var[:, 0], step_var[:, t], atol=1e-7, rtol=0)
    _, f_var = gp_posterior(x, y, x, prior, noise=False)
    assert (f_var < step_var[:, :1]).all()  # observed points are nearly pinned down


def test_conditional_function_interpolates_observed_values() -> None:
    prior = GPPrior(lengthscale=0.5)
    g = torch.Generator().manual_seed(3)
    x = torch.linspace(-2, 2, 8, dtype=torch.float64)[:, None]
    f, _ = sample_gp(x, prior, g)
    values = sample_conditional_function(x, f, x, prior, g)
    torch.testing.assert_close(values, f, atol=1e-2, rtol=0)


def test_gaussian_log_likelihood_and_nll() -> None:
    y = torch.tensor([0.0, 1.0, -2.0])
    mean = torch.tensor([0.0, 0.5, 0.0])
    var = torch.tensor([1.0, 0.25, 4.0])
    expected = torch.distributions.Normal(mean, var.sqrt()).log_prob(y)
    torch.testing.assert_close(gaussian_log_likelihood(y, mean, var), expected)
    assert gaussian_log_likelihood(y[:1], mean[:1], var[:1]).item() == pytest.approx(
        -0.5 * math.log(2 * math.pi)
    )
    torch.testing.assert_close(gaussian_nll(y, mean, var), -expected.mean())


def test_prior_validation() -> None:
    with pytest.raises(ValueError, match="Unknown kernel"):
        GPPrior("rbf2").check()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        GPPrior(lengthscale=0.0).check()
