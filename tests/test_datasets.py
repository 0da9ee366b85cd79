"""Tests of inntheory.datasets: cache keys, atomic files, round trips and corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inntheory.datasets import cache_path, default_cache_dir, load_dataset
from inntheory.theories import LatticeTheory, preset


def test_generate_then_load_from_cache(tmp_path: Path) -> None:
    first = load_dataset("gaussian", 200, seed=3, cache_dir=tmp_path, progress=False)
    assert first.diagnostics["cached"] is False
    path = Path(first.diagnostics["path"])
    assert path.parent == tmp_path and path.suffix == ".npz"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    second = load_dataset("gaussian", 200, seed=3, cache_dir=tmp_path, progress=False)
    assert second.diagnostics["cached"] is True
    torch.testing.assert_close(second.x, first.x, rtol=0, atol=0)
    assert second.x.shape == (200, 8) and second.x.dtype == torch.float64
    for key in ("ess", "tau", "rhat", "acceptance", "step_size"):
        assert second.diagnostics[key] == pytest.approx(first.diagnostics[key], nan_ok=True)
    with np.load(path, allow_pickle=False) as archive:
        assert json.loads(str(archive["parameters"])) == preset("gaussian").parameters
        assert int(archive["seed"]) == 3 and str(archive["method"]) == "hmc"
        np.testing.assert_array_equal(archive["x"], first.x.numpy())


def test_key_depends_on_everything_that_matters(tmp_path: Path) -> None:
    base = cache_path("unimodal", 100, cache_dir=tmp_path)
    same = cache_path(LatticeTheory((8,), 1.0, 0.5, 0.5, 1.0), 100, cache_dir=tmp_path)
    assert base == same
    others = {
        cache_path("unimodal", 101, cache_dir=tmp_path),
        cache_path("unimodal", 100, seed=1, cache_dir=tmp_path),
        cache_path("unimodal", 100, method="mala", cache_dir=tmp_path),
        cache_path(LatticeTheory((8,), 1.0, 0.5, 0.5, 1.1), 100, cache_dir=tmp_path),
        cache_path(preset("unimodal", (2, 4)), 100, cache_dir=tmp_path),
    }
    assert base not in others and len(others) == 5


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNTHEORY_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    result = load_dataset(preset("gaussian", (2,)), 64, progress=False)
    assert Path(result.diagnostics["path"]).parent == tmp_path / "env"
    monkeypatch.delenv("INNTHEORY_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "inntheory"


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04 truncated"])
def test_corrupt_cache_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = cache_path("gaussian", 50, cache_dir=tmp_path)
    path.write_bytes(content)
    with pytest.raises(ValueError, match="unreadable or corrupt") as info:
        load_dataset("gaussian", 50, cache_dir=tmp_path, progress=False)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content  # never silently replaced


def test_cache_file_with_other_contents_is_an_error(tmp_path: Path) -> None:
    path = cache_path("gaussian", 50, cache_dir=tmp_path)
    np.savez(path, x=np.zeros((50, 8)), parameters=np.array(json.dumps({"m2": 2.0})),
             seed=np.int64(0), method=np.array("hmc"), diagnostics=np.array("{}"))
    with pytest.raises(ValueError, match="different data set") as info:
        load_dataset("gaussian", 50, cache_dir=tmp_path, progress=False)
    assert str(path) in str(info.value)
    np.savez(path, x=np.zeros((50, 8)))
    with pytest.raises(ValueError, match="unreadable or corrupt"):
        load_dataset("gaussian", 50, cache_dir=tmp_path, progress=False)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_samples"):
        load_dataset("gaussian", 0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown preset"):
        load_dataset("nope", 10, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="method"):
        load_dataset("gaussian", 10, cache_dir=tmp_path, method="gibbs")
    with pytest.raises(TypeError, match="LatticeTheory"):
        load_dataset(42, 10, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
