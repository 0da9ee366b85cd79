"""The polynomial activation family of the INN.

Every member acts elementwise on pre-activations y: (n, N) with per-unit coefficients,
phi(y)_i = sum_{p=1}^{degree} coefficients[i, p] y_i^p with coefficients[:, 1] = 1:
``"quadratic"`` y + a y^2 (Merger et al., Phys. Rev. X 13, 041033 (2023)) and ``"cubic"``
y + a y^2 + c y^3, a bijection of the real line.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_order

__all__ = ["ACTIVATIONS", "CubicActivation", "PolynomialActivation", "QuadraticActivation",
           "make_activation"]


class PolynomialActivation(nn.Module):
    """Base class: an elementwise polynomial of `dim` = N units; subclasses define
    `unit_coefficients` and `inverse`. With `shared` one set of coefficients serves all units:
    `units`, the length of every parameter vector, is 1 (else N)."""

    name: str = ""
    degree: int = 1

    def __init__(self, dim: int, shared: bool = False) -> None:
        super().__init__()
        if not isinstance(shared, bool):
            raise TypeError(f"shared must be a bool, got {type(shared).__name__}")
        self.dim = check_order(dim, "dim")
        self.shared = shared
        self.units = 1 if shared else self.dim

    def coefficients(self) -> torch.Tensor:
        """(N, degree + 1), column p multiplies y^p (shared: one row expanded, no copy)."""
        return self.unit_coefficients().expand(self.dim, -1)

    def unit_coefficients(self) -> torch.Tensor:
        """The distinct coefficients, (units, degree + 1); broadcasts against (n, N) rows."""
        raise NotImplementedError

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """phi(y): (n, N) -> (n, N)."""
        return _horner(self.coefficients(), y)

    def derivative(self, y: torch.Tensor) -> torch.Tensor:
        """phi'(y): (n, N) -> (n, N)."""
        return _horner(_differentiate(self.coefficients()), y)

    def log_derivative(self, y: torch.Tensor) -> torch.Tensor:
        """ln phi'(y): (n, N) -> (n, N); -inf where phi'(y) <= 0 (outside the domain)."""
        slope = self.derivative(y)
        inside = slope > 0
        return torch.where(inside, torch.log(torch.where(inside, slope, 1.0)), -math.inf)

    def in_domain(self, y: torch.Tensor) -> torch.Tensor:
        """(n, N) bool: True where phi'(y) > 0, i.e. phi is locally invertible."""
        return self.derivative(y) > 0

    def taylor(self, y_star: torch.Tensor) -> torch.Tensor:
        """Taylor coefficients phi^(j)(y*_i) / j! at y*: (N,), shape (N, degree + 1)."""
        derivative = self.coefficients().to(y_star)
        shifted = torch.zeros_like(derivative)
        for j in range(self.degree + 1):
            shifted[:, j] = _horner(derivative, y_star.unsqueeze(0))[0] / math.factorial(j)
            derivative = _differentiate(derivative)
        return shifted

    def inverse(self, v: torch.Tensor) -> torch.Tensor:
        """y with phi(y) = v on the invertible branch; NaN where v has no pre-image."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"dim={self.dim}, shared={self.shared}"


class QuadraticActivation(PolynomialActivation):
    """phi(y) = y + a y^2 per unit; invertible where 1 + 2 a y > 0. `init_scale`: standard
    deviation of the initial a."""

    name = "quadratic"
    degree = 2

    def __init__(self, dim: int, init_scale: float = 0.01, shared: bool = False) -> None:
        super().__init__(dim, shared)
        self.a = nn.Parameter(init_scale * torch.randn(self.units))

    def unit_coefficients(self) -> torch.Tensor:
        zeros, ones = torch.zeros_like(self.a), torch.ones_like(self.a)
        return torch.stack([zeros, ones, self.a], dim=1)

    def inverse(self, v: torch.Tensor) -> torch.Tensor:
        """y = 2 v / (1 + sqrt(1 + 4 a v)), accurate as a -> 0; NaN where 1 + 4 a v < 0."""
        discriminant = 1 + 4 * self.a * v
        root = torch.sqrt(discriminant.clamp_min(0))
        return torch.where(discriminant >= 0, 2 * v / (1 + root), math.nan)


class CubicActivation(PolynomialActivation):
    """phi(y) = y + a y^2 + c y^3 with a^2 < 3 c: monotone, a bijection of the real line.

    Parametrised as c = softplus(r), a = s sqrt(3 c) tanh(t), s = 0.95, so that
    phi'(y) = 1 + 2 a y + 3 c y^2 >= 1 - s^2 for every y. With ``odd=True`` there is no t and
    a = 0 exactly: phi(y) = y + c y^3 = -phi(-y), phi' >= 1.

    `init_scale`: the standard deviation of the initial t; `init_c` > 0: the initial c.
    """

    name = "cubic"
    degree = 3
    slope_margin = 0.95

    def __init__(self, dim: int, init_scale: float = 0.01, init_c: float = 0.01,
                 shared: bool = False, odd: bool = False) -> None:
        super().__init__(dim, shared)
        if init_c <= 0:
            raise ValueError(f"init_c must be > 0, got {init_c}")
        if not isinstance(odd, bool):
            raise TypeError(f"odd must be a bool, got {type(odd).__name__}")
        self.odd = odd
        self.r = nn.Parameter(torch.full((self.units,), math.log(math.expm1(init_c))))
        if not odd:
            self.t = nn.Parameter(init_scale * torch.randn(self.units))

    @property
    def c(self) -> torch.Tensor:
        """Cubic coefficients, (units,), always > 0."""
        return F.softplus(self.r)

    @property
    def a(self) -> torch.Tensor:
        """Quadratic coefficients, (units,), always with a^2 < 3 c; exactly 0 when odd."""
        if self.odd:
            return torch.zeros_like(self.r)
        return self.slope_margin * torch.sqrt(3 * self.c) * torch.tanh(self.t)

    def unit_coefficients(self) -> torch.Tensor:
        c = self.c
        return torch.stack([torch.zeros_like(c), torch.ones_like(c), self.a, c], dim=1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, odd={self.odd}"

    def inverse(self, v: torch.Tensor, iterations: int = 100) -> torch.Tensor:
        """The real root of phi(y) = v by Newton kept inside the bracket [-|v|/m, |v|/m],
        m = 1 - s^2 (phi(0) = 0, phi' >= m)."""
        coefficients = self.coefficients().detach().to(v.dtype)
        derivative = _differentiate(coefficients)
        bound = v.abs() / (1 - self.slope_margin**2)
        low, high = -bound, bound
        y = v.clone()
        for _ in range(iterations):
            residual = _horner(coefficients, y) - v
            low = torch.where(residual < 0, y, low)
            high = torch.where(residual > 0, y, high)
            step = y - residual / _horner(derivative, y)
            inside = (step > low) & (step < high)
            y_next = torch.where(inside, step, 0.5 * (low + high))
            if torch.all((y_next - y).abs() <= 4 * torch.finfo(v.dtype).eps * (1 + y.abs())):
                return y_next
            y = y_next
        return y


ACTIVATIONS: dict[str, type[PolynomialActivation]] = {
    kind.name: kind for kind in (QuadraticActivation, CubicActivation)
}


def make_activation(name: str, dim: int, **options: float | bool) -> PolynomialActivation:
    """Build the member `name` ("quadratic" or "cubic") for `dim` units; `options` go to its
    constructor (``odd=True`` needs "cubic": ValueError otherwise)."""
    if name not in ACTIVATIONS:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {name!r}; known activations: {known}")
    if options.get("odd") and name != CubicActivation.name:
        raise ValueError(f"the {name!r} activation has no odd form (odd=True needs 'cubic': "
                         "y + c y^3)")
    return ACTIVATIONS[name](dim, **options)


def _horner(coefficients: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-unit polynomials: coefficients (N, P + 1), y (n, N) -> (n, N)."""
    value = torch.zeros_like(y) + coefficients[:, -1]
    for p in range(coefficients.shape[1] - 2, -1, -1):
        value = value * y + coefficients[:, p]
    return value


def _differentiate(coefficients: torch.Tensor) -> torch.Tensor:
    """Coefficients of the derivative polynomial, (N, P + 1) -> (N, P)."""
    return coefficients[:, 1:] * torch.arange(1, coefficients.shape[1]).to(coefficients)
