"""Tests of inntheory.theories: local action, analytic gradient, exact coefficients, presets."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from torch.func import grad, hessian, jacfwd

from inntheory.actions.dense import PolynomialAction
from inntheory.theories import PRESETS, LatticeTheory, preset

SHAPES = [(1,), (2,), (3,), (8,), (1, 1), (2, 2), (3, 2), (4, 4), (1, 3)]


def naive_action(theory: LatticeTheory, x: np.ndarray) -> np.ndarray:
    """The defining sum over sites and forward neighbours, written out with index arithmetic."""
    shape = theory.shape
    total = np.zeros(x.shape[0])
    for site in itertools.product(*(range(n) for n in shape)):
        i = np.ravel_multi_index(site, shape)
        xi = x[:, i]
        total += theory.m2 / 2 * xi**2 + theory.g3 / 6 * xi**3 + theory.g4 / 24 * xi**4
        for mu in range(len(shape)):
            neighbour = list(site)
            neighbour[mu] = (neighbour[mu] + 1) % shape[mu]
            j = np.ravel_multi_index(tuple(neighbour), shape)
            total += theory.kappa / 2 * (x[:, j] - xi) ** 2
    return total


@pytest.mark.parametrize("shape", SHAPES)
def test_action_matches_the_defining_sum(shape: tuple[int, ...]) -> None:
    theory = LatticeTheory(shape, m2=0.7, kappa=0.4, g3=0.3, g4=1.2)
    x = torch.randn(5, theory.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = naive_action(theory, x.numpy())
    torch.testing.assert_close(theory.action(x), torch.from_numpy(expected))
    assert theory.action(x[0]).shape == ()
    torch.testing.assert_close(theory.action(x[0]), theory.action(x)[0])


@pytest.mark.parametrize("shape", SHAPES)
def test_grad_matches_autograd(shape: tuple[int, ...]) -> None:
    theory = LatticeTheory(shape, m2=-0.5, kappa=0.8, g3=-0.4, g4=2.0)
    x = torch.randn(6, theory.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expected = grad(lambda y: theory.action(y).sum())(x)
    torch.testing.assert_close(theory.grad(x), expected)
    torch.testing.assert_close(theory.grad(x[1]), expected[1])


@pytest.mark.parametrize("shape", [(1,), (2,), (5,), (3, 2), (1, 4)])
def test_coefficients_equal_derivatives_at_zero(shape: tuple[int, ...]) -> None:
    theory = LatticeTheory(shape, m2=0.9, kappa=0.6, g3=0.7, g4=1.3)
    zero = torch.zeros(theory.dim, dtype=torch.float64)
    derivatives = {
        1: grad(theory.action)(zero),
        2: hessian(theory.action)(zero),
        3: jacfwd(hessian(theory.action))(zero),
        4: jacfwd(jacfwd(hessian(theory.action)))(zero),
    }
    action = theory.coefficients()
    assert isinstance(action, PolynomialAction)
    assert action.order == 4
    torch.testing.assert_close(derivatives[1], torch.zeros(theory.dim, dtype=torch.float64))
    for k in (2, 3, 4):
        torch.testing.assert_close(action.coefficient(k), derivatives[k], atol=1e-12, rtol=0)
    torch.testing.assert_close(action.point, zero)
    x = torch.randn(4, theory.dim, dtype=torch.float64)
    torch.testing.assert_close(action.action(x), theory.action(x))


def test_quadratic_part_on_tiny_lattices() -> None:
    m2, kappa = 0.5, 0.25
    # (2,): the +1 and -1 neighbours are the same site, so the bond enters twice.
    a2 = LatticeTheory((2,), m2, kappa).quadratic()
    expected = torch.tensor([[m2 + 2 * kappa, -2 * kappa], [-2 * kappa, m2 + 2 * kappa]],
                            dtype=torch.float64)
    torch.testing.assert_close(a2, expected)
    # (1,): a site is its own neighbour, the hopping vanishes.
    torch.testing.assert_close(LatticeTheory((1,), m2, kappa).quadratic(),
                               torch.tensor([[m2]], dtype=torch.float64))
    # The constant mode is an eigenvector with eigenvalue m2 on any lattice.
    theory = LatticeTheory((3, 4), m2, kappa)
    ones = torch.ones(theory.dim, dtype=torch.float64)
    torch.testing.assert_close(theory.quadratic() @ ones, m2 * ones)


def test_coefficients_truncation_and_metadata() -> None:
    theory = preset("unimodal", (3,))
    action = theory.coefficients(order=3)
    assert action.orders == (2, 3)
    assert action.metadata["source"] == "LatticeTheory"
    assert action.metadata["g3"] == 0.5
    json.dumps(action.metadata)
    with pytest.raises(ValueError, match="order"):
        theory.coefficients(order=1)


def test_properties_repr_and_equality() -> None:
    theory = LatticeTheory([4, 4], m2=1, kappa=0.5, g3=0.0, g4=1)
    assert theory.shape == (4, 4) and theory.dim == 16 and theory.ndim == 2
    assert theory.symmetric and not preset("unimodal").symmetric
    assert theory == LatticeTheory((4, 4), 1.0, 0.5, 0.0, 1.0)
    assert "m2=1.0" in repr(theory) and "shape=(4, 4)" in repr(theory)
    assert json.loads(json.dumps(theory.parameters)) == {
        "shape": [4, 4], "m2": 1.0, "kappa": 0.5, "g3": 0.0, "g4": 1.0}
    assert LatticeTheory(**{**theory.parameters, "shape": tuple(theory.shape)}) == theory


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": (0,)}, ValueError, "positive"),
        ({"shape": (2, 2, 2)}, ValueError, "1 or 2"),
        ({"shape": ()}, ValueError, "1 or 2"),
        ({"shape": (2.0,)}, ValueError, "positive ints"),
        ({"shape": None}, TypeError, "shape"),
        ({"m2": math.nan}, ValueError, "finite"),
        ({"kappa": math.inf}, ValueError, "finite"),
        ({"m2": "1"}, TypeError, "real number"),
        ({"kappa": -0.1}, ValueError, "kappa"),
        ({"g4": -1.0}, ValueError, "unbounded below"),
        ({"g4": 0.0, "g3": 0.5}, ValueError, "cubic"),
        ({"g4": 0.0, "g3": 0.0, "m2": 0.0}, ValueError, "positive definite"),
        ({"g4": 0.0, "g3": 0.0, "m2": -1.0}, ValueError, "positive definite"),
    ],
)
def test_invalid_theories_are_rejected(kwargs: dict, error: type, match: str) -> None:
    params = {"shape": (4,), "m2": 1.0, "kappa": 0.5, "g3": 0.1, "g4": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        LatticeTheory(**params)


def test_double_well_and_gaussian_edge_cases_are_accepted() -> None:
    assert LatticeTheory((4,), m2=-2.0, kappa=0.0, g4=0.1).dim == 4
    assert LatticeTheory((4,), m2=0.1, kappa=0.0).symmetric


def test_bad_inputs_are_rejected() -> None:
    theory = preset("unimodal", (2, 2))
    for bad in (torch.zeros(3, 5), torch.zeros(5), torch.zeros(2, 2, 2)):
        with pytest.raises(ValueError, match="shape"):
            theory.action(bad)
        with pytest.raises(ValueError, match="shape"):
            theory.grad(bad)
    for value in (math.nan, math.inf):
        x = torch.zeros(3, 4)
        x[1, 2] = value
        with pytest.raises(ValueError, match="NaN or inf"):
            theory.action(x)
        with pytest.raises(ValueError, match="NaN or inf"):
            theory.grad(x)


def test_dtype_follows_input() -> None:
    theory = preset("unimodal")
    assert theory.action(torch.zeros(2, 8, dtype=torch.float32)).dtype == torch.float32
    assert theory.grad(np.zeros((2, 8))).dtype == torch.float64


def test_presets() -> None:
    assert set(PRESETS) == {"gaussian", "unimodal", "double_well"}
    unimodal = preset("unimodal")
    assert unimodal == LatticeTheory((8,), m2=1.0, kappa=0.5, g3=0.5, g4=1.0)
    gaussian = preset("gaussian", shape=(4, 4))
    assert gaussian.shape == (4, 4) and gaussian.g3 == gaussian.g4 == 0
    well = preset("double_well")
    assert well.shape == (8,) and well.m2 < 0 and well.g3 == 0 and well.g4 > 0
    with pytest.raises(ValueError, match="unknown preset"):
        preset("quartic")


@pytest.mark.parametrize("shape", [(1,), (2,), (3,), (6,), (1, 3), (2, 2), (3, 5)])
def test_lattice_coefficients_expand_to_the_dense_ones(shape: tuple[int, ...]) -> None:
    theory = LatticeTheory(shape, m2=0.8, kappa=0.35, g3=-0.4, g4=1.1)
    compressed = theory.lattice_coefficients(4)
    dense = theory.coefficients(4)
    assert compressed.window == tuple(min(n, 3) for n in shape)
    for k in (1, 2, 3, 4):
        torch.testing.assert_close(compressed.coefficient(k), dense.coefficient(k), rtol=0,
                                   atol=1e-15)
    assert compressed.metadata["source"] == "LatticeTheory"
    big = LatticeTheory((32, 32), m2=0.8, kappa=0.35, g3=-0.4, g4=1.1).lattice_coefficients(4)
    assert big.couplings(4).shape == (3, 3) * 3 and big.onsite(4) == 1.1
    with pytest.raises(ValueError, match="order"):
        theory.lattice_coefficients(1)
