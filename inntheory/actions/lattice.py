"""Translation-invariant polynomial actions stored by their couplings relative to one site.

On a periodic lattice of shape (L,) or (L1, L2) (N sites, flattened in C order as
`LatticeTheory` does) a translation-invariant symmetric tensor A^(k) is fixed by its couplings
relative to site 0,

    C^(k)[o2, .., ok] = A^(k)[0, o2, .., ok],   A^(k)[i1, .., ik] = C^(k)[i2 - i1, .., ik - i1],

N^(k-1) numbers instead of N^k. A `LatticeAction` stores C^(k) over a *window* of relative
offsets: per axis the window w is either the full axis (w = L, index t = offset t mod L) or an
odd w = 2R + 1 < L holding the offsets -R..R (index t = offset mod w: index 0 is offset 0,
index -1 is offset -1); every coupling reaching further is zero. `couplings(k)` has the shape
(*window) * (k - 1) (one group of lattice axes per leg after the first; a scalar for k = 1).
An action whose couplings reach at most R steps is then exactly the same action computed on
the small torus of shape `window`, and expanding it onto the big lattice is exact.

The expansion point is uniform (x0 = point * ones(N)), the constant A^(0) is the value on the
big lattice. The class has the interface of `PolynomialAction` where it makes sense and is a
target for `inntheory.sample` (`dim`, `action`, `grad` on batches (n, N)).

Example:
    >>> import torch
    >>> C2 = torch.tensor([2.0, -0.5, -0.5])        # offsets 0, +1, -1 on a ring of 8
    >>> S = LatticeAction({2: C2, 4: torch.zeros(3, 3, 3)}, shape=(8,))
    >>> S.dim, S.order, S.window
    (8, 4, (3,))
    >>> float(S.coefficient(2)[0, 7])
    -0.5
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._checks import check_shape
from .._memory import available_bytes
from .base import (
    Action,
    check_order,
    check_orders,
    common_dtype,
    metadata_from,
    quote,
    real_array,
    real_tensor,
)
from .dense import PolynomialAction

__all__ = ["LatticeAction", "lattice_window"]

_SYMMETRY_RTOL = 1e-8
_COUPLING_NAME = re.compile(r"C([1-9][0-9]*)")
# Entries of one (rows, N, window...) contraction temporary in action()/grad().
_CHUNK_ELEMENTS = 2**24


def lattice_window(shape: tuple[int, ...], radius: int | None) -> tuple[int, ...]:
    """The coupling window per axis for couplings reaching `radius` steps: min(L, 2R + 1).

    Arguments:
        shape: the lattice, (L,) or (L1, L2).
        radius: R >= 0, or None for the full lattice.
    """
    if radius is None:
        return tuple(shape)
    return tuple(min(length, 2 * int(radius) + 1) for length in shape)


def _check_window(window: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    dims = check_shape(window)
    if len(dims) != len(shape):
        raise ValueError(f"window {dims} has {len(dims)} axes but the lattice {shape} has "
                         f"{len(shape)}")
    for w, length in zip(dims, shape, strict=True):
        if w > length or (w < length and w % 2 == 0):
            raise ValueError(
                f"window {dims} does not fit the lattice {shape}: each axis must be the full "
                "length L or an odd 2R + 1 < L (offsets -R..R)"
            )
    return dims


def _axis_offsets(w: int, length: int) -> np.ndarray:
    """The lattice offset of each window index along one axis."""
    t = np.arange(w)
    if w == length:
        return t
    return np.where(t <= w // 2, t, t - w)


def _coordinates(shape: tuple[int, ...]) -> np.ndarray:
    """Lattice coordinates of the flattened sites, (N, d)."""
    return np.stack(np.unravel_index(np.arange(math.prod(shape)), shape), axis=1)


def shift_index(shape: tuple[int, ...], window: tuple[int, ...]) -> np.ndarray:
    """index[i, t] = the site at offset `t` (flattened window index) from site i, (N, M)."""
    sites = _coordinates(shape)
    offsets = np.stack(
        np.meshgrid(*[_axis_offsets(w, L) for w, L in zip(window, shape, strict=True)],
                    indexing="ij"),
        axis=-1,
    ).reshape(-1, len(shape))
    target = (sites[:, None, :] + offsets[None, :, :]) % np.array(shape)
    return np.ravel_multi_index(tuple(np.moveaxis(target, -1, 0)), shape)


def relative_index(shape: tuple[int, ...], window: tuple[int, ...]) -> np.ndarray:
    """index[i, j] = flattened window index of the offset j - i, or M when outside, (N, N)."""
    sites = _coordinates(shape)
    diff = (sites[None, :, :] - sites[:, None, :]) % np.array(shape)
    index = np.zeros(diff.shape[:2], dtype=np.int64)
    inside = np.ones(diff.shape[:2], dtype=bool)
    for axis, (w, length) in enumerate(zip(window, shape, strict=True)):
        d = diff[..., axis]
        if w < length:
            d = np.where(d <= length // 2, d, d - length)
            inside &= np.abs(d) <= w // 2
            d = d % w
        index = index * w + d
    return np.where(inside, index, math.prod(window))


class LatticeAction(Action):
    """A translation-invariant polynomial action in compressed form (see the module docstring).

    Arguments:
        couplings: {k >= 1: C^(k)} with C^(k) of shape (*window) * (k - 1) (a scalar for
            k = 1); absent orders are zero.
        shape: the lattice, (L,) or (L1, L2).
        point: the uniform expansion point: a number, or an (N,) array with equal entries.
        constant: A^(0), the value of S at the point on the big lattice.
        metadata: JSON-able facts about where the action came from.
        window: the coupling window; inferred from an order >= 2 tensor when None (and the
            full lattice when only A^(1) is given).
        check_symmetry: raise when a C^(k) is not the compressed form of a symmetric tensor
            (symmetric among its k - 1 legs and under swapping the root with a leg; relative
            tolerance 1e-8).
    """

    format = "inntheory.LatticeAction"

    def __init__(
        self,
        couplings: Mapping[int, Any],
        shape: Any,
        point: Any = 0.0,
        constant: float = 0.0,
        metadata: Mapping[str, Any] | None = None,
        *,
        window: Any = None,
        check_symmetry: bool = True,
    ) -> None:
        self.shape = check_shape(shape)
        tensors = {k: real_tensor(couplings[k], f"C^({k})")
                   for k in check_orders(couplings, "coupling", "C^(k)")}
        if window is None:
            higher = [t for k, t in tensors.items() if k >= 2]
            window = tuple(higher[0].shape[: len(self.shape)]) if higher else self.shape
        self.window = _check_window(window, self.shape)
        dtype, device = common_dtype(tensors)
        for k, tensor in tensors.items():
            expected = self.window * (k - 1)
            if tuple(tensor.shape) != expected:
                raise ValueError(
                    f"C^({k}) must have shape {expected} (window {self.window} per leg after "
                    f"the first), got {tuple(tensor.shape)}"
                )
            tensors[k] = tensor.to(device=device, dtype=dtype)
            if check_symmetry and k >= 2:
                asymmetry = _asymmetry(tensors[k], self.window, self.shape)
                if asymmetry > _SYMMETRY_RTOL:
                    raise ValueError(
                        f"C^({k}) is not the compressed form of a symmetric tensor (relative "
                        f"asymmetry {asymmetry:.2e} under swapping two legs or the root with a "
                        "leg, or couplings whose mirror falls outside the window)"
                    )
        self._couplings = tensors
        value = real_tensor(point, "point").to(torch.float64).flatten()
        if value.numel() not in (1, self.dim):
            raise ValueError(f"point must be a number or have shape ({self.dim},), got "
                             f"{value.numel()} entries")
        if value.numel() > 1 and bool((value != value[0]).any()):
            raise ValueError("a LatticeAction needs a uniform expansion point (all entries "
                             "equal); use a PolynomialAction for another point")
        self.point_value = float(value[0])
        self._set_constant(constant, metadata)

    # -- structure ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of sites N."""
        return math.prod(self.shape)

    @property
    def size(self) -> int:
        """Offsets per leg in the window, M = prod(window)."""
        return math.prod(self.window)

    @property
    def point(self) -> torch.Tensor:
        """The expansion point x0 = point_value * ones(N), (N,)."""
        return torch.full((self.dim,), self.point_value, dtype=self.dtype, device=self.device)

    def items(self) -> list[tuple[int, torch.Tensor]]:
        """(k, C^(k)) for the stored orders, ascending."""
        return sorted(self._couplings.items())

    @property
    def multiplicity(self) -> int:
        """N: coupling C^(k)[o] stands for the entries A^(k)[i, i + o, ..] of every site i."""
        return self.dim

    def couplings(self, k: int) -> torch.Tensor:
        """C^(k) = A^(k)[0, ...] over relative offsets, shape (*window) * (k - 1)."""
        k = check_order(k, self.order)
        if k in self._couplings:
            return self._couplings[k]
        return torch.zeros(self.window * (k - 1), dtype=self.dtype, device=self.device)

    tensor = couplings

    def onsite(self, k: int) -> float:
        """The on-site coupling A^(k)_{i..i} (the same on every site)."""
        return float(self.couplings(k).flatten()[0]) if k > 1 else float(self.couplings(1))

    def diagonal(self, k: int) -> torch.Tensor:
        """The local part A^(k)_{i..i}, shape (N,) (all equal)."""
        return torch.full((self.dim,), self.onsite(k), dtype=self.dtype, device=self.device)

    def diagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        """The on-site coupling C[0..0] of couplings C, (1,) (it stands for N entries)."""
        return stored.reshape(-1)[:1]

    def offdiagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        """Couplings C with the on-site one set to zero (order 1 has no off-diagonal)."""
        rest = stored.clone()
        if rest.dim():
            rest.view(-1)[0] = 0.0
        else:
            rest.zero_()
        return rest

    def homogeneous(self, k: int) -> LatticeAction:
        """C^(k) alone, around the same point."""
        return LatticeAction({k: self.couplings(k)}, self.shape, self.point_value,
                             window=self.window, check_symmetry=False)

    def aligned(self, others: Sequence[Action]) -> list[Action] | None:
        """With `LatticeAction`s on the same lattice: all on the largest window (a window
        shorter than the lattice holds offsets -R..R, which embed into any longer window)."""
        actions = [self, *others]
        if not all(isinstance(a, LatticeAction) and a.shape == self.shape for a in actions):
            return None
        window = tuple(max(a.window[i] for a in actions) for i in range(len(self.shape)))
        return [a.widen(window) for a in actions]

    def widen(self, window: tuple[int, ...]) -> LatticeAction:
        """The same action with its couplings written onto a window no shorter than its own."""
        window = _check_window(window, self.shape)
        return self._with({k: _embed(t, self.window, window, self.shape)
                           for k, t in self.items()}, window)

    def dense_bytes(self, k: int) -> int:
        """Bytes that `coefficient(k)` needs: the (N,)*k tensor and its int64 index."""
        return 16 * self.dim**k

    def coefficient(self, k: int, max_bytes: int | None = None) -> torch.Tensor:
        """The dense symmetric tensor A^(k), shape (N,)*k, expanded from the couplings.

        Arguments:
            k: the order.
            max_bytes: memory limit; default half the memory available now.

        Raises:
            MemoryError: the dense tensor would not fit (the message gives the estimate).
        """
        k = check_order(k, self.order)
        needed = self.dense_bytes(k)
        limit = int(available_bytes()) // 2 if max_bytes is None else int(max_bytes)
        if needed > limit:
            raise MemoryError(
                f"the dense A^({k}) of N = {self.dim} sites has {self.dim}^{k} entries and "
                f"needs about {needed / 2**30:.3g} GiB, more than the limit "
                f"{limit / 2**30:.3g} GiB; use couplings({k}) (the compressed form, "
                f"{self.size ** (k - 1)} numbers) instead"
            )
        if k == 1:
            return self.couplings(1).reshape(1).expand(self.dim).clone()
        # one zero slot per leg (index M) for the offsets outside the window
        padded = torch.nn.functional.pad(
            self.couplings(k).reshape((self.size,) * (k - 1)), (0, 1) * (k - 1)
        ).reshape(-1)
        relative = torch.from_numpy(relative_index(self.shape, self.window)).to(self.device)
        width = self.size + 1
        index = relative.new_zeros((self.dim,) * k)
        for leg in range(1, k):
            view = [self.dim] + [1] * (k - 1)
            view[leg] = self.dim
            index = index * width + relative.reshape(view)
        return padded[index]

    def to_dense(self, max_bytes: int | None = None) -> PolynomialAction:
        """The same action as a `PolynomialAction` (dense tensors; MemoryError if too big)."""
        return PolynomialAction(
            {k: self.coefficient(k, max_bytes) for k in self.orders},
            self.point,
            self.constant,
            {**self.metadata, "lattice": list(self.shape)},
            check_symmetry=False,
        )

    def truncate(self, order: int) -> LatticeAction:
        """The same action with the orders above `order` dropped."""
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        kept = {k: t for k, t in self._couplings.items() if k <= order}
        if not kept:
            kept = {1: torch.zeros((), dtype=self.dtype, device=self.device)}
        return self._with(kept)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> LatticeAction:
        """A copy on another device and/or in another floating dtype."""
        return self._with({k: t.to(device=device, dtype=dtype) for k, t in self.items()})

    def _with(self, couplings: dict[int, torch.Tensor], window: tuple[int, ...] | None = None
              ) -> LatticeAction:
        return LatticeAction(couplings, self.shape, self.point_value, self.constant,
                             self.metadata, window=window or self.window, check_symmetry=False)

    # -- evaluation --------------------------------------------------------------------------

    def fields(self, d: torch.Tensor) -> dict[int, torch.Tensor]:
        """G_k(j) = sum_o C^(k)[o] d_{j+o2} .. d_{j+ok} for the stored orders: (n, N) each.

        Then dS/dx_j = sum_k G_k(j) / (k-1)! and S = A0 + sum_k sum_j d_j G_k(j) / k!.
        """
        index = torch.from_numpy(shift_index(self.shape, self.window)).to(self.device)
        rows = max(1, _CHUNK_ELEMENTS // (self.dim * self.size ** max(self.order - 2, 1)))
        out: dict[int, list[torch.Tensor]] = {k: [] for k in self._couplings}
        for chunk in torch.split(d, rows):
            shifted = chunk[:, index]  # (n, N, M): d at offset t from site j
            for k, tensor in self._couplings.items():
                if k == 1:
                    out[k].append(tensor.expand(chunk.shape))
                    continue
                flat = tensor.reshape(self.size, -1)  # first leg against the rest
                value = shifted @ flat  # (n, N, M^(k-2))
                for _ in range(k - 2):
                    value = value.reshape(*value.shape[:2], self.size, -1)
                    value = torch.einsum("njm,njm...->nj...", shifted, value)
                out[k].append(value.reshape(chunk.shape))
        return {k: torch.cat(parts) for k, parts in out.items()}

    def spectrum(self) -> torch.Tensor:
        """The eigenvalues of the dense A^(2) on the big lattice, (N,) (one per momentum)."""
        dense = torch.zeros(self.shape, dtype=torch.float64, device=self.device)
        relative = torch.from_numpy(shift_index(self.shape, self.window)[0]).to(self.device)
        dense.view(-1).index_add_(0, relative, self.couplings(2).reshape(-1).double())
        return torch.fft.fftn(dense).real.flatten()

    # -- persistence -------------------------------------------------------------------------

    def arrays(self) -> dict[str, Any]:
        """`C1`, `C2`, ... (float64 couplings), `shape`, `window`, `point` (the uniform
        value) and `constant`."""
        arrays: dict[str, Any] = {
            f"C{k}": t.detach().cpu().double().numpy() for k, t in self.items()
        }
        arrays.update(
            shape=np.array(self.shape, dtype=np.int64),
            window=np.array(self.window, dtype=np.int64),
            point=np.float64(self.point_value),
            constant=np.float64(self.constant),
        )
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LatticeAction:
        """The action held by the arrays of a `LatticeAction` file; ValueError for a coupling
        name like `C01`, couplings that are not real numbers or do not match the window, a
        shape or window that is not 1 or 2 positive integers, a lattice too large for one
        configuration to fit in memory, metadata that is not a JSON object."""
        metadata = metadata_from(arrays)
        couplings = {}
        for name in sorted(arrays):
            match = _COUPLING_NAME.fullmatch(name)
            if match is None:
                if name[:1] == "C" and name[1:].isdigit():
                    raise ValueError(f"array {quote(name)} is not a coupling name; the orders "
                                     "are named C1, C2, ... (no leading zeros, no C0)")
                continue
            couplings[int(match.group(1))] = torch.from_numpy(real_array(arrays[name], name))
        if not couplings:
            raise ValueError("it holds no coupling arrays C1, C2, ...")
        shape, window = (_file_shape(arrays, name) for name in ("shape", "window"))
        needed = 8 * math.prod(shape)
        if needed > available_bytes() // 2:
            raise ValueError(
                f"it declares a lattice of {math.prod(shape)} sites; one configuration "
                f"needs {needed / 2**30:.3g} GiB, more than half the available memory"
            )
        values = []
        for name in ("point", "constant"):
            value = arrays.get(name, np.float64(0.0))
            if np.shape(value) != ():
                raise ValueError(f"{name} must be a single number, got shape {np.shape(value)}")
            values.append(float(real_array(value, name)))
        return cls(couplings, shape, values[0], values[1], metadata, window=window)

    def _describe(self) -> str:
        return f"shape={self.shape}, window={self.window}, orders={self.orders}"


def _window_index(offset: torch.Tensor, window: tuple[int, ...],
                  shape: tuple[int, ...]) -> torch.Tensor:
    """Flattened window index of integer offsets (..., d), or M where they fall outside."""
    index = torch.zeros(offset.shape[:-1], dtype=torch.int64, device=offset.device)
    inside = torch.ones(offset.shape[:-1], dtype=torch.bool, device=offset.device)
    for axis, (w, length) in enumerate(zip(window, shape, strict=True)):
        o = offset[..., axis]
        if w < length:
            inside &= o.abs() <= w // 2
        index = index * w + o % w
    return torch.where(inside, index, math.prod(window))


def _asymmetry(tensor: torch.Tensor, window: tuple[int, ...], shape: tuple[int, ...]) -> float:
    """Largest violation of the symmetry of the dense tensor, relative to max |C|.

    A^(k) is symmetric iff C^(k) is symmetric among its k - 1 legs and invariant under
    swapping the root with the first leg: C[o2, o3, ..] = C[-o2, o3 - o2, ..] (zero where the
    new offsets leave the window).
    """
    size = math.prod(window)
    legs = tensor.dim() // len(shape)
    flat = tensor.reshape((size,) * legs)
    scale = float(flat.abs().max()) if flat.numel() else 0.0
    if scale == 0.0:
        return 0.0
    worst = max((float((flat - flat.transpose(i, i + 1)).abs().max()) for i in range(legs - 1)),
                default=0.0)
    grids = np.meshgrid(*[_axis_offsets(w, n) for w, n in zip(window, shape, strict=True)],
                        indexing="ij")
    offsets = torch.from_numpy(np.stack(grids, axis=-1).reshape(size, len(shape)))
    offsets = offsets.to(tensor.device)

    def leg(m: int) -> torch.Tensor:
        view = [1] * legs + [len(shape)]
        view[m] = size
        return offsets.reshape(view)

    first = leg(0)
    swapped = [-first] + [leg(m) - first for m in range(1, legs)]
    index = [_window_index(o, window, shape) for o in swapped]
    padded = torch.nn.functional.pad(flat, (0, 1) * legs)
    mirrored = padded[tuple(torch.broadcast_tensors(*index))]
    worst = max(worst, float((flat - mirrored).abs().max()))
    return worst / scale


def _file_shape(arrays: Mapping[str, np.ndarray], name: str) -> tuple[int, ...]:
    """The `shape` or `window` array of a file: 1 or 2 positive integers."""
    if name not in arrays:
        raise ValueError(f"it has no {name!r} array")
    value = arrays[name]
    if value.dtype.kind not in "iu" or value.ndim != 1 or not 1 <= value.size <= 2:
        raise ValueError(f"{name} must be 1 or 2 integers, got dtype {value.dtype} and shape "
                         f"{value.shape}")
    return check_shape(tuple(int(n) for n in value))


def _embed(tensor: torch.Tensor, source: tuple[int, ...], target: tuple[int, ...],
           shape: tuple[int, ...]) -> torch.Tensor:
    """Couplings over window `source` written onto the (not shorter) window `target`."""
    result = tensor
    legs = tensor.dim() // len(shape)
    for axis, (w, v, n) in enumerate(zip(source, target, shape, strict=True)):
        if w == v:
            continue
        index = torch.from_numpy(_axis_offsets(w, n) % v).to(tensor.device)
        for leg in range(legs):
            dim = leg * len(shape) + axis
            size = list(result.shape)
            size[dim] = v
            grown = result.new_zeros(size)
            grown.index_copy_(dim, index, result)
            result = grown
    return result
