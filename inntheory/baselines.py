"""Direct estimators of a polynomial action: the baselines the INN is measured against.

:func:`score_matching` fits S(x) = sum_j theta_j T_j(x) with monomials T_j of the deviation
d = x - x0 by Hyvarinen score matching. For p(x) ~ exp(-S(x)) the score-matching objective
E[1/2 |grad S|^2 - laplacian S] is quadratic in theta, so the estimate is one linear solve,

    theta = G^-1 h,   G = E[grad T grad T^T] (summed over the N components),
    h = E[laplacian T]

(``METHOD.md``). The monomial coefficients are mapped back to the symmetric tensors A^(k) of
the convention S(x0 + d) = sum_k (1/k!) A^(k) d...d, so the result is a
:class:`~inntheory.action.PolynomialAction` that :func:`inntheory.compare` accepts like any
other.

References:
    A. Hyvarinen, "Estimation of Non-Normalized Statistical Models by Score Matching",
    Journal of Machine Learning Research 6, 695-709 (2005).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .action import PolynomialAction

__all__ = ["score_matching"]

Monomial = tuple[int, ...]

# Rows per chunk are chosen so that one chunk of products holds about this many numbers.
_CHUNK_ELEMENTS = 2**22


def _basis(dim: int, order: int, basis: str) -> list[Monomial]:
    """Monomials as sorted index tuples (multisets), degrees 1..order."""
    if basis == "dense":
        return [
            m
            for k in range(1, order + 1)
            for m in itertools.combinations_with_replacement(range(dim), k)
        ]
    single = [(i,) * k for k in range(1, order + 1) for i in range(dim)]
    pairs = list(itertools.combinations(range(dim), 2)) if order >= 2 else []
    return single + pairs


def _remove(monomial: Monomial, i: int) -> Monomial:
    """The monomial with one factor d_i taken out (its i-th derivative up to the factor)."""
    position = monomial.index(i)
    return monomial[:position] + monomial[position + 1 :]


def _structure(
    basis: list[Monomial], dim: int
) -> tuple[list[Monomial], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Index tables that express grad T and laplacian T through lower monomials.

    d_i T_a = mult[i, a] * phi_{reduced[i, a]} and laplacian T_a = sum over the rows
    (a, f, c) of the `laplace` table of c * phi_f, with phi the returned `features`: the
    monomials of degree < order that occur, closed under dropping the last factor and sorted
    by degree (the constant first), so each is a lower one times one coordinate.
    """
    needed: set[Monomial] = {()}
    pairs: list[tuple[int, int, int, Monomial, Monomial | None]] = []
    for a, monomial in enumerate(basis):
        for i in set(monomial):
            count = monomial.count(i)
            lower = _remove(monomial, i)
            second = _remove(lower, i) if count >= 2 else None
            pairs.append((a, i, count, lower, second))
            needed.update(
                m[:length]
                for m in (lower, second)
                if m is not None
                for length in range(len(m) + 1)
            )
    features = sorted(needed, key=lambda m: (len(m), m))
    position = {m: f for f, m in enumerate(features)}
    reduced = np.zeros((dim, len(basis)), dtype=np.int64)
    mult = np.zeros((dim, len(basis)))
    laplace = [
        (a, position[second], count * (count - 1))
        for a, _, count, _, second in pairs
        if second is not None
    ]
    for a, i, count, lower, _ in pairs:
        reduced[i, a] = position[lower]
        mult[i, a] = count
    table = np.array(laplace, dtype=np.float64).reshape(-1, 3)
    return features, reduced, mult, table[:, :2].astype(np.int64), table[:, 2]


