"""The dense backend of the pull-back: every coefficient a full symmetric (N,)*k tensor.

An affine step contracts every leg with W = `LinearMap.matrix()` (a diagonal W scales every
leg); a dressed vertex of the activation step is the vertex times the outer product of the
per-unit derivatives, added onto strided diagonal views of B^(n). float64 on the point's device.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import torch

from .diagrams import Diagram
from .pullback import LIVE_COPIES

__all__ = ["DenseBackend", "dense_bytes", "geometric_sum"]


def dense_bytes(dim: int, order: int, kept: int = 1) -> float:
    """Bytes of the dense pull-back of order K for N = `dim` keeping `kept` actions,
    (LIVE_COPIES + kept) * 8 sum_{k<=K} N^k, as a float (inf beyond the float range)."""
    return (LIVE_COPIES + kept) * 8.0 * geometric_sum(dim, order)


def geometric_sum(base: int, order: int) -> float:
    """sum_{k=0}^{order} base^k as a float; inf where base^order overflows a float."""
    if base == 1:
        return float(order + 1)
    if order * math.log(base) > 700:
        return math.inf
    return float(sum(float(base) ** k for k in range(order + 1)))


class DenseBackend:
    """Tensor operations of the pull-back on full (N,)*k tensors (see `pullback.pull_back`)."""

    def __init__(self, dim: int, device: torch.device) -> None:
        self.dim = dim
        self.device = device
        self.layer = 0

    def point(self, x0: torch.Tensor) -> torch.Tensor:
        return x0

    def affine(self, stage: Any, u: torch.Tensor, number: int) -> tuple[Any, float, Any]:
        weight = stage.linear.matrix().detach().to(u)
        image = weight @ u + stage.bias.detach().to(u)
        return weight, float(torch.linalg.slogdet(weight).logabsdet), image

    def activation(self, stage: Any, u: torch.Tensor, number: int) -> tuple[Any, Any]:
        self.layer += 1
        taylor = stage.activation.taylor(u).detach()
        slope = taylor[:, 1]
        bad = torch.nonzero(slope <= 0).flatten()
        if bad.numel():
            unit = int(bad[0])
            raise ValueError(f"the point lies outside the domain of the {stage.activation.name} "
                             f"activation: layer {self.layer}, unit {unit} has phi'(y*) = "
                             f"{float(slope[unit]):.4g} <= 0 at pre-activation y* = "
                             f"{float(u[unit]):.4g} ({bad.numel()} unit(s) of this layer outside)")
        return taylor, taylor[:, 0].clone()

    def latent(self, z: torch.Tensor, order: int) -> tuple[dict[int, torch.Tensor], float]:
        coefficients = {1: z.clone()}
        if order >= 2:
            coefficients[2] = torch.eye(self.dim, dtype=z.dtype, device=z.device)
        return coefficients, 0.5 * float(z @ z) + 0.5 * self.dim * math.log(2 * math.pi)

    def pull_affine(self, above: dict[int, torch.Tensor], weight: torch.Tensor
                    ) -> dict[int, torch.Tensor]:
        diagonal = torch.diagonal(weight)
        is_diagonal = bool(torch.count_nonzero(weight - torch.diag(diagonal)) == 0)
        coefficients = {}
        for k, tensor in above.items():
            if is_diagonal:  # a scaling per leg
                coefficients[k] = tensor * _outer([diagonal] * k)
                continue
            for _ in range(k):  # contracts leg 0, appends the new leg last: k steps restore order
                tensor = torch.tensordot(tensor, weight, dims=([0], [0]))
            coefficients[k] = tensor
        return coefficients

    def dress(self, vertex: torch.Tensor, factors: list[torch.Tensor]) -> torch.Tensor:
        return vertex * _outer(factors)

    def zeros(self, n: int) -> torch.Tensor:
        return torch.zeros((self.dim,) * n, dtype=torch.float64, device=self.device)

    def place(self, target: torch.Tensor, dressed: torch.Tensor, diagram: Diagram) -> None:
        """target += weight * Sym[dressed placed on the diagram's output positions], in place:
        the mean over the distinct placements, each a strided diagonal view of `target` (a leg
        forked in m takes m equal output indices)."""
        n, dim = target.dim(), target.shape[0]
        strides = [dim ** (n - 1 - position) for position in range(n)]
        factor = float(diagram.weight) / len(diagram.placements)
        for blocks in diagram.placements:
            view = target.as_strided(
                (dim,) * len(blocks), [sum(strides[p] for p in block) for block in blocks]
            )
            view.add_(dressed, alpha=factor)

    def total(self, values: torch.Tensor) -> float:
        return float(values.sum())

    def constant(self, latent: float, terms: list[float]) -> float:
        """latent - terms[-1] - ... - terms[0], from the latent side."""
        return functools.reduce(operator.sub, reversed(terms), latent)


def _outer(vectors: list[torch.Tensor]) -> torch.Tensor:
    """Outer product of k >= 1 vectors (N,) -> (N,)*k."""
    return functools.reduce(lambda result, vector: result[..., None] * vector, vectors)
