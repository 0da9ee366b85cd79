"""The README's Python example runs as printed and shows what it claims."""

from __future__ import annotations

import contextlib
import io
import re


def test_readme_example_runs_and_prints_the_comparison(repo_root):
    readme = (repo_root / "README.md").read_text()
    match = re.search(r"## The path in a few lines\n\n```python\n(.*?)```", readme, re.S)
    assert match, "README.md lost its 'The path in a few lines' example"
    printed = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(match.group(1), "README.md", "exec"), namespace)
    assert "INN: error" in printed.getvalue() and "score matching: error" in printed.getvalue()
    learned, theory = namespace["learned"], namespace["theory"]
    true_a2 = theory.coefficients(4).coefficient(2)
    relative = (learned.coefficient(2) - true_a2).norm() / true_a2.norm()
    assert relative < 0.15, f"README example learned A2 with relative error {relative:.3f}"
