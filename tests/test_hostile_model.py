"""Crafted and careless inputs to the model and the extraction: one clear error, at once, before
any expensive work (an absurd order, a 3-axis lattice, a model file whose config lies about its
tensors, a float16 file, a sample too large for memory)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from inntheory import PolynomialINN
from inntheory.model import inn


def _fit(tmp_path: Path, *options: object) -> tuple[subprocess.CompletedProcess, float]:
    """`inntheory fit` on 300 x 4 data with `options` in a fresh process; (result, seconds)."""
    np.save(tmp_path / "d.npy", np.random.default_rng(0).standard_normal((300, 4)))
    command = [sys.executable, "-m", "inntheory", "fit", "d.npy", "--quiet", "--device", "cpu",
               "--steps", "20", "--out", "o.npz", *map(str, options)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(Path(__file__).parents[1]),
                                 "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    return result, time.perf_counter() - start


@pytest.mark.parametrize("options", [("--order", 1000), ("--lattice", 4, "--order", 1000000)],
                         ids=["dense", "lattice"])
def test_an_absurd_order_is_refused_before_training(tmp_path, options):
    result, seconds = _fit(tmp_path, *options)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if "warning" not in line]
    assert len(lines) == 1 and lines[0].startswith("inntheory: error: "), result.stderr
    assert "Traceback" not in result.stderr and "lower --order" in lines[0]
    assert seconds < 60  # the import of torch included; the check itself is instant
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "o.model.pt").exists()


def test_the_cost_of_an_absurd_order_is_computed_at_once():
    from inntheory.extraction import extraction_cost

    start = time.perf_counter()
    dense = extraction_cost(4, 1000, 3, "cubic")
    lattice = extraction_cost(4, 10**6, 3, "cubic", lattice=(4,))
    huge = extraction_cost(10**6, 10**9, 3, "quadratic", lattice=(1000, 1000), kernel_radius=1)
    assert time.perf_counter() - start < 1.0
    for cost in (dense, lattice, huge):
        assert cost["placements"] == cost["seconds"] == cost["peak_bytes"] == float("inf")


def test_a_lattice_needs_one_or_two_axes():
    with pytest.raises(ValueError, match=r"lattice must have 1 or 2 axes.*got 3: \(2, 2, 1\)"):
        PolynomialINN(4, 1, lattice=(2, 2, 1))


def test_a_model_file_whose_config_lies_is_refused_before_building(tmp_path, monkeypatch):
    path = tmp_path / "small.model.pt"
    PolynomialINN(3, 1).save(path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["dim"] = 15000
    torch.save(payload, path)
    assert path.stat().st_size < 10_000
    monkeypatch.setattr(PolynomialINN, "__init__",
                        lambda *a, **k: pytest.fail("a model was built"))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"shift has shape \(3,\) but the config declares "
                                         r"\(15000,\)"):
        PolynomialINN.load(path)
    assert time.perf_counter() - start < 1.0


def test_a_model_file_with_missing_tensors_or_a_bad_config_is_named(tmp_path):
    path = tmp_path / "model.pt"
    PolynomialINN(3, 2, lattice=(3,)).save(path)
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"]["kernel"]
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"missing \['kernel'\]"):
        PolynomialINN.load(path)
    payload["config"]["lattice"] = [3, 1, 1]
    torch.save(payload, path)
    with pytest.raises(ValueError, match="config is invalid: lattice must have 1 or 2 axes"):
        PolynomialINN.load(path)


def test_a_float16_model_file_is_the_documented_value_error(tmp_path):
    path = tmp_path / "half.model.pt"
    PolynomialINN(3, 1).half().save(path)
    with pytest.raises(ValueError, match="dtype 'float16'; a PolynomialINN is float32 or float64"):
        PolynomialINN.load(path)
    payload = torch.load(path, weights_only=True)
    payload["dtype"] = "float32"  # declared float32, tensors float16
    torch.save(payload, path)
    with pytest.raises(ValueError, match="is torch.float16, not the declared float32"):
        PolynomialINN.load(path)


def test_a_sample_too_large_for_memory_is_refused_with_the_estimate(monkeypatch):
    model = PolynomialINN(64, 1)
    monkeypatch.setattr(inn, "available_bytes", lambda device: 2**33, raising=False)
    with pytest.raises(MemoryError, match=r"sampling 1000000000 configurations of N = 64 needs "
                                          r"about 1.91e\+03 GiB.*4 GiB"):
        model.sample(10**9)
    assert model.sample(10, seed=0).shape == (10, 64)
