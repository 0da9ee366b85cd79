"""Tests for inntheory.diagnostics: goodness of fit and the relative Fisher divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from inntheory.actions.dense import PolynomialAction
from inntheory.comparison import compare_cumulants
from inntheory.diagnostics import fisher_divergence, goodness_of_fit, site_cumulants
from inntheory.model.inn import PolynomialINN
from inntheory.theories import LatticeTheory

F64 = torch.float64


def linear_model(covariance: torch.Tensor) -> PolynomialINN:
    """A depth-1 INN whose density is exactly N(0, covariance): z = W x, W^T W = C^-1."""
    model = PolynomialINN(covariance.shape[0], depth=1, activation="quadratic",
                          standardize=False).double()
    cholesky = torch.linalg.cholesky(covariance)
    with torch.no_grad():
        model.weight[0] = torch.linalg.inv(cholesky)
        model.bias.zero_()
        model.activations[0].a.zero_()
    return model


def gaussian_data(covariance: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, covariance.shape[0], dtype=F64, generator=generator)
    return z @ torch.linalg.cholesky(covariance).T


def free_theory() -> tuple[LatticeTheory, torch.Tensor]:
    theory = LatticeTheory((8,), m2=1.0, kappa=0.5)
    return theory, torch.linalg.inv(theory.quadratic())


def test_a_model_with_the_data_density_passes():
    _, covariance = free_theory()
    data = gaussian_data(covariance, 5000, seed=1)
    result = goodness_of_fit(linear_model(covariance), data, lattice=(8,))
    assert result.ok, str(result)
    assert [s.name for s in result.statistics] == [
        "kappa_1", "kappa_2", "kappa_3", "kappa_4", "nn covariance"]
    nn = result.statistic("nn covariance")
    assert nn.data == pytest.approx(float(covariance[0, 1]), rel=0.1)
    assert abs(nn.model - nn.data) < 5 * nn.sigma
    assert result.beyond_fraction <= result.beyond_limit and result.invalid_fraction == 0.0
    assert "ok" in str(result).splitlines()[-1]
    assert result.to_dict()["ok"] is True


def test_a_model_with_nine_times_the_variance_is_flagged_by_name():
    _, covariance = free_theory()
    data = gaussian_data(covariance, 5000, seed=2)
    model = linear_model(covariance)
    with torch.no_grad():
        model.weight[0] /= 3.0  # x = 3 W^-1 z: every variance 9 times the data's
    result = goodness_of_fit(model, data, lattice=(8,))
    assert not result.ok
    kappa2 = result.statistic("kappa_2")
    assert not kappa2.ok and kappa2.model / kappa2.data == pytest.approx(9.0, rel=0.1)
    text = " ".join(result.warnings)
    assert "of its mass beyond" in text and "variance" in text
    assert f"{kappa2.model:.3g} vs {kappa2.data:.3g}" in text
    assert "kappa_2 of the model" in text and "FAILED" in str(result)


def test_one_wrong_site_is_flagged_even_when_the_pooled_cumulants_pass():
    covariance = torch.eye(32, dtype=F64)
    data = gaussian_data(covariance, 4000, seed=3)
    model = linear_model(covariance)
    with torch.no_grad():
        model.weight[0, 3, 3] = 1 / 1.25  # site 3: variance 1.56, the others 1
    result = goodness_of_fit(model, data)
    assert all(s.ok for s in result.statistics), str(result)
    assert not result.ok and result.sites[2][0] == 3 and result.sites[2][1] > 1
    assert any("kappa_2 at site 3" in w for w in result.warnings)


def test_site_cumulants_equal_compare_cumulants_column_by_column():
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(999, 3, dtype=F64, generator=generator).pow(3) + 0.5
    kappa, error = site_cumulants(x)
    for site in range(3):
        table = compare_cumulants(x[:, [site]], x[:, [site]], order=4)
        for k in range(1, 5):
            assert float(kappa[site, k - 1]) == pytest.approx(float(table.data[k]), rel=1e-10)
            assert float(error[site, k - 1]) == pytest.approx(
                float(table.data_error[k]), rel=1e-8)


class Draws:
    """A stand-in model: draws from a fixed Gaussian and reports lost latent mass."""

    def __init__(self, dim: int, invalid: float) -> None:
        self.dim = dim
        self.last_sample_invalid = invalid

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        return gaussian_data(torch.eye(self.dim, dtype=F64), n, seed=100 + int(seed or 0))


def test_lost_latent_mass_is_named_and_bad_input_rejected():
    data = gaussian_data(torch.eye(4, dtype=F64), 3000, seed=4)
    assert goodness_of_fit(Draws(4, 0.0), data).ok
    result = goodness_of_fit(Draws(4, 0.02), data, n_samples=2000, seed=1)
    assert result.n_model == 2000 and result.warnings == [
        "2.00% of the model's latent draws have no pre-image: its density misses that mass "
        "outside its domain"]
    with pytest.raises(ValueError, match="n_samples"):
        goodness_of_fit(Draws(4, 0.0), data, n_samples=1)
    with pytest.raises(ValueError, match="rtol"):
        goodness_of_fit(Draws(4, 0.0), data, rtol=-1.0)
    with pytest.raises(ValueError, match="does not fit"):
        goodness_of_fit(Draws(4, 0.0), data, lattice=(3,))
    with pytest.raises(ValueError, match="N = 5"):
        goodness_of_fit(Draws(5, 0.0), data)


def test_fisher_divergence_is_zero_for_the_same_action_and_blind_to_constants():
    theory = LatticeTheory((6,), m2=0.7, kappa=0.4, g3=0.5, g4=1.2)
    data = gaussian_data(torch.eye(6, dtype=F64), 2000, seed=5)
    dense = theory.coefficients(4)
    assert fisher_divergence(dense, theory, data) < 1e-25
    assert fisher_divergence(theory.lattice_coefficients(4), theory, data) < 1e-25
    shifted = PolynomialAction(dict(dense.items()), dense.point, constant=3.5)
    other = PolynomialAction({k: 1.1 * t for k, t in dense.items()}, dense.point)
    assert fisher_divergence(shifted, theory, data) == fisher_divergence(dense, theory, data)
    assert fisher_divergence(other, theory, data) == pytest.approx(0.01, rel=1e-9)


def test_fisher_divergence_of_a_gaussian_pair_matches_the_hand_computation():
    """S_t = x A x / 2, S_l = x B x / 2: the ratio is tr((B-A) C (B-A)) / tr(A C A), C the
    second-moment matrix of the data; for x ~ N(0, A^-1) it tends to
    tr((B-A) A^-1 (B-A)) / tr A."""
    theory, covariance = free_theory()
    a = theory.quadratic()
    b = a.clone()
    b[0, 0] += 0.3
    b[2, 3] = b[3, 2] = b[2, 3] - 0.2
    data = gaussian_data(covariance, 20_000, seed=6)
    learned = PolynomialAction({2: b}, torch.zeros(8, dtype=F64))
    value = fisher_divergence(learned, theory, data)
    moments = data.T @ data / len(data)
    exact = torch.trace((b - a) @ moments @ (b - a)) / torch.trace(a @ moments @ a)
    assert value == pytest.approx(float(exact), rel=1e-10)
    population = torch.trace((b - a) @ covariance @ (b - a)) / torch.trace(a)
    assert value == pytest.approx(float(population), rel=0.05) and value > 0
    # a model with the same density: zero up to rounding; a NaN gradient (outside a model's
    # domain) gives inf
    assert fisher_divergence(linear_model(covariance), theory, data) < 1e-20

    class Outside:
        def grad(self, x):
            g = x.clone()
            g[0, 0] = math.nan
            return g

    assert fisher_divergence(Outside(), theory, data) == math.inf
    with pytest.raises(ValueError, match="NaN"):
        fisher_divergence(learned, theory, np.full((3, 8), np.nan))
    with pytest.raises(TypeError, match="real numbers"):
        fisher_divergence(learned, theory, torch.ones(3, 8, dtype=torch.complex128))
    with pytest.raises(TypeError, match="real numbers"):
        goodness_of_fit(learned, torch.ones(3, 8, dtype=torch.bool))


def test_range_check_false_alarms_are_rare_for_a_model_equal_to_the_data():
    """A model equal to the data puts some samples beyond the data's range by chance (k of
    them with probability about 2^-k when n_model = n_data); the limit is exceeded with
    probability below 1e-4."""
    from inntheory.diagnostics import _chance_count

    assert _chance_count(400, 400) == 13  # (1/2)^14 < 1e-4 <= (1/2)^13, up to finite n
    assert _chance_count(10, 10**6) == 0
    generator = np.random.default_rng(0)
    n, trials, alarms = 400, 2000, 0
    for _ in range(trials):
        data, model = generator.standard_normal((2, n, 3))
        reach = np.abs(data - data.mean(0)).max()
        beyond = (np.abs(model - data.mean(0)) > reach).any(1).sum()
        alarms += beyond > _chance_count(n, n)
    assert alarms <= 2  # the old limit (3 samples) raised about 8 % of these
