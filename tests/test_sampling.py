"""Tests of inntheory.sampling against exact results (Gaussian covariance, 1-D quadrature)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import inntheory.sampling as sampling
from inntheory.actions.dense import PolynomialAction
from inntheory.sampling import (
    SampleResult,
    _choose_thinning,
    integrated_autocorrelation_time,
    sample,
    split_rhat,
)
from inntheory.theories import PRESETS, LatticeTheory, preset

FAST = {"progress": False, "burn_in": 200, "n_chains": 64}


def covariance_within_errors(x: torch.Tensor, exact: torch.Tensor, ess: float) -> None:
    """Every sample covariance entry within 5 standard errors (effective sample size ess)."""
    sample_cov = torch.cov(x.T)
    variance = exact.diagonal()
    stderr = ((variance[:, None] * variance[None, :] + exact.square()) / ess).sqrt()
    z = ((sample_cov - exact) / stderr).abs()
    assert z.max() < 5, f"largest covariance deviation {z.max():.1f} standard errors"


@pytest.mark.parametrize(("shape", "method"), [((5,), "hmc"), ((2, 3), "hmc"), ((5,), "mala")])
def test_gaussian_covariance_is_inverse_of_a2(shape: tuple[int, ...], method: str) -> None:
    theory = LatticeTheory(shape, m2=0.8, kappa=0.6)
    result = sample(theory, 6000, method=method, seed=3, **FAST)
    assert result.x.shape == (6000, theory.dim) and result.x.dtype == torch.float64
    exact = torch.linalg.inv(theory.quadratic())
    covariance_within_errors(result.x, exact, result.diagnostics["ess"])
    mean_stderr = (exact.diagonal() / result.diagnostics["ess"]).sqrt()
    assert (result.x.mean(0).abs() / mean_stderr).max() < 5


def test_any_target_polynomial_action() -> None:
    theory = LatticeTheory((3,), m2=1.5, kappa=0.3)
    target = theory.coefficients(order=2)
    assert isinstance(target, PolynomialAction)
    result = sample(target, 4000, seed=1, **FAST)
    covariance_within_errors(result.x, torch.linalg.inv(theory.quadratic()),
                             result.diagnostics["ess"])


def test_single_site_moments_and_ks_against_quadrature() -> None:
    theory = LatticeTheory((1,), m2=0.5, kappa=0.7, g3=1.5, g4=2.0)
    result = sample(theory, 8000, seed=5, **FAST)
    x = result.x[:, 0].numpy()
    ess = result.diagnostics["ess"]

    def s(y: np.ndarray) -> np.ndarray:
        return 0.5 / 2 * y**2 + 1.5 / 6 * y**3 + 2.0 / 24 * y**4

    norm = integrate.quad(lambda y: math.exp(-s(y)), -np.inf, np.inf)[0]
    for k in (1, 2, 3, 4):
        exact = integrate.quad(lambda y, k=k: y**k * math.exp(-s(y)), -np.inf, np.inf)[0] / norm
        stderr = np.std(x**k) / math.sqrt(ess)
        assert abs(np.mean(x**k) - exact) < 5 * stderr, f"moment {k}"

    grid = np.linspace(-12, 12, 24001)
    density = np.exp(-s(grid))
    cdf_values = integrate.cumulative_trapezoid(density, grid, initial=0)
    cdf_values /= cdf_values[-1]
    # One draw per autocorrelation time keeps the draws close to independent for KS.
    step = max(1, math.ceil(result.diagnostics["tau"]))
    test = stats.kstest(x[::step], lambda y: np.interp(y, grid, cdf_values))
    assert test.pvalue > 1e-3


def test_seeded_runs_are_reproducible() -> None:
    theory = preset("unimodal", (2, 2))
    quick = {**FAST, "burn_in": 40, "thinning": 2}
    a = sample(theory, 300, seed=11, **quick)
    b = sample(theory, 300, seed=11, **quick)
    c = sample(theory, 300, seed=12, **quick)
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
    assert not torch.equal(a.x, c.x)
    assert a.diagnostics["step_size"] == b.diagnostics["step_size"]


def test_double_well_with_flip_visits_both_modes() -> None:
    theory = preset("double_well")
    result = sample(theory, 2000, seed=2, **FAST)
    assert result.diagnostics["flip"] is True
    magnetisation = result.x.mean(dim=1)
    # Two separated modes: few configurations near zero magnetisation.
    assert (magnetisation.abs() < 0.5).float().mean() < 0.05
    positive = (magnetisation > 0).double().mean().item()
    ess = result.diagnostics["observables"]["mean"]["ess"]
    assert abs(positive - 0.5) < 5 * math.sqrt(0.25 / ess)
    # The site marginal is bimodal: a dip at zero between two peaks.
    counts, edges = np.histogram(result.x.numpy().ravel(), bins=np.linspace(-4, 4, 17))
    centre = counts[7:9].sum() / 2
    assert counts[:8].max() > 3 * centre and counts[8:].max() > 3 * centre


def test_flip_is_exact_for_an_asymmetric_target() -> None:
    theory = LatticeTheory((1,), m2=1.0, kappa=0.0, g3=2.0, g4=3.0)
    plain = sample(theory, 3000, seed=1, flip=False, **FAST)
    flipped = sample(theory, 3000, seed=1, flip=True, **FAST)
    assert flipped.diagnostics["flip_acceptance"] < 1
    for result in (plain, flipped):
        ess = result.diagnostics["ess"]
        stderr = math.sqrt(float(result.x.var()) / ess)
        assert abs(float(result.x.mean()) - float(plain.x.mean())) < 5 * math.sqrt(2) * stderr


class HalfLine:
    """Exponential distribution on x > 0 per coordinate: the action is inf (or NaN) outside."""

    dim = 2

    def __init__(self, outside: float) -> None:
        self.outside = outside

    def action(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(x).all():
            raise AssertionError("the sampler passed a non-finite point to the target")
        inside = (x > 0).all(dim=1)
        return torch.where(inside, x.sum(dim=1), torch.full_like(x[:, 0], self.outside))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)


@pytest.mark.parametrize("outside", [math.inf, math.nan])
@pytest.mark.parametrize("method", ["hmc", "mala"])
def test_nonfinite_action_is_a_rejection(outside: float, method: str) -> None:
    init = torch.ones(64, 2)
    result = sample(HalfLine(outside), 1280, method=method, init=init, seed=4, thinning=4,
                    **FAST)
    assert (result.x > 0).all()
    ess = result.diagnostics["ess"]
    assert abs(float(result.x.mean()) - 1.0) < 5 / math.sqrt(ess)


def test_chains_starting_outside_the_domain_restart_from_valid_ones() -> None:
    init = torch.ones(64, 2)
    init[::2] = -1.0
    result = sample(HalfLine(math.inf), 640, init=init, seed=1, thinning=2, **FAST)
    assert (result.x > 0).all()


def test_divergent_trajectories_do_not_raise() -> None:
    theory = preset("unimodal")
    result = sample(theory, 500, step_size=50.0, seed=0, **FAST)
    assert torch.isfinite(result.x).all()
    assert result.diagnostics["step_size"] < 2


def test_diagnostics_are_complete_and_json() -> None:
    result = sample(preset("unimodal", (3, 3)), 640, **FAST)
    assert isinstance(result, SampleResult) and len(result) == 640
    d = result.diagnostics
    for key in ("acceptance", "tau", "ess", "rhat", "step_size", "n_chains", "thinning",
                "seconds", "method"):
        assert key in d
    assert 0.6 < d["acceptance"] < 0.95
    assert d["rhat"] < 1.1 and d["ess"] > 100 and d["thinning"] >= 1
    assert d["method"] == "hmc" and d["n_chains"] == 64 and d["flip"] is False
    json.dumps(d)


def test_n_samples_not_a_multiple_of_chains() -> None:
    result = sample(preset("gaussian", (2,)), 1, **FAST)
    assert result.x.shape == (1, 2)
    assert math.isnan(result.diagnostics["tau"])
    assert sample(preset("gaussian", (2,)), 100, **FAST).x.shape == (100, 2)


def test_progress_is_silent_in_ci(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # set by conftest; test CI alone
    monkeypatch.setenv("CI", "1")
    sample(preset("gaussian", (2,)), 64, progress=True, burn_in=20, n_chains=8, thinning=1)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_errors() -> None:
    theory = preset("gaussian", (2,))
    with pytest.raises(ValueError, match="method"):
        sample(theory, 10, method="nuts")
    for n in (0, -3):
        with pytest.raises(ValueError, match="n_samples"):
            sample(theory, n)
    with pytest.raises(TypeError, match="n_samples"):
        sample(theory, 2.5)
    with pytest.raises(TypeError, match="grad"):
        sample(type("NoGrad", (), {"dim": 2, "action": lambda self, x: x.sum(1)})(), 10)
    with pytest.raises(TypeError, match="dim"):
        sample(type("NoDim", (), {"action": lambda self, x: x, "grad": lambda self, x: x})(), 10)
    with pytest.raises(ValueError, match="init"):
        sample(theory, 10, init=torch.zeros(3, 3), progress=False)
    with pytest.raises(ValueError, match="initial states"):
        sample(HalfLine(math.inf), 10, init=-torch.ones(2), progress=False)
    with pytest.raises(ValueError, match="burn_in"):
        sample(theory, 10, burn_in=5)


def test_autocorrelation_time_of_ar1() -> None:
    rho, steps, chains = 0.8, 4000, 32
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(steps, chains, dtype=torch.float64, generator=gen)
    series = torch.empty_like(noise)
    series[0] = noise[0] / math.sqrt(1 - rho**2)
    for t in range(1, steps):
        series[t] = rho * series[t - 1] + noise[t]
    tau = float(integrated_autocorrelation_time(series))
    assert abs(tau - (1 + rho) / (1 - rho)) < 0.1 * (1 + rho) / (1 - rho)
    iid = integrated_autocorrelation_time(noise[:, :, None].expand(-1, -1, 2))
    assert iid.shape == (2,) and (iid - 1).abs().max() < 0.1
    assert abs(float(split_rhat(noise)) - 1) < 0.01
    shifted = noise + torch.arange(chains, dtype=torch.float64)
    assert float(split_rhat(shifted)) > 2


@pytest.mark.parametrize(("tau", "expected"), [(0.3, 1), (1.0, 1), (1.2, 2), (7.01, 8),
                                               (250.0, 100)])
def test_thinning_is_ceil_tau_within_bounds(tau: float, expected: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _choose_thinning(tau, pilot=200, max_thinning=100) == expected


def test_thinning_warns_when_the_pilot_is_short_for_tau() -> None:
    with pytest.warns(RuntimeWarning, match="pilot"):
        _choose_thinning(40.0, pilot=200, max_thinning=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _choose_thinning(39.0, pilot=200, max_thinning=100)


def site_moments(result: SampleResult, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-configuration site averages of x, x^2, x^3, x^4 and x_i x_(i+e_last), their means
    over the samples and standard errors from their integrated autocorrelation times."""
    chains = result.diagnostics["n_chains"]
    x = result.x.reshape(-1, chains, *shape)
    sites = tuple(range(2, x.ndim))
    series = torch.stack([x.mean(sites), x.square().mean(sites), x.pow(3).mean(sites),
                          x.pow(4).mean(sites), (x * x.roll(1, -1)).mean(sites)], dim=-1)
    tau = integrated_autocorrelation_time(series)
    n = series.shape[0] * chains
    error = series.std(dim=(0, 1)) * (tau / n).sqrt()
    return series.mean(dim=(0, 1)).numpy(), error.numpy()


