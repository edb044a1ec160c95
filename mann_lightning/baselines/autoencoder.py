"""The deep-feature extractor of the paper's kNN baseline: a small autoencoder.

Santoro et al. (2016, Table 2) compare the MANN with nearest neighbours on "deep features"
from an autoencoder with two 200-unit leaky-ReLU layers around a 32-unit bottleneck:
``400 -> 200 -> 32 -> 200 -> 400`` on 20x20 images. It is trained here with Adam and a
binary cross-entropy reconstruction loss (sigmoid output) on the images of the *training*
characters only: the ``split``'s training characters minus the ``val_characters`` carved out
for validation, with the 90-degree rotation classes when the data module uses them, i.e.
exactly the classes training episodes are drawn from. The 32 (linear) bottleneck units are
the features.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mann_lightning.data import OmniglotEpisodes, make_classes, rotate90, split_characters
from mann_lightning.data.splits import carve_validation
from mann_lightning.preflight import check_writable

log = logging.getLogger(__name__)

SPLIT_KEYS = ("split", "split_seed", "val_characters", "rotations", "image_size")
"""Data-module settings that fix the autoencoder's training images; a saved model is reused
only when they match."""


class Autoencoder(nn.Module):
    """``inputs -> hidden -> code -> hidden -> inputs`` with leaky-ReLU hidden layers.

    Args:
        input_size: Pixels per image (400 at 20x20).
        hidden_size: Units of the two hidden layers (200 in the paper).
        code_size: Bottleneck units, the kNN features (32 in the paper).
    """

    def __init__(self, input_size: int = 400, hidden_size: int = 200, code_size: int = 32) -> None:
        super().__init__()
        self.sizes = {"input_size": input_size, "hidden_size": hidden_size, "code_size": code_size}
        self.encoder = nn.Sequential(
            nn.Linear(input_size, hidden_size), nn.LeakyReLU(), nn.Linear(hidden_size, code_size)
        )
        self.decoder = nn.Sequential(
            nn.Linear(code_size, hidden_size), nn.LeakyReLU(), nn.Linear(hidden_size, input_size)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction logits ``[..., input_size]`` (apply a sigmoid for pixels)."""
        return self.decoder(self.encoder(x))

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """Bottleneck codes ``[..., code_size]`` of images ``[..., input_size]``."""
        return self.encoder(x.float())


def training_images(data: OmniglotEpisodes) -> Tensor:
    """The flattened images ``[M, S * S]`` of a data module's training classes.

    Args:
        data: The data module; its split, split seed, validation carve-out and rotation
            setting choose the characters (the held-out test characters are never included).

    Returns:
        Every drawing of every training class, float32 in ``[0, 1]`` (ink = 1.0).
    """
    data.to_device("cpu")
    assert data.arrays is not None
    arrays = data.arrays
    train, _ = split_characters(data.split, arrays.is_background, data.split_seed)
    train, _ = carve_validation(train, data.val_characters, data.split_seed)
    classes = make_classes(train, data.rotations)
    images = arrays.to_float()[classes.characters]  # [K, drawers, S, S]
    k, drawers, size, _ = images.shape
    images = images.reshape(k * drawers, size, size)
    if classes.rotations is not None:
        images = rotate90(images, classes.rotations.repeat_interleave(drawers))
    return images.reshape(k * drawers, size * size)


def train_autoencoder(
    images: Tensor,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> tuple[Autoencoder, float]:
    """Train an :class:`Autoencoder` on ``images`` with Adam and a BCE reconstruction loss.

    Args:
        images: ``[M, input_size]`` float images in ``[0, 1]``.
        epochs: Passes over the images.
        batch_size: Images per Adam step.
        lr: Adam learning rate.
        seed: Seed of the initialisation and the shuffling.

    Returns:
        The trained model (in eval mode) and the mean loss of the last epoch.
    """
    if epochs < 1:
        raise ValueError(f"autoencoder epochs must be >= 1, got {epochs}.")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = Autoencoder(images.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    mean = float("nan")
    for epoch in range(epochs):
        start, total, count = time.perf_counter(), 0.0, 0
        for index in torch.randperm(images.shape[0], generator=generator).split(batch_size):
            batch = images[index]
            loss = loss_fn(model(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * index.numel(), count + index.numel()
        mean = total / count
        log.info("autoencoder epoch %d/%d: BCE %.4f (%.1f s)", epoch + 1, epochs, mean,
                 time.perf_counter() - start)  # fmt: skip
    return model.eval(), mean


def split_settings(data: OmniglotEpisodes) -> dict[str, Any]:
    """The settings of ``data`` that decide the autoencoder's training images."""
    return {key: getattr(data, key) for key in SPLIT_KEYS}


def save_autoencoder(model: Autoencoder, path: Path, meta: dict[str, Any]) -> None:
    """Save the weights, layer sizes and ``meta`` (training settings) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "sizes": model.sizes, "meta": meta}, path)


def load_autoencoder(path: Path) -> tuple[Autoencoder, dict[str, Any]]:
    """Load a model saved by :func:`save_autoencoder`; returns it (eval mode) and its meta."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = Autoencoder(**saved["sizes"])
        model.load_state_dict(saved["state_dict"])
        return model.eval(), saved["meta"]
    except Exception as error:  # truncated, foreign or not a torch file at all
        raise ValueError(
            f"autoencoder {path} is not a model saved by mann-knn ({type(error).__name__}: "
            f"{error}); pass another --autoencoder path (a new one is trained there)."
        ) from error


def get_autoencoder(
    data: OmniglotEpisodes, path: Path, epochs: int, seed: int = 0
) -> tuple[Autoencoder, dict[str, Any]]:
    """Load the autoencoder at ``path`` if it exists, else train it and save it there.

    A saved model is reused only if it was trained on the same training characters (same
    split settings) for the same number of epochs; otherwise a ``ValueError`` names the
    difference (delete the file or pass another path).

    Args:
        data: The data module whose training classes the model is (or was) trained on.
        path: The model file.
        epochs: Training epochs.
        seed: Training seed.

    Returns:
        The model and its meta (settings, ``train_images``, ``final_bce``, ``train_s``).
    """
    wanted = {**split_settings(data), "epochs": epochs, "seed": seed}
    if path.is_file():
        model, meta = load_autoencoder(path)
        differ = {k: (meta.get(k), v) for k, v in wanted.items() if meta.get(k) != v}
        if differ:
            raise ValueError(
                f"autoencoder {path} was trained with other settings (saved, wanted): {differ}; "
                "pass another --autoencoder path (a new one is trained there)."
            )
        log.info("autoencoder loaded from %s", path)
        return model, meta
    if path.exists():  # not a file: a folder
        raise ValueError(f"--autoencoder {path} is a folder; give a file path (model.pt).")
    check_writable([("--autoencoder folder", path.parent)], fix="Give another --autoencoder.")
    images = training_images(data)
    start = time.perf_counter()
    model, final = train_autoencoder(images, epochs, seed=seed)
    meta = {**wanted, "train_images": int(images.shape[0]), "final_bce": final,
            "train_s": round(time.perf_counter() - start, 1)}  # fmt: skip
    save_autoencoder(model, path, meta)
    log.info("autoencoder trained on %d images, saved to %s", images.shape[0], path)
    return model, meta
