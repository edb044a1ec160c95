"""The nearest-neighbour baselines (mann_lightning.baselines): search, labels, command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from mann_lightning.baselines import (
    bootstrap_ci,
    episode_counts,
    main,
    nearest_earlier_sklearn,
    nearest_earlier_torch,
    neighbour_predictions,
)
from mann_lightning.baselines.knn import default_out
from mann_lightning.data.episodes import episode_order
from mann_lightning.metrics import InstanceAccuracy

REPO = Path(__file__).resolve().parents[2]
STRING_CONFIG = REPO / "configs" / "omniglot_15way_string_lrua.yaml"


def per_step_sklearn(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The literal baseline: a KNeighborsClassifier fitted on steps ``< t`` at every ``t``."""
    preds = torch.zeros_like(labels)
    for b in range(features.shape[0]):
        for t in range(1, features.shape[1]):
            knn = KNeighborsClassifier(n_neighbors=1).fit(features[b, :t], labels[b, :t])
            preds[b, t] = int(knn.predict(features[b, t : t + 1])[0])
    return preds


def test_backends_agree_with_per_step_classifier(one_thread: None) -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3, 40, 6, generator=generator)
    labels = torch.randint(0, 5, (3, 40), generator=generator)
    by_sklearn, by_torch = nearest_earlier_sklearn(features), nearest_earlier_torch(features)
    assert torch.equal(by_sklearn, by_torch)
    assert (by_torch[:, 0] == -1).all() and (by_torch[:, 1] == 0).all()
    assert (by_torch[:, 1:] < torch.arange(1, 40)).all()  # always an earlier step
    reference = per_step_sklearn(features, labels)
    assert torch.equal(neighbour_predictions(by_sklearn, labels), reference)


def hand_built_episode(num_classes: int = 5, per_class: int = 10, string: bool = False):
    """One episode whose drawings of a class are identical images (distinct per class)."""
    rand = lambda *shape: torch.rand(*shape, generator=torch.Generator().manual_seed(1))  # noqa: E731
    _, slot, instances = episode_order(1, num_classes, per_class, rand)
    prototypes = torch.eye(num_classes, 400) * 3.0  # far apart
    inputs = prototypes[slot]  # [1, T, 400]
    labels = torch.randperm(num_classes, generator=torch.Generator().manual_seed(2))[slot]
    if string:  # distinct five-character strings, equal in their first four characters
        labels = torch.stack([torch.zeros_like(labels)] * 4 + [labels], dim=-1)
    return inputs, labels, instances


@pytest.mark.parametrize("string", [False, True])
def test_identical_images_are_recognised_from_the_second_presentation(string: bool) -> None:
    inputs, labels, instances = hand_built_episode(string=string)
    for search in (nearest_earlier_sklearn, nearest_earlier_torch):
        preds = neighbour_predictions(search(inputs), labels)
        metric = InstanceAccuracy(10)
        metric.update(preds, labels, instances)
        accuracy = metric.compute()
        assert torch.equal(accuracy[1:], torch.ones(9, dtype=torch.float64))
        # 1st presentations: another class's label, or the fixed guess 0 / "00000" at t = 0
        first_correct = 1.0 if labels[0, 0].eq(0).all() else 0.0
        assert accuracy[0].item() == pytest.approx(first_correct / 5)


def test_string_prediction_is_the_whole_neighbour_string() -> None:
    targets = torch.tensor([[[1, 2, 3, 4, 0], [1, 2, 3, 4, 1], [1, 2, 3, 4, 1]]])
    preds = neighbour_predictions(torch.tensor([[-1, 0, 1]]), targets)
    assert torch.equal(preds[0, 0], torch.zeros(5, dtype=torch.long))
    assert torch.equal(preds[0, 1:], targets[0, :2])
    correct, steps = episode_counts(preds, targets, torch.tensor([[1, 1, 2]]))
    assert correct[0, :2].tolist() == [0, 1]  # 4 of 5 characters right is wrong
    assert steps[0, :2].tolist() == [2, 1]


def test_default_folder_depends_on_the_class_count() -> None:
    """A rerun with another --num-classes must not overwrite the config's results."""
    config = Path("configs/omniglot_15way_string_lrua.yaml")
    plain = default_out(config, "pixels", None)
    assert plain == Path("runs/knn/omniglot_15way_string_lrua_pixels")
    assert default_out(config, "pixels", 5) == Path(
        "runs/knn/omniglot_15way_string_lrua_pixels_5way"
    )
    assert len({plain, default_out(config, "pixels", 5), default_out(config, "pixels", 15)}) == 3


