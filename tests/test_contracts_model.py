"""Contract tests over registries: every linear map, every activation, every kind of model.

Each list below holds every representation of one concept; each test checks one clause of
its contract for all of them. Adding a representation is adding one entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from autodiff import nested_derivatives

from inntheory import LatticeAction, PolynomialINN, extract_action
from inntheory.model.activations import make_activation
from inntheory.model.linear import (
    DenseLinear,
    LatticeConvolution,
    LinearMap,
    Scaling,
    kernel_mask,
)

DTYPE = torch.float64


# ---------------------------------------------------------------------------- linear maps


def _kernel(shape: tuple[int, ...], radius: int | None, seed: int) -> torch.Tensor:
    """A random kernel near a delta (W well conditioned), masked to `radius`."""
    generator = torch.Generator().manual_seed(seed)
    kernel = 0.4 * torch.randn(shape, generator=generator, dtype=DTYPE)
    kernel[(0,) * len(shape)] += 1.5
    return kernel * kernel_mask(shape, radius)


def _dense(dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.eye(dim, dtype=DTYPE) + 0.4 * torch.randn(dim, dim, generator=generator,
                                                             dtype=DTYPE) / dim**0.5


# (name, builder from the wrapped tensor, the tensor, the lattice shape on which to ask for
# a kernel)
LINEAR_MAPS: list[tuple[str, Callable[[torch.Tensor], LinearMap], torch.Tensor,
                        tuple[int, ...]]] = [
    ("dense", DenseLinear, _dense(6, 0), (6,)),
    ("scaling", Scaling, torch.tensor([2.0, -0.5, 1.5, 3.0], dtype=DTYPE), (4,)),
    ("uniform scaling", Scaling, torch.full((6,), 0.7, dtype=DTYPE), (2, 3)),
    ("convolution 1-D", LatticeConvolution, _kernel((7,), None, 1), (7,)),
    ("convolution 1-D radius 1", LatticeConvolution, _kernel((8,), 1, 2), (8,)),
    ("convolution 2-D", LatticeConvolution, _kernel((4, 6), None, 3), (4, 6)),
    ("convolution 2-D radius 1", LatticeConvolution, _kernel((5, 5), 1, 4), (5, 5)),
    ("convolution by FFT", LatticeConvolution, _kernel((32, 32), 2, 5), (32, 32)),
]
MAP_IDS = [entry[0] for entry in LINEAR_MAPS]


@pytest.fixture(params=LINEAR_MAPS, ids=MAP_IDS)
def linear(request) -> tuple[LinearMap, torch.Tensor, tuple[int, ...]]:
    _, build, tensor, shape = request.param
    return build(tensor.clone()), tensor.clone(), shape


def _close(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-11) -> None:
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


def test_forward_equals_matrix_product(linear):
    layer, _, _ = linear
    u = torch.randn(5, layer.dim, dtype=DTYPE)
    matrix = layer.matrix()
    assert matrix.shape == (layer.dim, layer.dim)
    _close(layer(u), u @ matrix.T)


def test_solve_undoes_forward(linear):
    layer, _, _ = linear
    u = torch.randn(5, layer.dim, dtype=DTYPE)
    _close(layer.solve(layer(u)), u, 1e-10)


def test_logabsdet_equals_slogdet_of_the_matrix(linear):
    layer, _, _ = linear
    value = layer.logabsdet()
    assert value.dim() == 0 and value.dtype == DTYPE
    expected = torch.linalg.slogdet(layer.matrix()).logabsdet
    assert abs(float(value - expected)) < 1e-11 * max(1.0, abs(float(expected)))


def test_gradients_agree_with_dense_linear_algebra(linear):
    layer, tensor, _ = linear
    tensor.requires_grad_(True)
    layer = type(layer)(tensor)
    y = torch.randn(3, layer.dim, dtype=DTYPE)
    (layer.logabsdet() + layer.solve(y).square().sum() + layer(y).pow(3).sum()).backward()
    fast, tensor.grad = tensor.grad.clone(), None
    matrix = layer.matrix()
    dense = torch.linalg.solve(matrix, y.T).T.square().sum() + (y @ matrix.T).pow(3).sum()
    (torch.linalg.slogdet(matrix).logabsdet + dense).backward()
    _close(fast, tensor.grad, 1e-9)


def test_lattice_kernel_is_the_convolution_the_matrix_is(linear):
    layer, _, shape = linear
    kernel = layer.lattice_kernel(shape)
    matrix = layer.matrix()
    # W is a periodic convolution on `shape` iff it is the one of its first column
    circulant = torch.equal(LatticeConvolution(matrix[:, 0].reshape(shape)).matrix(), matrix)
    if kernel is None:
        assert not circulant
    else:
        assert kernel.shape == shape
        assert torch.equal(LatticeConvolution(kernel).matrix(), matrix)
    assert layer.lattice_kernel((layer.dim + 1,)) is None  # never on a lattice of another size


# ---------------------------------------------------------------------------- activations

ACTIVATION_KINDS = [
    ("quadratic", {}),
    ("cubic", {}),
    ("quadratic", {"shared": True}),
    ("cubic", {"shared": True}),
    ("cubic", {"odd": True}),
    ("cubic", {"odd": True, "shared": True}),
]
ACTIVATION_IDS = [f"{name} {options}" for name, options in ACTIVATION_KINDS]


@pytest.fixture(params=ACTIVATION_KINDS, ids=ACTIVATION_IDS)
def activation(request):
    name, options = request.param
    torch.manual_seed(3)
    act = make_activation(name, 5, **options).to(DTYPE)
    with torch.no_grad():
        for parameter in act.parameters():
            parameter.normal_(0.0, 0.8)
    return act


def test_coefficients_give_forward(activation):
    units = 1 if activation.shared else 5
    assert activation.units == units
    assert all(p.shape == (units,) for p in activation.parameters())
    coefficients = activation.coefficients()
    assert coefficients.shape == (5, activation.degree + 1)
    assert activation.unit_coefficients().shape == (units, activation.degree + 1)
    assert torch.equal(coefficients[:, :2], torch.tensor([0.0, 1.0], dtype=DTYPE).expand(5, 2))
    if activation.shared:
        assert bool((coefficients == coefficients[0]).all())
    y = torch.randn(7, 5, dtype=DTYPE)
    expected = sum(coefficients[:, p] * y**p for p in range(activation.degree + 1))
    _close(activation(y), expected)


def test_derivative_matches_autograd(activation):
    y = torch.randn(7, 5, dtype=DTYPE, requires_grad=True)
    (slope,) = torch.autograd.grad(activation(y).sum(), y)
    _close(activation.derivative(y), slope)
    inside = activation.in_domain(y.detach())
    assert torch.equal(inside, slope > 0)
    log_slope = activation.log_derivative(y.detach())
    _close(log_slope[inside], slope[inside].log())
    assert bool(torch.isneginf(log_slope[~inside]).all())


def test_taylor_pieces_are_the_series_at_the_point(activation):
    y_star = torch.randn(5, dtype=DTYPE)
    taylor = activation.taylor(y_star)
    d = 0.3 * torch.randn(4, 5, dtype=DTYPE)
    series = sum(taylor[:, j] * d**j for j in range(activation.degree + 1))  # exact
    _close(series, activation(y_star + d))
    _close(taylor[:, 1], activation.derivative(y_star.unsqueeze(0))[0])


def test_inverse_undoes_forward_on_the_domain(activation):
    y = 2 * torch.randn(200, 5, dtype=DTYPE)
    y = y[activation.in_domain(y).all(dim=1)]
    assert y.shape[0] > 20
    _close(activation.inverse(activation(y)), y, 1e-9)


# ---------------------------------------------------------------------------- models

# (name, PolynomialINN options)
MODEL_KINDS = [
    ("dense cubic", {"dim": 4}),
    ("dense quadratic", {"dim": 3, "activation": "quadratic"}),
    ("dense odd", {"dim": 4, "odd": True}),
    ("lattice 1-D", {"dim": 6, "lattice": (6,)}),
    ("lattice 1-D radius 1", {"dim": 7, "lattice": (7,), "kernel_radius": 1}),
    ("lattice 1-D quadratic", {"dim": 5, "lattice": (5,), "activation": "quadratic"}),
    ("lattice 2-D", {"dim": 6, "lattice": (2, 3)}),
    ("lattice 2-D quadratic, as a list", {"dim": 9, "lattice": [3, 3], "activation": "quadratic"}),
    ("lattice 2-D radius 1", {"dim": 12, "lattice": (3, 4), "kernel_radius": 1}),
    ("lattice 2-D odd", {"dim": 9, "lattice": (3, 3), "kernel_radius": 1, "odd": True}),
]
MODEL_IDS = [entry[0] for entry in MODEL_KINDS]
LATTICE_KINDS = [entry for entry in MODEL_KINDS if "lattice" in entry[1]]


def random_model(options: dict, depth: int = 2, seed: int = 0) -> PolynomialINN:
    """A float64 network of these options far from the identity, 0 in its domain."""
    options = dict(options)
    dim = options.pop("dim")
    for attempt in range(50):
        torch.manual_seed(seed + 1000 * attempt)
        model = PolynomialINN(dim, depth, **options).to(DTYPE)
        with torch.no_grad():
            if model.lattice is None:
                model.weight.copy_(torch.eye(dim) + 0.4 * torch.randn(depth, dim, dim) / dim**0.5)
            else:
                support = model.kernel_support
                delta = torch.zeros(model.lattice, dtype=DTYPE)
                delta[(0,) * len(model.lattice)] = 1.0
                noise = 0.6 * torch.randn(depth, *model.lattice, dtype=DTYPE)
                noise = noise / support.sum().sqrt()
                model.kernel.copy_((delta + noise) * support)
            if not model.odd:
                model.bias.normal_(0.0, 0.2)
            for act in model.activations:
                for parameter in act.parameters():
                    parameter.normal_(0.0, 0.4)
        model.standardize_to(1.5 * torch.randn(64, dim, dtype=DTYPE) + 0.3)
        if bool(model.in_domain(torch.zeros(dim, dtype=DTYPE))):
            return model
    raise AssertionError("no model with 0 in its domain")


def _relative(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max()) / max(float(expected.abs().max()), 1.0)


@pytest.mark.parametrize(("name", "options"), MODEL_KINDS, ids=MODEL_IDS)
def test_stages_compose_to_forward_and_logdet(name, options):
    model = random_model(options)
    x = 0.5 * torch.randn(10, model.dim, dtype=DTYPE)
    x = x[model.in_domain(x)]
    u, logdet = x, torch.zeros(x.shape[0], dtype=DTYPE)
    for stage in model.stages():
        if hasattr(stage, "linear"):
            assert stage.bias.shape == (model.dim,) and not stage.bias.requires_grad
            logdet = logdet + stage.linear.logabsdet()
        else:
            logdet = logdet + stage.activation.log_derivative(u).sum(dim=1)
        u = stage(u)
    z, expected = model(x)
    _close(u.detach(), z.detach())
    _close(logdet.detach(), expected.detach())


@pytest.mark.parametrize(("name", "options"), MODEL_KINDS, ids=MODEL_IDS)
def test_inverse_undoes_forward_and_sampling_works(name, options):
    model = random_model(options, depth=3, seed=6)
    with torch.no_grad():  # milder activations: far tails of a depth-3 map overflow float64
        for act in model.activations:
            if act.name == "quadratic":
                act.a.normal_(0.0, 0.1)
            else:
                act.r.copy_(torch.randn_like(act.r) - 3.0)
    x = torch.randn(200, model.dim, dtype=DTYPE) * 1.5
    x = x[model.in_domain(x)]
    assert x.shape[0] > 50
    _close(model.inverse(model(x)[0]), x, 1e-8)
    samples = model.sample(100, seed=1)
    assert samples.shape == (100, model.dim) and bool(torch.isfinite(samples).all())
    gradient = model.grad(x[:3])
    assert gradient.shape == (3, model.dim) and bool(torch.isfinite(gradient).all())


@pytest.mark.parametrize(("name", "options"), MODEL_KINDS, ids=MODEL_IDS)
def test_save_load_round_trip(tmp_path, name, options):
    model = random_model(options)
    model.training_info = {"steps_run": 3}
    path = tmp_path / "model.pt"
    model.save(path)
    assert torch.load(path, weights_only=True)["version"] == 2
    loaded = PolynomialINN.load(path)
    assert loaded.config == model.config and loaded.training_info == model.training_info
    lattice = options.get("lattice")
    assert loaded.lattice == (None if lattice is None else tuple(lattice)) == model.lattice
    assert loaded.kernel_radius == model.kernel_radius
    assert loaded.odd == model.odd and loaded.dtype == DTYPE
    assert loaded.coupling_range == model.coupling_range
    x = 0.5 * torch.randn(30, model.dim, dtype=DTYPE)
    x = x[model.in_domain(x)]
    assert x.shape[0] > 10
    torch.testing.assert_close(loaded.action(x), model.action(x), rtol=0, atol=0)


@pytest.mark.parametrize("uniform", [False, True], ids=["point", "uniform point"])
@pytest.mark.parametrize(("name", "options"), MODEL_KINDS, ids=MODEL_IDS)
def test_extraction_matches_nested_autodiff(name, options, uniform):
    model = random_model(options, seed=4)
    order = 4 if model.dim <= 7 else 3
    generator = torch.Generator().manual_seed(order)
    if uniform:  # the compressed pull-back for a lattice model
        point = torch.full((model.dim,), 0.3, dtype=DTYPE)
    else:
        point = 0.4 * torch.randn(model.dim, generator=generator, dtype=DTYPE)
    while not bool(model.in_domain(point)):
        point = point / 2
    extracted = extract_action(model, order=order, point=point)
    assert extracted.constant == pytest.approx(float(model.action(point).detach()), rel=1e-12)
    for k, expected in enumerate(nested_derivatives(model.action, point, order), start=1):
        error = _relative(extracted.coefficient(k), expected)
        assert error < 1e-10, f"order {k}: relative error {error:.1e}"


@pytest.mark.parametrize(("name", "options"), LATTICE_KINDS,
                         ids=[entry[0] for entry in LATTICE_KINDS])
def test_compressed_equals_dense(name, options):
    model = random_model(options, seed=5)
    point = torch.full((model.dim,), 0.1, dtype=DTYPE)
    compressed = extract_action(model, order=4, point=point)
    dense = extract_action(model, order=4, point=point, compressed=False)
    assert isinstance(compressed, LatticeAction)
    for k in range(1, 5):
        assert _relative(compressed.coefficient(k), dense.coefficient(k)) < 1e-12, k
    assert compressed.constant == pytest.approx(dense.constant, rel=1e-12, abs=1e-12)
    assert math.isfinite(compressed.constant)
