"""Crafted and careless action files and cache entries: one clear error or a recomputation.

Each file is made with numpy in a few lines, as a hostile or careless user would.
"""

from __future__ import annotations

import io
import json
import time
import warnings
import zipfile

import numpy as np
import pytest
import torch

import inntheory as it
from inntheory.actions import lattice as lattice_module
from inntheory.actions.dense import PolynomialAction
from inntheory.actions.lattice import LatticeAction
from inntheory.lab import store, sweeps

DEEP = "[" * 100_000 + "]" * 100_000


def _lattice_arrays() -> dict:
    return {"C1": np.float64(0.1), "C2": np.array([2.0, -0.5, -0.5]), "shape": np.array([8]),
            "window": np.array([3]), "point": np.float64(0.0), "constant": np.float64(0.0),
            "metadata": np.array("{}"), "format": np.array("inntheory.LatticeAction")}


def _write(path, arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("kind", ["dense", "lattice"])
def test_deeply_nested_metadata_is_one_clear_error(tmp_path, kind):
    arrays = ({"A2": np.eye(2)} if kind == "dense" else _lattice_arrays())
    arrays["metadata"] = np.array(DEEP)
    path = _write(tmp_path / f"{kind}.npz", arrays)
    cls = PolynomialAction if kind == "dense" else LatticeAction
    for load in (it.load_action, cls.load):
        with pytest.raises(ValueError, match=r"nests too deeply") as caught:
            load(path)
        assert str(path) in str(caught.value) and len(str(caught.value)) < 400


@pytest.mark.parametrize("change, message", [
    ({"C01": np.float64(0.1)}, "'C01' is not a coupling name"),
    ({"C2": np.array(["a", "b", "c"])}, "C2 must hold real numbers"),
    ({"C2": np.array([True, False, False])}, "C2 must hold real numbers"),
    ({"C2": np.array([2 + 1j, 0, 0])}, "C2 must hold real numbers"),
])
def test_bad_coupling_arrays_are_refused_at_load(tmp_path, change, message):
    arrays = _lattice_arrays()
    if "C01" in change:
        del arrays["C1"]
    path = _write(tmp_path / "bad.npz", arrays | change)
    for load in (it.load_action, LatticeAction.load):
        with pytest.raises(ValueError, match=message) as caught:
            load(path)
        assert str(path) in str(caught.value)


def test_store_recomputes_an_entry_whose_lattice_file_is_bad(tmp_path):
    good = LatticeAction({2: torch.tensor([2.0, -0.5, -0.5])}, shape=(8,))
    assert isinstance(store.cached({"a": 1}, lambda: good, tmp_path), LatticeAction)
    npz = store.entry_path({"a": 1}, tmp_path).with_suffix(".npz")
    _write(npz, _lattice_arrays() | {"C2": np.array(["a", "b", "c"])})
    with pytest.warns(RuntimeWarning, match="unreadable stored result.*real numbers"):
        again = store.cached({"a": 1}, lambda: good, tmp_path)
    assert torch.equal(again.couplings(2), good.couplings(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.cached({"a": 1}, lambda: 1 / 0, tmp_path)  # repaired: read, not computed


@pytest.mark.parametrize("sites", [10**9, 2**62])
def test_huge_declared_lattice_is_refused_at_load(tmp_path, monkeypatch, sites):
    monkeypatch.setattr(lattice_module, "available_bytes", lambda *a, **k: 4 * 2**30)
    path = _write(tmp_path / "huge.npz", _lattice_arrays() | {"shape": np.array([sites])})
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"declares a lattice of {sites} sites"):
        it.load_action(path)
    assert time.perf_counter() - start < 5


def test_member_declaring_more_data_than_it_holds_is_refused_before_reading(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)})
    path = tmp_path / "crafted.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("A2.npy", header.getvalue() + b"\0" * 64)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"declares shape \(100000, 100000\)"):
        it.load_action(path)
    assert time.perf_counter() - start < 5


def test_error_lines_quote_at_most_a_little_of_a_crafted_name(tmp_path):
    name = "A0" + "1" * 60_000
    path = _write(tmp_path / "long.npz", {"A2": np.eye(2), name: np.eye(2)})
    with pytest.raises(ValueError, match="is not a coefficient name") as caught:
        it.load_action(path)
    assert len(str(caught.value)) < 400
    path = _write(tmp_path / "tag.npz", _lattice_arrays() | {"format": np.array("x" * 60_000)})
    with pytest.raises(ValueError, match="unknown action format") as caught:
        it.load_action(path)
    assert len(str(caught.value)) < 400


# -- cache entries of valid JSON with the wrong shape -------------------------------------------


@pytest.mark.parametrize("content", ["[1, 2, 3]", "null", '"text"', "{}"])
def test_store_entry_of_the_wrong_shape_is_recomputed(tmp_path, content):
    store.entry_path({"a": 1}, tmp_path).write_text(content)
    with pytest.warns(RuntimeWarning, match="unreadable stored result"):
        assert store.cached({"a": 1}, lambda: 7, tmp_path) == 7
    assert store.cached({"a": 1}, lambda: 1 / 0, tmp_path) == 7


THEORY = it.LatticeTheory((2,), m2=1.0, kappa=0.2, g3=0.0, g4=0.5)


def _point_settings(cache):
    plan, _ = sweeps._plan(THEORY, [1], [100], [0], "cubic", 4, None, None, None, None, None,
                           cache)
    return plan.inn_settings(1, 100, 0)


def _fake_record():
    errors = {str(k): {"frobenius": 0.5, "diagonal": 0.25, "leakage": 0.0, "relative": True}
              for k in range(1, 5)}
    return {"depth": 1, "n": 100, "seed": 0, "errors": errors, "val_nll": 1.0,
            "train_seconds": 0.1, "fisher_divergence": 0.01}


@pytest.mark.parametrize("value", [[1, 2, 3], None, {}, {"depth": 1, "n": 100, "seed": 0}])
def test_sweep_ignores_records_of_the_wrong_shape_and_recomputes(tmp_path, monkeypatch, value):
    settings = _point_settings(tmp_path)
    path = store.entry_path(settings, tmp_path, sweeps._name(settings))
    path.write_text(json.dumps({"settings": settings, "version": it.__version__,
                                "kind": "json", "value": value}))
    with pytest.warns(RuntimeWarning, match="unreadable stored result"):
        cached = it.SweepResult.from_cache(THEORY, [1], [100], [0], cache=tmp_path)
    assert len(cached.missing) == 1 and np.isnan(cached.errors(4)[0]).all()

    class Loaded:
        x = torch.zeros(100, 2)

    monkeypatch.setattr(sweeps, "load_dataset", lambda *a, **k: Loaded())
    monkeypatch.setattr(sweeps, "_run", lambda task: {"settings": task[0],
                                                      "record": _fake_record()})
    with pytest.warns(RuntimeWarning, match="unreadable stored result"):
        result = it.sweep(THEORY, [1], [100], [0], cache=tmp_path, executor="serial",
                          progress=False)
    assert result.complete and result.errors(4, "diagonal")[0][0, 0] == 0.25
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = it.SweepResult.from_cache(THEORY, [1], [100], [0], cache=tmp_path,
                                          strict=True)
    assert again.records == result.records
