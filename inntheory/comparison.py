"""Compare actions order by order, and data against model samples cumulant by cumulant.

- :func:`compare` puts a true :class:`~inntheory.actions.dense.PolynomialAction` next to one or
  several learned ones (an INN, a score-matching baseline, ...): per order k the relative
  Frobenius error, the error of the local (diagonal) part, the off-diagonal leakage and the
  diagonal means, as a :class:`Comparison` (table, HTML, JSON-able dict, figure).
- :func:`cumulants` estimates kappa_1..kappa_4 of samples x: (n, N) as tensors (N,)*k.
- :func:`compare_cumulants` measures data against model samples: per order, the largest
  difference in units of its standard error (delete-one-block jackknife), so "matches up to
  the third cumulant" is a measured statement (:meth:`CumulantComparison.within`).

Conventions are those of ``METHOD.md``: S(x0 + d) = sum_k (1/k!) A^(k) d...d.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .actions.dense import PolynomialAction
from .figures import WIDTH as FIGURE_WIDTH
from .figures import legend_outside, site_ticks
from .tables import WIDTH, Table

__all__ = [
    "Comparison",
    "ComparisonRow",
    "CumulantComparison",
    "CumulantRow",
    "compare",
    "compare_cumulants",
    "cumulants",
]

_MAX_CUMULANT_ORDER = 4
# Entries drawn per order in the scatter plots (a fixed-seed subsample beyond this).
_MAX_SCATTER_POINTS = 5000


# -- helpers -----------------------------------------------------------------------------------


def _unique_index(dim: int, k: int) -> tuple[Tensor, ...]:
    """Index tuple selecting each entry i1 <= ... <= ik of a symmetric (N,)*k tensor once."""
    combos = torch.tensor(
        list(itertools.combinations_with_replacement(range(dim), k)), dtype=torch.long
    ).reshape(-1, k)
    return tuple(combos.T)


def _diagonal(tensor: Tensor) -> Tensor:
    index = torch.arange(tensor.shape[0])
    return tensor[(index,) * tensor.dim()]


def _off_diagonal(tensor: Tensor) -> Tensor:
    """The tensor with its diagonal i1 = ... = ik set to zero (a vector has no off-diagonal)."""
    if tensor.dim() < 2:
        return torch.zeros_like(tensor)
    rest = tensor.clone()
    index = torch.arange(tensor.shape[0])
    rest[(index,) * tensor.dim()] = 0.0
    return rest


def _ratio(value: float, reference: float, scale: float) -> tuple[float, bool]:
    """value / reference when reference > 0 (relative), else scale * value (absolute).

    `value` and `reference` are norms of tensors divided by `scale`, so that neither the
    squares inside the norms nor the ratio overflow or underflow (see `_norm`).
    """
    return (value / reference, True) if reference > 0 else (scale * value, False)


def _norm(tensor: Tensor) -> float:
    """The Frobenius norm, free of overflow and underflow: max|T| * ||T / max|T|||.

    ``torch.linalg.vector_norm`` squares the entries: 1e200 gives inf and 1e-200 gives 0.
    """
    scale = float(tensor.abs().max()) if tensor.numel() else 0.0
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    return scale * float(torch.linalg.vector_norm(tensor / scale))


def _format(value: float) -> str:
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.3e}"
    return f"{value:.4f}"


def _new_figure(fig: Any, size: tuple[float, float]) -> Any:
    import matplotlib.pyplot as plt

    if fig is None:  # at most the lectures' figure width, the height scaled along
        scale = min(1.0, FIGURE_WIDTH / size[0])
        return plt.figure(figsize=(size[0] * scale, size[1] * scale), layout="constrained")
    fig.clear()
    return fig


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


@dataclass
class Comparison:
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
            "rows": [asdict(row) for row in self.rows],
        }

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        headers = ["k", "scale", "true diag", "true offdiag"]
        for model in self.models:
            headers += [f"{model}: error", "diag err", "leakage", "diag mean"]
        cells = []
        for k in self.orders:
            first = self.row(k, self.models[0])
            scale = "rel" if first.relative else "abs"
            if first.relative and not first.diagonal_relative:
                scale = "rel, diag abs"
            line = [
                str(k),
                scale,
                _format(first.true_diagonal_mean),
                _format(first.true_offdiagonal),
            ]
            for model in self.models:
                r = self.row(k, model)
                line += [
                    _format(r.error),
                    _format(r.diagonal_error),
                    _format(r.leakage),
                    _format(r.learned_diagonal_mean),
                ]
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

    def table(self, width: int = WIDTH) -> str:
        """Fixed-width text table of lines up to `width` characters, one column group per
        learned action (groups that do not fit are shown below, with the order repeated)."""
        return self._table().text(width)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self._table().html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.table())  # IPython's text form: the table, not every field

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
        fig = _new_figure(fig, (4.0 * max(len(self.orders), 1 + len(self.models)), 3.6 * n_rows))
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
            index = _unique_index(self.point.shape[0], k)
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


def _coefficients(action: PolynomialAction, orders: Sequence[int], name: str) -> dict:
    missing = [k for k in orders if k > action.order]
    if missing:
        raise ValueError(
            f"{name} has orders up to {action.order}; order {missing[0]} is missing from it"
        )
    return {k: action.coefficient(k).detach().to("cpu", torch.float64) for k in orders}


def compare(
    true: PolynomialAction,
    learned: PolynomialAction | Mapping[str, PolynomialAction],
    orders: Sequence[int] = (1, 2, 3, 4),
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

    A :class:`~inntheory.actions.lattice.LatticeAction` is accepted anywhere: when every
    action is one (same lattice) the comparison runs on the compressed couplings with the same
    numbers as the dense one (a ``LatticeComparison``); mixed with dense actions it is
    expanded to its dense tensors.

    Returns:
        A :class:`Comparison`. Comparing an action with itself gives exactly zero errors.

    Raises:
        TypeError: if an argument is not a PolynomialAction.
        ValueError: on different dimensions or expansion points, no learned action, orders
            that are empty, not integers >= 1, or missing from an action (named).
    """
    from .lattice_compare import lattice_support  # compressed LatticeActions (issue 13)

    compressed, true, learned = lattice_support(true, learned, orders)
    if compressed is not None:
        return compressed
    if isinstance(learned, PolynomialAction):
        learned = {"learned": learned}
    if not isinstance(learned, Mapping) or not learned:
        raise ValueError("learned must be a PolynomialAction or a non-empty {label: action}")
    for name, action in [("true", true), *learned.items()]:
        if not isinstance(action, PolynomialAction):
            raise TypeError(f"{name!s} must be a PolynomialAction, got {type(action).__name__}")
    orders = tuple(orders)
    if not orders or any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in orders
    ):
        raise ValueError(f"orders must be a non-empty sequence of integers >= 1, got {orders}")
    orders = tuple(sorted({int(k) for k in orders}))
    point = true.point.detach().to("cpu", torch.float64)
    for name, action in learned.items():
        if action.dim != true.dim:
            raise ValueError(f"{name!s} has dim {action.dim} but the true action has {true.dim}")
        other = action.point.detach().to("cpu", torch.float64)
        if not torch.allclose(other, point, rtol=1e-10, atol=1e-12):
            raise ValueError(
                f"{name!s} is expanded around a different point than the true action "
                f"(max difference {float((other - point).abs().max()):.3e}); re-expand one"
            )
    reference = _coefficients(true, orders, "the true action")
    estimates = {str(m): _coefficients(a, orders, f"{m!s}") for m, a in learned.items()}
    rows = []
    for model, coefficients in estimates.items():
        for k in orders:
            # Norms of T / s and L / s, s = the largest |entry| of both: ratios are
            # scale-free (no overflow of the squares at 1e200, no underflow at 1e-200).
            scale = max(float(reference[k].abs().max()), float(coefficients[k].abs().max()))
            scale = scale if scale > 0 else 1.0
            t, lrn = reference[k] / scale, coefficients[k] / scale
            norm = float(torch.linalg.vector_norm(t))
            diagonal_norm = float(torch.linalg.vector_norm(_diagonal(t)))
            error, relative = _ratio(float(torch.linalg.vector_norm(lrn - t)), norm, scale)
            diagonal_error, diagonal_relative = _ratio(
                float(torch.linalg.vector_norm(_diagonal(lrn) - _diagonal(t))), diagonal_norm,
                scale,
            )
            rows.append(
                ComparisonRow(
                    model=model,
                    order=k,
                    true_norm=_norm(reference[k]),
                    relative=relative,
                    error=error,
                    diagonal_relative=diagonal_relative,
                    diagonal_error=diagonal_error,
                    leakage=_ratio(
                        float(torch.linalg.vector_norm(_off_diagonal(lrn))), norm, scale
                    )[0],
                    true_offdiagonal=_ratio(
                        float(torch.linalg.vector_norm(_off_diagonal(t))), norm, scale
                    )[0],
                    true_diagonal_mean=float(_diagonal(reference[k]).mean()),
                    learned_diagonal_mean=float(_diagonal(coefficients[k]).mean()),
                )
            )
    return Comparison(rows, orders, tuple(estimates), point, reference, estimates)


