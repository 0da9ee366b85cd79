"""Exact action extraction from a `PolynomialINN` by the layer-to-layer pull-back.

Write S_l for the action of the representation after stage l (METHOD.md, "Layer-to-layer
rules"): the latent action is S(z) = 1/2 |z|^2 + N/2 ln 2 pi and

    S_{l-1}(u) = S_l(f_l(u)) - ln|det J_{f_l}(u)|.

Every stage is expanded around the image of the data expansion point x0
(u*_0 = x0, u*_l = f_l(u*_{l-1})). In shifted coordinates a stage has no constant term, so
truncating at order K after every stage is exact for all orders <= K:

- affine stage e' = W e: B^(k) = A^(k) with every leg contracted with W (one leg at a time,
  k N^(k+1) multiply-adds), constant -ln|det W|;
- activation stage: the diagrams of `inntheory.extraction.diagrams.catalogue` (straight and
  forked legs,
  log-determinant vertices), each applied through its diagonal structure: a dressed vertex
  costs N^k and is added onto the strided diagonal views of B^(n) of its placements.

All arithmetic is float64 whatever the model's dtype.

Example:
    >>> import torch
    >>> from inntheory import PolynomialINN
    >>> model = PolynomialINN(3, depth=2).double()
    >>> S = extract_action(model, order=4)
    >>> S.coefficient(4).shape
    torch.Size([3, 3, 3, 3])
    >>> abs(S.constant - float(model.action(torch.zeros(3)))) < 1e-12
    True

References:
    C. Merger, A. René, K. Fischer, P. Bouss, S. Nestler, D. Dahmen, C. Honerkamp, M. Helias,
    "Learning Interacting Theories from Data", Phys. Rev. X 13, 041033 (2023),
    arXiv:2304.00599.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._memory import available_bytes
from ..actions.dense import PolynomialAction
from ..actions.lattice import LatticeAction
from ..model.inn import PolynomialINN
from .diagrams import Diagram, activation_degree, catalogue
from .lattice import extract_lattice_action

__all__ = ["action_history", "extract_action"]

_LIVE_COPIES = 4
"""Tensors of the top order alive at once in a pull-back step (A, B, a contraction
temporary, a dressed vertex): the memory estimate is this many times sum_k N^k * 8 bytes."""


@dataclass
class _Expansion:
    """The action of one representation, expanded around its image u* of x0.

    Attributes:
        coefficients: {k: A^(k), (N,)*k} for the orders present (absent orders are zero).
        constant: A^(0), the action at u*.
        point: u*, (N,).
    """

    coefficients: dict[int, torch.Tensor]
    constant: float
    point: torch.Tensor


# ---------------------------------------------------------------------------- public API


def extract_action(
    model: PolynomialINN,
    order: int = 4,
    point: Any = None,
    *,
    max_bytes: int | None = None,
    compressed: bool = True,
) -> PolynomialAction | LatticeAction:
    """The Taylor coefficients A^(1..K) (and the constant) of `model.action` at a point.

    For a lattice-equivariant model (`model.lattice` not None) the result is the
    translation-invariant action in compressed form, a `LatticeAction` holding the couplings
    relative to site 0 (only within `model.coupling_range` when the kernels are local), built
    by the compressed pull-back of `inntheory.extraction.lattice` without any N^k tensor.
    The action around a point whose entries differ is not translation invariant: then (and
    with `compressed=False`) the result is the dense `PolynomialAction`, whose memory guard
    refuses with the estimate where N^K does not fit.

    Arguments:
        model: a `PolynomialINN` (any dtype and device; the pull-back runs in float64).
        order: K >= 1, the highest order extracted.
        point: the expansion point x0 in data units, (N,); default 0. It must lie inside the
            model's domain (every pre-activation with phi'(y*) > 0).
        max_bytes: memory limit for the coefficient tensors; default half the memory
            available now (host RAM, or free GPU memory for a CUDA model).
        compressed: for a lattice model, return the compressed `LatticeAction` (default);
            False forces the dense pull-back. Ignored for dense models.

    Returns:
        A float64 `PolynomialAction` (a `LatticeAction` for a lattice model) with orders
        1..K at `point`, `constant` equal to `model.action(point)`, and metadata {source,
        order, point, activation, depth, standardized} (plus lattice, coupling_range, window
        when compressed).

    Raises:
        TypeError: `model` is not a PolynomialINN.
        ValueError: bad order, point of the wrong shape or with NaN/inf, or a point outside
            the domain (the message names the layer and unit).
        MemoryError: the tensors would not fit in `max_bytes` (raised before allocating).
    """
    if compressed and getattr(model, "lattice", None) is not None:
        order = _check_order(order)
        if not isinstance(model, PolynomialINN):
            raise TypeError(f"model must be a PolynomialINN, got {type(model).__name__}")
        device = _model_device(model)
        x0 = _check_point(point, model.dim, device)
        if bool((x0 == x0[0]).all()):
            if max_bytes is None:
                max_bytes = _available_bytes(device) // 2
            return extract_lattice_action(model, order, x0, max_bytes)
        # a non-uniform point breaks translation invariance: only the dense action is exact
    return _extract(model, order, point, max_bytes, history=False)[-1]


def action_history(
    model: PolynomialINN,
    order: int = 4,
    point: Any = None,
    *,
    max_bytes: int | None = None,
) -> list[PolynomialAction]:
    """The action of every representation, from the Gaussian latent down to the data.

    Entry 0 is the latent action (only the linear and pairwise terms are non-zero), then the
    representation after layer L-1, ..., after layer 1, the standardised coordinates (when the
    model's standardisation is set) and last the data action, equal to `extract_action`.
    Each entry is expanded around the image u* of `point` in its own coordinates, holds every
    order 1..K (zeros included, so the growth of interactions can be plotted) and carries
    metadata["label"] ("latent", "after layer 3", ..., "standardized", "data") and
    metadata["stage"] (the number of stages between it and the data).

    The history is always dense (`PolynomialAction` entries), also for a lattice model.

    Arguments:
        model, order, point, max_bytes: as in `extract_action` (the memory estimate counts
            every stored entry).

    Returns:
        A list of float64 `PolynomialAction`, latent first, data last.
    """
    return _extract(model, order, point, max_bytes, history=True)


# ---------------------------------------------------------------------------- driver


def _extract(
    model: Any, order: Any, point: Any, max_bytes: int | None, *, history: bool
) -> list[PolynomialAction]:
    order = _check_order(order)
    if not isinstance(model, PolynomialINN):
        raise TypeError(f"model must be a PolynomialINN, got {type(model).__name__}")
    device = _model_device(model)
    x0 = _check_point(point, model.dim, device)
    stages = model.stages()
    boundaries = _boundaries(model)
    kept = len(boundaries) if history else 1
    _check_memory(model.dim, order, kept, max_bytes, device)
    expansions = _pullback(stages, x0, order, keep=set(boundaries) if history else {0})
    base = {
        "source": "inntheory.extract_action",
        "order": order,
        "point": x0.cpu().tolist(),
        "activation": model.activation_name,
        "depth": model.depth,
        "standardized": model.is_standardized,
    }
    result = []
    for stage, label in sorted(boundaries.items(), reverse=True) if history else [(0, "data")]:
        expansion = expansions[stage]
        coefficients = {
            k: expansion.coefficients[k]
            if k in expansion.coefficients
            else x0.new_zeros((model.dim,) * k)
            for k in range(1, order + 1)
        }
        metadata = {**base, "label": label, "stage": stage}
        if history:
            metadata["source"] = "inntheory.action_history"
        result.append(
            PolynomialAction(
                coefficients,
                expansion.point,
                expansion.constant,
                metadata,
                check_symmetry=False,
            )
        )
    return result


def _model_device(model: PolynomialINN) -> torch.device:
    """Where the pull-back runs: the model's device (the CPU for MPS, which has no float64)."""
    device = next(model.parameters()).device
    return torch.device("cpu") if device.type == "mps" else device


def _boundaries(model: PolynomialINN) -> dict[int, str]:
    """Labels of the representations, keyed by the number of stages from the data."""
    offset = 1 if model.is_standardized else 0
    labels = {0: "data"}
    if offset:
        labels[1] = "standardized"
    for layer in range(1, model.depth):
        labels[offset + 2 * layer] = f"after layer {layer}"
    labels[offset + 2 * model.depth] = "latent"
    return labels


def _check_order(order: Any) -> int:
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    return int(order)


def _check_point(point: Any, dim: int, device: torch.device) -> torch.Tensor:
    if point is None:
        return torch.zeros(dim, dtype=torch.float64, device=device)
    try:
        x0 = point.detach() if torch.is_tensor(point) else torch.as_tensor(
            np.asarray(point, dtype=np.float64)
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"point must be an array of real numbers of shape ({dim},)") from error
    if x0.shape != (dim,):
        raise ValueError(f"point must have shape ({dim},), got {tuple(x0.shape)}")
    if x0.is_complex() or not torch.isfinite(x0).all():
        raise ValueError("point must be real and contain no NaN or inf entries")
    return x0.to(device=device, dtype=torch.float64)


def _check_memory(
    dim: int, order: int, kept: int, max_bytes: int | None, device: torch.device
) -> None:
    """Raise MemoryError if the pull-back would need more than `max_bytes` (before allocating)."""
    per_action = 8 * sum(dim**k for k in range(order + 1))
    needed = (_LIVE_COPIES + kept) * per_action
    if max_bytes is None:
        max_bytes = _available_bytes(device) // 2
    if needed > max_bytes:
        raise MemoryError(
            f"extracting order {order} for N = {dim} needs about {needed / 2**30:.3g} GiB "
            f"(tensors of {dim}^{order} float64 entries), more than the limit "
            f"{max_bytes / 2**30:.3g} GiB; lower the order or raise max_bytes"
        )


def _available_bytes(device: torch.device) -> int:
    return int(available_bytes(device))


# ---------------------------------------------------------------------------- pull-back


def _pullback(
    stages: Sequence[tuple], x0: torch.Tensor, order: int, keep: set[int]
) -> dict[int, _Expansion]:
    """Pull the Gaussian latent action back through `stages` to the data.

    Arguments:
        stages: ("affine", W (N, N), b (N,)) and ("activation", act) in data -> latent order.
        x0: the data expansion point, (N,), float64.
        order: K, the highest order kept.
        keep: which representations to return, by number of stages from the data (0 is the
            data action, len(stages) the latent one).

    Returns:
        {stage: _Expansion} for the stages in `keep`.
    """
    points = [x0]
    dressings = []  # per stage: W (affine) or the Taylor coefficients at y* (activation)
    layer = 0
    for stage in stages:
        u = points[-1]
        if stage[0] == "affine":
            weight = stage[1].detach().to(x0)
            dressings.append(weight)
            points.append(weight @ u + stage[2].detach().to(x0))
        elif stage[0] == "activation":
            layer += 1
            taylor = stage[1].taylor(u).detach()
            _check_domain(taylor, u, layer, stage[1])
            dressings.append((taylor, activation_degree(stage[1])))
            points.append(taylor[:, 0].clone())
        else:
            raise ValueError(f"unknown stage kind {stage[0]!r}")
    z = points[-1]
    dim = z.shape[0]
    coefficients = {1: z.clone()}
    if order >= 2:
        coefficients[2] = torch.eye(dim, dtype=z.dtype, device=z.device)
    current = _Expansion(
        coefficients, 0.5 * float(z @ z) + 0.5 * dim * math.log(2 * math.pi), z
    )
    kept = {len(stages): current} if len(stages) in keep else {}
    for index in range(len(stages) - 1, -1, -1):
        dressing = dressings[index]
        if isinstance(dressing, torch.Tensor):
            current = _pull_affine(current, dressing, points[index])
        else:
            current = _pull_activation(current, *dressing, order, points[index])
        if index in keep:
            kept[index] = current
    return kept


def _check_domain(taylor: torch.Tensor, y: torch.Tensor, layer: int, act: Any) -> None:
    slope = taylor[:, 1]
    bad = torch.nonzero(slope <= 0).flatten()
    if bad.numel():
        unit = int(bad[0])
        raise ValueError(
            f"the point lies outside the domain of the {getattr(act, 'name', '')} activation: "
            f"layer {layer}, unit {unit} has phi'(y*) = {float(slope[unit]):.4g} <= 0 at "
            f"pre-activation y* = {float(y[unit]):.4g} ({bad.numel()} unit(s) of this layer "
            "outside)"
        )


def _pull_affine(above: _Expansion, weight: torch.Tensor, point: torch.Tensor) -> _Expansion:
    """Pull back through e' = W e: every leg of every A^(k) contracted with W."""
    diagonal = torch.diagonal(weight)
    is_diagonal = bool(torch.count_nonzero(weight - torch.diag(diagonal)) == 0)
    coefficients = {}
    for k, tensor in above.coefficients.items():
        if is_diagonal:  # the standardisation: a scaling per leg
            coefficients[k] = tensor * _outer([diagonal] * k)
            continue
        for _ in range(k):  # contracts leg 0 and appends the new leg last: k steps restore order
            tensor = torch.tensordot(tensor, weight, dims=([0], [0]))
        coefficients[k] = tensor
    constant = above.constant - float(torch.linalg.slogdet(weight).logabsdet)
    return _Expansion(coefficients, constant, point)


def _pull_activation(
    above: _Expansion, taylor: torch.Tensor, degree: int, order: int, point: torch.Tensor
) -> _Expansion:
    """Pull back through e'_i = sum_p taylor[i, p] e_i^p by looping over the catalogue."""
    dim = point.shape[0]
    derivatives = {
        p: math.factorial(p) * taylor[:, p] for p in range(1, taylor.shape[1])
    }  # phi^(p)(y*), (N,) each
    slope = taylor[:, 1:] * torch.arange(1, taylor.shape[1], dtype=taylor.dtype,
                                         device=taylor.device)
    log_slope = _log_series(slope, order)  # ln phi'(y* + D) = sum_n log_slope[:, n] D^n
    coefficients: dict[int, torch.Tensor] = {}
    for diagram in catalogue(degree, order):
        if diagram.logdet:
            dressed = -log_slope[:, diagram.order]
        elif diagram.vertex in above.coefficients:
            vertex = above.coefficients[diagram.vertex]
            dressed = vertex * _outer([derivatives[size] for size in diagram.legs])
        else:
            continue
        if diagram.straight == diagram.order and diagram.order not in coefficients:
            # all legs straight: the identity placement, so the sum can start from it
            coefficients[diagram.order] = (dressed * float(diagram.weight)).contiguous()
            continue
        target = coefficients.get(diagram.order)
        if target is None:
            target = coefficients[diagram.order] = point.new_zeros((dim,) * diagram.order)
        _add_symmetrised(target, dressed, diagram)
    constant = above.constant - float(log_slope[:, 0].sum())
    return _Expansion(coefficients, constant, point)


def _add_symmetrised(target: torch.Tensor, dressed: torch.Tensor, diagram: Diagram) -> None:
    """target += weight * Sym[dressed placed on the diagram's output positions], in place.

    The symmetrisation over the n! permutations is the mean over the distinct placements;
    each placement writes the k-leg tensor `dressed` onto a strided diagonal view of the
    n-leg `target` (a leg forked in m takes m equal output indices), costing N^k.
    """
    n, dim = target.dim(), target.shape[0]
    strides = [dim ** (n - 1 - position) for position in range(n)]
    placements = diagram.placements
    factor = float(diagram.weight) / len(placements)
    for blocks in placements:
        view = target.as_strided(
            (dim,) * len(blocks), [sum(strides[p] for p in block) for block in blocks]
        )
        view.add_(dressed, alpha=factor)


def _outer(vectors: list[torch.Tensor]) -> torch.Tensor:
    """Outer product of k >= 1 vectors (N,) -> (N,)*k."""
    result = vectors[0]
    for vector in vectors[1:]:
        result = result[..., None] * vector
    return result


def _log_series(polynomial: torch.Tensor, order: int) -> torch.Tensor:
    """Power series of ln P(D) for per-unit polynomials P with P(0) > 0.

    Arguments:
        polynomial: (N, d+1), P_i(D) = sum_j polynomial[i, j] D^j.
        order: the highest power kept.

    Returns:
        (N, order+1): column 0 is ln P(0); from P L' = P', n P_0 L_n = n P_n -
        sum_{j=1}^{n-1} j L_j P_{n-j}.
    """
    dim, width = polynomial.shape
    p = torch.zeros(dim, order + 1, dtype=polynomial.dtype, device=polynomial.device)
    p[:, : min(width, order + 1)] = polynomial[:, : order + 1]
    series = torch.zeros_like(p)
    series[:, 0] = torch.log(p[:, 0])
    for n in range(1, order + 1):
        total = n * p[:, n]
        for j in range(1, n):
            total = total - j * series[:, j] * p[:, n - j]
        series[:, n] = total / (n * p[:, 0])
    return series
