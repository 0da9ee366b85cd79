"""Tables and figures shared by the comparisons: number formats, fixed-width and HTML
tables, a figure to draw into, the distinct entries of a symmetric tensor."""

from __future__ import annotations

import html
import itertools
from typing import Any

import torch
from torch import Tensor

__all__ = ["fixed_width", "format_value", "html_table", "new_figure", "unique_index"]


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


def fixed_width(headers: list[str], rows: list[list[str]], title: str) -> str:
    """A right-aligned text table under a title line."""
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([title, line, "-" * len(line), *body])


def html_table(headers: list[str], rows: list[list[str]], caption: str) -> str:
    """The same table as HTML (cells escaped)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v.strip())}</td>" for v in r) + "</tr>" for r in rows
    )
    return (
        f"<table><caption>{html.escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def new_figure(fig: Any, size: tuple[float, float]) -> Any:
    """`fig` cleared, or a new constrained-layout figure of `size` inches when None."""
    import matplotlib.pyplot as plt

    if fig is None:
        return plt.figure(figsize=size, layout="constrained")
    fig.clear()
    return fig
