"""The lattice backend of the pull-back: translation-invariant actions in compressed form.

For periodic convolutions (W[i, j] = w[i - j], read by `LinearMap.lattice_kernel(shape)`),
site-shared biases and activations and a uniform point, every action of the pull-back is
translation invariant and carried as its couplings C^(k) relative to site 0
(`inntheory.actions.lattice`); nothing of size N^k is formed. With R = `model.coupling_range`
(checked against the kernels) the pull-back runs exactly on the torus window = min(L, 2R + 1)
per axis; A^(0) is still that of the big lattice. float64.

- affine step, in Fourier space over the k - 1 relative legs (w^(q) = sum_r w[r] e^(-i q.r)):
  C'^(k)^(q2..qk) = C^(k)^(q2..qk) w^(q2 + .. + qk) prod_m conj(w^(q_m)), constant
  -sum_q ln|w^(q)| on the big lattice; an on-site kernel s scales by s^k.
- activation step: each dressed vertex is the vertex times a number, written onto a diagonal
  view of C'^(n) with the block of output position 0 at offset 0; constant -N ln phi'(y*).
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import numpy as np
import torch

from ..actions.lattice import LatticeAction, lattice_window
from .dense import geometric_sum
from .diagrams import Diagram
from .pullback import LIVE_COPIES, pull_back

__all__ = ["LatticeBackend", "compressed_bytes", "extract_lattice_action"]

_FFT_COPIES = 4  # complex top-order tensors alive in one affine step
_FFT_MAX_AXES = 6  # most axes one torch.fft call transforms (MKL refuses more than 7)


def compressed_bytes(window: tuple[int, ...], order: int) -> float:
    """Bytes of the compressed pull-back on `window` (LIVE_COPIES actions' couplings and the
    FFT work of the top order) as a float, inf beyond the float range."""
    size = math.prod(window)
    real = 8.0 * geometric_sum(size, order - 1)
    top = math.inf if (order - 1) * math.log(size) > 700 else float(size) ** (order - 1)
    return LIVE_COPIES * real + _FFT_COPIES * 16 * top + 8 * top


def extract_lattice_action(
    model: Any, stages: list[Any], order: int, x0: torch.Tensor, max_bytes: float
) -> LatticeAction:
    """The float64 `LatticeAction` of a lattice `model` (its `stages`) at the uniform point x0
    (N,) up to order K, on the window min(L, 2R + 1), R = `model.coupling_range`; ValueError
    for what is not translation invariant or outside the domain, MemoryError (before
    allocating) beyond `max_bytes`."""
    shape = tuple(int(n) for n in model.lattice)
    if bool((x0 != x0[0]).any()):
        raise ValueError("the compressed (translation-invariant) action needs a uniform "
                         "expansion point (all entries equal); this one ranges over "
                         f"[{float(x0.min()):.4g}, {float(x0.max()):.4g}]: extract_action gives "
                         "the dense action there")
    radius = model.coupling_range
    window = lattice_window(shape, radius)
    needed = compressed_bytes(window, order)
    if needed > max_bytes:
        raise MemoryError(f"the compressed pull-back of order {order} on window {window} of "
                          f"lattice {shape} needs about {needed / 2**30:.3g} GiB (couplings of "
                          f"{math.prod(window)}^{order - 1} entries), more than the limit "
                          f"{max_bytes / 2**30:.3g} GiB; lower the order, use local kernels "
                          "(kernel_radius) or raise max_bytes")
    backend = LatticeBackend(shape, window, radius, x0.device)
    data = pull_back(stages, x0, order, backend, keep={0})[0]
    size = math.prod(window)
    result = {
        k: (data.coefficients[k] if k in data.coefficients
            else x0.new_zeros((size,) * (k - 1))).reshape(window * (k - 1))
        for k in range(1, order + 1)
    }
    metadata = {
        "source": "inntheory.extract_action", "compressed": True, "order": order,
        "point": data.point, "activation": model.activation_name, "depth": model.depth,
        "standardized": model.is_standardized, "lattice": list(shape),
        "coupling_range": radius, "window": list(window), "label": "data", "stage": 0,
    }
    return LatticeAction(result, shape, data.point, data.constant, metadata, window=window,
                         check_symmetry=False)


class LatticeBackend:
    """Tensor operations of the pull-back on compressed couplings (M,)*(k-1), M the window's
    number of sites (see `pullback.pull_back`); the point is one number (uniform)."""

    def __init__(self, shape: tuple[int, ...], window: tuple[int, ...], radius: int | None,
                 device: torch.device) -> None:
        self.shape, self.window, self.radius, self.device = shape, window, radius, device
        self.dim, self.size = math.prod(shape), math.prod(window)
        self.reach = 0

    def point(self, x0: torch.Tensor) -> float:
        return float(x0[0])

    def _full(self, u: float) -> torch.Tensor:
        return torch.full((self.dim,), u, dtype=torch.float64, device=self.device)

    def affine(self, stage: Any, u: float, number: int) -> tuple[Any, float, float]:
        kernel = stage.linear.lattice_kernel(self.shape)
        if kernel is None:
            raise ValueError(f"stage {number} (affine): its {type(stage.linear).__name__} is not "
                             f"a periodic convolution on the lattice {self.shape}; the compressed "
                             "action needs lattice-equivariant maps")
        kernel = kernel.detach().to(torch.float64).to(self.device)
        # a convolution maps the uniform vector u to u * sum(kernel) on every site
        image = self._full(u) * float(kernel.sum()) + stage.bias.detach().to(kernel)
        spread = float(image.max() - image.min())
        if spread > 1e-12 * max(1.0, float(image.abs().max())):
            raise ValueError(f"stage {number} (affine): the bias differs between sites (spread "
                             f"{spread:.3g}); the compressed action needs site-shared biases")
        stage_reach, small = _fold(kernel, self.window)
        self.reach += 2 * stage_reach
        logabsdet = float(torch.log(torch.fft.fftn(kernel).abs()).sum())
        return small, logabsdet, float(image.mean())

    def activation(self, stage: Any, u: float, number: int) -> tuple[torch.Tensor, float]:
        taylor = stage.activation.taylor(self._full(u)).detach().to(torch.float64)
        spread = float((taylor - taylor[0]).abs().max())
        if spread > 1e-12 * max(1.0, float(taylor.abs().max())):
            raise ValueError(f"stage {number} (activation): the coefficients differ between "
                             "sites; the compressed action needs site-shared activations")
        row = taylor[:1]
        if float(row[0, 1]) <= 0:
            raise ValueError("the point lies outside the domain of the activation of stage "
                             f"{number}: phi'(y*) = {float(row[0, 1]):.4g} <= 0 at y* = {u:.4g}")
        return row, float(row[0, 0])

    def latent(self, z: float, order: int) -> tuple[dict[int, torch.Tensor], float]:
        cut = any(w < n for w, n in zip(self.window, self.shape, strict=True))
        if self.radius is not None and cut and self.reach > self.radius:
            raise ValueError(f"model.coupling_range = {self.radius} but its kernels reach 2 * "
                             f"(sum of radii) = {self.reach} lattice steps: the range cut would "
                             "not be exact")
        couplings = {1: torch.tensor(z, dtype=torch.float64, device=self.device)}
        if order >= 2:
            couplings[2] = torch.zeros(self.size, dtype=torch.float64, device=self.device)
            couplings[2][0] = 1.0
        return couplings, self.dim * (0.5 * z * z + 0.5 * math.log(2 * math.pi))

    def pull_affine(self, above: dict[int, torch.Tensor], kernel: torch.Tensor
                    ) -> dict[int, torch.Tensor]:
        """Every C^(k) pulled back through e' = W e (W the circulant of `kernel` on the window)."""
        window = tuple(kernel.shape)
        ndim, size, device = len(window), math.prod(window), kernel.device
        flat = kernel.reshape(-1)
        onsite = bool(torch.count_nonzero(flat[1:]) == 0)
        spectrum = torch.fft.fftn(kernel)
        result = {}
        for k, tensor in above.items():
            if onsite:  # the standardisation (or any on-site scaling): s^k
                result[k] = tensor * float(flat[0]) ** k
                continue
            if k == 1:
                result[k] = tensor * float(kernel.sum())
                continue
            legs = k - 1
            dims = tuple(range(legs * ndim))
            transformed = _fftn(tensor.reshape(window * legs), dims, torch.fft.fftn)
            transformed = transformed * spectrum.reshape(-1)[_total_momentum(window, legs, device)]
            conjugate = spectrum.conj()
            for leg in range(legs):
                view = [1] * (legs * ndim)
                view[leg * ndim : (leg + 1) * ndim] = window
                transformed = transformed * conjugate.reshape(view)
            result[k] = _fftn(transformed, dims, torch.fft.ifftn).real.reshape((size,) * legs)
            del transformed
        return result

    def dress(self, vertex: torch.Tensor, factors: list[torch.Tensor]) -> torch.Tensor:
        return vertex * math.prod(float(factor[0]) for factor in factors)

    def zeros(self, n: int) -> torch.Tensor:
        return torch.zeros((self.size,) * (n - 1), dtype=torch.float64, device=self.device)

    def place(self, target: torch.Tensor, dressed: torch.Tensor, diagram: Diagram) -> None:
        """As `DenseBackend.place`, the block of output position 0 rooted at offset 0."""
        n, size = diagram.order, self.size
        strides = [size ** (n - 1 - position) for position in range(1, n)]
        factor = float(diagram.weight) / len(diagram.placements)
        for blocks in diagram.placements:
            rest = [block for block in blocks if 0 not in block]
            view = target.as_strided(
                (size,) * len(rest), [sum(strides[p - 1] for p in block) for block in rest]
            )
            view.add_(dressed.reshape(view.shape), alpha=factor)

    def total(self, values: torch.Tensor) -> float:
        return self.dim * float(values[0])

    def constant(self, latent: float, terms: list[float]) -> float:
        """-terms[0] - ... - terms[-1] + latent, from the data side."""
        return functools.reduce(operator.sub, terms, 0.0) + latent


