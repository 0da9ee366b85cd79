"""The layer-to-layer pull-back of the Gaussian latent action through a network's stages.

Write S_l for the action of the representation after stage l (METHOD.md, "Layer-to-layer
rules"): the latent action is S(z) = 1/2 |z|^2 + N/2 ln 2 pi and

    S_{l-1}(u) = S_l(f_l(u)) - ln|det J_{f_l}(u)|.

Every stage is expanded around the image of the data expansion point x0
(u*_0 = x0, u*_l = f_l(u*_{l-1})). In shifted coordinates a stage has no constant term, so
truncating at order K after every stage is exact for all orders <= K:

- affine stage e' = W e: every leg of every coefficient contracted with W, constant
  -ln|det W|;
- activation stage: the diagrams of `inntheory.extraction.diagrams.catalogue` (straight and
  forked legs, log-determinant vertices), each dressed with the activation's derivatives at
  y* and added onto the diagonal views of B^(n) of its placements, constant
  -sum_i ln phi'(y*_i).

`pull_back` is that algorithm, written once; a *backend* supplies the tensor operations of
one representation (`inntheory.extraction.dense.DenseBackend`: full (N,)*k tensors;
`inntheory.extraction.lattice.LatticeBackend`: translation-invariant couplings):

- ``point(x0)``, ``affine(stage, u, number)`` -> (prepared map, ln|det W|, image),
  ``activation(stage, u, number)`` -> (Taylor coefficients (units, degree + 1), image);
- ``latent(z, order)`` -> (coefficients, constant) of the Gaussian latent action;
- ``pull_affine(coefficients, prepared)``, ``dress(vertex, factors)``, ``zeros(n)``,
  ``place(target, dressed, diagram)``, ``total(values)`` (sum over the N sites) and
  ``constant(latent, terms)`` (latent constant minus the stages' ln|det| terms).

All arithmetic is float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .diagrams import catalogue

__all__ = ["Expansion", "log_series", "pull_back"]

LIVE_COPIES = 4
"""Tensors of the top order alive at once in a pull-back step (A, B, a contraction
temporary, a dressed vertex): a memory estimate is this many times one action's tensors."""


@dataclass
class Expansion:
    """The action of one representation, expanded around its image u* of x0.

    Attributes:
        coefficients: {k: coefficient of order k in the backend's form} for the orders
            present (absent orders are zero).
        constant: A^(0), the action at u*.
        point: u*, in the backend's form.
    """

    coefficients: dict[int, torch.Tensor]
    constant: float
    point: Any


@dataclass
class _Affine:
    """A prepared affine step: the backend's form of W and ln|det W|."""

    prepared: Any
    logabsdet: float

    def pull(self, backend: Any, above: dict[int, Any], order: int) -> tuple[dict, float]:
        return backend.pull_affine(above, self.prepared), self.logabsdet


@dataclass
class _Activation:
    """A prepared activation step: Taylor coefficients at y* (units, degree + 1)."""

    taylor: torch.Tensor
    degree: int

    def pull(self, backend: Any, above: dict[int, Any], order: int) -> tuple[dict, float]:
        return _pull_activation(backend, above, self.taylor, self.degree, order)


class _Forward:
    """Visitor of the forward walk: hands each stage to the backend's matching method."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def affine(self, stage: Any, u: Any, number: int) -> tuple[_Affine, Any]:
        prepared, logabsdet, image = self.backend.affine(stage, u, number)
        return _Affine(prepared, logabsdet), image

    def activation(self, stage: Any, u: Any, number: int) -> tuple[_Activation, Any]:
        taylor, image = self.backend.activation(stage, u, number)
        return _Activation(taylor, stage.activation.degree), image


def pull_back(
    stages: Sequence[Any], x0: torch.Tensor, order: int, backend: Any, keep: set[int]
) -> dict[int, Expansion]:
    """Pull the Gaussian latent action back through `stages` to the data.

    Arguments:
        stages: `AffineStage` and `ActivationStage` objects in data -> latent order.
        x0: the data expansion point, (N,), float64.
        order: K, the highest order kept.
        backend: the tensor operations (see the module docstring).
        keep: which representations to return, by number of stages from the data (0 is the
            data action, len(stages) the latent one).

    Returns:
        {stage: Expansion} for the stages in `keep`.
    """
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
        coefficients, terms[index] = steps[index].pull(backend, current.coefficients, order)
        constant = backend.constant(latent, terms[index:])
        current = Expansion(coefficients, constant, points[index])
        if index in keep:
            kept[index] = current
    return kept


def _pull_activation(
    backend: Any, above: dict[int, Any], taylor: torch.Tensor, degree: int, order: int
) -> tuple[dict[int, Any], float]:
    """Pull back through e'_i = sum_p taylor[i, p] e_i^p by looping over the catalogue.

    Arguments:
        taylor: (units, degree + 1), the Taylor coefficients of phi at y* (units = N, or 1
            for site-shared coefficients).

    Returns:
        The coefficients below and sum_i ln phi'(y*_i).
    """
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
    """Power series of ln P(D) for per-unit polynomials P with P(0) > 0.

    Arguments:
        polynomial: (units, d+1), P_i(D) = sum_j polynomial[i, j] D^j.
        order: the highest power kept.

    Returns:
        (units, order+1): column 0 is ln P(0); from P L' = P',
        n P_0 L_n = n P_n - sum_{j=1}^{n-1} j L_j P_{n-j}.
    """
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
