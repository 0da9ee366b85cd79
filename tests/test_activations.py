"""The activation family beyond the contract (tests/test_contracts_model.py): each member's
inverse, domain, monotonicity and odd form, and the errors."""

from __future__ import annotations

import math

import pytest
import torch

from inntheory.model.activations import (
    CubicActivation,
    QuadraticActivation,
    make_activation,
)


@pytest.fixture(autouse=True)
def _float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _randomised(name: str, dim: int = 5, seed: int = 0):
    torch.manual_seed(seed)
    activation = make_activation(name, dim)
    with torch.no_grad():
        for parameter in activation.parameters():
            parameter.normal_(0.0, 0.8)
    return activation


def test_quadratic_inverse_on_its_branch_and_nan_without_preimage():
    activation = QuadraticActivation(2)
    with torch.no_grad():
        activation.a.copy_(torch.tensor([0.5, -0.25]))
    y = torch.tensor([[0.3, 0.7], [-0.9, 1.9], [1e-9, -1e-9]])
    assert activation.in_domain(y).all()
    torch.testing.assert_close(activation.inverse(activation(y)), y)
    # phi(y) >= -1/(4a) for a > 0: values below have no pre-image
    v = torch.tensor([[-0.6, 0.0], [0.0, 1.01]])
    inverse = activation.inverse(v).detach()
    assert math.isnan(inverse[0, 0]) and math.isnan(inverse[1, 1])
    # beyond the fold phi' < 0, and log phi' is -inf there, never finite
    outside = torch.tensor([[-1.5, 2.5]])
    assert not activation.in_domain(outside).any()
    assert torch.isneginf(activation.log_derivative(outside)).all()


def test_quadratic_inverse_is_accurate_for_tiny_a():
    activation = QuadraticActivation(1)
    with torch.no_grad():
        activation.a.fill_(1e-12)
    v = torch.tensor([[3.0]])
    torch.testing.assert_close(activation(activation.inverse(v)), v, rtol=1e-15, atol=0)


def test_cubic_is_monotone_everywhere_for_any_parameters():
    activation = _randomised("cubic", dim=50, seed=1)
    with torch.no_grad():
        activation.t.mul_(20)  # tanh saturates: a^2 -> s^2 3c, the hardest case
    a, c = activation.a, activation.c
    assert torch.all(a**2 < 3 * c)
    minimum_slope = 1 - a**2 / (3 * c)  # phi' at its minimum y = -a / (3 c)
    assert torch.all(minimum_slope >= 1 - CubicActivation.slope_margin**2 - 1e-12)
    y = torch.linspace(-30, 30, 2001).unsqueeze(1).expand(-1, 50)
    assert activation.in_domain(y).all()


def test_cubic_inverse_round_trip_over_a_wide_range():
    activation = _randomised("cubic", dim=4, seed=2)
    y = torch.linspace(-40, 40, 401).unsqueeze(1).expand(-1, 4)
    torch.testing.assert_close(activation.inverse(activation(y)), y, rtol=1e-12, atol=1e-12)


def test_unknown_activation_and_bad_dim_are_clear_errors():
    with pytest.raises(ValueError, match="unknown activation 'relu'.*cubic, quadratic"):
        make_activation("relu", 3)
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        make_activation("cubic", 0)


def test_odd_cubic_is_odd_monotone_and_invertible():
    torch.manual_seed(4)
    activation = make_activation("cubic", 6, odd=True)
    with torch.no_grad():
        activation.r.normal_(0.0, 2.0)
    assert [name for name, _ in activation.named_parameters()] == ["r"]
    assert torch.equal(activation.a, torch.zeros(6))
    assert bool((activation.c > 0).all())
    assert torch.equal(activation.coefficients()[:, [0, 2]], torch.zeros(6, 2))
    y = torch.linspace(-40, 40, 401).unsqueeze(1).expand(-1, 6)
    assert torch.equal(activation(-y), -activation(y))
    assert bool((activation.derivative(y) >= 1).all())
    torch.testing.assert_close(activation.inverse(activation(y)), y, rtol=1e-12, atol=1e-12)


def test_odd_quadratic_is_a_clear_error():
    with pytest.raises(ValueError, match="'quadratic' activation has no odd form"):
        make_activation("quadratic", 3, odd=True)
    with pytest.raises(TypeError, match="shared must be a bool"):
        make_activation("cubic", 3, shared=1)
