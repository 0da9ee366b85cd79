"""Tests for score_matching(basis="translation"): every monomial tied over lattice translations."""

from __future__ import annotations

import itertools
import math
import time
import warnings

import numpy as np
import pytest
import torch

from inntheory import _orbits
from inntheory.actions.lattice import LatticeAction
from inntheory.baselines import _to_tensors, score_matching
from inntheory.theories import LatticeTheory

F64 = torch.float64


def brute_force_orbits(shape, order, radius):
    """{canonical index tuple: [monomials]} from all sorted index tuples of degree 1..order.

    A monomial (sorted tuple of flattened sites) fits when every pair of its sites is within
    `radius` steps on every axis (minimal image); its canonical form is the smallest sorted
    tuple among its N translates.
    """
    dim = math.prod(shape)
    sites = np.stack(np.unravel_index(np.arange(dim), shape), axis=1)
    lengths = np.array(shape)

    def fits(monomial):
        if radius is None:
            return True
        for i, j in itertools.combinations(monomial, 2):
            step = np.abs(sites[i] - sites[j]) % lengths
            if (np.minimum(step, lengths - step) > radius).any():
                return False
        return True

    found: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for k in range(1, order + 1):
        for monomial in itertools.combinations_with_replacement(range(dim), k):
            if not fits(monomial):
                continue
            key = min(
                tuple(sorted(int(np.ravel_multi_index(tuple((sites[i] + t) % lengths), shape))
                             for i in monomial))
                for t in sites
            )
            found.setdefault(key, []).append(monomial)
    return found


def as_index_sets(found, shape):
    """The orbits of `_orbits.orbits` as sets of flattened sorted index tuples (all translates)."""
    dim = math.prod(shape)
    sites = np.stack(np.unravel_index(np.arange(dim), shape), axis=1)
    result = set()
    for orbit in found:
        translates = frozenset(
            tuple(sorted(int(np.ravel_multi_index(tuple((np.array(o) + t) % shape), shape))
                         for o in orbit[0]))
            for t in sites
        )
        result.add(translates)
    return result


@pytest.mark.parametrize(("shape", "order", "radius"), [
    ((3, 3), 4, None), ((4, 4), 3, 1), ((5,), 4, 1), ((2, 3), 3, None), ((7,), 3, 2),
    ((5, 4), 3, 1), ((4,), 4, 0),
])
def test_orbits_equal_a_brute_force_enumeration(shape, order, radius):
    found = _orbits.orbits(shape, order, radius)
    reference = brute_force_orbits(shape, order, radius)
    assert len(found) == len(reference)
    expected = {frozenset(monomials) for monomials in reference.values()}
    assert as_index_sets(found, shape) == expected
    assert _orbits.orbit_count_bound(shape, order, radius) <= len(found)
    if (shape, order, radius) == ((3, 3), 4, None):
        assert len(found) == 82


def test_orbits_of_a_large_lattice_are_enumerated_in_the_window_only():
    start = time.perf_counter()
    found = _orbits.orbits((16, 16), 4, 1)
    assert time.perf_counter() - start < 1.0
    assert len(found) == len(brute_force_orbits((5, 5), 4, 1))  # the same orbits fit there


def monomial_features(shape, order, radius, point):
    """T_a(x) for every orbit a of the brute-force enumeration, and the monomials."""
    reference = brute_force_orbits(shape, order, radius)
    keys = sorted(reference, key=lambda key: (len(key), key))
    monomials = [m for key in keys for m in reference[key]]
    orbit_of = torch.tensor([a for a, key in enumerate(keys) for _ in reference[key]])

    def features(v):
        values = torch.stack([(v - point)[list(m)].prod() for m in monomials])
        return torch.zeros(len(keys), dtype=v.dtype).index_add(0, orbit_of, values)

    return features, monomials, orbit_of


@pytest.mark.filterwarnings("ignore:score matching on:RuntimeWarning")
@pytest.mark.parametrize(("shape", "order", "radius"), [((2, 3), 3, None), ((5,), 4, 1)])
def test_translation_basis_equals_brute_force_normal_equations(shape, order, radius):
    """G, h from autodiff of the brute-force orbit sums give the same dense tensors."""
    generator = torch.Generator().manual_seed(11)
    dim = math.prod(shape)
    x = 0.7 * torch.randn(400, dim, dtype=F64, generator=generator) + 0.1
    features, monomials, orbit_of = monomial_features(shape, order, radius, 0.05)
    grads = torch.vmap(torch.func.jacrev(features))(x)
    laplacians = torch.vmap(torch.func.hessian(features))(x).diagonal(dim1=-2, dim2=-1).sum(-1)
    gram = torch.einsum("nai,nbi->ab", grads, grads) / len(x)
    theta = torch.linalg.solve(gram, laplacians.mean(0))
    expected = _to_tensors(monomials, theta[orbit_of], dim, order)
    fit = score_matching(x, order=order, basis="translation", lattice=shape, radius=radius,
                         point=torch.full((dim,), 0.05, dtype=F64))
    assert isinstance(fit, LatticeAction) and fit.metadata["n_monomials"] == len(theta)
    dense = fit.to_dense()
    for k in range(1, order + 1):
        torch.testing.assert_close(dense.coefficient(k), expected[k], rtol=1e-9, atol=1e-10)
    # the couplings are the compressed form of symmetric tensors
    LatticeAction(dict(fit.items()), shape, 0.05, window=fit.window, check_symmetry=True)


