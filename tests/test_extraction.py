"""Tests of the exact action extraction: autodiff, sympy and hand-derived pull-backs."""

from __future__ import annotations

import copy
import math

import pytest
import sympy as sp
import torch
from autodiff import nested_derivatives

from inntheory import PolynomialAction, PolynomialINN, action_history, extract_action
from inntheory.extraction import pullback
from inntheory.extraction.dense import DenseBackend
from inntheory.extraction.diagrams import catalogue
from inntheory.model.linear import DenseLinear
from inntheory.model.stages import AffineStage

TOL = 1e-10


def _random_model(
    dim: int, depth: int, activation: str, standardize: bool, seed: int
) -> PolynomialINN:
    """A float64 network far from the identity (so every diagram contributes)."""
    torch.manual_seed(seed)
    model = PolynomialINN(dim, depth, activation=activation, standardize=standardize).double()
    with torch.no_grad():
        model.weight.copy_(torch.eye(dim) + 0.4 * torch.randn(depth, dim, dim) / dim**0.5)
        model.bias.normal_(0.0, 0.2)
        for act in model.activations:
            for parameter in act.parameters():
                parameter.normal_(0.0, 0.4)
    if standardize:
        model.standardize_to(1.5 * torch.randn(64, dim, dtype=torch.float64) + 0.3)
    return model


def _inside_point(model: PolynomialINN, seed: int) -> torch.Tensor:
    """A random point of the model's domain."""
    generator = torch.Generator().manual_seed(seed)
    point = 0.5 * torch.randn(model.dim, generator=generator, dtype=torch.float64)
    while not bool(model.in_domain(point)):
        point = point / 2
    return point


def _lean_action(stages: list):
    """Hand-written action of the representation entering `stages` (data -> latent order).

    Lean (coefficients evaluated once) so that sixth-order nested autodiff stays fast.
    """
    lean = []
    for stage in stages:
        if isinstance(stage, AffineStage):
            weight = stage.linear.matrix().double()
            lean.append(("affine", weight, stage.bias.double(),
                         torch.linalg.slogdet(weight)[1]))
        else:
            poly = stage.activation.coefficients().detach().double()
            slope = poly[:, 1:] * torch.arange(1, poly.shape[1], dtype=torch.float64)
            lean.append(("activation", poly, slope, None))

    def horner(poly: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = poly[:, -1]
        for p in range(poly.shape[1] - 2, -1, -1):
            value = value * y + poly[:, p]
        return value

    def action(u: torch.Tensor) -> torch.Tensor:
        logdet = 0.0
        for kind, first, second, logabsdet in lean:
            if kind == "affine":
                u, logdet = first @ u + second, logdet + logabsdet
            else:
                u, logdet = horner(first, u), logdet + torch.log(horner(second, u)).sum()
        return 0.5 * u @ u + 0.5 * u.shape[0] * math.log(2 * math.pi) - logdet

    return action


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float = TOL) -> None:
    scale = max(float(expected.abs().max()), 1.0)
    error = float((actual - expected).abs().max()) / scale
    assert error < tol, f"relative error {error:.2e}"


CASES = [
    # (dim, depth, order, standardize, random point); every N, depth, K and option is covered
    (1, 1, 6, False, False),
    (3, 3, 4, True, True),
    (6, 1, 3, False, True),
    (6, 3, 2, True, False),
]


@pytest.mark.parametrize("activation", ["quadratic", "cubic"])
@pytest.mark.parametrize(("dim", "depth", "order", "standardize", "random_point"), CASES)
def test_matches_nested_autodiff(activation, dim, depth, order, standardize, random_point):
    model = _random_model(dim, depth, activation, standardize, seed=dim * 10 + depth)
    point = _inside_point(model, seed=order) if random_point else torch.zeros(dim).double()
    extracted = extract_action(model, order=order, point=point)
    assert extracted.dtype == torch.float64
    assert extracted.orders == tuple(range(1, order + 1))
    torch.testing.assert_close(extracted.point, point)
    assert extracted.constant == pytest.approx(float(model.action(point).detach()), rel=1e-12)
    function = model.action
    if order > 4:  # the same action written leanly: nested autodiff's cost explodes with K
        function = _lean_action(model.stages())
        for x in [point, *(0.3 * torch.randn(4, dim, dtype=torch.float64))]:
            if bool(model.in_domain(x)):
                assert float(function(x)) == pytest.approx(float(model.action(x).detach()))
    for k, expected in enumerate(nested_derivatives(function, point, order), start=1):
        _assert_close(extracted.coefficient(k), expected)


