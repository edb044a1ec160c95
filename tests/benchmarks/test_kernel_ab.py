"""``benchmarks/kernel_ab.py`` stays runnable (a smoke run against HEAD, not a timing test)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mann_lightning.memory.fused_ntm import fused_ntm_available

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import kernel_ab  # noqa: E402


def _in_git() -> bool:
    if shutil.which("git") is None:
        return False
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(not fused_ntm_available(), reason="the fused kernel could not be built")
@pytest.mark.skipif(not _in_git(), reason="needs the git history")
def test_kernel_ab_prints_a_row_per_batch_and_same_sources_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kernel_ab.main(["--kernel", "ntm", "--against", "HEAD", "--batch-size", "2", "3",
                    "--threads", "1", "--steps", "2", "--rounds", "1"])  # fmt: skip
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.split("|")[1:-1]] for row in rows[1:]]
    assert [c[0] for c in cells] == ["2", "3"]
    assert all(float(v) > 0 for c in cells for v in c[1:5])
    unchanged = subprocess.run(
        ["git", "diff", "--quiet", "HEAD", "--", kernel_ab.CSRC], cwd=ROOT
    ).returncode == 0  # fmt: skip
    if unchanged:  # the same sources built twice compute the same outputs, bit for bit
        assert all(float(c[6]) == 0.0 for c in cells)
