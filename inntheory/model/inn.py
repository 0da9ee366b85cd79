"""The polynomial invertible network: exact density, inverse, sampling, save/load.

`PolynomialINN` maps data to latent, z = f(x) with z ~ N(0, I) (METHOD.md, "The polynomial
INN"). In data -> latent order it is an optional fixed standardisation u = (x - shift) / scale
followed by `depth` layers, each an invertible affine map y = W u + b (W from
`inntheory.model.linear`: a dense matrix, or a periodic convolution on a lattice) and an
elementwise polynomial activation from `inntheory.model.activations`. Its action is

    S(x) = 1/2 |f(x)|^2 + N/2 ln 2 pi - ln|det df/dx|,

exact, with ln|det df/dx| = -sum ln scale + sum_l [ln|det W_l| + sum_i ln phi_l'(y_l,i)].
Where some pre-activation leaves the activation's domain (phi' <= 0: only the quadratic
activation has such points) the model density is zero: the action is +inf there, never a
finite number.

The model is a *target* for `inntheory.sample`: it has `.dim`, `action(x)` and `grad(x)`.
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
from .validation import (
    _as_batch,
    check_config,
    layer_activation,
    parameter_problem,
    state_problem,
)

__all__ = ["PolynomialINN"]

_FORMAT = "inntheory.PolynomialINN"
_FORMAT_VERSION = 2  # 2: config has lattice, kernel_radius, odd; version 1 files still load
_READABLE_VERSIONS = (1, 2)
_INIT_NOISE = 1e-2
_MAX_SAMPLE_ROUNDS = 100
_SAMPLE_COPIES = 8
"""(n, N) tensors alive at once while `sample` inverts one round of draws, rounded up."""


def _evaluate(coefficients: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """phi(y) and phi'(y) in one Horner pass: coefficients (N, P + 1), y (n, N) -> 2 x (n, N).

    The activation's own `forward`/`derivative` give the same numbers; fusing them halves
    the work of the training loop.
    """
    value = coefficients[:, -1].expand_as(y)
    slope = torch.zeros_like(y)
    for p in range(coefficients.shape[1] - 2, -1, -1):
        slope = slope * y + value
        value = value * y + coefficients[:, p]
    return value, slope


class PolynomialINN(nn.Module):
    """Polynomial invertible network with an exact action.

    Layer l (l = 1..depth) is y = W_l u + b_l followed by the elementwise activation phi_l,
    after a fixed standardisation (buffers `shift`, `scale`, set by `standardize_to`), so
    every coefficient is in data units. Three kinds:

    - dense (``lattice=None``): `weight` (depth, N, N), initialised at identity + small
      noise; `bias` (depth, N); activation coefficients, shift and scale per site.
    - lattice-equivariant (``lattice=(L,)`` or ``(L1, L2)``): W_l is a periodic convolution,
      W[i, j] = kernel[(site(i) - site(j)) mod shape], `kernel` (depth, *lattice), log|det|
      and inverse by FFT; ``kernel_radius=r`` keeps the offsets within r steps on every
      axis. One bias (`bias` (depth, 1)), activation, shift and scale shared by all sites, so
      f(T x) = T f(x) for every translation T and the action is translation invariant.
    - odd (``odd=True``): no biases, activation y + c y^3, shift 0: f(-x) = -f(x), the density
      is exactly even.

    `stages()` lists the network as `inntheory.model.stages` objects.

    Arguments:
        dim: N, the number of degrees of freedom (>= 1).
        depth: the number of layers L (>= 1).
        activation: a name in `inntheory.ACTIVATIONS` ("cubic", the default, is monotone
            on the whole line; "quadratic" is the paper's y + a y^2 with the domain
            1 + 2 a y > 0).
        standardize: whether `inntheory.train` fixes the standardisation to the training
            data before fitting (when it is not set yet).
        lattice: None (dense) or the lattice shape, a tuple of ints >= 1 with product N
            (``LatticeTheory.shape``; sites flattened in C order).
        kernel_radius: None (full kernel) or an int r >= 0 with 2 r + 1 <= L on every axis;
            needs a lattice.
        odd: a Z2-odd network (needs the cubic activation).

    Attributes:
        lattice, kernel_radius, odd: the options above (`lattice` as a tuple or None).
        kernel_support: (lattice only) buffer, 1.0 on the offsets within the radius, else 0;
            the maps use kernel * kernel_support.
        training_info: JSON-able metadata written by `inntheory.train`, kept by `save`.
        last_sample_invalid: the fraction of latent draws without a pre-image in the latest
            `sample` call.

    Raises:
        ValueError: on a lattice whose size is not dim, with a side < 1 or with other than 1
            or 2 axes, a kernel radius that is negative, too large or given without a
            lattice, or odd with "quadratic".

    Example:
        >>> model = PolynomialINN(2, depth=2)
        >>> z, logdet = model(torch.zeros(5, 2))
        >>> z.shape, logdet.shape
        (torch.Size([5, 2]), torch.Size([5]))
        >>> ring = PolynomialINN(8, depth=2, lattice=(8,), kernel_radius=1, odd=True)
        >>> ring.coupling_range
        4
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        activation: str = "cubic",
        standardize: bool = True,
        *,
        lattice: tuple[int, ...] | list[int] | None = None,
        kernel_radius: int | None = None,
        odd: bool = False,
    ) -> None:
        super().__init__()
        dim, depth, lattice, kernel_radius = check_config(
            dim, depth, activation, standardize, lattice, kernel_radius, odd
        )
        self.dim = dim
        self.depth = depth
        self.activation_name = activation
        self.standardize = standardize
        self.odd = odd
        self.lattice = lattice
        self.kernel_radius = kernel_radius
        if self.lattice is None:
            noise = torch.randn(self.depth, self.dim, self.dim) * (_INIT_NOISE / math.sqrt(dim))
            self.weight = nn.Parameter(torch.eye(self.dim) + noise)
            bias_shape = (self.depth, self.dim)
        else:
            mask = kernel_mask(self.lattice, self.kernel_radius)
            self.register_buffer(
                "kernel_support", mask.to(torch.get_default_dtype()), persistent=False
            )
            delta = torch.zeros(self.lattice)
            delta[(0,) * len(self.lattice)] = 1.0
            noise = torch.randn(self.depth, *self.lattice) * (
                _INIT_NOISE / math.sqrt(int(mask.sum()))
            )
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
        text = (
            f"dim={self.dim}, depth={self.depth}, activation={self.activation_name!r}, "
            f"standardize={self.standardize}"
        )
        if self.lattice is not None:
            text += f", lattice={self.lattice}, kernel_radius={self.kernel_radius}"
        return text + (", odd=True" if self.odd else "")

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-able (`lattice` as a list or None)."""
        return {
            "dim": self.dim,
            "depth": self.depth,
            "activation": self.activation_name,
            "standardize": self.standardize,
            "lattice": None if self.lattice is None else list(self.lattice),
            "kernel_radius": self.kernel_radius,
            "odd": self.odd,
        }

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the parameters and buffers."""
        return self.shift.dtype

    @property
    def device(self) -> torch.device:
        """The device of the parameters and buffers."""
        return self.shift.device

    @property
    def coupling_range(self) -> int | None:
        """2 * depth * kernel_radius: the largest lattice offset (per axis, minimal image)
        between the indices of any non-zero coupling of the extracted action (z_i depends on
        sites within depth * kernel_radius of i); None without a kernel radius."""
        if self.kernel_radius is None:
            return None
        return 2 * self.depth * self.kernel_radius

    def linear_maps(self) -> list[LinearMap]:
        """The layers' linear maps W_l (l = 1..depth), differentiable in the parameters:
        `DenseLinear`, or `LatticeConvolution` (masked kernel) on a lattice."""
        return [stage.linear for stage in self._layer_stages()[::2]]

    def _layer_stages(self, detach: bool = False) -> list[Stage]:
        """Affine and activation stage of every layer, in data -> latent order, differentiable
        in the parameters or (`detach`) built from detached copies (activations shared)."""
        if self.lattice is None:
            kind, tensors = DenseLinear, self.weight
        else:
            kind, tensors = LatticeConvolution, self.kernel * self.kernel_support
        biases = self.bias
        if detach:
            tensors, biases = tensors.detach(), biases.detach()
        stages: list[Stage] = []
        for tensor, bias, act in zip(tensors, biases, self.activations, strict=True):
            if detach:  # copies of their own (also aligned as fresh tensors for the BLAS)
                tensor, bias = tensor.clone(), bias.expand(self.dim).clone()
            stages += [AffineStage(kind(tensor), bias), ActivationStage(act)]
        return stages

    @property
    def is_standardized(self) -> bool:
        """Whether `standardize_to` has fixed the standardisation."""
        return bool(self.standardized)

    def standardize_to(self, data: Any) -> None:
        """Fix the standardisation u = (x - shift) / scale to `data`.

        Dense: shift = the mean and scale = the std of every column. On a lattice one shift
        and one scale pooled over all sites. Odd: shift stays 0 and the scale is the root
        mean square (per column, or pooled on a lattice), so the map stays odd.

        Arguments:
            data: (n, N) torch tensor or numpy array, n >= 2, no NaN/inf, no constant column.
        """
        if not self.standardize:
            raise ValueError("this model was built with standardize=False")
        data, _ = _as_batch(data, self.dim, "data", self.dtype, self.device)
        if data.shape[0] < 2:
            raise ValueError(f"standardisation needs at least 2 samples, got {data.shape[0]}")
        std = data.std(dim=0)
        if not bool((std > 0).all()):
            columns = torch.nonzero(std <= 0).flatten().tolist()
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
        """The network as a list of stages in data -> latent order (detached tensors).

        Returns:
            The fixed standardisation first when it is set, as an `AffineStage` with
            W = `Scaling(1 / scale)` and b = -shift / scale; then per layer its `AffineStage`
            (a `DenseLinear`, or the `LatticeConvolution` with its kernel on a lattice; the
            bias (N,)) and its `ActivationStage` (the layer's activation module,
            `coefficients()` of shape (N, degree + 1), identical rows on a lattice).
        """
        out: list[Stage] = []
        if self.is_standardized:
            inverse_scale = 1.0 / self.scale.detach()
            out.append(AffineStage(Scaling(inverse_scale), -self.shift.detach() * inverse_scale))
        return out + self._layer_stages(detach=True)

    # ------------------------------------------------------------------ density

    def _flow(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unchecked forward pass on x: (n, N) -> z (n, N), logdet (n,), inside (n,) bool.

        logdet is -inf on rows outside the domain (`inside` False).
        """
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
        """Map data to latent.

        Arguments:
            x: (n, N) or (N,) configurations (no NaN/inf).

        Returns:
            z: (n, N) or (N,) latent points; logdet: (n,) or () ln|det df/dx| including the
            standardisation, -inf outside the domain.
        """
        x, single = _as_batch(x, self.dim, "x", self.dtype, self.device)
        z, logdet, _ = self._flow(x)
        return (z[0], logdet[0]) if single else (z, logdet)

    def action(self, x: Any) -> torch.Tensor:
        """S(x) = -ln p(x) = 1/2 |z|^2 + N/2 ln 2 pi - logdet.

        Arguments:
            x: (n, N) or (N,).

        Returns:
            (n,) or (): the action, +inf where x is outside the domain.
        """
        x, single = _as_batch(x, self.dim, "x", self.dtype, self.device)
        value = self._action(x)
        return value[0] if single else value

    def log_prob(self, x: Any) -> torch.Tensor:
        """ln p(x) = -S(x); (n, N) or (N,) -> (n,) or (), -inf outside the domain."""
        return -self.action(x)

    def grad(self, x: Any) -> torch.Tensor:
        """Gradient of the action dS/dx by autograd (for gradient-based samplers).

        Arguments:
            x: (n, N) or (N,).

        Returns:
            (n, N) or (N,), detached; NaN rows where x is outside the domain.
        """
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

    # ------------------------------------------------------------------ inverse, sampling

    def inverse(self, z: Any) -> torch.Tensor:
        """Map latent to data, layer by layer (activation inverse, then a linear solve).

        Arguments:
            z: (n, N) or (N,) latent points.

        Returns:
            (n, N) or (N,) data points; rows of NaN where z has no pre-image (some
            activation inverse has none on its valid branch).
        """
        v, single = _as_batch(z, self.dim, "z", self.dtype, self.device)
        with torch.no_grad():
            stages = self._layer_stages()
            for affine, activation in zip(stages[-2::-2], stages[::-2], strict=True):
                y = activation.activation.inverse(v)
                valid = torch.isfinite(y).all(dim=1, keepdim=True)
                y = torch.where(valid, y, 0.0) - affine.bias
                v = affine.linear.solve(y)
                v = torch.where(valid, v, math.nan)
            x = v * self.scale + self.shift
        return x[0] if single else x

    def sample(self, n: int, seed: int | None = None, *, redraw: bool = True) -> torch.Tensor:
        """Draw configurations from the model: z ~ N(0, I), x = f^-1(z).

        With the quadratic activation some latent draws may have no pre-image: the samples
        then follow the density normalised on the domain; the fraction is stored in
        `last_sample_invalid` and reported by a RuntimeWarning when non-zero.

        Arguments:
            n: the number of samples (>= 1).
            seed: seed of a private generator (reproducible draws); None uses torch's
                global generator.
            redraw: True (default) draws again until n valid rows are found; False returns
                only the valid rows among n draws (possibly fewer than n).

        Raises:
            ValueError: n is not a positive int.
            MemoryError: the draws would need more than half the available memory (raised
                with the estimate, before allocating).

        Returns:
            (n, N) configurations (fewer rows when redraw=False and some draws were invalid),
            detached, in the model's dtype and on its device.
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
                f"({limit / 2**30:.3g} GiB); draw fewer at a time"
            )
        generator = None
        if seed is not None:
            generator = torch.Generator(device=ref.device).manual_seed(int(seed))
        parts: list[torch.Tensor] = []
        drawn = found = 0
        for _ in range(_MAX_SAMPLE_ROUNDS):
            z = torch.randn(
                n, self.dim, generator=generator, dtype=ref.dtype, device=ref.device
            )
            x = self.inverse(z)
            x = x[torch.isfinite(x).all(dim=1)]
            drawn += n
            found += x.shape[0]
            parts.append(x)
            if found >= n or not redraw:
                break
        else:
            raise RuntimeError(
                f"only {found} of {drawn} latent draws had a pre-image; the model's domain "
                "holds almost none of the latent mass"
            )
        self.last_sample_invalid = 1.0 - found / drawn
        if found < drawn:
            warnings.warn(
                f"{drawn - found} of {drawn} latent draws ({self.last_sample_invalid:.2%}) have"
                " no pre-image: the model's density misses that mass outside its domain",
                RuntimeWarning,
                stacklevel=2,
            )
        return torch.cat(parts)[:n]

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> None:
        """Write config, parameters, standardisation and `training_info` to `path` atomically
        (a `torch.save` archive of plain containers and tensors, read with weights_only)."""
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
        """Read a model written by `save` (on the CPU, in the dtype it was saved in).

        Files of format version 1 (dense models written before the lattice and odd options)
        load as dense, non-odd models.

        Raises:
            FileNotFoundError: no file at `path`.
            ValueError: the file is corrupt or is not a saved PolynomialINN, its config
                disagrees with its tensors (checked before anything is built) or its dtype is
                not float32/float64, or its parameters are unusable: NaN/inf entries, a
                standardisation scale <= 0, a singular weight (ln|det W| not finite); the
                message names the problem.
        """
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
            raise ValueError(
                f"{path} has format version {payload.get('version')}, "
                f"this code reads {', '.join(map(str, _READABLE_VERSIONS))}"
            )
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
        problem = parameter_problem(model)
        if problem:
            raise ValueError(f"{path} holds an unusable PolynomialINN: {problem}")
        return model
