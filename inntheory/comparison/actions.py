"""Compare learned actions with a true one, order by order.

:func:`compare` puts a true action next to one or several learned ones (an INN, a
score-matching baseline, ...): per order k the relative Frobenius error, the error of the
local (diagonal) part, the off-diagonal leakage and the diagonal means, as a
:class:`Comparison` (table, HTML, JSON-able dict, figure).

Any representation of the action protocol (`inntheory.actions.base.Action`) is accepted. When
the actions share a compressed layout (`Action.aligned`: e.g. `LatticeAction`s of one lattice,
on their largest window) the comparison runs on the stored tensors and reports exactly the
numbers of the dense comparison, each norm being the dense one (`Action.stored_norm`);
otherwise every action is expanded with `to_dense()`.

Conventions are those of ``METHOD.md``: S(x0 + d) = sum_k (1/k!) A^(k) d...d.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..actions.base import Action
from ..figures import legend_outside, site_ticks
from ..tables import Table, Tabular
from .display import format_value, new_figure, unique_index

__all__ = ["Comparison", "ComparisonRow", "CompressedComparison", "compare"]

# Entries drawn per order in the scatter plots (a fixed-seed subsample beyond this).
_MAX_SCATTER_POINTS = 5000


def _diagonal(tensor: Tensor) -> Tensor:
    index = torch.arange(tensor.shape[0])
    return tensor[(index,) * tensor.dim()]


def _ratio(value: float, reference: float, scale: float) -> tuple[float, bool]:
    """value / reference when reference > 0 (relative), else scale * value (absolute).

    `value` and `reference` are norms of tensors divided by `scale`, so that neither the
    squares inside the norms nor the ratio overflow or underflow.
    """
    return (value / reference, True) if reference > 0 else (scale * value, False)


# -- comparing actions -------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    """One order k of one learned action against the true one.

    Attributes:
        model: label of the learned action.
        order: k.
        true_norm: ||T||, the Frobenius norm of the true A^(k).
        relative: True when ||T|| > 0 and `error`, `leakage` are relative to ||T||;
            False when ||T|| = 0 (e.g. A^(1) of a symmetric theory) and they are absolute.
        error: ||L - T|| (/ ||T|| when `relative`).
        diagonal_relative: True when the diagonal error is relative to ||diag T|| > 0.
        diagonal_error: ||diag(L) - diag(T)|| over the local entries i1 = ... = ik
            (/ ||diag T|| when `diagonal_relative`).
        leakage: ||offdiag(L)|| (/ ||T|| when `relative`), the learned weight off the diagonal.
        true_offdiagonal: ||offdiag(T)|| on the same scale, what `leakage` should be.
        true_diagonal_mean: mean_i T_{i..i}.
        learned_diagonal_mean: mean_i L_{i..i}.
        fisher_divergence: the model's relative Fisher divergence on the held-out data
            (`inntheory.fisher_divergence`, the same in each of its rows); None without data.
    """

    model: str
    order: int
    true_norm: float
    relative: bool
    error: float
    diagonal_relative: bool
    diagonal_error: float
    leakage: float
    true_offdiagonal: float
    true_diagonal_mean: float
    learned_diagonal_mean: float
    fisher_divergence: float | None = None


@dataclass(repr=False)  # shown as its table (Tabular)
class Comparison(Tabular):
    """Order-by-order comparison of learned actions with a true one (made by :func:`compare`).

    Attributes:
        rows: one :class:`ComparisonRow` per (model, order), models in the order given.
        orders: the compared orders.
        models: labels of the learned actions.
        point: the common expansion point, (N,).
        true: {k: true A^(k)} (float64, CPU).
        learned: {model: {k: learned A^(k)}} (float64, CPU).
    """

    rows: list[ComparisonRow]
    orders: tuple[int, ...]
    models: tuple[str, ...]
    point: Tensor
    true: dict[int, Tensor] = field(repr=False)
    learned: dict[str, dict[int, Tensor]] = field(repr=False)

    def row(self, order: int, model: str | None = None) -> ComparisonRow:
        """The row of `order` for `model` (the only model when there is one)."""
        if model is None:
            if len(self.models) != 1:
                raise ValueError(f"several models {self.models}: name one")
            model = self.models[0]
        for row in self.rows:
            if row.order == order and row.model == model:
                return row
        raise ValueError(f"no row for order {order} and model {model!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: orders, models, point and the rows as dicts."""
        return {
            "orders": list(self.orders),
            "models": list(self.models),
            "point": self.point.tolist(),
            "rows": [{k: v for k, v in asdict(row).items()
                      if not (k == "fisher_divergence" and v is None)} for row in self.rows],
        }

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        headers = ["k", "scale", "true diag", "true offdiag"]
        fisher = self.rows[0].fisher_divergence is not None
        for model in self.models:
            headers += [f"{model}: error", "diag err", "leakage", "diag mean"]
            headers += ["fisher"] if fisher else []
        cells = []
        for k in self.orders:
            first = self.row(k, self.models[0])
            scale = "rel" if first.relative else "abs"
            if first.relative and not first.diagonal_relative:
                scale = "rel, diag abs"
            line = [
                str(k),
                scale,
                format_value(first.true_diagonal_mean),
                format_value(first.true_offdiagonal),
            ]
            for model in self.models:
                r = self.row(k, model)
                line += [
                    format_value(r.error),
                    format_value(r.diagonal_error),
                    format_value(r.leakage),
                    format_value(r.learned_diagonal_mean),
                ]
                line += [format_value(r.fisher_divergence)] if fisher else []
            cells.append(line)
        return headers, cells

    def _table(self) -> Table:
        headers, cells = self._cells()
        notes = (
            "error: ||L - T||, diag err: on i1 = .. = ik, leakage: ||offdiag L|| (true "
            "offdiag: ||offdiag T||), all / ||T|| when scale is rel, absolute when ||T|| = 0 "
            "(abs); true diag, diag mean: mean_i A_i..i"
        )
        return Table(headers, cells, "Action comparison, order by order", notes, index=2)


    def plot(self, fig: Any = None) -> Any:
        """Figure: learned vs true entries per order (y = x line), heat maps of the true and
        learned A^(2), bars of the diagonals of A^(3) and A^(4), true against learned.

        Arguments:
            fig: a matplotlib Figure to draw into (cleared), or None for a new one.

        Returns:
            The matplotlib Figure.
        """
        heat = 2 in self.orders
        bars = [k for k in (3, 4) if k in self.orders]
        n_rows = 1 + heat + bool(bars)
        fig = new_figure(fig, (4.0 * max(len(self.orders), 1 + len(self.models)), 3.6 * n_rows))
        panels = fig.subfigures(n_rows, 1, squeeze=False)[:, 0]
        self._plot_scatter(panels[0])
        if heat:
            self._plot_heat(panels[1])
        if bars:
            self._plot_bars(panels[-1], bars)
        return fig

    def _plot_scatter(self, panel: Any) -> None:
        axes = panel.subplots(1, len(self.orders), squeeze=False)[0]
        generator = np.random.default_rng(0)
        for ax, k in zip(axes, self.orders, strict=True):
            index = unique_index(self.point.shape[0], k)
            true = self.true[k][index].numpy()
            keep = np.arange(true.size)
            if true.size > _MAX_SCATTER_POINTS:
                keep = np.sort(generator.choice(true.size, _MAX_SCATTER_POINTS, replace=False))
            for model in self.models:
                learned = self.learned[model][k][index].numpy()
                ax.scatter(true[keep], learned[keep], s=8, alpha=0.6, label=model)
            low, high = float(np.min(true)), float(np.max(true))
            for model in self.models:
                learned = self.learned[model][k][index].numpy()
                low, high = min(low, float(learned.min())), max(high, float(learned.max()))
            pad = 0.05 * (high - low) or 1.0
            ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=1, label="y = x")
            ax.set(
                title=f"$A^{{({k})}}$ entries ($i_1 \\leq \\dots \\leq i_{k}$)",
                xlabel="true coefficient",
                ylabel="learned coefficient",
            )
        legend_outside(axes[-1])

    def _plot_heat(self, panel: Any) -> None:
        matrices = [("true", self.true[2])] + [(m, self.learned[m][2]) for m in self.models]
        limit = max(float(t.abs().max()) for _, t in matrices) or 1.0
        axes = panel.subplots(1, len(matrices), squeeze=False)[0]
        for ax, (name, matrix) in zip(axes, matrices, strict=True):
            image = ax.imshow(matrix.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set(title=f"$A^{{(2)}}$ {name}", xlabel="site j", ylabel="site i")
            site_ticks(ax)
        panel.colorbar(image, ax=list(axes), label="coefficient")

    def _plot_bars(self, panel: Any, orders: list[int]) -> None:
        axes = panel.subplots(1, len(orders), squeeze=False)[0]
        dim = self.point.shape[0]
        width = 0.8 / (1 + len(self.models))
        for ax, k in zip(axes, orders, strict=True):
            series = [("true", self.true[k])] + [(m, self.learned[m][k]) for m in self.models]
            for s, (name, tensor) in enumerate(series):
                offset = (s - len(self.models) / 2) * width
                ax.bar(np.arange(dim) + offset, _diagonal(tensor).numpy(), width, label=name)
            ax.set(title=f"diagonal $A^{{({k})}}_{{i \\dots i}}$", xlabel="site i",
                   ylabel="coefficient")
            site_ticks(ax, "x")
        legend_outside(axes[-1])


@dataclass(repr=False)
class CompressedComparison(Comparison):
    """A `Comparison` run in a compressed layout: `true` and `learned` hold the stored
    tensors of that layout (a `LatticeAction`'s couplings C^(k) over the common window,
    shape (*window) * (k - 1)), not dense tensors."""

    def plot(self, fig: Any = None) -> Any:
        """Figure: learned against true stored entries, one panel per order (y = x line)."""
        fig = new_figure(fig, (4.0 * len(self.orders), 3.6))
        axes = fig.subplots(1, len(self.orders), squeeze=False)[0]
        for ax, k in zip(axes, self.orders, strict=True):
            true = self.true[k].reshape(-1).numpy()
            for model in self.models:
                ax.scatter(true, self.learned[model][k].reshape(-1).numpy(), s=8, alpha=0.6,
                           label=model)
            low, high = float(true.min()), float(true.max())
            pad = 0.05 * (high - low) or 1.0
            ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=1, label="y = x")
            ax.set(title=f"$C^{{({k})}}$ couplings over offsets", xlabel="true",
                   ylabel="learned")
        legend_outside(axes[-1])
        return fig


