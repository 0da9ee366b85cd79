"""`compare` for translation-invariant actions in compressed form (`LatticeAction`).

Every entry C^(k)[o] of a compressed action stands for the N entries A^(k)[i, i + o, ..] of the
dense tensor (one per root site i), so each Frobenius norm of the dense tensor is sqrt(N) times
the norm over the couplings, its diagonal is the on-site coupling C^(k)[0..0] on every site and
its off-diagonal part is everything else: the comparison runs on the couplings and reports
exactly the numbers that the dense comparison would. Two actions with different windows are
compared on the larger one (a window shorter than the lattice holds offsets -R..R, which embed
into any longer window).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .actions.lattice import LatticeAction, _axis_offsets
from .comparison import Comparison, ComparisonRow, _new_figure, _ratio

__all__ = ["LatticeComparison", "lattice_support"]


@dataclass(repr=False)  # IPython shows Comparison's table, not every field
class LatticeComparison(Comparison):
    """A `Comparison` of compressed actions: `true` and `learned` hold couplings C^(k) over
    the common `window` (shape (*window) * (k - 1)), not dense tensors."""

    window: tuple[int, ...] = ()

    def plot(self, fig: Any = None) -> Any:
        """Figure: learned against true couplings C^(k)[o], one panel per order (y = x line)."""
        fig = _new_figure(fig, (4.0 * len(self.orders), 3.6))
        axes = fig.subplots(1, len(self.orders), squeeze=False)[0]
        for ax, k in zip(axes, self.orders, strict=True):
            true = self.true[k].reshape(-1).numpy()
            for model in self.models:
                ax.scatter(true, self.learned[model][k].reshape(-1).numpy(), s=8, alpha=0.6,
                           label=model)
            low, high = float(true.min()), float(true.max())
            pad = 0.05 * (high - low) or 1.0
            ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=1, label="y = x")
            ax.set(title=f"C^({k}) couplings over offsets", xlabel="true", ylabel="learned")
            ax.legend(fontsize="small")
        return fig


def lattice_support(
    true: Any, learned: Any, orders: Sequence[int]
) -> tuple[Comparison | None, Any, Any]:
    """The hook at the top of `compare`: handle `LatticeAction` arguments.

    Returns:
        (comparison, true, learned): a `LatticeComparison` when every action is a
        `LatticeAction` on the same lattice (then the caller returns it); otherwise None and
        the arguments with each `LatticeAction` expanded to its dense `PolynomialAction`
        (MemoryError when that does not fit).
    """
    single = not isinstance(learned, Mapping)
    actions = {"learned": learned} if single else learned
    everything = [true, *actions.values()]
    if not any(isinstance(a, LatticeAction) for a in everything):
        return None, true, learned
    if all(isinstance(a, LatticeAction) for a in everything) and all(
        a.shape == true.shape for a in everything
    ):
        return _compare(true, dict(actions), orders), true, learned

    def dense(action: Any) -> Any:
        return action.to_dense() if isinstance(action, LatticeAction) else action

    expanded = {name: dense(a) for name, a in actions.items()}
    return None, dense(true), expanded["learned"] if single else expanded


def _embed(tensor: Tensor, source: tuple[int, ...], target: tuple[int, ...],
           shape: tuple[int, ...]) -> Tensor:
    """Couplings over window `source` written onto the (not shorter) window `target`."""
    result = tensor
    legs = tensor.dim() // len(shape) if len(shape) else 0
    for axis, (w, v, n) in enumerate(zip(source, target, shape, strict=True)):
        if w == v:
            continue
        index = torch.from_numpy(_axis_offsets(w, n) % v)
        for leg in range(legs):
            dim = leg * len(shape) + axis
            size = list(result.shape)
            size[dim] = v
            grown = result.new_zeros(size)
            grown.index_copy_(dim, index, result)
            result = grown
    return result


def _compare(
    true: LatticeAction, learned: dict[str, LatticeAction], orders: Sequence[int]
) -> LatticeComparison:
    orders = tuple(orders)
    if not orders or any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in orders
    ):
        raise ValueError(f"orders must be a non-empty sequence of integers >= 1, got {orders}")
    orders = tuple(sorted({int(k) for k in orders}))
    for name, action in learned.items():
        if abs(action.point_value - true.point_value) > 1e-10 * max(1.0, abs(true.point_value)):
            raise ValueError(
                f"{name!s} is expanded around a different point than the true action "
                f"({action.point_value} against {true.point_value}); re-expand one"
            )
        for k in orders:
            if k > action.order:
                raise ValueError(f"{name!s} has orders up to {action.order}; order {k} is "
                                 "missing from it")
    for k in orders:
        if k > true.order:
            raise ValueError(f"the true action has orders up to {true.order}; order {k} is "
                             "missing from it")
    window = tuple(max(a.window[i] for a in (true, *learned.values()))
                   for i in range(len(true.shape)))

    def couplings(action: LatticeAction) -> dict[int, Tensor]:
        return {
            k: _embed(action.couplings(k).detach().to("cpu", torch.float64), action.window,
                      window, true.shape)
            for k in orders
        }

    reference = couplings(true)
    estimates = {str(m): couplings(a) for m, a in learned.items()}
    root = math.sqrt(true.dim)
    rows = []

    def norm(tensor: Tensor) -> float:
        return root * float(torch.linalg.vector_norm(tensor))

    def off(tensor: Tensor) -> Tensor:
        rest = tensor.clone()
        if rest.dim():
            rest.view(-1)[0] = 0.0
        else:
            rest.zero_()  # a vector has no off-diagonal part
        return rest

    for model, coefficients in estimates.items():
        for k in orders:
            # As in `compare`: norms of T / s and L / s, s the largest |entry| of both, so
            # that the ratios are scale-free (no overflow at 1e200, no underflow at 1e-200).
            scale = max(float(reference[k].abs().max()), float(coefficients[k].abs().max()))
            scale = scale if scale > 0 else 1.0
            t, lrn = reference[k] / scale, coefficients[k] / scale
            t0, l0 = float(t.reshape(-1)[0]), float(lrn.reshape(-1)[0])
            total = norm(t)
            error, relative = _ratio(norm(lrn - t), total, scale)
            diagonal_error, diagonal_relative = _ratio(root * abs(l0 - t0), root * abs(t0),
                                                       scale)
            rows.append(
                ComparisonRow(
                    model=model,
                    order=k,
                    true_norm=scale * total,
                    relative=relative,
                    error=error,
                    diagonal_relative=diagonal_relative,
                    diagonal_error=diagonal_error,
                    leakage=_ratio(norm(off(lrn)), total, scale)[0],
                    true_offdiagonal=_ratio(norm(off(t)), total, scale)[0],
                    true_diagonal_mean=scale * t0,
                    learned_diagonal_mean=scale * l0,
                )
            )
    point = torch.full((true.dim,), true.point_value, dtype=torch.float64)
    return LatticeComparison(rows, orders, tuple(estimates), point, reference, estimates,
                             window=window)

