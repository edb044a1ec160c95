"""The Python snippet of docs/continual.md runs as printed."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "continual.md"


def test_docs_snippet_runs(one_thread, capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    results = namespace["presentation"].results
    assert sorted(results) == [("test", j) for j in range(4)]
    assert all(len(values) == 10 for values in results.values())