def test_float32_model_gives_float64_and_metadata():
    model = _random_model(3, 2, "quadratic", True, seed=3).float()
    extracted = extract_action(model, order=3)
    assert extracted.dtype == torch.float64
    reference = extract_action(copy.deepcopy(model).double(), order=3)
    for k in (1, 2, 3):  # equal up to the float32 rounding of the stages (e.g. 1 / scale)
        _assert_close(extracted.coefficient(k), reference.coefficient(k), tol=1e-5)
    meta = extracted.metadata
    assert meta["order"] == 3 and meta["activation"] == "quadratic" and meta["depth"] == 2
    assert meta["point"] == [0.0, 0.0, 0.0] and meta["label"] == "data"


def test_symmetric_and_saveable(tmp_path):
    model = _random_model(4, 2, "quadratic", True, seed=5)
    extracted = extract_action(model, order=4)
    tensor = extracted.coefficient(4)
    for permutation in [(1, 0, 2, 3), (0, 2, 1, 3), (0, 1, 3, 2)]:
        _assert_close(tensor.permute(permutation), tensor, tol=1e-13)
    loaded = PolynomialAction.load(extracted.save(tmp_path / "action"))
    torch.testing.assert_close(loaded.coefficient(4), tensor)


# ---------------------------------------------------------------------------- history


@pytest.mark.parametrize("standardize", [True, False])
def test_action_history(standardize):
    model = _random_model(2, 3, "cubic", standardize, seed=7)
    point = _inside_point(model, seed=1)
    history = action_history(model, order=4, point=point)
    labels = [entry.metadata["label"] for entry in history]
    expected = ["latent", "after layer 2", "after layer 1"]
    expected += ["standardized", "data"] if standardize else ["data"]
    assert labels == expected
    latent = history[0]
    z, _ = model(point)
    torch.testing.assert_close(latent.coefficient(1), z.double())
    torch.testing.assert_close(latent.coefficient(2), torch.eye(2, dtype=torch.float64))
    assert float(latent.coefficient(3).abs().max()) == 0.0
    assert float(latent.coefficient(4).abs().max()) == 0.0
    data = extract_action(model, order=4, point=point)
    for k in range(1, 5):
        torch.testing.assert_close(history[-1].coefficient(k), data.coefficient(k))
    stages = model.stages()
    for entry in history[1:-1]:
        rest = _lean_action(stages[entry.metadata["stage"]:])
        assert entry.constant == pytest.approx(float(rest(entry.point)))
        for k, expected_k in enumerate(nested_derivatives(rest, entry.point, 4), start=1):
            _assert_close(entry.coefficient(k), expected_k)


# ---------------------------------------------------------------------------- sympy


def _binary(generator: torch.Generator, shape: tuple[int, ...], scale: int = 8) -> torch.Tensor:
    """Random exact binary fractions k / scale with |k| <= 3."""
    return torch.randint(-3, 4, shape, generator=generator).double() / scale