def _feature_moments(d: Tensor, features: list[Monomial]) -> Tensor:
    """E[phi phi^T] over the rows of d: (n, N) for the sorted `features` -> (F, F)."""
    position = {m: f for f, m in enumerate(features)}
    bounds = np.searchsorted([len(m) for m in features], np.arange(len(features[-1]) + 2))
    steps = [
        (
            slice(int(bounds[r]), int(bounds[r + 1])),
            torch.tensor([position[m[:-1]] for m in features[bounds[r] : bounds[r + 1]]]),
            torch.tensor([m[-1] for m in features[bounds[r] : bounds[r + 1]]]),
        )
        for r in range(1, len(bounds) - 1)
    ]
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
    """Monomial coefficients -> symmetric A^(k): A_alpha = theta_alpha * prod_i m_i(alpha)!.

    A monomial d^alpha with multiplicities m_i appears k!/prod m_i! times in
    (1/k!) A^(k) d...d, so theta_alpha = A_alpha / prod m_i!.
    """
    tensors = {k: theta.new_zeros((dim,) * k) for k in range(1, order + 1)}
    for k in range(1, order + 1):
        members = [a for a, m in enumerate(basis) if len(m) == k]
        if not members:
            continue
        index = torch.tensor([basis[a] for a in members], device=theta.device)
        factor = torch.tensor(
            [math.prod(math.factorial(basis[a].count(i)) for i in set(basis[a])) for a in members],
            dtype=theta.dtype,
            device=theta.device,
        )
        values = theta[members] * factor
        for permutation in itertools.permutations(range(k)):
            tensors[k][tuple(index[:, list(permutation)].T)] = values
    return tensors


def _solve(gram: Tensor, rhs: Tensor) -> Tensor:
    """G^-1 h by a Cholesky factorisation of the Jacobi-scaled G; raises if G is singular."""
    size = gram.shape[0]
    diagonal = gram.diagonal()
    pivot = 0.0
    if bool((diagonal > 0).all()):
        scale = diagonal.sqrt()
        factor, info = torch.linalg.cholesky_ex(gram / scale[:, None] / scale[None, :])
        if int(info) == 0:
            pivot = float(factor.diagonal().min()) ** 2
    if pivot <= size * torch.finfo(gram.dtype).eps:
        raise ValueError(
            f"G = E[grad T grad T^T] is singular ({size} monomials, smallest scaled Cholesky "
            f"pivot {pivot:.1e}): the data do not determine every coefficient (e.g. a "
            "coordinate that never varies, or data on a lower-dimensional set); pass ridge > 0"
        )
    return torch.cholesky_solve((rhs / scale)[:, None], factor)[:, 0] / scale


def _as_data(data: Any) -> Tensor:
    if isinstance(data, np.ndarray) or torch.is_tensor(data):
        tensor = torch.as_tensor(data)
    else:
        raise TypeError(f"data must be a torch tensor or numpy array, got {type(data).__name__}")
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"data must hold real numbers, got dtype {tensor.dtype}")
    if tensor.dim() != 2:
        raise ValueError(f"data must have shape (n, N), got {tuple(tensor.shape)}")
    tensor = tensor.detach().to(torch.float64)
    if not torch.isfinite(tensor).all():
        raise ValueError("data contains NaN or inf entries")
    return tensor


