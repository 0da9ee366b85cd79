"""Tests of `inntheory.model.linear` beyond the contract (tests/test_contracts_model.py): the
circulant structure, kernel masks, the lattice kernel of each map, errors."""

from __future__ import annotations

import pytest
import torch

from inntheory.model.linear import DenseLinear, LatticeConvolution, Scaling, kernel_mask

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
def test_fourier_route_equals_the_matrix_product(shape, radius):
    # the contract tests (test_contracts_model.py) check forward, solve and log|det| of every
    # map; this checks the FFT route of the forward map on the small lattices too
    layer = LatticeConvolution(_kernel(shape, radius, seed=len(shape) * 10 + (radius or 0)))
    u = torch.randn(11, layer.dim, dtype=DTYPE)
    fourier = layer._fourier(u, lambda spectrum, u_hat: spectrum * u_hat)
    torch.testing.assert_close(fourier, u @ layer.matrix().T, rtol=1e-12, atol=1e-12)


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


def test_singular_kernel_has_infinite_negative_logdet():
    assert float(LatticeConvolution(torch.ones(4, dtype=DTYPE)).logabsdet()) == float("-inf")


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="square"):
        DenseLinear(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="vector"):
        Scaling(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="at least one axis"):
        LatticeConvolution(torch.tensor(1.0))


def test_only_convolutions_have_a_lattice_kernel():
    weight = torch.eye(4, dtype=DTYPE)
    assert DenseLinear(weight).lattice_kernel((4,)) is None  # even where W is circulant
    assert Scaling(torch.tensor([1.0, 2.0])).lattice_kernel((2,)) is None
    kernel = Scaling(torch.full((4,), 3.0)).lattice_kernel((2, 2))
    assert kernel.tolist() == [[3.0, 0.0], [0.0, 0.0]]
    convolution = LatticeConvolution(_kernel((2, 3), None, seed=1))
    assert convolution.lattice_kernel((2, 3)) is convolution.kernel
    assert convolution.lattice_kernel((3, 2)) is None
