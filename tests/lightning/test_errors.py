"""Every error a user can cause ends the real ``mann`` command with a short message, status 2.

Each test checks the exit status, that the output is short (no traceback, the hint to get one
last) and that the cause is named. A few run ``python -m mann_lightning`` in a subprocess (the
real command: exit status, environment variables, a bug's traceback); the rest call the same
``main()`` in this process (``mann_in_process``), which saves an interpreter start (about 7 s
on 2 cores, mostly importing Lightning) per error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers.mann_runs import error_message, mann, mann_in_process, write_tiny_config

from mann_lightning.cli import build_cli
from mann_lightning.error_report import TRACEBACK_HINT, run_console, user_message
from mann_lightning.errors import TRACEBACK_ENV, UserError, is_user_error

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with ``tiny.yaml``, its ``best.ckpt`` and ``last.ckpt`` (trained in-process)."""
    from helpers.paths import omniglot_root

    root = omniglot_root()
    if root is None or not (root / "images_background.npz").is_file():
        pytest.skip("Omniglot arrays not found")
    folder = tmp_path_factory.mktemp("trained")
    config = write_tiny_config(folder, max_steps=5)  # one epoch: validated, best.ckpt
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        build_cli(["fit", "--config", str(config)])
    assert (folder / "runs/tiny/checkpoints/best.ckpt").is_file()
    yield folder


def fit_demo(tmp_path: Path, *overrides: str) -> str:
    return error_message(mann_in_process("fit", "--config", DEMO, *overrides, cwd=tmp_path))


def test_memory_smaller_than_reads(tmp_path: Path) -> None:
    override = ["--model.init_args.memory.init_args.memory_size", "1"]
    message = fit_demo(tmp_path, *override)
    assert "num_reads (2) must not exceed memory_size (1)" in message
    assert "Union subtypes" not in message
    assert "Accepted" not in message  # the memory's name was fine: no list of names


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "--model.init_args.memory.init_args.memory_size=-3",
            "memory_size must be a positive integer, got -3",
        ),
        ("--model.init_args.memory.init_args.memory_size=abc", "memory_size='abc'"),
        (
            "--model.init_args.memory.init_args.memory_sise=16",
            "no Memory takes 'memory_sise' (did you mean 'memory_size'?)",
        ),
        ("--trainer.max_steps=0", "--trainer.max_steps 0 trains nothing"),
        ("--data.init_args.image_size=5000", "image_size 5000 is larger than Omniglot's 105x105"),
        ("--data.init_args.max_classes=100000", "max_classes=100000 exceeds the 4400 classes"),
    ],
)
def test_settings_that_were_silent_or_a_traceback(
    tmp_path: Path, override: str, expected: str
) -> None:
    assert expected in fit_demo(tmp_path, override)


def test_more_classes_than_the_split_has(tmp_path: Path) -> None:
    assert "num_classes=2000" in fit_demo(tmp_path, "--data.init_args.num_classes", "2000")


def test_negative_image_size(tmp_path: Path) -> None:
    message = fit_demo(tmp_path, "--data.init_args.image_size=-3")
    assert "image_size must be a positive integer, got -3" in message


def test_value_not_among_choices(tmp_path: Path) -> None:
    message = fit_demo(tmp_path, "--data.init_args.label_encoding=binary")
    assert "--data.init_args.label_encoding" in message and "binary" in message


@pytest.mark.slow
def test_value_of_wrong_type(tmp_path: Path) -> None:
    message = fit_demo(tmp_path, "--trainer.max_steps=many")
    assert "--trainer.max_steps" in message and "many" in message


@pytest.mark.parametrize(
    ("option", "value", "names"),
    [
        (
            "--model.init_args.memory",
            "foo",
            "'lrua', 'ntm', 'sparse_lrua', 'none', or a class_path",
        ),
        ("--model.init_args.controller", "gru", "'lstm', 'feedforward', or a class_path"),
    ],
)
def test_unknown_name_lists_the_accepted_ones(
    tmp_path: Path, option: str, value: str, names: str
) -> None:
    message = fit_demo(tmp_path, option, value)
    assert option in message and value in message and f"Accepted: {names}" in message


