"""The ``mann`` CLI in-process: every Omniglot config, test reload, resume, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mann_lightning.cli import build_cli, main
from mann_lightning.report import main as report_main

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith(("gp_", "continual_"))
)
FAST = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--data.init_args.train_batches_per_epoch=2",
    "--data.init_args.val_batches=1",
    "--data.init_args.test_batches=1",
    "--model.init_args.compile=none",  # compiling takes minutes; tests/test_compilation.py
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, omniglot: Path) -> Path:
    monkeypatch.chdir(tmp_path)  # configs write to ./runs
    return tmp_path


def _not_strict_json(constant: str) -> None:
    raise AssertionError(f"test_results.json holds {constant}, which strict JSON refuses")


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_fits_and_tests(config: Path, workdir: Path) -> None:
    name = config.stem
    main(["fit", "--config", str(config), "--trainer.max_steps=2", *FAST])
    best = workdir / "runs" / name / "checkpoints" / "best.ckpt"
    last = workdir / "runs" / name / "checkpoints" / "last.ckpt"
    assert best.is_file() and last.is_file()
    main(["test", "--config", str(config), f"--ckpt_path={best}", *FAST])
    results = sorted((workdir / "runs" / name).glob("version_*/test_results.json"))
    assert results, "mann test must write test_results.json next to the logs"
    payload = json.loads(results[-1].read_text(), parse_constant=_not_strict_json)
    assert list(payload["accuracy_percent"]) == ["1st", "2nd", "3rd", "4th", "5th", "10th"]
    markdown = results[-1].with_suffix(".md").read_text()
    assert markdown.startswith("| model |") and f"Checkpoint: `{best}` (step " in markdown
    # 95% bootstrap intervals over the test episodes, around the point estimates.
    assert list(payload["ci95_percent"]) == list(payload["accuracy_percent"])
    for column, (low, high) in payload["ci95_percent"].items():
        value = payload["accuracy_percent"][column]
        assert value is None or low <= value <= high, column  # null: not reached
    assert payload["episodes"] >= 1 and payload["steps_per_instance"][0] % payload["episodes"] == 0
    checkpoint = payload["checkpoint"]
    assert checkpoint["path"] == str(best) and 1 <= checkpoint["global_step"] <= 2
    assert checkpoint["wall_s"] > 0  # RunClock, in every training config
    assert (workdir / checkpoint["train_log_dir"] / "metrics.csv").is_file()
    assert report_main([str(results[-1])]) == 0


def test_validate_and_predict_write_outputs(workdir: Path, capsys) -> None:
    config = str(REPO / "configs" / "demo.yaml")
    main(["fit", "--config", config, "--trainer.max_steps=1", *FAST])
    ckpt = workdir / "runs" / "demo" / "checkpoints" / "last.ckpt"
    main(["validate", "--config", config, f"--ckpt_path={ckpt}", *FAST])
    main(["predict", "--config", config, f"--ckpt_path={ckpt}", *FAST])
    (path,) = (workdir / "runs" / "demo").glob("version_*/predictions.pt")
    assert f"predictions written to {path.relative_to(workdir)}" in capsys.readouterr().out
    predictions = torch.load(path)
    assert predictions["preds"].shape == (16, 50) == predictions["targets"].shape
    assert set(predictions["instances"].unique().tolist()) == set(range(1, 11))


def test_resume_continues_optimizer_steps_and_data(workdir: Path) -> None:
    config = str(REPO / "configs" / "demo.yaml")
    straight = build_cli(["fit", "--config", config, "--trainer.max_steps=6", *FAST])
    weights = {k: v.clone() for k, v in straight.model.state_dict().items()}

    for folder in (workdir / "runs").iterdir():
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file():
                    path.unlink()
    build_cli(["fit", "--config", config, "--trainer.max_steps=4", *FAST])
    resumed = build_cli(
        ["fit", "--config", config, "--trainer.max_steps=6", "--ckpt_path=last", *FAST]
    )
    assert resumed.trainer.global_step == 6
    assert resumed.datamodule.train_batches_drawn == 6
    for key, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, weights[key], msg=f"{key} differs after resume")


def test_checkpoint_alone_rebuilds_the_model(workdir: Path) -> None:
    from mann_lightning.classifier import MANNClassifier

    config = str(REPO / "configs" / "omniglot_15way_string_ntm.yaml")
    cli = build_cli(["fit", "--config", config, "--trainer.max_steps=1", *FAST])
    ckpt = workdir / "runs" / "omniglot_15way_string_ntm" / "checkpoints" / "last.ckpt"
    loaded = MANNClassifier.load_from_checkpoint(ckpt)
    assert type(loaded.model.memory).__name__ == "NTMMemory"
    assert loaded.label_encoding == "string" and loaded.num_classes == 15
    for key, value in cli.model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_python_module_entry_point_prints_config(workdir: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mann_lightning",
            "fit",
            "--config",
            str(REPO / "configs" / "demo.yaml"),
            "--print_config",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert "mann_lightning.classifier.MANNClassifier" in out
    assert "mann_lightning.memory.LRUAMemory" in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--data.init_args.num_classes=500"], "num_classes"),
        (["--model.init_args.memory.init_args.num_reads=64"], "num_reads"),
        (["--model.init_args.num_classes=7"], "disagrees"),
        # a negative norm would flip every gradient, zero would stop training: silently
        (["--model.init_args.grad_clip_norm=-1"], "grad_clip_norm must be positive"),
        (["--model.init_args.grad_clip_norm=0"], "grad_clip_norm must be positive"),
        (["--model.init_args.weight_decay=-0.1"], "weight_decay must be 0 or more"),
        # Lightning would skip clipping, numpy would raise deep inside, Lightning would divide
        # by zero; one drawing per class has no 2nd presentation
        (["--trainer.gradient_clip_val=0"], "gradient_clip_val must be positive"),
        (["--seed_everything=-1"], "--seed_everything must be in"),
        (["--trainer.accumulate_grad_batches=0"], "accumulate_grad_batches must be >= 1"),
        (["--data.init_args.samples_per_class=1"], "samples_per_class must be >= 2"),
    ],
)
def test_invalid_settings_stop_before_training(
    workdir: Path, override: list[str], message: str
) -> None:
    config = str(REPO / "configs" / "demo.yaml")
    with pytest.raises((ValueError, SystemExit)) as error:
        main(["fit", "--config", config, "--trainer.max_steps=1", *FAST, *override])
    text = str(error.value) + str(error.value.__context__ or "")
    assert message in text
    assert not list((workdir / "runs").rglob("*.ckpt")), "nothing may be trained"


def test_unknown_label_encoding_is_rejected(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    config = str(REPO / "configs" / "demo.yaml")
    with pytest.raises(SystemExit):
        main(["fit", "--config", config, "--data.init_args.label_encoding=binary"])
    assert "label_encoding" in capsys.readouterr().err


def test_untrained_evaluation_only_on_request(workdir: Path) -> None:
    config = str(REPO / "configs" / "demo.yaml")
    with pytest.raises(SystemExit) as stopped:
        main(["test", "--config", config, *FAST])
    assert stopped.value.code == 2
    assert not list((workdir / "runs").rglob("test_results.json")), "nothing may be evaluated"
    with pytest.warns(UserWarning, match="UNTRAINED"):
        main(["test", "--config", config, "--allow_untrained=true", *FAST])
    assert list((workdir / "runs").rglob("test_results.json"))


def test_a_run_ending_mid_epoch_saves_its_final_step(tmp_path: Path) -> None:
    """``max_steps`` 7 with epochs of 5 steps: no validation at step 7 wrote ``last.ckpt``
    (it held step 6), and a rerun of the finished run trained step 7 again."""
    from helpers.mann_runs import mann_in_process, write_tiny_config

    write_tiny_config(tmp_path, max_steps=7)
    assert mann_in_process("fit", "--config", "tiny.yaml", cwd=tmp_path).returncode == 0
    last = tmp_path / "runs/tiny/checkpoints/last.ckpt"
    saved = torch.load(last, weights_only=False)
    assert saved["global_step"] == 7
    again = mann_in_process("fit", "--config", "tiny.yaml", "--ckpt_path", "last", cwd=tmp_path)
    assert again.returncode == 0
    resumed = torch.load(last, weights_only=False)
    assert resumed["global_step"] == 7
    for name, tensor in saved["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name


def test_raising_max_steps_extends_a_run_as_if_it_had_been_longer(tmp_path: Path) -> None:
    """The end-of-training ``last.ckpt`` was written after Lightning had counted the cut
    epoch as finished: the extended run started a new epoch (one epoch ahead, and ``wipe:
    experience`` wiped the carried memory there), so its weights drifted from one long run."""
    from helpers.mann_runs import mann_in_process, write_tiny_config

    carried = ("--model.init_args.wipe", "experience", "--trainer.max_steps")
    ends = {}
    for name, runs in (("long", [12]), ("extended", [7, 12])):
        (tmp_path / name).mkdir()
        write_tiny_config(tmp_path / name)
        for index, steps in enumerate(runs):
            resume = ("--ckpt_path", "last") if index else ()
            done = mann_in_process(
                "fit", "--config", "tiny.yaml", *carried, str(steps), *resume, cwd=tmp_path / name
            )
            assert done.returncode == 0, done.stderr[-2000:]
        ends[name] = torch.load(
            tmp_path / name / "runs/tiny/checkpoints/last.ckpt", weights_only=False
        )
    long, extended = ends["long"], ends["extended"]
    assert (
        (extended["global_step"], extended["epoch"])
        == (long["global_step"], long["epoch"])
        == (12, 2)
    )
    for name, tensor in long["state_dict"].items():
        assert torch.equal(tensor, extended["state_dict"][name]), name


def test_a_new_fit_sets_the_earlier_runs_checkpoints_aside(tmp_path: Path) -> None:
    from helpers.mann_runs import mann_in_process, write_tiny_config

    write_tiny_config(tmp_path, max_steps=2)
    folder = tmp_path / "runs/tiny/checkpoints"
    assert mann_in_process("fit", "--config", "tiny.yaml", cwd=tmp_path).returncode == 0
    first = {p.name: p.read_bytes() for p in folder.glob("*.ckpt")}
    assert "last.ckpt" in first
    done = mann_in_process(
        "fit", "--config", "tiny.yaml", "--model.init_args.lr", "0.5", cwd=tmp_path,
        warnings_shown=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    kept = tmp_path / "runs/tiny/checkpoints.previous-1"
    assert {p.name: p.read_bytes() for p in kept.glob("*.ckpt")} == first
    assert "held the checkpoints of another run: moved to " in done.stderr
    assert "exists and is not empty" not in done.stderr  # moved before Lightning looks
    assert str(Path("runs/tiny/checkpoints.previous-1 (to continue")) in done.stderr
    assert (folder / "last.ckpt").read_bytes() != first["last.ckpt"]  # the new run's own
    second = {p.name: p.read_bytes() for p in folder.glob("*.ckpt")}
    # a fit that stops before training (no data) leaves the checkpoints where they are
    missing = {"MANN_DATA_DIR": str(tmp_path / "nowhere"), "MANN_CACHE_DIR": str(tmp_path / "c")}
    failed = mann_in_process(
        "fit", "--config", "tiny.yaml", "--data.init_args.root", str(tmp_path / "nowhere"),
        "--data.init_args.download", "false",
        cwd=tmp_path, env=missing,
    )  # fmt: skip
    assert failed.returncode == 2, failed.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in folder.glob("*.ckpt")} == second
    assert not (tmp_path / "runs/tiny/checkpoints.previous-2").exists()


def test_resuming_another_folders_checkpoint_sets_this_folders_aside(tmp_path: Path) -> None:
    """``--ckpt_path`` of a run set aside earlier used to overwrite the newer run's
    ``last.ckpt`` in the configured folder; a checkpoint inside that folder keeps it."""
    from helpers.mann_runs import mann_in_process, write_tiny_config

    write_tiny_config(tmp_path, max_steps=2)
    folder, kept = tmp_path / "runs/tiny/checkpoints", tmp_path / "runs/tiny/checkpoints.previous-1"
    for _ in range(2):  # the second run sets the first's folder aside
        assert mann_in_process("fit", "--config", "tiny.yaml", cwd=tmp_path).returncode == 0
    newer = {p.name: p.read_bytes() for p in folder.glob("*.ckpt")}
    done = mann_in_process(
        "fit", "--config", "tiny.yaml", "--trainer.max_steps", "4", "--ckpt_path",
        str(kept / "last.ckpt"), cwd=tmp_path, warnings_shown=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    moved = tmp_path / "runs/tiny/checkpoints.previous-2"
    assert {p.name: p.read_bytes() for p in moved.glob("*.ckpt")} == newer
    assert "the run resumed from" in done.stderr
    assert torch.load(folder / "last.ckpt", weights_only=False)["global_step"] == 4
    again = mann_in_process(
        "fit", "--config", "tiny.yaml", "--trainer.max_steps", "6", "--ckpt_path", "last",
        cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0 and not (tmp_path / "runs/tiny/checkpoints.previous-3").exists()


def test_without_a_logger_earlier_configs_and_results_are_kept(tmp_path: Path) -> None:
    """With ``--trainer.logger false`` runs share ``default_root_dir``: the second run used to
    replace the first's ``config.yaml`` and ``test_results.json``."""
    from helpers.mann_runs import mann_in_process, write_tiny_config

    write_tiny_config(tmp_path, max_steps=2)
    plain = ("--config", "tiny.yaml", "--trainer.logger", "false")
    for command, extra in (("fit", ()), ("fit", ("--seed_everything", "1"))):
        assert mann_in_process(command, *plain, *extra, cwd=tmp_path).returncode == 0
    root = tmp_path / "runs"
    assert "seed_everything: 0" in (root / "config.previous-1.yaml").read_text()
    assert "seed_everything: 1" in (root / "config.yaml").read_text()
    last = ("--ckpt_path", "runs/tiny/checkpoints/last.ckpt")
    for _ in range(2):
        assert mann_in_process("test", *plain, *last, cwd=tmp_path).returncode == 0
    assert (root / "test_results.previous-1.json").is_file()
    assert (root / "test_results.json").is_file()


