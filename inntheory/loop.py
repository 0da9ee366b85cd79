"""Closing the loop: sample a learned (truncated) action and compare its cumulants with the data.

A learned action S(x0 + d) = sum_{k <= K} (1/k!) A^(k) d...d is a theory of its own. If it is
the right one, drawing from exp(-S) with the same MCMC that drew the data reproduces the data's
statistics. Two steps:

1. :func:`normalisable`: for large |d| the top order K dominates, so exp(-S) is normalisable
   when K is even and the top form A^(K) u...u is positive on the unit sphere; an odd K or a
   form negative somewhere makes S unbounded below along a ray.
2. :func:`close_loop` samples the action with :func:`inntheory.sample` and compares cumulants 1
   to `order` with :func:`inntheory.compare_cumulants`.

References:
    C. Merger, A. René, K. Fischer, P. Bouss, S. Nestler, D. Dahmen, C. Honerkamp,
    M. Helias, "Learning Interacting Theories from Data", Phys. Rev. X 13, 041033 (2023),
    arXiv:2304.00599.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .actions.base import Action
from .comparison import CumulantComparison, compare_cumulants
from .sampling import sample

__all__ = ["close_loop", "normalisable"]

_DIRECTIONS = 4096
_REFINED = 64
_GRADIENT_STEPS = 200


Form = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _top_order(action: Action) -> int:
    """The highest order with a non-zero tensor (0 when every tensor vanishes)."""
    nonzero = [k for k, tensor in action.items() if bool((tensor != 0).any())]
    return max(nonzero, default=0)


def _top_form(action: Action, k: int) -> Form:
    """u -> (F(u), grad F(u)) with F(u) = A^(k) u...u, from the action's own contraction
    (`Action.fields`: a compressed action needs no dense tensor)."""
    top = action.homogeneous(k)

    def form(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        field = top.fields(u)[k]
        return (u * field).sum(dim=1), k * field

    return form


def _descend(form: Form, norm: float, u: torch.Tensor) -> torch.Tensor:
    """Projected gradient descent of F on the unit sphere from the rows of u: (m, N).

    Each row keeps its own step size: grown by 1.5 after a step that lowers F, halved (and
    the step undone) after one that does not. Returns F at the final rows, (m,).
    """
    value, gradient = form(u)
    step = torch.full_like(value, 1.0 / norm)
    for _ in range(_GRADIENT_STEPS):
        tangent = gradient - (gradient * u).sum(dim=1, keepdim=True) * u
        trial = u - step[:, None] * tangent
        trial = trial / trial.norm(dim=1, keepdim=True)
        trial_value, trial_gradient = form(trial)
        better = trial_value <= value
        u = torch.where(better[:, None], trial, u)
        value = torch.where(better, trial_value, value)
        gradient = torch.where(better[:, None], trial_gradient, gradient)
        step = torch.where(better, 1.5 * step, 0.5 * step)
    return value


def normalisable(
    action: Action, *, directions: int = _DIRECTIONS, seed: int = 0
) -> tuple[bool, float]:
    """Decide whether exp(-S) of a truncated polynomial action is normalisable.

    With K the highest order whose tensor is non-zero, exp(-S) is normalisable when K is even
    and the top form F(u) = A^(K)_{i1..iK} u_i1 ... u_iK (no 1/K!) has min F > 0 on the unit
    sphere. The minimum is searched for: F on `directions` random unit vectors and the axes,
    then projected-gradient descent from the 64 lowest; for K = 2 it is the exact smallest
    eigenvalue (`Action.spectrum`). A found minimum bounds the true one from above, so a
    negative value proves non-normalisability; a minimum of exactly 0 counts as not
    normalisable. No dense tensor is built (`Action.fields`).

    Arguments:
        action: the truncated action (any representation: `PolynomialAction`,
            `LatticeAction`).
        directions: number of random starting directions, >= 1.
        seed: seed of the random directions.

    Returns:
        (normalisable, minimum): the decision and the smallest F found. For an odd K the
        minimum is -max|F| <= 0 (F(-u) = -F(u)); for an action whose tensors all vanish it
        is 0.

    Raises:
        TypeError: `action` is not an action.
        ValueError: directions < 1.

    Example:
        >>> import torch
        >>> from inntheory.actions.dense import PolynomialAction
        >>> quartic = torch.zeros(2, 2, 2, 2)
        >>> quartic[0, 0, 0, 0] = quartic[1, 1, 1, 1] = 1.0
        >>> ok, minimum = normalisable(PolynomialAction({2: torch.eye(2), 4: quartic}))
        >>> ok, round(minimum, 6)
        (True, 0.5)
    """
    if not isinstance(action, Action):
        raise TypeError(f"action must be an action (PolynomialAction, LatticeAction), got "
                        f"{type(action).__name__}")
    if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
        raise ValueError(f"directions must be an int >= 1, got {directions!r}")
    top = _top_order(action)
    if top == 0:
        return False, 0.0
    action = action.to("cpu", torch.float64)
    if top == 1:
        return False, -action.norm(1)
    if top == 2:
        minimum = float(action.spectrum().min())
        return minimum > 0, minimum
    form, norm = _top_form(action, top), action.norm(top)
    generator = torch.Generator().manual_seed(int(seed))
    dim = action.dim
    u = torch.randn(directions, dim, generator=generator, dtype=torch.float64)
    u = torch.cat([torch.eye(dim, dtype=torch.float64), u / u.norm(dim=1, keepdim=True)])
    values, _ = form(u)
    minimum = float(_descend(form, norm, u[values.argsort()[:_REFINED]]).min())
    return (top % 2 == 0 and minimum > 0), minimum


def close_loop(
    learned: Action,
    data: Any,
    *,
    n_samples: int | None = None,
    order: int = 4,
    seed: int = 0,
    progress: bool = False,
    sample_options: Mapping[str, Any] | None = None,
) -> CumulantComparison:
    """Sample a learned truncated action and compare its cumulants with the data.

    The action is drawn from with :func:`inntheory.sample` (its defaults unless
    `sample_options` say otherwise), then :func:`inntheory.compare_cumulants` measures the
    distance of the cumulants in units of standard errors.

    Arguments:
        learned: the action, e.g. from `extract_action` or `score_matching` (a compressed
            `LatticeAction` is sampled and checked without dense tensors).
        data: the data it was learned from, (n, N) torch tensor or numpy array.
        n_samples: MCMC samples to draw; the number of data rows when None.
        order: highest cumulant order compared.
        seed: seed of the sampler.
        progress: show the sampler's progress bar.
        sample_options: further keyword arguments of `sample` (method, n_chains, burn_in, ...).

    Returns:
        The :class:`~inntheory.comparison.CumulantComparison` of data (first) and samples.

    Raises:
        ValueError: the truncated action is not normalisable (the message gives the top order
            and the minimum of its form), data of the wrong shape, n_samples < 1.
        TypeError: `learned` is not an action.
    """
    if not isinstance(learned, Action):
        raise TypeError(f"learned must be an action (PolynomialAction, LatticeAction), got "
                        f"{type(learned).__name__}")
    x = data if torch.is_tensor(data) else torch.as_tensor(data)
    if x.dim() != 2 or x.shape[1] != learned.dim:
        raise ValueError(
            f"data must have shape (n, {learned.dim}) to match the action, got {tuple(x.shape)}"
        )
    if n_samples is None:
        n_samples = x.shape[0]
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    ok, minimum = normalisable(learned)
    if not ok:
        top = _top_order(learned)
        if top == 0:
            reason = "all its coefficients vanish"
        elif top % 2:
            reason = f"its highest order {top} is odd"
        else:
            reason = (f"the order-{top} form A^({top}) u...u has minimum {minimum:.4g} <= 0 on "
                      "the unit sphere")
        raise ValueError(
            f"the truncated action is not normalisable: {reason}, so exp(-S) cannot be sampled"
        )
    options = dict(sample_options or {})
    result = sample(learned, n_samples, seed=seed, progress=progress, **options)
    return compare_cumulants(x, result.x, order=order)
