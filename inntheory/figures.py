"""One figure style for the lectures and the package's plots, readable in a 1400 px window:
`use_style()` sets matplotlib's defaults (figures at most `WIDTH` inches at `DPI`, fonts of
10-12 pt); `heatmap`, `site_ticks` and `legend_outside` draw what lecture figures share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

__all__ = ["DPI", "STYLE", "WIDTH", "heatmap", "legend_outside", "site_ticks", "use_style"]

WIDTH = 9.5
"""Inches: the widest lecture figure, 950 px at `DPI`, fits a notebook in a 1400 px window."""
DPI = 100
STYLE = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.figsize": (WIDTH, 3.8),
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "lines.linewidth": 1.6,
    "image.cmap": "RdBu_r",
}
"""matplotlib rcParams of the lectures (`use_style` sets them)."""


def use_style() -> None:
    """Set the lecture style (`STYLE`) as matplotlib's defaults."""
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)


def site_ticks(ax: Any, axis: str = "both") -> None:
    """Integer ticks only on `axis` ("x", "y" or "both"): sites and offsets are integers."""
    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"{name}axis").set_major_locator(MaxNLocator(nbins="auto", integer=True))


def heatmap(
    ax: Any, matrix: Any, *, label: str, limit: float | None = None, **imshow: Any
) -> Any:
    """A 2-d `matrix` as a diverging colour map in [-limit, limit] (default the largest
    |entry|) with its colour bar labelled `label` and integer site ticks; further keyword
    arguments go to ``ax.imshow``. Returns the ``AxesImage``."""
    values = np.asarray(matrix, dtype=float)
    if limit is None:
        limit = float(np.abs(values).max()) if values.size else 0.0
    limit = limit or 1.0
    image = ax.imshow(values, cmap=imshow.pop("cmap", "RdBu_r"), vmin=-limit, vmax=limit,
                      **imshow)
    ax.figure.colorbar(image, ax=ax, label=label, shrink=0.9)
    site_ticks(ax)
    return image


def legend_outside(ax: Any, **legend: Any) -> Any:
    """The legend of `ax` to the right of its axes (upper left corner at the axes' top)."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     **legend)
