"""Crafted and careless inputs to `sample` and `train`: one clear error or warning, and
diagnostics that do not claim what did not happen."""

from __future__ import annotations

import warnings

import pytest
import torch

from inntheory.model.inn import PolynomialINN
from inntheory.model.training import train
from inntheory.sampling import sample, split_rhat
from inntheory.theories import LatticeTheory, preset

QUIET = {"progress": False, "burn_in": 40}
FIT = {"steps": 30, "progress": False, "device": "cpu", "polish": False}


def data(n: int = 300, dim: int = 3) -> torch.Tensor:
    return torch.randn(n, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("couplings", [{"m2": 1e308, "kappa": 0.5}, {"m2": 1e150, "kappa": 0.5},
                                       {"m2": 1.0, "kappa": 1e300}])
def test_a_sampler_that_does_not_move_says_so(couplings) -> None:
    with pytest.warns(RuntimeWarning, match="no chain moved"):
        result = sample(LatticeTheory((8,), **couplings), 500, **QUIET)
    d = result.diagnostics
    assert d["moved_chains"] == 0
    assert d["ess"] == 0 and all(o["ess"] == 0 for o in d["observables"].values())
    assert d["rhat"] == float("inf")


def test_moving_chains_give_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = sample(preset("unimodal"), 512, thinning=2, **QUIET).diagnostics
    assert d["moved_chains"] == 128 and d["ess"] > 0


def test_split_rhat_of_chains_stuck_in_different_places_is_infinite() -> None:
    stuck = torch.arange(4, dtype=torch.float64).expand(10, 4)
    assert float(split_rhat(stuck)) == float("inf")
    assert float(split_rhat(torch.ones(10, 4))) == 1.0


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_seed_out_of_range_names_the_range(seed) -> None:
    with pytest.raises(ValueError, match=r"seed must be an int from -2\*\*63 to 2\*\*64 - 1"):
        sample(preset("gaussian"), 10, seed=seed, progress=False)
    with pytest.raises(ValueError, match=r"seed must be an int from -2\*\*63 to 2\*\*64 - 1"):
        train(PolynomialINN(3, depth=1), data(), seed=seed, **FIT)


def test_data_near_the_float64_limit_are_standardised_without_overflow() -> None:
    # Their variance, ~1e320, overflows float64; the standardisation must not.
    reference = PolynomialINN(3, depth=1).double()
    scaled = PolynomialINN(3, depth=1).double()
    torch.manual_seed(0)
    reference.load_state_dict(scaled.state_dict())
    base = train(reference, data(), **FIT)
    big = train(scaled, data() * 2.0**530, **FIT)
    # Scaling the data by c shifts the NLL by N log(c) and leaves the rest unchanged.
    assert big.best_val_nll == pytest.approx(base.best_val_nll + 3 * 530 * 0.6931471805599453,
                                             rel=1e-9)
    torch.testing.assert_close(scaled.scale, reference.scale * 2.0**530, rtol=1e-12, atol=0)


def test_data_beyond_the_model_dtype_name_the_overflow() -> None:
    with pytest.raises(ValueError, match="overflow the model's dtype float32"):
        train(PolynomialINN(3, depth=1), data() * 1e160, **FIT)


def test_deep_cubic_overflow_is_not_called_outside_the_domain() -> None:
    torch.manual_seed(0)
    model = PolynomialINN(3, depth=1000).double()
    with pytest.raises(ValueError, match="overflows float64 inside the network") as error:
        train(model, data(), **FIT)
    assert "outside the model's domain" not in str(error.value)


def test_a_column_copied_from_another_is_a_plain_warning() -> None:
    x = data(400, 3)
    copied = torch.cat([x, x[:, 1:2]], dim=1)
    with pytest.warns(RuntimeWarning, match="column 3 is an exact copy of column 1.*singular"):
        train(PolynomialINN(4, depth=1), copied, **FIT)


def test_an_exact_linear_dependence_is_a_plain_warning() -> None:
    x = data(400, 3)
    dependent = torch.cat([x, x[:, :1] + 2 * x[:, 2:]], dim=1)
    with pytest.warns(RuntimeWarning, match="linearly dependent.*singular"):
        train(PolynomialINN(4, depth=1), dependent, **FIT)


def test_independent_columns_give_no_degeneracy_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(PolynomialINN(3, depth=1), data(), **FIT)


def test_a_short_production_with_ordinary_rejections_is_not_called_stuck() -> None:
    # Two steps per chain at acceptance ~0.8: a few chains reject both.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = sample(preset("unimodal", (6, 6)), 128, n_chains=64, thinning=1, **QUIET).diagnostics
    assert d["moved_chains"] < 64 and d["ess"] > 0
