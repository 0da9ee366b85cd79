"""The diagrammatic rules of the pull-back through a polynomial activation (METHOD.md,
"Layer-to-layer rules"): with e'_i = sum_p phi^(p)(y*_i) e_i^p / p!, every term of order n of
S_prev(e) = S(e'(e)) - sum_i ln phi'(y*_i + e_i) is a *diagram*:

- a k-vertex A^(k) of the layer above whose legs are j1 straight (a factor phi'), j2 forked
  in two (phi'') and j3 forked in three (phi'''), with j1 + j2 + j3 = k and
  j1 + 2 j2 + 3 j3 = n. It feeds B^(n) with the weight

      n!/k! * k!/(j1! j2! j3!) * (1/2!)^j2 * (1/3!)^j3,

  times the tensor symmetrised over the n output indices. A forked leg is diagonal: all its
  output indices equal the leg's unit.
- a log-determinant vertex: n! times the n-th Taylor coefficient of -ln phi'(y*_i + D) in D,
  a diagonal n-vertex (all n indices on the same unit).

`catalogue` lists them for both the pull-back (`pullback`) and `draw_diagrams`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_order
from ..model.activations import ACTIVATIONS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Diagram", "catalogue", "draw_diagrams"]

MAX_FORK = 3  # highest fork: activations up to cubic
_DERIVATIVE_LABELS = {1: "phi'", 2: "phi''", 3: "phi'''"}


@dataclass(frozen=True)
class Diagram:
    """One term of the pull-back through an activation stage (module docstring): order n,
    vertex k, j1 = straight, j2 = forked2, j3 = forked3; a log-determinant vertex has k = n."""

    order: int
    vertex: int
    straight: int
    forked2: int
    forked3: int
    logdet: bool
    weight: Fraction

    @property
    def legs(self) -> tuple[int, ...]:
        """The fork size of each vertex leg: j1 ones, then j2 twos, then j3 threes."""
        if self.logdet:
            return ()
        return (1,) * self.straight + (2,) * self.forked2 + (3,) * self.forked3

    @property
    def placements(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """The distinct ways to put the n output positions on the legs: one block of positions
        per leg, in the order of `legs`; their mean is the symmetrisation over n! orders."""
        if self.logdet:
            return ((tuple(range(self.order)),),)
        return _placements(self.legs)

    def __str__(self) -> str:
        if self.logdet:
            return f"B^({self.order}) += {self.weight} diag[(-ln phi')_{self.order}]"
        parts = [f"{self.straight} phi'"] if self.straight else []
        parts += [f"{count} {_DERIVATIVE_LABELS[size]}-fork"
                  for size, count in ((2, self.forked2), (3, self.forked3)) if count]
        return f"B^({self.order}) += {self.weight} Sym[A^({self.vertex}): {', '.join(parts)}]"


def catalogue(activation: Any, order: int) -> list[Diagram]:
    """Every diagram feeding the orders 1..order (>= 1) of the pull-back through `activation`
    (a name in `inntheory.ACTIVATIONS`, a degree 1..3 or anything with `.degree`), sorted by
    output order n, then by decreasing vertex order k, the log-determinant vertex last.
    """
    return list(_catalogue(activation_degree(activation), check_order(order)))


def activation_degree(activation: Any) -> int:
    """The polynomial degree of `activation` (name, degree or instance), checked to be 1..3."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            known = ", ".join(sorted(ACTIVATIONS))
            raise ValueError(f"unknown activation {activation!r}; known activations: {known}")
        degree = ACTIVATIONS[activation].degree
    elif isinstance(activation, int) and not isinstance(activation, bool):
        degree = activation
    elif hasattr(activation, "degree"):
        degree = activation.degree
    else:
        raise TypeError("activation must be a name, a degree or an activation with .degree, got "
                        f"{type(activation).__name__}")
    if not 1 <= degree <= MAX_FORK:
        raise ValueError(f"activation degree must be 1..{MAX_FORK}, got {degree}")
    return int(degree)


@cache
def _catalogue(degree: int, order: int) -> tuple[Diagram, ...]:
    diagrams = []
    for n in range(1, order + 1):
        for k in range(n, 0, -1):
            for j3 in range(k + 1 if degree >= 3 else 1):
                j2 = n - k - 2 * j3  # from j1 + j2 + j3 = k and j1 + 2 j2 + 3 j3 = n
                j1 = k - j2 - j3
                if j2 < 0 or j1 < 0 or (j2 and degree < 2):
                    continue
                weight = Fraction(
                    math.factorial(n),
                    math.factorial(j1) * math.factorial(j2) * math.factorial(j3)
                    * 2**j2 * 6**j3,
                )
                diagrams.append(Diagram(n, k, j1, j2, j3, False, weight))
        if degree >= 2:
            diagrams.append(Diagram(n, n, 0, 0, 0, True, Fraction(math.factorial(n))))
    return tuple(diagrams)


