"""Polynomial actions: symmetric coefficient tensors around an expansion point.

One data structure for every action in the kit, true or learned. With x0 the expansion point
and d = x - x0,

    S(x0 + d) = A^(0) + sum_{k=1}^{K} (1/k!) A^(k)_{i1..ik} d_i1 ... d_ik,

where every A^(k) is a symmetric tensor of shape (N,)*k (METHOD.md's convention). The constant
A^(0) fixes the normalisation and is never compared.

A `PolynomialAction` is a *target* for `inntheory.sample`: it has `.dim`, `action(x)` and
`grad(x)` on batches (n, N).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write, load_error

__all__ = ["PolynomialAction", "configurations"]

_SYMMETRY_RTOL = 1e-8
_COEFFICIENT_NAME = re.compile(r"A([1-9][0-9]*)")


def _real_array(array: np.ndarray, name: str) -> np.ndarray:
    """`array` as float64 when it holds real numbers (bool, complex, strings are refused)."""
    if array.dtype == np.bool_ or array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    try:
        tensor = value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of real numbers") from error
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or inf entries")
    return tensor


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


def configurations(
    x: Any, dim: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, bool]:
    """Check a batch an action is evaluated on: (n, dim) or (dim,) -> ((n, dim) in `dtype` on
    `device`, whether it was a single configuration); ValueError naming a wrong shape or
    NaN/inf entries."""
    x = torch.as_tensor(x, device=device)
    if not x.is_floating_point():
        x = x.to(dtype)
    single = x.dim() == 1
    if single:
        x = x.unsqueeze(0)
    if x.dim() != 2 or x.shape[1] != dim:
        shape = tuple(x.shape[1:]) if single else tuple(x.shape)
        raise ValueError(f"x must have shape (n, {dim}) or ({dim},), got {shape}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf entries")
    return x.to(dtype), single


class PolynomialAction:
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

    def __init__(
        self,
        coefficients: Mapping[int, Any],
        point: Any = None,
        constant: float = 0.0,
        metadata: Mapping[str, Any] | None = None,
        *,
        check_symmetry: bool = True,
    ) -> None:
        if not isinstance(coefficients, Mapping) or not coefficients:
            raise ValueError("coefficients must be a non-empty mapping {order k >= 1: A^(k)}")
        tensors: dict[int, torch.Tensor] = {}
        dim: int | None = None
        for k in sorted(coefficients):
            if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
                raise ValueError(f"coefficient orders must be integers >= 1, got {k!r}")
            tensor = _as_tensor(coefficients[k], f"A^({k})")
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
            tensors[int(k)] = tensor
        assert dim is not None
        dtype = torch.get_default_dtype()
        for tensor in tensors.values():
            dtype = torch.promote_types(dtype, tensor.dtype)
        device = next(iter(tensors.values())).device
        self._coefficients = {k: t.to(device=device, dtype=dtype) for k, t in tensors.items()}
        if point is None:
            self.point = torch.zeros(dim, dtype=dtype, device=device)
        else:
            self.point = _as_tensor(point, "point").to(device=device, dtype=dtype)
            if self.point.shape != (dim,):
                raise ValueError(
                    f"point must have shape ({dim},), got {tuple(self.point.shape)}"
                )
        if not math.isfinite(float(constant)):
            raise ValueError("constant must be finite")
        self.constant = float(constant)
        self.metadata: dict[str, Any] = dict(metadata or {})

    # -- structure ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of degrees of freedom N."""
        return self.point.shape[0]

    @property
    def order(self) -> int:
        """Highest order K present."""
        return max(self._coefficients)

    @property
    def orders(self) -> tuple[int, ...]:
        """Orders with a stored tensor, ascending."""
        return tuple(sorted(self._coefficients))

    @property
    def dtype(self) -> torch.dtype:
        return self.point.dtype

    @property
    def device(self) -> torch.device:
        return self.point.device

    def items(self) -> list[tuple[int, torch.Tensor]]:
        """(k, A^(k)) for the stored orders, ascending."""
        return sorted(self._coefficients.items())

    def coefficient(self, k: int) -> torch.Tensor:
        """The symmetric tensor A^(k), shape (N,)*k (zeros for an absent order <= K)."""
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"order must be an integer >= 1, got {k!r}")
        if k > self.order:
            raise ValueError(f"this action has orders up to {self.order}; A^({k}) is not known")
        if k in self._coefficients:
            return self._coefficients[k]
        return torch.zeros((self.dim,) * k, dtype=self.dtype, device=self.device)

    def diagonal(self, k: int) -> torch.Tensor:
        """The local part A^(k)_{i..i}, shape (N,)."""
        tensor = self.coefficient(k)
        index = torch.arange(self.dim, device=self.device)
        return tensor[(index,) * k]

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

    # -- evaluation --------------------------------------------------------------------------

    def _deviations(self, x: Any) -> tuple[torch.Tensor, bool]:
        x, single = configurations(x, self.dim, self.dtype, self.device)
        return x - self.point, single

    def _contract(self, k: int, d: torch.Tensor, keep: int) -> torch.Tensor:
        """A^(k) with all but `keep` legs contracted with d: (n, N) -> (n, (N,)*keep)."""
        tensor = self._coefficients[k]
        if keep == k:
            return tensor.expand(d.shape[0], *tensor.shape)
        contracted = torch.tensordot(d, tensor, dims=([1], [0]))
        for _ in range(k - 1 - keep):
            contracted = torch.einsum("ni,ni...->n...", d, contracted)
        return contracted

    def action(self, x: Any) -> torch.Tensor:
        """S(x) for a batch x: (n, N) -> (n,) (or a scalar for x: (N,))."""
        d, single = self._deviations(x)
        value = torch.full(d.shape[:1], self.constant, dtype=self.dtype, device=self.device)
        for k in self._coefficients:
            value = value + self._contract(k, d, keep=0) / math.factorial(k)
        return value[0] if single else value

    __call__ = action

    def grad(self, x: Any) -> torch.Tensor:
        """dS/dx for a batch: (n, N) -> (n, N) (or (N,) for x: (N,))."""
        d, single = self._deviations(x)
        gradient = torch.zeros_like(d)
        for k in self._coefficients:
            gradient = gradient + self._contract(k, d, keep=1) / math.factorial(k - 1)
        return gradient[0] if single else gradient

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the action to an `.npz` file atomically.

        The file holds arrays `A1`, `A2`, ... (float64), `point`, `constant` and `metadata`
        (a JSON string), readable without inntheory: `np.load(path)["A4"]`.

        Returns:
            The path written (`.npz` is appended when missing).
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        try:
            metadata = json.dumps(self.metadata)
        except TypeError as error:
            raise ValueError(f"metadata must be JSON-serialisable: {error}") from error
        arrays = {f"A{k}": t.detach().cpu().double().numpy() for k, t in self.items()}
        arrays["point"] = self.point.detach().cpu().double().numpy()
        arrays["constant"] = np.float64(self.constant)
        arrays["metadata"] = np.array(metadata)
        with atomic_write(path) as stream:
            np.savez(stream, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PolynomialAction:
        """Read an action written by `save` (or any `.npz` with arrays `A1`, `A2`, ...).

        Raises:
            FileNotFoundError: no file at `path`.
            ValueError: the file is not a readable `.npz` archive (a model file `.model.pt`,
                pickled objects, a damaged archive), or its contents are not an action: no
                coefficient arrays, a name like `A01`, a coefficient that is not real-valued,
                of the wrong shape or not finite, a `constant` that is not one number, a
                `point` of the wrong shape, `metadata` that is not a JSON object. The
                message names the file and the problem.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no action file at {path}")
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("it is a single .npy array, not an .npz archive")
            with loaded as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"{path} is not a readable action file: {load_error(error)}"
                             ) from error
        not_arrays = sorted(name for name, value in arrays.items()
                            if not isinstance(value, np.ndarray))
        if not_arrays:  # members of a zip that are not .npy files, e.g. a torch archive
            raise ValueError(
                f"{path} is not an action file: it holds non-array members "
                f"({', '.join(not_arrays[:3])}{', ...' if len(not_arrays) > 3 else ''}); a "
                "model file (.model.pt) is read with PolynomialINN.load"
            )
        try:
            return cls._from_arrays(arrays)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path} is not a valid action file: {error}") from error

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> PolynomialAction:
        """The action held by the arrays of an action `.npz` (see `load`)."""
        metadata: Any = {}
        if "metadata" in arrays:
            text = arrays.pop("metadata")
            if text.shape != () or text.dtype.kind != "U":
                raise ValueError(f"metadata must be a JSON string, got an array of dtype "
                                 f"{text.dtype} and shape {text.shape}")
            try:
                metadata = json.loads(str(text))
            except ValueError as error:
                raise ValueError(f"metadata is not valid JSON ({error})") from error
            if not isinstance(metadata, dict):
                raise ValueError(f"metadata must be a JSON object, got {type(metadata).__name__}")
        coefficients = {}
        for name in sorted(arrays):
            match = _COEFFICIENT_NAME.fullmatch(name)
            if match is None:
                if name[:1] == "A" and name[1:].isdigit():
                    raise ValueError(f"array {name!r} is not a coefficient name; the orders are "
                                     "named A1, A2, ... (no leading zeros, no A0)")
                continue
            coefficients[int(match.group(1))] = _real_array(arrays[name], name)
        if not coefficients:
            raise ValueError("it holds no coefficient arrays A1, A2, ...")
        point = arrays.get("point")
        if point is not None:
            point = _real_array(point, "point")
        constant = arrays.get("constant", np.float64(0.0))
        if np.shape(constant) != ():
            raise ValueError(f"constant must be a single number, got shape {np.shape(constant)}")
        constant = _real_array(constant, "constant")
        return cls({k: torch.from_numpy(a) for k, a in coefficients.items()}, point,
                   float(constant), metadata)

    def __repr__(self) -> str:
        source = self.metadata.get("source")
        origin = f", source={source!r}" if source else ""
        return f"PolynomialAction(dim={self.dim}, orders={self.orders}{origin})"

