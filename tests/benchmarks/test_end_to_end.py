"""``benchmarks/end_to_end.py --interleave`` trains its settings in turns in one process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import end_to_end  # noqa: E402


def test_interleaved_settings_take_turns_and_each_gets_a_time(
    omniglot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = []
    fit_seconds = end_to_end.fit_seconds

    def recorded(model, data, steps, warmup, device):  # noqa: ANN001, ANN202
        turns.append((id(model), steps))
        return fit_seconds(model, data, steps, warmup, device)

    monkeypatch.setattr(end_to_end, "fit_seconds", recorded)
    settings = {name: end_to_end.SETTINGS[name] for name in ("eager", "straightforward")}
    ms = end_to_end.interleaved_ms(settings, steps=3, rounds=2, warmup=1)
    assert list(ms) == ["eager", "straightforward"] and all(v > 0 for v in ms.values())
    models = [model for model, _ in turns]
    first, second = models[:2]
    assert first != second
    assert models == [first, second] * 3  # one untimed turn each, then two rounds in turns
    assert [steps for _, steps in turns] == [2, 2, 3, 3, 3, 3]  # warmup + 1, then steps
