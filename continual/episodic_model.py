"""``EpisodicMANN``: a :class:`~mann_lightning.MANN` as the model of a stock Avalanche strategy.

Avalanche strategies call ``model(mb_x)`` with one tensor and hand ``mb_output`` to a
``[batch, classes]`` criterion and metrics. :class:`EpisodicMANN` makes a MANN fit that
contract without touching the strategy's loop:

* input: the plugin's minibatch ``x`` is the episode packed as ``[B, T, F + L]``, the
  images ``x_t`` followed by the encoded previous labels ``y_{t-1}``;
* output: one row per step, ``[B * T, C]``. For one-hot labels ``C = N`` (the logits); for
  five-character string labels ``C = 5 ** 5 = 3125``, the joint log-probability of every
  string (the sum of the five characters' log-softmaxes). Avalanche's stock
  ``CrossEntropyLoss`` on these rows is then exactly the Lightning layer's loss (mean over
  steps of the cross-entropy, for strings summed over the five characters), and its stock
  accuracy metrics count a step correct exactly when the whole label is right;
* memory: the recurrent state is carried between training batches or wiped according to
  ``wipe`` (:mod:`mann_lightning.persistence`). Evaluation never changes the carried
  training state; it starts from an empty memory, or from a copy of the training memory
  with ``eval_memory="training"``. The carried state is in ``state_dict()`` (as extra
  state), so every checkpoint of the model holds it.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from mann_lightning.data.episodes import NUM_STRINGS, STRING_LENGTH, STRING_VALUES, LabelEncoding
from mann_lightning.model import MANN
from mann_lightning.persistence import MemoryCarry, WipePolicy, fill_state, state_leaves

EvalMemory = Literal["empty", "training"]


def string_log_probs(logits: Tensor) -> Tensor:
    """``[M, 25]`` string logits to ``[M, 3125]`` joint log-probabilities of all strings.

    Column ``c`` is the string whose characters are ``c`` written in base 5, first character
    most significant (:func:`~mann_lightning.data.episodes.string_to_code`).
    """
    chars = torch.log_softmax(logits.unflatten(-1, (STRING_LENGTH, STRING_VALUES)), -1)
    joint = chars[:, 0]
    for k in range(1, STRING_LENGTH):
        joint = (joint.unsqueeze(-1) + chars[:, k].unsqueeze(1)).flatten(1)
    return joint


class EpisodicMANN(nn.Module):
    """Wrap a :class:`~mann_lightning.MANN` for stock Avalanche strategies.

    Args:
        mann: The network; ``mann.num_outputs`` must be ``N`` (one-hot) or 25 (strings).
        label_encoding: ``"onehot"`` or ``"string"``: how the plugin encodes labels.
        wipe: ``"episode"`` (the paper: every batch of episodes starts from an empty
            memory), ``"experience"`` (carried between batches, wiped when a training
            experience starts) or ``"never"``.
        eval_memory: ``"empty"``: evaluation episodes start from an empty memory;
            ``"training"``: from a copy of the carried training memory (episode row ``b``
            from training row ``b % B_train``; empty if nothing is carried).
    """

    def __init__(
        self,
        mann: MANN,
        label_encoding: LabelEncoding = "onehot",
        wipe: WipePolicy = "episode",
        eval_memory: EvalMemory = "empty",
    ) -> None:
        super().__init__()
        if not isinstance(mann, MANN):
            raise TypeError(
                f"EpisodicMANN wraps a mann_lightning.MANN, got {type(mann).__name__}; build one "
                "with MANN(input_size=..., num_outputs=..., memory=...)."
            )
        if label_encoding not in ("onehot", "string"):
            raise ValueError(
                f"Unknown label_encoding {label_encoding!r}; use 'onehot' or 'string'."
            )
        if label_encoding == "string" and mann.num_outputs != STRING_LENGTH * STRING_VALUES:
            raise ValueError(
                f"String labels need a MANN with num_outputs=25, this one has {mann.num_outputs}."
            )
        if mann.label_size != mann.num_outputs:
            raise ValueError(
                f"EpisodicMANN: the MANN's label_size ({mann.label_size}) must equal its "
                f"num_outputs ({mann.num_outputs}): the previous label is fed back in the "
                "encoding the model outputs; build the MANN without label_size."
            )
        if eval_memory not in ("empty", "training"):
            raise ValueError(f"Unknown eval_memory {eval_memory!r}; use 'empty' or 'training'.")
        self.mann = mann
        self.label_encoding: LabelEncoding = label_encoding
        self.eval_memory: EvalMemory = eval_memory
        self.carry = MemoryCarry(wipe)

    @property
    def input_size(self) -> int:
        """Features of ``x_t``."""
        return self.mann.input_size

    @property
    def label_size(self) -> int:
        """Features of the encoded previous label ``y_{t-1}``."""
        return self.mann.label_size

    @property
    def num_classes(self) -> int | None:
        """``N`` for one-hot labels (``None`` for strings, whose width does not depend on N)."""
        return self.mann.num_outputs if self.label_encoding == "onehot" else None

    @property
    def output_size(self) -> int:
        """Columns of the flat output: ``N`` or 3125."""
        return self.mann.num_outputs if self.label_encoding == "onehot" else NUM_STRINGS

    def forward(self, packed: Tensor) -> Tensor:
        """``[B, T, F + L]`` packed episodes to ``[B * T, C]`` outputs (see the module doc)."""
        if packed.dim() != 3 or packed.shape[-1] != self.input_size + self.label_size:
            raise ValueError(
                f"EpisodicMANN expects packed episodes [batch, time, {self.input_size} + "
                f"{self.label_size}], got {tuple(packed.shape)}; use MANNEpisodePlugin, which "
                "turns the strategy's minibatches into episodes."
            )
        inputs, prev_labels = packed.split([self.input_size, self.label_size], -1)
        batch = packed.shape[0]
        if self.training:
            state = self.carry.initial(batch, lambda size: self._fresh(size, packed))
            logits, final = self.mann(inputs, prev_labels, state)
            self.carry.keep(final)
        else:
            logits, _ = self.mann(inputs, prev_labels, self._eval_state(batch, packed))
        flat = logits.flatten(0, 1)
        return flat if self.label_encoding == "onehot" else string_log_probs(flat)

    def start_experience(self) -> None:
        """A training experience starts: wipe the carried memory under ``"experience"``."""
        self.carry.new_experience()

    def _fresh(self, batch: int, like: Tensor) -> Any:
        return self.mann.initial_state(batch, like.device, like.dtype)

    def _eval_state(self, batch: int, like: Tensor) -> Any:
        """Empty, or a copy of the training memory (never the carried object itself)."""
        if self.eval_memory == "empty" or not self.carry.carries:
            return None
        carried = self.carry.peek(lambda size: self._fresh(size, like))
        if carried is None:
            return None
        leaves = state_leaves(carried)
        rows = torch.arange(batch, device=like.device) % leaves[0].shape[0]
        copies = [None if leaf is None else leaf.index_select(0, rows) for leaf in leaves]
        return fill_state(self._fresh(batch, like), copies)

    def get_extra_state(self) -> dict[str, Any]:
        """The carried memory, saved with the weights."""
        return self.carry.state_dict()

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_extra_state`; the wipe policy stays this model's."""
        state = dict(state)
        state.pop("wipe", None)
        self.carry.load_state_dict(state)
