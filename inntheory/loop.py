"""Closing the loop: if a learned truncated action S is the right theory, drawing from exp(-S)
reproduces the data's statistics (Merger et al., Phys. Rev. X 13, 041033 (2023)).
:func:`normalisable` checks that exp(-S) can be sampled, :func:`close_loop` samples it and
compares cumulants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .actions.base import Action
from .comparison import CumulantComparison, compare_cumulants
from .comparison.actions import check_action
from .sampling import sample

__all__ = ["close_loop", "normalisable"]

_DIRECTIONS = 4096
_REFINED = 64
_GRADIENT_STEPS = 200

Form = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _top_order(action: Action) -> int:
    """The highest order with a non-zero tensor (0 when every tensor vanishes)."""
    return max((k for k, tensor in action.items() if bool((tensor != 0).any())), default=0)


def _top_form(action: Action, k: int) -> Form:
    """u -> (F(u), grad F(u)) with F(u) = A^(k) u...u, by `Action.fields` (no dense tensor)."""
    top = action.homogeneous(k)

    def form(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        field = top.fields(u)[k]
        return (u * field).sum(dim=1), k * field

    return form


def _descend(form: Form, norm: float, u: torch.Tensor) -> torch.Tensor:
    """F after projected gradient descent on the unit sphere from each row of u, (m, N) ->
    (m,); a row's step grows 1.5-fold after a step that lowers F, else is undone and halved."""
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


def normalisable(action: Action, *, directions: int = _DIRECTIONS,
                 seed: int = 0) -> tuple[bool, float]:
    """Decide whether exp(-S) of a truncated polynomial action (any representation) is
    normalisable: with K the highest order whose tensor is non-zero, when K is even and the
    top form F(u) = A^(K)_{i1..iK} u_i1 ... u_iK has min F > 0 on the unit sphere.

    The minimum is searched for (for K = 2 it is the smallest eigenvalue): F on `directions`
    random unit vectors (seeded by `seed`) and the axes, then projected-gradient descent from
    the 64 lowest. A found minimum bounds the true one from above, so a negative value proves
    non-normalisability; exactly 0 counts as not normalisable. No dense tensor is built.
    Returns (normalisable, minimum): the decision and the smallest F found (for an odd K
    -max|F| <= 0; 0 when every tensor vanishes).
    """
    check_action(action, "action")
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
    u = torch.randn(directions, action.dim, generator=generator, dtype=torch.float64)
    u = torch.cat([torch.eye(action.dim, dtype=torch.float64), u / u.norm(dim=1, keepdim=True)])
    values, _ = form(u)
    minimum = float(_descend(form, norm, u[values.argsort()[:_REFINED]]).min())
    return (top % 2 == 0 and minimum > 0), minimum


def close_loop(learned: Action, data: Any, *, n_samples: int | None = None, order: int = 4,
               seed: int = 0, progress: bool = False,
               sample_options: Mapping[str, Any] | None = None) -> CumulantComparison:
    """Sample a learned truncated action with :func:`inntheory.sample` and compare cumulants
    1..`order` with the data: the :func:`inntheory.compare_cumulants` of data (first) and
    samples.

    Arguments:
        learned: the action, e.g. from `extract_action` or `score_matching`.
        data: the data it was learned from, (n, N) torch tensor or numpy array.
        n_samples: MCMC samples to draw; the number of data rows when None.
        seed, progress: of the sampler.
        sample_options: further keyword arguments of `sample` (method, n_chains, burn_in, ...).

    Raises:
        ValueError: the truncated action is not normalisable (the message says why).
    """
    check_action(learned, "learned")
    x = data if torch.is_tensor(data) else torch.as_tensor(data)
    if x.dim() != 2 or x.shape[1] != learned.dim:
        raise ValueError(f"data must have shape (n, {learned.dim}) to match the action, got "
                         f"{tuple(x.shape)}")
    n_samples = x.shape[0] if n_samples is None else n_samples
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
        raise ValueError(f"the truncated action is not normalisable: {reason}, so exp(-S) "
                         "cannot be sampled")
    result = sample(learned, n_samples, seed=seed, progress=progress, **(sample_options or {}))
    return compare_cumulants(x, result.x, order=order)
