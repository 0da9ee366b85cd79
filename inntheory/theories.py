"""Periodic lattice phi^3 + phi^4 theories (``METHOD.md``): the ground truth the lectures
sample from. On a periodic lattice of ``d = 1`` or ``2`` dimensions,

    S(x) = sum_i [ m2/2 x_i^2 + kappa/2 sum_mu (x_{i+mu} - x_i)^2 + g3/3! x_i^3 + g4/4! x_i^4 ].

Reference: C. Merger et al., "Learning Interacting Theories from Data", Phys. Rev. X 13,
041033 (2023), arXiv:2304.00599.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from ._checks import check_shape
from .actions.dense import PolynomialAction
from .actions.lattice import LatticeAction, lattice_window

__all__ = ["PRESETS", "LatticeTheory", "preset"]


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if not (isinstance(value, Tensor) and value.numel() == 1):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _check_order(order: Any) -> int:
    if isinstance(order, bool) or not isinstance(order, int) or order < 2:
        raise ValueError(f"order must be an int >= 2, got {order!r}")
    return order


def _laplacian(phi: Tensor) -> Tensor:
    """``sum_mu (2 phi - T_mu phi - T_mu^T phi)`` over the lattice axes of ``phi: (n, *shape)``
    (``torch.roll`` makes ``L = 2``, where the two shifts coincide, and ``L = 1`` right)."""
    return sum(2 * phi - torch.roll(phi, 1, dims=mu) - torch.roll(phi, -1, dims=mu)
               for mu in range(1, phi.ndim))


@dataclass(frozen=True)
class LatticeTheory:
    """A periodic phi^3 + phi^4 lattice theory in 1 or 2 dimensions: a *target*
    (``docs/architecture.md``) whose action and gradient take ``x: (n, N)`` or ``(N,)``.

    Configurations are flattened in row-major (C) order: site ``(i, j)`` of a ``(L1, L2)``
    lattice is entry ``i * L2 + j`` of ``x: (N,)`` with ``N = L1 * L2``.

    Arguments:
        shape: The lattice, ``(L,)`` or ``(L1, L2)`` positive ints; ``(1,)`` is a single site.
        m2, kappa, g3, g4: The couplings of ``S`` (module docstring), finite; ``kappa >= 0``,
            and ``exp(-S)`` must be normalisable (``m2`` may be negative when ``g4 > 0``).
    """

    shape: tuple[int, ...]
    m2: float
    kappa: float
    g3: float = 0.0
    g4: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", check_shape(self.shape))
        for name in ("m2", "kappa", "g3", "g4"):
            object.__setattr__(self, name, _as_float(name, getattr(self, name)))
        if self.kappa < 0:
            raise ValueError(f"kappa must be >= 0 (ferromagnetic hopping), got {self.kappa}")
        if self.g4 < 0:
            raise ValueError(f"g4 = {self.g4} < 0: the quartic term makes S unbounded below as "
                             "|x| -> infinity, exp(-S) is not normalisable")
        if self.g4 == 0 and self.g3 != 0:
            raise ValueError(f"g4 = 0 with g3 = {self.g3}: the cubic term makes S unbounded "
                             "below along -sign(g3) x, exp(-S) is not normalisable; add g4 > 0")
        if self.g4 == 0 and self.m2 <= 0:  # the hopping is positive semi-definite
            raise ValueError(
                f"Gaussian theory (g3 = g4 = 0) with m2 = {self.m2} <= 0: A2 is not positive "
                "definite (its smallest eigenvalue, the constant mode, is m2), S is unbounded "
                "below; use m2 > 0 or add g4 > 0")

    @property
    def dim(self) -> int:
        """The number of sites ``N``."""
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        """The number of lattice dimensions ``d`` (1 or 2)."""
        return len(self.shape)

    @property
    def symmetric(self) -> bool:
        """Whether ``S(-x) = S(x)`` (``g3 == 0``); the sampler then adds the global flip."""
        return self.g3 == 0

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters as a JSON-able dict (``shape`` as a list)."""
        return {"shape": list(self.shape), "m2": self.m2, "kappa": self.kappa, "g3": self.g3,
                "g4": self.g4}

    def _check(self, x: Tensor | Any) -> tuple[Tensor, bool]:
        """``x`` as a floating ``(n, N)`` tensor, and whether it came as ``(N,)``."""
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            x = x.to(torch.float64)
        if x.ndim not in (1, 2) or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}) or ({self.dim},) for lattice "
                             f"{self.shape}, got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        return x.reshape(-1, self.dim), x.ndim == 1

    def action(self, x: Tensor) -> Tensor:
        """The action ``S(x)``: ``(n,)``, or a scalar for ``x: (N,)``."""
        x, single = self._check(x)
        phi = x.reshape(x.shape[0], *self.shape)
        dims = tuple(range(1, phi.ndim))
        hop = sum((torch.roll(phi, -1, dims=mu) - phi).square() for mu in dims)
        density = phi.square() * (self.m2 / 2) + hop * (self.kappa / 2)
        if self.g3 != 0:
            density = density + phi.pow(3) * (self.g3 / 6)
        if self.g4 != 0:
            density = density + phi.pow(4) * (self.g4 / 24)
        s = density.sum(dim=dims)
        return s[0] if single else s

    def grad(self, x: Tensor) -> Tensor:
        """The analytic gradient ``dS/dx``, with the shape of ``x``."""
        x, single = self._check(x)
        phi = x.reshape(x.shape[0], *self.shape)
        g = phi * self.m2 + _laplacian(phi) * self.kappa
        if self.g3 != 0:
            g = g + phi.square() * (self.g3 / 2)
        if self.g4 != 0:
            g = g + phi.pow(3) * (self.g4 / 6)
        g = g.reshape(x.shape)
        return g[0] if single else g

    def quadratic(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """The exact ``A2 = (m2 + 2 d kappa) I - kappa * sum_mu (T_mu + T_mu^T)``: ``(N, N)``,
        ``T_mu`` the shift by one site along axis ``mu``."""
        lap = _laplacian(torch.eye(self.dim, dtype=dtype).reshape(self.dim, *self.shape))
        return self.m2 * torch.eye(self.dim, dtype=dtype) + self.kappa * lap.reshape(
            self.dim, self.dim)

    def coefficients(self, order: int = 4, dtype: torch.dtype = torch.float64) -> PolynomialAction:
        """The exact polynomial action at ``x0 = 0`` up to ``order`` ``K >= 2``, a
        ``PolynomialAction`` of dense ``(N,)*k`` tensors (mind ``N^4`` memory for ``K = 4``):
        ``A2`` from :meth:`quadratic`, ``A3 = g3`` and ``A4 = g4`` on the diagonal, higher
        orders vanish; ``metadata`` the parameters and ``"source": "LatticeTheory"``."""
        _check_order(order)
        n = self.dim
        coefficients: dict[int, Tensor] = {2: self.quadratic(dtype)}
        for k, g in ((3, self.g3), (4, self.g4)):
            if k <= order:
                coefficients[k] = torch.zeros((n,) * k, dtype=dtype)
                coefficients[k][(torch.arange(n),) * k] = g
        return PolynomialAction(coefficients, point=torch.zeros(n, dtype=dtype),
                                metadata={"source": "LatticeTheory", **self.parameters})

    def lattice_coefficients(self, order: int = 4, dtype: torch.dtype = torch.float64
                             ) -> LatticeAction:
        """:meth:`coefficients` as a ``LatticeAction`` (orders ``1..K``, window ``min(L, 3)``):
        ``C2[0] = m2 + 2 d kappa``, ``C2[+-e_mu] = -kappa`` (summed where the neighbours
        coincide), ``C3``/``C4`` ``g3``/``g4`` at offset 0."""
        _check_order(order)
        window = lattice_window(self.shape, 1)
        c2 = torch.zeros(window, dtype=dtype)
        c2[(0,) * self.ndim] = self.m2 + 2 * self.ndim * self.kappa
        for axis in range(self.ndim):
            for step in (1, -1):
                offset = [0] * self.ndim
                offset[axis] = step % window[axis]
                c2[tuple(offset)] -= self.kappa
        couplings: dict[int, Tensor] = {1: torch.zeros((), dtype=dtype), 2: c2}
        for k in range(3, order + 1):
            couplings[k] = torch.zeros(window * (k - 1), dtype=dtype)
            couplings[k].view(-1)[0] = {3: self.g3, 4: self.g4}.get(k, 0.0)
        metadata = {"source": "LatticeTheory", "compressed": True, **self.parameters}
        return LatticeAction(couplings, self.shape, 0.0, metadata=metadata, window=window)


PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "gaussian": {"m2": 1.0, "kappa": 0.5, "g3": 0.0, "g4": 0.0},
    "unimodal": {"m2": 1.0, "kappa": 0.5, "g3": 0.5, "g4": 1.0},
    "double_well": {"m2": -1.5, "kappa": 0.5, "g3": 0.0, "g4": 1.0},
})
"""Named couplings for the lectures (:func:`preset`): ``"gaussian"`` the free theory
(covariance ``inv(A2)``), ``"unimodal"`` the measured case of the paper's claims,
``"double_well"`` two separated modes of the site marginal near ``+-2.7``, joined by the
sampler's global flip ``x -> -x``."""


def preset(name: str, shape: tuple[int, ...] | None = None) -> LatticeTheory:
    """The :class:`LatticeTheory` ``PRESETS[name]`` on ``shape`` (``(8,)`` when ``None``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return LatticeTheory((8,) if shape is None else shape, **PRESETS[name])
