"""Compare learned actions with a true one, order by order (:func:`compare`).

Actions sharing a compressed layout (`Action.aligned`, e.g. `LatticeAction`s of one lattice)
are compared on their stored tensors with the numbers of the dense comparison (each norm the
dense one, `Action.stored_norm`); others are expanded with `to_dense()`.
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
from .display import format_value, identity_line, new_figure, unique_index

__all__ = ["Comparison", "ComparisonRow", "CompressedComparison", "compare"]

_MAX_SCATTER_POINTS = 5000  # entries drawn per order (a fixed-seed subsample beyond)


def _ratio(value: float, reference: float, scale: float) -> tuple[float, bool]:
    """(value / reference, True) when reference > 0, else (scale * value, False): norms of
    tensors divided by `scale`, so that nothing overflows or underflows."""
    return (value / reference, True) if reference > 0 else (scale * value, False)


@dataclass(frozen=True)
class ComparisonRow:
    """One order k of one learned action L against the true T (see :func:`compare`).

    Attributes:
        true_norm: ||T||, the Frobenius norm of the true A^(k).
        relative: whether `error`, `leakage`, `true_offdiagonal` are relative to ||T|| (False:
            absolute, as ||T|| = 0); `diagonal_relative` likewise for `diagonal_error`.
        error, diagonal_error, leakage, true_offdiagonal: ||L - T||, ||diag L - diag T||,
            ||offdiag L||, ||offdiag T||.
        true_diagonal_mean, learned_diagonal_mean: mean_i T_{i..i}, mean_i L_{i..i}.
        fisher_divergence: the model's relative Fisher divergence on the held-out data
            (`inntheory.fisher_divergence`); None without data.
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
    """Order-by-order comparison of learned actions with a true one (made by :func:`compare`):
    one :class:`ComparisonRow` per (model, order), the compared orders, the models' labels,
    the common point (N,), and the tensors {k: true A^(k)}, {model: {k: A^(k)}} (float64, CPU).
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

    def _table(self) -> Table:
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
            line = [str(k), scale, format_value(first.true_diagonal_mean),
                    format_value(first.true_offdiagonal)]
            for model in self.models:
                r = self.row(k, model)
                values = [r.error, r.diagonal_error, r.leakage, r.learned_diagonal_mean]
                values += [r.fisher_divergence] if fisher else []
                line += [format_value(v) for v in values]
            cells.append(line)
        notes = ("error: ||L - T||, diag err: on i1 = .. = ik, leakage: ||offdiag L|| (true "
                 "offdiag: ||offdiag T||), all / ||T|| when scale is rel, absolute when "
                 "||T|| = 0 (abs); true diag, diag mean: mean_i A_i..i")
        return Table(headers, cells, "Action comparison, order by order", notes, index=2)

    def plot(self, fig: Any = None) -> Any:
        """Figure (into `fig`, cleared, or a new one): learned vs true entries per order, heat
        maps of the true and learned A^(2), bars of the diagonals of A^(3) and A^(4)."""
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
            low, high = float(np.min(true)), float(np.max(true))
            for model in self.models:
                learned = self.learned[model][k][index].numpy()
                ax.scatter(true[keep], learned[keep], s=8, alpha=0.6, label=model)
                low, high = min(low, float(learned.min())), max(high, float(learned.max()))
            identity_line(ax, low, high)
            ax.set(title=f"$A^{{({k})}}$ entries ($i_1 \\leq \\dots \\leq i_{k}$)",
                   xlabel="true coefficient", ylabel="learned coefficient")
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
                diagonal = tensor[(torch.arange(dim),) * k].numpy()
                ax.bar(np.arange(dim) + offset, diagonal, width, label=name)
            ax.set(title=f"diagonal $A^{{({k})}}_{{i \\dots i}}$", xlabel="site i",
                   ylabel="coefficient")
            site_ticks(ax, "x")
        legend_outside(axes[-1])


@dataclass(repr=False)
class CompressedComparison(Comparison):
    """A `Comparison` whose `true` and `learned` hold the stored tensors of a compressed
    layout (a `LatticeAction`'s couplings C^(k) over the common window)."""

    def plot(self, fig: Any = None) -> Any:
        """Figure: learned against true stored entries, one panel per order (y = x line)."""
        fig = new_figure(fig, (4.0 * len(self.orders), 3.6))
        axes = fig.subplots(1, len(self.orders), squeeze=False)[0]
        for ax, k in zip(axes, self.orders, strict=True):
            true = self.true[k].reshape(-1).numpy()
            for model in self.models:
                ax.scatter(true, self.learned[model][k].reshape(-1).numpy(), s=8, alpha=0.6,
                           label=model)
            identity_line(ax, float(true.min()), float(true.max()))
            ax.set(title=f"$C^{{({k})}}$ couplings over offsets", xlabel="true",
                   ylabel="learned")
        legend_outside(axes[-1])
        return fig


def check_action(value: Any, name: str) -> None:
    """TypeError unless `value` is an `Action`."""
    if not isinstance(value, Action):
        raise TypeError(f"{name!s} must be an action (PolynomialAction, LatticeAction), got "
                        f"{type(value).__name__}")


def _check_arguments(true: Any, learned: Any, orders: Sequence[int]
                     ) -> tuple[dict[str, Action], tuple[int, ...]]:
    if isinstance(learned, Action):
        learned = {"learned": learned}
    if not isinstance(learned, Mapping) or not learned:
        raise ValueError("learned must be an action or a non-empty {label: action}")
    for name, action in [("true", true), *learned.items()]:
        check_action(action, name)
    orders = tuple(orders)
    if not orders or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1
                         for k in orders):
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
    """One row from the norms of T / s and L / s, s the largest |entry| of both (scale-free)."""
    norm, diagonal = layout.stored_norm, layout.diagonal_entries
    offdiagonal = layout.offdiagonal_entries
    scale = max(float(reference.abs().max()), float(estimate.abs().max())) or 1.0
    t, lrn = reference / scale, estimate / scale
    total = norm(t)
    error, relative = _ratio(norm(lrn - t), total, scale)
    diagonal_error, diagonal_relative = _ratio(norm(diagonal(lrn) - diagonal(t)),
                                               norm(diagonal(t)), scale)
    return ComparisonRow(
        model=model, order=k, true_norm=layout.dense_norm(reference), relative=relative,
        error=error, diagonal_relative=diagonal_relative, diagonal_error=diagonal_error,
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


def compare(true: Action, learned: Action | Mapping[str, Action],
            orders: Sequence[int] = (1, 2, 3, 4), *, data: Any = None) -> Comparison:
    """Compare learned actions with the true one, order by order.

    Per order k, with T the true and L a learned A^(k) (Frobenius norms over all entries):
    error ||L - T|| / ||T||; diagonal error ||diag L - diag T|| / ||diag T|| over the entries
    i1 = ... = ik; leakage ||offdiag L|| / ||T|| next to ||offdiag T|| / ||T||; the means of
    diag T and diag L. Where ||T|| = 0 (||diag T|| = 0) the norms are absolute ("abs").

    Arguments:
        true: the reference action.
        learned: one action, or several as {label: action} (one column group each).
        orders: orders k >= 1 to compare; each must be present (k <= .order) in every action.
        data: held-out samples of the true distribution, (n, N), or None; when given, each
            row carries its model's relative Fisher divergence on them (column "fisher").

    Returns:
        A :class:`Comparison` (a :class:`CompressedComparison` for a shared compressed
        layout). Comparing an action with itself gives exactly zero errors.

    Raises:
        TypeError: an argument that is not an action.
        ValueError: actions, orders or data that do not fit together (the message says how).
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
            raise ValueError(f"{name!s} is expanded around a different point than the true action "
                             f"(max difference {float((other - point).abs().max()):.3e}); "
                             "re-expand one")
    reference = _stored(layout, orders)
    estimates = {str(m): _stored(a, orders) for m, a in learned.items()}
    rows = [replace(_row(layout, model, k, reference[k], stored[k]),
                    fisher_divergence=fisher.get(model))
            for model, stored in estimates.items() for k in orders]
    result = CompressedComparison if compressed else Comparison
    return result(rows, orders, tuple(estimates), point, reference, estimates)