# -- cumulants ---------------------------------------------------------------------------------


def _as_samples(x: Any, name: str) -> Tensor:
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


def _check_order(order: Any) -> int:
    if (
        isinstance(order, bool)
        or not isinstance(order, (int, np.integer))
        or not 1 <= order <= _MAX_CUMULANT_ORDER
    ):
        raise ValueError(f"order must be an integer in 1..{_MAX_CUMULANT_ORDER}, got {order!r}")
    return int(order)


def _moment_sums(y: Tensor, order: int) -> list[Tensor]:
    """[sum y, sum y⊗y, ...] up to `order` over the rows of y: (n, N), in row chunks."""
    n, dim = y.shape
    sums = [y.new_zeros((dim,) * k) for k in range(1, order + 1)]
    chunk = max(1, 2**22 // dim**2)
    for rows in torch.split(y, chunk):
        sums[0] += rows.sum(0)
        if order >= 2:
            pair = (rows[:, :, None] * rows[:, None, :]).reshape(rows.shape[0], dim * dim)
            sums[1] += rows.T @ rows
            if order >= 3:
                sums[2] += (pair.T @ rows).reshape(dim, dim, dim)
            if order >= 4:
                sums[3] += (pair.T @ pair).reshape(dim, dim, dim, dim)
    return sums


def _from_moments(moments: list[Tensor]) -> dict[int, Tensor]:
    """Cumulants of y from its raw moments E[y], E[y⊗y], ... (plug-in, any shift)."""
    mu = moments[0]
    result = {1: mu}
    if len(moments) >= 2:
        cov = moments[1] - torch.outer(mu, mu)
        result[2] = cov
    if len(moments) >= 3:
        m2, m3 = moments[1], moments[2]
        result[3] = (
            m3
            - torch.einsum("i,jk->ijk", mu, m2)
            - torch.einsum("j,ik->ijk", mu, m2)
            - torch.einsum("k,ij->ijk", mu, m2)
            + 2 * torch.einsum("i,j,k->ijk", mu, mu, mu)
        )
    if len(moments) >= 4:
        m2, m3, m4 = moments[1], moments[2], moments[3]
        central = (
            m4
            - torch.einsum("i,jkl->ijkl", mu, m3)
            - torch.einsum("j,ikl->ijkl", mu, m3)
            - torch.einsum("k,ijl->ijkl", mu, m3)
            - torch.einsum("l,ijk->ijkl", mu, m3)
            + torch.einsum("i,j,kl->ijkl", mu, mu, m2)
            + torch.einsum("i,k,jl->ijkl", mu, mu, m2)
            + torch.einsum("i,l,jk->ijkl", mu, mu, m2)
            + torch.einsum("j,k,il->ijkl", mu, mu, m2)
            + torch.einsum("j,l,ik->ijkl", mu, mu, m2)
            + torch.einsum("k,l,ij->ijkl", mu, mu, m2)
            - 3 * torch.einsum("i,j,k,l->ijkl", mu, mu, mu, mu)
        )
        result[4] = (
            central
            - torch.einsum("ij,kl->ijkl", cov, cov)
            - torch.einsum("ik,jl->ijkl", cov, cov)
            - torch.einsum("il,jk->ijkl", cov, cov)
        )
    return result


def cumulants(x: Any, order: int = 4) -> dict[int, Tensor]:
    """Plug-in (1/n) estimates of the cumulants kappa_1..kappa_order of samples, float64.

    kappa_1 = mean, (N,); kappa_2 = covariance E[d d], (N, N); kappa_3 = E[d d d], (N,)*3;
    kappa_4 = E[d d d d] minus the three pairings of covariances, (N,)*4; d = x - mean.
    The estimators are the plug-in ones (normalised by n, bias O(1/n)); the cost is
    O(n N^order) through matrix products over row chunks.

    Arguments:
        x: samples, (n, N) with n >= 2, torch tensor or numpy array.
        order: highest cumulant, 1..4.

    Returns:
        {k: kappa_k} for k = 1..order, torch float64 on the CPU.

    Raises:
        ValueError: on a wrong shape, n < 2, NaN/inf entries, or an order outside 1..4.
        TypeError: if x is not an array of real numbers.

    Example:
        >>> kappa = cumulants(torch.tensor([[0.0], [2.0]]), order=2)
        >>> float(kappa[1][0]), float(kappa[2][0, 0])
        (1.0, 1.0)
    """
    order = _check_order(order)
    y = _as_samples(x, "x")
    shift = y.mean(0)
    sums = _moment_sums(y - shift, order)
    result = _from_moments([s / y.shape[0] for s in sums])
    result[1] = result[1] + shift
    return result


def _jackknife(
    y: Tensor, order: int, n_blocks: int
) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    """Cumulants and their delete-one-block jackknife standard errors (contiguous blocks)."""
    shift = y.mean(0)
    blocks = torch.tensor_split(y - shift, min(n_blocks, y.shape[0]))
    block_sums = [_moment_sums(b, order) for b in blocks]
    counts = [b.shape[0] for b in blocks]
    totals = [sum(s[k] for s in block_sums) for k in range(order)]
    n = y.shape[0]
    estimate = _from_moments([t / n for t in totals])
    leave_out = [
        _from_moments([(totals[k] - s[k]) / (n - c) for k in range(order)])
        for s, c in zip(block_sums, counts, strict=True)
    ]
    m = len(blocks)
    errors = {}
    for k in estimate:
        stack = torch.stack([j[k] for j in leave_out])
        errors[k] = ((m - 1) / m * ((stack - stack.mean(0)) ** 2).sum(0)).sqrt()
    estimate[1] = estimate[1] + shift
    return estimate, errors


@dataclass(frozen=True)
class CumulantRow:
    """One cumulant order in a :class:`CumulantComparison`.

    Attributes:
        order: k.
        n_entries: number of distinct entries i1 <= ... <= ik compared.
        max_z: max over entries of |kappa_data - kappa_samples| / sigma, sigma the combined
            standard error sqrt(se_data^2 + se_samples^2).
        rms_z: root mean square of those z over the entries (about 1 when they agree).
        max_abs_diff: max |kappa_data - kappa_samples|.
        p_value: chance of a max_z this large if the sets agreed, Sidak-corrected for
            n_entries *independent* entries (entries are correlated, so it is approximate).
    """

    order: int
    n_entries: int
    max_z: float
    rms_z: float
    max_abs_diff: float
    p_value: float


@dataclass
class CumulantComparison:
    """Data against model samples, cumulant by cumulant (made by :func:`compare_cumulants`).

    Standard errors: delete-one-block jackknife over `n_blocks` contiguous blocks of each set
    (which also absorbs correlations shorter than a block, e.g. in MCMC chains), combined
    as sigma = sqrt(se_data^2 + se_samples^2) for the independent sets.

    Attributes:
        rows: one :class:`CumulantRow` per order.
        data, samples: {k: kappa_k} of each set.
        data_error, samples_error: {k: jackknife standard error of kappa_k}.
        n_blocks: jackknife blocks per set.
    """

    rows: list[CumulantRow]
    data: dict[int, Tensor] = field(repr=False)
    samples: dict[int, Tensor] = field(repr=False)
    data_error: dict[int, Tensor] = field(repr=False)
    samples_error: dict[int, Tensor] = field(repr=False)
    n_blocks: int = 20

    def row(self, order: int) -> CumulantRow:
        """The row of cumulant order `order`."""
        for row in self.rows:
            if row.order == order:
                return row
        raise ValueError(f"order {order} was not compared (orders {[r.order for r in self.rows]})")

    def within(self, order: int, n_sigma: float = 3.0) -> bool:
        """True when every distinct entry of kappa_order agrees within n_sigma standard errors.

        With many entries the largest z grows like sqrt(2 ln n_entries) even for agreeing
        sets; see `p_value` in the row for a calibrated statement.
        """
        return self.row(order).max_z <= n_sigma

    def matches_up_to(self, n_sigma: float = 3.0) -> int:
        """The highest k such that kappa_1..kappa_k are all `within` n_sigma (0 if none)."""
        matched = 0
        for row in sorted(self.rows, key=lambda r: r.order):
            if row.order != matched + 1 or row.max_z > n_sigma:
                break
            matched = row.order
        return matched

    def z(self, order: int) -> Tensor:
        """|kappa_data - kappa_samples| / sigma, (N,)*order (inf where sigma = 0 < diff)."""
        diff = (self.data[order] - self.samples[order]).abs()
        sigma = (self.data_error[order] ** 2 + self.samples_error[order] ** 2).sqrt()
        return torch.where(diff == 0, torch.zeros_like(diff), diff / sigma)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: the rows and the error method."""
        return {
            "standard_errors": f"delete-one-block jackknife, {self.n_blocks} blocks per set",
            "rows": [asdict(row) for row in self.rows],
        }

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        headers = ["k", "entries", "max |diff|/sigma", "rms z", "max |diff|", "p (Sidak)"]
        cells = [
            [
                str(r.order),
                str(r.n_entries),
                f"{r.max_z:8.2f}",
                f"{r.rms_z:6.2f}",
                _format(r.max_abs_diff),
                f"{r.p_value:8.3g}",
            ]
            for r in self.rows
        ]
        return headers, cells

    def _table(self) -> Table:
        headers, cells = self._cells()
        title = (
            "Cumulants, data vs samples (sigma: jackknife over "
            f"{self.n_blocks} blocks per set, combined)"
        )
        return Table(headers, cells, title)

    def table(self, width: int = WIDTH) -> str:
        """Fixed-width text table, one line per order, lines up to `width` characters."""
        return self._table().text(width)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self._table().html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.table())  # IPython's text form: the table, not every field

    def plot(self, fig: Any = None) -> Any:
        """Figure: per order, samples' against data's distinct cumulant entries with combined
        error bars and the line y = x; the title gives the largest deviation in sigma.

        Arguments:
            fig: a matplotlib Figure to draw into (cleared), or None for a new one.

        Returns:
            The matplotlib Figure.
        """
        columns = min(len(self.rows), 2)  # two panels a row: readable at the figure width
        lines = -(-len(self.rows) // columns)
        fig = _new_figure(fig, (FIGURE_WIDTH, 3.4 * lines))
        axes = fig.subplots(lines, columns, squeeze=False).ravel()
        for ax in axes[len(self.rows):]:
            ax.axis("off")
        for ax, row in zip(axes, self.rows, strict=False):
            k = row.order
            index = _unique_index(self.data[k].shape[0], k)
            data = self.data[k][index].numpy()
            samples = self.samples[k][index].numpy()
            sigma = (self.data_error[k] ** 2 + self.samples_error[k] ** 2).sqrt()[index].numpy()
            ax.errorbar(data, samples, yerr=sigma, fmt="o", ms=3, alpha=0.7, label="entries")
            low = float(min(data.min(), samples.min()))
            high = float(max(data.max(), samples.max()))
            pad = 0.05 * (high - low) or 1.0
            ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=1, label="y = x")
            ax.set(
                title=f"$\\kappa_{k}$: largest deviation {row.max_z:.1f} $\\sigma$",
                xlabel="data cumulant",
                ylabel="model-sample cumulant",
            )
        legend_outside(axes[columns - 1])
        return fig


def compare_cumulants(
    data: Any, samples: Any, order: int = 4, n_blocks: int = 20
) -> CumulantComparison:
    """Compare the cumulants of data with those of model samples, order by order.

    For each k = 1..order and each distinct entry i1 <= ... <= ik, z = |kappa_data -
    kappa_samples| / sigma with sigma = sqrt(se_data^2 + se_samples^2) from a delete-one-block
    jackknife over `n_blocks` contiguous blocks of each set (blocks also absorb short
    autocorrelation of MCMC samples). The two sets may have different sizes.

    Arguments:
        data: samples of the data, (n_data, N), n_data >= 2.
        samples: samples of the model, (n_samples, N), same N.
        order: highest cumulant, 1..4.
        n_blocks: jackknife blocks per set (>= 2; fewer when a set is smaller).

    Returns:
        A :class:`CumulantComparison` (table, ``within(k, n_sigma)``, ``matches_up_to``, plot).

    Raises:
        ValueError: on wrong shapes, different N, n < 2, NaN/inf, order outside 1..4 or
            n_blocks < 2.
    """
    order = _check_order(order)
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 2:
        raise ValueError(f"n_blocks must be an integer >= 2, got {n_blocks!r}")
    x = _as_samples(data, "data")
    y = _as_samples(samples, "samples")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"data have N = {x.shape[1]} but samples have N = {y.shape[1]}")
    kappa_x, error_x = _jackknife(x, order, int(n_blocks))
    kappa_y, error_y = _jackknife(y, order, int(n_blocks))
    result = CumulantComparison([], kappa_x, kappa_y, error_x, error_y, int(n_blocks))
    for k in range(1, order + 1):
        index = _unique_index(x.shape[1], k)
        z = result.z(k)[index]
        diff = (kappa_x[k] - kappa_y[k]).abs()[index]
        max_z = float(z.max())
        single = math.erfc(max_z / math.sqrt(2))
        p_value = -math.expm1(z.numel() * math.log1p(-single)) if single < 1 else 1.0
        result.rows.append(
            CumulantRow(
                order=k,
                n_entries=z.numel(),
                max_z=max_z,
                rms_z=float(z.pow(2).mean().sqrt()),
                max_abs_diff=float(diff.max()),
                p_value=p_value,
            )
        )
    return result