def test_bootstrap_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(0)
    steps = np.full((200, 2), 5)
    correct = np.stack([rng.binomial(5, 0.3, 200), np.full(200, 5)], axis=1)
    low, high = bootstrap_ci(correct, steps)
    point = correct.sum(0) / steps.sum(0)
    assert low[0] < point[0] < high[0] and high[0] - low[0] < 0.1
    assert low[1] == high[1] == 1.0
    assert np.array_equal(bootstrap_ci(correct, steps), np.stack([low, high]))  # seeded


def test_command_on_a_small_test_set(omniglot: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pixels"
    argv = ["--config", str(STRING_CONFIG), "--test-batches", "2", "--out", str(out)]
    assert main([*argv, "--features", "pixels"]) == 0
    result = json.loads((out / "test_results.json").read_text())
    assert result["model"] == "kNN (raw pixels)" and result["episodes"] == 32
    assert list(result["accuracy_percent"]) == ["1st", "2nd", "3rd", "4th", "5th", "10th"]
    assert result["steps_per_instance"] == [32 * 15] * 10
    assert result["accuracy_percent"]["1st"] < 1 < result["accuracy_percent"]["2nd"]
    lo, hi = result["ci95_percent"]["2nd"]
    assert lo <= result["accuracy_percent"]["2nd"] <= hi
    assert "| kNN (raw pixels) |" in (out / "test_results.md").read_text()
    assert "| kNN (raw pixels) |" in capsys.readouterr().out

    ae_out, model = tmp_path / "ae", tmp_path / "ae.pt"
    ae_argv = [*argv[:-1], str(ae_out), "--features", "autoencoder", "--autoencoder", str(model)]
    assert main([*ae_argv, "--autoencoder-epochs", "1", "--num-classes", "5"]) == 0
    result = json.loads((ae_out / "test_results.json").read_text())
    assert result["model"] == "kNN (autoencoder features)" and result["num_classes"] == 5
    assert result["autoencoder"]["train_images"] == 1100 * 20 * 4  # training classes only
    assert model.is_file()
    # a saved model with other settings is refused, not silently reused
    assert main([*ae_argv, "--autoencoder-epochs", "2"]) == 2
    assert "trained with other settings" in capsys.readouterr().err
    # a file that is not a saved model is one line, not a traceback
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    assert main([*ae_argv, "--autoencoder", str(tmp_path / "junk.pt")]) == 2
    error = capsys.readouterr().err
    assert "is not a model saved by mann-knn" in error and "delete" not in error
    # a folder as the model file: refused before training, not after
    assert main([*ae_argv, "--autoencoder", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    # a rerun into the same --out keeps the earlier results
    earlier = (out / "test_results.json").read_text()
    assert main([*argv, "--features", "pixels"]) == 0
    assert (out / "test_results.previous-1.json").read_text() == earlier
    assert "kept as test_results.previous-1.json/.md" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--config", "missing.yaml"], "config not found"),
        (["--config", str(STRING_CONFIG), "--features", "colour"], "invalid choice"),
        (["--config", str(REPO / "configs" / "gp_regression_1d.yaml")], "not an Omniglot"),
        (["--config", str(STRING_CONFIG), "--num-classes", "500"], "num_classes=500"),
        (["--config", str(STRING_CONFIG), "--num-classes", "1"], "num_classes must be >= 2"),
        (["--config", str(STRING_CONFIG), "--test-batches", "0"], "--test-batches: '0' is not"),
        (["--config", str(STRING_CONFIG), "--test-batches", "-2"], "--test-batches: '-2' is not"),
        (["--config", str(STRING_CONFIG), "--autoencoder-epochs", "x"], "--autoencoder-epochs"),
        (["--config", str(STRING_CONFIG), "--out", str(REPO / "README.md" / "x")], "not a folder"),
    ],
)
def test_bad_input_is_one_line_and_status_2(extra: list[str], message: str, capsys) -> None:
    assert main(extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("mann-knn: error:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data:\n  init_args:\n    num_clases: 5\n", "no setting 'num_clases' (did you mean"),
        ("just text\n", "has no data: section"),
        ("data: [\n", "config.yaml is not valid YAML"),
    ],
)
def test_a_malformed_config_is_one_line(tmp_path: Path, text: str, message: str, capsys) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("mann-knn: error:")


def test_more_classes_than_the_validation_characters(omniglot: Path, tmp_path: Path) -> None:
    """kNN draws no validation episodes: N up to the 423 test characters, not the 100 held out
    for validation."""
    out = tmp_path / "wide"
    argv = ["--config", str(STRING_CONFIG), "--num-classes", "120", "--test-batches", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    assert json.loads((out / "test_results.json").read_text())["num_classes"] == 120
