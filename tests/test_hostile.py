"""Hostile inputs to the command line and the file layer (issue 12).

Each test reproduces one defect a hostile input sweep found; the CLI cases run through the
real entry point (``python -m inntheory ...``) in a subprocess with this working tree on
``PYTHONPATH``, or through ``cli.main`` in this process where the case needs a monkeypatch.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from inntheory import _io
from inntheory.actions.dense import PolynomialAction
from inntheory.lab import cli

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
        (["sample", "gaussian", "--out", "X.NPX"], 1, ["--out must end in .npy, .npz or .csv"]),
        (["compare", "t.npz", "t.npz", "--plot", "c.txt"], 1, ["--plot must end in .png",
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


# -- item 3: the action and the model of a fit are one unit, claimed before training ----------


FIT = ("fit", "base.npy", "--depth", 1, "--order", 2, "--quiet", "--device", "cpu")


@pytest.mark.parametrize("force", [False, True])
def test_concurrent_fits_of_the_same_output(folder: Path, tmp_path: Path, force: bool) -> None:
    # A first fit claims same.npz and is then frozen (SIGSTOP), so that it cannot finish
    # whatever the machine's speed; a second one started meanwhile must fail at once, with or
    # without --force. Interrupting the first (SIGINT, then SIGCONT to deliver it) then
    # leaves no output and no lock behind.
    (tmp_path / "base.npy").write_bytes((folder / "base.npy").read_bytes())
    extra = ["--force"] if force else []
    lock = tmp_path / ".same.npz.lock"
    # Ctrl-C as in a terminal: the fit must not inherit an ignored SIGINT (a test run in the
    # background of a non-interactive shell has one, and Python then never raises
    # KeyboardInterrupt).
    first = subprocess.Popen(command(*FIT, "--steps", 100000, "--out", "same.npz", *extra),
                             cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not lock.exists() or not lock.read_text().strip():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first fit never claimed its outputs"
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)
        second = run(*FIT, "--steps", 10, "--out", "same.npz", *extra, cwd=tmp_path)
        assert first.poll() is None  # still training: the two runs overlapped
        one_line_error(second, 1, "same.npz", f"being written by process {first.pid}",
                       "lock file")
        assert second.stdout == ""
    finally:
        first.send_signal(signal.SIGINT)
        first.send_signal(signal.SIGCONT)
        _, stderr = first.communicate(timeout=120)
    if first.returncode == 130:  # the interrupt reached Python: clean exit, nothing left
        assert sorted(p.name for p in tmp_path.iterdir()) == ["base.npy"]
        return
    # A SIGINT that lands while torch runs a Python callback from C++ aborts the process
    # (pybind11 cannot carry the KeyboardInterrupt out: SIGABRT, -6). No output is written
    # then either; at most the locks stay, and the next fit takes them over.
    assert first.returncode == -signal.SIGABRT, stderr
    assert {p.name for p in tmp_path.iterdir()} <= {"base.npy", lock.name,
                                                     ".same.model.pt.lock"}
    after = run(*FIT, "--steps", 10, "--out", "same.npz", *extra, cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "base.npy", "same.model.pt", "same.npz"]


def test_simultaneous_fits_never_both_write(folder: Path, tmp_path: Path) -> None:
    # Started together: either one fails on the other's claim, or (on a loaded machine, one
    # finished before the other began) the second finds the first's output and refuses.
    (tmp_path / "base.npy").write_bytes((folder / "base.npy").read_bytes())
    runs = [subprocess.Popen(command(*FIT, "--steps", 300, "--out", "same.npz"),
                             cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [subprocess.CompletedProcess(r.args, r.wait(timeout=300), *r.communicate())
               for r in runs]
    assert sorted(r.returncode for r in results) == [0, 1], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 1)
    line = one_line_error(loser, 1, "same.npz")
    assert "being written by" in line or "exists" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "base.npy", "same.model.pt", "same.npz"]


def test_a_stale_lock_of_a_killed_run_is_taken_over(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "base.npy").write_bytes((folder / "base.npy").read_bytes())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".p.npz.lock").write_text(f"{dead.pid}\n")
    result = run(*FIT, "--steps", 10, "--out", "p.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / ".p.npz.lock").exists()


def test_a_failed_write_keeps_the_earlier_pair(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = folder / "base.npy"
    out = tmp_path / "p.npz"
    assert cli.main(["fit", str(data), "--depth", "2", "--order", "2", "--quiet",
                     "--device", "cpu", "--steps", "10", "--out", str(out)]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["p.model.pt", "p.npz"]

    real_replace = os.replace

    def failing_replace(source: object, target: object) -> None:
        if Path(target) == out:  # the action's rename, after the model's
            raise PermissionError(1, "Operation not permitted", str(target))
        real_replace(source, target)

    monkeypatch.setattr(_io.os, "replace", failing_replace)
    arguments = ["fit", data, "--depth", 1, "--order", 2, "--quiet", "--device", "cpu",
                 "--steps", 10, "--force", "--out", out]
    main_error(capsys, arguments, 1, "cannot write", "p.npz", "p.model.pt", "unchanged")
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # the depth-2 pair, byte-identical; no temporaries or locks left

    # Without an earlier pair, a failed write leaves nothing.
    fresh = tmp_path / "fresh" / "q.npz"
    arguments[-1] = fresh
    monkeypatch.setattr(_io.os, "replace", lambda s, t: (_ for _ in ()).throw(OSError(
        28, "No space left on device")) if Path(t) == fresh else real_replace(s, t))
    main_error(capsys, arguments, 1, "cannot write", "No space left")
    assert list(fresh.parent.iterdir()) == []


# -- item 4: an unbounded order is refused before training, with the estimate ----------------


def test_huge_order_is_refused_at_once(folder: Path) -> None:
    result = run("fit", "c1.npy", "--order", 20, "--steps", 50, "--quiet", "--device", "cpu",
                 "--out", "o20.npz", cwd=folder)
    line = one_line_error(result, 1, "order 20", "placements", "--order")
    assert "5.79e+12" in line  # the counted placements of the cubic catalogue at order 20
    assert not (folder / "o20.npz").exists()


def test_extraction_cost_counts_the_catalogue_placements() -> None:
    from inntheory.extraction import extraction_cost
    from inntheory.extraction.diagrams import catalogue

    for activation in ("cubic", "quadratic"):
        for order in (1, 4, 7):
            counted = sum(len(d.placements) for d in catalogue(activation, order))
            assert extraction_cost(3, order, 2, activation)["placements"] == counted
    cost = extraction_cost(8, 4, 3, "cubic")
    assert cost["bytes"] == 8 * sum(8**k for k in range(5))
    # The limits let the orders one uses through (cubic up to 11 at N = 2, depth 3).
    settings = argparse.Namespace(order=11, depth=3, activation="cubic", lattice=None,
                                  kernel_radius=None)
    cli._check_extraction_cost(2, settings, torch.device("cpu"), False)
    settings.order = 12
    with pytest.raises(cli.CLIError, match="order 12 .* lower --order"):
        cli._check_extraction_cost(2, settings, torch.device("cpu"), False)


def test_extraction_memory_is_checked_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # enough rows for the default depth-3 network (1380 parameters): no thin-data warning
    np.save(tmp_path / "wide.npy", np.random.default_rng(3).standard_normal((14_000, 20)))
    real = cli.available_bytes  # the data check keeps the real memory, the extraction 1 MiB
    monkeypatch.setattr(cli, "available_bytes",
                        lambda device=None: real() if device is None else 2**20)
    monkeypatch.setattr(cli.it, "train", lambda *a, **k: pytest.fail("training started"))
    main_error(capsys, ["fit", tmp_path / "wide.npy", "--order", 4, "--quiet", "--device",
                        "cpu", "--out", tmp_path / "w.npz"], 1, "needs about", "GiB",
               "lower the order")


# -- item 6: compare on files that are not actions -------------------------------------------


def _bad_actions(path: Path) -> dict[str, tuple[str, ...]]:
    """Write the damaged action files into `path`; {file name: fragments of the error}."""
    eye = np.eye(2)
    np.savez(path / "constant3.npz", A2=eye, constant=np.ones(3))
    np.savez(path / "metalist.npz", A2=eye, metadata=np.array("[1, 2]"))
    np.savez(path / "metabad.npz", A2=eye, metadata=np.array("{not json"))
    np.savez(path / "complex.npz", A2=eye * (1 + 1j))
    np.savez(path / "string.npz", A2=np.array([["a", "b"], ["c", "d"]]))
    np.savez(path / "leading.npz", A01=np.ones(2), A2=eye)
    np.savez(path / "point3.npz", A2=eye, point=np.zeros(3))
    np.savez(path / "nan.npz", A2=eye * np.nan)
    np.savez(path / "pickled.npz", A2=np.array([{"a": 1}], dtype=object))
    np.save(path / "single.npy", eye)
    (path / "single.npy").rename(path / "single.npz")
    torch.save({"x": torch.ones(2)}, path / "fit.model.pt")
    return {
        "constant3.npz": ("constant must be a single number", "(3,)"),
        "metalist.npz": ("metadata must be a JSON object", "list"),
        "metabad.npz": ("metadata is not valid JSON",),
        "complex.npz": ("A2 must hold real numbers", "complex128"),
        "string.npz": ("A2 must hold real numbers",),
        "leading.npz": ("'A01'", "A1, A2"),
        "point3.npz": ("point must have shape (2,)",),
        "nan.npz": ("NaN",),
        "pickled.npz": ("pickled Python objects", "never loaded"),
        "single.npz": ("not an .npz archive",),
        "fit.model.pt": ("not an action file", "PolynomialINN.load"),
    }


def test_load_names_each_problem(tmp_path: Path) -> None:
    for name, fragments in _bad_actions(tmp_path).items():
        with pytest.raises(ValueError) as caught:
            PolynomialAction.load(tmp_path / name)
        message = str(caught.value)
        assert name in message, message
        for fragment in fragments:
            assert fragment in message, (name, fragment, message)


def test_compare_reports_bad_action_files_in_one_line(folder: Path, tmp_path: Path) -> None:
    for name, fragments in _bad_actions(tmp_path).items():
        result = run("compare", folder / "t.npz", name, cwd=tmp_path)
        line = one_line_error(result, 1, name, *fragments)
        for word in ("allow_pickle", "weights_only"):
            assert word not in line


# -- item 8: relative errors are scale-free --------------------------------------------------


@pytest.mark.parametrize(("true_scale", "learned_scale", "expected"),
                         [(1e200, 1.1e200, 0.1), (1e-200, 2e-200, 1.0), (1e300, 1.5e300, 0.5),
                          (1.0, 1.1, 0.1)])
def test_compare_is_scale_free(true_scale: float, learned_scale: float, expected: float) -> None:
    from inntheory.comparison import compare

    eye = torch.eye(3, dtype=torch.float64)
    offdiagonal = torch.ones(3, 3, dtype=torch.float64) - eye
    true = PolynomialAction({2: true_scale * (eye + 0.5 * offdiagonal)})
    learned = PolynomialAction({2: learned_scale * (eye + 0.5 * offdiagonal)})
    row = compare(true, learned, orders=[2]).row(2)
    assert row.relative and row.diagonal_relative
    assert row.error == pytest.approx(expected, rel=1e-12)
    assert row.diagonal_error == pytest.approx(expected, rel=1e-12)
    assert row.true_norm == pytest.approx(true_scale * math.sqrt(3 + 6 * 0.25), rel=1e-12)
    assert row.leakage == pytest.approx(learned_scale / true_scale * math.sqrt(1.5 / 4.5),
                                        rel=1e-12)
    # A zero true order is compared absolutely, at the learned tensor's own scale.
    zero = PolynomialAction({1: torch.zeros(3, dtype=torch.float64), 2: eye})
    tiny = PolynomialAction({1: torch.full((3,), 1e-200, dtype=torch.float64), 2: eye})
    absolute = compare(zero, tiny, orders=[1]).row(1)
    assert not absolute.relative
    assert absolute.error == pytest.approx(math.sqrt(3) * 1e-200, rel=1e-12)


def test_compare_command_on_huge_actions(tmp_path: Path) -> None:
    eye = torch.eye(2, dtype=torch.float64)
    PolynomialAction({2: 1e200 * eye}).save(tmp_path / "true.npz")
    PolynomialAction({2: 1.1e200 * eye}).save(tmp_path / "mine.npz")
    result = run("compare", "true.npz", "mine.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith("2"))
    assert float(row[4]) == pytest.approx(0.1)


def test_fit_on_data_scaled_by_1e150_prints_sensible_norms(folder: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "big.npy", np.load(folder / "base.npy") * 1e150)
    result = run("fit", "big.npy", "--depth", 1, "--order", 2, "--steps", 10, "--quiet",
                 "--device", "cpu", "--out", "big.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = {line.split()[0]: float(line.split()[1]) for line in result.stdout.splitlines()
               if line[:2].strip().isdigit()}
    action = PolynomialAction.load(tmp_path / "big.npz")
    exact = float(torch.linalg.vector_norm(action.coefficient(2) * 1e300)) * 1e-300
    assert 1e-302 < printed["2"] < 1e-298
    assert printed["2"] == pytest.approx(exact, rel=1e-3)  # printed with 4 digits


# -- item 11: seeds, huge samples, unsafe-load advice, CSV headers, nan diagnostics, overflow -


@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", "1.5"])
def test_bad_seeds_are_usage_errors(tmp_path: Path, seed: str) -> None:
    result = run("sample", "gaussian", "--n", 10, "--seed", seed, "--out", "s.npy", cwd=tmp_path)
    one_line_error(result, 2, "--seed", seed)
    assert not (tmp_path / "s.npy").exists()


def test_huge_sample_is_refused_with_the_memory_estimate(tmp_path: Path) -> None:
    result = run("sample", "gaussian", "--shape", 100000, 100000, "--out", "s.npy",
                 cwd=tmp_path)
    one_line_error(result, 1, "N = 10000000000 sites", "needs about", "GiB", "lower --n")


def test_damaged_files_never_advise_unsafe_loading(tmp_path: Path) -> None:
    import pickle

    from inntheory.datasets import load_dataset

    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    for name in ("objects.npy", "objects.npz"):
        line = one_line_error(run("fit", name, "--out", "a.npz", cwd=tmp_path), 1, name,
                              "pickled Python objects", "never loaded")
        assert "allow_pickle" not in line and "weights_only" not in line
    # A data-set cache file holding a pickled array.
    cache = tmp_path / "cache"
    load_dataset("gaussian", 8, cache_dir=cache, progress=False)
    (cached,) = cache.iterdir()
    np.savez(cached, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError) as caught:
        load_dataset("gaussian", 8, cache_dir=cache, progress=False)
    assert "pickled" in str(caught.value)
    assert "allow_pickle" not in str(caught.value)
    # The helper itself, on numpy's and torch's own wordings.
    for text in ("Object arrays cannot be loaded when allow_pickle=False",
                 "This file contains pickled (object) data. If you trust the file you can load "
                 "it unsafely using the `allow_pickle=` keyword argument or `pickle.load()`.",
                 "Weights only load failed. Re-running `torch.load` with `weights_only` set to "
                 "`False` will likely succeed"):
        message = _io.load_error(ValueError(text))
        assert "allow_pickle" not in message and "weights_only" not in message
    assert _io.load_error(pickle.UnpicklingError("bad")) == "bad"


def test_first_csv_row_with_a_number_is_data(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("1.5,abc\n1,2\n3,4\n")
    with pytest.raises(cli.CLIError, match=r"1 of 3 rows .* non-numeric .* indices 0;"):
        cli.load_data(tmp_path / "h.csv")
    (tmp_path / "header.csv").write_text("left,right\n1,2\n3,4\n")
    np.testing.assert_array_equal(cli.load_data(tmp_path / "header.csv"), [[1, 2], [3, 4]])
    result = run("fit", "h.csv", "--out", "a.npz", cwd=tmp_path)
    one_line_error(result, 1, "h.csv", "indices 0")


def test_sample_explains_nan_diagnostics(tmp_path: Path) -> None:
    result = run("sample", "gaussian", "--shape", 2, "--n", 100, "--quiet", "--device", "cpu",
                 "--out", "s.npy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tau nan" in result.stdout
    assert "cannot be estimated from 1 draw(s) per chain" in result.stdout
    assert "--n 512" in result.stdout
    enough = run("sample", "gaussian", "--shape", 2, "--n", 600, "--quiet", "--device", "cpu",
                 "--out", "t.npy", cwd=tmp_path)
    assert enough.returncode == 0, enough.stderr
    assert "nan" not in enough.stdout and "cannot be estimated" not in enough.stdout


def test_cast_overflow_is_reported_as_overflow(tmp_path: Path) -> None:
    if np.finfo(np.longdouble).max <= np.finfo(np.float64).max:
        pytest.skip("long double is float64 here")
    x = np.ones((3, 2), dtype=np.longdouble)
    x[1, 0] = np.longdouble("1e400")
    np.save(tmp_path / "wide.npy", x)
    line = one_line_error(run("fit", "wide.npy", "--out", "a.npz", cwd=tmp_path), 1,
                          "beyond the float64 range", "overflow", "indices 1")
    assert "NaN" not in line


def test_an_immutable_action_file_keeps_the_earlier_pair(folder: Path, tmp_path: Path) -> None:
    """The issue's reproduction: ``chattr +i p.npz``, then a --force fit of another depth."""
    (tmp_path / "base.npy").write_bytes((folder / "base.npy").read_bytes())
    first = run("fit", "base.npy", "--depth", 2, "--order", 2, "--steps", 10, "--quiet",
                "--device", "cpu", "--out", "p.npz", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    if shutil.which("chattr") is None or subprocess.run(
        ["chattr", "+i", "p.npz"], cwd=tmp_path, capture_output=True, check=False
    ).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        result = run("fit", "base.npy", "--depth", 1, "--order", 2, "--steps", 10, "--quiet",
                     "--device", "cpu", "--force", "--out", "p.npz", cwd=tmp_path)
    finally:
        subprocess.run(["chattr", "-i", "p.npz"], cwd=tmp_path, check=True)
    one_line_error(result, 1, "cannot write p.npz and p.model.pt", "unchanged")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
