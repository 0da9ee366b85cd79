"""Tests of `inntheory.training`: fit quality, reproducibility, the non-finite guard, devices."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from inntheory.inn import PolynomialINN
from inntheory.training import TrainingHistory, resolve_device, train

DTYPE = torch.float64


def paired_excess(model_action: torch.Tensor, true_action: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of the per-sample NLL difference model - reference."""
    difference = (model_action - true_action).detach()
    return float(difference.mean()), float(difference.std() / math.sqrt(difference.numel()))


def test_gaussian_data_fitted_to_analytic_nll() -> None:
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0], dtype=DTYPE)
    covariance = torch.tensor([[1.0, 0.6], [0.6, 2.0]], dtype=DTYPE)
    truth = torch.distributions.MultivariateNormal(mean, covariance)
    data, test = truth.sample((4000,)), truth.sample((20000,))
    model = PolynomialINN(2, 1, "cubic").to(DTYPE)
    history = train(model, data, steps=300, progress=False, device="cpu")
    excess, error = paired_excess(model.action(test), -truth.log_prob(test))
    # A maximum-likelihood fit with P parameters has an expected excess (KL) of P / (2 n).
    parameters = sum(p.numel() for p in model.parameters())
    assert -4 * error < excess < 4 * error + 2 * parameters / (2 * 0.9 * len(data))
    assert history.rejected_steps == 0 and history.outside_fraction == 0.0
    assert history.best_val_nll == min(history.val_nll)


def test_unimodal_theory_beats_best_gaussian_fit() -> None:
    from inntheory import preset, sample

    theory = preset("unimodal")
    data = sample(theory, 6000, seed=1, progress=False).x
    test = sample(theory, 20000, seed=2, progress=False).x
    gaussian = torch.distributions.MultivariateNormal(data.mean(0), torch.cov(data.T))
    torch.manual_seed(0)
    model = PolynomialINN(theory.dim, 1, "cubic")
    train(model, data, steps=300, progress=False, device="cpu")
    gain, error = paired_excess(-gaussian.log_prob(test), model.double().action(test))
    # The exact theory is ~0.016 nats per configuration better than its best Gaussian.
    assert gain > 5 * error and gain > 0.003


def test_seeded_cpu_training_is_reproducible() -> None:
    data = torch.randn(600, 3) ** 3
    histories, states = [], []
    for _ in range(2):
        torch.manual_seed(7)
        model = PolynomialINN(3, 2, "quadratic")
        histories.append(train(model, data, steps=40, eval_every=10, seed=3, progress=False))
        states.append(model.state_dict())
    assert histories[0].val_nll == histories[1].val_nll
    for key, value in states[0].items():
        torch.testing.assert_close(states[1][key], value, rtol=0, atol=0)


def test_history_and_training_info_are_json_able(tmp_path) -> None:
    torch.manual_seed(0)
    model = PolynomialINN(2, 1)
    history = train(model, np.random.default_rng(0).normal(size=(300, 2)), steps=30,
                    eval_every=10, progress=False)
    assert isinstance(history, TrainingHistory)
    assert history.steps == [0, 10, 20, 30] and len(history.train_nll) == 4
    assert history.device == "cpu" and model.weight.device.type == "cpu"
    json.dumps(history.to_dict())
    assert model.training_info["n_train"] + model.training_info["n_val"] == 300
    assert model.is_standardized
    model.save(tmp_path / "m.pt")
    assert PolynomialINN.load(tmp_path / "m.pt").training_info == model.training_info


def test_non_finite_gradient_step_is_rejected() -> None:
    torch.manual_seed(0)
    model = PolynomialINN(2, 1)
    calls = {"n": 0}

    def poison(gradient: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return gradient * math.nan if calls["n"] in (3, 4) else gradient

    model.weight.register_hook(poison)
    history = train(model, torch.randn(400, 2), steps=20, eval_every=5, progress=False)
    assert history.rejected_steps == 2 and history.rejected_at == [3, 4]
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert all(math.isfinite(v) for v in history.val_nll)


def test_step_that_breaks_the_domain_is_undone() -> None:
    # A huge learning rate drives quadratic pre-activations across the fold; such steps must
    # be undone and the model left finite on its training data.
    torch.manual_seed(0)
    model = PolynomialINN(2, 2, "quadratic")
    data = torch.randn(500, 2) ** 3
    history = train(model, data, steps=60, lr=5.0, eval_every=5, progress=False)
    assert history.rejected_steps > 0
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert math.isfinite(history.best_val_nll)


def test_data_validation() -> None:
    model = PolynomialINN(3, 1)
    with pytest.raises(ValueError, match="3 NaN"):
        bad = torch.randn(10, 3)
        bad[1, :] = math.nan
        train(model, bad, progress=False)
    with pytest.raises(ValueError, match="empty"):
        train(model, torch.zeros(0, 3), progress=False)
    with pytest.raises(ValueError, match="N = 2 columns but the model has dim = 3"):
        train(model, torch.randn(10, 2), progress=False)
    with pytest.raises(ValueError, match=r"shape \(n, N\)"):
        train(model, torch.randn(10), progress=False)
    with pytest.raises(TypeError, match="torch tensor or numpy array"):
        train(model, [[0.0, 1.0, 2.0]], progress=False)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        train(model, torch.randn(10, 3), steps=0, progress=False)
    with pytest.raises(ValueError, match="validation"):
        train(model, torch.randn(10, 3), validation=1.0, progress=False)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu-please")
