"""``OmniglotEpisodes``: arguments, splits, fixed evaluation episodes, Lightning integration."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from mann_lightning.data import EpisodeBatch, OmniglotArrays, OmniglotEpisodes, paper_split


def _module(data_dir: Path, **kwargs: object) -> OmniglotEpisodes:
    options: dict[str, object] = {"root": str(data_dir), "download": False}
    options.update(kwargs)
    return OmniglotEpisodes(**options)  # type: ignore[arg-type]


def _lookup(arrays: OmniglotArrays) -> dict[bytes, set[int]]:
    """Bytes of every image and of its 90/180/270-degree turns -> character rows."""
    table: dict[bytes, set[int]] = {}
    for k in range(4):
        turned = torch.rot90(arrays.images, k, dims=(2, 3)).flatten(2).numpy()
        for row in range(turned.shape[0]):
            for image in turned[row]:
                table.setdefault(image.tobytes(), set()).add(row)
    return table


def _characters(batch: EpisodeBatch, table: dict[bytes, set[int]]) -> set[int]:
    pixels = (batch.inputs * 255).round().to(torch.uint8).flatten(0, 1).numpy()
    found: set[int] = set()
    for image in pixels:
        assert image.tobytes() in table, "an episode image is not an Omniglot image"
        found |= table[image.tobytes()]
    return found


def test_properties_without_data() -> None:
    module = OmniglotEpisodes(root="/does/not/exist", download=False, image_size=28)
    assert (module.input_size, module.label_size, module.num_outputs) == (784, 5, 5)
    strings = OmniglotEpisodes(label_encoding="string", num_classes=15, download=False)
    assert (strings.input_size, strings.label_size, strings.num_outputs) == (400, 25, 25)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 424, "val_characters": 0}, "423 classes of the held-out"),
        (
            {"num_classes": 700, "split": "alphabet", "val_characters": 0},
            "659 classes of the held-out",
        ),
        ({"num_classes": 101}, "100 classes of the validation characters.*raise val_characters"),
        ({"num_classes": 424, "val_characters": 500}, "423 classes of the held-out test"),
        ({"label_encoding": "binary"}, "Unknown label_encoding 'binary'"),
        ({"split": "random"}, "Unknown split 'random'"),
        ({"samples_per_class": 0}, "samples_per_class must be >= 1"),
        ({"num_classes": 1}, "num_classes must be >= 2"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"max_translation": 0.9}, "max_translation"),
        ({"image_size": 106}, "image_size 106 is larger than Omniglot's 105x105"),
        ({"image_size": 2.5}, "image_size must be a positive integer"),
        ({"max_classes": 4401}, "max_classes=4401 exceeds the 4400 classes"),
        ({"max_classes": 1101, "rotations": False}, "max_classes=1101 exceeds the 1100"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OmniglotEpisodes(download=False, **kwargs)  # type: ignore[arg-type]


def test_set_episode_shape(data_dir: Path) -> None:
    module = _module(data_dir, num_classes=15)
    module.set_episode_shape(100, 10)
    batch = module.batch("train", 0)
    assert batch.inputs.shape == (16, 1000, 400) and batch.prev_labels.shape == (16, 1000, 100)
    assert module.num_outputs == 100
    with pytest.raises(ValueError, match="num_classes=500"):
        module.set_episode_shape(500, 10)


def test_paper_split() -> None:
    train, test = paper_split(seed=0)
    assert (len(train), len(test)) == (1200, 423)
    assert torch.equal(torch.cat([train, test]).sort().values, torch.arange(1623))
    again, _ = paper_split(seed=0)
    other, _ = paper_split(seed=1)
    assert torch.equal(train, again) and not torch.equal(train, other)


@pytest.mark.parametrize("split", ["paper", "alphabet"])
def test_no_held_out_character_in_training(
    data_dir: Path, arrays: OmniglotArrays, split: str
) -> None:
    module = _module(data_dir, split=split, max_translation=0.0, max_rotation=0.0, num_classes=20)
    module.setup("fit")
    sizes = {"paper": (1100, 423), "alphabet": (864, 659)}[split]
    assert (len(module._classes["train"]), len(module._classes["test"])) == (4 * sizes[0], sizes[1])
    train_rows = set(module._classes["train"].characters.tolist())
    val_rows = set(module._classes["val"].characters.tolist())
    held_out = set(module.held_out_classes().characters.tolist())
    assert len(val_rows) == 100 and not (train_rows | held_out) & val_rows
    assert not train_rows & held_out and len(train_rows) + len(val_rows) + len(held_out) == 1623
    if split == "alphabet":
        background = set(torch.nonzero(arrays.is_background).flatten().tolist())
        assert train_rows | val_rows == background
    table = _lookup(arrays)
    seen_train = set().union(*(_characters(module.batch("train", i), table) for i in range(4)))
    seen_val = _characters(module.batch("val", 0), table)
    seen_test = _characters(module.batch("test", 0), table)
    assert seen_train and seen_train <= train_rows
    assert seen_val and seen_val <= val_rows  # checkpoints are chosen without the test characters
    assert seen_test and seen_test <= held_out


def test_validation_on_test_characters_only_when_asked(data_dir: Path) -> None:
    module = _module(data_dir, val_characters=0)
    module.setup("fit")
    assert len(module._classes["train"]) == 4 * 1200
    assert torch.equal(module._classes["val"].characters, module.held_out_classes().characters)
    with pytest.raises(ValueError, match="val_characters must be in"):
        _module(data_dir, val_characters=1200)


def test_seeding_and_fixed_evaluation(data_dir: Path) -> None:
    a, b = _module(data_dir, seed=1), _module(data_dir, seed=1)
    c = _module(data_dir, seed=2)
    for _ in range(3):
        a.batch("train", 0)  # drawing order does not matter
    assert torch.equal(a.batch("train", 3).inputs, b.batch("train", 3).inputs)
    assert not torch.equal(a.batch("train", 3).inputs, c.batch("train", 3).inputs)
    assert not torch.equal(a.batch("train", 3).inputs, a.batch("train", 4).inputs)
    assert torch.equal(a.batch("val", 1).inputs, c.batch("val", 1).inputs)  # independent of seed
    assert not torch.equal(a.batch("val", 1).inputs, a.batch("test", 1).inputs)
    other_eval = _module(data_dir, eval_seed=99)
    assert not torch.equal(a.batch("val", 1).inputs, other_eval.batch("val", 1).inputs)


def test_ranks_draw_different_training_and_disjoint_evaluation(data_dir: Path) -> None:
    modules = [_module(data_dir, val_batches=5, test_batches=7) for _ in range(2)]
    for rank, module in enumerate(modules):
        module.trainer = SimpleNamespace(  # type: ignore[assignment]
            global_rank=rank,
            world_size=2,
            strategy=SimpleNamespace(root_device=torch.device("cpu")),
        )
        module.setup("fit")
    assert [len(m.val_dataloader()) for m in modules] == [3, 2]
    assert list(modules[0].batch_indices("test")) == [0, 2, 4, 6] and list(
        modules[1].batch_indices("test")
    ) == [1, 3, 5]
    assert not torch.equal(modules[0].batch("train", 0).inputs, modules[1].batch("train", 0).inputs)


def test_fewer_evaluation_batches_than_processes_is_a_clear_error(data_dir: Path) -> None:
    module = _module(data_dir, val_batches=1, test_batches=0)
    module.trainer = SimpleNamespace(  # type: ignore[assignment]
        global_rank=1, world_size=2, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )
    with pytest.raises(ValueError, match=r"val_batches=1 cannot be shared out among 2 proc.*2 or"):
        len(module.val_dataloader())
    assert len(module.test_dataloader()) == 0  # none asked for: nothing to share


class _Recorder(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(405, 5)
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch: EpisodeBatch, index: int) -> torch.Tensor:
        assert isinstance(batch, EpisodeBatch)
        self.seen.append(batch.inputs.sum((1, 2)))
        logits = self.layer(torch.cat([batch.inputs, batch.prev_labels], -1))
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.targets.flatten())

    def validation_step(self, batch: EpisodeBatch, index: int) -> None:
        self.log("val_ink", batch.inputs.mean())

    def predict_step(self, batch: EpisodeBatch, index: int) -> torch.Tensor:
        return batch.targets

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(data_dir: Path, epochs: int, ckpt: str | None = None, save: Path | None = None):
    module, model = (
        _module(data_dir, train_batches_per_epoch=3, val_batches=2, test_batches=3),
        _Recorder(),
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, module, ckpt_path=ckpt)
    if save is not None:
        trainer.save_checkpoint(save)
    return module, model, trainer


def test_trainer_fit_resume_and_predict(data_dir: Path, tmp_path: Path) -> None:
    straight, model, _ = _fit(data_dir, 3)
    assert straight.train_batches_drawn == 9 and len(model.seen) == 9
    first, _, _ = _fit(data_dir, 2, save=tmp_path / "last.ckpt")
    assert first.state_dict()["train_batches_drawn"] == 6
    resumed, resumed_model, trainer = _fit(data_dir, 3, ckpt=str(tmp_path / "last.ckpt"))
    assert resumed.train_batches_drawn == 9
    assert torch.equal(torch.stack(resumed_model.seen), torch.stack(model.seen[6:]))
    predictions = trainer.predict(resumed_model, resumed)
    assert predictions is not None and len(predictions) == 3
    assert torch.equal(predictions[0], resumed.batch("test", 0).targets)
