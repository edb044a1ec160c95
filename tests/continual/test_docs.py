"""The Python snippet of docs/continual.md runs as printed, with fewer batches."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "continual.md"


def test_docs_snippet_runs(one_thread, capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    # the printed 20 and 5 batches per experience take about 18 s here; 3 and 2 run the same code
    snippet = blocks[0].replace("train_batches=20,", "train_batches=3,")
    snippet = snippet.replace("eval_batches=5,", "eval_batches=2,")
    assert "train_batches=3," in snippet and "eval_batches=2," in snippet
    namespace: dict = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)
    results = namespace["presentation"].results
    assert sorted(results) == [("test", j) for j in range(4)]
    assert all(len(values) == 10 for values in results.values())
