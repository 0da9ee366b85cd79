"""Shared by the comparisons: number formats, a figure to draw into, the distinct entries
of a symmetric tensor."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor

from ..figures import WIDTH

__all__ = ["format_value", "identity_line", "new_figure", "unique_index"]


def unique_index(dim: int, k: int) -> tuple[Tensor, ...]:
    """Index tuple selecting each entry i1 <= ... <= ik of a symmetric (N,)*k tensor once."""
    combos = torch.tensor(
        list(itertools.combinations_with_replacement(range(dim), k)), dtype=torch.long
    ).reshape(-1, k)
    return tuple(combos.T)


def format_value(value: float) -> str:
    """A number in a table cell: 4 decimals, or scientific notation when tiny or large."""
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.3e}"
    return f"{value:.4f}"


def new_figure(fig: Any, size: tuple[float, float]) -> Any:
    """`fig` cleared, or a new constrained-layout figure of `size` inches when None."""
    import matplotlib.pyplot as plt

    if fig is None:  # at most the lectures' figure width, the height scaled along
        scale = min(1.0, WIDTH / size[0])
        return plt.figure(figsize=(size[0] * scale, size[1] * scale), layout="constrained")
    fig.clear()
    return fig


def identity_line(ax: Any, low: float, high: float) -> None:
    """The dashed line y = x over [low, high], padded by 5 %."""
    pad = 0.05 * (high - low) or 1.0
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=1, label="y = x")
