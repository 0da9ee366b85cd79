"""The layer-to-layer pull-back of the Gaussian latent action through a network's stages.

With S_l the action after stage l (METHOD.md, "Layer-to-layer rules"), the latent action
S(z) = 1/2 |z|^2 + N/2 ln 2 pi and S_{l-1}(u) = S_l(f_l(u)) - ln|det J_{f_l}(u)|. Every stage
is expanded around the image u*_l = f_l(u*_{l-1}) of x0 = u*_0, where it has no constant term,
so truncating at order K after every stage is exact for the orders <= K: an affine stage
contracts every leg with W (constant -ln|det W|), an activation stage adds the diagrams of
`diagrams.catalogue` (constant -sum_i ln phi'(y*_i)).

`pull_back` is written once; a *backend* (`dense.DenseBackend`, `lattice.LatticeBackend`)
supplies the tensor operations of one representation: ``point(x0)``,
``affine(stage, u, number)`` -> (prepared map, ln|det W|, image),
``activation(stage, u, number)`` -> (Taylor coefficients (units, degree + 1), image),
``latent(z, order)`` -> (coefficients, constant), ``pull_affine(coefficients, prepared)``,
``dress(vertex, factors)``, ``zeros(n)``, ``place(target, dressed, diagram)``,
``total(values)`` (sum over the sites) and ``constant(latent, terms)``. All in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .diagrams import catalogue

__all__ = ["Expansion", "log_series", "pull_back"]

LIVE_COPIES = 4
"""Tensors of the top order alive at once in a pull-back step (A, B, a contraction
temporary, a dressed vertex): a memory estimate is this many times one action's tensors."""

Step = Callable[[dict[int, Any], int], tuple[dict[int, Any], float]]


@dataclass
class Expansion:
    """The action of one representation around its image u* of x0: {k: coefficient in the
    backend's form} (absent orders zero), A^(0) at u*, and u* in the backend's form."""

    coefficients: dict[int, torch.Tensor]
    constant: float
    point: Any


class _Forward:
    """Visitor of the forward walk: each stage as its pull-back step (above, order) ->
    (coefficients below, ln|det| of its Jacobian at u*), and the image of u."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def affine(self, stage: Any, u: Any, number: int) -> tuple[Step, Any]:
        prepared, logabsdet, image = self.backend.affine(stage, u, number)
        return lambda above, order: (self.backend.pull_affine(above, prepared), logabsdet), image

    def activation(self, stage: Any, u: Any, number: int) -> tuple[Step, Any]:
        taylor, image = self.backend.activation(stage, u, number)
        degree = stage.activation.degree
        return (lambda above, order:
                _pull_activation(self.backend, above, taylor, degree, order)), image


def pull_back(
    stages: Sequence[Any], x0: torch.Tensor, order: int, backend: Any, keep: set[int]
) -> dict[int, Expansion]:
    """Pull the Gaussian latent action back through `stages` (data -> latent order) to the data
    point x0 (N,) float64, up to order K; {stage: Expansion} for the representations in
    `keep`, numbered by stages from the data (0 the data, len(stages) the latent one)."""
    walk = _Forward(backend)
    points = [backend.point(x0)]
    steps = []
    for number, stage in enumerate(stages):
        step, image = stage.accept(walk, points[-1], number)
        steps.append(step)
        points.append(image)
    coefficients, latent = backend.latent(points[-1], order)
    current = Expansion(coefficients, latent, points[-1])
    kept = {len(stages): current} if len(stages) in keep else {}
    terms: list[float] = [0.0] * len(stages)  # ln|det| of every stage's Jacobian at u*
    for index in range(len(stages) - 1, -1, -1):
        coefficients, terms[index] = steps[index](current.coefficients, order)
        current = Expansion(coefficients, backend.constant(latent, terms[index:]), points[index])
        if index in keep:
            kept[index] = current
    return kept


def _pull_activation(
    backend: Any, above: dict[int, Any], taylor: torch.Tensor, degree: int, order: int
) -> tuple[dict[int, Any], float]:
    """Pull back through e'_i = sum_p taylor[i, p] e_i^p (taylor: (units, degree + 1), units =
    N or 1 when site-shared) by the catalogue: the coefficients below, sum_i ln phi'(y*_i)."""
    derivatives = {p: math.factorial(p) * taylor[:, p] for p in range(1, taylor.shape[1])}
    slope = taylor[:, 1:] * torch.arange(1, taylor.shape[1], dtype=taylor.dtype,
                                         device=taylor.device)
    logs = log_series(slope, order)  # ln phi'(y* + D) = sum_n logs[:, n] D^n
    coefficients: dict[int, Any] = {}
    for diagram in catalogue(degree, order):
        if diagram.logdet:
            dressed = -logs[:, diagram.order]
        elif diagram.vertex in above:
            dressed = backend.dress(above[diagram.vertex],
                                    [derivatives[size] for size in diagram.legs])
        else:
            continue
        if diagram.straight == diagram.order and diagram.order not in coefficients:
            # all legs straight: the identity placement, so the sum can start from it
            coefficients[diagram.order] = (dressed * float(diagram.weight)).contiguous()
            continue
        target = coefficients.get(diagram.order)
        if target is None:
            target = coefficients[diagram.order] = backend.zeros(diagram.order)
        backend.place(target, dressed, diagram)
    return coefficients, backend.total(logs[:, 0])


def log_series(polynomial: torch.Tensor, order: int) -> torch.Tensor:
    """ln P(D) = sum_n L_n D^n up to D^order, (units, order + 1), for per-unit polynomials
    P_i(D) = sum_j polynomial[i, j] D^j with P(0) > 0: L_0 = ln P_0 and, from P L' = P',
    n P_0 L_n = n P_n - sum_{j=1}^{n-1} j L_j P_{n-j}."""
    units, width = polynomial.shape
    p = torch.zeros(units, order + 1, dtype=polynomial.dtype, device=polynomial.device)
    p[:, : min(width, order + 1)] = polynomial[:, : order + 1]
    series = torch.zeros_like(p)
    series[:, 0] = torch.log(p[:, 0])
    for n in range(1, order + 1):
        total = n * p[:, n]
        for j in range(1, n):
            total = total - j * series[:, j] * p[:, n - j]
        series[:, n] = total / (n * p[:, 0])
    return series
