"""Lattice-equivariant and odd PolynomialINNs: symmetry of the action, extraction, locality."""

from __future__ import annotations

import math

import pytest
import torch

from inntheory import PolynomialINN, extract_action
from inntheory.model.linear import LatticeConvolution
from inntheory.model.stages import ActivationStage, AffineStage

DTYPE = torch.float64
TOL = 1e-10


def random_model(
    lattice: tuple[int, ...] | None,
    depth: int,
    *,
    activation: str = "cubic",
    kernel_radius: int | None = None,
    odd: bool = False,
    standardize: bool = True,
    seed: int = 0,
) -> PolynomialINN:
    """A float64 network far from the identity (every coupling of the action contributes)."""
    torch.manual_seed(seed)
    dim = math.prod(lattice) if lattice is not None else 6
    model = PolynomialINN(dim, depth, activation, standardize, lattice=lattice,
                          kernel_radius=kernel_radius, odd=odd).to(DTYPE)
    with torch.no_grad():
        if lattice is None:
            model.weight.copy_(torch.eye(dim) + 0.4 * torch.randn(depth, dim, dim) / dim**0.5)
        else:
            support = model.kernel_support
            delta = torch.zeros(lattice, dtype=DTYPE)
            delta[(0,) * len(lattice)] = 1.0
            noise = 0.6 * torch.randn(depth, *lattice, dtype=DTYPE) / support.sum().sqrt()
            model.kernel.copy_((delta + noise) * support)
        if not odd:
            model.bias.normal_(0.0, 0.2)
        for act in model.activations:
            for parameter in act.parameters():
                parameter.normal_(0.0, 0.6)
    if standardize:
        model.standardize_to(1.5 * torch.randn(64, dim, dtype=DTYPE) + 0.3)
    return model


def translation(shape: tuple[int, ...], step: tuple[int, ...]) -> torch.Tensor:
    """Flat site index of site(i) + step (mod shape) for every flat index i (C order)."""
    grid = torch.arange(math.prod(shape)).reshape(shape)
    # rolled by -step, entry i holds the index of site(i) + step
    axes = tuple(range(len(shape)))
    return torch.roll(grid, shifts=tuple(-s for s in step), dims=axes).flatten()


