"""Monomials tied over lattice translations: orbits, their score-matching equations, couplings.

On a periodic lattice a monomial is a multiset of sites (d_0^2 d_1 = {0, 0, 1}); its *orbit*
is the set of its translates, and the translation basis of score matching has one
coefficient per orbit, T_a(x) = sum of the monomials of orbit a. With a radius R every pair
of sites of a monomial lies within R steps per axis (minimal image): the support of a
`LatticeAction` window min(L, 2R + 1). Orbits are enumerated by their *rooted patterns* (the
translates holding the origin, sorted tuples of offsets mod L) inside the window only; the
smallest is the canonical form. For an orbit a, dT_a/dx_l = sum over its rooted patterns p
of c_p prod_{o in p - {0}} d_{l+o} (c_p the count of the origin in p, one copy removed), and
the Laplacian adds c_p (c_p - 1) times the product with two copies removed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .actions.lattice import shift_index

Offset = tuple[int, ...]
Pattern = tuple[Offset, ...]


def _window_offsets(shape: tuple[int, ...], radius: int | None) -> list[Offset]:
    """Lattice offsets (coordinates mod L) within `radius` steps on every axis, origin first."""
    cut = [radius is not None and 2 * radius + 1 < n for n in shape]
    axes = [[o for o in range(n) if not c or min(o, n - o) <= radius]
            for n, c in zip(shape, cut, strict=True)]
    return [tuple(int(v) for v in o) for o in itertools.product(*axes)]


def _near(a: Offset, b: Offset, shape: tuple[int, ...], radius: int | None) -> bool:
    """Whether two sites lie within `radius` steps on every axis (minimal image)."""
    return radius is None or all(min((x - y) % n, (y - x) % n) <= radius
                                 for x, y, n in zip(a, b, shape, strict=True))


def _translate(pattern: Pattern, site: Offset, shape: tuple[int, ...]) -> Pattern:
    """The pattern moved so that `site` lands on the origin, sorted."""
    return tuple(sorted(tuple((o - s) % n for o, s, n in zip(p, site, shape, strict=True))
                        for p in pattern))


def canonical(pattern: Pattern, shape: tuple[int, ...]) -> Pattern:
    """The canonical form of the orbit of a monomial (any multiset of lattice coordinates)."""
    return min(_translate(pattern, site, shape) for site in set(pattern))


def orbits(shape: tuple[int, ...], order: int, radius: int | None) -> list[list[Pattern]]:
    """The orbits of monomials of degree 1..order within `radius`, each as its rooted patterns
    (the canonical one first), sorted by degree, then canonical form."""
    window = _window_offsets(shape, radius)
    origin = window[0]
    found: dict[Pattern, list[Pattern]] = {}

    def grow(chosen: list[Offset], start: int, left: int) -> None:
        pattern = tuple(sorted([origin, *chosen]))
        found.setdefault(canonical(pattern, shape), []).append(pattern)
        if left == 0:
            return
        for index, offset in enumerate(window[start:], start):
            if all(_near(offset, other, shape, radius) for other in chosen):
                grow([*chosen, offset], index, left - 1)

    grow([], 0, order - 1)
    return [[key, *sorted(p for p in found[key] if p != key)]
            for key in sorted(found, key=lambda key: (len(key), key))]


def orbit_count_bound(shape: tuple[int, ...], order: int, radius: int | None) -> int:
    """A lower bound on the number of orbits, without enumerating them: the multisets of
    offsets in the box [0, q)^d (q = L where 2R + 1 >= L or R is None, else R + 1) are all
    within R, and an orbit of degree k holds at most k rooted patterns, so there are at least
    C(Q + k - 2, k - 1) / k orbits of degree k, Q = prod q."""
    q = math.prod(n if radius is None or 2 * radius + 1 >= n else radius + 1 for n in shape)
    return sum(-(-math.comb(q + k - 2, k - 1) // k) for k in range(1, order + 1))


def window_index(offset: Offset, shape: tuple[int, ...], window: tuple[int, ...]) -> Offset:
    """The per-axis index of a lattice offset in a `LatticeAction` window."""
    return tuple((o if w == n or o <= n // 2 else o - n) % w
                 for o, n, w in zip(offset, shape, window, strict=True))


@dataclass
class Tables:
    """Index tables for the gradient and Laplacian of every orbit.

    Features f are the products of d at the offsets of one rooted pattern with one origin
    removed, sorted by degree, the constant first; of degree j >= 1 feature f is feature
    `parent[f]` times d at offset `last[f]` (`blocks`: (slice, parent, last) per degree). It
    adds `coefficient[f]` times itself to dT/dx of orbit `orbit[f]`; Laplacian term t adds
    feature `lap_feature[t]` times `lap_coefficient[t]` to orbit `lap_orbit[t]`.
    """

    n_features: int
    blocks: list[tuple[slice, Tensor, Tensor]]
    orbit: Tensor
    coefficient: Tensor
    lap_feature: Tensor
    lap_orbit: Tensor
    lap_coefficient: Tensor


def tables(found: list[list[Pattern]], shape: tuple[int, ...], window: tuple[int, ...]) -> Tables:
    """The tables of the orbits `found` (from :func:`orbits`); the gradient terms are a
    bijection onto the features (a prefix of a pattern's offsets is itself a feature)."""
    origin = (0,) * len(shape)
    flat = {
        offset: int(np.ravel_multi_index(window_index(offset, shape, window), window))
        for orbit in found for pattern in orbit for offset in pattern
    }
    grad: dict[Pattern, tuple[int, float]] = {}
    lap: list[tuple[Pattern, int, float]] = []
    for a, orbit in enumerate(found):
        for pattern in orbit:  # sorted, so the origins come first
            count = pattern.count(origin)
            grad[pattern[1:]] = (a, float(count))
            if count >= 2:
                lap.append((pattern[2:], a, float(count * (count - 1))))
    features = sorted(grad, key=lambda m: (len(m), m))
    position = {m: f for f, m in enumerate(features)}
    bounds = np.searchsorted([len(m) for m in features], np.arange(len(features[-1]) + 2))
    blocks = []
    for degree in range(1, len(bounds) - 1):
        members = features[bounds[degree] : bounds[degree + 1]]
        blocks.append((
            slice(int(bounds[degree]), int(bounds[degree + 1])),
            torch.tensor([position[m[:-1]] for m in members], dtype=torch.int64),
            torch.tensor([flat[m[-1]] for m in members], dtype=torch.int64),
        ))
    return Tables(
        len(features),
        blocks,
        torch.tensor([grad[m][0] for m in features], dtype=torch.int64),
        torch.tensor([grad[m][1] for m in features], dtype=torch.float64),
        torch.tensor([position[m] for m, _, _ in lap], dtype=torch.int64),
        torch.tensor([a for _, a, _ in lap], dtype=torch.int64),
        torch.tensor([c for _, _, c in lap], dtype=torch.float64),
    )


def normal_equations(d: Tensor, n_orbits: int, table: Tables, shape: tuple[int, ...],
                     window: tuple[int, ...], chunk_elements: int) -> tuple[Tensor, Tensor]:
    """G = E[sum_l dT/dx_l dT/dx_l^T] (P, P) and h = E[laplacian T] (P,) over the rows of d,
    in chunks of rows whose temporaries hold about `chunk_elements` numbers."""
    n, dim = d.shape
    index = torch.from_numpy(shift_index(shape, window).T.copy()).to(d.device)  # (M, N)
    width = table.n_features + index.shape[0] + n_orbits
    gram = d.new_zeros(n_orbits, n_orbits)
    rhs = d.new_zeros(n_orbits)
    for rows in torch.split(d, max(1, chunk_elements // (dim * width))):
        # features first, so that every gather and product runs over contiguous rows
        shifted = rows.T[index].reshape(index.shape[0], -1)  # (M, N r): d at offset t of l
        phi = rows.new_empty(table.n_features, shifted.shape[1])
        phi[0] = 1.0
        for block, parent, last in table.blocks:
            torch.mul(phi.index_select(0, parent), shifted.index_select(0, last), out=phi[block])
        totals = phi.sum(1)
        rhs.index_add_(0, table.lap_orbit, totals[table.lap_feature] * table.lap_coefficient)
        grad = phi.new_zeros(n_orbits, phi.shape[1])
        grad.index_add_(0, table.orbit, phi.mul_(table.coefficient[:, None]))
        gram += grad @ grad.T
    return gram / n, rhs / n


def couplings(found: list[list[Pattern]], theta: Tensor, shape: tuple[int, ...],
              window: tuple[int, ...], order: int) -> dict[int, Tensor]:
    """The `LatticeAction` couplings C^(k) of S = sum_a theta_a T_a: a monomial with
    multiplicities m_i has the entry theta * prod m_i! at every ordering of a rooted
    pattern's offsets with one origin removed."""
    result = {k: theta.new_zeros(window * (k - 1)) for k in range(1, order + 1)}
    for a, orbit in enumerate(found):
        for pattern in orbit:
            value = theta[a] * math.prod(math.factorial(pattern.count(o)) for o in set(pattern))
            target = result[len(pattern)]
            for ordering in set(itertools.permutations(pattern[1:])):  # one origin removed
                index = sum((window_index(o, shape, window) for o in ordering), ())
                target[index] = value
    return result
