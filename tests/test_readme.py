"""The README's Python example and main command work as printed."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time


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


def test_readme_lectures_command_starts_jupyterlab_on_lecture_one(repo_root, tmp_path):
    """The `jupyter lab ...` part of the README's main command serves lecture 1 (the install
    steps before it are what the test command does too). As root, like CI, it must not stop
    at JupyterLab's refusal to run as root."""
    readme = (repo_root / "README.md").read_text()
    command = re.search(r"<!-- lectures-command -->\n```bash\n(.*?)\n```", readme).group(1)
    lab = command.split(" && ")[-1].split()
    assert lab[:2] == [".venv/bin/jupyter", "lab"]
    notebook = lab[-1]
    assert (repo_root / notebook).is_file(), f"the main command opens a missing {notebook}"
    arguments = [*lab[2:-1], "--no-browser", "--ServerApp.port=0", "--ServerApp.token=test",
                 f"--ServerApp.root_dir={repo_root}", notebook]
    environment = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path),
                   "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", *arguments], cwd=repo_root, env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "is running at" in line:
                break
        log = "".join(lines)
        assert "is running at" in log, f"JupyterLab did not start:\n{log[-2000:]}"
    finally:
        server.terminate()
        server.wait(timeout=30)