def test_sympy_expansion_agrees():
    generator = torch.Generator().manual_seed(11)
    model = PolynomialINN(2, 2, activation="quadratic", standardize=True).double()
    with torch.no_grad():
        model.weight.copy_(torch.eye(2) + _binary(generator, (2, 2, 2)))
        model.bias.copy_(_binary(generator, (2, 2)))
        for act in model.activations:
            act.a.copy_(_binary(generator, (2,)))
        model.shift.copy_(torch.tensor([0.5, -0.25]))
        model.scale.copy_(torch.tensor([2.0, 0.5]))
        model.standardized.fill_(True)
    point = torch.tensor([0.25, -0.125], dtype=torch.float64)
    extracted = extract_action(model, order=4, point=point)

    def exact(t: torch.Tensor):
        return [[sp.Rational(float(v)) for v in row] for row in t.reshape(len(t), -1).tolist()]

    x, s = sp.symbols("x0:2"), sp.Symbol("s")
    shift = [sp.Rational(float(v)) for v in model.shift]
    scale = [sp.Rational(float(v)) for v in model.scale]
    u = [(x[i] - shift[i]) / scale[i] for i in range(2)]
    constant = sum(sp.log(v) for v in scale) + sp.log(2 * sp.pi)
    log_arguments = []  # S = constant + |z|^2 / 2 - sum ln(1 + 2 a y)
    for weight, bias, act in zip(model.weight, model.bias, model.activations, strict=True):
        w, b, a = sp.Matrix(exact(weight)), exact(bias[None])[0], exact(act.a[None])[0]
        y = w * sp.Matrix(u)
        y = [y[i] + b[i] for i in range(2)]
        constant -= sp.log(abs(w.det()))
        log_arguments += [1 + 2 * a[i] * y[i] for i in range(2)]
        u = [y[i] + a[i] * y[i] ** 2 for i in range(2)]
    polynomial = sum(v**2 for v in u) / 2
    # S(x0 + s v) = sum_k s^k / k! A^(k) v^k along v = (1, c): for k <= 4 the five values of c
    # determine every entry of A^(k), so this checks the tensors completely
    x0 = [sp.Rational(float(v)) for v in point]
    for c in [sp.Rational(c, 2) for c in (-2, -1, 0, 1, 2)]:
        line = {x[0]: x0[0] + s, x[1]: x0[1] + c * s}
        series = constant + sp.expand(polynomial.subs(line, simultaneous=True))
        for argument in log_arguments:
            argument = sp.expand(argument.subs(line, simultaneous=True))
            series -= sp.series(sp.log(argument), s, 0, 5).removeO()
        series = sp.expand(series)
        assert float(series.coeff(s, 0)) == pytest.approx(extracted.constant, rel=1e-13)
        v = torch.tensor([1.0, float(c)], dtype=torch.float64)
        for k in range(1, 5):
            contracted = extracted.coefficient(k)
            for _ in range(k):
                contracted = contracted @ v
            expected = float(series.coeff(s, k) * math.factorial(k))
            assert float(contracted) == pytest.approx(expected, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------- hand-derived


def test_linear_layer_pullback():
    generator = torch.Generator().manual_seed(2)
    weight = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    a2 = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    a2 = a2 + a2.T
    a3 = torch.randn(3, 3, 3, generator=generator, dtype=torch.float64)
    a3 = sum(a3.permute(p) for p in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1),
                                      (2, 1, 0)])
    stage = AffineStage(DenseLinear(weight), torch.zeros(3, dtype=torch.float64))
    prepared, logabsdet, _ = _backend(3).affine(stage, torch.zeros(3).double(), 0)
    below = _backend(3).pull_affine({2: a2, 3: a3}, prepared)
    torch.testing.assert_close(below[2], weight.T @ a2 @ weight)
    torch.testing.assert_close(
        below[3], torch.einsum("abc,ai,bj,ck->ijk", a3, weight, weight, weight)
    )
    assert logabsdet == pytest.approx(math.log(abs(float(torch.det(weight)))))


def _backend(dim: int) -> DenseBackend:
    return DenseBackend(dim, torch.device("cpu"))


def _pull_activation(above: dict, taylor: torch.Tensor, degree: int, order: int):
    """(coefficients below, their constant) of the activation step from `above` (constant 0)."""
    below, log_total = pullback._pull_activation(_backend(taylor.shape[0]), above, taylor,
                                                 degree, order)
    return below, -log_total


def _taylor_1d(m: float, q: float, t: float) -> torch.Tensor:
    return torch.tensor([[0.0, m, q / 2, t / 6]], dtype=torch.float64)


