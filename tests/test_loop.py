"""Tests of inntheory.loop: normalisability of truncated actions and closing the loop."""

from __future__ import annotations

import itertools

import pytest
import torch

from inntheory.actions.dense import PolynomialAction
from inntheory.loop import close_loop, normalisable
from inntheory.sampling import sample
from inntheory.theories import LatticeTheory, preset

pytestmark = pytest.mark.usefixtures("one_thread")


def quartic_2d(c: float) -> torch.Tensor:
    """The symmetric A4 of F(u) = u1^4 + u2^4 - 6 c u1^2 u2^2 = 1 - (2 + 6c) u1^2 u2^2 on the
    unit circle: minimum min(1, 1/2 - 3c/2), on the axes or at |u1| = |u2|."""
    tensor = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    tensor[0, 0, 0, 0] = tensor[1, 1, 1, 1] = 1.0
    for index in set(itertools.permutations((0, 0, 1, 1))):
        tensor[index] = -c
    return tensor


def test_true_lattice_theory_is_normalisable_with_the_exact_minimum():
    theory = LatticeTheory((6,), m2=-1.0, kappa=0.3, g3=0.4, g4=1.5)
    ok, minimum = normalisable(theory.coefficients(4))
    # F(u) = g4 sum_i u_i^4 >= g4 / N on the unit sphere, with equality at |u_i| = 1/sqrt(N).
    assert ok
    assert minimum == pytest.approx(theory.g4 / theory.dim, rel=1e-8)


@pytest.mark.parametrize("c", [-0.2, 0.2, 0.5])
def test_off_diagonal_quartic_minimum_is_found_away_from_the_axes(c):
    ok, minimum = normalisable(PolynomialAction({4: quartic_2d(c)}))
    exact = min(1.0, 0.5 - 1.5 * c)
    assert minimum == pytest.approx(exact, abs=1e-9)
    assert ok == (exact > 0)


def test_quadratic_top_order_uses_the_smallest_eigenvalue():
    generator = torch.Generator().manual_seed(3)
    root = torch.randn(5, 5, generator=generator, dtype=torch.float64)
    matrix = root @ root.T - 0.5 * torch.eye(5, dtype=torch.float64)
    smallest = float(torch.linalg.eigvalsh(matrix)[0])
    ok, minimum = normalisable(PolynomialAction({2: matrix}))
    assert minimum == pytest.approx(smallest, rel=1e-12)
    assert ok == (smallest > 0)


def test_vanishing_top_tensor_is_skipped():
    action = PolynomialAction({2: torch.eye(3), 4: torch.zeros(3, 3, 3, 3)})
    assert normalisable(action) == (True, pytest.approx(1.0))
    assert normalisable(PolynomialAction({2: torch.zeros(3, 3)})) == (False, 0.0)


def test_odd_top_order_is_rejected():
    action = preset("unimodal", shape=(4,)).coefficients(4).truncate(3)
    ok, minimum = normalisable(action)
    assert not ok
    # F(u) = g3 sum u_i^3 has minimum -g3 at u = -e_i.
    assert minimum == pytest.approx(-0.5, rel=1e-8)
    data = torch.randn(100, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="not normalisable: its highest order 3 is odd"):
        close_loop(action, data)


def test_negative_quartic_diagonal_is_rejected_with_the_minimum():
    true = preset("unimodal", shape=(4,)).coefficients(4)
    negative = PolynomialAction({2: true.coefficient(2), 4: -true.coefficient(4)})
    ok, minimum = normalisable(negative)
    assert not ok
    assert minimum == pytest.approx(-1.0, rel=1e-8)  # -g4 on an axis
    with pytest.raises(ValueError, match=r"not normalisable.*minimum -1 <= 0"):
        close_loop(negative, torch.randn(100, 4, dtype=torch.float64))


def test_bad_input():
    action = preset("gaussian", shape=(4,)).coefficients(2)
    with pytest.raises(TypeError, match="PolynomialAction"):
        normalisable(torch.eye(4))
    with pytest.raises(ValueError, match="directions"):
        normalisable(action, directions=0)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        close_loop(action, torch.randn(10, 3))
    with pytest.raises(ValueError, match="n_samples"):
        close_loop(action, torch.randn(10, 4), n_samples=0)


def test_true_coefficients_close_the_loop_and_wrong_ones_do_not():
    theory = preset("unimodal", shape=(4,))
    data = sample(theory, 4000, seed=1, progress=False).x
    options = {"burn_in": 200}
    closed = close_loop(theory.coefficients(4), data, seed=2, sample_options=options)
    # 4, 10 and 20 distinct entries: a max |z| above 4 has probability < 2e-3 per order.
    for k in (1, 2, 3):
        assert closed.within(k, n_sigma=4.0), closed.table()
    # A mass term 30 % too large shrinks the covariance far beyond its standard error.
    wrong = PolynomialAction({2: 1.3 * theory.quadratic(), 3: theory.coefficients(4)
                              .coefficient(3), 4: theory.coefficients(4).coefficient(4)})
    assert not close_loop(wrong, data, seed=2, sample_options=options).within(2, n_sigma=4.0)


def test_lattice_actions_are_checked_and_sampled_in_compressed_form():
    theory = LatticeTheory((6,), m2=-1.0, kappa=0.3, g3=0.4, g4=1.5)
    compressed = theory.lattice_coefficients(4)
    ok, minimum = normalisable(compressed)
    dense_ok, dense_minimum = normalisable(theory.coefficients(4))
    assert ok and dense_ok
    assert minimum == pytest.approx(dense_minimum, rel=1e-6)
    assert minimum == pytest.approx(1.5 / 6, rel=1e-6)  # g4 * sum u^4 on the sphere: g4 / N
    quadratic = LatticeTheory((5, 4), m2=0.3, kappa=0.5).lattice_coefficients(2)
    ok, minimum = normalisable(quadratic)
    assert ok and minimum == pytest.approx(0.3, rel=1e-12)  # the constant mode
    assert not normalisable(compressed.truncate(3))[0]
    data = sample(preset("unimodal", shape=(4,)), 4000, seed=1, progress=False).x
    closed = close_loop(preset("unimodal", shape=(4,)).lattice_coefficients(4), data, seed=2,
                        sample_options={"burn_in": 200})
    for k in (1, 2, 3):
        assert closed.within(k, n_sigma=4.0), closed.table()