def ring_moments_by_transfer_matrix(size: int, m2: float, kappa: float, g3: float,
                                    g4: float) -> np.ndarray:
    """<x>, <x^2>, <x^3>, <x^4>, <x_0 x_1> of the periodic ring, exact up to the quadrature:
    Z = tr(K^L) with the symmetric transfer matrix K(x, y) = sqrt(w(x) w(y))
    exp(-V(x)/2 - kappa (x - y)^2 / 2 - V(y)/2) on a fine grid."""
    grid, h = np.linspace(-9, 9, 1201, retstep=True)
    potential = m2 / 2 * grid**2 + g3 / 6 * grid**3 + g4 / 24 * grid**4
    kernel = h * np.exp(-potential[:, None] / 2 - potential[None, :] / 2
                        - kappa / 2 * (grid[:, None] - grid[None, :]) ** 2)
    power = np.linalg.matrix_power(kernel, size)
    z = np.trace(power)
    local = [np.trace(np.diag(grid**k) @ power) / z for k in (1, 2, 3, 4)]
    rest = np.linalg.matrix_power(kernel, size - 1)
    neighbour = np.trace(np.diag(grid) @ kernel @ np.diag(grid) @ rest) / z
    return np.array([*local, neighbour])


def test_gaussian_ring_covariance_is_exactly_inverse_of_a2() -> None:
    theory = LatticeTheory((16,), m2=0.5, kappa=0.8)
    result = sample(theory, 8192, seed=4, progress=False)
    covariance_within_errors(result.x, torch.linalg.inv(theory.quadratic()),
                             result.diagnostics["ess"])


