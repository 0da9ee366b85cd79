"""The reference the extraction tests compare with: Taylor coefficients by nested autodiff."""

from __future__ import annotations

import torch
from torch.func import jacfwd

__all__ = ["nested_derivatives"]


def nested_derivatives(function, point: torch.Tensor, order: int) -> list[torch.Tensor]:
    """[d^k S / dx^k at point for k = 1..order] from one nest of forward-mode autodiff.

    Arguments:
        function: S, (N,) -> ().
        point: (N,).
        order: the highest derivative K.

    Returns:
        K tensors, the k-th of shape (N,)*k.
    """

    def lift(inner):
        def value_and_lower(v):
            value, lower = inner(v)
            return value, (*lower, value)

        return jacfwd(value_and_lower, has_aux=True)

    nested = lambda v: (function(v), ())  # noqa: E731
    for _ in range(order):
        nested = lift(nested)
    top, lower = nested(point)
    return [t.detach() for t in (*lower[1:], top)]