@pytest.mark.parametrize(("value", "expected"), [("nan", "got nan"), ("1e-3x", "Got value: 1e-3x")])
def test_bad_float_is_named_plainly(tmp_path: Path, value: str, expected: str) -> None:
    message = fit_demo(tmp_path, "--model.init_args.lr", value)
    assert message.startswith("mann: error: --model.init_args.lr: "), message
    assert expected in message
    assert "<class" not in message
    if value == "nan":
        assert "finite number" in message


def test_accepted_names_are_not_repeated(tmp_path: Path) -> None:
    message = fit_demo(tmp_path, "--model.init_args.optimizer", "sgd")
    assert "'adam', 'rmsprop'" in message and "Accepted" not in message


def test_unknown_class_path(tmp_path: Path) -> None:
    message = fit_demo(tmp_path, "--model.init_args.memory", "mann_lightning.memory.NoSuchMemory")
    assert "--model.init_args.memory" in message and "NoSuchMemory" in message


def test_missing_config_file(tmp_path: Path) -> None:
    message = error_message(mann_in_process("fit", "--config", "no_such.yaml", cwd=tmp_path))
    assert "--config" in message and "no_such.yaml" in message


@pytest.mark.slow
def test_missing_subcommand(tmp_path: Path) -> None:
    assert "subcommand" in error_message(mann(cwd=tmp_path))


def test_missing_checkpoint(trained: Path) -> None:
    message = error_message(
        mann_in_process("test", "--config", "tiny.yaml", "--ckpt_path", "x.ckpt", cwd=trained)
    )
    assert "--ckpt_path x.ckpt: no such file" in message