@pytest.mark.parametrize("couplings", [PRESETS["unimodal"],
                                       {"m2": 0.3, "kappa": 0.9, "g3": 0.8, "g4": 1.5}])
def test_interacting_ring_moments_against_the_transfer_matrix(couplings) -> None:
    theory = LatticeTheory((12,), **couplings)
    result = sample(theory, 12800, seed=6, progress=False)
    exact = ring_moments_by_transfer_matrix(12, **couplings)
    mean, error = site_moments(result, (12,))
    assert np.all(np.abs(mean - exact) < 5 * error), (mean, exact, error)


# The 8x8 unimodal moments (x, x^2, x^3, x^4, x_i x_(i+1)) and their standard errors from
# 102400 samples of the sampler before its scaling changes (3 leapfrog steps, no blocks).
OLD_8X8 = (np.array([-0.074820, 0.368159, -0.099597, 0.399549, 0.073185]),
           np.array([0.000415, 0.000232, 0.000496, 0.000557, 0.000178]))


def test_8x8_moments_agree_with_the_previous_sampler() -> None:
    result = sample(preset("unimodal", (8, 8)), 12800, seed=8, progress=False)
    mean, error = site_moments(result, (8, 8))
    old_mean, old_error = OLD_8X8
    assert np.all(np.abs(mean - old_mean) < 5 * np.hypot(error, old_error)), (mean, error)


def test_leapfrog_blocks_do_not_change_the_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    theory = preset("unimodal", (4, 4))
    quick = {**FAST, "burn_in": 40, "thinning": 2, "n_chains": 24}
    whole = sample(theory, 240, seed=3, **quick)
    monkeypatch.setattr(sampling, "_BLOCK_ELEMENTS", 16 * 5)  # blocks of 5 chains
    blocked = sample(theory, 240, seed=3, **quick)
    torch.testing.assert_close(blocked.x, whole.x, rtol=0, atol=0)


def test_default_trajectory_length_is_fixed_and_n_steps_overrides_it() -> None:
    theory = preset("unimodal", (6, 6))
    quick = {**FAST, "burn_in": 40, "thinning": 1}
    auto = sample(theory, 64, seed=1, **quick).diagnostics
    assert auto["n_steps"] == math.ceil(sampling._TRAJECTORY / auto["step_size"])
    assert sample(theory, 64, seed=1, n_steps=2, **quick).diagnostics["n_steps"] == 2