def _check_arguments(true: Any, learned: Any, orders: Sequence[int]
                     ) -> tuple[dict[str, Action], tuple[int, ...]]:
    if isinstance(learned, Action):
        learned = {"learned": learned}
    if not isinstance(learned, Mapping) or not learned:
        raise ValueError("learned must be an action or a non-empty {label: action}")
    for name, action in [("true", true), *learned.items()]:
        if not isinstance(action, Action):
            raise TypeError(f"{name!s} must be an action (PolynomialAction, LatticeAction), "
                            f"got {type(action).__name__}")
    orders = tuple(orders)
    if not orders or any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in orders
    ):
        raise ValueError(f"orders must be a non-empty sequence of integers >= 1, got {orders}")
    orders = tuple(sorted({int(k) for k in orders}))
    for name, action in [("the true action", true), *learned.items()]:
        missing = [k for k in orders if k > action.order]
        if missing:
            raise ValueError(f"{name!s} has orders up to {action.order}; order {missing[0]} "
                             "is missing from it")
    return dict(learned), orders


def _stored(action: Action, orders: Sequence[int]) -> dict[int, Tensor]:
    return {k: action.tensor(k).detach().to("cpu", torch.float64) for k in orders}


def _row(layout: Action, model: str, k: int, reference: Tensor, estimate: Tensor
         ) -> ComparisonRow:
    """One row: norms of T / s and L / s, s the largest |entry| of both, so that the ratios
    are scale-free (no overflow of the squares at 1e200, no underflow at 1e-200)."""
    norm, diagonal = layout.stored_norm, layout.diagonal_entries
    offdiagonal = layout.offdiagonal_entries
    scale = max(float(reference.abs().max()), float(estimate.abs().max()))
    scale = scale if scale > 0 else 1.0
    t, lrn = reference / scale, estimate / scale
    total = norm(t)
    error, relative = _ratio(norm(lrn - t), total, scale)
    diagonal_error, diagonal_relative = _ratio(norm(diagonal(lrn) - diagonal(t)),
                                               norm(diagonal(t)), scale)
    return ComparisonRow(
        model=model,
        order=k,
        true_norm=layout.dense_norm(reference),
        relative=relative,
        error=error,
        diagonal_relative=diagonal_relative,
        diagonal_error=diagonal_error,
        leakage=_ratio(norm(offdiagonal(lrn)), total, scale)[0],
        true_offdiagonal=_ratio(norm(offdiagonal(t)), total, scale)[0],
        true_diagonal_mean=float(diagonal(reference).mean()),
        learned_diagonal_mean=float(diagonal(estimate).mean()),
    )


