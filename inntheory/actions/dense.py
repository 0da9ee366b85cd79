"""Dense polynomial actions: every symmetric A^(k) of shape (N,)*k stored in full (the
convention of `inntheory.actions.base`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .base import (
    DENSE_FORMAT,
    SYMMETRY_RTOL,
    Action,
    check_order,
    check_orders,
    common_dtype,
    configurations,
    metadata_from,
    numbered,
    real_array,
    real_tensor,
    scalar,
)

__all__ = ["PolynomialAction", "configurations", "symmetrize"]


def asymmetry(tensor: torch.Tensor) -> float:
    """Largest |T - T transposed| over adjacent index swaps, relative to max |T|."""
    scale = float(tensor.abs().max()) if tensor.numel() else 0.0
    if tensor.dim() < 2 or scale == 0.0:
        return 0.0
    worst = max(
        float((tensor - tensor.transpose(i, i + 1)).abs().max()) for i in range(tensor.dim() - 1)
    )
    return worst / scale


def symmetrize(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor (N,)*k over all permutations of its indices, (N,)*k."""
    k = tensor.dim()
    if k < 2:
        return tensor.clone()
    total = sum(tensor.permute(p) for p in itertools.permutations(range(k)))
    return total / math.factorial(k)


def _diagonal_index(stored: torch.Tensor) -> tuple[torch.Tensor, ...]:
    index = torch.arange(stored.shape[0], device=stored.device)
    return (index,) * stored.dim()


class PolynomialAction(Action):
    """A polynomial action S(x0 + d) = A0 + sum_k (1/k!) A^(k) d...d.

    Arguments:
        coefficients: {order k >= 1: symmetric A^(k) of shape (N,)*k} (tensors or arrays);
            absent orders are zero.
        point: expansion point x0, shape (N,); zero by default.
        constant, metadata: see `Action`.
        check_symmetry: raise if a tensor is not symmetric (relative tolerance 1e-8).
    """

    format = DENSE_FORMAT
    multiplicity = 1

    def __init__(self, coefficients: Mapping[int, Any], point: Any = None,
                 constant: float = 0.0, metadata: Mapping[str, Any] | None = None, *,
                 check_symmetry: bool = True) -> None:
        tensors: dict[int, torch.Tensor] = {}
        dim: int | None = None
        for k in check_orders(coefficients, "coefficient", "A^(k)"):
            tensor = real_tensor(coefficients[k], f"A^({k})")
            if tensor.dim() != k or len(set(tensor.shape)) != 1:
                raise ValueError(f"A^({k}) must have shape (N,)*{k}, got {tuple(tensor.shape)}")
            if dim is None:
                dim = tensor.shape[0]
            elif tensor.shape[0] != dim:
                raise ValueError(f"A^({k}) has N = {tensor.shape[0]} but earlier orders have N = "
                                 f"{dim}")
            if check_symmetry and asymmetry(tensor) > SYMMETRY_RTOL:
                raise ValueError(f"A^({k}) is not symmetric (relative asymmetry "
                                 f"{asymmetry(tensor):.2e}); pass symmetrize(A) if that is what "
                                 "you mean")
            tensors[k] = tensor
        assert dim is not None
        dtype, device = common_dtype(tensors)
        self._tensors = {k: t.to(device=device, dtype=dtype) for k, t in tensors.items()}
        if point is None:
            self._point = torch.zeros(dim, dtype=dtype, device=device)
        else:
            self._point = real_tensor(point, "point").to(device=device, dtype=dtype)
            if self._point.shape != (dim,):
                raise ValueError(f"point must have shape ({dim},), got {tuple(self._point.shape)}")
        self._set_constant(constant, metadata)

    @property
    def dim(self) -> int:
        return self._point.shape[0]

    @property
    def point(self) -> torch.Tensor:
        return self._point

    def coefficient(self, k: int) -> torch.Tensor:
        k = check_order(k, self.order)
        if k in self._tensors:
            return self._tensors[k]
        return torch.zeros((self.dim,) * k, dtype=self.dtype, device=self.device)

    tensor = coefficient

    def diagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        return stored[_diagonal_index(stored)]

    def offdiagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        if stored.dim() < 2:
            return torch.zeros_like(stored)
        rest = stored.clone()
        rest[_diagonal_index(stored)] = 0.0
        return rest

    def to_dense(self) -> PolynomialAction:
        return self

    def _with(self, tensors: dict[int, torch.Tensor], constant: float = 0.0,
              metadata: Mapping[str, Any] | None = None) -> PolynomialAction:
        return PolynomialAction(tensors, self.point, constant, metadata, check_symmetry=False)

    def spectrum(self) -> torch.Tensor:
        """The eigenvalues of A^(2), ascending, (N,)."""
        return torch.linalg.eigvalsh(self.coefficient(2))

    def _contract(self, k: int, d: torch.Tensor, keep: int) -> torch.Tensor:
        """A^(k) with all but `keep` legs contracted with d: (n, N) -> (n, (N,)*keep)."""
        tensor = self._tensors[k]
        if keep == k:
            return tensor.expand(d.shape[0], *tensor.shape)
        contracted = torch.tensordot(d, tensor, dims=([1], [0]))
        for _ in range(k - 1 - keep):
            contracted = torch.einsum("ni,ni...->n...", d, contracted)
        return contracted

    def fields(self, d: torch.Tensor) -> dict[int, torch.Tensor]:
        return {k: self._contract(k, d, keep=1) for k in self._tensors}

    def action(self, x: Any) -> torch.Tensor:
        d, single = self._deviations(x)
        value = torch.full(d.shape[:1], self.constant, dtype=self.dtype, device=self.device)
        for k in self._tensors:
            value = value + self._contract(k, d, keep=0) / math.factorial(k)
        return value[0] if single else value

    def arrays(self) -> dict[str, Any]:
        """`A1`, `A2`, ... (float64), `point` and `constant`: readable without inntheory,
        ``np.load(path)["A4"]``."""
        arrays = self._numbered("A")
        arrays["point"] = self.point.detach().cpu().double().numpy()
        arrays["constant"] = np.float64(self.constant)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PolynomialAction:
        """The action of any `.npz` with arrays `A1`, `A2`, ... (see `arrays`)."""
        metadata = metadata_from(arrays)
        coefficients = numbered(arrays, "A", "coefficient")
        point = arrays.get("point")
        if point is not None:
            point = real_array(point, "point")
        return cls(coefficients, point, scalar(arrays, "constant"), metadata)
