"""InstanceAccuracy against hand-worked examples."""

from __future__ import annotations

import math

import pytest
import torch

from mann_lightning.metrics import InstanceAccuracy, markdown_table, paper_table


def test_hand_worked_onehot_unequal_counts() -> None:
    # One episode, 7 steps. Class A appears 4 times, class B 2 times, class C once.
    targets = torch.tensor([[0, 1, 0, 2, 0, 1, 0]])
    instances = torch.tensor([[1, 1, 2, 1, 3, 2, 4]])
    preds = torch.tensor([[1, 1, 0, 0, 0, 2, 1]])
    # correct:              F  T  T  F  T  F  F
    metric = InstanceAccuracy(max_instances=4)
    metric.update(preds, targets, instances)
    # 1st: steps 0,1,3 -> 1/3; 2nd: steps 2,5 -> 1/2; 3rd: step 4 -> 1/1; 4th: step 6 -> 0/1.
    expected = torch.tensor([1 / 3, 1 / 2, 1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(metric.compute(), expected)
    assert metric.total.tolist() == [3, 2, 1, 1]


def test_accumulates_over_updates_and_resets() -> None:
    metric = InstanceAccuracy(max_instances=2)
    metric.update(torch.tensor([[1, 1]]), torch.tensor([[1, 0]]), torch.tensor([[1, 2]]))
    metric.update(torch.tensor([[0, 0]]), torch.tensor([[0, 0]]), torch.tensor([[1, 2]]))
    torch.testing.assert_close(metric.compute(), torch.tensor([1.0, 0.5], dtype=torch.float64))
    metric.reset()
    assert metric.total.sum() == 0


def test_string_labels_need_all_characters() -> None:
    targets = torch.tensor([[[0, 1, 2, 3, 4], [4, 4, 4, 4, 4]]])
    preds = torch.tensor([[[0, 1, 2, 3, 4], [4, 4, 4, 4, 0]]])
    metric = InstanceAccuracy(max_instances=2)
    metric.update(preds, targets, torch.tensor([[1, 1]]))
    assert metric.compute()[0].item() == pytest.approx(0.5)


def test_unseen_columns_are_nan_and_late_presentations_ignored() -> None:
    metric = InstanceAccuracy(max_instances=3)
    metric.update(torch.tensor([[0, 0]]), torch.tensor([[0, 0]]), torch.tensor([[1, 7]]))
    values = metric.compute()
    assert values[0].item() == 1.0
    assert math.isnan(values[1].item()) and math.isnan(values[2].item())


def test_shape_errors_are_clear() -> None:
    metric = InstanceAccuracy()
    with pytest.raises(ValueError, match="same shape"):
        metric.update(torch.zeros(1, 3), torch.zeros(1, 4), torch.ones(1, 3))
    with pytest.raises(ValueError, match="instances"):
        metric.update(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 4))
    with pytest.raises(ValueError, match="max_instances"):
        InstanceAccuracy(max_instances=0)
    with pytest.raises(ValueError, match="integer presentation numbers"):
        metric.update(torch.zeros(1, 3), torch.zeros(1, 3), torch.full((1, 3), 1.7))


def test_zero_based_instances_are_refused() -> None:
    """0-based presentation numbers would put the 2nd presentation in the 1st column."""
    metric = InstanceAccuracy(max_instances=3)
    metric.update(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="2 steps had|1 steps had"):
        metric.compute()
    fine = InstanceAccuracy(max_instances=3)
    fine.update(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([[1, 2, 3]]))
    assert fine.compute().tolist() == [1.0, 1.0, 1.0]


def test_paper_table_columns() -> None:
    accuracy = torch.linspace(0.1, 1.0, 10, dtype=torch.float64)
    row = paper_table(accuracy)
    assert list(row) == ["1st", "2nd", "3rd", "4th", "5th", "10th"]
    assert row["2nd"] == pytest.approx(20.0) and row["10th"] == pytest.approx(100.0)
    table = markdown_table({"MANN": row})
    assert "| MANN | 10.0 | 20.0 | 30.0 | 40.0 | 50.0 | 100.0 |" in table


@pytest.mark.parametrize("value", [2.5, True, "3"])
def test_max_instances_must_be_an_integer(value: object) -> None:
    from mann_lightning.episode_metrics import EpisodeAccuracy

    for metric in (InstanceAccuracy, EpisodeAccuracy):
        with pytest.raises(ValueError, match="max_instances must be an integer >= 1"):
            metric(max_instances=value)  # type: ignore[arg-type]