@cache
def _placements(legs: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Set partitions of range(sum(legs)) into blocks of the sizes `legs` (ascending), each
    once, the blocks of one size sorted by their first element."""
    n = sum(legs)
    found: list[tuple[tuple[int, ...], ...]] = []

    def grow(free: tuple[int, ...], blocks: list[tuple[int, ...]]) -> None:
        if not free:
            ordered = sorted(blocks, key=lambda block: (len(block), block[0]))
            if tuple(len(block) for block in ordered) == legs:
                found.append(tuple(ordered))
            return
        first, rest = free[0], free[1:]
        for size in sorted(set(legs)):
            for mates in combinations(rest, size - 1):
                left = tuple(p for p in rest if p not in mates)
                grow(left, [*blocks, (first, *mates)])

    grow(tuple(range(n)), [])
    return tuple(found)


# ---------------------------------------------------------------------------- drawing

def draw_diagrams(
    activation: Any, order: int, n: int | None = None, ax: Axes | None = None
) -> Figure:
    """The matplotlib Figure of the catalogue (as `catalogue`), one row per output order, each
    diagram titled with its weight: a vertex is a dot, a straight leg a line labelled phi', a
    forked leg splits at a square labelled phi'' (phi''') into 2 (3) lines, a log-determinant
    vertex is a diamond. `n` draws only the diagrams feeding B^(n) (1 <= n <= order); `ax`
    draws into that Axes, one row (requires `n`, or order == 1)."""

    import matplotlib.pyplot as plt

    diagrams = catalogue(activation, order)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= order):
        raise ValueError(f"n must be an integer in 1..{order}, got {n!r}")
    rows = [n] if n is not None else list(range(1, order + 1))
    if ax is not None and len(rows) != 1:
        raise ValueError("drawing into one Axes needs a single order: pass n=...")
    width = max(sum(d.order == r for d in diagrams) for r in rows)
    if ax is None:
        figure, axes = plt.subplots(len(rows), 1, figsize=(1.3 * width + 0.6, 1.6 * len(rows)),
                                    squeeze=False)
        row_axes = list(axes[:, 0])
    else:
        figure, row_axes = ax.figure, [ax]
    for row, axis in zip(rows, row_axes, strict=True):
        for slot, diagram in enumerate(d for d in diagrams if d.order == row):
            _draw_one(axis, diagram, 2.2 * slot)
        axis.set_xlim(-1.1, 2.2 * width - 1.1)
        axis.set_ylim(-1.45, 1.1)
        axis.set_aspect("equal")
        axis.axis("off")
        axis.set_title(f"order {row}: diagrams feeding $B^{{({row})}}$", loc="left", fontsize=10)
    if ax is None:
        figure.tight_layout()
    return figure


def _draw_one(axis: Axes, diagram: Diagram, x0: float) -> None:
    """One diagram centred at x0: weight on top, vertex, output legs fanning downwards."""
    line = {"color": "black", "lw": 1.2}
    top = 0.3
    axis.text(x0, 0.85, f"weight {diagram.weight}", ha="center", fontsize=9)
    if diagram.logdet:
        axis.plot(x0, top, marker="D", ms=9, mfc="white", mec="tab:red", mew=1.6, zorder=3)
        axis.text(x0 + 0.15, top + 0.12, r"$-\ln\phi'$", fontsize=9, color="tab:red")
        legs = (1,) * diagram.order
    else:
        axis.plot(x0, top, "o", ms=8, color="black", zorder=3)
        axis.text(x0 + 0.15, top + 0.12, f"$A^{{({diagram.vertex})}}$", fontsize=9)
        legs = diagram.legs
    count = sum(legs)
    ends = [(x, -1.0) for x in ([x0] if count == 1 else np.linspace(x0 - 0.9, x0 + 0.9, count))]
    start = 0
    for size in legs:
        targets = ends[start : start + size]
        start += size
        if size == 1:
            (tx, ty) = targets[0]
            axis.plot([x0, tx], [top, ty], **line)
            if not diagram.logdet:
                axis.text(tx, ty - 0.08, r"$\phi'$", ha="center", va="top", fontsize=8)
            continue
        bx, by = sum(t[0] for t in targets) / size, -0.4
        axis.plot([x0, bx], [top, by], **line)
        for tx, ty in targets:
            axis.plot([bx, tx], [by, ty], **line)
        axis.plot(bx, by, "s", ms=5, color="tab:blue", zorder=3)
        axis.text(bx, ty - 0.08, f"$\\{_DERIVATIVE_LABELS[size]}$", ha="center", va="top",
                  fontsize=8, color="tab:blue")

