"""PolynomialAction: structure, evaluation, gradient, persistence, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from inntheory.actions.dense import PolynomialAction, symmetrize


def _random_action(dim: int = 3, order: int = 4, seed: int = 0) -> PolynomialAction:
    generator = torch.Generator().manual_seed(seed)
    coefficients = {
        k: symmetrize(torch.randn((dim,) * k, generator=generator, dtype=torch.float64))
        for k in range(1, order + 1)
    }
    point = torch.randn(dim, generator=generator, dtype=torch.float64)
    return PolynomialAction(coefficients, point, constant=0.7, metadata={"source": "test"})


def test_evaluation_matches_the_defining_sum():
    action = _random_action()
    x = torch.randn(5, 3, dtype=torch.float64)
    d = x - action.point
    letters = "abcd"
    expected = torch.full((5,), 0.7, dtype=torch.float64)
    for k in range(1, 5):
        subscripts = letters[:k] + "," + ",".join(f"n{c}" for c in letters[:k]) + "->n"
        expected += torch.einsum(subscripts, action.coefficient(k), *([d] * k)) / math.factorial(k)
    torch.testing.assert_close(action(x), expected)
    torch.testing.assert_close(action(x[0]), expected[0])


def test_taylor_coefficients_are_derivatives():
    """(The gradient against autograd: tests/test_contracts_actions.py.)"""
    action = _random_action(seed=1)
    hessian = torch.func.hessian(lambda y: action(y))(action.point)
    torch.testing.assert_close(hessian, action.coefficient(2))
    fourth = torch.func.jacfwd(torch.func.jacfwd(torch.func.hessian(lambda y: action(y))))
    torch.testing.assert_close(fourth(action.point), action.coefficient(4))


def test_absent_orders_are_zero_and_diagonal_is_local_part():
    a4 = torch.zeros(2, 2, 2, 2)
    a4[0, 0, 0, 0], a4[1, 1, 1, 1] = 3.0, 5.0
    action = PolynomialAction({2: torch.eye(2), 4: a4})
    assert action.orders == (2, 4) and action.order == 4 and action.dim == 2
    assert torch.count_nonzero(action.coefficient(3)) == 0
    torch.testing.assert_close(action.diagonal(4), torch.tensor([3.0, 5.0]))
    assert action.truncate(2).order == 2


def test_saved_file_is_plain_numpy_readable(tmp_path):
    """(The round trip of every representation: tests/test_contracts_actions.py.)"""
    action = _random_action(seed=2)
    path = action.save(tmp_path / "learned")
    with np.load(path) as archive:
        assert "format" not in archive.files  # the format of dense files before tags
        np.testing.assert_array_equal(archive["A3"], action.coefficient(3).numpy())


@pytest.mark.parametrize(
    ("coefficients", "message"),
    [
        ({2: torch.zeros(2, 3)}, r"shape \(N,\)\*2"),
        ({2: torch.tensor([[0.0, 1.0], [2.0, 0.0]])}, "not symmetric"),
        ({1: torch.zeros(2), 2: torch.zeros(3, 3)}, "N = 3 but earlier orders have N = 2"),
        ({0: torch.zeros(())}, "integers >= 1"),
        ({2: torch.tensor([[math.nan]])}, "NaN"),
        ({}, "non-empty"),
    ],
)
def test_bad_coefficients_are_clear_errors(coefficients, message):
    with pytest.raises(ValueError, match=message):
        PolynomialAction(coefficients)


def test_bad_inputs_to_evaluation_and_files(tmp_path):
    action = _random_action()
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        action(torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        action(torch.full((1, 3), math.nan, dtype=torch.float64))
    with pytest.raises(ValueError, match="up to 4"):
        action.coefficient(5)
    with pytest.raises(FileNotFoundError):
        PolynomialAction.load(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable action file"):
        PolynomialAction.load(corrupt)
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="no coefficient arrays"):
        PolynomialAction.load(tmp_path / "foreign.npz")
