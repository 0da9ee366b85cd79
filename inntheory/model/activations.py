"""The polynomial activation family of the INN.

Every member acts elementwise on pre-activations y: (n, N) with its own coefficients per unit,

    phi(y)_i = sum_{p=1}^{degree} coefficients[i, p] * y_i^p,   coefficients[:, 1] = 1,

and knows its coefficients, derivative, inverse and invertible domain; nothing else. The
extraction of the action needs `coefficients()` alone (or its Taylor pieces, `taylor`).
With ``shared=True`` one set of coefficients serves every unit (the parameters have one
entry; `coefficients()` still has N identical rows): the lattice-equivariant network's choice.

Members:

- ``"quadratic"``: phi(y) = y + a y^2, the activation of Merger et al. (2023). Invertible only
  where phi'(y) = 1 + 2 a y > 0; the fold 1 + 2 a y = 0 bounds the model's domain.
- ``"cubic"``: phi(y) = y + a y^2 + c y^3 with c > 0 and a^2 < 3 c, so phi'(y) > 0 for every y:
  a bijection of the real line. Parametrised as c = softplus(r), a = s sqrt(3 c) tanh(t) with
  s = 0.95 < 1, which keeps phi' >= 1 - s^2 everywhere. With ``odd=True`` a = 0 exactly (no
  parameter t): phi(y) = y + c y^3, an odd function with phi' >= 1.

References:
    C. Merger, A. René, K. Fischer, P. Bouss, S. Nestler, D. Dahmen, C. Honerkamp, M. Helias,
    "Learning Interacting Theories from Data", Phys. Rev. X 13, 041033 (2023),
    arXiv:2304.00599.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "CubicActivation",
    "PolynomialActivation",
    "QuadraticActivation",
    "make_activation",
]


class PolynomialActivation(nn.Module):
    """Base class: an elementwise polynomial with per-unit coefficients.

    Subclasses define `coefficients()`; everything else follows from it here, and subclasses
    override `inverse` with a method suited to their degree.

    Arguments:
        dim: number of units N.
        shared: one set of coefficients for all N units (parameters of length 1) instead of
            one per unit.

    Attributes:
        units: the length of every parameter vector: 1 when shared, else N.
    """

    name: str = ""
    degree: int = 1

    def __init__(self, dim: int, shared: bool = False) -> None:
        super().__init__()
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        if not isinstance(shared, bool):
            raise TypeError(f"shared must be a bool, got {type(shared).__name__}")
        self.dim = dim
        self.shared = shared
        self.units = 1 if shared else dim

    def coefficients(self) -> torch.Tensor:
        """Polynomial coefficients, (N, degree + 1): column p multiplies y^p.

        Shared activations return one row expanded to N (identical rows, no copy).
        """
        return self.unit_coefficients().expand(self.dim, -1)

    def unit_coefficients(self) -> torch.Tensor:
        """The distinct coefficients, (units, degree + 1); broadcasts against (n, N) rows."""
        raise NotImplementedError

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """phi(y), elementwise: (n, N) -> (n, N)."""
        return _horner(self.coefficients(), y)

    def derivative(self, y: torch.Tensor) -> torch.Tensor:
        """phi'(y), elementwise: (n, N) -> (n, N)."""
        return _horner(_differentiate(self.coefficients()), y)

    def log_derivative(self, y: torch.Tensor) -> torch.Tensor:
        """ln phi'(y): (n, N) -> (n, N); -inf where phi'(y) <= 0 (outside the domain)."""
        slope = self.derivative(y)
        inside = slope > 0
        return torch.where(inside, torch.log(torch.where(inside, slope, 1.0)), -math.inf)

    def in_domain(self, y: torch.Tensor) -> torch.Tensor:
        """Boolean mask (n, N): True where phi'(y) > 0, i.e. phi is locally invertible."""
        return self.derivative(y) > 0

    def taylor(self, y_star: torch.Tensor) -> torch.Tensor:
        """Taylor coefficients of phi at y*: phi^(j)(y*_i) / j!, shape (N, degree + 1).

        Arguments:
            y_star: expansion points, one per unit, (N,).
        """
        coefficients = self.coefficients().to(y_star)
        shifted = torch.zeros_like(coefficients)
        derivative = coefficients
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
    """phi(y) = y + a y^2 per unit (Merger et al. 2023); invertible where 1 + 2 a y > 0.

    Arguments:
        dim: number of units N.
        init_scale: standard deviation of the initial a (near the identity map).
        shared: one coefficient a for all units.

    Example:
        >>> act = QuadraticActivation(2)
        >>> with torch.no_grad():
        ...     _ = act.a.copy_(torch.tensor([0.5, -0.25]))
        >>> y = torch.tensor([[0.3, 0.7]])
        >>> torch.allclose(act.inverse(act(y)), y)
        True
    """

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

    Arguments:
        dim: number of units N.
        init_scale: standard deviation of the initial t (the quadratic part).
        init_c: initial value of the cubic coefficient c (small: near the identity map).
        shared: one (a, c) for all units.
        odd: no quadratic term (a = 0 exactly, not a parameter).

    Example:
        >>> act = CubicActivation(3)
        >>> y = torch.linspace(-5, 5, 9).reshape(3, 3)
        >>> torch.allclose(act.inverse(act(y)), y, atol=1e-5)
        True
    """

    name = "cubic"
    degree = 3
    slope_margin = 0.95

    def __init__(
        self,
        dim: int,
        init_scale: float = 0.01,
        init_c: float = 0.01,
        shared: bool = False,
        odd: bool = False,
    ) -> None:
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
        """The unique real root of phi(y) = v by bracketed Newton (never leaves the bracket).

        Since phi(0) = 0 and phi' >= 1 - s^2 =: m, the root lies in [-|v|/m, |v|/m].
        """
        coefficients = self.coefficients().detach().to(v.dtype)
        derivative = _differentiate(coefficients)
        bound = v.abs() / (1 - self.slope_margin**2)
        low, high = -bound, bound
        y = v.clone()
        tolerance = 4 * torch.finfo(v.dtype).eps
        for _ in range(iterations):
            residual = _horner(coefficients, y) - v
            low = torch.where(residual < 0, y, low)
            high = torch.where(residual > 0, y, high)
            step = y - residual / _horner(derivative, y)
            inside = (step > low) & (step < high)
            y_next = torch.where(inside, step, 0.5 * (low + high))
            if torch.all((y_next - y).abs() <= tolerance * (1 + y.abs())):
                return y_next
            y = y_next
        return y


ACTIVATIONS: dict[str, type[PolynomialActivation]] = {
    QuadraticActivation.name: QuadraticActivation,
    CubicActivation.name: CubicActivation,
}


def make_activation(name: str, dim: int, **options: float | bool) -> PolynomialActivation:
    """Build a member of the family by name ("quadratic" or "cubic") for `dim` units.

    Options go to the member's constructor (`shared` for both; `odd` for the cubic only: the
    quadratic y + a y^2 has no odd form, so ``odd=True`` with it is a ValueError).
    """
    if name not in ACTIVATIONS:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {name!r}; known activations: {known}")
    if options.get("odd") and name != CubicActivation.name:
        raise ValueError(
            f"the {name!r} activation has no odd form (odd=True needs 'cubic': y + c y^3)"
        )
    return ACTIVATIONS[name](dim, **options)


def _horner(coefficients: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Evaluate per-unit polynomials: coefficients (N, P + 1), y (n, N) -> (n, N)."""
    value = torch.zeros_like(y) + coefficients[:, -1]
    for p in range(coefficients.shape[1] - 2, -1, -1):
        value = value * y + coefficients[:, p]
    return value


def _differentiate(coefficients: torch.Tensor) -> torch.Tensor:
    """Coefficients of the derivative polynomial, (N, P + 1) -> (N, max(P, 1))."""
    if coefficients.shape[1] == 1:
        return torch.zeros_like(coefficients)
    powers = torch.arange(1, coefficients.shape[1], dtype=coefficients.dtype,
                          device=coefficients.device)
    return coefficients[:, 1:] * powers
