"""The pull-back of a lattice-equivariant `PolynomialINN` in compressed (translation-tied) form.

For a model whose linear maps are periodic convolutions (circulant W[i, j] = w[i - j]) with
site-shared biases and activation coefficients, and a uniform expansion point, every action
S_l of the pull-back (METHOD.md, "Layer-to-layer rules") is translation invariant, so it is
carried as its couplings relative to site 0, C^(k)[o2..ok] = A^(k)[0, o2..ok]
(`inntheory.actions.lattice`). Nothing of size N^k is formed:

- affine stage e' = W e, in Fourier space over the k - 1 relative legs (torch.fft, convention
  w^(q) = sum_r w[r] exp(-i q.r)):

      C'^(k)^(q2..qk) = C^(k)^(q2..qk) * w^(q2 + .. + qk) * prod_m conj(w^(q_m)),

  (the root leg carries the total momentum), constant -sum_q ln|w^(q)| on the big lattice;
  a kernel that is a single on-site number s (the standardisation) is the scaling s^k.
- activation stage: the diagrams of `inntheory.extraction.diagrams.catalogue` with uniform Taylor
  coefficients, so each dressed vertex is the vertex times a number; a placement writes it
  onto a diagonal view of C'^(n) in which the block holding output position 0 sits at
  offset 0 (the vertex is symmetric, so it can be rooted at that leg); constant
  -N ln phi'(y*).

With `model.coupling_range` = R (every index of a non-zero coupling within R steps of the
others) the whole pull-back runs on the torus of shape window = min(L, 2R + 1) per axis: the
torus computation is the periodisation of the infinite-lattice one and no coupling reaches
far enough to wrap, so it is exact; the constant A^(0) is still computed on the big lattice.
The kernels are checked to honour R (2 * sum of their radii <= R).

All arithmetic is float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..actions.lattice import LatticeAction, lattice_window
from .diagrams import activation_degree, catalogue

__all__ = ["compressed_bytes", "extract_lattice_action"]

_LIVE_COPIES = 4
"""Real coupling tensors of the top order alive at once (A, B, a dressed vertex, a view)."""
_FFT_COPIES = 4
"""Complex tensors of the top order alive in one affine step (spectrum, phase, product)."""


def compressed_bytes(window: tuple[int, ...], order: int, dim: int, stages: int) -> int:
    """Memory estimate of the compressed pull-back: coupling tensors, FFT work, and the
    dense (N, N) matrices of the `stages` affine stages that `model.stages()` hands over."""
    size = math.prod(window)
    real = 8 * sum(size ** (k - 1) for k in range(1, order + 1))
    top = size ** (order - 1)
    return _LIVE_COPIES * real + _FFT_COPIES * 16 * top + 8 * top + 8 * stages * dim * dim


def extract_lattice_action(
    model: Any, order: int, x0: torch.Tensor, max_bytes: int
) -> LatticeAction:
    """The compressed action of a lattice model at a uniform point (see the module docstring).

    Arguments:
        model: a `PolynomialINN` with `model.lattice` set (a tuple, prod == dim).
        order: K >= 1 (checked by the caller).
        x0: the expansion point (N,), float64, uniform (checked here).
        max_bytes: memory limit (MemoryError naming the estimate before allocating).

    Returns:
        A float64 `LatticeAction` on `model.lattice` whose window is min(L, 2R + 1) with
        R = `model.coupling_range` (the full lattice when it is None).

    Raises:
        ValueError: a non-uniform point, a stage that is not circulant, a bias or activation
            that differs between sites, kernels reaching further than `coupling_range`, or a
            point outside the domain.
        MemoryError: the compressed tensors would not fit in `max_bytes`.
    """
    shape = tuple(int(n) for n in model.lattice)
    dim = math.prod(shape)
    if dim != x0.shape[0]:
        raise ValueError(f"model.lattice {shape} has {dim} sites but the model has "
                         f"{x0.shape[0]}")
    if bool((x0 != x0[0]).any()):
        raise ValueError(
            "the compressed (translation-invariant) action needs a uniform expansion point "
            f"(all entries equal); this one ranges over [{float(x0.min()):.4g}, "
            f"{float(x0.max()):.4g}]: extract_action gives the dense action there"
        )
    radius = getattr(model, "coupling_range", None)
    window = lattice_window(shape, radius)
    needed = compressed_bytes(window, order, dim, model.depth + 1)
    if needed > max_bytes:
        raise MemoryError(
            f"the compressed pull-back of order {order} on window {window} of lattice {shape} "
            f"needs about {needed / 2**30:.3g} GiB (couplings of {math.prod(window)}^"
            f"{order - 1} entries), more than the limit {max_bytes / 2**30:.3g} GiB; lower "
            "the order, use local kernels (kernel_radius) or raise max_bytes"
        )
    size = math.prod(window)
    point = float(x0[0])
    u = point
    dressings: list[Any] = []
    reach = 0
    constant = 0.0
    for number, stage in enumerate(model.stages()):
        full = torch.full((dim,), u, dtype=torch.float64, device=x0.device)
        if stage[0] == "affine":
            weight = stage[1].detach().to(full)
            kernel = _circulant_kernel(weight, shape, number)
            image = weight @ full + stage[2].detach().to(full)
            u = _uniform(image, f"stage {number} (affine): the bias")
            spectrum = torch.fft.fftn(kernel)
            constant -= float(torch.log(spectrum.abs()).sum())
            stage_reach, small = _fold(kernel, window)
            reach += 2 * stage_reach
            dressings.append(small)
        elif stage[0] == "activation":
            taylor = stage[1].taylor(full).detach().to(torch.float64)
            spread = float((taylor - taylor[0]).abs().max())
            if spread > 1e-12 * max(1.0, float(taylor.abs().max())):
                raise ValueError(
                    f"stage {number} (activation): the coefficients differ between sites; the "
                    "compressed action needs site-shared activations"
                )
            row = taylor[0]
            if float(row[1]) <= 0:
                raise ValueError(
                    f"the point lies outside the domain of the activation of stage {number}: "
                    f"phi'(y*) = {float(row[1]):.4g} <= 0 at y* = {u:.4g}"
                )
            dressings.append((row, activation_degree(stage[1])))
            constant -= dim * float(_log_series(row, order)[0])
            u = float(row[0])
        else:
            raise ValueError(f"unknown stage kind {stage[0]!r}")
    if radius is not None and any(w < n for w, n in zip(window, shape, strict=True)):
        if reach > radius:
            raise ValueError(
                f"model.coupling_range = {radius} but its kernels reach 2 * (sum of radii) = "
                f"{reach} lattice steps: the range cut would not be exact"
            )
    z = u
    couplings: dict[int, torch.Tensor] = {1: x0.new_tensor(z)}
    if order >= 2:
        couplings[2] = x0.new_zeros(size)
        couplings[2][0] = 1.0
    constant += dim * (0.5 * z * z + 0.5 * math.log(2 * math.pi))
    for dressing in reversed(dressings):
        if isinstance(dressing, torch.Tensor):
            couplings = _pull_affine(couplings, dressing)
        else:
            couplings = _pull_activation(couplings, *dressing, order, size)
    result = {
        k: (couplings[k] if k in couplings else x0.new_zeros((size,) * (k - 1))).reshape(
            window * (k - 1)
        )
        for k in range(1, order + 1)
    }
    metadata = {
        "source": "inntheory.extract_action",
        "compressed": True,
        "order": order,
        "point": point,
        "activation": model.activation_name,
        "depth": model.depth,
        "standardized": model.is_standardized,
        "lattice": list(shape),
        "coupling_range": radius,
        "window": list(window),
        "label": "data",
        "stage": 0,
    }
    return LatticeAction(result, shape, point, constant, metadata, window=window,
                         check_symmetry=False)


def _uniform(values: torch.Tensor, what: str) -> float:
    spread = float(values.max() - values.min())
    scale = max(1.0, float(values.abs().max()))
    if spread > 1e-12 * scale:
        raise ValueError(f"{what} differs between sites (spread {spread:.3g}); the compressed "
                         "action needs site-shared biases")
    return float(values.mean())


def _circulant_kernel(weight: torch.Tensor, shape: tuple[int, ...], number: int) -> torch.Tensor:
    """The kernel w (shape) with W[i, j] = w[site(i) - site(j)]: W's first column, checked.

    The check compares W v with the periodic convolution w * v (by FFT) for two seeded random
    vectors v, relative to |W| |v|: any W that is not that circulant fails it (almost surely),
    at the cost of two matrix-vector products and no N x N index.
    """
    kernel = weight[:, 0].reshape(shape)
    generator = torch.Generator(device="cpu").manual_seed(0)
    probe = torch.randn(2, *shape, generator=generator, dtype=weight.dtype).to(weight.device)
    dims = tuple(range(1, len(shape) + 1))
    convolved = torch.fft.ifftn(torch.fft.fftn(kernel, dim=tuple(range(len(shape))))
                                * torch.fft.fftn(probe, dim=dims), dim=dims).real
    flat = probe.reshape(2, -1)
    error = float((flat @ weight.T - convolved.reshape(2, -1)).abs().max())
    bound = float((flat.abs() @ weight.abs().T).max())
    if error > 1e-11 * bound:
        raise ValueError(
            f"stage {number} (affine): W is not a periodic convolution on the lattice {shape} "
            f"(W v deviates from the convolution of its first column with v by {error:.3g}, "
            f"relative {error / bound:.2g}); the compressed action needs lattice-equivariant "
            "weights"
        )
    return kernel


def _fold(kernel: torch.Tensor, window: tuple[int, ...]) -> tuple[int, torch.Tensor]:
    """(the kernel's reach along the cut axes, the kernel folded onto the window torus).

    The reach is the largest |minimal-image offset| of a non-zero entry along the axes whose
    window is shorter than the lattice (0 when there are none). Entries that do not fit the
    window are left out: their reach makes the caller's range check fail.
    """
    shape = tuple(kernel.shape)
    nonzero = np.argwhere(kernel.detach().cpu().numpy() != 0)
    minimal = np.where(nonzero <= np.array(shape) // 2, nonzero, nonzero - np.array(shape))
    cut = [axis for axis, (w, n) in enumerate(zip(window, shape, strict=True)) if w < n]
    reach = int(np.abs(minimal[:, cut]).max()) if len(minimal) and cut else 0
    small = kernel.new_zeros(window)
    for position, offset in zip(nonzero, minimal, strict=True):
        if all(w == n or abs(int(o)) <= w // 2
               for w, n, o in zip(window, shape, offset, strict=True)):
            target = tuple(int(o) % w for o, w in zip(offset, window, strict=True))
            small[target] += kernel[tuple(int(p) for p in position)]
    return reach, small


def _pull_affine(above: dict[int, torch.Tensor], kernel: torch.Tensor) -> dict[int, torch.Tensor]:
    """Every C^(k) pulled back through e' = W e (W the circulant of `kernel` on the window)."""
    window = tuple(kernel.shape)
    ndim = len(window)
    size = math.prod(window)
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
        lattice = tensor.reshape(window * legs)
        dims = tuple(range(legs * ndim))
        transformed = torch.fft.fftn(lattice, dim=dims)
        total = torch.zeros(window * legs, dtype=torch.int64, device=kernel.device)
        for axis, w in enumerate(window):
            momentum = torch.zeros((1,) * (legs * ndim), dtype=torch.int64, device=kernel.device)
            for leg in range(legs):
                view = [1] * (legs * ndim)
                view[leg * ndim + axis] = w
                momentum = momentum + torch.arange(w, device=kernel.device).reshape(view)
            stride = math.prod(window[axis + 1 :])
            total = total + (momentum % w) * stride
        transformed = transformed * spectrum.reshape(-1)[total]
        conjugate = spectrum.conj()
        for leg in range(legs):
            view = [1] * (legs * ndim)
            view[leg * ndim : (leg + 1) * ndim] = window
            transformed = transformed * conjugate.reshape(view)
        result[k] = torch.fft.ifftn(transformed, dim=dims).real.reshape((size,) * legs)
        del transformed, total
    return result


def _pull_activation(
    above: dict[int, torch.Tensor], taylor: torch.Tensor, degree: int, order: int, size: int
) -> dict[int, torch.Tensor]:
    """The catalogue of diagrams with uniform dressings, on compressed tensors (M,)*(k-1)."""
    derivatives = {p: math.factorial(p) * float(taylor[p]) for p in range(1, taylor.shape[0])}
    log_slope = _log_series(taylor, order)
    result: dict[int, torch.Tensor] = {}
    for diagram in catalogue(degree, order):
        n = diagram.order
        target = result.get(n)
        if target is None:
            target = result[n] = taylor.new_zeros((size,) * (n - 1))
        if diagram.logdet:
            target.view(-1)[0] += float(diagram.weight) * -float(log_slope[n])
            continue
        if diagram.vertex not in above:
            continue
        dressed = above[diagram.vertex] * math.prod(derivatives[s] for s in diagram.legs)
        strides = [size ** (n - 1 - position) for position in range(1, n)]
        factor = float(diagram.weight) / len(diagram.placements)
        for blocks in diagram.placements:
            rest = [block for block in blocks if 0 not in block]
            view = target.as_strided(
                (size,) * len(rest), [sum(strides[p - 1] for p in block) for block in rest]
            )
            view.add_(dressed, alpha=factor)
    return result


def _log_series(taylor: torch.Tensor, order: int) -> torch.Tensor:
    """Power series of ln phi'(y* + D) from the Taylor coefficients of phi at y*: (order + 1,).

    phi'(y* + D) = sum_j (j + 1) taylor[j + 1] D^j; from P L' = P',
    n P_0 L_n = n P_n - sum_{j=1}^{n-1} j L_j P_{n-j}.
    """
    width = taylor.shape[0] - 1
    p = [0.0] * (order + 1)
    for j in range(min(width, order + 1)):
        p[j] = (j + 1) * float(taylor[j + 1])
    series = [math.log(p[0])] + [0.0] * order
    for n in range(1, order + 1):
        total = n * p[n] - sum(j * series[j] * p[n - j] for j in range(1, n))
        series[n] = total / (n * p[0])
    return torch.tensor(series, dtype=torch.float64)
