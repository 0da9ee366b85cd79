"""Tests of the ``inntheory`` command line through its real entry points.

Every command runs in a subprocess (``python -m inntheory ...``, and the ``inntheory`` console
script of the venv when it is installed) on tiny inputs; the files it writes are read back
with the library. Each user error must end with exit status 1 (or 2 for usage) and one line
``inntheory: error: ...`` on stderr, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import inntheory
from inntheory.actions.dense import PolynomialAction
from inntheory.comparison import compare
from inntheory.lab import cli
from inntheory.model.activations import ACTIVATIONS
from inntheory.model.inn import PolynomialINN
from inntheory.theories import PRESETS, LatticeTheory

SCRIPT = Path(sys.executable).with_name("inntheory")
REPO_ROOT = Path(__file__).resolve().parents[1]
# The subprocesses import the package of this working tree (as the test process does), also
# from a temporary folder as their working directory.
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
N_DATA = 400
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args: object, cwd: Path, script: bool = False) -> subprocess.CompletedProcess:
    """Run the command (module entry point, or the console script) and capture its output."""
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "inntheory"]
    return subprocess.run(
        [*command, *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True,
        timeout=300,
    )


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def check_error(code: int, out: str, err: str, expected: int, fragments: tuple[str, ...]) -> None:
    """Exit status `expected`, nothing on stdout, one stderr line naming every fragment."""
    assert code == expected, (code, err)
    assert "Traceback" not in err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("inntheory: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def assert_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    """A user error through the real entry point (see `check_error`)."""
    check_error(result.returncode, result.stdout, result.stderr, code, fragments)


def assert_main_error(
    capsys: pytest.CaptureFixture, arguments: list[object], code: int, *fragments: str
) -> None:
    """A user error through `main(argv)` in this process, for the cases that only show once
    torch is imported (a subprocess would spend seconds importing it)."""
    returned = cli.main([str(a) for a in arguments])
    captured = capsys.readouterr()
    check_error(returned, captured.out, captured.err, code, fragments)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Correlated 2-D data (n = 400) in several formats."""
    folder = tmp_path_factory.mktemp("cli")
    generator = np.random.default_rng(0)
    x = generator.standard_normal((N_DATA, 2)) @ np.array([[1.0, 0.4], [0.0, 0.8]]) + 0.3
    np.save(folder / "x.npy", x)
    np.savez(folder / "two.npz", a=x, b=x[:, :1])
    np.savetxt(folder / "x.csv", x, delimiter=",", header="left,right", comments="")
    bad = x.copy()
    bad[[3, 10], 0] = np.nan
    bad[12, 1] = np.inf
    np.save(folder / "bad.npy", bad)
    np.save(folder / "flat.npy", x[:, 0])
    np.save(folder / "cube.npy", x.reshape(N_DATA, 2, 1))
    (folder / "junk.npy").write_bytes(b"this is not an array")
    (folder / "truncated.npy").write_bytes((folder / "x.npy").read_bytes()[:200])
    (folder / "ragged.csv").write_text("1,2\n3\n")
    (folder / "x.txt").write_text("1 2\n")
    return folder


# -- fit ---------------------------------------------------------------------------------------


def check_fit(out: Path, point: np.ndarray, order: int, activation: str, depth: int) -> None:
    """The saved action reloads, evaluates, and is the exact expansion of the saved model."""
    action = PolynomialAction.load(out)
    model = PolynomialINN.load(out.with_suffix(".model.pt"))
    assert (action.dim, action.order) == (2, order)
    np.testing.assert_allclose(action.point.numpy(), point, rtol=1e-12, atol=1e-12)
    settings = action.metadata["settings"]
    assert (settings["order"], settings["activation"], settings["depth"]) == (
        order, activation, depth)
    assert action.metadata["training"]["steps"][0] == 0
    assert action.metadata["data"]["n"] == N_DATA
    assert (model.dim, model.depth, model.activation_name) == (2, depth, activation)

    batch = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    values = action(batch)
    assert values.shape == (5,) and torch.isfinite(values).all()
    # The file holds the Taylor expansion of the file's model: value, gradient and Hessian
    # at the expansion point agree with autodiff of the reloaded model.
    x0 = action.point.clone()
    with torch.no_grad():
        value = float(model.action(x0))
    assert action.constant == pytest.approx(value, rel=1e-10, abs=1e-10)
    gradient = torch.func.grad(lambda x: model.action(x[None])[0])(x0)
    torch.testing.assert_close(action.coefficient(1), gradient, rtol=1e-8, atol=1e-10)
    hessian = torch.func.hessian(lambda x: model.action(x[None])[0])(x0)
    torch.testing.assert_close(action.coefficient(2), hessian, rtol=1e-8, atol=1e-10)


