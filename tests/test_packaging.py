"""Consistency of the packaging files: pyproject, conda environments, README, CI, jupytext.

The dependency lists live in three places (pyproject.toml for pip, environment.yml for conda
users, binder/environment.yml for Binder); these tests keep them from drifting apart, and
keep the README's commands the ones CI really runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from nbval.plugin import get_sanitize_patterns
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before Python 3.11
    import tomli as tomllib

__all__: list[str] = []

# pip name -> the conda-forge names that may stand for it (anything else maps to itself).
CONDA_NAMES = {"torch": {"pytorch", "pytorch-cpu"}}
# conda entries with no pip counterpart.
CONDA_ONLY = {"python", "pip"}
LECTURES = (
    "01_interacting_theories",
    "02_polynomial_inn",
    "03_diagrammatic_rules",
    "04_extracting_the_action",
    "05_depth_and_data",
    "06_effective_theories",
    "07_your_own_data",
    "08_large_lattices",
)
MARKERS = ("<!-- lectures-command -->", "<!-- test-command -->")


@pytest.fixture(scope="module")
def pyproject(repo_root: Path) -> dict:
    return tomllib.loads((repo_root / "pyproject.toml").read_text())


def _pip_requirements(pyproject: dict) -> dict[str, SpecifierSet]:
    """Core plus ``[lab]`` requirements of pyproject as {name: specifier}."""
    lines = (
        pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["lab"]
    )
    return {(req := Requirement(line)).name.lower(): req.specifier for line in lines}


def _conda_requirements(path: Path) -> tuple[dict[str, SpecifierSet], list]:
    """Conda entries of an environment file as {name: specifier}, and its pip section."""
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge"], f"{path}: use conda-forge only"
    conda: dict[str, SpecifierSet] = {}
    pip_section: list = []
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            pip_section.extend(entry["pip"])
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", entry)
        assert match, f"{path}: cannot parse {entry!r}"
        name, spec = match.groups()
        # conda's "=3.11" means "3.11.*"; the rest of our specifiers read the same in pip.
        spec = re.sub(r"^=(?!=)(.+)$", r"==\1.*", spec.replace(" ", ""))
        conda[name.lower()] = SpecifierSet(spec)
    return conda, pip_section


def _conda_name(pip_name: str, conda: dict[str, SpecifierSet]) -> str:
    """The conda entry that stands for the pip requirement ``pip_name``."""
    candidates = CONDA_NAMES.get(pip_name, {pip_name}) & set(conda)
    assert len(candidates) == 1, f"{pip_name}: expected one of {CONDA_NAMES.get(pip_name)}"
    return candidates.pop()


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_conda_environments_match_pyproject(
    repo_root: Path, pyproject: dict, env_file: str
) -> None:
    pip = _pip_requirements(pyproject)
    conda, pip_section = _conda_requirements(repo_root / env_file)
    mapped = {_conda_name(name, conda): spec for name, spec in pip.items()}
    assert set(conda) - CONDA_ONLY == set(mapped), f"{env_file} and pyproject list different names"
    for name, spec in mapped.items():
        assert conda[name] == spec, f"{env_file}: {name} {conda[name]} but pyproject {spec}"
    assert "pip" in conda
    assert "python" in conda
    python_versions = ["3.10.0", "3.11.0", "3.12.0", "3.13.0"]
    allowed = SpecifierSet(pyproject["project"]["requires-python"])
    assert set(conda["python"].filter(python_versions)) <= set(allowed.filter(python_versions))
    if env_file == "environment.yml":
        assert pip_section == ["-e ."]
        assert "pytorch" in conda
    else:  # Binder: CPU build; postBuild installs the package
        assert pip_section == []
        assert "pytorch-cpu" in conda


def test_pyproject_python_and_torch(pyproject: dict) -> None:
    assert pyproject["project"]["requires-python"] == ">=3.10"
    torch = _pip_requirements(pyproject)["torch"]
    assert "2.2" in torch and "2.1.2" not in torch
    assert "nbval" in " ".join(pyproject["project"]["optional-dependencies"]["test"])


def test_binder_postbuild_installs_package(repo_root: Path) -> None:
    post_build = repo_root / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    text = post_build.read_text()
    assert "pip install --no-deps -e ." in text
    assert "jupyter trust notebooks/*.ipynb" in text, "Binder must trust the lectures"
    assert '"fetchNews": "false"' in text and '"checkForUpdates": false' in text


def _marked_blocks(readme: str) -> dict[str, str]:
    """{marker: content of the fenced block on the lines right after the marker}."""
    blocks = {}
    for match in re.finditer(r"^(<!-- [a-z-]+ -->)\n```\w*\n(.*?)\n```$", readme, re.M | re.S):
        assert match.group(1) not in blocks, f"README: {match.group(1)} appears twice"
        blocks[match.group(1)] = match.group(2)
    return blocks


def test_readme_has_exactly_the_two_commands(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    blocks = _marked_blocks(readme)
    assert set(blocks) == set(MARKERS)
    assert all(readme.count(marker) == 1 for marker in MARKERS)
    for command in blocks.values():
        assert "\n" not in command
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install torch==2.13.0")
    assert blocks["<!-- lectures-command -->"].endswith(
        '-e ".[lab]" && .venv/bin/jupyter trust notebooks/*.ipynb && '
        "mkdir -p .venv/share/jupyter/lab/settings && cp -R notebooks/lab-settings/overrides.d "
        ".venv/share/jupyter/lab/settings/ && OMP_NUM_THREADS=1 .venv/bin/jupyter lab "
        "--allow-root --ServerApp.root_dir=. notebooks/01_interacting_theories.ipynb"
    )
    assert blocks["<!-- test-command -->"].endswith('-e ".[test]" && .venv/bin/python -m pytest')
    assert "mybinder.org/v2/gh/" in readme
    assert "urlpath=lab/tree/notebooks/01_interacting_theories.ipynb" in readme


def test_ci_runs_the_readme_test_command(repo_root: Path) -> None:
    ci = repo_root / ".ci" / "run"
    assert ci.stat().st_mode & 0o111, ".ci/run must be executable"
    assert "set -euo pipefail" in ci.read_text()
    printed = subprocess.run(
        ["bash", str(ci), "--print-test-command"], capture_output=True, text=True, check=True
    ).stdout
    readme = (repo_root / "README.md").read_text()
    assert printed.rstrip("\n") == _marked_blocks(readme)["<!-- test-command -->"]


def test_jupytext_pairs_only_the_lectures(repo_root: Path) -> None:
    from jupytext.config import load_jupytext_configuration_file

    config = load_jupytext_configuration_file(str(repo_root / "jupytext.toml"))
    assert config.notebook_metadata_filter == (
        "kernelspec,jupytext,-jupytext.text_representation.jupytext_version"
    )
    notebooks = repo_root / "notebooks"
    for name in LECTURES:
        for ext in (".py", ".ipynb"):
            formats = config.default_formats(str(notebooks / f"{name}{ext}"))
            assert formats is not None, f"{name}{ext} is not paired"
            assert "ipynb" in formats and "py:percent" in formats
    for helper in (notebooks / "helpers.py", repo_root / "benchmarks" / "bench_x.py"):
        assert config.default_formats(str(helper)) is None, f"{helper} would be paired"


def test_every_lecture_has_both_halves(repo_root: Path) -> None:
    notebooks = repo_root / "notebooks"
    scripts = {p.stem for p in notebooks.glob("[0-9]*.py")}
    executed = {p.stem for p in notebooks.glob("[0-9]*.ipynb")}
    assert scripts == executed, f"unpaired: {sorted(scripts ^ executed)}"
    assert scripts <= set(LECTURES), f"unknown lectures: {sorted(scripts - set(LECTURES))}"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<Foo object at 0x7f3a2b1c9d40>", "<Foo object at 0xADDRESS>"),
        ("training took 12.3 s, sampling took 450 ms", "training took TIME, sampling took TIME"),
        ("Wall time: 1.5 s", "Wall time: TIME"),
        (" 40%|####      | 4/10 [00:01<00:02, 3.1it/s]\ndone", "PROGRESS\ndone"),
        ("1234it [00:02, 617.0it/s]\nnext", "PROGRESS\nnext"),
        ("saved to /tmp/pytest-7/cache/a.npz", "saved to PATH"),
        (
            "File /root/.venv/lib/python3.11/site-packages/torch/x.py",
            "File SITE-PACKAGES/torch/x.py",
        ),
        ("depth 3 gives 0.25 in 10 steps", "depth 3 gives 0.25 in 10 steps"),
    ],
    ids=["address", "timings", "wall-time", "tqdm-bar", "tqdm-count", "path", "site", "keep"],
)
def test_nbval_sanitizers(repo_root: Path, raw: str, clean: str) -> None:
    patterns = get_sanitize_patterns((repo_root / "notebooks" / "nbval_sanitize.cfg").read_text())
    assert len(patterns) >= 5
    for regex, replace in patterns:
        raw = re.sub(regex, replace, raw)
    assert raw == clean
