"""Omniglot episodes (Santoro et al. 2016): sources, cache, splits, on-device sampling.

See ``docs/data.md``. The usual entry point is :class:`OmniglotEpisodes`; the continual
layer uses :func:`load_omniglot` / :class:`OmniglotArrays` for alphabet membership.
"""

from __future__ import annotations

from .augment import random_affine, rotate90
from .cache import OmniglotArrays, load_omniglot
from .datamodule import OmniglotEpisodes
from .download import OFFICIAL_FILES, FileSpec, download_file, download_official
from .episodes import (
    NUM_STRINGS,
    EpisodeBatch,
    LabelEncoding,
    code_to_string,
    decode_labels,
    encode_targets,
    label_size,
    sample_episodes,
    string_to_code,
)
from .errors import OmniglotDataError, OmniglotNotFoundError
from .sources import Source, cache_root, read_official, resolve_sources
from .splits import ClassSet, alphabet_split, make_classes, paper_split, split_characters
from .stream import EpisodeDataModule, EpisodeStream, Stage, stream_seed

__all__ = [
    "NUM_STRINGS",
    "OFFICIAL_FILES",
    "ClassSet",
    "EpisodeBatch",
    "EpisodeDataModule",
    "EpisodeStream",
    "FileSpec",
    "LabelEncoding",
    "OmniglotArrays",
    "OmniglotDataError",
    "OmniglotEpisodes",
    "OmniglotNotFoundError",
    "Source",
    "Stage",
    "alphabet_split",
    "cache_root",
    "code_to_string",
    "decode_labels",
    "download_file",
    "download_official",
    "encode_targets",
    "label_size",
    "load_omniglot",
    "make_classes",
    "paper_split",
    "random_affine",
    "read_official",
    "resolve_sources",
    "rotate90",
    "sample_episodes",
    "split_characters",
    "stream_seed",
    "string_to_code",
]
