"""Argument checks shared across the package."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_order"]


def check_order(order: Any, name: str = "order") -> int:
    """`order` as an int >= 1 (Python or NumPy integer, not a bool); ValueError otherwise."""
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {order!r}")
    return int(order)
