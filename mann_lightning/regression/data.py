"""``GPEpisodes``: few-shot regression episodes drawn from a Gaussian process.

Each episode is one function ``f ~ GP(0, k)`` with fixed hyperparameters, observed at
``episode_length`` inputs ``x_t ~ U[x_low, x_high]^d`` with noise: ``y_t = f(x_t) + e_t``.
The model sees ``(x_t, y_{t-1})`` and predicts ``y_t`` (paper, Section 4.3, Figs. 5-6).
Batches are sampled on the trainer's device (one batched float64 Cholesky); batch ``i`` of
a stage is a deterministic function of the seed, the stage, the rank and ``i``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..data.stream import EpisodeDataModule, Stage
from .gp import GPPrior, KernelName, sample_gp


class GPEpisodeBatch(NamedTuple):
    """A batch of regression episodes.

    Attributes:
        inputs: ``x_t``, ``[batch, time, x_dim]`` float32.
        prev_labels: ``y_{t-1}``, ``[batch, time, 1]`` float32, zero at ``t = 0``.
        targets: Noisy ``y_t``, ``[batch, time, 1]`` float32.
        function: Noise-free ``f(x_t)``, ``[batch, time]`` float64 (for plots).
    """

    inputs: Tensor
    prev_labels: Tensor
    targets: Tensor
    function: Tensor


def sample_gp_episodes(
    prior: GPPrior,
    batch_size: int,
    episode_length: int,
    x_dim: int,
    x_low: float,
    x_high: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> GPEpisodeBatch:
    """Draw ``batch_size`` episodes of ``episode_length`` points from ``prior`` on ``device``."""
    shape = (batch_size, episode_length, x_dim)
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
    x = x_low + (x_high - x_low) * u
    f, y = sample_gp(x, prior, generator)
    targets = y.float().unsqueeze(-1)
    prev = torch.cat([torch.zeros_like(targets[:, :1]), targets[:, :-1]], dim=1)
    return GPEpisodeBatch(x.float(), prev, targets, f)


class GPEpisodes(EpisodeDataModule):
    """Episodes of functions drawn from a GP prior with fixed hyperparameters.

    Args:
        x_dim: Input dimensions ``d`` (the paper shows 1, 2 and 3).
        episode_length: Points per episode ``T`` (paper: up to about 20-50).
        kernel: ``"se"`` (squared exponential, default), ``"matern32"`` or ``"matern52"``.
        lengthscale: Kernel lengthscale, shared by all dimensions.
        signal_variance: Prior variance of ``f``.
        noise_variance: Variance of the observation noise on ``y``.
        x_low: Lower end of the uniform input range, per dimension.
        x_high: Upper end of the uniform input range, per dimension.
        batch_size: Episodes per batch.
        train_batches_per_epoch: Training batches per epoch (the stream never repeats).
        val_batches: Fixed validation batches (shared out among DDP ranks).
        test_batches: Fixed test (and predict) batches (shared out among DDP ranks).
        seed: Seed of the training stream; batch ``i`` depends only on ``(seed, rank, i)``.
        eval_seed: Seed of the fixed validation/test episodes (independent of ``seed``, so
            runs with different training seeds are tested on the same episodes).
        prefetch: On a CPU, draw the next batch in a background thread while the model
            trains on the current one (the same batches either way).
    """

    def __init__(
        self,
        x_dim: int = 1,
        episode_length: int = 20,
        kernel: KernelName = "se",
        lengthscale: float = 1.0,
        signal_variance: float = 1.0,
        noise_variance: float = 0.01,
        x_low: float = -2.0,
        x_high: float = 2.0,
        batch_size: int = 32,
        train_batches_per_epoch: int = 1000,
        val_batches: int = 8,
        test_batches: int = 32,
        seed: int = 0,
        eval_seed: int = 1234,
        prefetch: bool = True,
    ) -> None:
        super().__init__(
            train_batches_per_epoch, val_batches, test_batches, seed, eval_seed, prefetch
        )
        # x_dim reaches the model through ``task``; kept out of the data's hparams because
        # Lightning refuses to log a key that both carry with different values (the
        # model's is None when it follows the data).
        self.save_hyperparameters(ignore=["x_dim"])
        for name, value, low in (
            ("x_dim", x_dim, 1),
            ("episode_length", episode_length, 1),
            ("batch_size", batch_size, 1),
        ):
            if value < low:
                raise ValueError(f"GPEpisodes: {name} must be >= {low}, got {value}.")
        if not x_low < x_high:
            raise ValueError(f"GPEpisodes: need x_low < x_high, got {x_low} and {x_high}.")
        self.prior = GPPrior(kernel, lengthscale, signal_variance, noise_variance).check()
        self.x_dim, self.episode_length = x_dim, episode_length
        self.x_low, self.x_high = x_low, x_high
        self.batch_size = batch_size

    @property
    def task(self) -> dict[str, Any]:
        """What the model needs from the data: ``x_dim`` and the GP ``prior`` (as a dict)."""
        return {"x_dim": self.x_dim, "prior": dict(self.prior._asdict())}

    def setup(self, stage: str | None = None) -> None:
        """Sample on the trainer's root device (CPU without a trainer)."""
        self.device = self.trainer_device()

    def batch(self, stage: Stage, index: int) -> GPEpisodeBatch:
        """Batch ``index`` of a stage, a deterministic function of the seeds, rank and index."""
        generator = self.generator(stage, index)
        return sample_gp_episodes(
            self.prior, self.batch_size, self.episode_length, self.x_dim,
            self.x_low, self.x_high, generator, self.device,
        )  # fmt: skip
