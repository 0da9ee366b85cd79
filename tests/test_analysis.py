"""Tests for inntheory.comparison: action comparison and cumulant comparison."""

from __future__ import annotations

import json
import math

import matplotlib
import numpy as np
import pytest
import torch

from inntheory.actions.dense import PolynomialAction
from inntheory.comparison import compare, compare_cumulants, cumulants

matplotlib.use("Agg")

F64 = torch.float64


def chain_action(n_sites: int = 4, scale: float = 1.0, a1: torch.Tensor | None = None):
    """The 1-D phi^3 + phi^4 chain coefficients (METHOD.md), all multiplied by `scale`."""
    shift = torch.roll(torch.eye(n_sites, dtype=F64), 1, dims=1)
    a2 = 2.0 * torch.eye(n_sites, dtype=F64) - 0.5 * (shift + shift.T)
    index = torch.arange(n_sites)
    a3 = torch.zeros((n_sites,) * 3, dtype=F64)
    a3[(index,) * 3] = 0.5
    a4 = torch.zeros((n_sites,) * 4, dtype=F64)
    a4[(index,) * 4] = 1.0
    first = torch.zeros(n_sites, dtype=F64) if a1 is None else a1
    return PolynomialAction({1: first, 2: scale * a2, 3: scale * a3, 4: scale * a4})


def test_an_action_compared_with_itself_has_zero_errors():
    action = chain_action()
    result = compare(action, action)
    assert [r.order for r in result.rows] == [1, 2, 3, 4]
    for row in result.rows:
        assert row.error == row.diagonal_error == 0.0
        assert row.learned_diagonal_mean == row.true_diagonal_mean
        assert row.leakage == row.true_offdiagonal
    assert not result.row(1).relative  # A^(1) = 0: absolute norms, and the table says so
    assert result.row(2).relative and "abs" in result.table().splitlines()[3]


def test_scaled_action_gives_the_scale_as_relative_error():
    true, eps = chain_action(), 0.1
    result = compare(true, chain_action(scale=1 + eps))
    for k in (2, 3, 4):
        row = result.row(k)
        assert row.error == pytest.approx(eps, rel=1e-12)
        assert row.diagonal_error == pytest.approx(eps, rel=1e-12)
        assert row.leakage == pytest.approx((1 + eps) * row.true_offdiagonal, rel=1e-12)
        assert row.learned_diagonal_mean == pytest.approx((1 + eps) * row.true_diagonal_mean)
    # A^(2) off-diagonal: 8 entries -0.5 of a matrix with diagonal 2 (4 entries)
    assert result.row(2).true_offdiagonal == pytest.approx(math.sqrt(2 / (2 + 16)), rel=1e-12)


def test_absolute_norm_when_true_order_vanishes_and_offdiagonal_leakage():
    true = chain_action()
    shift = torch.tensor([0.3, 0.0, -0.4, 0.0], dtype=F64)
    learned_a4 = true.coefficient(4).clone()
    learned_a4[0, 0, 1, 1] = learned_a4[0, 1, 0, 1] = learned_a4[0, 1, 1, 0] = 0.2
    learned_a4[1, 1, 0, 0] = learned_a4[1, 0, 1, 0] = learned_a4[1, 0, 0, 1] = 0.2
    learned = PolynomialAction(
        {1: shift, 2: true.coefficient(2), 3: true.coefficient(3), 4: learned_a4}
    )
    result = compare(true, learned, orders=[4, 1])
    assert result.orders == (1, 4)
    first = result.row(1)
    assert not first.relative and first.error == pytest.approx(0.5)
    fourth = result.row(4)
    norm = float(torch.linalg.vector_norm(true.coefficient(4)))  # = 2
    assert fourth.diagonal_error == 0.0
    assert fourth.leakage == pytest.approx(0.2 * math.sqrt(6) / norm)
    assert fourth.error == pytest.approx(fourth.leakage)


