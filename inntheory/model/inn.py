"""The polynomial invertible network z = f(x), z ~ N(0, I) (METHOD.md, "The polynomial INN").

Its action S(x) = 1/2 |f(x)|^2 + N/2 ln 2 pi - ln|det df/dx| is exact, and +inf where a
pre-activation leaves the activation's domain (phi' <= 0, the quadratic activation only).
It is a target for `inntheory.sample` (`.dim`, `action(x)`, `grad(x)`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._io import atomic_write, load_error
from .._memory import available_bytes
from .linear import DenseLinear, LatticeConvolution, LinearMap, Scaling, kernel_mask
from .stages import ActivationStage, AffineStage, Stage
from .validation import _as_batch, check_config, layer_activation, parameter_problem, state_problem

__all__ = ["PolynomialINN"]

_FORMAT = "inntheory.PolynomialINN"
_FORMAT_VERSION = 2  # 2: config has lattice, kernel_radius, odd; version 1 files still load
_READABLE_VERSIONS = (1, 2)
_INIT_NOISE = 1e-2
_MAX_SAMPLE_ROUNDS = 100
_SAMPLE_COPIES = 8  # (n, N) tensors alive at once while `sample` inverts a round of draws


def _evaluate(coefficients: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """phi(y) and phi'(y) in one Horner pass: coefficients (N, P + 1), y (n, N) -> 2 x (n, N)."""
    value = coefficients[:, -1].expand_as(y)
    slope = torch.zeros_like(y)
    for p in range(coefficients.shape[1] - 2, -1, -1):
        slope = slope * y + value
        value = value * y + coefficients[:, p]
    return value, slope


