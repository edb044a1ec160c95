"""The ``mann-continual`` command: a run, resume, SIGKILL and resume, errors in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from continual.cli import main

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "seed": 0,
    "benchmark": {
        "class_path": "continual.OmniglotAlphabetStream",
        "init_args": {
            "alphabets": "background",
            "alphabets_per_experience": 2,
            "num_experiences": 3,
            "download": False,
        },
    },
    "model": {
        "controller_size": 32,
        "memory": {
            "class_path": "mann_lightning.memory.LRUAMemory",
            "init_args": {"memory_size": 16, "word_size": 8, "num_reads": 2},
        },
    },
    "episodic_model": {"wipe": "never"},
    "episodes": {
        "num_classes": 5,
        "samples_per_class": 3,
        "batch_size": 4,
        "train_batches": 12,
        "eval_batches": 2,
    },
    "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.003}},
    "strategy": {
        "class_path": "avalanche.training.Replay",
        "init_args": {"mem_size": 50, "train_mb_size": 4},
    },
}


def write_config(folder: Path, **changes) -> Path:
    config = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        config[key] = value
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def command(config: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "continual",
        "--config",
        str(config),
        "--run_dir",
        str(run_dir),
        *extra,
    ]


def run_command(config: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        command(config, run_dir, *extra), capture_output=True, text=True, env=env, timeout=600
    )


def test_a_run_writes_results_and_resumes(tmp_path: Path, omniglot, one_thread) -> None:
    config = write_config(tmp_path)
    run_dir = tmp_path / "run"
    main(["--config", str(config), "--run_dir", str(run_dir)])
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["experiences"]) == 3 and " + " in results["experiences"][0]
    matrix = results["accuracy_matrix"]
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert all(0 <= v <= 1 for row in matrix for v in row)
    assert len(results["accuracy_by_presentation"]) == 10
    assert results["accuracy_by_presentation"][1] == matrix
    assert results["accuracy_by_presentation"][3][0][0] is None  # 3 samples: no 4th presentation
    assert len(results["untrained_accuracy_by_presentation"][1]) == 3
    assert set(results) >= {"forgetting", "backward_transfer", "forward_transfer"}
    assert results["run"]["experiences_done"] == 3
    assert "| after \\ test |" in (run_dir / "results.md").read_text()
    log = (run_dir / "log.txt").read_text()  # Avalanche's TextLogger sees the metric
    assert "PresentationAcc_Exp/eval_phase/test_stream/Exp002/P02" in log
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert saved["run"]["position"] == 3 and saved["plugins"]  # Replay's buffer is saved
    # rerunning a finished run trains nothing more and gives the same results
    mtime = (run_dir / "checkpoint.pt").stat().st_mtime_ns
    main(["--config", str(config), "--run_dir", str(run_dir)])
    assert (run_dir / "checkpoint.pt").stat().st_mtime_ns == mtime
    assert json.loads((run_dir / "results.json").read_text())["accuracy_matrix"] == matrix


@pytest.mark.slow
@pytest.mark.long  # 41 s (three processes); make test-long runs it
def test_sigkill_mid_experience_then_resume_gives_the_same_matrix(tmp_path: Path, omniglot) -> None:
    """A real run is SIGKILLed in the middle of its second experience (iteration 18 of 12 per
    experience, through MANN_FAULT); the rerun resumes and ends with the matrix of a run that
    was never interrupted."""
    config = write_config(tmp_path)
    straight = tmp_path / "straight"
    assert run_command(config, straight).returncode == 0
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MANN_FAULT": "kill_at_iteration=18"}
    died = subprocess.run(
        command(config, killed), env=env, capture_output=True, text=True, timeout=600
    )
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    assert "killing the process after training iteration 18" in died.stderr
    assert json.loads((killed / "results.json").read_text())["run"]["experiences_done"] == 1
    resumed = run_command(config, killed)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming" in resumed.stdout and "after experience 1" in resumed.stdout
    a = json.loads((straight / "results.json").read_text())
    b = json.loads((killed / "results.json").read_text())
    assert a["accuracy_by_presentation"] == b["accuracy_by_presentation"]
    assert a["untrained_accuracy_by_presentation"] == b["untrained_accuracy_by_presentation"]
    weights = [
        torch.load(p / "checkpoint.pt", weights_only=False)["model"] for p in (straight, killed)
    ]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0] if k != "_extra_state")


def one_line_error(capsys, args: list[str], cause: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mann-continual: error:") and len(err.splitlines()) <= 6, err
    assert cause in err, err


def test_bad_input_is_one_clear_line(tmp_path: Path, capsys, omniglot, one_thread) -> None:
    config = write_config(tmp_path)
    run_dir = tmp_path / "run"
    base = ["--config", str(config), "--run_dir", str(run_dir)]
    one_line_error(
        capsys, [*base, "--strategy", '{"class_path": "avalanche.training.Nope"}'], "Nope"
    )
    one_line_error(
        capsys, [*base, "--plugins", '[{"class_path": "my.Plugin"}]'], "No module named 'my'"
    )
    one_line_error(capsys, [*base, "--episodes.num_classes", "300"], "num_classes=300")
    one_line_error(capsys, [*base, "--episodes.eval_seed=-5"], "--episodes.eval_seed must be in")
    groups = '{"class_path": "continual.OmniglotAlphabetStream", "init_args": {"groups": [["Latin"], []]}}'
    one_line_error(capsys, [*base, "--benchmark", groups], "group 1 is empty")
    # the strategy's own sizes (Avalanche takes 0 epochs silently, and a minibatch size
    # below 1 fails inside a DataLoader), refused before the run folder is made
    one_line_error(
        capsys, [*base, "--strategy", "avalanche.training.EWC", "--strategy.init_args.ewc_lambda",
                 "0.4"], "does not work with MANNEpisodePlugin",
    )  # fmt: skip
    for name, value in (("train_epochs", "0"), ("train_mb_size", "0"), ("eval_mb_size", "-2")):
        one_line_error(
            capsys,
            [*base, f"--strategy.init_args.{name}", value],
            f"strategy's {name} must be >= 1, got {value}",
        )
    assert not (run_dir / "checkpoint.pt").exists()  # nothing saved: a corrected run may start
    # a folder holding another configuration's run
    main([*base, "--benchmark.init_args.num_experiences", "1"])
    capsys.readouterr()  # the run's own output (and any first-use log line of torch's)
    one_line_error(capsys, base, "different configuration (changed: ")
    # --restart moves it aside and starts over
    main([*base, "--restart", "true", "--benchmark.init_args.num_experiences", "1", "--seed", "1"])
    assert list(tmp_path.glob("run.previous-*/checkpoint.pt"))
    # a corrupt saved run
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    one_line_error(
        capsys, [*base, "--benchmark.init_args.num_experiences", "1", "--seed", "1"], "corrupt"
    )


def test_config_without_settings_is_named(tmp_path: Path, capsys) -> None:
    (tmp_path / "blank.yaml").write_text("# to be filled in\n")
    one_line_error(
        capsys, ["--config", str(tmp_path / "blank.yaml")], "is empty (or only comments)"
    )
    (tmp_path / "list.yaml").write_text("- benchmark\n")
    one_line_error(capsys, [f"--config={tmp_path / 'list.yaml'}"], "holds a YAML list")


def test_ddp_launch_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    one_line_error(capsys, ["--config", str(write_config(tmp_path))], "one process")


def test_help_and_print_config(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--episodes.replay_share" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--config", str(REPO / "configs" / "continual_demo.yaml"), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["strategy"]["class_path"] == "avalanche.training.Naive"
    assert printed["episodic_model"]["wipe"] == "episode"


CONFIGS = sorted((REPO / "configs").glob("continual_*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_continual_config_runs(config: Path, tmp_path: Path, omniglot, one_thread) -> None:
    run_dir = tmp_path / config.stem
    fast = ["--episodes.train_batches", "2", "--episodes.eval_batches", "1"]
    main(
        [
            "--config",
            str(config),
            "--run_dir",
            str(run_dir),
            *fast,
            "--benchmark.init_args.num_experiences",
            "2",
        ]
    )
    results = json.loads((run_dir / "results.json").read_text())
    assert results["run"]["experiences_done"] == 2 and len(results["accuracy_matrix"]) == 2


@pytest.mark.long
def test_demo_config_learns(tmp_path: Path, omniglot) -> None:
    """configs/continual_demo.yaml end to end (about 5 minutes on 2 cores): the 2nd-presentation
    accuracy on each experience's held-out characters, right after training on it, is well
    above chance (20 %): the mean diagonal is at least 0.35."""
    run_dir = tmp_path / "demo"
    done = run_command(REPO / "configs" / "continual_demo.yaml", run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    matrix = json.loads((run_dir / "results.json").read_text())["accuracy_matrix"]
    diagonal = [matrix[i][i] for i in range(len(matrix))]
    assert len(diagonal) == 4 and sum(diagonal) / 4 >= 0.35, diagonal


def test_more_metrics_from_the_command_line(tmp_path: Path, omniglot, one_thread) -> None:
    config = write_config(tmp_path)
    run_dir = tmp_path / "metrics"
    extra = '[{"class_path": "continual.interference_metrics.ProactiveInterference", "init_args": {"ks": [0, 2]}}]'
    main(["--config", str(config), "--run_dir", str(run_dir), "--metrics", extra,
          "--benchmark.init_args.num_experiences", "2", "--episodes.train_batches", "2"])  # fmt: skip
    log = (run_dir / "log.txt").read_text()
    assert "ProactiveInterference_Exp/eval_phase/test_stream/Exp001/k02/P02" in log
    assert "BWT_Stream/eval_phase/test_stream/mean" in log  # TransferMetrics is always there
    assert "Forgetting_Stream/eval_phase/test_stream/Exp000" in log
    results = json.loads((run_dir / "results.json").read_text())
    rows = results["metrics_after_each_experience"]
    assert len(rows) == 2
    after_second = rows[1]["ProactiveInterference_Exp"]["test/1"]
    assert set(after_second) == {"0", "2"} and len(after_second["2"]) == 10


def test_a_diverged_run_stops_with_one_line(tmp_path: Path, capsys, omniglot, one_thread) -> None:
    """mann-continual adds NonFiniteLossGuard: NaN weights end the run, not chance results."""
    base = ["--config", str(write_config(tmp_path)), "--run_dir", str(tmp_path / "run")]
    poison = '[{"class_path": "helpers.poison.PoisonWeights"}]'
    one_line_error(capsys, [*base, "--plugins", poison], "training loss became nan")
    assert not (tmp_path / "run" / "results.json").exists()