def test_several_learned_actions_get_one_column_group_each():
    true = chain_action()
    result = compare(true, {"INN": chain_action(scale=1.2), "score matching": true})
    assert result.models == ("INN", "score matching")
    assert result.row(3, "INN").error == pytest.approx(0.2)
    assert result.row(3, "score matching").error == 0.0
    text = str(result)
    assert "INN: error" in text and "score matching: error" in text
    assert "<table>" in result._repr_html_()
    summary = json.loads(json.dumps(result.to_dict()))
    assert len(summary["rows"]) == 8 and summary["models"] == ["INN", "score matching"]
    with pytest.raises(ValueError, match="several models"):
        result.row(2)


def test_fisher_divergence_column_on_held_out_data():
    true = chain_action()
    x = torch.randn(500, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    plain = compare(true, true)
    assert "fisher" not in plain.table() and "fisher_divergence" not in plain.to_dict()["rows"][0]
    assert compare(true, true, data=x).row(2).fisher_divergence == 0.0
    # S_learned = (1 + eps) S_true: the gradients differ by eps grad S_true, a ratio eps^2.
    # A^(2) + delta I: they differ by delta x; grad S_true = A2 x + x^2 / 4 + x^3 / 6 here.
    shift = {2: 0.3 * torch.eye(4, dtype=F64)}
    shifted = PolynomialAction({k: true.coefficient(k) + shift.get(k, 0) for k in (1, 2, 3, 4)})
    a2 = true.coefficient(2)
    grad_true = x @ a2 + x**2 / 4 + x**3 / 6
    expected = float(0.3**2 * (x**2).sum(1).mean() / (grad_true**2).sum(1).mean())
    result = compare(true, {"scaled": chain_action(scale=1.1), "shifted": shifted}, data=x)
    for k in (1, 2, 3, 4):
        assert result.row(k, "scaled").fisher_divergence == pytest.approx(0.01, rel=1e-10)
        assert result.row(k, "shifted").fisher_divergence == pytest.approx(expected, rel=1e-10)
    wide = result.table(width=400)  # one block: both model groups side by side
    assert wide.splitlines()[1].count("fisher") == 2
    assert json.loads(json.dumps(result.to_dict()))["rows"][0]["fisher_divergence"] == (
        pytest.approx(0.01, rel=1e-10))
    with pytest.raises(ValueError, match=r"data must have shape \(n, N = 4\)"):
        compare(true, true, data=x[:, :3])


def test_plot_has_scatter_heat_map_and_diagonal_panels():
    true = chain_action()
    figure = compare(true, {"a": chain_action(scale=0.9), "b": true}).plot()
    titles = [ax.get_title() for ax in figure.get_axes() if ax.get_title()]
    assert "$A^{(2)}$ true" in titles and "$A^{(2)}$ b" in titles
    assert sum("entries" in t for t in titles) == 4
    assert "diagonal $A^{(4)}_{i \\dots i}$" in titles
    bars = [ax for ax in figure.get_axes() if ax.get_title().startswith("diagonal")]
    assert all(float(t).is_integer() for ax in bars for t in ax.get_xticks())
    assert all(ax.get_xlabel() for ax in figure.get_axes() if ax.get_title())


def test_compare_rejects_mismatched_actions():
    true = chain_action()
    with pytest.raises(ValueError, match="dim"):
        compare(true, chain_action(n_sites=3))
    moved = PolynomialAction({2: true.coefficient(2)}, point=torch.ones(4))
    with pytest.raises(ValueError, match="different point"):
        compare(true.truncate(2), moved, orders=(2,))
    with pytest.raises(ValueError, match="order 3 is missing"):
        compare(true, true.truncate(2))
    with pytest.raises(ValueError, match="orders"):
        compare(true, true, orders=(0, 2))
    with pytest.raises(TypeError, match="PolynomialAction"):
        compare(true, {"x": true.coefficient(2)})


def test_cumulants_match_direct_central_moments():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=(500, 3)) @ rng.standard_normal((3, 3))
    kappa = cumulants(x)
    d = x - x.mean(0)
    cov = d.T @ d / len(x)
    m4 = np.einsum("ni,nj,nk,nl->ijkl", d, d, d, d) / len(x)
    pairs = (
        np.einsum("ij,kl->ijkl", cov, cov)
        + np.einsum("ik,jl->ijkl", cov, cov)
        + np.einsum("il,jk->ijkl", cov, cov)
    )
    np.testing.assert_allclose(kappa[1].numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(kappa[2].numpy(), cov, rtol=1e-10)
    np.testing.assert_allclose(
        kappa[3].numpy(), np.einsum("ni,nj,nk->ijk", d, d, d) / len(x), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(kappa[4].numpy(), m4 - pairs, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(cumulants(torch.from_numpy(x), order=2)[2], kappa[2])
    # shift invariance of k >= 2 and scaling kappa_k -> c^k kappa_k
    moved = cumulants(2.5 * x + 7.0)
    for k in (2, 3, 4):
        torch.testing.assert_close(moved[k], 2.5**k * kappa[k], rtol=1e-8, atol=1e-8)


def test_exponential_cumulants_within_jackknife_errors():
    x = np.random.default_rng(1).exponential(size=(100_000, 1))
    result = compare_cumulants(x, x[:2])  # the second set only fixes N
    for k in range(1, 5):
        exact = math.factorial(k - 1)  # kappa_k of Exp(1)
        estimate, error = result.data[k].flatten()[0], result.data_error[k].flatten()[0]
        z = abs(float(estimate) - exact) / float(error)
        assert z < 4.0, (k, z)


def test_jackknife_errors_are_calibrated_on_identical_distributions():
    z_squared = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        mixing = np.array([[1.0, 0.0], [0.6, 0.8]])
        data = rng.standard_normal((3000, 2)) @ mixing.T
        samples = rng.standard_normal((5000, 2)) @ mixing.T
        result = compare_cumulants(data, samples)
        for k in range(1, 5):
            entries = result.z(k)
            z_squared.append(entries.flatten() ** 2)
    mean = float(torch.cat(z_squared).mean())
    assert 0.6 < mean < 1.6, mean


def test_skewed_samples_match_only_up_to_the_second_cumulant():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((20_000, 2))
    samples = rng.exponential(size=(20_000, 2)) - 1.0  # mean 0, covariance I, skewed
    result = compare_cumulants(data, samples)
    assert result.within(1, n_sigma=4) and result.within(2, n_sigma=4)
    assert not result.within(3, n_sigma=4)
    assert result.matches_up_to(n_sigma=4) == 2
    assert result.row(3).p_value < 1e-6
    assert [r.n_entries for r in result.rows] == [2, 3, 4, 5]
    text = result.table()
    assert "jackknife" in text and "max |diff|/sigma" in text
    assert json.loads(json.dumps(result.to_dict()))["rows"][2]["order"] == 3
    figure = result.plot()
    assert len(figure.get_axes()) == 4 and "kappa_3" in figure.get_axes()[2].get_title()


def test_cumulant_input_validation():
    good = np.zeros((10, 2))
    with pytest.raises(ValueError, match="shape"):
        cumulants(np.zeros(10))
    with pytest.raises(ValueError, match="n >= 2"):
        cumulants(np.zeros((1, 3)))
    bad = np.ones((10, 2))
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cumulants(bad)
    with pytest.raises(ValueError, match="order"):
        cumulants(good, order=5)
    with pytest.raises(ValueError, match="N = 2 but samples have N = 3"):
        compare_cumulants(good, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="n_blocks"):
        compare_cumulants(good, good, n_blocks=1)
    with pytest.raises(TypeError, match="tensor or numpy"):
        cumulants([[0.0, 1.0], [1.0, 2.0]])
