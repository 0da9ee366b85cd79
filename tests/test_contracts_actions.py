"""The action protocol's contract, checked for every representation in one registry.

Adding a representation (or a variant worth checking: a window, a truncation, a point) is one
entry of `REPRESENTATIONS`: a function that builds it, float64, with every order 1..K present.
"""

from __future__ import annotations

import functools

import pytest
import torch
from lattice_models import lattice_model

import inntheory as it
from inntheory.actions.base import Action
from inntheory.actions.dense import PolynomialAction, symmetrize


def _dense() -> PolynomialAction:
    generator = torch.Generator().manual_seed(0)
    coefficients = {
        k: symmetrize(torch.randn((3,) * k, generator=generator, dtype=torch.float64))
        for k in range(1, 5)
    }
    point = torch.randn(3, generator=generator, dtype=torch.float64)
    return PolynomialAction(coefficients, point, constant=0.7, metadata={"source": "test"})


def _extracted(shape, activation="cubic", radius=None, point=None) -> Action:
    model = lattice_model(shape, 1, activation, True, radius=radius)
    return it.extract_action(model, 4, point=point)


REPRESENTATIONS = {
    "dense": _dense,
    "dense truncated": lambda: _dense().truncate(3),
    "lattice 1-D full window": lambda: _extracted((5,)),
    "lattice 2-D full window": lambda: _extracted((2, 3), "quadratic"),
    "lattice 1-D radius window": lambda: _extracted((7,), radius=1),
    "lattice 2-D radius window": lambda: _extracted((6, 6), radius=1),
    "lattice radius window widened": lambda: _extracted((7,), radius=1).widen((7,)),
    "lattice uniform point": lambda: _extracted((2, 3), point=torch.full((6,), 0.05,
                                                                         dtype=torch.float64)),
    "lattice truncated": lambda: _extracted((7,), radius=1).truncate(2),
}


@functools.cache
def _built(name: str) -> Action:
    return REPRESENTATIONS[name]()


@pytest.fixture(params=sorted(REPRESENTATIONS))
def action(request) -> Action:
    return _built(request.param)


def _batch(action: Action, n: int = 7, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return action.point + 0.3 * torch.randn(n, action.dim, generator=generator,
                                            dtype=torch.float64)


def test_registry_holds_every_registered_format():
    built = {type(_built(name)).format for name in REPRESENTATIONS}
    assert built == set(it.actions.base.FORMATS)


def test_to_dense_has_the_same_coefficients_point_and_constant(action):
    dense = action.to_dense()
    assert isinstance(dense, PolynomialAction) and dense.dim == action.dim
    assert dense.orders == action.orders and dense.constant == action.constant
    torch.testing.assert_close(dense.point, action.point, rtol=0, atol=0)
    for k in range(1, action.order + 1):
        torch.testing.assert_close(action.coefficient(k), dense.coefficient(k), rtol=0, atol=0)
        torch.testing.assert_close(action.diagonal(k), dense.diagonal(k), rtol=0, atol=0)


def test_action_and_gradient_equal_the_dense_ones(action):
    dense, x = action.to_dense(), _batch(action)
    torch.testing.assert_close(action.action(x), dense.action(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(action.grad(x), dense.grad(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(action(x[0]), dense(x[0]), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(action.grad(x[0]), dense.grad(x[0]), rtol=1e-12, atol=1e-12)
    assert float(action(action.point)) == pytest.approx(action.constant, abs=1e-12)


def test_gradient_is_the_autograd_derivative_of_the_action(action):
    x = _batch(action).requires_grad_(True)
    (autograd,) = torch.autograd.grad(action(x).sum(), x)
    torch.testing.assert_close(action.grad(x.detach()), autograd, rtol=1e-10, atol=1e-12)


def test_save_load_round_trip_through_load_action(action, tmp_path):
    path = action.save(tmp_path / "action")
    assert path.suffix == ".npz" and not list(tmp_path.glob(".*tmp*"))
    for loaded in (it.load_action(path), type(action).load(path)):
        assert type(loaded) is type(action) and loaded.orders == action.orders
        assert loaded.constant == action.constant and loaded.metadata == action.metadata
        assert torch.equal(loaded.point, action.point)
        for k in action.orders:
            assert torch.equal(loaded.tensor(k), action.tensor(k))


def test_norms_through_the_protocol_are_the_dense_norms(action):
    dense = action.to_dense()
    for k in range(1, action.order + 1):
        tensor = dense.coefficient(k)
        diagonal = dense.diagonal(k)
        off = tensor.clone()
        if k > 1:
            index = torch.arange(action.dim)
            off[(index,) * k] = 0.0
        else:
            off.zero_()
        for got, want in ((action.norm(k), tensor.norm()),
                          (action.diagonal_norm(k), diagonal.norm()),
                          (action.offdiagonal_norm(k), off.norm())):
            assert got == pytest.approx(float(want), rel=1e-12, abs=1e-300)


def test_spectrum_is_the_eigenvalues_of_the_dense_second_order(action):
    eigenvalues = torch.linalg.eigvalsh(action.to_dense().coefficient(2))
    torch.testing.assert_close(action.spectrum().sort().values, eigenvalues, rtol=1e-10,
                               atol=1e-12)


def test_compare_in_the_own_layout_equals_compare_of_the_dense_expansions(action):
    noisy = action.to_dense()
    generator = torch.Generator().manual_seed(3)
    learned = PolynomialAction(
        {k: noisy.coefficient(k) + 0.1 * symmetrize(torch.randn(
            noisy.coefficient(k).shape, generator=generator, dtype=torch.float64))
         for k in noisy.orders}, noisy.point, check_symmetry=False)
    orders = range(1, action.order + 1)
    itself = it.compare(action, action, orders)
    assert all(row.error == 0 and row.diagonal_error == 0 for row in itself.rows)
    mixed = it.compare(action, learned, orders)
    dense = it.compare(action.to_dense(), learned, orders)
    assert [r.__dict__ for r in mixed.rows] == [r.__dict__ for r in dense.rows]
    doubled = it.compare(action, {"itself": action, "learned": learned}, orders)
    assert [r.__dict__ for r in doubled.rows[len(orders):]] == [r.__dict__ for r in dense.rows]


def test_truncate_and_to_keep_the_representation(action):
    truncated = action.truncate(1)
    assert type(truncated) is type(action) and truncated.order == 1
    single = action.to(dtype=torch.float32)
    assert type(single) is type(action) and single.dtype == torch.float32
    assert single.point.dtype == torch.float32
    torch.testing.assert_close(single.coefficient(action.order),
                               action.coefficient(action.order).float())
