"""The linear maps of the INN's layers: one small class per kind, one contract.

Every member wraps the tensor that parametrises an invertible W: R^N -> R^N (it holds no
state of its own; all methods are differentiable in that tensor) and provides `matrix()`
(dense (N, N)), `logabsdet()` (0-d), `forward(u)` (y = u W^T, u: (n, N)), `solve(y)` and
`lattice_kernel(shape)` (the kernel w with W[i, j] = w[(site(i) - site(j)) mod shape] when W
is a periodic convolution on that lattice, else None).

Members: `DenseLinear(weight)` (any invertible matrix); `Scaling(diagonal)` (a convolution
when every entry is equal); `LatticeConvolution(kernel)` on a lattice of shape
``kernel.shape`` (sites in C order), diagonalised by the DFT: eigenvalues ``fftn(kernel)``,
ln|det W| = sum ln|fftn(kernel)|, the solve divides by them in Fourier space.
`kernel_mask(shape, radius)` gives the offsets a kernel of finite radius may use.
"""

from __future__ import annotations

import functools
import math

import torch

__all__ = ["DenseLinear", "LatticeConvolution", "LinearMap", "Scaling", "kernel_mask"]

_FFT_MIN_SITES = 1024
_MATMUL_MIN_ROWS = 2
"""LatticeConvolution.forward multiplies batches of at least _MATMUL_MIN_ROWS rows by matrix()
below _FFT_MIN_SITES sites (the faster one on CPUs; benchmarks/lattice_layers.py), and uses
the FFT otherwise: from that size on, and for single rows, which include the per-sample
gradients of `torch.func.vmap`, where the product would hold an N x N gradient per row."""


class LinearMap:
    """Base class of the linear maps: y = W u on batches of row vectors (n, N).

    Subclasses define `matrix`, `logabsdet` and `solve`; `forward` defaults to a matmul and
    `lattice_kernel` to None (not a convolution).
    """

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
        """The kernel w (`shape`) with W[i, j] = w[(site(i) - site(j)) mod shape], or None
        when W is not a periodic convolution on that lattice."""
        return None

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return self.forward(u)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class DenseLinear(LinearMap):
    """A dense invertible matrix.

    Arguments:
        weight: W, (N, N).

    Example:
        >>> layer = DenseLinear(torch.tensor([[2.0, 1.0], [0.0, 3.0]]))
        >>> float(layer.logabsdet().exp())
        6.0
    """

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
    """A diagonal map W = diag(diagonal): y_i = diagonal_i u_i.

    Arguments:
        diagonal: (N,), no zero entry for an invertible map.

    Example:
        >>> layer = Scaling(torch.tensor([2.0, 0.5]))
        >>> layer(torch.ones(1, 2)).tolist(), float(layer.logabsdet())
        ([[2.0, 0.5]], 0.0)
    """

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
    """A periodic convolution (circulant matrix) on a lattice, parametrised by its kernel.

    W[i, j] = kernel[(site(i) - site(j)) mod shape] with sites flattened in C (row-major)
    order, so ``matrix()[:, 0] == kernel.flatten()``. log|det W| and `solve` come from
    ``torch.fft.fftn(kernel)``, the eigenvalues of W. `forward` multiplies by `matrix()`
    for lattices of fewer than 1024 sites (faster there on CPUs) and uses the FFT
    (``rfftn``/``irfftn``) from 1024 sites on.

    Arguments:
        kernel: the kernel, shape = the lattice shape (any number of axes, each >= 1).

    Example:
        >>> layer = LatticeConvolution(torch.tensor([1.0, 0.5, 0.0, 0.0]))
        >>> layer.matrix()[:, 0].tolist()
        [1.0, 0.5, 0.0, 0.0]
        >>> round(float(layer.logabsdet().exp()), 6)  # det = 1 - (-0.5)^4
        0.9375
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

    def eigenvalues(self) -> torch.Tensor:
        """The eigenvalues of W, ``fftn(kernel)``: complex, the lattice's shape."""
        return torch.fft.fftn(self.kernel)

    def logabsdet(self) -> torch.Tensor:
        return torch.log(self.eigenvalues().abs()).sum()

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
    """Boolean mask of the kernel offsets with |minimal-image offset| <= radius on every axis.

    The minimal image of an offset d on an axis of length L is the one of d, d - L with the
    smaller modulus. None allows every offset.

    Arguments:
        shape: the lattice shape.
        radius: an int >= 0 with 2 radius + 1 <= L on every axis, or None.

    Returns:
        (shape) bool tensor, True where the kernel may be non-zero.

    Example:
        >>> kernel_mask((5,), 1).tolist()
        [True, True, False, False, True]
    """
    if radius is None:
        return torch.ones(shape, dtype=torch.bool)
    if any(2 * radius + 1 > length for length in shape):
        raise ValueError(f"kernel radius {radius} needs 2 r + 1 <= L on every axis of {shape}")
    axes = [_minimal_image(torch.arange(length), length).abs() <= radius for length in shape]
    mask = axes[0]
    for allowed in axes[1:]:
        mask = mask[..., None] & allowed
    return mask


def _minimal_image(offset: torch.Tensor, length: int) -> torch.Tensor:
    """Offsets mod `length` mapped into (-length / 2, length / 2]."""
    offset = offset % length
    return torch.where(2 * offset > length, offset - length, offset)


@functools.lru_cache(maxsize=16)
def _circulant_index(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """(N, N) int64 on `device`: the flat kernel index of (site(i) - site(j)) mod shape."""
    grids = torch.meshgrid(*(torch.arange(length) for length in shape), indexing="ij")
    sites = torch.stack([grid.flatten() for grid in grids], dim=1)
    lengths = torch.tensor(shape)
    offsets = (sites[:, None, :] - sites[None, :, :]) % lengths
    strides = torch.tensor([math.prod(shape[k + 1:]) for k in range(len(shape))])
    return (offsets * strides).sum(dim=-1).to(device)