def _logdet_derivative(m: float, q: float, t: float, n: int) -> float:
    """n-th derivative at 0 of -ln(m + q D + t D^2 / 2), by sympy."""
    dd = sp.Symbol("D")
    return float(sp.diff(-sp.log(m + q * dd + t * dd**2 / 2), dd, n).subs(dd, 0))


def test_one_dimensional_b4_rule():
    m, q, t, a2 = 1.3, 0.7, 0.4, 2.1
    above = {2: torch.tensor([[a2]], dtype=torch.float64)}
    below, constant = _pull_activation(above, _taylor_1d(m, q, t), 3, 4)
    b4 = float(below[4].reshape(()))
    assert b4 - _logdet_derivative(m, q, t, 4) == pytest.approx(a2 * (4 * m * t + 3 * q**2))
    b3 = float(below[3].reshape(()))
    assert b3 - _logdet_derivative(m, q, t, 3) == pytest.approx(a2 * 3 * m * q)
    b2 = float(below[2].reshape(()))
    assert b2 - _logdet_derivative(m, q, t, 2) == pytest.approx(a2 * m**2)
    assert constant == pytest.approx(-math.log(m))


def test_small_activation_pullback_by_hand():
    """N = 2, quadratic e'_i = m_i e_i + q_i e_i^2 / 2 under S = A1 e' + A2 e' e' / 2."""
    m, q = torch.tensor([1.2, 0.8]).double(), torch.tensor([0.5, -0.3]).double()
    a1, a2 = torch.tensor([0.3, -0.7]).double(), torch.tensor([[2.0, 0.4], [0.4, 1.5]]).double()
    taylor = torch.stack([torch.zeros(2).double(), m, q / 2], dim=1)
    below, _ = _pull_activation({1: a1, 2: a2}, taylor, 2, 3)
    eye = torch.eye(2).double()
    ld1, ld2, ld3 = -q / m, q**2 / m**2, -2 * q**3 / m**3  # derivatives of -ln(m + q D)
    torch.testing.assert_close(below[1], a1 * m + ld1)
    torch.testing.assert_close(below[2], a2 * m[:, None] * m[None, :] + torch.diag(a1 * q + ld2))
    expected3 = torch.zeros(2, 2, 2).double()
    for i, j, k in torch.cartesian_prod(*[torch.arange(2)] * 3).tolist():
        expected3[i, j, k] = (
            a2[i, j] * m[i] * q[j] * eye[j, k]
            + a2[j, i] * m[j] * q[i] * eye[i, k]
            + a2[k, i] * m[k] * q[i] * eye[i, j]
            + (ld3[i] if i == j == k else 0.0)
        )
    torch.testing.assert_close(below[3], expected3)


def test_pullback_loops_over_the_catalogue(monkeypatch):
    """Dropping one diagram from the catalogue removes exactly its term from the numbers."""
    m, q, t, a2 = 1.1, 0.6, 0.0, 1.7
    above = {2: torch.tensor([[a2]], dtype=torch.float64)}
    full, _ = _pull_activation(above, _taylor_1d(m, q, t), 2, 4)
    calls = []

    def without_double_fork(activation, order):
        calls.append((activation, order))
        return [d for d in catalogue(activation, order) if (d.order, d.forked2) != (4, 2)]

    monkeypatch.setattr(pullback, "catalogue", without_double_fork)
    cut, _ = _pull_activation(above, _taylor_1d(m, q, t), 2, 4)
    assert calls == [(2, 4)]
    difference = float((full[4] - cut[4]).reshape(()))
    assert difference == pytest.approx(3 * q**2 * a2)
    torch.testing.assert_close(full[3], cut[3])


# ---------------------------------------------------------------------------- errors


def test_point_outside_quadratic_domain_names_layer_and_unit():
    model = PolynomialINN(2, 2, activation="quadratic", standardize=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.eye(2).expand(2, 2, 2))
        model.bias.zero_()
        model.activations[0].a.copy_(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match=r"layer 1, unit 1"):
        extract_action(model, point=torch.tensor([0.0, -1.0]))


