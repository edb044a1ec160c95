"""``preflight.compare_with_config``: which checkpoint/config differences refuse, which warn."""

from __future__ import annotations

from typing import Any

import pytest

from mann_lightning.errors import UserError
from mann_lightning.preflight import compare_with_config

CLASSIFIER = "mann_lightning.classifier.MANNClassifier"


def _memory(**init_args: Any) -> dict[str, Any]:
    args = {"memory_size": 16, "word_size": 8, "num_reads": 2, **init_args}
    return {"class_path": "mann_lightning.memory.LRUAMemory", "init_args": args}


def _checkpoint(**hparams: Any) -> dict[str, Any]:
    return {"state_dict": {}, "hyper_parameters": {"_class_path": CLASSIFIER, **hparams}}


def _config(**init_args: Any) -> dict[str, Any]:
    return {"class_path": CLASSIFIER, "init_args": init_args}


def test_initial_write_gate_bias_only_warns() -> None:
    """The trained weights replace the initial gate bias, so evaluating is allowed."""
    checkpoint = _checkpoint(memory=_memory(write_gate_bias=-2.0), lr=1e-4)
    warnings = compare_with_config("x.ckpt", checkpoint, _config(memory=_memory(), lr=1e-4))
    assert len(warnings) == 1
    assert "memory.init_args.write_gate_bias=-2.0 (configuration: None)" in warnings[0]
    assert "initial weights" in warnings[0]


def test_training_setting_warns_and_architecture_refuses() -> None:
    checkpoint = _checkpoint(memory=_memory(), lr=1e-4)
    warnings = compare_with_config("x.ckpt", checkpoint, _config(memory=_memory(), lr=3e-3))
    assert len(warnings) == 1 and "lr=0.0001 (configuration: 0.003)" in warnings[0]
    with pytest.raises(UserError, match=r"memory\.init_args\.memory_size=16 \(configuration: 32"):
        compare_with_config(
            "x.ckpt",
            checkpoint,
            _config(memory=_memory(memory_size=32, write_gate_bias=1.0), lr=1e-4),
        )


def test_same_settings_say_nothing() -> None:
    checkpoint = _checkpoint(memory=_memory(write_gate_bias=-1.0), controller="lstm")
    config = _config(memory=_memory(write_gate_bias=-1.0), controller="lstm")
    assert compare_with_config("x.ckpt", checkpoint, config) == []


def test_a_class_named_by_its_defining_module_is_the_same_class() -> None:
    """A checkpoint re-saved from Python records ``mann_lightning.memory.lrua.LRUAMemory``; a
    config says ``mann_lightning.memory.LRUAMemory``. Both are one class: accepted."""
    saved = {**_memory(), "class_path": "mann_lightning.memory.lrua.LRUAMemory"}
    checkpoint = _checkpoint(memory=saved)
    config = _config(memory=_memory())
    assert compare_with_config("x.ckpt", checkpoint, config) == []
    other = {**_memory(), "class_path": "mann_lightning.memory.NTMMemory"}
    with pytest.raises(UserError, match="memory.class_path"):
        compare_with_config("x.ckpt", _checkpoint(memory=other), _config(memory=_memory()))
