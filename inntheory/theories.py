"""Periodic lattice phi^3 + phi^4 theories: the ground truth the lectures sample from.

A :class:`LatticeTheory` is a *target* in the sense of ``docs/architecture.md``: it has a
``dim`` and evaluates the action and its gradient on flattened batches ``x: (n, N)``, locally,
with ``torch.roll`` along the lattice axes. :meth:`LatticeTheory.coefficients` returns the
exact polynomial action at ``x0 = 0`` as a :class:`~inntheory.actions.dense.PolynomialAction`.

The action (``METHOD.md``), on a periodic lattice of ``d = 1`` or ``2`` dimensions, is

    S(x) = sum_i [ m2/2 x_i^2 + kappa/2 sum_mu (x_{i+mu} - x_i)^2 + g3/3! x_i^3 + g4/4! x_i^4 ].

References:
    C. Merger, A. René, K. Fischer, P. Bouss, S. Nestler, D. Dahmen, C. Honerkamp,
    M. Helias, "Learning Interacting Theories from Data", Phys. Rev. X 13, 041033 (2023),
    arXiv:2304.00599.
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
    """Returns ``value`` as a finite float, or raises a ``TypeError``/``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if not (isinstance(value, Tensor) and value.numel() == 1):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


@dataclass(frozen=True)
class LatticeTheory:
    """A periodic phi^3 + phi^4 lattice theory in 1 or 2 dimensions.

    Configurations are flattened in row-major (C) order: site ``(i, j)`` of a ``(L1, L2)``
    lattice is entry ``i * L2 + j`` of ``x: (N,)`` with ``N = L1 * L2``.

    Arguments:
        shape: The lattice, ``(L,)`` or ``(L1, L2)`` positive ints; ``(1,)`` is a single site.
        m2: The mass term ``m2/2 x_i^2`` (may be negative when ``g4 > 0``).
        kappa: The nearest-neighbour coupling, ``kappa >= 0``.
        g3: The cubic coupling ``g3/3! x_i^3``.
        g4: The quartic coupling ``g4/4! x_i^4``.

    Raises:
        ValueError: If a parameter is not finite, ``kappa < 0`` or the action is unbounded
            below (``g4 < 0``; ``g4 == 0`` with ``g3 != 0``; a Gaussian with ``m2 <= 0``).

    Example:
        >>> theory = LatticeTheory((8,), m2=1.0, kappa=0.5, g3=0.5, g4=1.0)
        >>> theory.action(torch.zeros(3, 8, dtype=torch.float64))
        tensor([0., 0., 0.], dtype=torch.float64)
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
            raise ValueError(
                f"g4 = {self.g4} < 0: the quartic term makes S unbounded below as |x| -> "
                "infinity, exp(-S) is not normalisable"
            )
        if self.g4 == 0 and self.g3 != 0:
            raise ValueError(
                f"g4 = 0 with g3 = {self.g3}: the cubic term makes S unbounded below along "
                "-sign(g3) x, exp(-S) is not normalisable; add g4 > 0"
            )
        if self.g4 == 0 and self.m2 <= 0:
            # The hopping matrix is positive semi-definite with the constant mode in its kernel,
            # so the smallest eigenvalue of A2 is m2.
            raise ValueError(
                f"Gaussian theory (g3 = g4 = 0) with m2 = {self.m2} <= 0: A2 is not positive "
                "definite (its smallest eigenvalue, the constant mode, is m2), S is unbounded "
                "below; use m2 > 0 or add g4 > 0"
            )

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
        return {
            "shape": list(self.shape),
            "m2": self.m2,
            "kappa": self.kappa,
            "g3": self.g3,
            "g4": self.g4,
        }

    def _check(self, x: Tensor | Any) -> tuple[Tensor, bool]:
        """Returns ``x`` as a floating ``(n, N)`` tensor and whether it came as ``(N,)``."""
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            x = x.to(torch.float64)
        if x.ndim not in (1, 2) or x.shape[-1] != self.dim:
            raise ValueError(
                f"x must have shape (n, {self.dim}) or ({self.dim},) for lattice "
                f"{self.shape}, got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        single = x.ndim == 1
        return (x.unsqueeze(0) if single else x), single

    def _lattice(self, x: Tensor) -> Tensor:
        """Views ``x: (n, N)`` as ``(n, *shape)``."""
        return x.reshape(x.shape[0], *self.shape)

    def action(self, x: Tensor) -> Tensor:
        """The action ``S(x)``.

        Arguments:
            x: Configurations, ``(n, N)`` or ``(N,)``.

        Returns:
            ``S: (n,)``, or a scalar tensor for ``x: (N,)``.
        """
        x, single = self._check(x)
        phi = self._lattice(x)
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
        """The gradient ``dS/dx``, analytic and local.

        Arguments:
            x: Configurations, ``(n, N)`` or ``(N,)``.

        Returns:
            ``dS/dx`` with the shape of ``x``.
        """
        x, single = self._check(x)
        phi = self._lattice(x)
        dims = tuple(range(1, phi.ndim))
        lap = sum(2 * phi - torch.roll(phi, 1, dims=mu) - torch.roll(phi, -1, dims=mu)
                  for mu in dims)
        g = phi * self.m2 + lap * self.kappa
        if self.g3 != 0:
            g = g + phi.square() * (self.g3 / 2)
        if self.g4 != 0:
            g = g + phi.pow(3) * (self.g4 / 6)
        g = g.reshape(x.shape)
        return g[0] if single else g

    def quadratic(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """The exact ``A2 = (m2 + 2 d kappa) I - kappa * sum_mu (T_mu + T_mu^T)``: ``(N, N)``.

        ``T_mu`` shifts by one site along axis ``mu``; built with ``torch.roll`` so that
        ``L = 2`` (the two shifts coincide) and ``L = 1`` (the hopping vanishes) come out right.
        """
        eye = torch.eye(self.dim, dtype=dtype).reshape(self.dim, *self.shape)
        dims = tuple(range(1, eye.ndim))
        lap = sum(2 * eye - torch.roll(eye, 1, dims=mu) - torch.roll(eye, -1, dims=mu)
                  for mu in dims)
        return self.m2 * torch.eye(self.dim, dtype=dtype) + self.kappa * lap.reshape(
            self.dim, self.dim
        )

    def coefficients(self, order: int = 4, dtype: torch.dtype = torch.float64) -> PolynomialAction:
        """The exact polynomial action at ``x0 = 0`` up to ``order``.

        ``A1 = 0``; ``A2`` from :meth:`quadratic`; ``A3 = g3`` and ``A4 = g4`` on the diagonal;
        orders above 4 vanish.

        Arguments:
            order: The highest order ``K >= 2`` to return (dense ``(N,)*k`` tensors, so mind
                ``N^4`` memory for ``K = 4``).
            dtype: The floating dtype of the tensors.

        Returns:
            ``PolynomialAction({2: A2, ..., K: AK}, point=zeros(N), metadata=parameters)``
            with ``metadata["source"] = "LatticeTheory"``.
        """
        if isinstance(order, bool) or not isinstance(order, int) or order < 2:
            raise ValueError(f"order must be an int >= 2, got {order!r}")
        n = self.dim
        coefficients: dict[int, Tensor] = {2: self.quadratic(dtype)}
        for k, g in ((3, self.g3), (4, self.g4)):
            if k <= order:
                a = torch.zeros((n,) * k, dtype=dtype)
                idx = torch.arange(n)
                a[(idx,) * k] = g
                coefficients[k] = a
        metadata = {"source": "LatticeTheory", **self.parameters}
        return PolynomialAction(coefficients, point=torch.zeros(n, dtype=dtype),
                                metadata=metadata)

    def lattice_coefficients(
        self, order: int = 4, dtype: torch.dtype = torch.float64
    ) -> LatticeAction:
        """The exact action at ``x0 = 0`` in compressed form, a ``LatticeAction``.

        Couplings relative to site 0 over the window ``min(L, 3)`` per axis:
        ``C2[0] = m2 + 2 d kappa``, ``C2[+-e_mu] = -kappa`` (summed where the neighbours
        coincide, as in :meth:`quadratic`), ``C3``/``C4`` ``g3``/``g4`` at offset 0.

        Arguments:
            order: The highest order ``K >= 2``.
            dtype: The floating dtype of the couplings.

        Returns:
            ``LatticeAction`` with orders ``1..K`` equal to :meth:`coefficients` when expanded.
        """
        if isinstance(order, bool) or not isinstance(order, int) or order < 2:
            raise ValueError(f"order must be an int >= 2, got {order!r}")
        window = lattice_window(self.shape, 1)
        c2 = torch.zeros(window, dtype=dtype)
        c2[(0,) * self.ndim] = self.m2 + 2 * self.ndim * self.kappa
        for axis in range(self.ndim):
            for step in (1, -1):
                offset = [0] * self.ndim
                offset[axis] = step % window[axis]
                c2[tuple(offset)] -= self.kappa
        couplings: dict[int, Tensor] = {1: torch.zeros((), dtype=dtype), 2: c2}
        for k, g in ((3, self.g3), (4, self.g4)):
            if k <= order:
                c = torch.zeros(window * (k - 1), dtype=dtype)
                c[(0,) * (self.ndim * (k - 1))] = g
                couplings[k] = c
        for k in range(5, order + 1):
            couplings[k] = torch.zeros(window * (k - 1), dtype=dtype)
        metadata = {"source": "LatticeTheory", "compressed": True, **self.parameters}
        return LatticeAction(couplings, self.shape, 0.0, metadata=metadata, window=window)


PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "gaussian": {"m2": 1.0, "kappa": 0.5, "g3": 0.0, "g4": 0.0},
    "unimodal": {"m2": 1.0, "kappa": 0.5, "g3": 0.5, "g4": 1.0},
    "double_well": {"m2": -1.5, "kappa": 0.5, "g3": 0.0, "g4": 1.0},
})
"""Named couplings for the lectures; every preset defaults to ``shape=(8,)``.

- ``"gaussian"``: ``g3 = g4 = 0``, the free theory (covariance ``inv(A2)``).
- ``"unimodal"``: the measured case of the paper's claims, ``m2 = 1, kappa = 0.5, g3 = 0.5,
  g4 = 1``.
- ``"double_well"``: ``m2 = -1.5, kappa = 0.5, g3 = 0, g4 = 1``; two separated modes of the
  site marginal near ``+-2.7``, joined by the sampler's global flip ``x -> -x``.
"""


def preset(name: str, shape: tuple[int, ...] | None = None) -> LatticeTheory:
    """A named lattice theory from :data:`PRESETS`.

    Arguments:
        name: A key of :data:`PRESETS`.
        shape: The lattice; ``(8,)`` when ``None``.

    Returns:
        The :class:`LatticeTheory`.

    Example:
        >>> preset("unimodal").parameters["g3"]
        0.5
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return LatticeTheory((8,) if shape is None else shape, **PRESETS[name])