def test_a_checkpoint_saved_from_python_is_evaluated_with_its_config(tmp_path: Path) -> None:
    """A ``Trainer`` in Python records no ``_class_path`` and names the memory by its defining
    module: ``mann test`` refused it ("another model") or failed merging its hparams."""
    from helpers.mann_runs import mann_in_process, write_tiny_config

    write_tiny_config(tmp_path, max_steps=2)
    assert mann_in_process("fit", "--config", "tiny.yaml", cwd=tmp_path).returncode == 0
    saved = torch.load(tmp_path / "runs/tiny/checkpoints/last.ckpt", weights_only=False)
    hparams = saved["hyper_parameters"]
    for key in ("_class_path", "_instantiator"):
        hparams.pop(key)
    hparams["memory"]["class_path"] = "mann_lightning.memory.lrua.LRUAMemory"
    torch.save(saved, tmp_path / "python.ckpt")
    done = mann_in_process(
        "test", "--config", "tiny.yaml", "--ckpt_path", "python.ckpt", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    hparams["memory"]["init_args"]["memory_size"] = 32  # another architecture: still refused
    torch.save(saved, tmp_path / "other.ckpt")
    done = mann_in_process(
        "test", "--config", "tiny.yaml", "--ckpt_path", "other.ckpt", cwd=tmp_path
    )
    assert done.returncode == 2 and "memory_size=32" in done.stderr
