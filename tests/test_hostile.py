"""Hostile inputs to the command line and the file layer (issue 12).

Each test reproduces one defect a hostile input sweep found; the CLI cases run through the
real entry point (``python -m inntheory ...``) in a subprocess with this working tree on
``PYTHONPATH``, or through ``cli.main`` in this process where the case needs a monkeypatch.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from inntheory import _io, cli
from inntheory.action import PolynomialAction

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}


def command(*args: object) -> list[str]:
    return [sys.executable, "-m", "inntheory", *map(str, args)]


def run(*args: object, cwd: Path, umask: int | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m inntheory ARGS`` in `cwd` (under `umask` when given)."""
    preexec = None if umask is None else (lambda: os.umask(umask))
    return subprocess.run(command(*args), cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=300, preexec_fn=preexec)


def one_line_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """Exit status `code`, no traceback, one stderr line naming every fragment; the line."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("inntheory: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def main_error(capsys: pytest.CaptureFixture, arguments: list[object], code: int,
               *fragments: str) -> str:
    """The same through ``cli.main`` in this process."""
    returned = cli.main([str(a) for a in arguments])
    captured = capsys.readouterr()
    result = subprocess.CompletedProcess([], returned, captured.out, captured.err)
    return one_line_error(result, code, *fragments)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base.npy (400 x 2, correlated), c1.npy (300 x 1) and a saved action t.npz."""
    path = tmp_path_factory.mktemp("hostile")
    generator = np.random.default_rng(0)
    x = generator.standard_normal((400, 2)) @ np.array([[1.0, 0.4], [0.0, 0.8]])
    np.save(path / "base.npy", x)
    np.save(path / "c1.npy", generator.standard_normal((300, 1)))
    PolynomialAction({2: torch.eye(2, dtype=torch.float64)}).save(path / "t.npz")
    return path


# -- item 2: permissions of atomically written files -------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_sample_file_gets_the_mode_of_a_plain_open(tmp_path: Path, umask: int) -> None:
    result = run("sample", "gaussian", "--shape", 2, "--n", 200, "--quiet", "--device", "cpu",
                 "--out", "s.npy", cwd=tmp_path, umask=umask)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "s.npy").stat().st_mode) == 0o666 & ~umask


def test_atomic_write_modes(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        with _io.atomic_write(tmp_path / "new.bin") as stream:
            stream.write(b"x")
        assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o664
        # Like open(), replacing a file keeps that file's permissions.
        (tmp_path / "new.bin").chmod(0o640)
        with _io.atomic_write(tmp_path / "new.bin") as stream:
            stream.write(b"y")
        assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o640
        with _io.atomic_write_all([tmp_path / "a.npz", tmp_path / "b.pt"]) as temporaries:
            for temporary in temporaries:
                temporary.write_bytes(b"z")
        for name in ("a.npz", "b.pt"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o664
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.pt", "new.bin"]


# -- item 1: --plot without a suffix -------------------------------------------------------------


def test_plot_without_suffix_checks_the_png_it_writes(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "v.png").write_text("keep\n")
    result = run("compare", folder / "t.npz", folder / "t.npz", "--plot", "v", cwd=tmp_path)
    one_line_error(result, 1, "v.png", "exists", "--force")
    assert (tmp_path / "v.png").read_text() == "keep\n"
    assert not (tmp_path / "v").exists()
    written = run("compare", folder / "t.npz", folder / "t.npz", "--plot", "w", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "wrote w.png" in written.stdout
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


# -- item 5: bad output paths are refused before any work -------------------------------------


def _not_writable_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in, also for root (a read-only /proc), else skip."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        return locked
    if Path("/proc/self").is_dir():
        return Path("/proc")
    pytest.skip("no folder is read-only for root here")


@pytest.mark.parametrize(
    ("out", "fragments"),
    [
        ("base.npy/a.npz", ["base.npy is not a folder"]),
        ("", ["--out is empty"]),
        ("/", ["--out / is a folder"]),
        ("sub/", ["is a folder"]),
        ("locked", ["not writable"]),
    ],
)
def test_fit_bad_out_before_any_work(
    folder: Path, tmp_path: Path, out: str, fragments: list[str]
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.npy").write_bytes((folder / "base.npy").read_bytes())
    if out == "locked":
        out = str(_not_writable_folder(tmp_path) / "a.npz")
    # --steps 100000 would train for minutes: refusing fast proves no work was started.
    result = run("fit", "base.npy", "--steps", 100000, "--depth", 1, "--order", 2, "--quiet",
                 "--device", "cpu", "--out", out, cwd=tmp_path)
    one_line_error(result, 1, *fragments)


@pytest.mark.parametrize(
    ("arguments", "code", "fragments"),
    [
        (["sample", "gaussian", "--n", 100000, "--out", "base.npy/s.npy"], 1,
         ["base.npy is not a folder"]),
        (["sample", "gaussian", "--n", 100000, "--out", ""], 1, ["--out is empty"]),
        (["compare", "t.npz", "t.npz", "--plot", "c.txt"], 2, ["--plot must end in .png",
                                                               "c.txt"]),
        (["compare", "t.npz", "t.npz", "--plot", "t.npz/c.png"], 1, ["t.npz is not a folder"]),
        (["demo", "--out", "base.npy/demo"], 1, ["base.npy is not a folder"]),
        (["demo", "--out", ""], 1, ["--out is empty"]),
    ],
)
def test_other_bad_outputs(
    folder: Path, arguments: list[object], code: int, fragments: list[str]
) -> None:
    one_line_error(run(*arguments, cwd=folder), code, *fragments)
