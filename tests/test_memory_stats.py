"""Memory statistics on tiny hand-made write weights and usages, worked out by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from mann_lightning import MANN, LRUAMemory, NTMMemory
from mann_lightning.memory_stats import (
    binding_overwrites,
    class_ids_of,
    memory_statistics,
    slots_written,
    trace_statistics,
    usage_entropy,
)

# Two heads over 4 slots for 3 steps; summed over heads and steps the slots get
# 0.6, 0.5, 0.6, 0.4: slots 0-2 reach 0.5 (slot 1 exactly), slot 3 does not.
HEADS = torch.tensor(
    [
        [[0.1, 0.0, 0.6, 0.1], [0.2, 0.0, 0.0, 0.0]],
        [[0.3, 0.0, 0.0, 0.1], [0.0, 0.0, 0.0, 0.1]],
        [[0.0, 0.25, 0.0, 0.05], [0.0, 0.25, 0.0, 0.05]],
    ]
).unsqueeze(0)  # [1, T=3, H=2, S=4]

# One head, 3 slots, 6 steps showing classes A B A C B C (0 1 0 2 1 2). Written slots
# (weight >= 0.5): t0 s0, t1 s1, t2 s0, t3 s1, t4 s0 (s2 only 0.4), t5 s1 and s0 (exactly 0.5).
CLASSES = torch.tensor([[0, 1, 0, 2, 1, 2]])
WRITES = torch.zeros(1, 6, 3)
for t, slot, weight in [(0, 0, 1), (1, 1, 1), (2, 0, 1), (3, 1, 1), (4, 0, 1), (4, 2, 0.4)]:
    WRITES[0, t, slot] = weight
WRITES[0, 5, 1], WRITES[0, 5, 0] = 1.0, 0.5


def test_slots_written_sums_heads_and_every_step() -> None:
    assert slots_written(HEADS).tolist() == [0.75]
    assert slots_written(HEADS[:, :2]).tolist() == [0.5]  # without the last step: slot 1 is 0
    assert slots_written(HEADS[:, 1:]).tolist() == [0.25]  # without the first: only slot 1
    assert slots_written(HEADS, threshold=0.55).tolist() == [0.5]


def test_binding_overwrites_image_attribution() -> None:
    # lag 0, a write stores the class of its own step. 7 writes. t2: A over A (same class);
    # t3: C over s1 owned by B, shown again at t4 -> counted; t4: B over s0 owned by A, last
    # shown at t2 -> not needed; t5: C over C, and C over s0 owned by B (last shown t4 < 5).
    assert binding_overwrites(WRITES, CLASSES).tolist() == [pytest.approx(1 / 7)]


def test_binding_overwrites_label_attribution() -> None:
    # lag 1, a write stores the class of the step before (its label arrives now):
    # t0 none, t1 A, t2 B, t3 A, t4 C, t5 B. t2: B over s0 owned by nobody; t3: A over A;
    # t4: C over s0 owned by B, shown at t4 itself (the read after this write) -> counted;
    # t5: B over s1 owned by A (last shown t2) no; B over s0 owned by C (shown at t5) -> counted.
    assert binding_overwrites(WRITES, CLASSES, lag=1).tolist() == [pytest.approx(2 / 7)]


def test_binding_overwrites_batch_threshold_and_errors() -> None:
    batch = torch.cat([WRITES, torch.zeros_like(WRITES)])
    result = binding_overwrites(batch, CLASSES.repeat(2, 1))
    assert result[0].item() == pytest.approx(1 / 7) and math.isnan(result[1].item())
    # above 0.5 the t5 write on s0 is gone: 1 overwrite of 6 writes
    assert binding_overwrites(WRITES, CLASSES, threshold=0.6).tolist() == [pytest.approx(1 / 6)]
    with pytest.raises(ValueError, match="class_ids"):
        binding_overwrites(WRITES, CLASSES[:, :5])
    with pytest.raises(ValueError, match="lag"):
        binding_overwrites(WRITES, CLASSES, lag=-1)


def test_usage_entropy_by_hand() -> None:
    usage = torch.tensor([[1.0, 1.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # p = (1/4, 1/4, 1/2, 0): H = 2 * (1/4) ln 4 + (1/2) ln 2 = 1.5 ln 2
    entropy = usage_entropy(usage)
    assert entropy[:2].tolist() == [pytest.approx(1.5 * math.log(2)), 0.0]
    assert math.isnan(entropy[2].item())
    assert usage_entropy(usage[:1], normalised=True).tolist() == [pytest.approx(0.75)]


def test_memory_statistics_from_states_uses_the_final_usage() -> None:
    usage = [torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0]])]
    states = [
        SimpleNamespace(write_weights=WRITES[:, t].unsqueeze(1), usage=usage[min(t, 1)])
        for t in range(6)
    ]
    stats = memory_statistics(states, CLASSES)
    assert stats.slots_written.tolist() == [pytest.approx(2 / 3)]  # s2 only ever 0.4
    assert stats.binding_overwrites.tolist() == [pytest.approx(1 / 7)]
    assert stats.usage_entropy.tolist() == [pytest.approx(math.log(2))]
    assert stats.summary() == pytest.approx(
        {"slots_written": 2 / 3, "binding_overwrites": 1 / 7, "usage_entropy": math.log(2)}
    )


def test_string_targets_become_distinct_ids() -> None:
    targets = torch.tensor([[[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]]])
    ids = class_ids_of(targets)
    assert ids.shape == (1, 3) and ids[0, 0] == ids[0, 2] != ids[0, 1]
    assert torch.equal(class_ids_of(CLASSES), CLASSES)


@pytest.mark.parametrize("memory", ["lrua", "ntm"])
def test_real_traces(memory: str, one_thread: None) -> None:
    torch.manual_seed(0)
    mem = LRUAMemory(8, 6, num_reads=2) if memory == "lrua" else NTMMemory(8, 6, num_reads=2)
    model = MANN(input_size=10, num_outputs=3, memory=mem, controller_size=16)
    inputs, targets = torch.rand(2, 12, 10), torch.randint(0, 3, (2, 12))
    prev = torch.zeros(2, 12, 3)
    prev[:, 1:] = torch.nn.functional.one_hot(targets[:, :-1], 3).float()
    stats = trace_statistics(model, inputs, prev, targets)
    assert all(value.shape == (2,) for value in stats)
    # LRUA: every step writes one full unit of weight per head, so slots fill up
    if memory == "lrua":
        assert (stats.slots_written > 0).all() and (stats.usage_entropy > 0).all()
        assert (stats.usage_entropy <= math.log(8) + 1e-6).all()
    else:
        assert stats.usage_entropy.isnan().all()  # the NTM-style memory keeps no usage
    finite = stats.binding_overwrites[~stats.binding_overwrites.isnan()]
    assert ((finite >= 0) & (finite <= 1)).all()
    with pytest.raises(ValueError, match="No memory states"):
        memory_statistics([], targets)
