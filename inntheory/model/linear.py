"""The linear maps of the INN's layers: one small class per kind, one contract (`LinearMap`).

Each wraps the tensor that parametrises an invertible W: R^N -> R^N, holds no state of its
own and is differentiable in that tensor: `DenseLinear(weight)`, `Scaling(diagonal)` and
`LatticeConvolution(kernel)`, a periodic convolution diagonalised by the DFT.
`kernel_mask(shape, radius)` gives the offsets a kernel of finite radius may use.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch

__all__ = ["DenseLinear", "LatticeConvolution", "LinearMap", "Scaling", "kernel_mask"]

# LatticeConvolution.forward multiplies by matrix() below _FFT_MIN_SITES sites (faster on
# CPUs) and uses the FFT from there on and for single rows: the per-sample gradients of
# torch.func.vmap are single rows, where the product would hold an N x N gradient per row.
_FFT_MIN_SITES = 1024
_MATMUL_MIN_ROWS = 2


class LinearMap:
    """Base class: y = W u on batches of row vectors (n, N); subclasses define `matrix`,
    `logabsdet` and `solve`."""

    dim: int

    def matrix(self) -> torch.Tensor:
        """W as a dense (N, N) tensor."""
        raise NotImplementedError

    def logabsdet(self) -> torch.Tensor:
        """ln|det W| as a real 0-d tensor (-inf when W is singular)."""
        raise NotImplementedError

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """y = u W^T: (n, N) -> (n, N)."""
        return u @ self.matrix().T

    def solve(self, y: torch.Tensor) -> torch.Tensor:
        """u with u W^T = y: (n, N) -> (n, N)."""
        raise NotImplementedError

    def lattice_kernel(self, shape: tuple[int, ...]) -> torch.Tensor | None:
        """The kernel w (`shape`) with W[i, j] = w[(site(i) - site(j)) mod shape] (sites in C
        order), or None when W is not a periodic convolution on that lattice."""
        return None

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return self.forward(u)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class DenseLinear(LinearMap):
    """A dense invertible matrix W = `weight`, (N, N)."""

    def __init__(self, weight: torch.Tensor) -> None:
        if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
            raise ValueError(f"weight must be a square (N, N) matrix, got {tuple(weight.shape)}")
        self.weight = weight
        self.dim = weight.shape[0]

    def matrix(self) -> torch.Tensor:
        return self.weight

    def logabsdet(self) -> torch.Tensor:
        return torch.linalg.slogdet(self.weight).logabsdet

    def solve(self, y: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(self.weight, y.T).T


class Scaling(LinearMap):
    """A diagonal map W = diag(diagonal): y_i = diagonal_i u_i; `diagonal` (N,), no zero entry."""

    def __init__(self, diagonal: torch.Tensor) -> None:
        if diagonal.dim() != 1 or diagonal.numel() < 1:
            raise ValueError(f"diagonal must be a vector (N,), got {tuple(diagonal.shape)}")
        self.diagonal = diagonal
        self.dim = diagonal.shape[0]

    def matrix(self) -> torch.Tensor:
        return torch.diag(self.diagonal)

    def logabsdet(self) -> torch.Tensor:
        return torch.log(self.diagonal.abs()).sum()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u * self.diagonal

    def solve(self, y: torch.Tensor) -> torch.Tensor:
        return y / self.diagonal

    def lattice_kernel(self, shape: tuple[int, ...]) -> torch.Tensor | None:
        """The on-site kernel (diagonal_0 at offset 0) when every entry is equal, else None."""
        if math.prod(shape) != self.dim or bool((self.diagonal != self.diagonal[0]).any()):
            return None
        kernel = self.diagonal.new_zeros(shape)
        kernel[(0,) * len(shape)] = self.diagonal[0]
        return kernel


class LatticeConvolution(LinearMap):
    """A periodic convolution on the lattice of shape ``kernel.shape`` (any number of axes):
    W[i, j] = kernel[(site(i) - site(j)) mod shape], sites in C order, so
    ``matrix()[:, 0] == kernel.flatten()``. The eigenvalues of W are ``fftn(kernel)``:
    log|det W| and `solve` come from them, and `forward` uses the FFT from 1024 sites on.
    """

    def __init__(self, kernel: torch.Tensor) -> None:
        if kernel.dim() < 1 or kernel.numel() < 1:
            raise ValueError(f"kernel must have at least one axis, got {tuple(kernel.shape)}")
        self.kernel = kernel
        self.shape = tuple(kernel.shape)
        self.dim = kernel.numel()
        self._axes = tuple(range(-len(self.shape), 0))

    def matrix(self) -> torch.Tensor:
        return self.kernel.flatten()[_circulant_index(self.shape, self.kernel.device)]

    def logabsdet(self) -> torch.Tensor:
        return torch.log(torch.fft.fftn(self.kernel).abs()).sum()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.dim < _FFT_MIN_SITES and u.shape[0] >= _MATMUL_MIN_ROWS:
            return u @ self.matrix().T
        return self._fourier(u, lambda spectrum, u_hat: spectrum * u_hat)

    def solve(self, y: torch.Tensor) -> torch.Tensor:
        return self._fourier(y, lambda spectrum, y_hat: y_hat / spectrum)

    def lattice_kernel(self, shape: tuple[int, ...]) -> torch.Tensor | None:
        """The kernel itself on its own lattice, None on any other."""
        return self.kernel if tuple(shape) == self.shape else None

    def _fourier(self, v: torch.Tensor, combine) -> torch.Tensor:
        """irfftn(combine(rfftn(kernel), rfftn(v))) on the lattice axes: (n, N) -> (n, N)."""
        spectrum = torch.fft.rfftn(self.kernel)
        v_hat = torch.fft.rfftn(v.reshape(-1, *self.shape), dim=self._axes)
        out = torch.fft.irfftn(combine(spectrum, v_hat), s=self.shape, dim=self._axes)
        return out.reshape(v.shape)


def kernel_mask(shape: tuple[int, ...], radius: int | None) -> torch.Tensor:
    """(shape) bool: the kernel offsets whose minimal image (of d, d - L the one of smaller
    modulus) is within `radius` on every axis; `radius` an int with 2 radius + 1 <= L on every
    axis, or None (every offset).

    Example:
        >>> kernel_mask((5,), 1).tolist()
        [True, True, False, False, True]
    """
    if radius is None:
        return torch.ones(shape, dtype=torch.bool)
    if any(2 * radius + 1 > length for length in shape):
        raise ValueError(f"kernel radius {radius} needs 2 r + 1 <= L on every axis of {shape}")
    axes = [_minimal_image(torch.arange(length), length).abs() <= radius for length in shape]
    return functools.reduce(lambda mask, allowed: mask[..., None] & allowed, axes)


def _minimal_image(offset: torch.Tensor, length: int) -> torch.Tensor:
    """Offsets mod `length` mapped into (-length / 2, length / 2]."""
    offset = offset % length
    return torch.where(2 * offset > length, offset - length, offset)


@functools.lru_cache(maxsize=16)
def _circulant_index(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """(N, N) int64 on `device`: the flat kernel index of (site(i) - site(j)) mod shape."""
    flat = torch.arange(math.prod(shape)).reshape(shape)
    axes = tuple(range(len(shape)))
    columns = [flat.roll(site, axes).flatten() for site in itertools.product(*map(range, shape))]
    return torch.stack(columns, dim=1).to(device)
