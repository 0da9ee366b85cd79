"""Checks of a `PolynomialINN`'s inputs and settings, of a saved file (before building
anything) and of loaded parameters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .activations import ACTIVATIONS, make_activation

__all__ = ["check_config", "layer_activation", "parameter_problem", "state_problem"]

_DTYPES = ("float32", "float64")


def _not_int(value: Any) -> bool:  # a bool is no int here
    return isinstance(value, bool) or not isinstance(value, int | np.integer)


def _as_batch(value: Any, dim: int, name: str, dtype: torch.dtype,
              device: torch.device) -> tuple[torch.Tensor, bool]:
    """`value` as a (n, dim) tensor of `dtype` on `device`, and whether it was 1-D."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not torch.is_tensor(value):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(value)}")
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    if single := value.dim() == 1:
        value = value.unsqueeze(0)
    if value.dim() != 2 or value.shape[1] != dim:
        raise ValueError(
            f"{name} must have shape (n, {dim}) or ({dim},), got {tuple(value.shape)}")
    if bad := int((~torch.isfinite(value)).sum()):
        raise ValueError(f"{name} contains {bad} NaN or inf entries")
    value = value.to(device=device, dtype=dtype)
    if overflowed := int((~torch.isfinite(value)).sum()):
        raise ValueError(
            f"{name} has {overflowed} entries beyond the range of the model's dtype {dtype} "
            f"(|x| > {torch.finfo(dtype).max:.4g}): rescale the data or use a float64 model")
    return value, single


def _check_lattice(lattice: Any, radius: Any, dim: int) -> tuple[Any, int | None]:
    """`lattice` and `kernel_radius` checked (see `PolynomialINN`)."""
    if lattice is None:
        if radius is not None:
            raise ValueError("kernel_radius needs a lattice (lattice=None is a dense model)")
        return None, None
    if not isinstance(lattice, tuple | list) or not lattice:
        raise TypeError(f"lattice must be None or a tuple of ints, got {lattice!r}")
    if len(lattice) not in (1, 2):
        raise ValueError(f"lattice must have 1 or 2 axes ((L,) or (L1, L2)), got "
                         f"{len(lattice)}: {tuple(lattice)}")
    if any(map(_not_int, lattice)):
        raise TypeError(f"lattice sides must be ints, got {lattice!r}")
    if min(lattice) < 1:
        raise ValueError(f"lattice sides must be >= 1, got {tuple(lattice)}")
    shape = tuple(int(side) for side in lattice)
    if math.prod(shape) != dim:
        raise ValueError(f"lattice {shape} has {math.prod(shape)} sites but dim is {dim}; "
                         "they must agree")
    if radius is None:
        return shape, None
    if _not_int(radius):
        raise TypeError(f"kernel_radius must be an int or None, got {type(radius).__name__}")
    if radius < 0:
        raise ValueError(f"kernel_radius must be >= 0, got {radius}")
    if 2 * radius + 1 > min(shape):
        raise ValueError(f"kernel_radius {radius} is too large for the lattice {shape}: it needs "
                         f"2 r + 1 <= L on every axis, i.e. r <= {(min(shape) - 1) // 2}")
    return shape, int(radius)


def check_config(dim: Any, depth: Any, activation: Any, standardize: Any, lattice: Any,
                 radius: Any, odd: Any) -> tuple[int, int, tuple[int, ...] | None, int | None]:
    """The constructor arguments checked; (dim, depth, lattice, kernel_radius) normalised."""
    for name, value in (("dim", dim), ("depth", depth)):
        if _not_int(value):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {activation!r}; known: {known}")
    for name, value in (("standardize", standardize), ("odd", odd)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    if odd and activation == "quadratic":
        raise ValueError("odd=True needs an odd activation: 'quadratic' (y + a y^2) has none; "
                         "use activation='cubic' (odd form y + c y^3)")
    return int(dim), int(depth), *_check_lattice(lattice, radius, int(dim))


def layer_activation(name: str, dim: int, lattice: tuple[int, ...] | None, odd: bool) -> nn.Module:
    """One layer's activation: site-shared on a lattice, the odd form when `odd`."""
    return make_activation(name, dim, shared=lattice is not None, **({"odd": True} if odd else {}))


def state_problem(payload: dict[str, Any]) -> str | None:
    """What makes the saved config, dtype and tensor shapes disagree, or None; nothing is built
    (an activation of N units is the largest thing made). TypeError, ValueError: bad config."""
    dtype = payload.get("dtype")
    if dtype not in _DTYPES:
        return f"dtype {dtype!r}; a PolynomialINN is {' or '.join(_DTYPES)}"
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(torch.is_tensor(t) for t in state.values()):
        return "its state_dict is not a dict of tensors"
    config = payload.get("config")
    if not isinstance(config, dict):
        return "its config is not a dict"
    names = ("dim", "depth", "activation", "standardize", "lattice", "kernel_radius", "odd")
    if unknown := sorted(set(config) - set(names)):
        raise TypeError(f"unknown config entries {unknown}")
    values = {"standardize": True, "lattice": None, "kernel_radius": None, "odd": False, **config}
    dim, depth, lattice, _ = check_config(*(values[name] for name in names))
    expected = {"shift": (dim,), "scale": (dim,), "standardized": ()}
    expected |= {"weight": (depth, dim, dim)} if lattice is None else {"kernel": (depth, *lattice)}
    if not values["odd"]:
        expected["bias"] = (depth, dim if lattice is None else 1)
    unit = layer_activation(values["activation"], dim, lattice, values["odd"])
    for layer in range(depth):
        for name, tensor in unit.state_dict().items():
            expected[f"activations.{layer}.{name}"] = tuple(tensor.shape)
    if sorted(state) != sorted(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        return f"its tensors do not match its config (missing {missing}, unexpected {extra})"
    for name, shape in expected.items():
        tensor = state[name]
        if tuple(tensor.shape) != shape:
            return f"{name} has shape {tuple(tensor.shape)} but the config declares {shape}"
        if tensor.is_floating_point() and str(tensor.dtype) != f"torch.{dtype}":
            return f"{name} is {tensor.dtype}, not the declared {dtype}"
    return None


def parameter_problem(model: Any) -> str | None:
    """What makes a model's parameters unusable (non-finite, bad scale, singular W), or None."""
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and (bad := int((~torch.isfinite(tensor)).sum())):
            return f"{name} has {bad} NaN or inf entries"
    if not bool((model.scale > 0).all()):
        return f"the standardisation scale must be > 0, got {model.scale.tolist()}"
    if model.odd and bool((model.shift != 0).any()):
        return "an odd model's standardisation shift must be 0"
    if model.lattice is not None and any(bool((v != v[0]).any()) for v in (model.shift,
                                                                          model.scale)):
        return "a lattice model's standardisation must be one shift and one scale"
    with torch.no_grad():
        for layer, linear in enumerate(model.linear_maps(), start=1):
            if not math.isfinite(logabsdet := float(linear.logabsdet())):
                return (f"the weight of layer {layer} is singular or overflows "
                        f"(ln|det W| = {logabsdet})")
    return None
