"""Dense polynomial actions: S(x0 + d) = A^(0) + sum_k (1/k!) A^(k) d...d with every symmetric
tensor A^(k) of shape (N,)*k stored in full (the convention of `inntheory.actions.base`).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .base import (
    DENSE_FORMAT,
    Action,
    check_order,
    check_orders,
    common_dtype,
    configurations,
    metadata_from,
    quote,
    real_array,
    real_tensor,
)

__all__ = ["PolynomialAction", "configurations", "symmetrize"]

_SYMMETRY_RTOL = 1e-8
_COEFFICIENT_NAME = re.compile(r"A([1-9][0-9]*)")


def _asymmetry(tensor: torch.Tensor) -> float:
    """Largest |T - T transposed| over adjacent index swaps, relative to max |T|."""
    scale = float(tensor.abs().max()) if tensor.numel() else 0.0
    if tensor.dim() < 2 or scale == 0.0:
        return 0.0
    worst = max(
        float((tensor - tensor.transpose(i, i + 1)).abs().max()) for i in range(tensor.dim() - 1)
    )
    return worst / scale


def symmetrize(tensor: torch.Tensor) -> torch.Tensor:
    """Average a tensor over all permutations of its indices.

    Arguments:
        tensor: (N,)*k.

    Returns:
        The symmetric part, (N,)*k.
    """
    k = tensor.dim()
    if k < 2:
        return tensor.clone()
    total = torch.zeros_like(tensor)
    for permutation in itertools.permutations(range(k)):
        total += tensor.permute(permutation)
    return total / math.factorial(k)


class PolynomialAction(Action):
    """A polynomial action S(x0 + d) = A0 + sum_k (1/k!) A^(k) d...d.

    Arguments:
        coefficients: mapping from order k >= 1 to the symmetric tensor A^(k) of shape
            (N,)*k (torch tensors or arrays). Orders that are absent are zero.
        point: expansion point x0, shape (N,); zero by default.
        constant: A^(0), the value of S at x0 (normalisation; never compared).
        metadata: JSON-able facts about where the action came from.
        check_symmetry: raise if a tensor is not symmetric (relative tolerance 1e-8).

    Example:
        >>> import torch
        >>> S = PolynomialAction({2: torch.eye(2), 4: torch.zeros(2, 2, 2, 2)})
        >>> S.dim, S.order
        (2, 4)
        >>> float(S(torch.tensor([[1.0, 1.0]]))[0])
        1.0
    """

    format = DENSE_FORMAT
    multiplicity = 1

    def __init__(
        self,
        coefficients: Mapping[int, Any],
        point: Any = None,
        constant: float = 0.0,
        metadata: Mapping[str, Any] | None = None,
        *,
        check_symmetry: bool = True,
    ) -> None:
        tensors: dict[int, torch.Tensor] = {}
        dim: int | None = None
        for k in check_orders(coefficients, "coefficient", "A^(k)"):
            tensor = real_tensor(coefficients[k], f"A^({k})")
            if tensor.dim() != k or len(set(tensor.shape)) != 1:
                raise ValueError(
                    f"A^({k}) must have shape (N,)*{k}, got {tuple(tensor.shape)}"
                )
            if dim is None:
                dim = tensor.shape[0]
            elif tensor.shape[0] != dim:
                raise ValueError(
                    f"A^({k}) has N = {tensor.shape[0]} but earlier orders have N = {dim}"
                )
            if check_symmetry and _asymmetry(tensor) > _SYMMETRY_RTOL:
                raise ValueError(
                    f"A^({k}) is not symmetric (relative asymmetry {_asymmetry(tensor):.2e}); "
                    "pass symmetrize(A) if that is what you mean"
                )
            tensors[k] = tensor
        assert dim is not None
        dtype, device = common_dtype(tensors)
        self._coefficients = {k: t.to(device=device, dtype=dtype) for k, t in tensors.items()}
        if point is None:
            self._point = torch.zeros(dim, dtype=dtype, device=device)
        else:
            self._point = real_tensor(point, "point").to(device=device, dtype=dtype)
            if self._point.shape != (dim,):
                raise ValueError(
                    f"point must have shape ({dim},), got {tuple(self._point.shape)}"
                )
        self._set_constant(constant, metadata)

    # -- structure ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of degrees of freedom N."""
        return self._point.shape[0]

    @property
    def point(self) -> torch.Tensor:
        """The expansion point x0, (N,)."""
        return self._point

    def items(self) -> list[tuple[int, torch.Tensor]]:
        """(k, A^(k)) for the stored orders, ascending."""
        return sorted(self._coefficients.items())

    def coefficient(self, k: int) -> torch.Tensor:
        """The symmetric tensor A^(k), shape (N,)*k (zeros for an absent order <= K)."""
        k = check_order(k, self.order)
        if k in self._coefficients:
            return self._coefficients[k]
        return torch.zeros((self.dim,) * k, dtype=self.dtype, device=self.device)

    tensor = coefficient

    def diagonal(self, k: int) -> torch.Tensor:
        """The local part A^(k)_{i..i}, shape (N,)."""
        return self.diagonal_entries(self.coefficient(k))

    def diagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        """T_{i..i} of a tensor T: (N,)*k, (N,)."""
        index = torch.arange(stored.shape[0], device=stored.device)
        return stored[(index,) * stored.dim()]

    def offdiagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        """T with its diagonal i1 = .. = ik set to zero (a vector has no off-diagonal)."""
        if stored.dim() < 2:
            return torch.zeros_like(stored)
        rest = stored.clone()
        index = torch.arange(stored.shape[0], device=stored.device)
        rest[(index,) * stored.dim()] = 0.0
        return rest

    def to_dense(self) -> PolynomialAction:
        """This action (already dense)."""
        return self

    def homogeneous(self, k: int) -> PolynomialAction:
        """A^(k) alone, around the same point."""
        return PolynomialAction({k: self.coefficient(k)}, self.point, check_symmetry=False)

    def truncate(self, order: int) -> PolynomialAction:
        """The same action with the orders above `order` dropped."""
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        kept = {k: t for k, t in self._coefficients.items() if k <= order}
        if not kept:
            kept = {1: torch.zeros(self.dim, dtype=self.dtype, device=self.device)}
        return PolynomialAction(
            kept, self.point, self.constant, self.metadata, check_symmetry=False
        )

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> PolynomialAction:
        """A copy on another device and/or in another floating dtype."""
        return PolynomialAction(
            {k: t.to(device=device, dtype=dtype) for k, t in self._coefficients.items()},
            self.point.to(device=device, dtype=dtype),
            self.constant,
            self.metadata,
            check_symmetry=False,
        )

    def spectrum(self) -> torch.Tensor:
        """The eigenvalues of A^(2), ascending, (N,)."""
        return torch.linalg.eigvalsh(self.coefficient(2))

    # -- evaluation --------------------------------------------------------------------------

    def _contract(self, k: int, d: torch.Tensor, keep: int) -> torch.Tensor:
        """A^(k) with all but `keep` legs contracted with d: (n, N) -> (n, (N,)*keep)."""
        tensor = self._coefficients[k]
        if keep == k:
            return tensor.expand(d.shape[0], *tensor.shape)
        contracted = torch.tensordot(d, tensor, dims=([1], [0]))
        for _ in range(k - 1 - keep):
            contracted = torch.einsum("ni,ni...->n...", d, contracted)
        return contracted

    def fields(self, d: torch.Tensor) -> dict[int, torch.Tensor]:
        """A^(k) d...d with one leg open, (n, N) per stored order, for d: (n, N)."""
        return {k: self._contract(k, d, keep=1) for k in self._coefficients}

    def action(self, x: Any) -> torch.Tensor:
        """S(x) for a batch x: (n, N) -> (n,) (or a scalar for x: (N,))."""
        d, single = self._deviations(x)
        value = torch.full(d.shape[:1], self.constant, dtype=self.dtype, device=self.device)
        for k in self._coefficients:
            value = value + self._contract(k, d, keep=0) / math.factorial(k)
        return value[0] if single else value

    def grad(self, x: Any) -> torch.Tensor:
        """dS/dx for a batch: (n, N) -> (n, N) (or (N,) for x: (N,))."""
        d, single = self._deviations(x)
        gradient = torch.zeros_like(d)
        for k in self._coefficients:
            gradient = gradient + self._contract(k, d, keep=1) / math.factorial(k - 1)
        return gradient[0] if single else gradient

    # -- persistence -------------------------------------------------------------------------

    def arrays(self) -> dict[str, Any]:
        """`A1`, `A2`, ... (float64), `point` and `constant`: readable without inntheory,
        ``np.load(path)["A4"]``."""
        arrays: dict[str, Any] = {
            f"A{k}": t.detach().cpu().double().numpy() for k, t in self.items()
        }
        arrays["point"] = self.point.detach().cpu().double().numpy()
        arrays["constant"] = np.float64(self.constant)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PolynomialAction:
        """The action held by the arrays of a dense action `.npz` (any `.npz` with arrays
        `A1`, `A2`, ...); ValueError for no coefficient arrays, a name like `A01`, a
        coefficient that is not real-valued, of the wrong shape or not finite, a `constant`
        that is not one number, a `point` of the wrong shape, `metadata` that is not a JSON
        object."""
        metadata = metadata_from(arrays)
        coefficients = {}
        for name in sorted(arrays):
            match = _COEFFICIENT_NAME.fullmatch(name)
            if match is None:
                if name[:1] == "A" and name[1:].isdigit():
                    raise ValueError(f"array {quote(name)} is not a coefficient name; the "
                                     "orders are named A1, A2, ... (no leading zeros, no A0)")
                continue
            coefficients[int(match.group(1))] = real_array(arrays[name], name)
        if not coefficients:
            raise ValueError("it holds no coefficient arrays A1, A2, ...")
        point = arrays.get("point")
        if point is not None:
            point = real_array(point, "point")
        constant = arrays.get("constant", np.float64(0.0))
        if np.shape(constant) != ():
            raise ValueError(f"constant must be a single number, got shape {np.shape(constant)}")
        constant = real_array(constant, "constant")
        return cls({k: torch.from_numpy(a) for k, a in coefficients.items()}, point,
                   float(constant), metadata)
