"""Exact action extraction from a `PolynomialINN`: the checked entry points of the pull-back.

Example:
    >>> import torch
    >>> from inntheory import PolynomialINN
    >>> model = PolynomialINN(3, depth=2).double()
    >>> S = extract_action(model, order=4)
    >>> S.coefficient(4).shape
    torch.Size([3, 3, 3, 3])
    >>> abs(S.constant - float(model.action(torch.zeros(3)))) < 1e-12
    True

References:
    C. Merger, A. René, K. Fischer, P. Bouss, S. Nestler, D. Dahmen, C. Honerkamp, M. Helias,
    "Learning Interacting Theories from Data", Phys. Rev. X 13, 041033 (2023),
    arXiv:2304.00599.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._checks import check_order
from .._memory import available_bytes
from ..actions.dense import PolynomialAction
from ..actions.lattice import LatticeAction
from ..model.inn import PolynomialINN
from .dense import DenseBackend, dense_bytes
from .lattice import extract_lattice_action
from .pullback import pull_back

__all__ = ["action_history", "extract_action"]


def extract_action(model: PolynomialINN, order: int = 4, point: Any = None, *,
                   max_bytes: int | None = None,
                   compressed: bool = True) -> PolynomialAction | LatticeAction:
    """The Taylor coefficients A^(1..K) (and the constant) of `model.action` at a point.

    For a lattice-equivariant model (`model.lattice` not None) at a uniform point the result
    is the compressed `LatticeAction` (couplings relative to site 0 within
    `model.coupling_range`), built without any N^k tensor; otherwise (and with
    `compressed=False`) the dense `PolynomialAction`.

    Arguments:
        model: a `PolynomialINN` (any dtype and device; the pull-back runs in float64).
        order: K >= 1, the highest order extracted.
        point: the expansion point x0 in data units, (N,); default 0. It must lie inside the
            model's domain (every pre-activation with phi'(y*) > 0).
        max_bytes: memory limit for the coefficient tensors; default half the memory
            available now (host RAM, or free GPU memory for a CUDA model).
        compressed: False forces the dense pull-back for a lattice model.

    Returns:
        The float64 action with orders 1..K at `point`, `constant` equal to
        `model.action(point)`, and metadata {source, order, point, activation, depth,
        standardized} (plus lattice, coupling_range, window when compressed).

    Raises:
        ValueError: a bad order or point, or a point outside the domain (the message names
            the layer and unit). MemoryError: beyond `max_bytes` (raised before allocating).
    """
    if compressed and getattr(model, "lattice", None) is not None:
        order, x0, limit = _checked(model, order, point, max_bytes)
        if bool((x0 == x0[0]).all()):
            return extract_lattice_action(model, model.stages(), order, x0, limit)
    return _extract(model, order, point, max_bytes, history=False)[-1]


def action_history(model: PolynomialINN, order: int = 4, point: Any = None, *,
                   max_bytes: int | None = None) -> list[PolynomialAction]:
    """The dense action of every representation (arguments as in `extract_action`; the memory
    estimate counts every entry kept): the latent action, the representations after layer
    L-1, ..., 1, the standardised coordinates (when set) and the data. Each is a float64
    `PolynomialAction` around the image u* of `point`, holds every order 1..K (zeros
    included) and carries metadata["label"] ("latent", "after layer 3", ..., "standardized",
    "data") and metadata["stage"] (the number of stages between it and the data)."""
    return _extract(model, order, point, max_bytes, history=True)


def _extract(
    model: Any, order: Any, point: Any, max_bytes: int | None, *, history: bool
) -> list[PolynomialAction]:
    order, x0, max_bytes = _checked(model, order, point, max_bytes)
    boundaries = _boundaries(model)
    needed = dense_bytes(model.dim, order, len(boundaries) if history else 1)
    if needed > max_bytes:
        raise MemoryError(f"extracting order {order} for N = {model.dim} needs about "
                          f"{needed / 2**30:.3g} GiB (tensors of {model.dim}^{order} float64 "
                          f"entries), more than the limit {max_bytes / 2**30:.3g} GiB; lower the "
                          "order or raise max_bytes")
    keep = set(boundaries) if history else {0}
    backend = DenseBackend(model.dim, x0.device)
    expansions = pull_back(model.stages(), x0, order, backend, keep)
    base = {
        "source": "inntheory.action_history" if history else "inntheory.extract_action",
        "order": order, "point": x0.cpu().tolist(), "activation": model.activation_name,
        "depth": model.depth, "standardized": model.is_standardized,
    }
    result = []
    for stage, label in sorted(boundaries.items(), reverse=True) if history else [(0, "data")]:
        expansion = expansions[stage]
        coefficients = {
            k: expansion.coefficients.get(k, x0.new_zeros((model.dim,) * k))
            for k in range(1, order + 1)
        }
        result.append(PolynomialAction(
            coefficients, expansion.point, expansion.constant,
            {**base, "label": label, "stage": stage}, check_symmetry=False,
        ))
    return result


def _checked(model: Any, order: Any, point: Any, max_bytes: int | None
             ) -> tuple[int, torch.Tensor, int]:
    """The checked order, point x0, (N,) float64 on the model's device (the CPU for MPS,
    which has no float64), and the memory limit (half the memory available by default)."""
    order = check_order(order)
    if not isinstance(model, PolynomialINN):
        raise TypeError(f"model must be a PolynomialINN, got {type(model).__name__}")
    device = next(model.parameters()).device
    device = torch.device("cpu") if device.type == "mps" else device
    limit = available_bytes(device) // 2 if max_bytes is None else max_bytes
    dim = model.dim
    if point is None:
        return order, torch.zeros(dim, dtype=torch.float64, device=device), limit
    try:
        x0 = point.detach() if torch.is_tensor(point) else torch.as_tensor(
            np.asarray(point, dtype=np.float64)
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"point must be an array of real numbers of shape ({dim},)") from error
    if x0.shape != (dim,):
        raise ValueError(f"point must have shape ({dim},), got {tuple(x0.shape)}")
    if x0.is_complex() or not torch.isfinite(x0).all():
        raise ValueError("point must be real and contain no NaN or inf entries")
    return order, x0.to(device=device, dtype=torch.float64), limit


def _boundaries(model: PolynomialINN) -> dict[int, str]:
    """Labels of the representations, keyed by the number of stages from the data."""
    offset = 1 if model.is_standardized else 0
    labels = {0: "data"}
    if offset:
        labels[1] = "standardized"
    for layer in range(1, model.depth):
        labels[offset + 2 * layer] = f"after layer {layer}"
    labels[offset + 2 * model.depth] = "latent"
    return labels
