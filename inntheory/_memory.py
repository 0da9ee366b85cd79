"""How much memory is free now: the one probe behind every memory guard of the kit (they
estimate what they need before allocating and refuse beyond a share of this)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["available_bytes"]

_UNKNOWN_HOST_BYTES = 8 * 2**30
"""Assumed where the host's free memory cannot be read (no ``sysconf``, e.g. Windows)."""


def available_bytes(device: Any = None, default: float = _UNKNOWN_HOST_BYTES) -> float:
    """Free bytes: CUDA's free memory for a CUDA `device` (None or a `torch.device`), else
    the host's available physical pages, or `default` where that cannot be read."""
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return default
