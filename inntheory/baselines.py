"""Score matching, the direct estimator of a polynomial action the INN is measured against.

:func:`score_matching` fits ``S(x) = sum_j theta_j T_j(x)``, monomials ``T_j`` of ``d = x - x0``
(A. Hyvarinen, JMLR 6, 695 (2005); ``METHOD.md``): ``E[1/2 |grad S|^2 - laplacian S]`` is
quadratic in ``theta``, so ``theta = G^-1 h`` with ``G = E[grad T grad T^T]`` (summed over the N
components) and ``h = E[laplacian T]``, mapped back to the symmetric ``A^(k)`` of
``S(x0 + d) = sum_k (1/k!) A^(k) d...d``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from . import _orbits
from ._checks import check_order
from ._checks import check_samples as _as_samples
from ._memory import available_bytes
from .actions.dense import PolynomialAction
from .actions.lattice import LatticeAction, lattice_window, shift_index

__all__ = ["basis_size", "score_matching"]

Monomial = tuple[int, ...]

# Rows per chunk are chosen so that one chunk of products holds about this many numbers.
_CHUNK_ELEMENTS = 2**22
# Warn when the rows are fewer than this many per coefficient, or when the Jacobi-scaled G is
# worse conditioned than this (computed up to _CONDITION_MAX_SIZE coefficients).
_ROWS_PER_COEFFICIENT = 10
_CONDITION_LIMIT = 1e10
_CONDITION_MAX_SIZE = 4000


def _memory_estimate(dim: int, order: int, basis: str) -> tuple[int, int]:
    """(bytes, number of coefficients) of the dense or local basis: G and two temporaries, the
    moments of the lower monomials, the index tables, one chunk and the dense output."""
    if basis == "dense":
        size = math.comb(dim + order, order) - 1
        lower = math.comb(dim + order - 1, order - 1)
    else:
        size = dim * order + (dim * (dim - 1) // 2 if order >= 2 else 0)
        lower = 1 + dim * max(order - 1, 1)
    output = sum(dim**k * (1 + k) for k in range(1, order + 1))
    needed = 8 * (3 * size**2 + lower**2 + 2 * dim * size + _CHUNK_ELEMENTS + output)
    return needed, size


def basis_size(dim: int, order: int, basis: str, lattice: tuple[int, ...] | None = None,
               radius: int | None = None) -> int:
    """The number of coefficients `score_matching` fits on ``dim = N`` sites with `order`,
    `basis`, `lattice` and `radius` (None as there: 1 for "tied", everything otherwise)."""
    if basis == "tied":
        return order + len(_tied_offsets(tuple(lattice), 1 if radius is None else radius))
    if basis == "translation":
        return len(_orbits.orbits(tuple(lattice), order, radius))
    return _memory_estimate(dim, order, basis)[1]


def _tied_offsets(shape: tuple[int, ...], radius: int) -> list[tuple[int, ...]]:
    """One representative o of each pair {o, -o} of non-zero offsets within `radius` steps."""
    found: dict[tuple[int, ...], tuple[int, ...]] = {}
    for offset in itertools.product(range(-radius, radius + 1), repeat=len(shape)):
        key = tuple(int(v) for v in np.mod(offset, shape))
        mirror = tuple(int(v) for v in np.mod(np.negative(offset), shape))
        if any(key) and key not in found and mirror not in found:
            found[key] = offset
    return list(found.values())


def _basis(dim: int, order: int, basis: str) -> list[Monomial]:
    """Monomials as sorted index tuples (multisets), degrees 1..order."""
    if basis == "dense":
        return [m for k in range(1, order + 1)
                for m in itertools.combinations_with_replacement(range(dim), k)]
    single = [(i,) * k for k in range(1, order + 1) for i in range(dim)]
    pairs = list(itertools.combinations(range(dim), 2)) if order >= 2 else []
    return single + pairs


def _structure(basis: list[Monomial], dim: int
               ) -> tuple[list[Monomial], Tensor, Tensor, Tensor, Tensor]:
    """Index tables of grad T and laplacian T in the lower monomials ``phi`` (`features`,
    closed under dropping the last factor, sorted by degree): ``d_i T_a = mult[i, a] *
    phi_{reduced[i, a]}``, ``laplacian T_a = sum c phi_f`` over the laplace rows ``(a, f), c``."""
    needed: set[Monomial] = {()}
    pairs: list[tuple[int, int, int, Monomial, Monomial | None]] = []
    for a, monomial in enumerate(basis):
        for i in set(monomial):
            count, p = monomial.count(i), monomial.index(i)  # sorted: d_i at p, p + 1, ...
            lower = monomial[:p] + monomial[p + 1 :]  # d_i T_a / count
            second = monomial[:p] + monomial[p + 2 :] if count >= 2 else None
            pairs.append((a, i, count, lower, second))
            needed.update(m[:length] for m in (lower, second) if m is not None
                          for length in range(len(m) + 1))
    features = sorted(needed, key=lambda m: (len(m), m))
    position = {m: f for f, m in enumerate(features)}
    reduced = np.zeros((dim, len(basis)), dtype=np.int64)
    mult = np.zeros((dim, len(basis)))
    laplace = [(a, position[second], count * (count - 1))
               for a, _, count, _, second in pairs if second is not None]
    for a, i, count, lower, _ in pairs:
        reduced[i, a] = position[lower]
        mult[i, a] = count
    table = np.array(laplace, dtype=np.float64).reshape(-1, 3)
    return features, *map(torch.from_numpy, (reduced, mult, table[:, :2].astype(np.int64),
                                              table[:, 2]))


def _feature_moments(d: Tensor, features: list[Monomial]) -> Tensor:
    """E[phi phi^T] over the rows of d: (n, N) for the sorted `features` -> (F, F)."""
    position = {m: f for f, m in enumerate(features)}
    bounds = np.searchsorted([len(m) for m in features], np.arange(len(features[-1]) + 2))
    steps = []  # per degree: its block of features, their parents and last coordinates
    for r in range(1, len(bounds) - 1):
        block = features[bounds[r] : bounds[r + 1]]
        steps.append((slice(int(bounds[r]), int(bounds[r + 1])),
                      torch.tensor([position[m[:-1]] for m in block]),
                      torch.tensor([m[-1] for m in block])))
    chunk = max(1, _CHUNK_ELEMENTS // len(features))
    gram = d.new_zeros(len(features), len(features))
    for rows in torch.split(d, chunk):
        phi = rows.new_empty(rows.shape[0], len(features))
        phi[:, 0] = 1.0
        for block, parent, last in steps:
            phi[:, block] = phi[:, parent] * rows[:, last]
        gram += phi.T @ phi
    return gram / d.shape[0]


def _to_tensors(basis: list[Monomial], theta: Tensor, dim: int, order: int) -> dict[int, Tensor]:
    """Monomial coefficients -> symmetric A^(k): A_alpha = theta_alpha * prod_i m_i(alpha)!
    (d^alpha with multiplicities m_i appears k!/prod m_i! times in (1/k!) A^(k) d...d)."""
    tensors = {k: theta.new_zeros((dim,) * k) for k in range(1, order + 1)}
    for k in range(1, order + 1):
        members = [a for a, m in enumerate(basis) if len(m) == k]
        if not members:
            continue
        index = torch.tensor([basis[a] for a in members], device=theta.device)
        factor = torch.tensor(
            [math.prod(math.factorial(basis[a].count(i)) for i in set(basis[a])) for a in members],
            dtype=theta.dtype, device=theta.device)
        values = theta[members] * factor
        for permutation in itertools.permutations(range(k)):
            tensors[k][tuple(index[:, list(permutation)].T)] = values
    return tensors


def _solve(gram: Tensor, rhs: Tensor, n: int, ridge: float) -> Tensor:
    """``(G + ridge I)^-1 h`` by a Cholesky factorisation of the Jacobi-scaled matrix, with
    the checks of the ``n`` rows described in `score_matching`."""
    size = gram.shape[0]
    gram = gram + ridge * torch.eye(size, dtype=gram.dtype)
    pivot = 0.0
    if bool((gram.diagonal() > 0).all()):
        scale = gram.diagonal().sqrt()
        scaled = gram / scale[:, None] / scale[None, :]
        factor, info = torch.linalg.cholesky_ex(scaled)
        if int(info) == 0:
            pivot = float(factor.diagonal().min()) ** 2
    if pivot <= size * torch.finfo(gram.dtype).eps:
        raise ValueError(
            f"G = E[grad T grad T^T] is singular ({size} monomials, smallest scaled Cholesky "
            f"pivot {pivot:.1e}): the data do not determine every coefficient (e.g. a "
            "coordinate that never varies, or data on a lower-dimensional set); pass ridge > 0")
    if n < _ROWS_PER_COEFFICIENT * size:
        warnings.warn(f"score matching on {n} rows for {size} coefficients (fewer than "
                      f"{_ROWS_PER_COEFFICIENT} per coefficient): the estimate is dominated by "
                      "noise; use more samples, a smaller basis or a lower order",
                      RuntimeWarning, stacklevel=3)
    elif size <= _CONDITION_MAX_SIZE:
        eigenvalues = torch.linalg.eigvalsh(scaled)
        condition = float(eigenvalues[-1] / eigenvalues[0])
        if condition > _CONDITION_LIMIT:
            warnings.warn(f"score matching: G = E[grad T grad T^T] is ill-conditioned (condition "
                          f"number {condition:.2e} after Jacobi scaling, {size} coefficients, "
                          f"{n} rows): some coefficients are barely determined by the data; "
                          "consider ridge > 0", RuntimeWarning, stacklevel=3)
    return torch.cholesky_solve((rhs / scale)[:, None], factor)[:, 0] / scale


def score_matching(data: Any, order: int = 4,
                   basis: Literal["dense", "local", "tied", "translation"] = "dense",
                   point: Any = None, ridge: float = 0.0, *, lattice: Any = None,
                   radius: int | None = None, max_bytes: int | None = None
                   ) -> PolynomialAction | LatticeAction:
    """Estimate a polynomial action from samples by Hyvarinen score matching (module
    docstring), ``theta = (G + ridge I)^-1 h`` in float64; the constant is not identifiable
    and set to 0. Bases (monomials of degree 1..order as index multisets):

    - ``"dense"``: all of them, C(N + order, order) - 1.
    - ``"local"``: d_i^k of every site and d_i d_j of all pairs: A^(1), A^(2) full, A^(k >= 3)
      diagonal only.
    - ``"tied"`` (needs ``lattice``): the form of the lattice phi^3 + phi^4 action, tied over
      translations: sum_i d_i^k and sum_i d_i d_{i+o} for each pair {o, -o} of offsets within
      ``radius`` on every axis; a `LatticeAction` of window min(L, 2 radius + 1).
    - ``"translation"`` (needs ``lattice``): one coefficient per translation orbit of the
      monomials whose sites lie pairwise within ``radius`` in the minimal image; every A^(k)
      within the window.

    Warns (RuntimeWarning) when the rows are fewer than 10 per coefficient or G is
    ill-conditioned.

    Arguments:
        data: samples x, (n, N), torch tensor or numpy array.
        order: highest degree K >= 1 of the monomials.
        basis: ``"dense"``, ``"local"``, ``"tied"`` or ``"translation"`` (above).
        point: expansion point x0, (N,); zero by default (uniform for the lattice bases).
        ridge: Tikhonov term added to G (units of G), >= 0; use it when G is singular.
        lattice: the lattice shape, (L,) or (L1, L2) with prod == N (lattice bases only).
        radius: the reach in lattice steps: >= 1 (None: 1) for ``"tied"``, >= 0 (None: the
            whole lattice) for ``"translation"``.
        max_bytes: memory limit; default half the memory available now.

    Returns:
        A ``PolynomialAction`` with A^(1)..A^(order) (float64) around `point` (a
        `LatticeAction` for the lattice bases), `metadata` recording the method, basis, n,
        number of coefficients (``n_monomials``) and ridge.

    Raises:
        ValueError: on bad input, fewer samples than monomials, or a singular G.
        MemoryError: G and the features would not fit in `max_bytes` (before allocating).
    """
    order = check_order(order)
    if basis not in ("dense", "local", "tied", "translation"):
        raise ValueError(f"unknown basis {basis!r}; use 'dense', 'local', 'tied' or 'translation'")
    ridge = float(ridge)
    if not math.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge}")
    x = _as_samples(data, "data")
    n, dim = x.shape
    x0 = x.new_zeros(dim) if point is None else torch.as_tensor(point).detach().to(torch.float64)
    if x0.shape != (dim,):
        raise ValueError(f"point must have shape ({dim},), got {tuple(x0.shape)}")
    if not torch.isfinite(x0).all():
        raise ValueError("point contains NaN or inf entries")
    limit = int(available_bytes()) // 2 if max_bytes is None else int(max_bytes)
    metadata: dict[str, Any] = {"source": "score matching", "basis": basis, "order": order,
                                "n_samples": n, "n_monomials": 0, "ridge": ridge}
    if basis in ("tied", "translation"):
        shape = _check_lattice(lattice, dim, x0, basis)
        if basis == "translation":
            radius = _check_radius(radius, 0)
            couplings, size, window = _translation(x - x0, order, shape, radius, ridge, limit)
        else:
            radius = 1 if radius is None else _check_radius(radius, 1)
            couplings, size, window = _tied(x - x0, order, shape, radius, ridge, limit)
        metadata.update(n_monomials=size, lattice=list(shape), radius=radius,
                        window=list(window), compressed=True)
        return LatticeAction(couplings, shape, float(x0[0]), metadata=metadata, window=window,
                             check_symmetry=False)
    if lattice is not None:
        raise ValueError(f"lattice is only used by basis='tied' or 'translation', not {basis!r}")
    needed, size = _memory_estimate(dim, order, basis)
    _guard(needed, size, limit, basis, order, dim, n)
    metadata["n_monomials"] = size
    monomials = _basis(dim, order, basis)
    features, reduced, mult, laplace_index, laplace_coefficient = _structure(monomials, dim)
    moments = _feature_moments(x - x0, features)
    gram = x.new_zeros(size, size)
    for i in range(dim):
        gram += mult[i, :, None] * mult[i, None, :] * moments[reduced[i]][:, reduced[i]]
    rhs = x.new_zeros(size).index_add_(0, laplace_index[:, 0],
                                       laplace_coefficient * moments[0, laplace_index[:, 1]])
    tensors = _to_tensors(monomials, _solve(gram, rhs, n, ridge), dim, order)
    return PolynomialAction(tensors, point=x0, metadata=metadata, check_symmetry=False)


def _guard(needed: int, size: int, limit: int, basis: str, order: int, dim: int,
           n: int | None = None) -> None:
    """MemoryError when `needed` bytes exceed `limit`; ValueError when the ``n`` rows (if
    given) are fewer than the ``size`` coefficients."""
    if needed > limit:
        raise MemoryError(
            f"score matching with basis={basis!r}, order {order} on N = {dim} has {size} "
            f"coefficients and needs about {needed / 2**30:.3g} GiB for G and its features, "
            f"more than the limit {limit / 2**30:.3g} GiB; use basis='tied' or a radius "
            "(lattice data), a lower order, or raise max_bytes")
    if n is not None and n < size:
        raise ValueError(
            f"too few samples: n = {n} < {size} monomials (basis={basis!r}, order={order}, "
            f"N={dim}); score matching needs at least as many samples as parameters")


def _check_lattice(lattice: Any, dim: int, x0: Tensor, basis: str) -> tuple[int, ...]:
    """The lattice shape of a lattice basis, checked against the data and the point."""
    if lattice is None:
        raise ValueError(f"basis={basis!r} needs lattice=(L,) or (L1, L2), the shape of the data")
    try:
        shape = tuple(int(n) for n in lattice)
    except (TypeError, ValueError):
        raise ValueError(f"lattice must be a tuple of ints, got {lattice!r}") from None
    if len(shape) not in (1, 2) or any(n < 1 for n in shape) or math.prod(shape) != dim:
        raise ValueError(f"lattice {shape} does not fit the data: N = {dim} sites")
    if bool((x0 != x0[0]).any()):
        raise ValueError(f"basis={basis!r} needs a uniform point (all entries equal)")
    return shape


def _check_radius(radius: Any, smallest: int) -> int | None:
    if radius is not None and (isinstance(radius, bool)
                               or not isinstance(radius, (int, np.integer)) or radius < smallest):
        raise ValueError(f"radius must be None or an integer >= {smallest}, got {radius!r}")
    return None if radius is None else int(radius)


def _translation(d: Tensor, order: int, shape: tuple[int, ...], radius: int | None,
                 ridge: float, limit: int) -> tuple[dict[int, Tensor], int, tuple[int, ...]]:
    """Score matching in the translation basis. Memory is checked twice: before enumerating,
    against a lower bound on the number of orbits, and before allocating G, exactly."""
    n, dim = d.shape
    window = lattice_window(shape, radius)
    output = 8 * sum(math.prod(window) ** (k - 1) for k in range(1, order + 1))
    bound = _orbits.orbit_count_bound(shape, order, radius)
    _guard(8 * 3 * bound**2 + output, bound, limit, "translation", order, dim)
    found = _orbits.orbits(shape, order, radius)
    table = _orbits.tables(found, shape, window)
    size = len(found)
    needed = 8 * (3 * size**2 + 2 * _CHUNK_ELEMENTS + 4 * table.n_features) + output
    _guard(needed, size, limit, "translation", order, dim, n)
    gram, rhs = _orbits.normal_equations(d, size, table, shape, window, _CHUNK_ELEMENTS)
    theta = _solve(gram, rhs, n, ridge)
    return _orbits.couplings(found, theta, shape, window, order), size, window


def _tied(d: Tensor, order: int, shape: tuple[int, ...], radius: int, ridge: float,
          limit: int) -> tuple[dict[int, Tensor], int, tuple[int, ...]]:
    """Translation-tied score matching (see `score_matching`, basis "tied")."""
    n, dim = d.shape
    offsets = _tied_offsets(shape, radius)
    size = order + len(offsets)
    needed = 8 * (3 * size**2 + 2 * _CHUNK_ELEMENTS)  # G, a chunk of features, the data copy
    _guard(needed, size, limit, "tied", order, dim, n)
    window = lattice_window(shape, radius)
    index = torch.from_numpy(shift_index(shape, window))  # (N, M): the site at each offset

    def column(offset: tuple[int, ...], sign: int = 1) -> int:  # flat window index of sign * o
        return int(np.ravel_multi_index(tuple(np.mod(np.multiply(sign, offset), window)),
                                        window))

    pairs = [(index[:, column(o)], index[:, column(o, -1)]) for o in offsets]
    gram = d.new_zeros(size, size)
    rhs = d.new_zeros(size)
    chunk = max(1, _CHUNK_ELEMENTS // (dim * size))
    for rows in torch.split(d, chunk):
        features = rows.new_empty(rows.shape[0], dim, size)  # dT_j / dx_l per row and site l
        powers = [torch.ones_like(rows)]
        for _ in range(1, order):
            powers.append(powers[-1] * rows)
        for k in range(1, order + 1):
            features[:, :, k - 1] = k * powers[k - 1]
            if k >= 2:  # laplacian of sum_i d_i^k: k (k - 1) sum_i d_i^(k-2)
                rhs[k - 1] += k * (k - 1) * powers[k - 2].sum()
        for p, (forward, backward) in enumerate(pairs):
            features[:, :, order + p] = rows[:, forward] + rows[:, backward]
        flat = features.reshape(-1, size)
        gram += flat.T @ flat
    theta = _solve(gram / n, rhs / n, n, ridge)
    couplings: dict[int, Tensor] = {}
    for k in range(1, order + 1):
        couplings[k] = d.new_zeros(window * (k - 1))
        couplings[k].view(-1)[0] = math.factorial(k) * theta[k - 1]
    if order >= 2:
        for p, offset in enumerate(offsets):
            for sign in (1, -1):  # A_(i, i+o) = A_(i, i-o) = theta (2 theta where o = -o)
                couplings[2].view(-1)[column(offset, sign)] += theta[order + p]
    return couplings, size, window
