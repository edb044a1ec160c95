"""Batched image transforms for episodes: exact 90-degree rotations and random affine jitter.

Everything works on a whole batch of images at once, on their device, with an explicit
``torch.Generator`` so that results are reproducible.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def check_jitter(owner: str, max_translation: float, max_rotation: float) -> None:
    """A clear ``ValueError`` unless ``0 <= max_translation <= 0.5`` (of the side) and
    ``0 <= max_rotation <= 180`` (degrees); NaN fails both."""
    if not (0 <= max_translation <= 0.5 and 0 <= max_rotation <= 180):
        raise ValueError(
            f"{owner}: need 0 <= max_translation <= 0.5 and 0 <= max_rotation <= 180, got "
            f"{max_translation} and {max_rotation}."
        )


@functools.lru_cache(maxsize=16)
def rot90_indices(size: int, device: torch.device | str = "cpu") -> Tensor:
    """Gather maps ``[4, size * size]``: ``flat[idx[k]]`` is ``torch.rot90(image, k)`` flattened."""
    base = torch.arange(size * size, device=device).view(size, size)
    return torch.stack([torch.rot90(base, k, dims=(0, 1)).flatten() for k in range(4)])


def rotate90(images: Tensor, quarter_turns: Tensor) -> Tensor:
    """Rotate each square image by its own multiple of 90 degrees (counter-clockwise).

    Args:
        images: ``[M, S, S]`` images (any dtype).
        quarter_turns: ``[M]`` integers; image ``m`` turns by ``90 * quarter_turns[m]`` degrees.

    Returns:
        ``[M, S, S]`` rotated images, exact (a pixel permutation, no interpolation).
    """
    size = images.shape[-1]
    index = rot90_indices(size, images.device)[quarter_turns.long() % 4]
    return images.reshape(-1, size * size).gather(1, index).view_as(images)


@functools.lru_cache(maxsize=16)
def _grid_basis(height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``[6, H * W * 2]``: rows x, y, 1 feeding the grid's x channel, then the y channel."""
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    plane = torch.stack([x, y, torch.ones_like(x)]).flatten(1)  # [3, H * W]
    basis = torch.zeros(6, height * width, 2, device=device, dtype=dtype)
    basis[:3, :, 0] = plane
    basis[3:, :, 1] = plane
    return basis.flatten(1)


def random_affine(
    images: Tensor,
    generator: torch.Generator | None,
    max_translation: float = 0.0,
    max_rotation: float = 0.0,
    quarter_turns: Tensor | None = None,
) -> Tensor:
    """Shift and rotate every image by its own random amount (bilinear, ink outside = 0).

    The shift along each axis is uniform in ``[-max_translation, max_translation]`` times the
    image side (``0.1`` at 20x20 is up to 2 pixels); the rotation angle is uniform in
    ``[-max_rotation, max_rotation]`` degrees about the image centre. ``quarter_turns`` adds
    an exact turn by a multiple of 90 degrees (as :func:`rotate90`) in the same resampling.

    Args:
        images: ``[M, S, S]`` float images, ink = 1.0.
        generator: Random generator on the images' device.
        max_translation: Largest shift as a fraction of the image side.
        max_rotation: Largest rotation in degrees.
        quarter_turns: ``[M]`` extra counter-clockwise quarter turns, or ``None``.

    Returns:
        ``[M, S, S]`` transformed images; the input itself when there is nothing to do.
    """
    if max_translation <= 0 and max_rotation <= 0:
        return images if quarter_turns is None else rotate90(images, quarter_turns)
    count, height, width = images.shape
    device, dtype = images.device, images.dtype
    u = torch.rand(count, 3, generator=generator, device=device, dtype=dtype).mul_(2).sub_(1)
    angle = u[:, 0] * (max_rotation * math.pi / 180.0)
    cos, sin = angle.cos(), angle.sin()
    if quarter_turns is not None:  # exact cos / sin of k * 90 degrees, composed
        # (rounded: exact 1, 0, -1; no table of host values, whose copy to a GPU would wait
        # for the device at every batch)
        quarter = (quarter_turns.long() % 4).to(dtype) * (math.pi / 2)
        c4, s4 = quarter.cos().round(), quarter.sin().round()
        cos, sin = c4 * cos - s4 * sin, s4 * cos + c4 * sin
    shift = u[:, 1:] * (2.0 * max_translation)  # normalised coordinates span 2 per side
    # affine_grid(align_corners=False) as one small GEMM: grid = coefficients @ basis, with
    # (x_in, y_in) = (cos x - sin y + dx, sin x + cos y + dy) at pixel centres in [-1, 1]
    coefficients = torch.stack([cos, -sin, shift[:, 0], sin, cos, shift[:, 1]], 1)
    basis = _grid_basis(height, width, device, dtype)
    grid = (coefficients @ basis).view(count, height, width, 2)
    out = F.grid_sample(
        images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out.squeeze(1)