def sample_theory(theory: LatticeTheory, n: int, seed: int) -> torch.Tensor:
    """Exact samples of a lattice theory (m2 > 0, g4 > 0) by rejection from a Gaussian.

    S - S_q = sum_i f(x_i), f(x) = (m2 - mq)/2 x^2 + g3/6 x^3 + g4/24 x^4 bounded below, so
    accepting with probability exp(-(sum_i f(x_i) - N min f)) draws exactly from exp(-S).
    """
    mq = 0.8 * theory.m2
    a2 = theory.quadratic().numpy() - (theory.m2 - mq) * np.eye(theory.dim)
    chol = np.linalg.cholesky(np.linalg.inv(a2))

    def f(x):
        return (theory.m2 - mq) / 2 * x**2 + theory.g3 / 6 * x**3 + theory.g4 / 24 * x**4

    stationary = np.roots([theory.g4 / 6, theory.g3 / 2, theory.m2 - mq, 0.0])
    f_min = min(f(r.real) for r in stationary if abs(r.imag) < 1e-12)
    rng = np.random.default_rng(seed)
    kept, total = [], 0
    while total < n:
        x = rng.standard_normal((4 * n, theory.dim)) @ chol.T
        accept = rng.random(len(x)) < np.exp(-(f(x).sum(1) - theory.dim * f_min))
        kept.append(x[accept])
        total += int(accept.sum())
    return torch.from_numpy(np.concatenate(kept)[:n])


def test_translation_basis_recovers_a_phi4_torus_within_sampling_error():
    """3x3 torus, 82 orbits: every coupling, present in the truth or not, within 5 SE."""
    theory = LatticeTheory((3, 3), m2=0.5, kappa=0.3, g3=0.8, g4=1.5)
    data = sample_theory(theory, 40_000, seed=12)
    fit = score_matching(data, order=4, basis="translation", lattice=(3, 3))
    assert fit.metadata["n_monomials"] == 82 and fit.window == (3, 3)
    parts = [score_matching(part, order=4, basis="translation", lattice=(3, 3))
             for part in torch.tensor_split(data, 20)]
    truth = theory.lattice_coefficients(4)
    z_all = []
    for k in range(1, 5):
        error = torch.stack([p.couplings(k) for p in parts]).std(0) / math.sqrt(len(parts))
        z = ((fit.couplings(k) - truth.couplings(k)) / error).flatten()
        z_all.append(z)
        assert float(z.abs().max()) < 5.0, (k, float(z.abs().max()))
    z = torch.cat(z_all)
    assert float(z.pow(2).mean().sqrt()) < 1.5  # about 1 when the truth sits in the error
    # informative: on-site g4 and the hopping resolved to better than 20 % and 5 %
    assert fit.onsite(4) == pytest.approx(1.5, rel=0.2)
    assert float(fit.couplings(2)[0, 1]) == pytest.approx(-0.3, rel=0.05)


def test_translation_basis_scales_to_a_16x16_lattice_with_a_radius():
    generator = torch.Generator().manual_seed(13)
    data = torch.randn(600, 256, dtype=F64, generator=generator)
    start = time.perf_counter()
    fit = score_matching(data, order=4, basis="translation", lattice=(16, 16), radius=1)
    assert time.perf_counter() - start < 5.0
    assert fit.metadata["n_monomials"] == 45 and fit.window == (3, 3)
    assert fit.onsite(2) == pytest.approx(1.0, abs=0.05)
    start = time.perf_counter()
    with pytest.raises(MemoryError, match="coefficients and needs about"):
        score_matching(data, order=4, basis="translation", lattice=(16, 16))
    assert time.perf_counter() - start < 1.0  # refused before enumerating 7e5 orbits


def test_translation_basis_guards_and_warns():
    generator = torch.Generator().manual_seed(14)
    data = torch.randn(300, 9, dtype=F64, generator=generator)
    with pytest.raises(MemoryError, match="82 coefficients"):
        score_matching(data, order=4, basis="translation", lattice=(3, 3), max_bytes=2**20)
    with pytest.warns(RuntimeWarning, match="300 rows for 82 coefficients"):
        score_matching(data, order=4, basis="translation", lattice=(3, 3))
    with pytest.raises(ValueError, match="too few samples"):
        score_matching(data[:50], order=4, basis="translation", lattice=(3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score_matching(data, order=2, basis="translation", lattice=(3, 3))
    flat = data[:, :1] + 1e-6 * data  # nearly uniform fields: the orbit gradients align
    with pytest.warns(RuntimeWarning, match="ill-conditioned"):
        score_matching(flat, order=2, basis="translation", lattice=(3, 3))


def test_translation_basis_rejects_bad_input():
    data = torch.randn(400, 9, dtype=F64, generator=torch.Generator().manual_seed(15))
    with pytest.raises(ValueError, match="needs lattice"):
        score_matching(data, basis="translation")
    with pytest.raises(ValueError, match="does not fit"):
        score_matching(data, basis="translation", lattice=(4, 4))
    for radius in (-1, 1.5, True):
        with pytest.raises(ValueError, match="radius"):
            score_matching(data, basis="translation", lattice=(3, 3), radius=radius)
    with pytest.raises(ValueError, match="uniform point"):
        score_matching(data, basis="translation", lattice=(3, 3), point=torch.arange(9.0))


def test_tied_basis_keeps_radius_one_by_default():
    data = torch.randn(2000, 16, dtype=F64, generator=torch.Generator().manual_seed(16))
    default = score_matching(data, basis="tied", lattice=(4, 4))
    explicit = score_matching(data, basis="tied", lattice=(4, 4), radius=1)
    assert default.metadata["n_monomials"] == explicit.metadata["n_monomials"] == 8
    torch.testing.assert_close(default.couplings(2), explicit.couplings(2), rtol=0, atol=0)
