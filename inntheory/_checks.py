"""Argument checks shared across the package."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["check_order", "check_seed", "check_shape"]


def check_order(order: Any, name: str = "order") -> int:
    """`order` as an int >= 1 (Python or NumPy integer, not a bool); ValueError otherwise."""
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {order!r}")
    return int(order)


def check_shape(shape: Any) -> tuple[int, ...]:
    """A lattice shape (an int, or 1 or 2 positive ints) as a tuple of ints; TypeError or
    ValueError otherwise."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of 1 or 2 ints, got {shape!r}") from None
    if len(dims) not in (1, 2) or any(
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in dims
    ):
        raise ValueError(f"shape must be 1 or 2 positive ints, got {dims!r}")
    return tuple(int(n) for n in dims)


def check_seed(seed: Any) -> int:
    """`seed` as an int that `torch.Generator.manual_seed` takes: TypeError for a non-integer
    (or bool), ValueError outside [-2**63, 2**64)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed must be an int from -2**63 to 2**64 - 1, got {seed}")
    return seed
