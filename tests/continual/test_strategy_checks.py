"""Strategies and plugins that feed the model raw images are refused up front, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from avalanche.training import EWC, MAS, Naive
from avalanche.training.plugins import LwFPlugin, MASPlugin, ReplayPlugin

from continual.cli import main
from continual.strategy_checks import check_plugins_supported, check_supported


@pytest.mark.parametrize("strategy", ["avalanche.training.MAS", "MAS", MAS, EWC])
def test_raw_image_strategies_are_refused_by_name_or_class(strategy) -> None:
    with pytest.raises(ValueError, match="does not work with MANNEpisodePlugin"):
        check_supported(strategy, [])


def test_subclasses_and_plugins_are_refused_too() -> None:
    class MyEWC(EWC):
        pass

    with pytest.raises(ValueError, match=r"strategy MyEWC does not work .*\(EWC\)"):
        check_supported(MyEWC, [])
    for plugin in (LwFPlugin(), MASPlugin()):
        name = type(plugin).__name__
        with pytest.raises(ValueError, match=f"plugin {name} does not work .* Remove it"):
            check_plugins_supported([plugin])
    check_supported(Naive, [ReplayPlugin(10)])  # fine
    check_supported("avalanche.training.Replay", [])  # fine
    check_supported("avalanche.training.NoSuchStrategy", [])  # left to the class_path check


def test_the_command_refuses_them_in_one_line_before_the_run_folder(
    tmp_path: Path, capsys, omniglot
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "benchmark": {
                    "class_path": "continual.OmniglotCharacterStream",
                    "init_args": {"characters_per_experience": 10, "num_experiences": 1},
                },
                "model": {"controller_size": 8},
            }
        )
    )
    run_dir = tmp_path / "run"
    base = ["--config", str(config), "--run_dir", str(run_dir)]
    for args, cause in (
        (["--plugins+", "avalanche.training.plugins.LwFPlugin"], "plugin LwFPlugin does not"),
        (["--strategy", "avalanche.training.MAS"], "strategy avalanche.training.MAS does not"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*base, *args])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith("mann-continual: error:"), err
        assert len(err.splitlines()) <= 2 and cause in err, err
    assert not run_dir.exists()
