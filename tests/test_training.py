"""Tests of `inntheory.model.training`: fit quality, reproducibility, the non-finite guard,
devices."""

from __future__ import annotations

import copy
import json
import math
import re
import warnings

import numpy as np
import pytest
import torch

import inntheory.model.polish as polishing
import inntheory.model.training as training
from inntheory.extraction import extract_action
from inntheory.model.inn import PolynomialINN
from inntheory.model.training import TrainingHistory, resolve_device, train
from inntheory.sampling import sample
from inntheory.theories import preset

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
    adam = [s for s, stage in zip(history.steps, history.stage, strict=True) if stage == "adam"]
    assert adam == [0, 10, 20, 30] and history.steps[:4] == adam
    assert len(history.train_nll) == len(history.val_nll) == len(history.stage)
    assert history.device == "cpu" and model.weight.device.type == "cpu"
    assert json.loads(json.dumps(history.to_dict()))["stage"] == history.stage
    assert model.training_info["n_train"] + model.training_info["n_val"] == 300
    assert model.training_info["steps_run"] == 30
    for key in ("polish", "polish_iterations", "grad_norm", "converged", "polish_seconds"):
        assert model.training_info[key] == history.to_dict()[key if key != "polish" else
                                                              "polished"]
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


# ------------------------------------------------------------------------------ polish


def gaussian_data(n: int, seed: int = 0) -> torch.Tensor:
    covariance = torch.tensor([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.5]], dtype=DTYPE)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, dtype=DTYPE, generator=generator) @ torch.linalg.cholesky(
        covariance).T


