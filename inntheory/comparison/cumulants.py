"""Data against model samples, cumulant by cumulant: :func:`cumulants` estimates kappa_1..4 of
samples, :func:`compare_cumulants` measures per order the largest difference in units of its
standard error (delete-one-block jackknife)."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import check_samples as _as_samples
from ..figures import WIDTH as FIGURE_WIDTH
from ..figures import legend_outside
from ..tables import Table, Tabular
from .display import format_value, identity_line, new_figure, unique_index

__all__ = ["CumulantComparison", "CumulantRow", "compare_cumulants", "cumulants"]

_MAX_CUMULANT_ORDER = 4


def _check_order(order: Any) -> int:
    if (isinstance(order, bool) or not isinstance(order, (int, np.integer))
            or not 1 <= order <= _MAX_CUMULANT_ORDER):
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
        result[2] = cov = moments[1] - torch.outer(mu, mu)
    if len(moments) >= 3:
        third = moments[2]
        for i in "ijk":  # minus mu_i m2_jk over the three choices of i
            third = third - torch.einsum(f"{i},{'ijk'.replace(i, '')}->ijk", mu, moments[1])
        result[3] = third + 2 * torch.einsum("i,j,k->ijk", mu, mu, mu)
    if len(moments) >= 4:
        m2, m3, central = moments[1], moments[2], moments[3]
        for i in "ijkl":
            central = central - torch.einsum(f"{i},{'ijkl'.replace(i, '')}->ijkl", mu, m3)
        for i, j in itertools.combinations("ijkl", 2):
            rest = "".join(c for c in "ijkl" if c not in (i, j))
            central = central + torch.einsum(f"{i},{j},{rest}->ijkl", mu, mu, m2)
        central = central - 3 * torch.einsum("i,j,k,l->ijkl", mu, mu, mu, mu)
        for pair in ("ij,kl", "ik,jl", "il,jk"):
            central = central - torch.einsum(f"{pair}->ijkl", cov, cov)
        result[4] = central
    return result


def cumulants(x: Any, order: int = 4) -> dict[int, Tensor]:
    """Plug-in (1/n, bias O(1/n)) estimates of the cumulants kappa_1..kappa_order, float64:
    the mean (N,), E[d d] (N, N), E[d d d] (N,)*3, E[d d d d] minus the three pairings of
    covariances (N,)*4, with d = x - mean; cost O(n N^order). Returns {k: kappa_k} for
    k = 1..order (1..4) of samples x: (n >= 2, N) (torch or numpy), torch float64 on the CPU;
    TypeError or ValueError naming what is wrong with x or order."""
    order = _check_order(order)
    y = _as_samples(x, "x")
    shift = y.mean(0)
    sums = _moment_sums(y - shift, order)
    result = _from_moments([s / y.shape[0] for s in sums])
    result[1] = result[1] + shift
    return result


def _jackknife(y: Tensor, order: int, n_blocks: int
               ) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    """Cumulants and their delete-one-block jackknife standard errors (contiguous blocks)."""
    shift = y.mean(0)
    blocks = torch.tensor_split(y - shift, min(n_blocks, y.shape[0]))
    block_sums = [_moment_sums(b, order) for b in blocks]
    totals = [sum(s[k] for s in block_sums) for k in range(order)]
    n, m = y.shape[0], len(blocks)
    estimate = _from_moments([t / n for t in totals])
    leave_out = [_from_moments([(totals[k] - s[k]) / (n - b.shape[0]) for k in range(order)])
                 for s, b in zip(block_sums, blocks, strict=True)]
    stacks = {k: torch.stack([j[k] for j in leave_out]) for k in estimate}
    errors = {k: ((m - 1) / m * ((s - s.mean(0)) ** 2).sum(0)).sqrt() for k, s in stacks.items()}
    estimate[1] = estimate[1] + shift
    return estimate, errors


@dataclass(frozen=True)
class CumulantRow:
    """One cumulant order k in a :class:`CumulantComparison`.

    Attributes:
        n_entries: number of distinct entries i1 <= ... <= ik compared.
        max_z, rms_z: max and root mean square over those entries of |kappa_data -
            kappa_samples| / sigma, sigma = sqrt(se_data^2 + se_samples^2).
        max_abs_diff: max |kappa_data - kappa_samples|.
        p_value: chance of a max_z this large if the sets agreed, Sidak-corrected for
            n_entries *independent* entries (approximate: entries are correlated).
    """

    order: int
    n_entries: int
    max_z: float
    rms_z: float
    max_abs_diff: float
    p_value: float


@dataclass(repr=False)  # shown as its table (Tabular)
class CumulantComparison(Tabular):
    """Data against model samples, cumulant by cumulant (made by :func:`compare_cumulants`):
    one :class:`CumulantRow` per order, {k: kappa_k} of each set and their jackknife standard
    errors over `n_blocks` blocks per set."""

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
        """Whether every distinct entry of kappa_order agrees within n_sigma standard errors
        (the largest z grows like sqrt(2 ln n_entries) for agreeing sets; see `p_value`)."""
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

    def _table(self) -> Table:
        headers = ["k", "entries", "max |diff|/sigma", "rms z", "max |diff|", "p (Sidak)"]
        cells = [[str(r.order), str(r.n_entries), f"{r.max_z:8.2f}", f"{r.rms_z:6.2f}",
                  format_value(r.max_abs_diff), f"{r.p_value:8.3g}"] for r in self.rows]
        title = ("Cumulants, data vs samples (sigma: jackknife over "
                 f"{self.n_blocks} blocks per set, combined)")
        return Table(headers, cells, title)

    def plot(self, fig: Any = None) -> Any:
        """Figure (into `fig`, cleared, or a new one): per order, samples' against data's
        distinct cumulant entries with combined error bars; titled with the largest z."""
        columns = min(len(self.rows), 2)  # two panels a row: readable at the figure width
        lines = -(-len(self.rows) // columns)
        fig = new_figure(fig, (FIGURE_WIDTH, 3.4 * lines))
        axes = fig.subplots(lines, columns, squeeze=False).ravel()
        for ax in axes[len(self.rows):]:
            ax.axis("off")
        for ax, row in zip(axes, self.rows, strict=False):
            k = row.order
            index = unique_index(self.data[k].shape[0], k)
            data = self.data[k][index].numpy()
            samples = self.samples[k][index].numpy()
            sigma = (self.data_error[k] ** 2 + self.samples_error[k] ** 2).sqrt()[index].numpy()
            ax.errorbar(data, samples, yerr=sigma, fmt="o", ms=3, alpha=0.7, label="entries")
            identity_line(ax, float(min(data.min(), samples.min())),
                          float(max(data.max(), samples.max())))
            ax.set(title=f"$\\kappa_{k}$: largest deviation {row.max_z:.1f} $\\sigma$",
                   xlabel="data cumulant", ylabel="model-sample cumulant")
        legend_outside(axes[columns - 1])
        return fig


def compare_cumulants(data: Any, samples: Any, order: int = 4,
                      n_blocks: int = 20) -> CumulantComparison:
    """Compare the cumulants of data with those of model samples, order by order.

    For each k = 1..order and each distinct entry i1 <= ... <= ik, z = |kappa_data -
    kappa_samples| / sigma with sigma = sqrt(se_data^2 + se_samples^2) from a delete-one-block
    jackknife over `n_blocks` contiguous blocks of each set (absorbing short autocorrelation
    of MCMC samples). The sets may have different sizes. ValueError names a bad argument.

    Arguments:
        data, samples: (n_data, N) and (n_samples, N), at least 2 rows each.
        order: highest cumulant, 1..4.
        n_blocks: jackknife blocks per set (>= 2; fewer when a set is smaller).
    """
    order = _check_order(order)
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 2:
        raise ValueError(f"n_blocks must be an integer >= 2, got {n_blocks!r}")
    x, y = _as_samples(data, "data"), _as_samples(samples, "samples")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"data have N = {x.shape[1]} but samples have N = {y.shape[1]}")
    kappa_x, error_x = _jackknife(x, order, int(n_blocks))
    kappa_y, error_y = _jackknife(y, order, int(n_blocks))
    result = CumulantComparison([], kappa_x, kappa_y, error_x, error_y, int(n_blocks))
    for k in range(1, order + 1):
        index = unique_index(x.shape[1], k)
        z = result.z(k)[index]
        diff = (kappa_x[k] - kappa_y[k]).abs()[index]
        max_z = float(z.max())
        single = math.erfc(max_z / math.sqrt(2))
        p_value = -math.expm1(z.numel() * math.log1p(-single)) if single < 1 else 1.0
        result.rows.append(CumulantRow(k, z.numel(), max_z, float(z.pow(2).mean().sqrt()),
                                       float(diff.max()), p_value))
    return result
