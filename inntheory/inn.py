"""The polynomial invertible network: exact density, inverse, sampling, save/load.

`PolynomialINN` maps data to latent, z = f(x) with z ~ N(0, I) (METHOD.md, "The polynomial
INN"). In data -> latent order it is an optional fixed standardisation u = (x - shift) / scale
followed by `depth` layers, each an invertible affine map y = W u + b and an elementwise
polynomial activation from `inntheory.activations`. Its action is

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

from ._io import atomic_write
from .activations import ACTIVATIONS, make_activation

__all__ = ["PolynomialINN"]

_FORMAT = "inntheory.PolynomialINN"
_FORMAT_VERSION = 1
_INIT_NOISE = 1e-2
_MAX_SAMPLE_ROUNDS = 100


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
    value = value.to(device=device, dtype=dtype)
    bad = int((~torch.isfinite(value)).sum())
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or inf entries")
    return value, single


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

    Layer l (l = 1..depth) is y = W_l u + b_l followed by the elementwise activation phi_l.
    W_l is a plain dense matrix initialised at identity + 1e-2 * noise / sqrt(N) and its
    log|det| comes from `torch.linalg.slogdet` (exact; cheap for the N <= ~64 used here); the
    activations start near the identity. A fixed standardisation (buffers `shift`, `scale`,
    set by `standardize_to`) acts as the first affine stage, so every stage, log-determinant
    and extracted coefficient is in data units.

    Arguments:
        dim: N, the number of degrees of freedom (>= 1).
        depth: the number of layers L (>= 1).
        activation: a name in `inntheory.ACTIVATIONS` ("cubic", the default, is monotone
            on the whole line; "quadratic" is the paper's y + a y^2 with the domain
            1 + 2 a y > 0).
        standardize: whether `inntheory.train` fixes the standardisation to the training
            data before fitting (when it is not set yet).

    Attributes:
        training_info: JSON-able metadata written by `inntheory.train`, kept by `save`.
        last_sample_invalid: the fraction of latent draws without a pre-image in the latest
            `sample` call.

    Example:
        >>> model = PolynomialINN(2, depth=2)
        >>> z, logdet = model(torch.zeros(5, 2))
        >>> z.shape, logdet.shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(
        self, dim: int, depth: int, activation: str = "cubic", standardize: bool = True
    ) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; known: {', '.join(sorted(ACTIVATIONS))}"
            )
        if not isinstance(standardize, bool):
            raise TypeError(f"standardize must be a bool, got {type(standardize).__name__}")
        self.dim = int(dim)
        self.depth = int(depth)
        self.activation_name = activation
        self.standardize = standardize
        noise = torch.randn(self.depth, self.dim, self.dim) * (_INIT_NOISE / math.sqrt(dim))
        self.weight = nn.Parameter(torch.eye(self.dim) + noise)
        self.bias = nn.Parameter(torch.zeros(self.depth, self.dim))
        self.activations = nn.ModuleList(
            make_activation(activation, self.dim) for _ in range(self.depth)
        )
        self.register_buffer("shift", torch.zeros(self.dim))
        self.register_buffer("scale", torch.ones(self.dim))
        self.register_buffer("standardized", torch.tensor(False))
        self.training_info: dict[str, Any] = {}
        self.last_sample_invalid = 0.0

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, depth={self.depth}, activation={self.activation_name!r}, "
            f"standardize={self.standardize}"
        )

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-able."""
        return {
            "dim": self.dim,
            "depth": self.depth,
            "activation": self.activation_name,
            "standardize": self.standardize,
        }

    @property
    def is_standardized(self) -> bool:
        """Whether `standardize_to` has fixed the standardisation."""
        return bool(self.standardized)

    def standardize_to(self, data: Any) -> None:
        """Fix the standardisation u = (x - shift) / scale to the mean and std of `data`.

        Arguments:
            data: (n, N) torch tensor or numpy array, n >= 2, no NaN/inf, no constant column.
        """
        if not self.standardize:
            raise ValueError("this model was built with standardize=False")
        data, _ = _as_batch(data, self.dim, "data", self.weight.dtype, self.weight.device)
        if data.shape[0] < 2:
            raise ValueError(f"standardisation needs at least 2 samples, got {data.shape[0]}")
        std = data.std(dim=0)
        if not bool((std > 0).all()):
            columns = torch.nonzero(std <= 0).flatten().tolist()
            raise ValueError(f"data columns {columns} are constant; cannot standardise")
        with torch.no_grad():
            self.shift.copy_(data.mean(dim=0))
            self.scale.copy_(std)
            self.standardized.fill_(True)

    def stages(self) -> list[tuple]:
        """The network as a list of stages in data -> latent order (detached tensors).

        Returns:
            `("affine", W (N, N), b (N,))` and `("activation", act)` entries: the fixed
            standardisation first when set (W = diag(1/scale), b = -shift/scale), then per
            layer its affine map and its activation module.
        """
        out: list[tuple] = []
        if self.is_standardized:
            inverse_scale = 1.0 / self.scale.detach()
            out.append(
                ("affine", torch.diag(inverse_scale), -self.shift.detach() * inverse_scale)
            )
        for weight, bias, act in zip(self.weight, self.bias, self.activations, strict=True):
            out.append(("affine", weight.detach().clone(), bias.detach().clone()))
            out.append(("activation", act))
        return out

    # ------------------------------------------------------------------ density

    def _flow(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unchecked forward pass on x: (n, N) -> z (n, N), logdet (n,), inside (n,) bool.

        logdet is -inf on rows outside the domain (`inside` False).
        """
        u = (x - self.shift) / self.scale
        logdet = -torch.log(self.scale).sum().expand(x.shape[0])
        logdet = logdet + torch.linalg.slogdet(self.weight).logabsdet.sum()
        inside = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        for weight, bias, act in zip(self.weight, self.bias, self.activations, strict=True):
            y = torch.addmm(bias, u, weight.T)
            u, slope = _evaluate(act.coefficients(), y)
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
        x, single = _as_batch(x, self.dim, "x", self.weight.dtype, self.weight.device)
        z, logdet, _ = self._flow(x)
        return (z[0], logdet[0]) if single else (z, logdet)

    def action(self, x: Any) -> torch.Tensor:
        """S(x) = -ln p(x) = 1/2 |z|^2 + N/2 ln 2 pi - logdet.

        Arguments:
            x: (n, N) or (N,).

        Returns:
            (n,) or (): the action, +inf where x is outside the domain.
        """
        x, single = _as_batch(x, self.dim, "x", self.weight.dtype, self.weight.device)
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
        x, single = _as_batch(x, self.dim, "x", self.weight.dtype, self.weight.device)
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            value = self._action(x)
            inside = torch.isfinite(value)
            (gradient,) = torch.autograd.grad(torch.where(inside, value, 0.0).sum(), x)
        gradient = torch.where(inside[:, None], gradient, math.nan)
        return gradient[0] if single else gradient

    def in_domain(self, x: Any) -> torch.Tensor:
        """Whether every pre-activation of x has phi' > 0; (n, N) or (N,) -> (n,) or () bool."""
        x, single = _as_batch(x, self.dim, "x", self.weight.dtype, self.weight.device)
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
        v, single = _as_batch(z, self.dim, "z", self.weight.dtype, self.weight.device)
        with torch.no_grad():
            for weight, bias, act in zip(
                reversed(self.weight), reversed(self.bias), reversed(self.activations),
                strict=True,
            ):
                y = act.inverse(v)
                valid = torch.isfinite(y).all(dim=1, keepdim=True)
                y = torch.where(valid, y, 0.0) - bias
                v = torch.linalg.solve(weight, y.T).T
                v = torch.where(valid, v, math.nan)
            x = v * self.scale + self.shift
        return x[0] if single else x

    def sample(self, n: int, seed: int | None = None, *, redraw: bool = True) -> torch.Tensor:
        """Draw configurations from the model: z ~ N(0, I), x = f^-1(z).

        With the quadratic activation some latent draws have no pre-image: the model's mass
        on its domain is then below one, and the samples follow the density normalised on
        the domain. Their fraction is stored in `last_sample_invalid` and a RuntimeWarning
        reports it when it is non-zero.

        Arguments:
            n: the number of samples (>= 1).
            seed: seed of a private generator (reproducible draws); None uses torch's
                global generator.
            redraw: True (default) draws again until n valid rows are found; False returns
                only the valid rows among n draws (possibly fewer than n).

        Returns:
            (n, N) configurations (fewer rows when redraw=False and some draws were invalid),
            detached, in the model's dtype and on its device.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        ref = self.weight
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
        """Write config, parameters, standardisation and `training_info` to `path` atomically.

        The file is a `torch.save` archive of plain containers and tensors, readable with
        `weights_only=True` (see `load`).
        """
        payload = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "config": self.config,
            "dtype": str(self.weight.dtype).removeprefix("torch."),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "training_info": json.dumps(self.training_info),
        }
        with atomic_write(path) as stream:
            torch.save(payload, stream)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PolynomialINN:
        """Read a model written by `save` (on the CPU, in the dtype it was saved in).

        Raises:
            FileNotFoundError: no file at `path`.
            ValueError: the file is corrupt or is not a saved PolynomialINN.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no saved PolynomialINN at {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch.load raises many kinds on a damaged archive
            raise ValueError(f"{path} is not a readable PolynomialINN file: {error}") from error
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{path} does not hold a saved PolynomialINN")
        if payload.get("version") != _FORMAT_VERSION:
            raise ValueError(
                f"{path} has format version {payload.get('version')}, "
                f"this code reads {_FORMAT_VERSION}"
            )
        try:
            model = cls(**payload["config"]).to(getattr(torch, payload["dtype"]))
            model.load_state_dict(payload["state_dict"])
            model.training_info = json.loads(payload["training_info"])
        except (KeyError, TypeError, AttributeError, RuntimeError) as error:
            raise ValueError(f"{path} holds an incomplete PolynomialINN: {error}") from error
        return model