def _fisher(true: Action, learned: dict[str, Action], data: Any) -> dict[str, float]:
    """{label: relative Fisher divergence of the learned action on data}; {} without data."""
    if data is None:
        return {}
    from ..diagnostics import fisher_divergence  # diagnostics imports this package

    shape = tuple(getattr(data, "shape", ()))
    if len(shape) != 2 or shape[1] != true.dim:
        raise ValueError(f"data must have shape (n, N = {true.dim}), got {shape or type(data)}")
    return {str(m): fisher_divergence(action, true, data) for m, action in learned.items()}


def compare(
    true: Action,
    learned: Action | Mapping[str, Action],
    orders: Sequence[int] = (1, 2, 3, 4),
    *,
    data: Any = None,
) -> Comparison:
    """Compare learned actions with the true one, order by order.

    Per order k, with T the true and L a learned A^(k) (Frobenius norms over all entries):
    error ||L - T|| / ||T||; diagonal error ||diag L - diag T|| / ||diag T|| over the local
    entries i1 = ... = ik; leakage ||offdiag L|| / ||T||, reported next to ||offdiag T|| / ||T||
    (what it should be); the means of diag T and diag L. When ||T|| = 0 (e.g. A^(1) of a
    symmetric theory) the norms are reported absolute and the row says so (``relative`` is
    False, "abs" in the table); likewise for the diagonal when ||diag T|| = 0.

    Arguments:
        true: the reference action.
        learned: one action, or several as {label: action} (one column group each).
        orders: orders k >= 1 to compare; each must be present (k <= .order) in every action.
        data: held-out samples of the true distribution, (n, N), or None. When given, every
            row carries its model's relative Fisher divergence on them,
            E_data |grad S_learned - grad S_true|^2 / E_data |grad S_true|^2 (column
            "fisher" of the table).

    Any action representation is accepted: `LatticeAction`s of one lattice are compared on
    their compressed couplings with the same numbers as the dense comparison (a
    :class:`CompressedComparison`); mixed representations are expanded to dense tensors.

    Returns:
        A :class:`Comparison`. Comparing an action with itself gives exactly zero errors.

    Raises:
        TypeError: if an argument is not an action.
        ValueError: on different dimensions or expansion points, no learned action, orders
            that are empty, not integers >= 1, or missing from an action (named), data that
            are not (n, N) or hold NaN/inf.
        MemoryError: representations that must be expanded to dense tensors that do not fit.
    """
    learned, orders = _check_arguments(true, learned, orders)
    fisher = _fisher(true, learned, data)
    forms = true.aligned(list(learned.values()))
    compressed = forms is not None
    if forms is None:
        forms = [action.to_dense() for action in (true, *learned.values())]
    layout, learned = forms[0], dict(zip(learned, forms[1:], strict=True))
    point = layout.point.detach().to("cpu", torch.float64)
    for name, action in learned.items():
        if action.dim != layout.dim:
            raise ValueError(f"{name!s} has dim {action.dim} but the true action has "
                             f"{layout.dim}")
        other = action.point.detach().to("cpu", torch.float64)
        if not torch.allclose(other, point, rtol=1e-10, atol=1e-12):
            raise ValueError(
                f"{name!s} is expanded around a different point than the true action "
                f"(max difference {float((other - point).abs().max()):.3e}); re-expand one"
            )
    reference = _stored(layout, orders)
    estimates = {str(m): _stored(a, orders) for m, a in learned.items()}
    rows = [replace(_row(layout, model, k, reference[k], stored[k]),
                    fisher_divergence=fisher.get(model))
            for model, stored in estimates.items() for k in orders]
    result = CompressedComparison if compressed else Comparison
    return result(rows, orders, tuple(estimates), point, reference, estimates)
