"""Tests of the compressed translation-invariant action and its pull-back against the dense one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lattice_models import lattice_model

from inntheory import LatticeTheory, PolynomialAction, compare, extract_action
from inntheory.actions.lattice import LatticeAction, lattice_window
from inntheory.extraction.lattice import extract_lattice_action
from inntheory.model.linear import DenseLinear
from inntheory.model.stages import AffineStage

TOL = 1e-12  # relative to the largest entry of the dense tensor


def assert_same(compressed: LatticeAction, dense: PolynomialAction, order: int) -> None:
    for k in range(1, order + 1):
        reference = dense.coefficient(k)
        scale = max(1.0, float(reference.abs().max()))
        error = float((compressed.coefficient(k) - reference).abs().max())
        assert error <= TOL * scale, (k, error, scale)
    assert abs(compressed.constant - dense.constant) <= TOL * max(1.0, abs(dense.constant))


@pytest.mark.parametrize("shape", [(5,), (6,), (3, 3), (2, 4)])
@pytest.mark.parametrize("activation", ["quadratic", "cubic"])
@pytest.mark.parametrize("standardize", [False, True])
def test_compressed_equals_dense_for_every_order(shape, activation, standardize):
    model = lattice_model(shape, 2, activation, standardize, seed=len(shape) + shape[0])
    for order in (1, 2, 3, 4):
        compressed = extract_action(model, order)
        assert isinstance(compressed, LatticeAction)
        assert compressed.window == shape and compressed.order == order
        dense = extract_action(model, order, compressed=False)
        assert isinstance(dense, PolynomialAction)
        assert_same(compressed, dense, order)
    point = torch.zeros(model.dim, dtype=torch.float64)
    assert abs(compressed.constant - float(model.action(point).detach())) < 1e-10


@pytest.mark.parametrize(
    ("shape", "depth", "radius", "order"), [((12,), 2, 1, 4), ((7, 7), 1, 1, 4), ((11,), 1, 2, 4)]
)
def test_range_cut_is_exact(shape, depth, radius, order):
    model = lattice_model(shape, depth, "cubic", True, radius=radius)
    reach = 2 * depth * radius
    compressed = extract_action(model, order)
    assert compressed.window == lattice_window(shape, reach)
    assert all(w < n for w, n in zip(compressed.window, shape, strict=True))
    dense = extract_action(model, order, compressed=False)
    assert_same(compressed, dense, order)
    LatticeAction(dict(compressed.items()), shape, window=compressed.window)  # symmetric
    # the dense extraction has no coupling beyond the stated range
    sites = np.stack(np.unravel_index(np.arange(model.dim), shape), axis=1)
    diff = (sites[:, None, :] - sites[None, :, :]) % np.array(shape)
    minimal = np.abs(np.where(diff <= np.array(shape) // 2, diff, diff - np.array(shape)))
    far = torch.from_numpy(minimal.max(axis=2) > reach)
    assert bool(far.any())
    a2 = dense.coefficient(2)
    assert float(a2[far].abs().max()) < 1e-14 * float(a2.abs().max())
    a4 = dense.coefficient(4)
    assert float(a4[far[:, :, None, None].expand_as(a4)].abs().max()) < 1e-14 * float(
        a4.abs().max()
    )
    # and within the range the couplings do not vanish (the check can fail)
    near = torch.from_numpy(minimal.max(axis=2) == reach)
    assert float(a2[near].abs().max()) > 1e-6


def test_non_lattice_stages_and_points_are_refused_with_reasons():
    model = lattice_model((5,), 1, "cubic", False)
    # a non-uniform point: the action is not translation invariant, so it comes out dense
    dense = extract_action(model, 2, point=torch.arange(5.0) / 10)
    assert isinstance(dense, PolynomialAction)
    with pytest.raises(ValueError, match="uniform expansion point"):
        extract_lattice_action(model, model.stages(), 2,
                               torch.arange(5.0, dtype=torch.float64) / 10, 2**30)
    stages = model.stages()
    bias = stages[0].bias.clone()
    bias[1] += 0.1
    model.stages = lambda: [AffineStage(stages[0].linear, bias), *stages[1:]]
    with pytest.raises(ValueError, match="bias"):
        extract_action(model, 2)
    model = lattice_model((5,), 1, "cubic", False)
    stages = model.stages()
    weight = stages[0].linear.matrix().clone()
    weight[1, 3] += 0.1
    model.stages = lambda: [AffineStage(DenseLinear(weight), stages[0].bias), *stages[1:]]
    with pytest.raises(ValueError, match="DenseLinear is not a periodic convolution"):
        extract_action(model, 2)


def test_uniform_nonzero_point_matches_dense():
    model = lattice_model((2, 3), 2, "quadratic", True)
    point = torch.full((6,), 0.05, dtype=torch.float64)
    compressed = extract_action(model, 4, point=point)
    assert compressed.point_value == pytest.approx(0.05)
    assert_same(compressed, extract_action(model, 4, point=point, compressed=False), 4)


def test_memory_guard_names_the_estimate():
    model = lattice_model((6,), 2, "cubic", True)
    with pytest.raises(MemoryError, match=r"needs about .* GiB"):
        extract_action(model, 4, max_bytes=1000)


def test_radius_window_is_kept_by_truncate():
    """(Action, gradient, diagonal, spectrum against the dense expansion of this and every
    other representation: tests/test_contracts_actions.py.)"""
    compressed = extract_action(lattice_model((7,), 1, "cubic", True, radius=1), 4)
    assert compressed.window == (5,)
    truncated = compressed.truncate(2)
    assert truncated.order == 2 and truncated.window == (5,)


def test_save_load_keeps_shape_and_window_and_refuses_other_files(tmp_path):
    """(The round trip of every representation: tests/test_contracts_actions.py.)"""
    action = extract_action(lattice_model((3, 4), 2, "cubic", True), 4)
    loaded = LatticeAction.load(action.save(tmp_path / "lattice"))
    assert loaded.shape == action.shape and loaded.window == action.window
    dense_file = PolynomialAction({2: torch.eye(2)}).save(tmp_path / "dense.npz")
    with pytest.raises(ValueError, match="not a LatticeAction file"):
        LatticeAction.load(dense_file)
    with pytest.raises(FileNotFoundError):
        LatticeAction.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        LatticeAction.load(tmp_path / "bad.npz")


def test_coefficient_refuses_when_too_big_with_the_estimate():
    action = LatticeAction({2: torch.zeros(3, 3), 4: torch.zeros((3, 3) * 3)}, shape=(32, 32))
    with pytest.raises(MemoryError, match=r"1024\^4 entries and needs about 1.64e\+04 GiB"):
        action.coefficient(4)
    assert action.coefficient(2, max_bytes=2**26).shape == (1024, 1024)


def test_constructor_checks():
    with pytest.raises(ValueError, match="window"):
        LatticeAction({2: torch.zeros(4)}, shape=(6,))  # even window shorter than L
    with pytest.raises(ValueError, match="shape"):
        LatticeAction({3: torch.zeros(3)}, shape=(6,), window=(3,))
    with pytest.raises(ValueError, match="uniform"):
        LatticeAction({2: torch.zeros(3)}, shape=(6,), point=torch.arange(6.0))
    with pytest.raises(ValueError, match="not the compressed form of a symmetric"):
        LatticeAction({3: torch.arange(9.0).reshape(3, 3)}, shape=(6,))
    with pytest.raises(ValueError, match="not the compressed form of a symmetric"):
        LatticeAction({2: torch.tensor([1.0, 0.5, 0.2])}, shape=(6,))  # C[+1] != C[-1]
    symmetric_pair = torch.zeros(3, 3)
    symmetric_pair[1, 1] = 1.0  # A[0, 1, 1]: needs A[0, -1, 0] = C[-1, 0] and C[0, -1] too
    with pytest.raises(ValueError, match="not the compressed form of a symmetric"):
        LatticeAction({3: symmetric_pair}, shape=(6,))
    symmetric_pair[2, 0] = symmetric_pair[0, 2] = 1.0
    LatticeAction({3: symmetric_pair}, shape=(6,))
    far = torch.zeros(3, 3)
    far[1, 2] = far[2, 1] = 1.0  # A[0, 1, -1]: its mirror A[1, 0, -1] reaches 2 steps
    with pytest.raises(ValueError, match="not the compressed form of a symmetric"):
        LatticeAction({3: far}, shape=(6,))
    with pytest.raises(ValueError, match="NaN"):
        LatticeAction({2: torch.tensor([float("nan"), 0.0, 0.0])}, shape=(6,))


def test_true_theory_compressed_equals_dense():
    for shape in [(1,), (2,), (5,), (3, 4), (2, 2)]:
        theory = LatticeTheory(shape, m2=0.7, kappa=0.4, g3=0.5, g4=1.2)
        compressed = theory.lattice_coefficients(4)
        dense = theory.coefficients(4)
        for k in range(1, 5):
            torch.testing.assert_close(compressed.coefficient(k), dense.coefficient(k),
                                       rtol=0, atol=1e-15)
        x = torch.randn(5, theory.dim, dtype=torch.float64)
        torch.testing.assert_close(compressed.action(x), theory.action(x))
        torch.testing.assert_close(compressed.grad(x), theory.grad(x))


def test_compare_on_lattice_actions_equals_compare_on_dense_expansions():
    theory = LatticeTheory((7,), m2=0.7, kappa=0.4, g3=0.5, g4=1.2)
    true = theory.lattice_coefficients(4)
    model = lattice_model((7,), 1, "cubic", True, radius=1)
    local = extract_action(model, 4)  # window 5
    full = extract_action(lattice_model((7,), 2, "quadratic", False), 4)  # window 7
    compressed = compare(true, {"local": local, "full": full})
    dense = compare(true.to_dense(), {"local": local.to_dense(), "full": full.to_dense()})
    mixed = compare(true.to_dense(), {"local": local, "full": full})
    for reference in (dense, mixed):
        for row, other in zip(compressed.rows, reference.rows, strict=True):
            for name in ("error", "diagonal_error", "leakage", "true_offdiagonal",
                         "true_norm", "true_diagonal_mean", "learned_diagonal_mean"):
                assert getattr(row, name) == pytest.approx(getattr(other, name), rel=1e-12,
                                                           abs=1e-14), name
            assert (row.relative, row.diagonal_relative) == (
                other.relative, other.diagonal_relative
            )
    self_compare = compare(local, local)
    assert all(row.error == 0 for row in self_compare.rows)
    assert "local" in compressed.table() and compressed.to_dict()["models"] == ["local", "full"]
    import matplotlib

    matplotlib.use("Agg")
    figure = compressed.plot()
    assert len(figure.axes) == 4
    with pytest.raises(ValueError, match="orders"):
        compare(true, local, orders=())
    with pytest.raises(ValueError, match="order 5 is missing"):
        compare(true, local, orders=(5,))


def test_odd_model_compressed_equals_dense_and_has_no_odd_couplings():
    model = lattice_model((3, 3), 2, "cubic", True, odd=True)
    compressed = extract_action(model, 4)
    assert_same(compressed, extract_action(model, 4, compressed=False), 4)
    for k in (1, 3):
        assert float(compressed.couplings(k).abs().max()) < 1e-14


def test_kernels_reaching_beyond_the_stated_range_are_refused():
    from inntheory.model.linear import LatticeConvolution

    model = lattice_model((12,), 2, "cubic", False, radius=1)  # coupling_range 4
    stages = model.stages()
    wide = torch.zeros(12, dtype=torch.float64)
    wide[0], wide[3] = 1.0, 0.2  # reaches 3 steps
    model.stages = lambda: [AffineStage(LatticeConvolution(wide), stages[0].bias), *stages[1:]]
    with pytest.raises(ValueError, match="coupling_range = 4 but its kernels reach"):
        extract_action(model, 4)


def test_compare_of_lattice_actions_is_scale_free() -> None:
    # Relative errors of couplings 1e200 apart in scale: as for dense actions (issue 12).
    theory = LatticeTheory((3,), m2=1.0, kappa=0.5, g3=0.5, g4=1.0)
    for scale in (1e200, 1e-200):
        true = theory.lattice_coefficients(4)
        learned = LatticeAction({k: 1.1 * true.couplings(k) * scale for k in range(1, 5)},
                                shape=true.shape, window=true.window)
        true = LatticeAction({k: true.couplings(k) * scale for k in range(1, 5)},
                             shape=true.shape, window=true.window)
        row = compare(true, {"x": learned}).row(4, "x")
        assert row.error == pytest.approx(0.1, rel=1e-9)
        assert row.diagonal_error == pytest.approx(0.1, rel=1e-9)
