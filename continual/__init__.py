"""The continual-learning layer: MANN meta-learning over Avalanche streams of experiences.

Imports point one way: this package uses ``mann_lightning`` (the torch core and the Lightning
layer's data and metrics), never the other way round. See ``docs/continual.md``.

* Streams: :class:`OmniglotAlphabetStream`, :class:`OmniglotCharacterStream` (Avalanche
  benchmarks built from the project's own Omniglot copy).
* Strategy side: :class:`EpisodicMANN` (the model a stock strategy trains),
  :class:`MANNEpisodePlugin` (episodes instead of minibatches), episode-aware metrics
  (:class:`PresentationAccuracy`).
* The ``mann-continual`` command: :mod:`continual.cli`, runs a whole stream from a YAML file
  with checkpoints that resume (:mod:`continual.run_state`).
"""

from .character_stream import OmniglotCharacterStream
from .episodic_model import EpisodicMANN, string_log_probs
from .metrics import PresentationAccuracy, presentation_accuracy_metrics
from .plugin import MANNEpisodePlugin
from .streams import OmniglotAlphabetStream

__all__ = [
    "EpisodicMANN",
    "MANNEpisodePlugin",
    "OmniglotAlphabetStream",
    "OmniglotCharacterStream",
    "PresentationAccuracy",
    "presentation_accuracy_metrics",
    "string_log_probs",
]
