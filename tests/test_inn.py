"""Tests of `inntheory.model.inn`: exact density, inverse, sampling, stages, persistence,
validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import jacrev, vmap

from inntheory.model.inn import PolynomialINN
from inntheory.model.linear import DenseLinear, Scaling
from inntheory.model.stages import ActivationStage, AffineStage

DTYPE = torch.float64


def random_model(dim: int, depth: int, activation: str, seed: int = 0) -> PolynomialINN:
    """A float64 network with O(1) random weights and clearly non-linear activations."""
    torch.manual_seed(seed)
    model = PolynomialINN(dim, depth, activation).to(DTYPE)
    with torch.no_grad():
        model.weight.copy_(torch.eye(dim) + 0.3 * torch.randn(depth, dim, dim) / math.sqrt(dim))
        model.bias.copy_(0.2 * torch.randn(depth, dim))
        for act in model.activations:
            if activation == "quadratic":
                act.a.copy_(0.1 * torch.randn(dim))
            else:
                act.t.copy_(torch.randn(dim))
                act.r.copy_(torch.randn(dim) - 3.0)
    model.standardize_to(torch.randn(50, dim, dtype=DTYPE) * 2 + 1)
    return model


@pytest.mark.parametrize("activation", ["quadratic", "cubic"])
def test_logdet_equals_slogdet_of_autograd_jacobian(activation: str) -> None:
    model = random_model(4, 3, activation)
    x = torch.randn(20, 4, dtype=DTYPE)
    inside = model.in_domain(x)
    assert inside.sum() >= 10
    x = x[inside]
    jacobian = vmap(jacrev(lambda row: model._flow(row[None])[0][0]))(x)
    expected = torch.linalg.slogdet(jacobian).logabsdet
    z, logdet = model(x)
    torch.testing.assert_close(logdet, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(z, model._flow(x)[0])


@pytest.mark.parametrize("activation", ["quadratic", "cubic"])
def test_action_is_gaussian_action_of_latent_minus_logdet(activation: str) -> None:
    model = random_model(3, 2, activation)
    x = torch.randn(30, 3, dtype=DTYPE)
    x = x[model.in_domain(x)]
    z, logdet = model(x)
    normal = torch.distributions.Normal(torch.zeros((), dtype=DTYPE), 1.0)
    torch.testing.assert_close(model.log_prob(x), normal.log_prob(z).sum(1) + logdet)
    torch.testing.assert_close(model.action(x), -model.log_prob(x))


@pytest.mark.parametrize("activation", ["quadratic", "cubic"])
def test_inverse_undoes_forward(activation: str) -> None:
    model = random_model(5, 4, activation)
    x = torch.randn(200, 5, dtype=DTYPE) * 2
    x = x[model.in_domain(x)]
    z, _ = model(x)
    # Four layers amplify the activations' root-finding error (~eps) somewhat.
    torch.testing.assert_close(model.inverse(z), x, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(model(model.inverse(z))[0], z, rtol=1e-7, atol=1e-7)


def test_stages_are_objects_in_data_to_latent_order() -> None:
    # that stages compose to the forward map for every kind of model: test_contracts_model.py
    model = random_model(3, 2, "cubic")
    stages = model.stages()
    kinds = [type(stage) for stage in stages]
    assert kinds == [AffineStage] + [AffineStage, ActivationStage] * 2
    assert isinstance(stages[0].linear, Scaling)
    torch.testing.assert_close(stages[0].linear.diagonal, 1 / model.scale)
    torch.testing.assert_close(stages[0].bias, -model.shift / model.scale)
    assert all(isinstance(stage.linear, DenseLinear) for stage in stages[1::2])
    assert [stage.activation for stage in stages[2::2]] == list(model.activations)
    weights = [stage.linear.weight for stage in stages[1::2]]
    biases = [stage.bias for stage in stages if isinstance(stage, AffineStage)]
    assert not any(t.requires_grad for t in (*biases, *weights))
    with torch.no_grad():
        model.weight.add_(1.0)  # the stages hold copies
    assert torch.equal(stages[1].linear.weight + 1.0, model.weight[0])
    unset = PolynomialINN(3, 1)
    assert [type(stage) for stage in unset.stages()] == [AffineStage, ActivationStage]


def test_cubic_density_integrates_to_one_in_1d() -> None:
    model = random_model(1, 3, "cubic", seed=3)
    x = torch.linspace(-40, 40, 400001, dtype=DTYPE)[:, None]
    density = torch.exp(-model.action(x)).detach()
    total = torch.trapezoid(density, x[:, 0])
    assert abs(float(total) - 1) < 1e-6
    assert density[0] < 1e-12 and density[-1] < 1e-12


def test_quadratic_density_mass_equals_latent_mass_with_pre_image_in_1d() -> None:
    # Depth 1, W = 1, b = 0, no standardisation: the image of the domain is
    # (-1/(4a), inf), so the density integrates to P(z > -1/(4a)).
    model = PolynomialINN(1, 1, "quadratic").to(DTYPE)
    a = 0.3
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.activations[0].a.fill_(a)
    fold = -1 / (2 * a)
    x = torch.linspace(fold, 40, 400001, dtype=DTYPE)[1:, None]
    total = float(torch.trapezoid(torch.exp(-model.action(x)).detach(), x[:, 0]))
    expected = 1 - 0.5 * math.erfc(1 / (4 * a) / math.sqrt(2))
    assert abs(total - expected) < 1e-6
    assert math.isinf(model.action(torch.tensor([fold - 0.1], dtype=DTYPE)).item())
    n = 20000
    with pytest.warns(RuntimeWarning, match="no pre-image"):
        samples = model.sample(n, seed=1, redraw=False)
    standard_error = math.sqrt(expected * (1 - expected) / n)
    assert abs(samples.shape[0] / n - expected) < 4 * standard_error
    assert abs(model.last_sample_invalid - (1 - expected)) < 4 * standard_error
    assert bool(model.in_domain(samples).all())


def test_outside_domain_is_infinite_never_finite() -> None:
    model = PolynomialINN(2, 1, "quadratic").to(DTYPE)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.activations[0].a.fill_(0.5)
    x = torch.tensor([[0.0, 0.0], [-2.0, 0.0], [0.0, -1.5]], dtype=DTYPE)
    action = model.action(x).detach()
    assert math.isfinite(action[0]) and bool(torch.isinf(action[1:]).all())
    assert bool((action[1:] > 0).all())
    assert bool(torch.isneginf(model.log_prob(x)[1:]).all())
    assert bool(torch.isneginf(model(x)[1][1:]).all())
    assert model.in_domain(x).tolist() == [True, False, False]
    assert model.outside_fraction(x) == pytest.approx(2 / 3)
    gradient = model.grad(x)
    assert bool(torch.isfinite(gradient[0]).all()) and bool(torch.isnan(gradient[1:]).all())
    assert bool(torch.isnan(model.inverse(torch.tensor([[-1.0, 0.0]], dtype=DTYPE))).all())


def test_grad_matches_finite_differences() -> None:
    model = random_model(3, 2, "cubic")
    x = torch.randn(4, 3, dtype=DTYPE)
    gradient = model.grad(x)
    step = 1e-6
    for i in range(3):
        shift = torch.zeros(3, dtype=DTYPE)
        shift[i] = step
        numeric = (model.action(x + shift) - model.action(x - shift)) / (2 * step)
        torch.testing.assert_close(gradient[:, i], numeric.detach(), rtol=1e-6, atol=1e-7)
    assert model.grad(x[0]).shape == (3,)
    assert model.action(x[0]).shape == ()


def test_sample_is_seeded_and_follows_the_model() -> None:
    model = random_model(2, 2, "cubic")
    first, second = model.sample(3000, seed=5), model.sample(3000, seed=5)
    assert first.shape == (3000, 2)
    torch.testing.assert_close(first, second)
    assert model.last_sample_invalid == 0.0
    # The latent images of samples are standard normal: check mean and covariance.
    z, _ = model(first)
    standard_error = 1 / math.sqrt(3000)
    assert float(z.mean(0).abs().max()) < 4 * standard_error
    covariance = torch.cov(z.T)
    assert float((covariance - torch.eye(2, dtype=DTYPE)).abs().max()) < 6 * standard_error


def test_sample_redraws_to_n_rows_for_quadratic() -> None:
    model = PolynomialINN(1, 1, "quadratic").to(DTYPE)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.activations[0].a.fill_(0.5)
    with pytest.warns(RuntimeWarning):
        samples = model.sample(1000, seed=0)
    assert samples.shape == (1000, 1) and bool(torch.isfinite(samples).all())
    with pytest.raises(ValueError, match="positive int"):
        model.sample(0)


def test_save_load_round_trip(tmp_path) -> None:
    model = random_model(3, 2, "quadratic")
    model.training_info = {"best_val_nll": 1.25, "steps_run": 10}
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = PolynomialINN.load(path)
    assert loaded.config == model.config and loaded.training_info == model.training_info
    assert loaded.weight.dtype == DTYPE and loaded.is_standardized
    x = torch.randn(50, 3, dtype=DTYPE)
    x = x[model.in_domain(x)]
    torch.testing.assert_close(loaded.action(x), model.action(x), rtol=0, atol=0)
    torch.testing.assert_close(loaded.inverse(model(x)[0]), x, rtol=1e-9, atol=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_load_rejects_missing_corrupt_and_foreign_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no saved PolynomialINN"):
        PolynomialINN.load(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a torch archive")
    with pytest.raises(ValueError, match="not a readable PolynomialINN"):
        PolynomialINN.load(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="does not hold a saved PolynomialINN"):
        PolynomialINN.load(foreign)
    truncated = tmp_path / "truncated.pt"
    PolynomialINN(2, 1).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable PolynomialINN"):
        PolynomialINN.load(truncated)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="depth must be >= 1"):
        PolynomialINN(3, 0)
    with pytest.raises(ValueError, match="dim must be >= 1"):
        PolynomialINN(0, 2)
    with pytest.raises(TypeError, match="depth must be an int"):
        PolynomialINN(3, 1.5)
    with pytest.raises(ValueError, match="unknown activation 'relu'; known: cubic, quadratic"):
        PolynomialINN(3, 1, "relu")


def test_input_validation() -> None:
    model = PolynomialINN(3, 1)
    with pytest.raises(ValueError, match=r"shape \(n, 3\) or \(3,\), got \(4, 2\)"):
        model.action(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="1 NaN or inf"):
        model.action(torch.tensor([[0.0, math.nan, 0.0]]))
    with pytest.raises(ValueError, match="2 NaN or inf"):
        model.inverse(torch.tensor([math.inf, 0.0, -math.inf]))
    with pytest.raises(TypeError, match="torch tensor or numpy array"):
        model.action([[0.0, 0.0, 0.0]])
    assert model.action(np.zeros((2, 3))).shape == (2,)
    with pytest.raises(ValueError, match="constant"):
        model.standardize_to(torch.ones(10, 3))
    with pytest.raises(ValueError, match="standardize=False"):
        PolynomialINN(3, 1, standardize=False).standardize_to(torch.randn(10, 3))


# ---------------------------------------------------------------- persistence
# (the save/load round trip of every kind of model: test_contracts_model.py)


def test_version_1_file_written_by_the_previous_code_still_loads() -> None:
    # tests/data/polynomial_inn_v1.pt: written by the main branch at 67c0432 (format
    # version 1, dense cubic, dim 3, depth 2, standardised); the actions below were printed
    # by that code for x = linspace(-2, 2, 12).reshape(4, 3).
    path = Path(__file__).parent / "data" / "polynomial_inn_v1.pt"
    assert torch.load(path, weights_only=True)["version"] == 1
    model = PolynomialINN.load(path)
    assert model.config == {
        "dim": 3, "depth": 2, "activation": "cubic", "standardize": True,
        "lattice": None, "kernel_radius": None, "odd": False,
    }
    assert model.is_standardized and model.training_info["note"].startswith("written by")
    x = torch.linspace(-2, 2, 12, dtype=DTYPE).reshape(4, 3)
    expected = torch.tensor(
        [10.451501853163384, 6.610879606725165, 5.536254956521232, 4.407257618868222],
        dtype=DTYPE,
    )
    torch.testing.assert_close(model.action(x).detach(), expected, rtol=1e-12, atol=0)


def _tampered(tmp_path, model: PolynomialINN, name: str, change) -> Path:
    """Save `model`, then rewrite the file with state_dict[name] changed by `change`."""
    path = tmp_path / f"{name}.pt"
    model.save(path)
    payload = torch.load(path, weights_only=True)
    change(payload["state_dict"][name])
    torch.save(payload, path)
    return path


def _set(index, value):
    def change(tensor: torch.Tensor) -> None:
        tensor[index] = value

    return change


LOAD_PROBLEMS = [
    ({}, "weight", _set((0, 1, 2), math.nan), "weight has 1 NaN or inf entries"),
    ({}, "activations.1.t", _set(0, math.inf), r"activations.1.t has 1 NaN or inf"),
    ({}, "scale", _set(1, 0.0), "standardisation scale must be > 0"),
    ({}, "scale", _set(0, -2.0), "standardisation scale must be > 0"),
    ({}, "scale", _set(0, math.inf), "scale has 1 NaN or inf entries"),
    ({}, "weight", _set((1, 2), 0.0), "weight of layer 2 is singular"),
    # kernel (1/4, 1/4, 1/4, 1/4): the circulant has rank 1 (eigenvalues 1, 0, 0, 0)
    ({"lattice": (4,)}, "kernel", _set(0, 0.25), "weight of layer 1 is singular"),
    ({"lattice": (4,)}, "kernel", _set((1, 3), math.nan), "kernel has 1 NaN or inf"),
    ({"lattice": (4,)}, "scale", _set(2, 3.0), "one shift and one scale"),
    ({"odd": True}, "shift", _set(0, 1.0), "odd model's standardisation shift must be 0"),
]


@pytest.mark.parametrize(("options", "name", "change", "message"), LOAD_PROBLEMS)
def test_load_rejects_unusable_parameters(tmp_path, options, name, change, message) -> None:
    torch.manual_seed(0)
    model = PolynomialINN(4, 2, **options).to(DTYPE)
    model.standardize_to(torch.randn(20, 4, dtype=DTYPE))
    untouched = _tampered(tmp_path, model, name, lambda tensor: None)
    assert isinstance(PolynomialINN.load(untouched), PolynomialINN)
    path = _tampered(tmp_path, model, name, change)
    with pytest.raises(ValueError, match=message):
        PolynomialINN.load(path)


def test_a_float32_overflow_is_named_as_such() -> None:
    model = PolynomialINN(2, depth=1)  # float32
    x = torch.tensor([[1e300, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="beyond the range of the model's dtype"):
        model.action(x)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.action(torch.tensor([[math.nan, 0.0]]))


def test_load_of_a_pickled_file_never_advises_unsafe_loading(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "inntheory.PolynomialINN", "payload": ValueError("not a tensor")},
               path)
    with pytest.raises(ValueError) as error:
        PolynomialINN.load(path)
    assert "weights_only" not in str(error.value) and "pickle" in str(error.value)