def split(data: torch.Tensor, validation: float, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """The training and validation parts `train` makes of `data` (same seeded split)."""
    n_val = max(1, round(validation * len(data)))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data[order[n_val:]], data[order[:n_val]]


def fit(data: torch.Tensor, depth: int = 1, dtype: torch.dtype = DTYPE, **options):
    torch.manual_seed(0)
    model = PolynomialINN(data.shape[1], depth).to(dtype)
    return model, train(model, data, progress=False, device="cpu", **options)


@pytest.mark.parametrize("method", ["fisher", "lbfgs"])
def test_polish_lowers_the_training_nll_and_converges(method) -> None:
    # validation=0 with n <= 10^4: the tracked NLL is the whole training split's, so the
    # kept state is the polish's end point.
    data = gaussian_data(3000)
    adam, adam_history = fit(data, steps=200, validation=0, polish=False)
    model, history = fit(data, steps=200, validation=0, polish=method, polish_tol=1e-6)
    with torch.no_grad():
        before, after = float(adam.action(data).mean()), float(model.action(data).mean())
    assert after < before - 1e-4
    assert history.polished and not adam_history.polished
    assert history.converged and history.grad_norm <= 1e-6
    assert history.polish_stop == "tolerance" and history.polish_method == method
    assert history.polish_evaluations > history.polish_iterations  # >= 1 pass per iteration
    assert adam_history.grad_norm > 1e-3 and not adam_history.converged
    # History: Adam's evaluations first, then one per polish chunk; step numbers continue.
    stages = history.stage
    assert len(stages) == len(history.steps) == len(history.val_nll) == len(history.train_nll)
    first = stages.index("polish")
    assert set(stages[:first]) == {"adam"} and set(stages[first:]) == {"polish"}
    assert history.steps[:first] == adam_history.steps
    assert history.val_nll[:first] == adam_history.val_nll
    assert history.steps[-1] == history.steps[first - 1] + history.polish_iterations
    assert all(b > a for a, b in zip(history.steps, history.steps[1:], strict=False))
    assert 0 < history.polish_iterations <= 500 and history.polish_seconds > 0
    assert history.best_val_nll == pytest.approx(after, rel=1e-12)
    assert history.best_val_nll == min(history.val_nll)
    assert model.training_info["converged"] and model.training_info["polish"]
    assert adam_history.polish_iterations == 0 and adam_history.polish_seconds == 0.0


@pytest.mark.parametrize("method", ["fisher", "lbfgs"])
def test_polish_never_ends_at_a_worse_validation_nll(method) -> None:
    # 20 training points and a depth-2 cubic network (42 parameters): the training optimum
    # overfits badly, so the polish's iterates are far worse on the validation half.
    data = torch.randn(40, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(1)) ** 3
    options = {"depth": 2, "steps": 30, "eval_every": 10, "validation": 0.5}
    start, start_history = fit(data, polish=False, **options)
    model, history = fit(data, polish=method, **options)
    polish_val = [v for v, s in zip(history.val_nll, history.stage, strict=True)
                  if s == "polish"]
    assert polish_val and max(polish_val) > start_history.best_val_nll + 1.0
    # The polish ran on (no validation patience) and ended worse on validation than it began:
    # the start is what is kept.
    assert history.polish_stop in {"tolerance", "steps", "stalled"}
    assert history.polish_iterations > 0
    _, val_x = split(data, 0.5)
    with torch.no_grad():
        kept = float(model.action(val_x).mean())
    assert kept == pytest.approx(history.best_val_nll, rel=1e-12)
    assert kept <= start_history.best_val_nll
    # 20 validation samples are too few for a standard error: the lower mean wins.
    assert history.kept == "adam" and history.keep_difference > 0
    for key, value in start.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


def test_float32_model_is_polished_in_float64_and_written_back() -> None:
    data = gaussian_data(3000)
    model, history = fit(data, dtype=torch.float32, steps=200, validation=0.2, polish=True)
    _, start_history = fit(data, dtype=torch.float32, steps=200, validation=0.2, polish=False)
    assert next(model.parameters()).dtype == torch.float32
    assert history.polish_iterations > 0
    # The polished state is kept unless it is worse by more than 2 standard errors.
    assert history.kept == "polish" and history.keep_difference <= 2 * history.keep_se
    assert history.best_val_nll - start_history.best_val_nll == pytest.approx(
        history.keep_difference, abs=1e-5)
    _, val_x = split(data, 0.2)
    with torch.no_grad():
        kept = float(model.action(val_x.float()).mean())
    assert kept == pytest.approx(history.best_val_nll, rel=1e-6)


def test_polish_turns_away_a_non_finite_trial_point() -> None:
    data = gaussian_data(400, seed=5)[:, :2]
    clean, clean_history = fit(data, steps=10, eval_every=5, polish="lbfgs")
    torch.manual_seed(0)
    model = PolynomialINN(2, 1).to(DTYPE)
    calls = {"n": 0}

    def poison(gradient: torch.Tensor) -> torch.Tensor:
        # 10 Adam steps, the polish start point, its cached reuse, then line-search trials:
        # call 13 is a trial point of the first L-BFGS chunk.
        calls["n"] += 1
        return gradient * math.nan if calls["n"] == 13 else gradient

    model.weight.register_hook(poison)
    history = train(model, data, steps=10, eval_every=5, polish="lbfgs", progress=False)
    assert history.polish_rejected_trials == 1 and history.rejected_steps == 0
    assert clean_history.polish_rejected_trials == 0
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert all(math.isfinite(v) for v in history.val_nll)
    # The search backtracked and went on: L-BFGS ends at the same optimum as without poison.
    assert history.train_nll[-1] == pytest.approx(clean_history.train_nll[-1], abs=1e-7)
    assert history.best_val_nll <= history.val_nll[history.stage.index("polish") - 1]


@pytest.mark.parametrize("method", ["fisher", "lbfgs"])
def test_polish_of_a_quadratic_model_stays_in_its_domain(method) -> None:
    # The polish tries points that fold the quadratic activation on the data; they must be
    # turned away, never accepted.
    torch.manual_seed(1)
    model = PolynomialINN(2, 2, "quadratic").to(DTYPE)
    data = torch.randn(500, 2, dtype=DTYPE, generator=torch.Generator().manual_seed(1)) ** 3
    history = train(model, data, steps=60, eval_every=5, polish=method, progress=False)
    assert history.polish_rejected_trials > 0 and history.polish_iterations > 0
    assert all(math.isfinite(v) for v, s in zip(history.train_nll, history.stage, strict=True)
               if s == "polish")
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert math.isfinite(history.best_val_nll)


def test_polish_false_is_the_adam_path() -> None:
    data = torch.randn(600, 3, dtype=torch.float32, generator=torch.Generator().manual_seed(2))
    adam, adam_history = fit(data, dtype=torch.float32, steps=40, eval_every=10, polish=False)
    again, again_history = fit(data, dtype=torch.float32, steps=40, eval_every=10,
                               polish=False)
    polished, polished_history = fit(data, dtype=torch.float32, steps=40, eval_every=10,
                                     polish=True)
    assert adam_history.stage == ["adam"] * 5 and adam_history.steps == [0, 10, 20, 30, 40]
    assert not adam_history.polished and adam_history.polish_iterations == 0
    assert adam_history.polish_stop == "" and adam_history.polish_evaluations == 0
    assert math.isfinite(adam_history.grad_norm) and adam_history.grad_norm > 0
    assert adam_history.val_nll == again_history.val_nll
    # The polish stage starts from exactly what polish=False returns.
    assert polished_history.val_nll[:5] == adam_history.val_nll
    assert polished_history.steps[:5] == adam_history.steps
    for key, value in adam.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"polish": "yes"}, "polish must be True, False, 'auto', 'fisher' or 'lbfgs'"),
        ({"polish": 1}, "polish must be True, False, 'auto', 'fisher' or 'lbfgs'"),
        ({"polish": None}, "polish must be True, False, 'auto', 'fisher' or 'lbfgs'"),
        ({"polish_steps": 0}, "polish_steps must be a positive int"),
        ({"polish_tol": 0.0}, "polish_tol must be a positive finite number"),
        ({"polish_tol": math.nan}, "polish_tol must be a positive finite number"),
    ],
)
def test_bad_polish_options(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        train(PolynomialINN(2, 1), torch.randn(50, 2), progress=False, **options)


def test_auto_polish_decides_by_predicted_time_and_memory(monkeypatch) -> None:
    data = gaussian_data(3000)
    train64 = data[:2700]
    model = PolynomialINN(3, 1).to(DTYPE)
    model.standardize_to(train64)
    monkeypatch.setattr(polishing, "available_bytes", lambda device, default: 64e9)
    plan = polishing.plan("auto", model, train64)
    assert plan.run and plan.method == "fisher"
    assert re.fullmatch(r"fisher: predicted \S+ s, within the budget of 600 s", plan.reason)
    plan = polishing.plan("auto", model, train64, budget=0.0)
    assert not plan.run and "over the budget of 0 s" in plan.reason
    assert polishing.plan(True, model, train64, budget=0.0).run
    assert polishing.plan("lbfgs", model, train64, budget=0.0).method == "lbfgs"
    assert not polishing.plan(False, model, train64).run
    # The memory test: data (n N) plus one chunk's graph, 8 bytes each, within half the free
    # memory.
    need = 8 * (2700 * 3 + 10 * 2700 * 3 * 1)
    monkeypatch.setattr(polishing, "available_bytes", lambda device, default: 2 * need)
    assert polishing.plan("auto", model, train64).run
    monkeypatch.setattr(polishing, "available_bytes", lambda device, default: 2 * need - 1)
    plan = polishing.plan("auto", model, train64)
    assert not plan.run and "more than half of the" in plan.reason
    # And train() follows the decision and records it.
    _, history = fit(data, steps=20, polish="auto")
    assert not history.polished and set(history.stage) == {"adam"}
    assert "GB free" in history.polish_decision and history.polish_method == ""
    monkeypatch.setattr(polishing, "available_bytes", lambda device, default: math.inf)
    _, history = fit(data, steps=20, polish="auto")
    assert history.polished and history.stage[-1] == "polish"
    assert history.polish_decision.startswith("fisher: predicted")
    assert history.polish_method.startswith("fisher")
    monkeypatch.setattr(polishing, "AUTO_BUDGET", 0.0)
    _, history = fit(data, steps=20, polish="auto")
    assert not history.polished and "over the budget of 0 s" in history.polish_decision


def test_auto_polish_stops_at_its_time_budget_and_says_so(monkeypatch) -> None:
    # A prediction that fits a tiny budget, a run that cannot: "auto" stops at the first
    # record after the budget (one chunk of Fisher iterations) and warns; polish=True does
    # not stop by time.
    data = gaussian_data(3000)
    monkeypatch.setattr(polishing, "_probe", lambda model, x, method: (0.0, 10))
    monkeypatch.setattr(polishing, "AUTO_BUDGET", 1e-9)
    with pytest.warns(RuntimeWarning, match="ran out of the time budget of polish='auto'"):
        _, history = fit(data, steps=20, polish="auto", polish_tol=1e-14)
    assert history.polish_decision == "fisher: predicted 0 s, within the budget of 1e-09 s"
    assert history.polish_stop == "budget"
    assert 1 <= history.polish_iterations <= polishing.FisherScoring.chunk
    _, explicit = fit(data, steps=100, validation=0, polish=True, polish_tol=1e-6)
    assert explicit.polish_stop == "tolerance"


def test_fisher_scoring_is_chosen_up_to_its_size_and_counts_active_parameters() -> None:
    # A lattice network of radius 1 on a 6 x 6 torus: kernels of 36 entries, 9 of them
    # active; the count is what decides the method.
    data = torch.randn(500, 36, dtype=DTYPE, generator=torch.Generator().manual_seed(4))
    model = PolynomialINN(36, 2, lattice=(6, 6), kernel_radius=1).to(DTYPE)
    model.standardize_to(data)
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    active = 2 * 9 + sum(p.numel() for name, p in model.named_parameters()
                         if p.requires_grad and name != "kernel")
    plan = polishing.plan(True, model, data)
    assert plan.method == "fisher" and f"{active} active parameters" in plan.reason
    assert active < total
    dense = PolynomialINN(48, 1).to(DTYPE)  # 48^2 + 4 x 48 > 2048 active parameters
    dense.standardize_to(torch.randn(100, 48, dtype=DTYPE))
    assert polishing.plan(True, dense, torch.randn(100, 48, dtype=DTYPE)).method == (
        "lbfgs")


@pytest.mark.parametrize("options", [{}, {"lattice": (3, 3)}, {"lattice": (3, 3), "odd": True}])
def test_scores_are_the_per_sample_gradients(options) -> None:
    torch.manual_seed(2)
    model = PolynomialINN(9, 2, **options).to(DTYPE)
    x = torch.randn(7, 9, dtype=DTYPE, generator=torch.Generator().manual_seed(5)) * 0.5
    jacobian = polishing.scores(model, x)
    params = [p for p in model.parameters() if p.requires_grad]
    for i, row in enumerate(x):
        expected = torch.autograd.grad(model._action(row[None]).sum(), params)
        torch.testing.assert_close(jacobian[i], torch.cat([g.reshape(-1) for g in expected]),
                                   rtol=1e-10, atol=1e-12)


class _Scaled(torch.nn.Module):
    """A parametrisation kernel = factor * stored value (torch.nn.utils.parametrize)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return self.factor * stored

    def right_inverse(self, kernel: torch.Tensor) -> torch.Tensor:
        return kernel / self.factor


def test_a_fisher_step_does_not_depend_on_how_a_parameter_is_scaled() -> None:
    # The same network with its kernels stored 1000x smaller: their scores are 1000x larger,
    # their Fisher entries 10^6x. Damped by the Fisher diagonal (Marquardt), the first
    # Fisher-scoring step moves both networks to the same kernels, biases and activations;
    # a damping proportional to the identity would all but freeze the scaled kernels.
    data = sample(preset("unimodal", shape=(3, 3)), 2000, seed=3, progress=False,
                  device="cpu").x
    torch.manual_seed(0)
    model = PolynomialINN(9, 2, lattice=(3, 3)).to(DTYPE)
    model.standardize_to(data)
    twin, start = copy.deepcopy(model), model.kernel.detach().clone()
    torch.nn.utils.parametrize.register_parametrization(twin, "kernel", _Scaled(1e3))
    for network in (model, twin):
        objective = polishing.FullBatch(network, data)
        stepper = polishing.FisherScoring(objective, data, TrainingHistory(device="cpu"))
        assert stepper.run(1, tolerance=0.0) == (1, False)
    with torch.no_grad():
        assert float((model.kernel - start).abs().max()) > 1e-3  # a real step
        torch.testing.assert_close(twin.kernel, model.kernel, rtol=1e-7, atol=1e-10)
        for name in ("bias", "activations.0.r", "activations.1.t"):
            torch.testing.assert_close(twin.get_parameter(name), model.get_parameter(name),
                                       rtol=1e-7, atol=1e-10)


def test_the_damping_diagonal_is_floored_where_a_fisher_entry_underflows(monkeypatch) -> None:
    # Scores of 1e-170 keep a parameter active, but its Fisher entry underflows to 0: the
    # damping's diagonal is floored at 1e-12 of the mean entry, so the damped matrix of the
    # step stays invertible.
    data = gaussian_data(500)
    torch.manual_seed(0)
    model = PolynomialINN(3, 1).to(DTYPE)
    model.standardize_to(data)
    exact = polishing.scores

    def tiny_first_column(network, x):
        jacobian = exact(network, x)
        jacobian[:, 0] = 1e-170
        return jacobian

    monkeypatch.setattr(polishing, "scores", tiny_first_column)
    stepper = polishing.FisherScoring(polishing.FullBatch(model, data), data,
                                      TrainingHistory(device="cpu"))
    fisher, active, diagonal = stepper._fisher()
    assert bool(active[0]) and float(fisher[0, 0]) == 0.0
    assert float(diagonal[0]) == pytest.approx(1e-12 * float(fisher.diagonal().mean()), abs=0)
    assert torch.equal(diagonal[1:], fisher.diagonal()[1:])
    damped = fisher + torch.diag(1e-3 * diagonal)
    step = torch.linalg.solve(damped, -torch.ones(len(damped), dtype=DTYPE))
    assert bool(torch.isfinite(step).all())
    torch.testing.assert_close(damped @ step, -torch.ones(len(damped), dtype=DTYPE))


def test_fisher_and_lbfgs_reach_the_same_optimum() -> None:
    # Samples of a 3 x 3 lattice theory, the lattice network of depth 2 (24 parameters): the
    # flat directions of the likelihood take L-BFGS a few hundred iterations, Fisher scoring
    # a few tens (55 against 254 when written).
    data = sample(preset("unimodal", shape=(3, 3)), 4000, seed=3, progress=False,
                  device="cpu").x
    results = {}
    for method in ("fisher", "lbfgs"):
        torch.manual_seed(0)
        model = PolynomialINN(9, 2, lattice=(3, 3)).to(DTYPE)
        history = train(model, data, steps=200, validation=0, polish=method, polish_tol=1e-6,
                        progress=False, device="cpu")
        assert history.polish_stop == "tolerance" and history.polish_method == method
        results[method] = (history, extract_action(model, order=4))
    fisher, lbfgs = results["fisher"], results["lbfgs"]
    assert fisher[0].polish_iterations < lbfgs[0].polish_iterations / 3
    assert fisher[0].train_nll[-1] == pytest.approx(lbfgs[0].train_nll[-1], abs=1e-9)
    for k in (2, 3, 4):
        a, b = fisher[1].coefficient(k), lbfgs[1].coefficient(k)
        assert float((a - b).norm() / b.norm()) < 1e-3


def test_polish_brings_a2_to_the_gaussian_maximum_likelihood() -> None:
    # Gaussian data: the maximum-likelihood A2 of a depth-1 network is close to the inverse
    # sample covariance (the cubic terms it can add are fitted noise). Adam at these
    # settings stops far from it; polish must get there.
    data = gaussian_data(20_000)
    target = torch.linalg.inv(torch.cov(data.T, correction=0))
    errors = {}
    for polish in (False, True):
        model, _ = fit(data, steps=100, lr=3e-3, validation=0, polish=polish)
        a2 = extract_action(model, order=2).coefficient(2)
        errors[polish] = float(torch.linalg.norm(a2 - target) / torch.linalg.norm(target))
    assert errors[False] > 0.05
    assert errors[True] < 0.005 and errors[True] < 0.1 * errors[False]


@pytest.mark.parametrize("options", [{"lattice": (4,)}, {"lattice": (2, 2), "odd": True}])
def test_polish_trains_lattice_models(options) -> None:
    # Lattice models have no dense `weight`; the polish stage works on any parameters.
    data = torch.randn(800, 4, generator=torch.Generator().manual_seed(3)) ** 3
    histories = []
    for polish in (False, True):
        torch.manual_seed(0)
        model = PolynomialINN(4, 2, **options)
        histories.append(train(model, data, steps=50, polish=polish, progress=False))
    adam, polished = histories
    polish_nll = [v for v, s in zip(polished.train_nll, polished.stage, strict=True)
                  if s == "polish"]
    assert polished.polish_iterations > 0 and min(polish_nll) < adam.train_nll[-1]
    assert polished.best_val_nll <= adam.best_val_nll
    assert model.lattice == options["lattice"] and next(model.parameters()).dtype == torch.float32


@pytest.mark.parametrize(("shift", "n_val", "polished_kept"),
                         [(0.05, 400, True), (0.2, 400, False), (0.05, 50, False)])
def test_keep_better_keeps_the_polished_state_unless_worse_by_two_standard_errors(
        shift, n_val, polished_kept) -> None:
    # Validation samples of the Adam state's own distribution: a shifted weight is worse in
    # expectation; by 1.4 standard errors at shift 0.05, by 4 at 0.2 (n_val = 400). Below 100
    # samples the standard error is not trusted and the lower mean wins.
    torch.manual_seed(0)
    model = PolynomialINN(2, depth=1).to(DTYPE)
    val_x = model.sample(n_val, seed=1)
    adam_state = {k: v.clone() for k, v in model.state_dict().items()}
    adam_actions = model.action(val_x).detach()
    with torch.no_grad():
        model.weight.add_(shift)
    difference = model.action(val_x).detach() - adam_actions
    mean, se = float(difference.mean()), float(difference.std() / math.sqrt(n_val))
    assert mean > 0 and (mean > 2 * se) == (shift == 0.2)  # the premise
    polished_nll = float(model.action(val_x).mean())
    history = TrainingHistory(best_step=7, best_val_nll=float(adam_actions.mean()))
    adam_best = history.best_val_nll
    polished_state = {k: v.clone() for k, v in model.state_dict().items()}
    polishing.keep_better(model, val_x, history, adam_state, polish_step=40)
    kept = polished_state if polished_kept else adam_state
    for key, value in kept.items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)
    expected = (polished_nll, 40) if polished_kept else (adam_best, 7)
    assert history.best_val_nll == pytest.approx(expected[0], rel=1e-12)
    assert history.best_step == expected[1]
    assert history.kept == ("polish" if polished_kept else "adam")
    assert history.keep_difference == pytest.approx(mean, rel=1e-9)
    assert history.keep_se == pytest.approx(se, rel=1e-9)


def test_keep_decision_is_recorded_in_history_and_training_info() -> None:
    data = gaussian_data(3000)
    model, history = fit(data, steps=100, validation=0.2, polish=True)
    _, adam_history = fit(data, steps=100, validation=0.2, polish=False)
    assert history.kept in {"polish", "adam"} and math.isfinite(history.keep_se)
    assert (history.kept == "polish") == (history.keep_difference <= 2 * history.keep_se)
    assert history.keep_se > 0 and math.isfinite(history.keep_difference)
    info = model.training_info
    assert (info["kept"], info["keep_difference"], info["keep_se"]) == (
        history.kept, history.keep_difference, history.keep_se)
    assert adam_history.kept == "" and math.isnan(adam_history.keep_difference)


def test_a_polish_that_stops_far_from_the_tolerance_warns() -> None:
    data = gaussian_data(2000)
    with pytest.warns(RuntimeWarning, match=r"max\|grad\| = .* x the tolerance polish_tol"):
        _, history = fit(data, steps=20, polish=True, polish_steps=1, polish_tol=1e-9)
    assert history.polish_stop == "steps" and history.grad_norm > 100 * 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _, converged = fit(data, steps=100, validation=0, polish=True, polish_tol=1e-6)
    assert converged.polish_stop == "tolerance"
    with pytest.warns(RuntimeWarning, match=r"stalled .* max\|grad\| = 0.02 is 2000 x"):
        polishing._warn_stall("stalled", 0.02, 1e-5, "polish")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        polishing._warn_stall("stalled", 5e-4, 1e-5, "polish")  # 50 x: close enough
        polishing._warn_stall("rejections", 0.02, 1e-5, "adam")  # warned about already


def test_cosine_learning_rate_runs_from_lr_to_its_final_fraction() -> None:
    assert training._cosine_lr(0.1, 0.01, 1, 100) == pytest.approx(0.1)
    assert training._cosine_lr(0.1, 0.01, 100, 100) == pytest.approx(0.001)
    rates = [training._cosine_lr(0.1, 0.01, s, 100) for s in range(1, 101)]
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))


def test_goodness_of_fit_is_checked_after_training() -> None:
    # Gaussian data are within the model's family: the check passes, with min(n_val, 10^4)
    # model samples against the validation split.
    data = gaussian_data(6000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model, history = fit(data, steps=200, validation=0.5, polish=True)
    fit_check = history.goodness_of_fit
    assert fit_check["ok"] and fit_check["warnings"] == []
    assert (fit_check["n_model"], fit_check["n_data"]) == (3000, 3000)
    assert model.training_info["goodness_of_fit"] == fit_check
    json.dumps(history.to_dict())
    # One Adam step on two-peaked data leaves a near-Gaussian model: said, not silent.
    generator = torch.Generator().manual_seed(4)
    signs = torch.randint(0, 2, (2000, 2), generator=generator, dtype=DTYPE) * 2 - 1
    peaks = 2 * signs + 0.3 * torch.randn(2000, 2, dtype=DTYPE, generator=generator)
    with pytest.warns(RuntimeWarning, match="goodness of fit: kappa_4"):
        _, bad = fit(peaks, steps=1, validation=0.5, polish=False)
    assert not bad.goodness_of_fit["ok"] and bad.goodness_of_fit["warnings"]


def test_goodness_of_fit_of_data_near_the_float64_limit_is_judged_in_scaled_units() -> None:
    # Their fourth cumulant, ~1e1280, overflows float64: compared in units of 2^530, the
    # verdict is the one on the unscaled data.
    data = gaussian_data(2000)
    _, base = fit(data, steps=50, polish=False)
    _, big = fit(data * 2.0**530, steps=50, polish=False)
    # The unit: 2^530 times the power of two nearest to max|x| of the validation split.
    extra = 2.0 ** round(math.log2(float(split(data, 0.1)[1].abs().max())))
    assert big.goodness_of_fit["unit"] == 2.0**530 * extra
    assert base.goodness_of_fit["unit"] == 1.0
    assert big.goodness_of_fit["ok"] == base.goodness_of_fit["ok"]
    for mine, theirs in zip(big.goodness_of_fit["statistics"],
                            base.goodness_of_fit["statistics"], strict=True):
        k = 2 if mine["name"] == "nn covariance" else int(mine["name"][-1])
        assert mine["model"] * extra**k == pytest.approx(theirs["model"], rel=1e-6, abs=1e-12)
        assert mine["data"] * extra**k == pytest.approx(theirs["data"], rel=1e-12, abs=1e-15)
