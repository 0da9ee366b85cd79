"""The stages of a polynomial INN in data -> latent order, each one map of u: (n, N):
`AffineStage` y = W u + b and `ActivationStage` y = phi(u). `PolynomialINN.stages()` builds
them; the extraction reads them by double dispatch (`accept` calls the visitor's method for
the stage's kind), so neither the driver nor a backend asks which kind a stage is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .activations import PolynomialActivation
from .linear import LinearMap

__all__ = ["ActivationStage", "AffineStage", "Stage"]


@dataclass(frozen=True)
class AffineStage:
    """y = W u + b.

    Attributes:
        linear: W, a `LinearMap` of dimension N.
        bias: b, (N,) (or (1,), one bias for every site, broadcast).
    """

    linear: LinearMap
    bias: torch.Tensor

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """W u + b on a batch u: (n, N) -> (n, N)."""
        return self.linear(u) + self.bias

    def accept(self, visitor: Any, *arguments: Any) -> Any:
        """`visitor.affine(self, *arguments)`."""
        return visitor.affine(self, *arguments)


@dataclass(frozen=True)
class ActivationStage:
    """y = phi(u), elementwise.

    Attributes:
        activation: phi, a `PolynomialActivation` of N units.
    """

    activation: PolynomialActivation

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """phi(u) on a batch u: (n, N) -> (n, N)."""
        return self.activation(u)

    def accept(self, visitor: Any, *arguments: Any) -> Any:
        """`visitor.activation(self, *arguments)`."""
        return visitor.activation(self, *arguments)


Stage = AffineStage | ActivationStage
