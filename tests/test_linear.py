"""Tests of `inntheory.model.linear`: dense and lattice-convolution maps against dense linear
algebra."""

from __future__ import annotations

import pytest
import torch

from inntheory.model.linear import DenseLinear, LatticeConvolution, kernel_mask

DTYPE = torch.float64
SHAPES = [(7,), (8,), (4, 6), (5, 5)]


def _kernel(shape: tuple[int, ...], radius: int | None, seed: int) -> torch.Tensor:
    """A random kernel near a delta (so W is well conditioned), masked to `radius`."""
    generator = torch.Generator().manual_seed(seed)
    kernel = 0.4 * torch.randn(shape, generator=generator, dtype=DTYPE)
    kernel[(0,) * len(shape)] += 1.5
    return kernel * kernel_mask(shape, radius)


def _offset(a: int, b: int, length: int) -> int:
    return (a - b) % length


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("radius", [None, 1])
def test_circulant_logdet_and_solve_equal_dense_linear_algebra(shape, radius):
    layer = LatticeConvolution(_kernel(shape, radius, seed=len(shape) * 10 + (radius or 0)))
    matrix = layer.matrix()
    dim = matrix.shape[0]
    assert matrix.shape == (dim, dim) and dim == layer.dim
    expected = torch.linalg.slogdet(matrix).logabsdet
    assert abs(float(layer.logabsdet() - expected)) < 1e-12 * max(1.0, abs(float(expected)))
    assert layer.logabsdet().dtype == DTYPE and layer.logabsdet().dim() == 0
    y = torch.randn(11, dim, dtype=DTYPE)
    torch.testing.assert_close(layer.solve(y), torch.linalg.solve(matrix, y.T).T,
                               rtol=1e-12, atol=1e-12)
    u = torch.randn(11, dim, dtype=DTYPE)
    torch.testing.assert_close(layer(u), u @ matrix.T, rtol=1e-12, atol=1e-12)
    fourier = layer._fourier(u, lambda spectrum, u_hat: spectrum * u_hat)
    torch.testing.assert_close(fourier, u @ matrix.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_matrix_is_the_circulant_of_the_kernel(shape):
    kernel = _kernel(shape, None, seed=3)
    matrix = LatticeConvolution(kernel).matrix()
    assert torch.equal(matrix[:, 0], kernel.flatten())
    sites = list(torch.cartesian_prod(*(torch.arange(n) for n in shape)).reshape(-1, len(shape)))
    for i, site_i in enumerate(sites):
        for j, site_j in enumerate(sites):
            offset = tuple(_offset(int(a), int(b), n)
                           for a, b, n in zip(site_i, site_j, shape, strict=True))
            assert matrix[i, j] == kernel[offset]


def test_kernel_mask_minimal_image_and_bounds():
    assert kernel_mask((5,), 1).tolist() == [True, True, False, False, True]
    assert kernel_mask((6,), 2).tolist() == [True, True, True, False, True, True]
    mask = kernel_mask((5, 4), 1)
    assert mask.shape == (5, 4) and int(mask.sum()) == 9
    assert bool(kernel_mask((4, 4), None).all())
    assert kernel_mask((3,), 0).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="2 r \\+ 1 <= L"):
        kernel_mask((5, 4), 2)


def test_gradients_of_fft_logdet_solve_and_forward_match_dense():
    kernel = _kernel((3, 4), None, seed=7).requires_grad_(True)
    y = torch.randn(5, 12, dtype=DTYPE)
    layer = LatticeConvolution(kernel)
    forward = layer._fourier(y, lambda spectrum, y_hat: spectrum * y_hat)
    (layer.logabsdet() + layer.solve(y).square().sum() + forward.pow(3).sum()).backward()
    fast = kernel.grad.clone()
    kernel.grad = None
    matrix = layer.matrix()
    dense = torch.linalg.solve(matrix, y.T).T.square().sum() + (y @ matrix.T).pow(3).sum()
    (torch.linalg.slogdet(matrix).logabsdet + dense).backward()
    torch.testing.assert_close(fast, kernel.grad, rtol=1e-10, atol=1e-12)


def test_singular_kernel_has_infinite_negative_logdet():
    assert float(LatticeConvolution(torch.ones(4, dtype=DTYPE)).logabsdet()) == float("-inf")


def test_dense_linear_contract():
    weight = torch.eye(3, dtype=DTYPE) + 0.3 * torch.randn(3, 3, dtype=DTYPE)
    layer = DenseLinear(weight)
    u = torch.randn(4, 3, dtype=DTYPE)
    torch.testing.assert_close(layer(u), u @ weight.T)
    torch.testing.assert_close(layer.solve(layer(u)), u)
    torch.testing.assert_close(layer.logabsdet(), torch.linalg.slogdet(weight).logabsdet)
    assert layer.matrix() is weight
    with pytest.raises(ValueError, match="square"):
        DenseLinear(torch.zeros(2, 3))
