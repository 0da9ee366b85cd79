"""The lectures' nbval markers are cell tags (kept in the `.py` by jupytext's cell metadata),
and nbval's `--nbval-lax`, as the test command runs it, compares exactly the tagged cells;
no lecture shows a test switch or internal talk to the student."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LECTURES = sorted(NOTEBOOKS.glob("[0-9]*.py"))


@pytest.mark.parametrize("script", LECTURES, ids=lambda path: path.stem)
def test_lectures_carry_tags_not_comments(script):
    text = script.read_text()
    for internal in ("NBVAL_", "INNTHEORY_SMOKE", "SMOKE", "the issue"):
        assert internal not in text, f"{script.name} shows {internal!r} to the student"
    tagged = re.findall(r'^# %% tags=\["(nbval-[a-z-]+)"\]$', text, re.M)
    notebook = json.loads(script.with_suffix(".ipynb").read_text())
    in_notebook = [tag for cell in notebook["cells"] for tag in cell["metadata"].get("tags", [])]
    assert tagged == in_notebook, f"{script.name}: .py tags {tagged}, .ipynb tags {in_notebook}"
    assert set(tagged) <= {"nbval-check-output", "nbval-ignore-output"}


def _run_nbval(folder: Path, tags: list[str]) -> subprocess.CompletedProcess:
    """nbval --nbval-lax on a notebook whose one cell printed "then" and now prints "now"."""
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('print("now")', metadata={"tags": tags})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="then\n")]
    cell.execution_count = 1
    notebook.cells = [cell]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, folder / "marked.ipynb")
    (folder / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
         "--nbval-lax", "--nbval-current-env", "marked.ipynb"],
        cwd=folder, capture_output=True, text=True, timeout=120)


def test_nbval_lax_compares_the_tagged_cells_only(tmp_path):
    checked, ignored = tmp_path / "checked", tmp_path / "ignored"
    checked.mkdir()
    ignored.mkdir()
    result = _run_nbval(checked, ["nbval-check-output"])
    assert result.returncode == 1 and "then" in result.stdout, result.stdout[-2000:]
    result = _run_nbval(ignored, [])
    assert result.returncode == 0, result.stdout[-2000:]