def test_truncated_checkpoint(trained: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes((trained / "runs/tiny/checkpoints/last.ckpt").read_bytes()[:5000])
    result = mann_in_process("test", "--config", "tiny.yaml", "--ckpt_path", broken, cwd=trained)
    assert "corrupt or truncated" in error_message(result)


@pytest.mark.slow
def test_file_that_is_not_a_checkpoint(trained: Path, tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, tmp_path / "plain.pt")
    result = mann_in_process(
        "test", "--config", "tiny.yaml", "--ckpt_path", tmp_path / "plain.pt", cwd=trained
    )
    assert "not a Lightning checkpoint" in error_message(result)
    # a state_dict alone (no Lightning version): a KeyError deep inside Lightning before
    state = torch.load(trained / "runs/tiny/checkpoints/last.ckpt", weights_only=True)
    torch.save({"state_dict": state["state_dict"]}, tmp_path / "weights.ckpt")
    result = mann_in_process(
        "test", "--config", "tiny.yaml", "--ckpt_path", tmp_path / "weights.ckpt", cwd=trained
    )
    assert "not a Lightning checkpoint" in error_message(result)
    # a PyTorch file with Python objects (as mann-continual's checkpoint.pt), and a text file
    torch.save({"plan": Path("x"), "weights": torch.zeros(3)}, tmp_path / "objects.pt")
    (tmp_path / "notes.ckpt").write_text("hello")
    for name, expected in (("objects.pt", "not a Lightning checkpoint"),
                           ("notes.ckpt", "not a PyTorch checkpoint file")):  # fmt: skip
        result = mann_in_process(
            "test", "--config", "tiny.yaml", "--ckpt_path", tmp_path / name, cwd=trained
        )
        message = error_message(result)
        assert expected in message and "corrupt" not in message, message


def test_checkpoint_of_another_model(trained: Path) -> None:
    config = REPO / "configs" / "gp_regression_1d.yaml"
    result = mann_in_process(
        "test", "--config", config, "--ckpt_path", "runs/tiny/checkpoints/last.ckpt", cwd=trained
    )
    message = error_message(result)
    assert "MANNClassifier" in message and "MANNRegressor" in message


def test_checkpoint_of_another_task(trained: Path) -> None:
    ckpt = "runs/tiny/checkpoints/last.ckpt"
    overrides = ["--data.init_args.num_classes=5", "--data.init_args.label_encoding=string"]
    result = mann_in_process(
        "test", "--config", "tiny.yaml", "--ckpt_path", ckpt, *overrides, cwd=trained
    )
    message = error_message(result)
    assert "num_classes=3 (configuration: 5)" in message and "label_encoding" in message


@pytest.mark.slow
def test_checkpoint_of_another_image_size(trained: Path) -> None:
    ckpt = "runs/tiny/checkpoints/last.ckpt"
    result = mann_in_process(
        "test",
        "--config",
        "tiny.yaml",
        "--ckpt_path",
        ckpt,
        "--data.init_args.image_size=12",
        cwd=trained,
    )
    message = error_message(result)
    assert "another task" in message and "input_size=100" in message


def test_config_disagrees_with_checkpoint(trained: Path) -> None:
    ckpt = "runs/tiny/checkpoints/last.ckpt"
    override = "--model.init_args.memory.init_args.memory_size=32"
    result = mann_in_process(
        "validate", "--config", "tiny.yaml", "--ckpt_path", ckpt, override, cwd=trained
    )
    assert "memory.init_args.memory_size=16 (configuration: 32)" in error_message(result)


def test_compile_is_not_part_of_the_architecture(trained: Path) -> None:
    """A checkpoint trained eagerly is evaluated (or resumed) compiled, and the other way."""
    ckpt = "runs/tiny/checkpoints/last.ckpt"
    override = "--model.init_args.compile=episode"
    result = mann_in_process(
        "validate", "--config", "tiny.yaml", "--ckpt_path", ckpt, override, cwd=trained
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("subcommand", "option"),
    [("test", "test_batches"), ("validate", "val_batches"), ("predict", "test_batches")],
)
def test_evaluating_no_batches_is_refused(trained: Path, subcommand: str, option: str) -> None:
    ckpt = "runs/tiny/checkpoints/last.ckpt"
    override = f"--data.init_args.{option}=0"
    result = mann_in_process(
        subcommand, "--config", "tiny.yaml", "--ckpt_path", ckpt, override, cwd=trained
    )
    assert f"{option} is 0, so there is nothing to {subcommand}" in error_message(result)


def test_evaluating_an_untrained_model_is_refused(trained: Path) -> None:
    message = error_message(mann_in_process("test", "--config", "tiny.yaml", cwd=trained))
    assert "needs a trained model" in message and "--allow_untrained" in message
    assert "last.ckpt" in message  # the checkpoints of the run are offered


@pytest.mark.slow
def test_best_checkpoint_outside_fit(trained: Path) -> None:
    """``--ckpt_path best`` outside fit is the run's best.ckpt (it was refused, while its own
    message named the file)."""
    result = mann_in_process("predict", "--config", "tiny.yaml", "--ckpt_path", "best", cwd=trained)
    assert result.returncode == 0, result.stderr[-2000:]


def test_unwritable_run_folder(trained: Path) -> None:
    overrides = ["--trainer.logger.init_args.save_dir=tiny.yaml/runs", "--trainer.max_steps=1"]
    message = error_message(
        mann_in_process("fit", "--config", "tiny.yaml", *overrides, cwd=trained)
    )
    assert "tiny.yaml is a file, not a folder" in message


def test_omniglot_not_found(tmp_path: Path) -> None:
    env = {"MANN_DATA_DIR": str(tmp_path / "none"), "MANN_CACHE_DIR": str(tmp_path / "cache")}
    write_tiny_config(tmp_path, max_steps=1)
    result = mann_in_process(
        "fit", "--config", "tiny.yaml", "--data.init_args.download=false", cwd=tmp_path, env=env
    )
    assert "Omniglot" in error_message(result)


def test_corrupt_omniglot_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("images_background.npz", "images_evaluation.npz"):
        (data / name).write_bytes(b"not an npz archive")
    env = {"MANN_DATA_DIR": str(data), "MANN_CACHE_DIR": str(tmp_path / "cache")}
    write_tiny_config(tmp_path, max_steps=1)
    result = mann_in_process(
        "fit", "--config", "tiny.yaml", "--data.init_args.download=false", cwd=tmp_path, env=env
    )
    message = error_message(result)
    assert "images_background.npz" in message and "corrupt" in message


def test_a_bug_keeps_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "buggy.py").write_text(
        "from lightning.pytorch.callbacks import Callback\n\n"
        "class Buggy(Callback):\n"
        "    def __init__(self) -> None:\n"
        "        self.size = {}['size']\n"
    )
    overrides = ["--trainer.callbacks+=buggy.Buggy"]
    result = mann(
        "fit", "--config", DEMO, *overrides, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}
    )
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "KeyError: 'size'" in result.stderr


