"""Checks of a `PolynomialINN`'s settings, of a saved model file and of loaded parameters.

`_as_batch` validates an input batch, `check_config` the constructor arguments;
`state_problem` compares a saved file's config, dtype and tensor shapes without building
anything (a file that declares a huge model but holds small tensors is refused at once);
`parameter_problem` inspects a built model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .activations import ACTIVATIONS, make_activation

__all__ = ["check_config", "layer_activation", "parameter_problem", "state_problem",
           "state_shapes"]

_DTYPES = ("float32", "float64")
_LATTICE_AXES = (1, 2)


def _as_batch(
    value: Any, dim: int, name: str, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, bool]:
    """Validate an input batch and return it as a (n, dim) tensor plus whether it was 1-D."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not torch.is_tensor(value):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(value)}")
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    single = value.dim() == 1
    if single:
        value = value.unsqueeze(0)
    if value.dim() != 2 or value.shape[1] != dim:
        raise ValueError(
            f"{name} must have shape (n, {dim}) or ({dim},), got {tuple(value.shape)}"
        )
    bad = int((~torch.isfinite(value)).sum())
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or inf entries")
    value = value.to(device=device, dtype=dtype)
    overflowed = int((~torch.isfinite(value)).sum())
    if overflowed:
        raise ValueError(
            f"{name} has {overflowed} entries beyond the range of the model's dtype {dtype} "
            f"(|x| > {torch.finfo(dtype).max:.4g}): rescale the data or use a float64 model"
        )
    return value, single


def _check_lattice(lattice: Any, dim: int) -> tuple[int, ...] | None:
    """Validate the `lattice` option: None or a tuple/list of ints >= 1 with product dim."""
    if lattice is None:
        return None
    if not isinstance(lattice, tuple | list) or not lattice:
        raise TypeError(f"lattice must be None or a tuple of ints, got {lattice!r}")
    if len(lattice) not in _LATTICE_AXES:
        raise ValueError(
            f"lattice must have 1 or 2 axes ((L,) or (L1, L2)), got {len(lattice)}: "
            f"{tuple(lattice)}"
        )
    for side in lattice:
        if isinstance(side, bool) or not isinstance(side, int | np.integer):
            raise TypeError(f"lattice sides must be ints, got {lattice!r}")
        if side < 1:
            raise ValueError(f"lattice sides must be >= 1, got {tuple(lattice)}")
    shape = tuple(int(side) for side in lattice)
    if math.prod(shape) != dim:
        raise ValueError(
            f"lattice {shape} has {math.prod(shape)} sites but dim is {dim}; they must agree"
        )
    return shape


def _check_radius(radius: Any, lattice: tuple[int, ...] | None) -> int | None:
    """Validate `kernel_radius`: None, or an int r >= 0 with 2 r + 1 <= L on every axis."""
    if radius is None:
        return None
    if lattice is None:
        raise ValueError("kernel_radius needs a lattice (lattice=None is a dense model)")
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer):
        raise TypeError(f"kernel_radius must be an int or None, got {type(radius).__name__}")
    if radius < 0:
        raise ValueError(f"kernel_radius must be >= 0, got {radius}")
    if 2 * radius + 1 > min(lattice):
        raise ValueError(
            f"kernel_radius {radius} is too large for the lattice {lattice}: it needs "
            f"2 r + 1 <= L on every axis, i.e. r <= {(min(lattice) - 1) // 2}"
        )
    return int(radius)


def check_config(
    dim: Any, depth: Any, activation: Any, standardize: Any, lattice: Any, radius: Any, odd: Any
) -> tuple[int, int, tuple[int, ...] | None, int | None]:
    """Validate the constructor arguments; (dim, depth, lattice, kernel_radius) normalised."""
    for name, value in (("dim", dim), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; known: {', '.join(sorted(ACTIVATIONS))}"
        )
    for name, value in (("standardize", standardize), ("odd", odd)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    if odd and activation == "quadratic":
        raise ValueError(
            "odd=True needs an odd activation: 'quadratic' (y + a y^2) has none; use "
            "activation='cubic' (odd form y + c y^3)"
        )
    lattice = _check_lattice(lattice, int(dim))
    return int(dim), int(depth), lattice, _check_radius(radius, lattice)


def layer_activation(name: str, dim: int, lattice: tuple[int, ...] | None, odd: bool) -> nn.Module:
    """One layer's activation: site-shared on a lattice, the odd form when `odd`."""
    options: dict[str, bool] = {"shared": lattice is not None}
    if odd:
        options["odd"] = True
    return make_activation(name, dim, **options)


def state_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of every state_dict entry of the model of `config` (validated here), computed
    without building the model (an activation of N units is the largest thing made)."""
    names = ("dim", "depth", "activation", "standardize", "lattice", "kernel_radius", "odd")
    unknown = sorted(set(config) - set(names))
    if unknown:
        raise TypeError(f"unknown config entries {unknown}")
    values = {"standardize": True, "lattice": None, "kernel_radius": None, "odd": False}
    values.update(config)
    dim, depth, lattice, _ = check_config(*(values[name] for name in names))
    odd = values["odd"]
    shapes = {"shift": (dim,), "scale": (dim,), "standardized": ()}
    if lattice is None:
        shapes["weight"] = (depth, dim, dim)
    else:
        shapes["kernel"] = (depth, *lattice)
    if not odd:
        shapes["bias"] = (depth, dim if lattice is None else 1)
    unit = layer_activation(values["activation"], dim, lattice, odd)
    for layer in range(depth):
        for name, tensor in unit.state_dict().items():
            shapes[f"activations.{layer}.{name}"] = tuple(tensor.shape)
    return shapes


def state_problem(payload: dict[str, Any]) -> str | None:
    """What makes the saved config, dtype and tensors disagree, or None (nothing is built)."""
    dtype = payload.get("dtype")
    if dtype not in _DTYPES:
        return f"dtype {dtype!r}; a PolynomialINN is {' or '.join(_DTYPES)}"
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(torch.is_tensor(t) for t in state.values()):
        return "its state_dict is not a dict of tensors"
    config = payload.get("config")
    if not isinstance(config, dict):
        return "its config is not a dict"
    expected = state_shapes(config)
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
        if tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                return f"{name} has {bad} NaN or inf entries"
    if not bool((model.scale > 0).all()):
        return f"the standardisation scale must be > 0, got {model.scale.tolist()}"
    if model.odd and bool((model.shift != 0).any()):
        return "an odd model's standardisation shift must be 0"
    if model.lattice is not None and not (
        bool((model.shift == model.shift[0]).all()) and bool((model.scale == model.scale[0]).all())
    ):
        return "a lattice model's standardisation must be one shift and one scale"
    with torch.no_grad():
        for layer, linear in enumerate(model.linear_maps(), start=1):
            logabsdet = float(linear.logabsdet())
            if not math.isfinite(logabsdet):
                return (
                    f"the weight of layer {layer} is singular or overflows "
                    f"(ln|det W| = {logabsdet})"
                )
    return None