class PolynomialINN(nn.Module):
    """Polynomial invertible network with an exact action.

    Layer l is y = W_l u + b_l, then the elementwise activation phi_l, after a fixed
    standardisation u = (x - shift) / scale (buffers set by `standardize_to`). Three kinds:

    - dense (``lattice=None``): `weight` (depth, N, N), at identity + small noise; `bias`
      (depth, N); activation, shift and scale per site.
    - lattice-equivariant (``lattice=(L,)`` or ``(L1, L2)``): W_l is the periodic convolution
      with `kernel` (depth, *lattice) * `kernel_support` (1.0 within `kernel_radius` steps on
      every axis, else 0); one bias (depth, 1), activation, shift and scale for all sites, so
      f(T x) = T f(x) for every translation T.
    - odd (``odd=True``): no biases, activation y + c y^3, shift 0: f(-x) = -f(x).

    Arguments:
        dim: N, the number of degrees of freedom (>= 1).
        depth: the number of layers (>= 1).
        activation: a name in `inntheory.ACTIVATIONS` ("cubic": monotone on the whole line;
            "quadratic": the paper's y + a y^2, domain 1 + 2 a y > 0).
        standardize: whether `inntheory.train` fixes the standardisation to the training
            data (when it is not set yet).
        lattice: None (dense) or the lattice shape (ints >= 1, product N, sites in C order).
        kernel_radius: None (full kernel) or, on a lattice, an int r >= 0 with 2 r + 1 <= L
            on every axis.
        odd: a Z2-odd network (needs the cubic activation).

    Attributes:
        training_info: JSON-able metadata written by `inntheory.train`, kept by `save`.
        last_sample_invalid: the fraction of latent draws without a pre-image in the latest
            `sample` call.

    Example:
        >>> z, logdet = PolynomialINN(2, depth=2)(torch.zeros(5, 2))
        >>> z.shape, logdet.shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, dim: int, depth: int, activation: str = "cubic", standardize: bool = True,
                 *, lattice: tuple[int, ...] | list[int] | None = None,
                 kernel_radius: int | None = None, odd: bool = False) -> None:
        super().__init__()
        self.dim, self.depth, self.lattice, self.kernel_radius = check_config(
            dim, depth, activation, standardize, lattice, kernel_radius, odd
        )
        self.activation_name, self.standardize, self.odd = activation, standardize, odd
        if self.lattice is None:
            noise = torch.randn(self.depth, self.dim, self.dim) * (_INIT_NOISE / math.sqrt(dim))
            self.weight = nn.Parameter(torch.eye(self.dim) + noise)
            bias_shape = (self.depth, self.dim)
        else:
            mask = kernel_mask(self.lattice, self.kernel_radius)
            self.register_buffer("kernel_support", mask.to(torch.get_default_dtype()),
                                 persistent=False)
            delta = kernel_mask(self.lattice, 0)  # 1 at offset 0
            noise = torch.randn(self.depth, *self.lattice) * (_INIT_NOISE / math.sqrt(mask.sum()))
            self.kernel = nn.Parameter((delta + noise) * self.kernel_support)
            bias_shape = (self.depth, 1)
        if odd:
            self.register_buffer("bias", torch.zeros(bias_shape), persistent=False)
        else:
            self.bias = nn.Parameter(torch.zeros(bias_shape))
        self.activations = nn.ModuleList(
            layer_activation(activation, self.dim, self.lattice, odd) for _ in range(self.depth)
        )
        self.register_buffer("shift", torch.zeros(self.dim))
        self.register_buffer("scale", torch.ones(self.dim))
        self.register_buffer("standardized", torch.tensor(False))
        self.training_info: dict[str, Any] = {}
        self.last_sample_invalid = 0.0

    def extra_repr(self) -> str:
        text = (f"dim={self.dim}, depth={self.depth}, activation={self.activation_name!r}, "
                f"standardize={self.standardize}")
        if self.lattice is not None:
            text += f", lattice={self.lattice}, kernel_radius={self.kernel_radius}"
        return text + (", odd=True" if self.odd else "")

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-able (`lattice` as a list or None)."""
        lattice = None if self.lattice is None else list(self.lattice)
        return dict(dim=self.dim, depth=self.depth, activation=self.activation_name,
                    standardize=self.standardize, lattice=lattice,
                    kernel_radius=self.kernel_radius, odd=self.odd)

    @property
    def dtype(self) -> torch.dtype:
        return self.shift.dtype

    @property
    def device(self) -> torch.device:
        return self.shift.device

    @property
    def coupling_range(self) -> int | None:
        """2 * depth * kernel_radius, the largest offset (per axis, minimal image) of a
        non-zero coupling of the extracted action; None without a kernel radius."""
        return None if self.kernel_radius is None else 2 * self.depth * self.kernel_radius

    def linear_maps(self) -> list[LinearMap]:
        """The layers' W_l, differentiable in the parameters (see `stages`)."""
        return [stage.linear for stage in self._layer_stages()[::2]]

    def _layer_stages(self, detach: bool = False) -> list[Stage]:
        """Affine and activation stage of every layer, differentiable in the parameters or
        (`detach`) built from detached copies (activations shared)."""
        if self.lattice is None:
            kind, tensors = DenseLinear, self.weight
        else:
            kind, tensors = LatticeConvolution, self.kernel * self.kernel_support
        stages: list[Stage] = []
        for tensor, bias, act in zip(tensors, self.bias, self.activations, strict=True):
            if detach:  # copies of their own (also aligned as fresh tensors for the BLAS)
                tensor, bias = tensor.detach().clone(), bias.detach().expand(self.dim).clone()
            stages += [AffineStage(kind(tensor), bias), ActivationStage(act)]
        return stages

    @property
    def is_standardized(self) -> bool:
        """Whether `standardize_to` has fixed the standardisation."""
        return bool(self.standardized)

    def standardize_to(self, data: Any) -> None:
        """Fix shift and scale to `data`: (n, N), n >= 2, finite, no constant column.

        shift = the mean and scale = the std of every column (pooled over all sites on a
        lattice); odd: shift 0 and scale = the root mean square.
        """
        if not self.standardize:
            raise ValueError("this model was built with standardize=False")
        data, _ = _as_batch(data, self.dim, "data", self.dtype, self.device)
        if data.shape[0] < 2:
            raise ValueError(f"standardisation needs at least 2 samples, got {data.shape[0]}")
        if columns := torch.nonzero(~(data.std(dim=0) > 0)).flatten().tolist():
            raise ValueError(f"data columns {columns} are constant; cannot standardise")
        pooled = data.reshape(-1, 1) if self.lattice is not None else data
        if self.odd:
            shift = torch.zeros(pooled.shape[1], dtype=data.dtype, device=data.device)
            scale = pooled.square().mean(dim=0).sqrt()
        else:
            shift, scale = pooled.mean(dim=0), pooled.std(dim=0)
        with torch.no_grad():
            self.shift.copy_(shift.expand(self.dim))
            self.scale.copy_(scale.expand(self.dim))
            self.standardized.fill_(True)

    def stages(self) -> list[Stage]:
        """The network in data -> latent order, detached: the standardisation when set
        (`Scaling(1 / scale)`, bias -shift / scale), then per layer an `AffineStage`
        (`DenseLinear` or `LatticeConvolution`, bias (N,)) and an `ActivationStage`."""
        out: list[Stage] = []
        if self.is_standardized:
            inverse_scale = 1.0 / self.scale.detach()
            out.append(AffineStage(Scaling(inverse_scale), -self.shift.detach() * inverse_scale))
        return out + self._layer_stages(detach=True)

    def _flow(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unchecked forward pass: x (n, N) -> z (n, N), logdet (n,) (-inf outside), inside."""
        stages = self._layer_stages()
        u = (x - self.shift) / self.scale
        logdet = -torch.log(self.scale).sum().expand(x.shape[0])
        logdet = logdet + sum(affine.linear.logabsdet() for affine in stages[::2])
        inside = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        for affine, activation in zip(stages[::2], stages[1::2], strict=True):
            u, slope = _evaluate(activation.activation.unit_coefficients(), affine(u))
            positive = slope > 0
            inside = inside & positive.all(dim=1)
            logdet = logdet + torch.log(torch.where(positive, slope, 1.0)).sum(dim=1)
        logdet = torch.where(inside, logdet, -math.inf)
        return u, logdet, inside

    def _action(self, x: torch.Tensor) -> torch.Tensor:
        """Unchecked action on x: (n, N) -> (n,), +inf outside the domain."""
        z, logdet, _ = self._flow(x)
        return 0.5 * (z * z).sum(dim=1) + 0.5 * self.dim * math.log(2 * math.pi) - logdet

    def forward(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (n, N) or (N,) -> z of x's shape and logdet = ln|det df/dx|: (n,) or ()
        (with the standardisation, -inf outside the domain)."""
        x, single = _as_batch(x, self.dim, "x", self.dtype, self.device)
        z, logdet, _ = self._flow(x)
        return (z[0], logdet[0]) if single else (z, logdet)

    def action(self, x: Any) -> torch.Tensor:
        """S(x) = -ln p(x): (n, N) or (N,) -> (n,) or (), +inf outside the domain."""
        x, single = _as_batch(x, self.dim, "x", self.dtype, self.device)
        value = self._action(x)
        return value[0] if single else value

    def log_prob(self, x: Any) -> torch.Tensor:
        """ln p(x) = -S(x); (n, N) or (N,) -> (n,) or (), -inf outside the domain."""
        return -self.action(x)

    def grad(self, x: Any) -> torch.Tensor:
        """dS/dx by autograd, detached, x's shape; NaN rows outside the domain."""
        x, single = _as_batch(x, self.dim, "x", self.dtype, self.device)
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            value = self._action(x)
            inside = torch.isfinite(value)
            (gradient,) = torch.autograd.grad(torch.where(inside, value, 0.0).sum(), x)
        gradient = torch.where(inside[:, None], gradient, math.nan)
        return gradient[0] if single else gradient

    def in_domain(self, x: Any) -> torch.Tensor:
        """Whether every pre-activation of x has phi' > 0; (n, N) or (N,) -> (n,) or () bool."""
        x, single = _as_batch(x, self.dim, "x", self.dtype, self.device)
        with torch.no_grad():
            inside = self._flow(x)[2]
        return inside[0] if single else inside

    def outside_fraction(self, x: Any) -> float:
        """The fraction of rows of x: (n, N) outside the domain (where the density is zero)."""
        return 1.0 - float(self.in_domain(x).double().mean())

    def inverse(self, z: Any) -> torch.Tensor:
        """f^-1(z): (n, N) or (N,) -> z's shape, layer by layer; NaN rows where z has no
        pre-image."""
        v, single = _as_batch(z, self.dim, "z", self.dtype, self.device)
        with torch.no_grad():
            stages = self._layer_stages()
            for affine, activation in zip(stages[-2::-2], stages[::-2], strict=True):
                y = activation.activation.inverse(v)
                valid = torch.isfinite(y).all(dim=1, keepdim=True)
                y = torch.where(valid, y, 0.0) - affine.bias
                v = torch.where(valid, affine.linear.solve(y), math.nan)
            x = v * self.scale + self.shift
        return x[0] if single else x

    def sample(self, n: int, seed: int | None = None, *, redraw: bool = True) -> torch.Tensor:
        """(n, N) configurations x = f^-1(z), z ~ N(0, I), detached.

        Latent draws without a pre-image (quadratic activation) are dropped: the samples
        follow the density normalised on the domain; the fraction goes to
        `last_sample_invalid` and a RuntimeWarning. `redraw=False` returns only the valid
        rows among n draws instead of drawing again. `seed` seeds a private generator (None:
        torch's global one). MemoryError (before allocating) beyond half the free memory.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        ref = self.shift
        needed = _SAMPLE_COPIES * int(n) * self.dim * ref.element_size()
        limit = available_bytes(ref.device) // 2
        if needed > limit:
            raise MemoryError(
                f"sampling {n} configurations of N = {self.dim} needs about "
                f"{needed / 2**30:.3g} GiB, more than half the memory available "
                f"({limit / 2**30:.3g} GiB); draw fewer at a time")
        generator = None if seed is None else torch.Generator(ref.device).manual_seed(int(seed))
        parts: list[torch.Tensor] = []
        for _ in range(_MAX_SAMPLE_ROUNDS):
            z = torch.randn(n, self.dim, generator=generator, dtype=ref.dtype, device=ref.device)
            x = self.inverse(z)
            parts.append(x[torch.isfinite(x).all(dim=1)])
            found, drawn = sum(part.shape[0] for part in parts), n * len(parts)
            if found >= n or not redraw:
                break
        else:
            raise RuntimeError(f"only {found} of {drawn} latent draws had a pre-image; the "
                               "model's domain holds almost none of the latent mass")
        self.last_sample_invalid = 1.0 - found / drawn
        if found < drawn:
            warnings.warn(
                f"{drawn - found} of {drawn} latent draws ({self.last_sample_invalid:.2%}) have"
                " no pre-image: the model's density misses that mass outside its domain",
                RuntimeWarning, stacklevel=2)
        return torch.cat(parts)[:n]

    def save(self, path: str | os.PathLike) -> None:
        """Write config, state and `training_info` to `path` atomically (`torch.save` archive
        of plain containers and tensors)."""
        payload = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "config": self.config,
            "dtype": str(self.dtype).removeprefix("torch."),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "training_info": json.dumps(self.training_info),
        }
        with atomic_write(path) as stream:
            torch.save(payload, stream)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PolynomialINN:
        """Read a model written by `save` (version 1 or 2) on the CPU, in its saved dtype.
        FileNotFoundError without a file; ValueError on an unreadable or unusable one (config
        and tensors are checked before building, parameters after)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no saved PolynomialINN at {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch.load raises many kinds on a damaged archive
            raise ValueError(
                f"{path} is not a readable PolynomialINN file: {load_error(error)}"
            ) from error
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{path} does not hold a saved PolynomialINN")
        if payload.get("version") not in _READABLE_VERSIONS:
            raise ValueError(f"{path} has format version {payload.get('version')}, this code "
                             f"reads {', '.join(map(str, _READABLE_VERSIONS))}")
        try:
            problem = state_problem(payload)
        except (TypeError, ValueError) as error:
            problem = f"its config is invalid: {error}"
        if problem:
            raise ValueError(f"{path} holds an unusable PolynomialINN: {problem}")
        try:
            model = cls(**payload["config"]).to(getattr(torch, payload["dtype"]))
            model.load_state_dict(payload["state_dict"])
            model.training_info = json.loads(payload["training_info"])
        except (KeyError, TypeError, AttributeError, RuntimeError) as error:
            raise ValueError(f"{path} holds an incomplete PolynomialINN: {error}") from error
        if problem := parameter_problem(model):
            raise ValueError(f"{path} holds an unusable PolynomialINN: {problem}")
        return model