def score_matching(
    data: Any,
    order: int = 4,
    basis: Literal["dense", "local"] = "dense",
    point: Any = None,
    ridge: float = 0.0,
) -> PolynomialAction:
    """Estimate a polynomial action from samples by Hyvarinen score matching.

    The model is S(x) = sum_j theta_j T_j(x) with monomials T_j(x) = prod d_i^{m_i} of the
    deviation d = x - x0, of total degree 1..order; the constant is not identifiable and is
    set to 0. theta = (G + ridge I)^-1 h with G = E[grad T . grad T^T] and
    h = E[laplacian T], all expectations over the data (float64). G is assembled from the
    moment matrix E[phi phi^T] of the monomials phi of degree < order (d_i T_j is one of
    them times a multiplicity), so the cost is one (n, F) x (F, n) product with
    F = C(N + order - 1, order - 1) for the dense basis, not an (n, M, N) feature tensor.

    Bases (monomials as index multisets):

    - ``"dense"``: every monomial of degree 1..order, C(N + order, order) - 1 of them
      (494 for N = 8, order 4). Recovers all entries of every A^(k).
    - ``"local"``: the single-site powers d_i^k, k = 1..order, for every site, plus the
      pairwise products d_i d_j for *all* pairs i < j: N * order + N (N - 1) / 2 monomials.
      A^(1) and A^(2) are full; A^(k) for k >= 3 is estimated on the diagonal only and zero
      elsewhere. This is the structure of the lattice phi^3 + phi^4 action (local
      self-interactions, pairwise couplings) without assuming which pairs are neighbours.

    Arguments:
        data: samples x, (n, N), torch tensor or numpy array.
        order: highest degree K >= 1 of the monomials.
        basis: ``"dense"`` or ``"local"`` (above).
        point: expansion point x0, (N,); zero by default.
        ridge: Tikhonov term added to G (units of G), >= 0; use it when G is singular.

    Returns:
        A :class:`~inntheory.action.PolynomialAction` with A^(1)..A^(order) (float64) around
        `point`, `metadata` recording the method, basis, n, number of monomials and ridge.

    Raises:
        ValueError: on order < 1, an unknown basis, data that is not (n, N) or holds NaN/inf,
            a point of the wrong shape, ridge < 0, fewer samples than monomials, or a
            singular G.
        TypeError: if data is not an array of real numbers.

    Example:
        >>> generator = torch.Generator().manual_seed(0)
        >>> x = torch.randn(4000, 2, dtype=torch.float64, generator=generator)
        >>> S = score_matching(x, order=2)
        >>> bool((S.coefficient(2) - torch.eye(2)).abs().max() < 0.1)
        True
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    order = int(order)
    if basis not in ("dense", "local"):
        raise ValueError(f"unknown basis {basis!r}; use 'dense' or 'local'")
    ridge = float(ridge)
    if not math.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge}")
    x = _as_data(data)
    n, dim = x.shape
    if point is None:
        x0 = x.new_zeros(dim)
    else:
        x0 = torch.as_tensor(point).detach().to(torch.float64)
        if x0.shape != (dim,):
            raise ValueError(f"point must have shape ({dim},), got {tuple(x0.shape)}")
        if not torch.isfinite(x0).all():
            raise ValueError("point contains NaN or inf entries")
    monomials = _basis(dim, order, basis)
    size = len(monomials)
    if n < size:
        raise ValueError(
            f"too few samples: n = {n} < {size} monomials (basis={basis!r}, order={order}, "
            f"N={dim}); score matching needs at least as many samples as parameters"
        )
    features, reduced, mult, laplace_index, laplace_coefficient = _structure(monomials, dim)
    moments = _feature_moments(x - x0, features)
    mult_t = torch.from_numpy(mult)
    reduced_t = torch.from_numpy(reduced)
    gram = x.new_zeros(size, size)
    for i in range(dim):
        rows = reduced_t[i]
        gram += mult_t[i, :, None] * mult_t[i, None, :] * moments[rows][:, rows]
    rhs = x.new_zeros(size)
    if len(laplace_coefficient):
        lap_index = torch.from_numpy(laplace_index)
        rhs.index_add_(
            0, lap_index[:, 0], torch.from_numpy(laplace_coefficient) * moments[0, lap_index[:, 1]]
        )
    gram = gram + ridge * torch.eye(size, dtype=gram.dtype)
    theta = _solve(gram, rhs)
    tensors = _to_tensors(monomials, theta, dim, order)
    metadata = {
        "source": "score matching",
        "basis": basis,
        "order": order,
        "n_samples": n,
        "n_monomials": size,
        "ridge": ridge,
    }
    return PolynomialAction(tensors, point=x0, metadata=metadata, check_symmetry=False)