def _translated(tensor: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """tensor[perm[i1], ..., perm[ik]]: the site indices moved by a translation on every leg."""
    for axis in range(tensor.dim()):
        tensor = tensor.index_select(axis, perm)
    return tensor


def _relative(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max()) / max(float(expected.abs().max()), 1.0)


def _site_distance(shape: tuple[int, ...]) -> torch.Tensor:
    """(N, N): the largest per-axis minimal-image lattice distance between sites i and j."""
    sites = torch.cartesian_prod(*(torch.arange(n) for n in shape)).reshape(-1, len(shape))
    lengths = torch.tensor(shape)
    offset = (sites[:, None, :] - sites[None, :, :]) % lengths
    return torch.minimum(offset, lengths - offset).max(dim=-1).values


def _spread(distance: torch.Tensor, order: int) -> torch.Tensor:
    """(N,)*order: the largest pairwise site distance among the indices of each entry."""
    dim = distance.shape[0]
    spread = torch.zeros((dim,) * order, dtype=distance.dtype)
    for a in range(order):
        for b in range(a + 1, order):
            shape = [1] * order
            shape[a], shape[b] = dim, dim
            spread = torch.maximum(spread, distance.reshape(shape))
    return spread


def test_forward_is_translation_equivariant():
    model = random_model((4, 3), 2, seed=1)
    x = torch.randn(20, 12, dtype=DTYPE)
    perm = translation((4, 3), (1, 2))
    z, logdet = model(x)
    z_moved, logdet_moved = model(x[:, perm])
    torch.testing.assert_close(z_moved, z[:, perm], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logdet_moved, logdet, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("lattice", "depth", "radius", "activation"),
    [((9,), 2, None, "cubic"), ((3, 3), 2, None, "cubic"), ((4, 3), 2, 1, "cubic"),
     ((8,), 3, 1, "quadratic")],
)
def test_extracted_action_is_translation_invariant(lattice, depth, radius, activation):
    model = random_model(lattice, depth, activation=activation, kernel_radius=radius, seed=2)
    extracted = extract_action(model, order=4)
    steps = [(1,), (3,)] if len(lattice) == 1 else [(1, 0), (0, 1), (2, 1)]
    for step in steps:
        perm = translation(lattice, step)
        assert sorted(perm.tolist()) == list(range(model.dim)) and perm.tolist() != list(
            range(model.dim))
        for k in (1, 2, 3, 4):
            tensor = extracted.coefficient(k)
            scale = max(float(tensor.abs().max()), 1.0)
            error = float((_translated(tensor, perm) - tensor).abs().max()) / scale
            assert error < 1e-12, f"order {k}, step {step}: {error:.1e}"
    assert float(extracted.coefficient(3).abs().max()) > 1e-3  # not trivially invariant


@pytest.mark.parametrize("lattice", [None, (6,), (2, 3)])
def test_odd_model_has_even_action_and_zero_odd_orders(lattice):
    model = random_model(lattice, 2, odd=True, kernel_radius=None, seed=3)
    assert float(model.bias.abs().max()) == 0.0 and not model.bias.requires_grad
    assert float(model.shift.abs().max()) == 0.0
    for act in model.activations:
        assert torch.equal(act.a, torch.zeros_like(act.a))
    x = torch.randn(50, model.dim, dtype=DTYPE)
    action, mirrored = model.action(x).detach(), model.action(-x).detach()
    assert _relative(mirrored, action) < 1e-12
    z, logdet = model(x)
    torch.testing.assert_close(model(-x)[0], -z, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(model(-x)[1], logdet, rtol=1e-13, atol=1e-13)
    extracted = extract_action(model, order=4)
    scale = max(float(extracted.coefficient(k).abs().max()) for k in (2, 4))
    assert scale > 1e-2
    for k in (1, 3):
        assert float(extracted.coefficient(k).abs().max()) <= 1e-12 * scale


# (extraction against nested autodiff for every kind of model: test_contracts_model.py)


@pytest.mark.parametrize(
    ("lattice", "depth"),
    [((9,), 1), ((9,), 2), ((13,), 1), ((13,), 2), ((5, 5), 1), ((6, 6), 1)],
)
def test_kernel_radius_bounds_the_range_of_every_coupling(lattice, depth):
    model = random_model(lattice, depth, kernel_radius=1, seed=5)
    reach = model.coupling_range
    assert reach == 2 * depth
    distance = _site_distance(lattice)
    extracted = extract_action(model, order=4)
    for k in (2, 4):
        tensor = extracted.coefficient(k)
        spread = _spread(distance, k)
        beyond = spread > reach
        scale = float(tensor.abs().max())
        if bool(beyond.any()):
            assert float(tensor[beyond].abs().max()) <= 1e-14 * scale, f"order {k}"
        # tight: couplings exactly at the range are there for a random model
        at_range = spread == min(reach, int(distance.max()))
        assert float(tensor[at_range].abs().max()) > 1e-8 * scale, f"order {k}"


def test_kernel_radius_model_has_zero_kernel_outside_the_radius():
    model = PolynomialINN(9, 2, lattice=(9,), kernel_radius=1)
    for layer in model.linear_maps():
        assert layer.kernel[2:-1].abs().max() == 0
        assert float(layer.kernel[0]) == pytest.approx(1.0, abs=0.05)
    model.kernel.data.normal_()  # entries outside the radius never reach the map
    for layer in model.linear_maps():
        assert layer.kernel[2:-1].abs().max() == 0
    assert PolynomialINN(9, 2, lattice=(9,)).coupling_range is None


def test_lattice_stages_hold_the_convolutions_with_shared_bias_and_coefficients():
    model = random_model((3, 4), 2, seed=7)
    stages = model.stages()
    assert [type(s) for s in stages] == [AffineStage] + [AffineStage, ActivationStage] * 2
    assert stages[0].linear.lattice_kernel((3, 4)) is not None  # one scale: a convolution
    for kernel, stage in zip(model.kernel, stages[1::2], strict=True):
        assert isinstance(stage.linear, LatticeConvolution)
        assert torch.equal(stage.linear.kernel, (kernel * model.kernel_support).detach())
        assert bool((stage.bias == stage.bias[0]).all()) and stage.bias.shape == (12,)
    for stage in stages[2::2]:
        coefficients = stage.activation.coefficients()
        assert coefficients.shape == (12, 4) and bool((coefficients == coefficients[0]).all())
    assert bool((model.shift == model.shift[0]).all())
    assert bool((model.scale == model.scale[0]).all())
    assert [layer.kernel.shape for layer in model.linear_maps()] == [(3, 4)] * 2
    assert not hasattr(model, "weight")  # a lattice model has kernels, no (N, N) weights
    assert model.dtype == DTYPE and model.device.type == "cpu"
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters == 2 * (12 + 1 + 2)  # kernel, one bias, (r, t) per layer


def test_large_lattice_forward_by_fft_agrees_with_the_stages():
    model = random_model((32, 32), 1, kernel_radius=2, seed=8)  # 1024 sites: the FFT route
    x = torch.randn(6, 1024, dtype=DTYPE)
    u, expected_logdet = x, torch.zeros(6, dtype=DTYPE)
    for stage in model.stages():
        if isinstance(stage, AffineStage):
            u = u @ stage.linear.matrix().T + stage.bias
            expected_logdet += torch.linalg.slogdet(stage.linear.matrix()).logabsdet
        else:
            expected_logdet += stage.activation.log_derivative(u).sum(dim=1)
            u = stage.activation(u)
    z, logdet = model(x)
    torch.testing.assert_close(z, u.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logdet, expected_logdet.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.inverse(z), x, rtol=1e-9, atol=1e-9)


def test_standardisation_is_pooled_on_a_lattice_and_has_no_shift_when_odd():
    data = torch.randn(500, 6, dtype=DTYPE) * torch.arange(1, 7, dtype=DTYPE) + 2.0
    lattice = PolynomialINN(6, 1, lattice=(6,)).to(DTYPE)
    lattice.standardize_to(data)
    torch.testing.assert_close(lattice.shift, data.mean().expand(6))
    torch.testing.assert_close(lattice.scale, data.flatten().std().expand(6))
    odd = PolynomialINN(6, 1, odd=True).to(DTYPE)
    odd.standardize_to(data)
    assert float(odd.shift.abs().max()) == 0.0
    torch.testing.assert_close(odd.scale, data.square().mean(0).sqrt())


def test_bad_options_get_clear_errors():
    with pytest.raises(ValueError, match=r"lattice \(3, 4\) has 12 sites but dim is 10"):
        PolynomialINN(10, 1, lattice=(3, 4))
    with pytest.raises(ValueError, match="lattice sides must be >= 1"):
        PolynomialINN(4, 1, lattice=(-2, -2))
    with pytest.raises(ValueError, match="lattice sides must be >= 1"):
        PolynomialINN(1, 1, lattice=(0,))
    with pytest.raises(TypeError, match="lattice sides must be ints"):
        PolynomialINN(4, 1, lattice=(2.0, 2))
    with pytest.raises(TypeError, match="lattice must be None or a tuple"):
        PolynomialINN(4, 1, lattice=4)
    with pytest.raises(ValueError, match="kernel_radius must be >= 0"):
        PolynomialINN(9, 1, lattice=(9,), kernel_radius=-1)
    with pytest.raises(ValueError, match=r"too large for the lattice \(9, 4\).*r <= 1"):
        PolynomialINN(36, 1, lattice=(9, 4), kernel_radius=2)
    with pytest.raises(ValueError, match="kernel_radius needs a lattice"):
        PolynomialINN(9, 1, kernel_radius=1)
    with pytest.raises(TypeError, match="kernel_radius must be an int"):
        PolynomialINN(9, 1, lattice=(9,), kernel_radius=1.5)
    with pytest.raises(ValueError, match="odd=True needs an odd activation"):
        PolynomialINN(9, 1, "quadratic", odd=True)
    with pytest.raises(TypeError, match="odd must be a bool"):
        PolynomialINN(9, 1, odd=1)