@pytest.mark.slow
def test_traceback_on_request(tmp_path: Path) -> None:
    override = "--model.init_args.memory.init_args.memory_size=0"
    result = mann("fit", "--config", DEMO, override, cwd=tmp_path, env={"MANN_TRACEBACK": "1"})
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "memory_size must be a positive integer, got 0" in result.stderr


# ---------------------------------------------------------------- the rule, in-process
def test_run_console_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong_setting() -> None:
        raise UserError("x must be positive, got -1; use --x 1")

    monkeypatch.delenv(TRACEBACK_ENV, raising=False)
    with pytest.raises(SystemExit) as stopped:
        run_console(wrong_setting, prog="prog")
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        f"prog: error: x must be positive, got -1; use --x 1\n{TRACEBACK_HINT}\n"
    )
    with pytest.raises(KeyError):  # a bug keeps its traceback
        run_console(lambda: {}["key"], prog="prog")
    monkeypatch.setenv(TRACEBACK_ENV, "1")
    with pytest.raises(UserError):
        run_console(wrong_setting, prog="prog")


def test_user_errors_are_told_from_bugs() -> None:
    def wrapped(inner: BaseException, outer: BaseException) -> BaseException:
        try:
            try:
                raise inner
            except BaseException as error:
                raise outer from error
        except BaseException as error:
            return error

    assert is_user_error(FileNotFoundError(2, "No such file", "x.ckpt"))
    assert is_user_error(wrapped(RuntimeError("zip archive"), UserError("x.ckpt is corrupt")))
    assert not is_user_error(KeyError("size"))
    assert not is_user_error(ValueError("raised inside a library, not on purpose"))
    assert user_message(wrapped(KeyError("k"), UserError("told"))) == "told"


def test_config_that_is_not_valid_yaml(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("model:\n  init_args:\n    lr: [0.1\n")
    message = error_message(mann_in_process("fit", "--config", "broken.yaml", cwd=tmp_path))
    assert "not valid YAML" in message and "line 3, column 9" in message


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ("", "is empty (or only comments)"),
        ("# nothing set yet\n", "is empty (or only comments)"),
        ("- trainer\n- model\n", "holds a YAML list, not a mapping of settings"),
    ],
)
def test_config_without_settings_is_named(tmp_path: Path, text: str, told: str) -> None:
    (tmp_path / "blank.yaml").write_text(text)
    for args in (["fit", "--config", "blank.yaml"], ["validate", "-c", "blank.yaml"]):
        message = error_message(mann_in_process(*args, cwd=tmp_path))
        assert message.startswith(f"mann: error: --config blank.yaml {told}"), message
        assert "configs/omniglot_5way_onehot.yaml" in message


def test_fit_from_best_is_refused_with_the_way_to_resume(trained: Path) -> None:
    result = mann_in_process("fit", "--config", "tiny.yaml", "--ckpt_path", "best", cwd=trained)
    message = error_message(result)
    assert "--ckpt_path last" in message and "runs/tiny/checkpoints/best.ckpt" in message


def test_sizes_too_large_for_the_machine_are_a_user_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TRACEBACK_ENV, raising=False)
    with pytest.raises(SystemExit) as stopped:  # a real failed allocation (4 TiB)
        run_console(lambda: torch.empty(2**40), prog="prog")
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "can't allocate memory" in err and "lower batch_size, memory_size" in err
    assert "Traceback" not in err and len(err.splitlines()) == 2


def test_moved_names_still_import_from_errors() -> None:
    from mann_lightning import error_report, errors

    assert errors.run_console is run_console is error_report.run_console
    assert errors.user_message is user_message
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        errors.nothing  # noqa: B018