def _fftn(tensor: torch.Tensor, dims: tuple[int, ...], transform) -> torch.Tensor:
    """`transform` (fftn or ifftn) over `dims`, in groups of at most _FFT_MAX_AXES axes."""
    for start in range(0, len(dims), _FFT_MAX_AXES):
        tensor = transform(tensor, dim=dims[start : start + _FFT_MAX_AXES])
    return tensor


def _total_momentum(window: tuple[int, ...], legs: int, device: torch.device) -> torch.Tensor:
    """(window * legs) int64: the flat window index of the total momentum of `legs` legs."""
    ndim = len(window)
    total = torch.zeros(window * legs, dtype=torch.int64, device=device)
    for axis, w in enumerate(window):
        momentum = torch.zeros((1,) * (legs * ndim), dtype=torch.int64, device=device)
        for leg in range(legs):
            view = [1] * (legs * ndim)
            view[leg * ndim + axis] = w
            momentum = momentum + torch.arange(w, device=device).reshape(view)
        total = total + (momentum % w) * math.prod(window[axis + 1 :])
    return total


def _fold(kernel: torch.Tensor, window: tuple[int, ...]) -> tuple[int, torch.Tensor]:
    """(largest |minimal-image offset| of a non-zero entry along the cut axes, the kernel
    folded onto the window torus without the entries outside it: the caller checks the reach)."""
    lengths, sizes = np.array(kernel.shape), np.array(window)
    nonzero = np.argwhere(kernel.detach().cpu().numpy() != 0)
    minimal = np.where(nonzero <= lengths // 2, nonzero, nonzero - lengths)
    cut = sizes < lengths
    reach = int(np.abs(minimal[:, cut]).max()) if len(minimal) and cut.any() else 0
    inside = (~cut | (np.abs(minimal) <= sizes // 2)).all(axis=1)
    small = kernel.new_zeros(window)  # distinct offsets inside the window: distinct slots
    target, source = (torch.from_numpy(a[inside]).T.to(kernel.device)
                      for a in (minimal % sizes, nonzero))
    small[tuple(target)] = kernel[tuple(source)]
    return reach, small