@pytest.mark.parametrize("order", [0, -1, 1.5, True, "4"])
def test_bad_order(order):
    with pytest.raises(ValueError, match="order"):
        extract_action(PolynomialINN(2, 1), order=order)


def test_wrong_model_type():
    with pytest.raises(TypeError, match="PolynomialINN"):
        extract_action(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("point", [torch.zeros(3), torch.tensor([0.0, math.nan]), [[0.0, 0.0]]])
def test_bad_point(point):
    with pytest.raises(ValueError, match="point"):
        extract_action(PolynomialINN(2, 1), point=point)


def test_memory_guard():
    with pytest.raises(MemoryError, match="max_bytes"):
        extract_action(PolynomialINN(4, 1), order=4, max_bytes=1000)
    with pytest.raises(MemoryError, match="GiB"):  # default limit: available memory
        extract_action(PolynomialINN(300, 1), order=8)
    with pytest.raises(MemoryError):
        action_history(PolynomialINN(4, 3), order=4, max_bytes=8 * 5 * 341)
    extract_action(PolynomialINN(4, 3), order=4, max_bytes=8 * 5 * 341)  # fits without history


@pytest.mark.parametrize(
    ("dim", "order", "options"),
    [(4, 4, {}), (3, 5, {}), (6, 4, {"lattice": (6,)}), (12, 5, {"lattice": (3, 4)}),
     (9, 4, {"lattice": (9,), "kernel_radius": 1})],
)
def test_extraction_cost_is_the_memory_the_extraction_checks(dim, order, options):
    from inntheory.extraction import extraction_cost

    model = PolynomialINN(dim, 2, **options).double()
    cost = extraction_cost(dim, order, 2, "cubic", lattice=options.get("lattice"),
                           kernel_radius=options.get("kernel_radius"))
    peak = int(cost["peak_bytes"])
    assert peak == cost["peak_bytes"]  # exact at these sizes
    extract_action(model, order=order, max_bytes=peak)
    with pytest.raises(MemoryError, match="GiB"):
        extract_action(model, order=order, max_bytes=peak - 1)


def test_extraction_cost_of_the_compressed_pullback_counts_window_couplings():
    from inntheory.extraction import extraction_cost

    dense = extraction_cost(16, 4, 2, "cubic")
    local = extraction_cost(16, 4, 2, "cubic", lattice=(4, 4), kernel_radius=1)
    full = extraction_cost(16, 4, 2, "cubic", lattice=(4, 4))
    assert dense["placements"] == local["placements"] == full["placements"]
    assert full["bytes"] == 8 * sum(16 ** (k - 1) for k in range(1, 5))
    assert local["bytes"] == full["bytes"]  # the window min(L, 2 R + 1) is the whole 4 x 4
    wide = extraction_cost(100, 4, 1, "cubic", lattice=(10, 10), kernel_radius=1)
    # coupling range 2 depth r = 2: the window 5 x 5
    assert wide["bytes"] == 8 * sum(25 ** (k - 1) for k in range(1, 5))
    assert wide["updates"] < extraction_cost(100, 4, 1, "cubic")["updates"] / 100


def test_compressed_pullback_of_high_order_on_a_2d_lattice_equals_dense():
    # order 6 on a 2-D lattice: Fourier transforms over 2 (K - 1) = 10 axes
    torch.manual_seed(1)
    model = PolynomialINN(6, 1, lattice=(2, 3)).double()
    with torch.no_grad():
        model.kernel.normal_(0.0, 0.3)
        model.kernel[:, 0, 0] += 1.0
        model.activations[0].t.normal_(0.0, 0.5)
    point = torch.full((6,), 0.2, dtype=torch.float64)
    compressed = extract_action(model, order=6, point=point)
    dense = extract_action(model, order=6, point=point, compressed=False)
    for k in range(1, 7):
        _assert_close(compressed.coefficient(k), dense.coefficient(k), tol=1e-12)
