"""Tests for inntheory.baselines: score matching recovers known actions within their errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from inntheory.actions.dense import PolynomialAction
from inntheory.actions.lattice import LatticeAction
from inntheory.baselines import _basis, _tied_offsets, _to_tensors, basis_size, score_matching
from inntheory.comparison import compare
from inntheory.sampling import sample
from inntheory.theories import LatticeTheory

F64 = torch.float64


def lattice_coefficients(n_sites: int, m2: float, kappa: float, g3: float, g4: float):
    """Exact A^(2), diag A^(3), diag A^(4) of the periodic 1-D phi^3 + phi^4 chain (METHOD.md)."""
    shift = np.roll(np.eye(n_sites), 1, axis=1)
    a2 = (m2 + 2 * kappa) * np.eye(n_sites) - kappa * (shift + shift.T)
    return a2, np.full(n_sites, g3), np.full(n_sites, g4)


def sample_lattice(n: int, n_sites: int, m2, kappa, g3, g4, seed: int) -> np.ndarray:
    """Exact samples of the chain by rejection from a Gaussian with the same coupling.

    S(x) - S_q(x) = sum_i f(x_i) with f(x) = (m2 - mq)/2 x^2 + g3/6 x^3 + g4/24 x^4, bounded
    below, so accepting with probability exp(-(sum_i f(x_i) - N min f)) draws exactly from
    exp(-S).
    """
    mq = 0.8 * m2  # a slightly wider proposal accepts about half the draws here (needs m2 > 0)
    a2, _, _ = lattice_coefficients(n_sites, mq, kappa, 0.0, 0.0)
    chol = np.linalg.cholesky(np.linalg.inv(a2))

    def f(x):
        return (m2 - mq) / 2 * x**2 + g3 / 6 * x**3 + g4 / 24 * x**4

    stationary = np.roots([g4 / 6, g3 / 2, m2 - mq, 0.0])
    f_min = min(f(r.real) for r in stationary if abs(r.imag) < 1e-12)
    rng = np.random.default_rng(seed)
    kept, total = [], 0
    while total < n:
        x = rng.standard_normal((3 * n, n_sites)) @ chol.T
        accept = rng.random(len(x)) < np.exp(-(f(x).sum(1) - n_sites * f_min))
        kept.append(x[accept])
        total += int(accept.sum())
    return np.concatenate(kept)[:n]


def split_error(data: np.ndarray, n_splits: int, **kwargs) -> list[torch.Tensor]:
    """Standard errors of A^(1..order) of the full-sample estimate from disjoint splits."""
    fits = [score_matching(part, **kwargs) for part in np.array_split(data, n_splits)]
    order = kwargs.get("order", 4)
    return [
        torch.stack([fit.coefficient(k) for fit in fits]).std(0) / math.sqrt(n_splits)
        for k in range(1, order + 1)
    ]


def max_z(estimate: torch.Tensor, exact: torch.Tensor, error: torch.Tensor) -> float:
    """Largest |estimate - exact| / error; entries outside the basis (error 0) must be exact."""
    diff = (estimate - exact).abs()
    outside = error == 0
    assert float(diff[outside].sum()) == 0.0
    return float((diff[~outside] / error[~outside]).max())


def test_monomial_coefficients_map_to_the_method_convention():
    generator = torch.Generator().manual_seed(0)
    dim, order = 3, 4
    monomials = _basis(dim, order, "dense")
    theta = torch.randn(len(monomials), dtype=F64, generator=generator)
    action = PolynomialAction(_to_tensors(monomials, theta, dim, order))
    x = torch.randn(50, dim, dtype=F64, generator=generator)
    direct = sum(t * x[:, list(m)].prod(1) for t, m in zip(theta, monomials, strict=True))
    torch.testing.assert_close(action(x), direct, rtol=1e-12, atol=1e-12)


def test_basis_sizes():
    assert len(_basis(8, 4, "dense")) == math.comb(12, 4) - 1 == 494
    assert len(_basis(8, 4, "local")) == 8 * 4 + 8 * 7 // 2


@pytest.mark.parametrize(("basis", "radius"), [("tied", 1), ("translation", None),
                                               ("translation", 1)])
def test_basis_size_counts_what_the_lattice_fits_fit(basis, radius):
    x = torch.randn(400, 9, dtype=F64, generator=torch.Generator().manual_seed(0))
    fit = score_matching(x, 4, basis, lattice=(3, 3), radius=radius)
    assert basis_size(9, 4, basis, (3, 3), radius) == fit.metadata["n_monomials"]
    if basis == "translation" and radius is None:  # the orbits of degree <= 4 on a 3x3 torus
        assert fit.metadata["n_monomials"] == 82


@pytest.mark.filterwarnings("ignore:score matching on 150 rows:RuntimeWarning")
@pytest.mark.parametrize("basis", ["dense", "local"])
def test_solution_equals_brute_force_normal_equations(basis):
    """The moment-based G and h equal E[grad T grad T^T] and E[laplacian T] from autodiff."""
    generator = torch.Generator().manual_seed(1)
    dim, order = 3, 3
    x = torch.randn(150, dim, dtype=F64, generator=generator) * 0.7 + 0.2
    point = torch.tensor([0.1, -0.2, 0.3], dtype=F64)
    monomials = _basis(dim, order, basis)

    def features(v):
        d = v - point
        return torch.stack([d[list(m)].prod() for m in monomials])

    grads = torch.vmap(torch.func.jacrev(features))(x)  # (n, M, N)
    laplacians = torch.vmap(torch.func.hessian(features))(x).diagonal(dim1=-2, dim2=-1).sum(-1)
    gram = torch.einsum("nai,nbi->ab", grads, grads) / len(x)
    theta = torch.linalg.solve(gram, laplacians.mean(0))
    expected = _to_tensors(monomials, theta, dim, order)
    fit = score_matching(x, order=order, basis=basis, point=point)
    for k in range(1, order + 1):
        torch.testing.assert_close(fit.coefficient(k), expected[k], rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(fit.point, point)


@pytest.mark.parametrize("basis", ["dense", "local"])
def test_gaussian_precision_is_recovered(basis):
    rng = np.random.default_rng(2)
    dim, n = 3, 40_000
    factor = rng.standard_normal((dim, dim))
    cov = factor @ factor.T + dim * np.eye(dim)
    mean = np.array([0.5, -0.3, 0.2])
    data = rng.multivariate_normal(mean, cov, size=n)
    precision = torch.from_numpy(np.linalg.inv(cov))
    fit = score_matching(data, order=4, basis=basis)
    errors = split_error(data, 10, order=4, basis=basis)
    expected = {1: -precision @ torch.from_numpy(mean), 2: precision}
    for k in range(1, 5):
        target = expected.get(k, torch.zeros((dim,) * k, dtype=F64))
        z = max_z(fit.coefficient(k), target, errors[k - 1])
        assert z < 5.0, (k, z)
    assert fit.metadata["basis"] == basis and fit.metadata["n_samples"] == n


@pytest.mark.parametrize("basis", ["dense", "local"])
def test_lattice_phi4_coefficients_within_standard_errors(basis):
    n_sites, couplings = 4, {"m2": 0.5, "kappa": 0.4, "g3": 0.8, "g4": 1.5}
    data = sample_lattice(60_000, n_sites, seed=3, **couplings)
    a2, a3, a4 = lattice_coefficients(n_sites, **couplings)
    fit = score_matching(data, order=4, basis=basis)
    errors = split_error(data, 10, order=4, basis=basis)
    index = torch.arange(n_sites)
    checks = [
        (fit.coefficient(1), torch.zeros(n_sites, dtype=F64), errors[0]),
        (fit.coefficient(2), torch.from_numpy(a2), errors[1]),
        (fit.diagonal(3), torch.from_numpy(a3), errors[2][(index,) * 3]),
        (fit.diagonal(4), torch.from_numpy(a4), errors[3][(index,) * 4]),
    ]
    for k, (estimate, exact, error) in enumerate(checks, start=1):
        z = max_z(estimate, exact, error)
        assert z < 5.0, (k, z)
    # the estimate is informative: quartic diagonal resolved to better than 20 %
    assert float(errors[3][(index,) * 4].max()) < 0.2 * couplings["g4"]
    if basis == "local":
        off = fit.coefficient(4).clone()
        off[(index,) * 4] = 0
        assert float(off.abs().max()) == 0.0


def test_bad_input_is_rejected_with_clear_messages():
    data = torch.randn(200, 3, dtype=F64, generator=torch.Generator().manual_seed(4))
    with pytest.raises(ValueError, match="order"):
        score_matching(data, order=0)
    with pytest.raises(ValueError, match="basis"):
        score_matching(data, basis="sparse")
    with pytest.raises(ValueError, match="shape"):
        score_matching(data[:, 0])
    bad = data.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        score_matching(bad)
    with pytest.raises(ValueError, match="too few samples"):
        score_matching(data[:20], order=4)  # 34 monomials
    with pytest.raises(ValueError, match="n >= 2"):
        score_matching(data[:1, :1], order=1)  # one monomial, but one sample tells nothing
    with pytest.raises(ValueError, match="point"):
        score_matching(data, point=torch.zeros(2))
    with pytest.raises(ValueError, match="ridge"):
        score_matching(data, ridge=-1.0)
    with pytest.raises(TypeError, match="tensor or numpy"):
        score_matching([[0.0, 1.0]] * 10, order=1)


def test_singular_gram_says_so_and_ridge_fixes_it():
    data = torch.randn(500, 3, dtype=F64, generator=torch.Generator().manual_seed(5))
    data[:, 2] = data[:, 0]  # the data lie on a plane: (d_0 - d_2)^2 has zero gradient there
    with pytest.raises(ValueError, match="singular.*ridge"):
        score_matching(data, order=2)
    fit = score_matching(data, order=2, ridge=1e-3)
    assert torch.isfinite(fit.coefficient(2)).all()


@pytest.mark.parametrize(("shape", "radius"), [((5,), 2), ((3, 4), 1), ((2,), 1)])
def test_tied_basis_equals_brute_force_normal_equations(shape, radius):
    """G and h of the tied basis equal E[grad T grad T^T] and E[laplacian T] from autodiff."""
    generator = torch.Generator().manual_seed(6)
    dim = math.prod(shape)
    x = 0.8 * torch.randn(300, dim, dtype=F64, generator=generator) + 0.1
    offsets = _tied_offsets(shape, radius)
    order = 4

    def features(v):
        d = (v - 0.05).reshape(shape)
        onsite = [d.pow(k).sum() for k in range(1, order + 1)]
        pairs = [(d * torch.roll(d, tuple(-o for o in offset), tuple(range(len(shape))))).sum()
                 for offset in offsets]
        return torch.stack(onsite + pairs)

    grads = torch.vmap(torch.func.jacrev(features))(x)
    laplacians = torch.vmap(torch.func.hessian(features))(x).diagonal(dim1=-2, dim2=-1).sum(-1)
    gram = torch.einsum("nai,nbi->ab", grads, grads) / len(x)
    theta = torch.linalg.solve(gram, laplacians.mean(0))
    fit = score_matching(x, order=order, basis="tied", lattice=shape, radius=radius,
                         point=torch.full((dim,), 0.05, dtype=F64))
    assert isinstance(fit, LatticeAction) and fit.metadata["n_monomials"] == len(theta)
    expected = torch.vmap(features)(x) @ theta
    torch.testing.assert_close(fit.action(x) - fit.action(x[:1]),
                               expected - expected[0], rtol=1e-9, atol=1e-9)
    assert fit.onsite(4) == pytest.approx(24 * float(theta[3]), rel=1e-9)


def test_tied_basis_counts_and_recovers_a_lattice_theory():
    assert len(_tied_offsets((16, 16), 1)) == 4  # (0,1), (1,-1), (1,0), (1,1) up to sign
    assert len(_tied_offsets((3, 3), 1)) == 4 and len(_tied_offsets((2,), 1)) == 1
    theory = LatticeTheory((4, 4), m2=1.0, kappa=0.5, g3=0.5, g4=1.0)
    data = sample(theory, 20_000, seed=0, progress=False).x
    fit = score_matching(data, order=4, basis="tied", lattice=(4, 4))
    table = compare(theory.lattice_coefficients(4), fit)
    assert table.row(2).error < 0.02 and table.row(3).diagonal_error < 0.1
    assert table.row(4).diagonal_error < 0.1, table.table()
    local = compare(theory.lattice_coefficients(4), score_matching(data, 4, basis="local"))
    assert local.row(4).diagonal_error > table.row(4).diagonal_error  # tying helps
    with pytest.raises(ValueError, match="needs lattice"):
        score_matching(data, basis="tied")
    with pytest.raises(ValueError, match="does not fit"):
        score_matching(data, basis="tied", lattice=(3, 3))
    with pytest.raises(ValueError, match="radius"):
        score_matching(data, basis="tied", lattice=(4, 4), radius=0)
    with pytest.raises(ValueError, match="only used"):
        score_matching(data, basis="local", lattice=(4, 4))


def test_tied_basis_fits_a_16x16_lattice_in_little_memory():
    import tracemalloc

    generator = torch.Generator().manual_seed(7)
    data = torch.randn(2000, 256, dtype=F64, generator=generator)
    tracemalloc.start()
    fit = score_matching(data, order=4, basis="tied", lattice=(16, 16))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert fit.window == (3, 3) and fit.onsite(2) == pytest.approx(1.0, abs=0.05)
    assert peak < 2**28


def test_memory_guard_refuses_with_the_estimate_before_allocating():
    data = torch.randn(10, 256, dtype=F64)
    with pytest.raises(MemoryError, match=r"33664 coefficients and needs about .* GiB"):
        score_matching(data, order=4, basis="local", max_bytes=2**31)
    with pytest.raises(MemoryError, match=r"basis='dense'.*GiB"):
        score_matching(data, order=4, max_bytes=2**31)
    with pytest.raises(MemoryError, match="GiB"):
        score_matching(torch.randn(100, 4, dtype=F64), order=2, max_bytes=10)


def test_too_few_rows_warn_with_the_numbers():
    generator = torch.Generator().manual_seed(8)
    with pytest.warns(RuntimeWarning, match="14 rows for 14 coefficients"):
        score_matching(torch.randn(14, 2, dtype=F64, generator=generator), order=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score_matching(torch.randn(2000, 2, dtype=F64, generator=generator), order=4)


def test_ill_conditioned_gram_warns():
    generator = torch.Generator().manual_seed(9)
    data = torch.randn(5000, 2, dtype=F64, generator=generator)
    data[:, 1] = data[:, 0] + 1e-7 * data[:, 1]  # nearly on a line
    with pytest.warns(RuntimeWarning, match="ill-conditioned.*condition number"):
        score_matching(data, order=2)
