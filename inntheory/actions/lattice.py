"""Translation-invariant polynomial actions stored by their couplings relative to one site.

On a periodic lattice of shape (L,) or (L1, L2) (N sites, flattened in C order as
`LatticeTheory` does) a translation-invariant symmetric A^(k) is fixed by

    C^(k)[o2, .., ok] = A^(k)[0, o2, .., ok],   A^(k)[i1, .., ik] = C^(k)[i2 - i1, .., ik - i1].

A `LatticeAction` stores C^(k) over a *window* of offsets: per axis either the full axis
(w = L, index t = offset t mod L) or an odd w = 2R + 1 < L holding the offsets -R..R (index
t = offset mod w); couplings reaching further are zero. The expansion point is uniform
(x0 = point * ones(N)), the constant A^(0) is the value on the big lattice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._checks import check_shape
from .._memory import available_bytes
from .base import (
    SYMMETRY_RTOL,
    Action,
    check_order,
    check_orders,
    common_dtype,
    metadata_from,
    numbered,
    real_tensor,
    scalar,
)
from .dense import PolynomialAction, asymmetry

__all__ = ["LatticeAction", "lattice_window"]

_CHUNK_ELEMENTS = 2**24  # entries of one (rows, N, window...) temporary in fields()


def lattice_window(shape: tuple[int, ...], radius: int | None) -> tuple[int, ...]:
    """The window min(L, 2R + 1) per axis of the lattice `shape` (the lattice for R = None)."""
    return tuple(shape if radius is None else (min(n, 2 * int(radius) + 1) for n in shape))


def _check_window(window: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    dims = check_shape(window)
    if len(dims) != len(shape):
        raise ValueError(f"window {dims} has {len(dims)} axes but the lattice {shape} has "
                         f"{len(shape)}")
    for w, length in zip(dims, shape, strict=True):
        if w > length or (w < length and w % 2 == 0):
            raise ValueError(f"window {dims} does not fit the lattice {shape}: each axis must be "
                             "the full length L or an odd 2R + 1 < L (offsets -R..R)")
    return dims


def _axis_offsets(w: int, length: int) -> np.ndarray:
    """The lattice offset of each window index along one axis."""
    t = np.arange(w)
    return t if w == length else np.where(t <= w // 2, t, t - w)


def _offsets(window: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """The lattice offset of each flattened window index, (M, d)."""
    grids = np.meshgrid(*[_axis_offsets(w, n) for w, n in zip(window, shape, strict=True)],
                        indexing="ij")
    return np.stack(grids, axis=-1).reshape(-1, len(shape))


def shift_index(shape: tuple[int, ...], window: tuple[int, ...]) -> np.ndarray:
    """index[i, t] = the site at offset `t` (flattened window index) from site i, (N, M)."""
    sites = np.stack(np.unravel_index(np.arange(math.prod(shape)), shape), axis=1)
    target = (sites[:, None, :] + _offsets(window, shape)) % np.array(shape)
    return np.ravel_multi_index(tuple(np.moveaxis(target, -1, 0)), shape)


def _window_index(offset: np.ndarray, window: tuple[int, ...],
                  shape: tuple[int, ...]) -> np.ndarray:
    """Flattened window index of integer offsets (..., d), or M where they fall outside."""
    index = np.zeros(offset.shape[:-1], dtype=np.int64)
    inside = np.ones(offset.shape[:-1], dtype=bool)
    for axis, (w, length) in enumerate(zip(window, shape, strict=True)):
        o = offset[..., axis]
        if w < length:
            inside &= np.abs(o) <= w // 2
        index = index * w + o % w
    return np.where(inside, index, math.prod(window))


class LatticeAction(Action):
    """A translation-invariant polynomial action in compressed form (see the module docstring).

    Arguments:
        couplings: {k >= 1: C^(k)} with C^(k) of shape (*window) * (k - 1) (a scalar for
            k = 1); absent orders are zero.
        shape: the lattice, (L,) or (L1, L2).
        point: the uniform expansion point: a number, or an (N,) array with equal entries.
        constant, metadata: see `Action` (A^(0) on the big lattice).
        window: the coupling window; inferred from an order >= 2 tensor when None (and the
            full lattice when only A^(1) is given).
        check_symmetry: raise when a C^(k) is not the compressed form of a symmetric tensor
            (relative tolerance 1e-8).
    """

    format = "inntheory.LatticeAction"

    def __init__(self, couplings: Mapping[int, Any], shape: Any, point: Any = 0.0,
                 constant: float = 0.0, metadata: Mapping[str, Any] | None = None, *,
                 window: Any = None, check_symmetry: bool = True) -> None:
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
                raise ValueError(f"C^({k}) must have shape {expected} (window {self.window} per "
                                 f"leg after the first), got {tuple(tensor.shape)}")
            tensors[k] = tensor.to(device=device, dtype=dtype)
            if check_symmetry and k >= 2:
                asymmetry = _asymmetry(tensors[k], self.window, self.shape)
                if asymmetry > SYMMETRY_RTOL:
                    raise ValueError(f"C^({k}) is not the compressed form of a symmetric tensor "
                                     f"(relative asymmetry {asymmetry:.2e} under swapping two "
                                     "legs or the root with a leg, or couplings whose mirror "
                                     "falls outside the window)")
        self._tensors = tensors
        value = real_tensor(point, "point").to(torch.float64).flatten()
        if value.numel() not in (1, self.dim):
            raise ValueError(f"point must be a number or have shape ({self.dim},), got "
                             f"{value.numel()} entries")
        if value.numel() > 1 and bool((value != value[0]).any()):
            raise ValueError("a LatticeAction needs a uniform expansion point (all entries "
                             "equal); use a PolynomialAction for another point")
        self.point_value = float(value[0])
        self._set_constant(constant, metadata)

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

    @property
    def multiplicity(self) -> int:
        """N: coupling C^(k)[o] stands for the entries A^(k)[i, i + o, ..] of every site i."""
        return self.dim

    def couplings(self, k: int) -> torch.Tensor:
        """C^(k) = A^(k)[0, ...] over relative offsets, shape (*window) * (k - 1)."""
        k = check_order(k, self.order)
        if k in self._tensors:
            return self._tensors[k]
        return torch.zeros(self.window * (k - 1), dtype=self.dtype, device=self.device)

    tensor = couplings

    def onsite(self, k: int) -> float:
        """The on-site coupling A^(k)_{i..i} (the same on every site)."""
        return float(self.couplings(k).flatten()[0])

    def diagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        """The on-site coupling C[0..0] of couplings C, (1,) (it stands for N entries)."""
        return stored.reshape(-1)[:1]

    def offdiagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        """Couplings C with the on-site one set to zero (order 1 has no off-diagonal)."""
        rest = stored.clone()
        rest.view(-1)[0] = 0.0
        return rest

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
                           for k, t in self.items()}, self.constant, self.metadata, window)

    def dense_bytes(self, k: int) -> int:
        """Bytes that `coefficient(k)` needs: the (N,)*k tensor and its int64 index."""
        return 16 * self.dim**k

    def coefficient(self, k: int, max_bytes: int | None = None) -> torch.Tensor:
        """The dense A^(k), (N,)*k, expanded from the couplings; MemoryError (with the
        estimate) beyond `max_bytes`, by default half the memory available."""
        k = check_order(k, self.order)
        needed = self.dense_bytes(k)
        limit = int(available_bytes()) // 2 if max_bytes is None else int(max_bytes)
        if needed > limit:
            raise MemoryError(f"the dense A^({k}) of N = {self.dim} sites has {self.dim}^{k} "
                              f"entries and needs about {needed / 2**30:.3g} GiB, more than the "
                              f"limit {limit / 2**30:.3g} GiB; use couplings({k}) (the compressed "
                              f"form, {self.size ** (k - 1)} numbers) instead")
        if k == 1:
            return self.couplings(1).reshape(1).expand(self.dim).clone()
        # one zero slot per leg (index M) for the offsets outside the window
        padded = torch.nn.functional.pad(
            self.couplings(k).reshape((self.size,) * (k - 1)), (0, 1) * (k - 1)
        ).reshape(-1)
        # relative[i, j]: the window index of the offset j - i, M outside the window
        relative = np.full((self.dim, self.dim), self.size, dtype=np.int64)
        np.put_along_axis(relative, shift_index(self.shape, self.window),
                          np.arange(self.size)[None], axis=1)
        relative = torch.from_numpy(relative).to(self.device)
        index = relative.new_zeros((self.dim,) * k)
        for leg in range(1, k):
            view = [self.dim] + [1] * (k - 1)
            view[leg] = self.dim
            index = index * (self.size + 1) + relative.reshape(view)
        return padded[index]

    def to_dense(self, max_bytes: int | None = None) -> PolynomialAction:
        """The same action as a `PolynomialAction` (dense tensors; MemoryError if too big)."""
        return PolynomialAction({k: self.coefficient(k, max_bytes) for k in self.orders},
                                self.point, self.constant,
                                {**self.metadata, "lattice": list(self.shape)},
                                check_symmetry=False)

    def _with(self, tensors: dict[int, torch.Tensor], constant: float = 0.0,
              metadata: Mapping[str, Any] | None = None,
              window: tuple[int, ...] | None = None) -> LatticeAction:
        return LatticeAction(tensors, self.shape, self.point_value, constant, metadata,
                             window=window or self.window, check_symmetry=False)

    def fields(self, d: torch.Tensor) -> dict[int, torch.Tensor]:
        """G_k(j) = sum_o C^(k)[o] d_{j+o2} .. d_{j+ok} for the stored orders: (n, N) each."""
        index = torch.from_numpy(shift_index(self.shape, self.window)).to(self.device)
        rows = max(1, _CHUNK_ELEMENTS // (self.dim * self.size ** max(self.order - 2, 1)))
        out: dict[int, list[torch.Tensor]] = {k: [] for k in self._tensors}
        for chunk in torch.split(d, rows):
            shifted = chunk[:, index]  # (n, N, M): d at offset t from site j
            for k, tensor in self._tensors.items():
                if k == 1:
                    out[k].append(tensor.expand(chunk.shape))
                    continue
                value = shifted @ tensor.reshape(self.size, -1)  # (n, N, M^(k-2))
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

    def arrays(self) -> dict[str, Any]:
        """`C1`, `C2`, ... (float64 couplings), `shape`, `window`, `point` (the uniform
        value) and `constant`."""
        return {
            **self._numbered("C"),
            "shape": np.array(self.shape, dtype=np.int64),
            "window": np.array(self.window, dtype=np.int64),
            "point": np.float64(self.point_value),
            "constant": np.float64(self.constant),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LatticeAction:
        """The action of a `LatticeAction` file (see `arrays`; also a lattice too large)."""
        metadata = metadata_from(arrays)
        couplings = numbered(arrays, "C", "coupling")
        shape, window = (_file_shape(arrays, name) for name in ("shape", "window"))
        needed = 8 * math.prod(shape)
        if needed > available_bytes() // 2:
            raise ValueError(f"it declares a lattice of {math.prod(shape)} sites; one "
                             f"configuration needs {needed / 2**30:.3g} GiB, more than half the "
                             "available memory")
        return cls(couplings, shape, scalar(arrays, "point"), scalar(arrays, "constant"),
                   metadata, window=window)

    def _describe(self) -> str:
        return f"shape={self.shape}, window={self.window}, orders={self.orders}"


def _asymmetry(tensor: torch.Tensor, window: tuple[int, ...], shape: tuple[int, ...]) -> float:
    """Largest violation of the symmetry of the dense tensor, relative to max |C|: C^(k) must
    be symmetric among its legs and C[o2, o3, ..] = C[-o2, o3 - o2, ..] (root and first leg
    swapped; zero where the new offsets leave the window)."""
    size = math.prod(window)
    legs = tensor.dim() // len(shape)
    flat = tensor.reshape((size,) * legs)
    scale = float(flat.abs().max()) if flat.numel() else 0.0
    if scale == 0.0:
        return 0.0
    offsets = _offsets(window, shape)
    views = [offsets.reshape([size if m == leg else 1 for m in range(legs)] + [len(shape)])
             for leg in range(legs)]
    swapped = [-views[0]] + [view - views[0] for view in views[1:]]
    index = np.broadcast_arrays(*(_window_index(o, window, shape) for o in swapped))
    padded = torch.nn.functional.pad(flat, (0, 1) * legs)
    mirrored = padded[tuple(torch.from_numpy(i.copy()).to(tensor.device) for i in index)]
    return max(asymmetry(flat), float((flat - mirrored).abs().max()) / scale)


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
    legs = tensor.dim() // len(shape)
    for axis, (w, v, n) in enumerate(zip(source, target, shape, strict=True)):
        if w == v:
            continue
        index = torch.from_numpy(_axis_offsets(w, n) % v).to(tensor.device)
        for leg in range(legs):
            dim = leg * len(shape) + axis
            grown = tensor.new_zeros(tensor.shape[:dim] + (v,) + tensor.shape[dim + 1:])
            tensor = grown.index_copy_(dim, index, tensor)
    return tensor
