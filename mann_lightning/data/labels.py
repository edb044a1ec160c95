"""Label encodings of the episode task (Santoro et al. 2016).

* ``"onehot"``: ``N`` outputs; targets are class indices ``[B, T]``.
* ``"string"``: the paper's five-character strings, each character one of five values:
  25 outputs read as five independent 5-way softmaxes; targets are the characters
  ``[B, T, 5]``. A string is also an integer code in ``[0, 5 ** 5 = 3125)`` (base 5).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

LabelEncoding = Literal["onehot", "string"]
STRING_LENGTH = 5
STRING_VALUES = 5
NUM_STRINGS = STRING_VALUES**STRING_LENGTH


def label_size(encoding: LabelEncoding, num_classes: int) -> int:
    """Width of a label encoding: ``num_classes`` for one-hot, 25 for strings."""
    if encoding == "onehot":
        return num_classes
    if encoding == "string":
        return STRING_LENGTH * STRING_VALUES
    raise ValueError(f"Unknown label_encoding {encoding!r}; use 'onehot' or 'string'.")


def code_to_string(codes: Tensor) -> Tensor:
    """Integer codes in ``[0, 3125)`` ``[...]`` to their five characters ``[..., 5]`` (base 5)."""
    powers = STRING_VALUES ** torch.arange(STRING_LENGTH - 1, -1, -1, device=codes.device)
    return torch.div(codes.unsqueeze(-1), powers, rounding_mode="floor") % STRING_VALUES


def string_to_code(strings: Tensor) -> Tensor:
    """Five characters ``[..., 5]`` back to their integer code ``[...]``."""
    powers = STRING_VALUES ** torch.arange(STRING_LENGTH - 1, -1, -1, device=strings.device)
    return (strings * powers).sum(-1)


def encode_targets(targets: Tensor, encoding: LabelEncoding, num_classes: int) -> Tensor:
    """Encode targets as float vectors: ``[B, T, N]`` one-hot or ``[B, T, 25]`` strings."""
    if encoding == "onehot":
        return F.one_hot(targets, num_classes).float()
    if encoding == "string":
        return F.one_hot(targets, STRING_VALUES).float().flatten(-2)
    raise ValueError(f"Unknown label_encoding {encoding!r}; use 'onehot' or 'string'.")


def decode_labels(encoded: Tensor, encoding: LabelEncoding) -> Tensor:
    """Invert :func:`encode_targets` (or read predictions): argmax per (5-way) softmax."""
    if encoding == "onehot":
        return encoded.argmax(-1)
    return encoded.unflatten(-1, (STRING_LENGTH, STRING_VALUES)).argmax(-1)