def test_fit_npy_then_force_from_csv(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fits" / "action.npz"
    result = run("fit", data_dir / "x.npy", "--depth", 1, "--steps", 20, "--device", "cpu",
                 "--quiet", "--out", out, cwd=tmp_path)
    assert_ok(result)
    assert "wrote" in result.stdout
    assert re.search(r"^goodness of fit: (ok|FAILED: \S.*)$", result.stdout, re.MULTILINE)
    assert (tmp_path / "fits" / "action.model.pt").is_file()
    x = np.load(data_dir / "x.npy")
    check_fit(out, x.mean(axis=0), order=4, activation="cubic", depth=1)

    refused = run("fit", data_dir / "x.csv", "--out", out, cwd=tmp_path)
    assert_error(refused, 1, str(out), "exists", "--force")

    # Once through the console script (where the venv has it): CSV with a header line, the
    # other activation, expansion at zero, a lower order, overwriting with --force.
    again = run("fit", data_dir / "x.csv", "--depth", 2, "--steps", 10, "--order", 2,
                "--activation", "quadratic", "--point", "zero", "--force", "--quiet",
                "--device", "cpu", "--out", out, cwd=tmp_path, script=SCRIPT.is_file())
    assert_ok(again)
    check_fit(out, np.zeros(2), order=2, activation="quadratic", depth=2)


@pytest.mark.parametrize(
    ("arguments", "code", "fragments"),
    [
        (["nope.npy"], 1, ["no such file", "nope.npy"]),
        (["junk.npy"], 1, ["cannot read", "junk.npy", "not a .npy file"]),
        (["truncated.npy"], 1, ["cannot read", "truncated.npy"]),
        (["ragged.csv"], 1, ["cannot read", "ragged.csv", "Line #2"]),
        (["x.txt"], 1, ["unknown data format", ".txt"]),
        (["flat.npy"], 1, ["must be 2-D", "(400,)"]),
        (["cube.npy"], 1, ["must be 2-D", "(400, 2, 1)"]),
        (["bad.npy"], 1, ["3 of 400 rows contain NaN or inf", "indices 3, 10, 12"]),
        (["two.npz"], 1, ["2 arrays (a, b)", "--array"]),
        (["two.npz", "--array", "c"], 1, ["no array 'c'", "a, b"]),
        (["x.npy", "--lattice", "3"], 1, ["--lattice 3 has 3 sites", "N = 2 columns"]),
        (["x.npy", "--kernel-radius", "1"], 1, ["kernel_radius", "lattice"]),
        (["x.npy", "--lattice", "2", "--kernel-radius", "5"], 1, ["kernel_radius"]),
        (["x.npy", "--odd", "--activation", "quadratic"], 1, ["odd", "quadratic"]),
        (["x.npy", "--kernel-radius", "-1"], 2, ["--kernel-radius", "integer >= 0"]),
        (["x.npy", "--activation", "relu"], 2, ["invalid choice: 'relu'"]),
        (["x.npy", "--depth", "0"], 2, ["--depth", "positive integer"]),
        (["x.csv", "--array", "a"], 2, ["--array applies to .npz"]),
        (["x.npy", "--steps", "many"], 2, ["--steps", "'many'"]),
    ],
)
def test_fit_user_errors(
    data_dir: Path, tmp_path: Path, arguments: list[str], code: int, fragments: list[str]
) -> None:
    result = run("fit", *arguments, "--out", tmp_path / "a.npz", cwd=data_dir)
    assert_error(result, code, *fragments)
    assert not (tmp_path / "a.npz").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_fit_unavailable_device(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    arguments = ["fit", data_dir / "x.npy", "--device", "cuda", "--out", tmp_path / "a.npz"]
    assert_main_error(capsys, arguments, 1, "CUDA is not available")


def test_fit_constant_column(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    x = np.random.default_rng(2).standard_normal((200, 2))
    x[:, 1] = 3.0
    np.save(tmp_path / "constant.npy", x)
    arguments = ["fit", tmp_path / "constant.npy", "--order", 2, "--depth", 1, "--device",
                 "cpu", "--quiet", "--out", tmp_path / "a.npz"]
    assert_main_error(capsys, arguments, 1, "training failed", "constant")
    assert not (tmp_path / "a.npz").exists()


def test_thin_data_warn_against_the_network_not_the_action(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # 8x8 data with 1e5 rows (N = 64): the dense A1..A4 has C(68, 4) - 1 = 814 385
    # coefficients, the old rule asked for 8 143 840 rows; the lattice-equivariant network has
    # a few dozen parameters and fits.
    x = np.random.default_rng(4).standard_normal((100_000, 64))
    np.save(tmp_path / "lattice.npy", x)
    arguments = ["fit", tmp_path / "lattice.npy", "--lattice", 8, 8, "--kernel-radius", 1,
                 "--depth", 1, "--steps", 20, "--no-polish", "--quiet", "--device", "cpu",
                 "--out", tmp_path / "a.npz"]
    assert cli.main([str(a) for a in arguments]) == 0
    captured = capsys.readouterr()
    assert "thin data" not in captured.err  # (20 Adam steps do not fit: goodness of fit warns)
    assert "trainable parameters" in captured.out
    action = inntheory.LatticeAction.load(tmp_path / "a.npz")
    assert action.shape == (8, 8) and action.order == 4
    # --point mean on a lattice model: the mean over rows and sites, a uniform point
    assert action.point_value == pytest.approx(float(x.mean()), rel=1e-12, abs=1e-15)
    assert action.metadata["settings"]["lattice"] == [8, 8]
    # the same rows for a dense depth-1 network (4224 parameters): a warning, not a refusal
    few = tmp_path / "few.npy"
    np.save(few, x[:200, :4])
    assert cli.main([str(a) for a in ["fit", few, "--depth", 3, "--steps", 5, "--no-polish",
                                      "--order", 2, "--quiet", "--device", "cpu", "--out",
                                      tmp_path / "b.npz"]]) == 0
    captured = capsys.readouterr()
    assert "warning: thin data: 200 rows" in captured.err
    assert cli.recommended_samples(24) == 10 * 24


def test_fit_lattice_odd_and_compare_reads_lattice_actions(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    x = np.random.default_rng(5).standard_normal((2000, 6)) * 1.5
    np.save(tmp_path / "ring.npy", x)
    arguments = ["fit", tmp_path / "ring.npy", "--lattice", 6, "--odd", "--depth", 1,
                 "--steps", 30, "--quiet", "--device", "cpu", "--point", "zero",
                 "--out", tmp_path / "odd.npz"]
    assert cli.main([str(a) for a in arguments]) == 0
    out = capsys.readouterr().out
    assert "fisher iterations" in out  # polish ran (auto: small data, few parameters)
    model = inntheory.PolynomialINN.load(tmp_path / "odd.model.pt")
    assert model.odd and model.lattice == (6,)
    odd = inntheory.LatticeAction.load(tmp_path / "odd.npz")
    assert float(odd.couplings(3).abs().max()) < 1e-12 * float(odd.couplings(4).abs().max())
    true = inntheory.preset("double_well", shape=(6,)).lattice_coefficients(4)
    true.save(tmp_path / "true.npz")
    assert cli.main(["compare", str(tmp_path / "true.npz"), str(tmp_path / "odd.npz")]) == 0
    lattice_table = capsys.readouterr().out
    dense_true = inntheory.preset("double_well", shape=(6,)).coefficients(4)
    dense_true.save(tmp_path / "dense_true.npz")
    assert cli.main(["compare", str(tmp_path / "dense_true.npz"),
                     str(tmp_path / "odd.npz")]) == 0
    # the compressed and the dense reference give the same table
    assert capsys.readouterr().out == lattice_table and "odd" in lattice_table


def test_load_data_formats(data_dir: Path, tmp_path: Path) -> None:
    x = np.load(data_dir / "x.npy")
    np.testing.assert_allclose(cli.load_data(data_dir / "x.csv"), x, rtol=1e-15)
    np.testing.assert_array_equal(cli.load_data(data_dir / "two.npz", array="b"), x[:, :1])
    plain = tmp_path / "plain.csv"
    plain.write_text("# a comment\n\n1,2\n3,4\n")
    loaded = cli.load_data(plain)
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded, [[1.0, 2.0], [3.0, 4.0]])
    holes = tmp_path / "holes.csv"
    holes.write_text("a,b\n1,2\n3,\n5,x\n7,8\n")
    with pytest.raises(cli.CLIError, match=r"2 of 4 rows .* non-numeric .* indices 1, 2;"):
        cli.load_data(holes)
    integers = tmp_path / "int.npy"
    np.save(integers, np.arange(6).reshape(3, 2))
    assert cli.load_data(integers).dtype == np.float64
    strings = tmp_path / "str.npy"
    np.save(strings, np.array([["a", "b"]]))
    with pytest.raises(cli.CLIError, match="real numbers"):
        cli.load_data(strings)


def test_choices_are_the_library_registries(capsys: pytest.CaptureFixture) -> None:
    for command, name, registry in (("fit", "cubic", ACTIVATIONS), ("sample", "PRESET", PRESETS)):
        assert cli.main([command, "--help"]) == 0
        assert ", ".join(sorted(registry)) in capsys.readouterr().out, (command, name)
    assert cli.main(["fit", "x.npy", "--activation", "sine"]) == 2
    assert "choose from 'cubic', 'quadratic'" in capsys.readouterr().err


# -- sample ------------------------------------------------------------------------------------


def test_sample_preset_with_couplings(tmp_path: Path) -> None:
    # The gaussian preset with its couplings overridden, on a 2 x 3 lattice, to CSV: the site
    # variance must match the exact inv(A2) of the overridden couplings (translation
    # invariant, so pooled over sites) within 4 standard errors of a variance estimate,
    # sqrt(2 / ESS) relative, with the smallest effective sample size the command reports.
    # The preset's own m2 = 1, kappa = 0.5 would give a site variance 26 % lower.
    n = 4000
    result = run("sample", "gaussian", "--shape", 2, 3, "--m2", 0.7, "--kappa", 0.4, "--n", n,
                 "--seed", 3, "--quiet", "--device", "cpu", "--out", "g.csv", cwd=tmp_path)
    assert_ok(result)
    assert "wrote g.csv" in result.stdout
    ess = float(re.search(r"smallest ESS (\d+)", result.stdout).group(1))
    x = cli.load_data(tmp_path / "g.csv")
    assert x.shape == (n, 6)
    theory = LatticeTheory((2, 3), m2=0.7, kappa=0.4)
    exact = float(torch.linalg.inv(theory.quadratic()).diagonal().mean())
    tolerance = 4 * math.sqrt(2 / ess)
    assert tolerance < 0.13
    assert x.var(axis=0).mean() == pytest.approx(exact, rel=tolerance)

    refused = run("sample", "gaussian", "--out", "g.csv", cwd=tmp_path)
    assert_error(refused, 1, "exists", "--force")


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv"])
def test_saved_samples_read_back(tmp_path: Path, suffix: str) -> None:
    x = np.random.default_rng(1).standard_normal((7, 3))
    cli._save_samples(x, tmp_path / f"s{suffix}")
    np.testing.assert_allclose(cli.load_data(tmp_path / f"s{suffix}"), x, rtol=1e-15)


@pytest.mark.parametrize(
    ("arguments", "code", "fragments"),
    [
        (["--n", "5"], 2, ["give a PRESET", "--m2, --kappa"]),
        (["--m2", "1"], 2, ["missing: --kappa"]),
        (["tachyon"], 2, ["invalid choice: 'tachyon'"]),
        (["gaussian", "--out", "x.txt"], 1, ["--out must end in .npy, .npz or .csv"]),
        (["gaussian", "--n", "0"], 2, ["--n", "positive integer"]),
        (["gaussian", "--m2", "nan"], 2, ["finite number"]),
    ],
)
def test_sample_user_errors(
    tmp_path: Path, arguments: list[str], code: int, fragments: list[str]
) -> None:
    assert_error(run("sample", *arguments, cwd=tmp_path), code, *fragments)


def test_sample_theory_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "x.npy"
    arguments = ["sample", "--m2", 1, "--kappa", 0.5, "--g4", -1, "--out", out]
    assert_main_error(capsys, arguments, 2, "g4 = -1.0 < 0")
    arguments = ["sample", "gaussian", "--m2", -1, "--out", out]
    assert_main_error(capsys, arguments, 2, "m2 = -1.0 <= 0")
    assert not out.exists()


# -- compare -----------------------------------------------------------------------------------


def test_compare_prints_the_errors(tmp_path: Path) -> None:
    a2 = torch.tensor([[2.0, -0.5], [-0.5, 2.0]], dtype=torch.float64)
    a4 = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    a4[0, 0, 0, 0] = a4[1, 1, 1, 1] = 1.0
    true = PolynomialAction({2: a2, 4: a4})
    learned = PolynomialAction({2: 1.1 * a2, 3: torch.zeros(2, 2, 2), 4: 1.25 * a4})
    true.save(tmp_path / "true.npz")
    learned.save(tmp_path / "mine.npz")
    result = run("compare", "true.npz", "mine.npz", "--plot", "cmp.png", cwd=tmp_path)
    assert_ok(result)
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()
            if line[:1].isdigit()}
    assert sorted(rows) == ["1", "2", "3", "4"]
    # Columns: k, scale, true diag, true offdiag, mine: error, ... (relative Frobenius errors
    # 0.1 and 0.25 by construction; orders 1 and 3 are zero in both).
    assert [float(rows[k][4]) for k in "1234"] == [0.0, 0.1, 0.0, 0.25]
    assert "mine: error" in result.stdout
    assert (tmp_path / "cmp.png").read_bytes()[:8] == PNG_MAGIC

    assert_error(run("compare", "true.npz", "mine.npz", "--plot", "cmp.png", cwd=tmp_path), 1,
                 "cmp.png", "exists")
    assert_error(run("compare", "true.npz", "gone.npz", cwd=tmp_path), 1, "gone.npz")


def test_compare_mismatched_actions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    PolynomialAction({2: torch.eye(2, dtype=torch.float64)}).save(tmp_path / "two.npz")
    PolynomialAction({2: torch.eye(3, dtype=torch.float64)}).save(tmp_path / "three.npz")
    PolynomialAction({2: torch.eye(2)}, point=torch.ones(2)).save(tmp_path / "moved.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip archive")
    two, three = tmp_path / "two.npz", tmp_path / "three.npz"
    assert_main_error(capsys, ["compare", two, three], 1,
                      "three has dim 3 but the true action has 2")
    assert_main_error(capsys, ["compare", two, tmp_path / "moved.npz"], 1, "different point")
    assert_main_error(capsys, ["compare", two, tmp_path / "broken.npz"], 1, "broken.npz",
                      "not a readable action file")
    assert_main_error(capsys, ["compare", two, two, "--order", 3], 1, "order 3 is missing")


# -- demo and the top level --------------------------------------------------------------------


def test_demo_quick(tmp_path: Path) -> None:
    result = run("demo", "--quick", "--quiet", "--device", "cpu", "--out", "demo", cwd=tmp_path)
    assert_ok(result)
    out = tmp_path / "demo"
    assert "INN: error" in result.stdout and "score matching: error" in result.stdout
    for name in ("comparison.png", "loss.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["quick"] is True
    assert summary["device"] == "cpu"
    assert set(summary["seconds"]) >= {"sample", "train", "extract", "score_matching", "total"}
    assert summary["diagnostics"]["sampling"]["acceptance"] > 0
    # The summary's errors are those of the saved actions.
    true = PolynomialAction.load(out / "true_action.npz")
    for label, name in (("INN", "learned"), ("score matching", "score_matching")):
        learned = inntheory.load_action(out / f"{name}_action.npz")
        comparison = compare(true, learned)
        for k in (1, 2, 3, 4):
            assert summary["errors"][label][str(k)] == pytest.approx(comparison.row(k).error)
    assert isinstance(inntheory.load_action(out / "learned_action.npz"),
                      inntheory.LatticeAction)
    # Even the quick run gets the pairwise couplings roughly right.
    assert summary["errors"]["INN"]["2"] < 0.5

    assert_error(run("demo", "--quick", "--out", "demo", cwd=tmp_path), 1, "exists", "--force")


@pytest.mark.parametrize(
    ("arguments", "code", "fragments"),
    [([], 2, ["required: COMMAND"]), (["train"], 2, ["invalid choice: 'train'"])],
)
def test_usage_errors(
    tmp_path: Path, arguments: list[str], code: int, fragments: list[str]
) -> None:
    assert_error(run(*arguments, cwd=tmp_path), code, *fragments)


def test_help_and_version(tmp_path: Path) -> None:
    for command in ([], ["demo"], ["fit"], ["sample"], ["compare"]):
        assert_ok(run(*command, "--help", cwd=tmp_path))
    version = run("--version", cwd=tmp_path, script=SCRIPT.is_file())
    assert_ok(version)
    assert version.stdout.strip().startswith("inntheory ")
