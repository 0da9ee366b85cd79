"""Crafted and careless inputs to the command line and the file layer, round two.

Each test reproduces one case of the second hostile-input sweep: the command either succeeds
without losing anything, or ends in one line ``inntheory: error: ...`` before any expensive
work. Crafted files are a header of a few hundred bytes, never big data. Cases that need a
monkeypatch (a full disk, a memory limit, a failing rename) run ``cli.main`` in this process;
signals and blocking files run the real entry point in a subprocess.
"""

from __future__ import annotations

import ast
import errno
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib import format as npy
from test_hostile import main_error, one_line_error

import inntheory
from inntheory import _io
from inntheory.actions.dense import PolynomialAction
from inntheory.lab import cli

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
FIT = ["fit", "base.npy", "--depth", "1", "--order", "2", "--steps", "5", "--no-polish",
       "--quiet", "--device", "cpu"]
SAMPLE = ["sample", "unimodal", "--n", "20", "--shape", "2", "--quiet", "--device", "cpu"]


def run(*args: object, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inntheory", *map(str, args)], cwd=cwd,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def one_line(code: int, err: str, returned: int, *fragments: str) -> str:
    """`one_line_error` for an exit status and stderr caught another way."""
    return one_line_error(subprocess.CompletedProcess([], returned, "", err), code, *fragments)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder: base.npy (400 x 2, correlated) and a saved action t.npz."""
    x = np.random.default_rng(0).standard_normal((400, 2)) @ np.array([[1.0, 0.4], [0.0, 0.8]])
    np.save(tmp_path / "base.npy", x)
    PolynomialAction({2: torch.eye(2, dtype=torch.float64)}).save(tmp_path / "t.npz")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def contents(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def npy_header(shape: tuple[int, ...], data: bytes = b"") -> bytes:
    stream = io.BytesIO()
    npy.write_array_header_1_0(stream, {"descr": "<f8", "fortran_order": False,
                                        "shape": shape})
    return stream.getvalue() + data


# -- item 1: a header declaring a huge shape is refused from the header -------------------------


def test_npy_header_declaring_a_huge_shape(folder: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    (folder / "huge.npy").write_bytes(npy_header((100_000, 100_000), bytes(64)))
    assert (folder / "huge.npy").stat().st_size < 300
    main_error(capsys, ["fit", "huge.npy"], 1, "huge.npy", "declares shape (100000, 100000)",
               "74.5 GiB", "holds 64 bytes")


def test_npz_member_declaring_a_huge_shape(folder: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        archive.writestr("x.npy", npy_header((100_000, 100_000)))
    main_error(capsys, ["fit", "huge.npz"], 1, "huge.npz", "array 'x'",
               "declares shape (100000, 100000)")


@pytest.mark.parametrize("name", ["base.npy", "packed.npz"])
def test_real_data_beyond_memory_is_refused_before_loading(
    folder: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    np.savez_compressed(folder / "packed.npz", x=np.load(folder / "base.npy"))
    monkeypatch.setattr(cli, "available_bytes", lambda *_: 10_000)  # 400 x 2 float64: 6400
    monkeypatch.setattr(np, "load", lambda *_, **__: pytest.fail("loaded"))
    main_error(capsys, ["fit", name], 1, name, "more than half the available memory")


# -- item 2 (CLI side): a lattice of three axes is a usage error --------------------------------


def test_lattice_of_three_axes_is_a_usage_error(folder: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    np.save(folder / "four.npy", np.random.default_rng(1).standard_normal((200, 4)))
    arguments = [*FIT, "--lattice", 2, 2, 1, "--out", "a.npz"]
    arguments[1] = "four.npy"
    main_error(capsys, arguments, 2, "--lattice takes L or L1 L2", "3 sizes")
    main_error(capsys, [*SAMPLE, "--shape", 2, 2, 1], 2, "--shape takes L or L1 L2")
    assert not (folder / "a.npz").exists()


# -- item 5: names too long for the file system, refused before any work ------------------------


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("sample", "train", "PolynomialINN"):
        monkeypatch.setattr(inntheory, name, lambda *_, **__: pytest.fail("work started"),
                            raising=False)


@pytest.mark.parametrize("length", [245, 250, 260])
@pytest.mark.parametrize("command", ["sample", "fit", "compare", "demo"])
def test_too_long_output_names_are_refused_before_any_work(
    folder: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
    command: str, length: int,
) -> None:
    _no_work(monkeypatch)
    name = "n" * length
    arguments = {
        "sample": [*SAMPLE, "--out", f"{name}.npy"],
        "fit": [*FIT, "--lattice", 2, "--out", f"{name}.npz"],
        "compare": ["compare", "t.npz", "t.npz", "--plot", f"{name}.png"],
        "demo": ["demo", "--quick", "--out", name + "x" * 20],
    }[command]
    main_error(capsys, arguments, 1, "too long")
    assert sorted(p.name for p in folder.iterdir()) == ["base.npy", "t.npz"]


# -- item 6: a full disk ends in one line and keeps the earlier files ---------------------------


def _enospc(*_: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _small_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli._DEMO, True, {"shape": [2], "n_samples": 400, "depth": 1,
                                          "steps": 10, "burn_in": 60})


@pytest.mark.parametrize("command", ["sample", "compare", "demo"])
def test_a_full_disk_keeps_the_earlier_files(
    folder: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    _small_demo(monkeypatch)
    arguments, outputs = {
        "sample": ([*SAMPLE, "--out", "s.npy"], [folder / "s.npy"]),
        "compare": (["compare", "t.npz", "t.npz", "--plot", "p.png"], [folder / "p.png"]),
        "demo": (["demo", "--quick", "--quiet", "--out", "d"],
                 [folder / "d" / name for name in cli._DEMO_FILES]),
    }[command]
    outputs[0].parent.mkdir(exist_ok=True)
    for path in outputs:
        path.write_bytes(b"earlier")
    before = contents(outputs[0].parent)
    monkeypatch.setattr(os, "fsync", _enospc)
    main_error(capsys, [*arguments, "--force"], 1, "cannot write", "No space left on device",
               "unchanged")
    assert contents(outputs[0].parent) == before  # no temporaries, locks or journals left


# -- item 7: demo --force replaces every file or none ------------------------------------------


def test_demo_force_replaces_all_files_or_none(
    folder: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_demo(monkeypatch)
    out = folder / "d"
    out.mkdir()
    for name in cli._DEMO_FILES:
        (out / name).write_bytes(b"earlier")
    real_replace = os.replace

    def replace(source: object, target: object) -> None:
        if Path(target).name == "learned_action.npz":  # after three files were replaced
            raise PermissionError(errno.EPERM, "Operation not permitted", str(target))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    main_error(capsys, ["demo", "--quick", "--quiet", "--out", out, "--force"], 1,
               "cannot write", "Operation not permitted", "unchanged")
    assert contents(out) == {name: b"earlier" for name in sorted(cli._DEMO_FILES)}


# -- item 11: wide data are refused from their shape, before the network is built ---------------


def test_wide_data_are_refused_before_building_the_network(folder: Path) -> None:
    np.save(folder / "wide.npy", np.random.default_rng(2).standard_normal((3, 20_000)))
    script = ("import resource, sys; from inntheory.lab import cli; "
              "code = cli.main(['fit', 'wide.npy', '--quiet', '--device', 'cpu']); "
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
    start = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-c", script], cwd=folder, env=ENV,
                                capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("fit on 3 x 20000 data still running after 60 s")
    one_line(1, result.stderr, result.returncode, "N = 20000")
    assert time.perf_counter() - start < 30
    peak_kib = int(result.stdout.split()[-1])
    assert peak_kib < 1.5 * 2**20, f"peak {peak_kib / 2**20:.2f} GiB"  # one dense layer: 3 GiB


# -- item 14 (CLI side): an exactly degenerate direction is refused before training ------------


@pytest.mark.parametrize("relation", ["copy", "sum"])
def test_exactly_degenerate_data_are_refused(
    folder: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, relation: str
) -> None:
    x = np.load(folder / "base.npy")
    extra = x[:, 0] if relation == "copy" else x[:, 0] + 2 * x[:, 1]
    np.save(folder / "degenerate.npy", np.column_stack([x, extra]))
    arguments = [*FIT, "--out", "a.npz"]
    arguments[1] = "degenerate.npy"
    columns = "columns 0, 2" if relation == "copy" else "columns 0, 1, 2"
    main_error(capsys, arguments, 1, "degenerate.npy", "exactly degenerate", columns)
    assert not (folder / "a.npz").exists()


def test_strongly_correlated_or_repeated_rows_are_not_called_degenerate() -> None:
    generator = np.random.default_rng(3)
    x = generator.standard_normal((500, 3))
    x[:, 2] = x[:, 0] + 1e-4 * x[:, 2]  # correlation 1 - 5e-9, yet a density
    cli._check_degenerate(x, "x.npy")
    chain = np.repeat(generator.standard_normal((100, 3)), 20, axis=0)  # rejected moves
    cli._check_degenerate(chain, "chain.npy")


# -- careless cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("out", ["data.npz", "./data.npz", "link.npz"])
def test_fit_never_replaces_its_input(folder: Path, capsys: pytest.CaptureFixture,
                                      out: str) -> None:
    np.savez(folder / "data.npz", x=np.load(folder / "base.npy"))
    (folder / "link.npz").symlink_to("data.npz")
    before = (folder / "data.npz").read_bytes()
    arguments = [*FIT, "--out", out, "--force"]
    arguments[1] = "data.npz"
    main_error(capsys, arguments, 1, "is the input")
    assert (folder / "data.npz").read_bytes() == before


def test_sample_to_an_output_another_run_is_writing_fails(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    with _io.claim([folder / "s.npy"]):  # what a concurrent sample holds while it samples
        main_error(capsys, [*SAMPLE, "--out", "s.npy"], 1, "s.npy is being written by process")
    assert not (folder / "s.npy").exists()


_KILL_BETWEEN_RENAMES = """
import os, signal, sys
from pathlib import Path
real_replace = os.replace
def replace(source, target):
    real_replace(source, target)
    if Path(target).name == "p.model.pt":  # the model is renamed first, then the action
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from inntheory.lab import cli
cli.main(sys.argv[1:])
"""


def test_a_fit_killed_between_its_renames_is_completed_by_the_next_run(folder: Path) -> None:
    (folder / "p.npz").write_bytes(b"earlier action")
    (folder / "p.model.pt").write_bytes(b"earlier model")
    killed = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_RENAMES, *FIT, "--depth", "2",
                             "--out", "p.npz", "--force"], cwd=folder, env=ENV, timeout=120,
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The new model is in place, the earlier action is not yet replaced: the journal says so.
    assert (folder / ".p.model.pt.commit").exists()
    assert (folder / "p.npz").read_bytes() == b"earlier action"

    result = run(*FIT, "--out", "p.npz", cwd=folder)  # the next run, without --force
    one_line(1, result.stderr, result.returncode, "p.npz exists")
    assert sorted(p.name for p in folder.iterdir()) == ["base.npy", "p.model.pt", "p.npz",
                                                        "t.npz"]
    action = inntheory.load_action(folder / "p.npz")
    model = inntheory.PolynomialINN.load(folder / "p.model.pt")
    assert action.metadata["settings"]["depth"] == 2 == model.depth


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_claim(tmp_path: Path) -> None:
    target = tmp_path / "s.npy"
    stale = [tmp_path / ".s.npy.abcd1234.tmp.npy", tmp_path / ".s.npy.abcd1234.old"]
    for path in stale:
        path.write_bytes(b"partial")
    (tmp_path / ".s.npy.commit").write_text("[[")  # a journal cut short: nothing renamed
    keep = tmp_path / ".s.npy.notes"
    keep.write_text("mine")
    with _io.claim([target]):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".s.npy.notes"]


def test_sigterm_removes_the_locks(folder: Path) -> None:
    # a run that lasts minutes (a fit may stop early and exit before the signal arrives)
    long_run = ["sample", "unimodal", "--n", "200000", "--shape", "16", "16", "--quiet",
                "--device", "cpu", "--out", "p.npy"]
    process = subprocess.Popen([sys.executable, "-m", "inntheory", *long_run], cwd=folder,
                               env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lock = folder / ".p.npy.lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    one_line(143, err, process.returncode, "terminated")
    assert sorted(p.name for p in folder.iterdir()) == ["base.npy", "t.npz"]


def test_a_dangling_symlink_is_not_replaced_without_force(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    (folder / "s.npy").symlink_to("missing/elsewhere.npy")
    main_error(capsys, [*SAMPLE, "--out", "s.npy"], 1, "s.npy exists", "--force")
    assert os.readlink(folder / "s.npy") == "missing/elsewhere.npy"


@pytest.mark.parametrize("command", ["fit", "compare"])
def test_a_fifo_is_refused_without_opening_it(folder: Path, command: str) -> None:
    os.mkfifo(folder / "fifo.npy")
    arguments = ["fit", "fifo.npy"] if command == "fit" else ["compare", "fifo.npy", "t.npz"]
    try:
        result = run(*arguments, cwd=folder, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("blocked reading a FIFO")
    one_line(1, result.stderr, result.returncode, "fifo.npy", "not a regular file")


def test_compare_on_a_folder_says_it_is_a_folder(folder: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    (folder / "saved").mkdir()
    main_error(capsys, ["compare", "saved", "t.npz"], 1, "saved is a folder")


@pytest.mark.parametrize("header", ["", "a,b\n"])
def test_csv_with_a_byte_order_mark(tmp_path: Path, header: str) -> None:
    x = np.random.default_rng(4).standard_normal((20, 2))
    text = header + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in x) + "\n"
    (tmp_path / "bom.csv").write_text(text, encoding="utf-8-sig")
    np.testing.assert_array_equal(cli.load_data(tmp_path / "bom.csv"), x)


@pytest.mark.parametrize(("scale", "wording"), [(1e-300, "too small"), (1e160, "too large")])
def test_data_at_extreme_scales_are_named_for_what_they_are(
    folder: Path, capsys: pytest.CaptureFixture, scale: float, wording: str
) -> None:
    np.save(folder / "scaled.npy", np.load(folder / "base.npy") * scale)
    arguments = [*FIT, "--out", "a.npz"]
    arguments[1] = "scaled.npy"
    line = main_error(capsys, arguments, 1, "scaled.npy", wording, "rescale")
    assert "constant" not in line and "NLL" not in line


def test_crafted_names_give_a_short_error_line(folder: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    key = "k" * 60_000
    np.savez(folder / "keys.npz", **{key: np.zeros((3, 2)), "b": np.zeros((3, 2))})
    line = main_error(capsys, ["fit", "keys.npz"], 1, "keys.npz", "2 arrays", "--array")
    assert len(line) < 400
    crafted = {"format": np.array("inntheory.PolynomialAction"), key: np.zeros(2)}
    np.savez(folder / "crafted.npz", **crafted)
    line = main_error(capsys, ["compare", "crafted.npz", "t.npz"], 1)
    assert len(line) < 1000


def test_steps_help_says_the_polish_adds_iterations(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["fit", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "maximum optimiser steps" not in help_text
    assert "Adam steps (default 2000); unless --no-polish, the float64 polish" in help_text


def test_suffixes_in_any_case(folder: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["compare", "t.npz", "t.npz", "--plot", "fig.PNG"]) == 0
    assert cli.main([*FIT, "--out", "up.NPZ"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in folder.iterdir()) == ["base.npy", "fig.PNG", "t.npz",
                                                        "up.NPZ", "up.model.pt"]
    assert inntheory.load_action(folder / "up.NPZ").order == 2


# -- issue 16: the command line uses the public API --------------------------------------------

def test_the_cli_imports_only_the_public_api() -> None:
    tree = ast.parse(Path(cli.__file__).read_text())
    private = {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        and node.level and node.module not in ("_io", "_memory")
        for alias in node.names if alias.name.startswith("_")
    }
    assert not private, private
    for copy in ("_CHAINS", "_ACTIVATIONS", "_PRESETS"):
        assert not hasattr(cli, copy), copy
