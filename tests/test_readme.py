"""The README's Python example and lectures command work as printed."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request


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


def _lectures_command(repo_root) -> list[list[str]]:
    """The steps after the install in the README's lectures command, as argument lists."""
    readme = (repo_root / "README.md").read_text()
    command = re.search(r"<!-- lectures-command -->\n```bash\n(.*?)\n```", readme).group(1)
    steps = [step.split() for step in command.split(" && ")]
    assert steps[1][0] == ".venv/bin/pip", "the command must install before it runs"
    return steps[2:]


def _request(url: str, method: str = "GET", body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": "token test"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def test_readme_lectures_command_serves_trusted_paired_lecture_one(repo_root, tmp_path):
    """The README's lectures command, after its install steps, run in a copy of the
    repository (notebooks/ and jupytext.toml) as root, like CI:

    - `jupyter trust notebooks/*.ipynb` signs the lectures, so the server reports their cells
      as trusted and JupyterLab draws the saved widgets before any cell runs;
    - `mkdir -p .venv/share/jupyter/lab/settings && cp -R ...` installs the lectures'
      JupyterLab default into the environment's settings (here a stand-in for `.venv`, given
      to the server as `--LabApp.app_settings_dir`, where JupyterLab looks by default): the
      server's settings API then gives ipywidgets' `saveState` as true, so a saved lecture
      keeps the state of the widgets its outputs show;
    - `OMP_NUM_THREADS=1 jupyter lab ...` starts (also as root) with the repository as the
      server root and lecture 1 as the file to open (its kernels inherit one thread);
    - saving lecture 1 through the server (the contents API, as JupyterLab's save does)
      writes its paired `.py` too: jupytext.toml's `notebooks//0...` pairing matches.
    """
    steps = _lectures_command(repo_root)
    assert steps[-1][0] == "OMP_NUM_THREADS=1", "kernels of the lectures want one thread"
    variable, value = steps[-1].pop(0).split("=", 1)
    settings = ".venv/share/jupyter/lab/settings"
    assert steps[1] == ["mkdir", "-p", settings], steps[1]
    assert steps[2] == ["cp", "-R", "notebooks/lab-settings/overrides.d", f"{settings}/"]
    assert [step[:2] for step in (steps[0], steps[3])] == [[".venv/bin/jupyter", "trust"],
                                                           [".venv/bin/jupyter", "lab"]]
    postbuild = (repo_root / "binder" / "postBuild").read_text()
    assert 'cp -R notebooks/lab-settings/overrides.d "${settings}/"' in postbuild
    work = tmp_path / "repo"
    shutil.copytree(repo_root / "notebooks", work / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    shutil.copy(repo_root / "jupytext.toml", work)
    environment = {**os.environ, variable: value,
                   "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
                   "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
                   "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    trust = steps[0]
    notebooks = sorted(str(p.relative_to(work)) for p in (work / "notebooks").glob("*.ipynb"))
    assert trust[2:] == ["notebooks/*.ipynb"], trust
    subprocess.run([sys.executable, "-m", "jupyter", "trust", *notebooks], cwd=work,
                   env=environment, check=True, capture_output=True)
    app_settings = work / settings.replace(".venv", "venv")
    for step in steps[1:3]:
        subprocess.run([part.replace(".venv", "venv") for part in step], cwd=work, check=True)
    lab = steps[3]
    notebook = lab[-1]
    assert notebook == "notebooks/01_interacting_theories.ipynb", lab
    assert "--ServerApp.root_dir=." in lab, "the server root must be the repository root"
    arguments = [*lab[2:], "--no-browser", "--ServerApp.port=0", "--ServerApp.token=test",
                 f"--LabApp.app_settings_dir={app_settings}"]
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", *arguments], cwd=work, env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 90
        url = None
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+)/lab", line)
            if found:
                url = found.group(1)
                break
        log = "".join(lines)
        assert url, f"JupyterLab did not start:\n{log[-2000:]}"
        # the server writes the page a browser opens for the file to run once it is up
        opened = tmp_path / "runtime" / f"jpserver-file-to-run-{server.pid}-open.html"
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"lab/tree/{notebook}" in opened.read_text(), "lecture 1 is not the file opened"
        widget_settings = _request(
            f"{url}/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin")
        save_state = widget_settings["settings"].get(
            "saveState", widget_settings["schema"]["properties"]["saveState"]["default"])
        assert save_state is True, (
            "the lectures command must make ipywidgets save the widget state: without it a "
            "lecture run and saved reopens with 'model not found' in its panels")
        api = f"{url}/api/contents/{notebook}"
        model = _request(f"{api}?content=1")
        code = [c for c in model["content"]["cells"] if c["cell_type"] == "code"]
        assert code and all(c["metadata"].get("trusted") for c in code), "lecture 1 not trusted"
        content = model["content"]
        content["cells"].append({"cell_type": "markdown", "id": "pairing-check", "metadata": {},
                                 "source": "Saved through the server: pairing check."})
        _request(api, "PUT", {"type": "notebook", "format": "json", "content": content})
        script = (work / notebook).with_suffix(".py").read_text()
        assert "# Saved through the server: pairing check." in script, (
            "saving lecture 1 from the server did not update its .py: the jupytext pairing "
            f"does not match under this server root\n{log[-2000:]}")
    finally:
        server.terminate()
        server.wait(timeout=30)
