"""Argument checks shared across the package."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

__all__ = ["check_order", "check_samples", "check_seed", "check_shape"]


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


def check_samples(x: Any, name: str) -> torch.Tensor:
    """x: (n, N) real numbers, n >= 2, finite, as a CPU float64 tensor; else a TypeError or
    ValueError naming `name`."""
    if not (isinstance(x, np.ndarray) or torch.is_tensor(x)):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    tensor = torch.as_tensor(x)
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    if tensor.dim() != 2:
        raise ValueError(f"{name} must have shape (n, N), got {tuple(tensor.shape)}")
    if tensor.shape[0] < 2:
        raise ValueError(f"{name} needs n >= 2 samples, got {tensor.shape[0]}")
    tensor = tensor.detach().to("cpu", torch.float64)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or inf entries")
    return tensor
