"""The polish stage of `train`: full-batch float64 optimisation from Adam's best state.

Two steppers share one loop (`polish`): Fisher scoring for networks of up to
`FISHER_MAX_PARAMETERS` trainable parameters (damped Newton steps with the mean outer product
of per-sample scores on a fixed subsample, from `torch.func`), L-BFGS with a strong-Wolfe line
search above that. The loop undoes an iterate that is non-finite or worse, records both NLLs
between chunks of iterations, and ends at the gradient tolerance, after `polish_steps`
iterations, or when the stepper makes no more progress. `keep_better` then chooses between
the polished state and Adam's by the paired per-sample validation NLL difference.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call, grad, vmap
from torch.nn.utils import parameters_to_vector
from tqdm.auto import tqdm

from .._memory import available_bytes
from .inn import PolynomialINN

EVAL_CHUNK = 65536
# The seconds the polish may be predicted to take for polish="auto" to run it.
AUTO_BUDGET = 600.0
# Fisher scoring up to this many active parameters (entries of the trainable parameters
# that the action depends on; a P x P solve per iteration).
FISHER_MAX_PARAMETERS = 2048
# Its subsample: max(this, _FISHER_ROWS_PER_PARAMETER * P) rows of the training split.
_FISHER_MIN_ROWS = 10_000
_FISHER_ROWS_PER_PARAMETER = 20
# Levenberg-Marquardt damping (times F's diagonal, each entry at least _DIAGONAL_FLOOR x their
# mean): start, factors after an accepted or a rejected step, floor; tries per iteration.
_DAMPING, _DIAGONAL_FLOOR = (1e-3, 0.25, 8.0, 1e-10), 1e-12
_FISHER_TRIES = 12
# Fisher scoring stops after this many iterations in a row that lower the loss by less than
# _TOLERANCE_CHANGE.
_FLAT_ITERATIONS = 3
_ARMIJO = 1e-4
# Fisher scoring hands over to L-BFGS when the largest gradient entry has not fallen by
# _FISHER_PROGRESS within _FISHER_PATIENCE iterations, or when it stops short of the
# tolerance (heavy-tailed or badly misspecified data, where F is far from the Hessian).
_FISHER_PATIENCE = 50
_FISHER_PROGRESS = 0.1
_LBFGS_HISTORY = 50
# Elements of one chunk of the full-batch pass (bounds the autograd graph), and of one chunk
# of per-sample scores, which hold about _SCORE_TENSORS tensors of N per layer and row.
_PASS_CHUNK_ELEMENTS = 2**22
_SCORE_CHUNK_ELEMENTS = 2**24
_SCORE_TENSORS = 20
_MAX_REJECTIONS = 3
# The polish stops when the loss changes by less than this between iterations.
_TOLERANCE_CHANGE = 1e-13
# The polished state is kept unless its validation NLL is worse than Adam's by more than this
# many standard errors of the paired per-sample difference; below _KEEP_MIN_SAMPLES
# validation samples the lower mean wins. A polish that ends with its gradient above
# _STALL_FACTOR x polish_tol is warned about.
_KEEP_SE = 2.0
_KEEP_MIN_SAMPLES = 100
_STALL_FACTOR = 100.0
# "auto": the share of the free memory the pass may use, the float64 tensors of (rows, N)
# the autograd graph of one layer holds, the rows of the timed probes (pass, scores), and
# the iterations each method usually needs.
_AUTO_MEMORY_SHARE = 0.5
_GRAPH_TENSORS_PER_LAYER = 10
_PROBE_ROWS = 2048
_PROBE_SCORE_ROWS = 256
_FISHER_ITERATIONS = 50
_LBFGS_ITERATIONS = 1000


@torch.no_grad()
def actions(model: PolynomialINN, x: torch.Tensor) -> torch.Tensor:
    """The action of every row of x: (n, N), in chunks: (n,); inf outside the domain."""
    return torch.cat([model._action(chunk) for chunk in x.split(EVAL_CHUNK)])


def mean_of(values: torch.Tensor) -> float:
    """The mean of per-sample actions (n,) (`actions`), summed by chunks in their dtype."""
    return sum(float(chunk.sum()) for chunk in values.split(EVAL_CHUNK)) / len(values)


def record(history: Any, model: PolynomialINN, step: int, stage: str, eval_x: torch.Tensor,
           val_x: torch.Tensor) -> float:
    """Append both NLLs of `model` at `step` of `stage` to the history; the validation NLL."""
    val_nll = mean_of(actions(model, val_x))
    history.steps.append(step)
    history.stage.append(stage)
    history.train_nll.append(mean_of(actions(model, eval_x)))
    history.val_nll.append(val_nll)
    return val_nll


def trainable(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


class FullBatch:
    """The mean action over the whole training split x: (n, N) and its flat gradient.

    Calling it leaves the gradient in the parameters' `.grad` and returns (loss, flat
    gradient); the latest finite result is reused while the parameters have not changed.
    """

    def __init__(self, model: PolynomialINN, x: torch.Tensor) -> None:
        self.model, self.params, self.n = model, trainable(model), x.shape[0]
        self.chunks = x.split(max(1, _PASS_CHUNK_ELEMENTS // (model.dim * model.depth)))
        self.cached: tuple[torch.Tensor, float, torch.Tensor] | None = None
        self.passes = 0

    def flat_parameters(self) -> torch.Tensor:
        return parameters_to_vector(self.params).detach()

    def set_flat(self, values: torch.Tensor) -> None:
        """Copy `values` (P,) into the parameters (in place: optimisers hold them)."""
        with torch.no_grad():
            for p, value in zip(self.params, values.split([p.numel() for p in self.params]),
                                strict=True):
                p.copy_(value.view_as(p))

    def __call__(self) -> tuple[float, torch.Tensor]:
        where = self.flat_parameters()
        if self.cached is not None and torch.equal(self.cached[0], where):
            _, loss, gradient = self.cached
        else:
            for p in self.params:
                p.grad = None
            self.passes += 1
            loss = 0.0
            with torch.enable_grad():
                for chunk in self.chunks:
                    part = self.model._action(chunk).sum() / self.n
                    part.backward()
                    loss += float(part.detach())
            gradient = torch.cat([
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                for p in self.params
            ])
            self.cached = (where, loss, gradient) if _finite(loss, gradient) else None
        offset = 0
        for p in self.params:
            p.grad = gradient[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        return loss, gradient


def _finite(loss: float, gradient: torch.Tensor) -> bool:
    return math.isfinite(loss) and bool(torch.isfinite(gradient).all())


class _ActionOf(torch.nn.Module):
    """`model._action` as a module's forward, for `torch.func.functional_call`."""

    def __init__(self, model: PolynomialINN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model._action(x)


def scores(model: PolynomialINN, x: torch.Tensor) -> torch.Tensor:
    """Per-sample gradients of the action with respect to the trainable parameters:
    x: (m, N) -> (m, P), columns in `model.parameters()` order."""
    wrapper = _ActionOf(model)
    params = {f"model.{name}": p.detach() for name, p in model.named_parameters()
              if p.requires_grad}

    def one(values: dict[str, torch.Tensor], row: torch.Tensor) -> torch.Tensor:
        return functional_call(wrapper, values, (row.unsqueeze(0),))[0]

    per_sample = vmap(grad(one), in_dims=(None, 0))
    size = sum(p.numel() for p in params.values())
    rows = max(1, _SCORE_CHUNK_ELEMENTS // (_SCORE_TENSORS * model.depth * model.dim + size))
    parts = []
    for chunk in x.split(rows):
        g = per_sample(params, chunk)
        parts.append(torch.cat([g[k].reshape(chunk.shape[0], -1) for k in params], dim=1))
    return torch.cat(parts)


class FisherScoring:
    """Levenberg-Marquardt-damped Fisher scoring: from theta with full-batch gradient g,
    the step d = -(F + lam * D)^-1 g, F = J^T J / m the mean outer product of the per-sample
    scores J: (m, P) on a fixed subsample (m, N) of the training split, D = diag F
    (Marquardt's scaling: the step does not depend on how each parameter is scaled, so one
    with a small score, like a saturating activation coefficient, still moves). A step
    is accepted when finite and the loss falls by at least 1e-4 |g . d| (else lam x 8 and
    retried); then lam / 4 when the decrease is more than 3/4 of the one F's quadratic model
    predicts, lam x 2 when less than 1/4. It stops by itself when no step is accepted in 12
    tries, or after 3 iterations in a row that lower the loss by less than 1e-13."""

    name, chunk = "fisher", 5

    def __init__(self, objective: FullBatch, subsample: torch.Tensor, history: Any) -> None:
        self.objective, self.subsample, self.history = objective, subsample, history
        self.reset()

    def reset(self) -> None:
        self.damping, self.flat = _DAMPING[0], 0
        self.fisher: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _fisher(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """F on the active parameters, their mask (P,) and the damping's diagonal D."""
        if self.fisher is None:
            jacobian = scores(self.objective.model, self.subsample)
            active = jacobian.abs().amax(dim=0) > 0
            jacobian = jacobian[:, active]
            fisher = jacobian.T @ jacobian / jacobian.shape[0]
            if not bool(torch.isfinite(fisher).all()):
                fisher = torch.eye(len(fisher), dtype=fisher.dtype, device=fisher.device)
            diagonal = fisher.diagonal()  # floored: an entry can underflow to 0
            self.fisher = (fisher, active, diagonal.clamp_min(_DIAGONAL_FLOOR * diagonal.mean()))
        return self.fisher

    def run(self, budget: int, tolerance: float) -> tuple[int, bool]:
        """Up to `budget` iterations: (iterations run, whether it stopped by itself)."""
        _, down, up, floor = _DAMPING
        objective = self.objective
        for done in range(budget):
            loss, gradient = objective()
            if float(gradient.abs().max()) <= tolerance:
                return done, True
            fisher, active, diagonal = self._fisher()
            theta, cache = objective.flat_parameters(), objective.cached
            for _ in range(_FISHER_TRIES):
                step = torch.zeros_like(theta)
                step[active] = torch.linalg.solve(fisher + torch.diag(self.damping * diagonal),
                                                  -gradient[active])
                objective.set_flat(theta + step)
                new_loss, new_gradient = objective()
                if not _finite(new_loss, new_gradient):
                    self.history.polish_rejected_trials += 1
                elif new_loss <= loss + _ARMIJO * float(gradient @ step):
                    # The gain ratio: the decrease against the one F's quadratic model
                    # predicts; a poor model (an overshoot) keeps the damping up.
                    d = step[active]
                    predicted = -float(gradient[active] @ d + 0.5 * d @ fisher @ d)
                    ratio = (loss - new_loss) / predicted if predicted > 0 else 0.0
                    if ratio > 0.75:
                        self.damping = max(self.damping * down, floor)
                    elif ratio < 0.25:
                        self.damping *= 2.0
                    self.fisher = None  # computed anew at the next iterate
                    break
                self.damping *= up
            else:
                objective.set_flat(theta)
                objective.cached = cache
                objective()
                return done, True
            self.flat = self.flat + 1 if loss - new_loss < _TOLERANCE_CHANGE else 0
            if self.flat >= _FLAT_ITERATIONS:
                return done + 1, True
        return budget, False


class LBFGS:
    """torch's L-BFGS with the strong-Wolfe line search; a trial point with a non-finite
    loss or gradient is reported as `penalty` with a zero gradient, so it is never
    accepted."""

    name, chunk = "lbfgs", 25

    def __init__(self, objective: FullBatch, penalty: float, history: Any,
                 tolerance: float) -> None:
        self.objective, self.penalty, self.history = objective, penalty, history
        self.tolerance = tolerance
        self.reset()

    def reset(self) -> None:
        self.optimizer = torch.optim.LBFGS(
            self.objective.params, lr=1.0, tolerance_grad=self.tolerance,
            tolerance_change=_TOLERANCE_CHANGE, history_size=_LBFGS_HISTORY,
            line_search_fn="strong_wolfe",
        )

    def _closure(self) -> float:
        value, gradient = self.objective()
        if _finite(value, gradient):
            return value
        self.history.polish_rejected_trials += 1
        for p in self.objective.params:
            p.grad = torch.zeros_like(p)
        return self.penalty

    def run(self, budget: int, tolerance: float) -> tuple[int, bool]:
        """Up to `budget` iterations: (iterations run, whether it stopped by itself)."""
        group = self.optimizer.param_groups[0]
        group["max_iter"], group["max_eval"] = budget, 4 * budget
        state = self.optimizer.state[self.objective.params[0]]
        before = state.get("n_iter", 0)
        self.optimizer.step(self._closure)
        ran = state["n_iter"] - before
        return ran, ran < budget


@dataclass
class Plan:
    """What `train`'s `polish` argument means for one run: whether to polish, with which
    stepper, why (`reason`), and the seconds it may take (`seconds`, None: no limit)."""

    run: bool
    method: str
    reason: str
    seconds: float | None = None


def plan(polish: bool | str, model: PolynomialINN, x: torch.Tensor,
         budget: float | None = None) -> Plan:
    """Decide the polish of `model` on the training split x: (n, N) float64.

    True, "fisher" and "lbfgs" polish; False does not. With "auto", the method is Fisher
    scoring up to `FISHER_MAX_PARAMETERS` trainable parameters (else L-BFGS), and the polish
    runs when the float64 split plus one chunk's autograd graph take at most half of the
    device's free memory and the predicted time (`_probe`) is at most `budget` seconds
    (`AUTO_BUDGET` when None).
    """
    budget = AUTO_BUDGET if budget is None else budget
    if polish is False:
        return Plan(False, "", "polish=False")
    if polish in ("fisher", "lbfgs"):
        return Plan(True, polish, f"polish={polish!r}")
    predicted, size = _probe(model, x, None)
    method = "fisher" if size <= FISHER_MAX_PARAMETERS else "lbfgs"
    if polish is True:
        return Plan(True, method, f"polish=True, {size} active parameters")
    n, dim, depth = x.shape[0], model.dim, model.depth
    rows = min(n, max(1, _PASS_CHUNK_ELEMENTS // (dim * depth)))
    need = 8.0 * (n * dim + _GRAPH_TENSORS_PER_LAYER * rows * dim * depth)
    free = float(available_bytes(x.device, default=math.inf))
    if need > _AUTO_MEMORY_SHARE * free:
        return Plan(False, method, f"the full-batch pass needs {need / 1e9:.2g} GB, more "
                    f"than half of the {free / 1e9:.2g} GB free")
    verdict = "within" if predicted <= budget else "over"
    return Plan(predicted <= budget, method, f"{method}: predicted {predicted:.0f} s, "
                f"{verdict} the budget of {budget:g} s", budget)


def _probe(model: PolynomialINN, x: torch.Tensor, method: str | None) -> tuple[float, int]:
    """The predicted seconds of the polish with `method` (None: by the active-parameter
    count) on x and the active parameters (nonzero gradient entries). A float64 pass (loss
    and gradient) and, for Fisher scoring, the per-sample scores are timed on the first rows
    of x (after one untimed pass) and scaled: L-BFGS takes about 1.1 passes per iteration,
    Fisher scoring one pass and the scores of its subsample."""
    probe = x[:_PROBE_ROWS]
    objective = FullBatch(float64_twin(model), probe)
    _, gradient = objective()
    objective.cached = None
    start = time.perf_counter()
    objective()
    one_pass = (time.perf_counter() - start) * x.shape[0] / probe.shape[0]
    for p in objective.params:
        p.grad = None
    size = int((gradient != 0).sum())
    if (method or ("fisher" if size <= FISHER_MAX_PARAMETERS else "lbfgs")) == "lbfgs":
        return _LBFGS_ITERATIONS * 1.1 * one_pass, size
    rows = probe[:_PROBE_SCORE_ROWS]
    scores(objective.model, rows[:2])  # the first call sets torch.func up
    start = time.perf_counter()
    scores(objective.model, rows)
    per_row = (time.perf_counter() - start) / rows.shape[0]
    subsample = min(x.shape[0], max(_FISHER_MIN_ROWS, _FISHER_ROWS_PER_PARAMETER * size))
    return _FISHER_ITERATIONS * (one_pass + subsample * per_row), size


def float64_twin(model: PolynomialINN) -> PolynomialINN:
    """The model itself when it is float64, else a float64 copy."""
    if next(model.parameters()).dtype == torch.float64:
        return model
    return copy.deepcopy(model).to(torch.float64)


def gradient_norm(model: PolynomialINN, x: torch.Tensor) -> float:
    """Largest |entry| of the float64 gradient of the mean action over x: (n, N) float64."""
    objective = FullBatch(float64_twin(model), x)
    loss, gradient = objective()
    for p in objective.params:
        p.grad = None
    if not math.isfinite(loss):
        return math.inf
    return float(gradient.abs().max()) if gradient.numel() else 0.0


def keep_better(model: PolynomialINN, val_x: torch.Tensor, history: Any,
                adam_state: dict[str, torch.Tensor], polish_step: int) -> None:
    """Keep the model's (polished) state unless it is worse than Adam's (`adam_state`) by
    more than `_KEEP_SE` standard errors of the paired per-sample validation NLL difference
    d_i = S_polished(x_i) - S_adam(x_i), x_i the rows of val_x: (n_val, N); else restore
    Adam's. With fewer than `_KEEP_MIN_SAMPLES` rows the lower mean wins. The history records
    mean(d), its standard error std(d) / sqrt(n_val) (0 for one row) and the decision; its
    best follows the kept state."""
    polished_state = {k: v.clone() for k, v in model.state_dict().items()}
    polished = actions(model, val_x)
    model.load_state_dict(adam_state)
    difference = polished.double() - actions(model, val_x).double()
    mean = float(difference.mean())
    se = float(difference.std() / math.sqrt(len(difference))) if len(difference) > 1 else 0.0
    history.keep_difference, history.keep_se = mean, se
    polished_nll = mean_of(polished)  # in the model's dtype, as every recorded NLL
    if math.isfinite(mean) and math.isfinite(se):
        keep = mean <= (_KEEP_SE * se if len(difference) >= _KEEP_MIN_SAMPLES else 0.0)
    else:  # a point outside a state's domain: keep the polished state only if it is finite
        keep = math.isfinite(polished_nll)
    if keep:
        model.load_state_dict(polished_state)
        history.best_val_nll, history.best_step = polished_nll, polish_step
    history.kept = "polish" if keep else "adam"


def _warn_stall(stop: str, grad_max: float, polish_tol: float, kept: str) -> None:
    """Warn when a polish that ended short has max|grad| above _STALL_FACTOR x polish_tol."""
    how = {"stalled": "stalled", "steps": "ran out of polish_steps",
           "budget": "ran out of the time budget of polish='auto'"}.get(stop)
    if how is None or not grad_max > _STALL_FACTOR * polish_tol:
        return
    warnings.warn(
        f"the polish {how} far from a likelihood optimum: its largest gradient entry "
        f"max|grad| = {grad_max:.2g} is {grad_max / polish_tol:.0f} x the tolerance "
        f"polish_tol = {polish_tol:.2g} (kept state: {kept}); the fit may be degenerate: "
        "check history.goodness_of_fit, or try another depth or more data",
        RuntimeWarning,
        stacklevel=4,
    )


def _slow(checkpoint: tuple[int, float], done: int, largest: float) -> bool:
    """Whether Fisher scoring, at iteration `done` with largest gradient entry `largest`, has
    made too little progress since `checkpoint` (iteration, largest entry then)."""
    return done - checkpoint[0] >= _FISHER_PATIENCE and largest > _FISHER_PROGRESS * checkpoint[1]


def polish(
    model: PolynomialINN,
    method: str,
    train_x: torch.Tensor,
    eval_x: torch.Tensor,
    val_x: torch.Tensor,
    history: Any,
    polish_steps: int,
    polish_tol: float,
    progress: bool,
    seconds: float | None = None,
) -> None:
    """The polish stage of `train` with the stepper `method` ("fisher" or "lbfgs"): the
    model is in Adam's best state, train_x: (n, N) float64, eval_x and val_x in the model's
    dtype, all on the model's device. With `seconds`, it stops ("budget") at the first
    record after that much wall time."""
    start = time.perf_counter()
    work = float64_twin(model)
    eval64, val64 = eval_x.to(torch.float64), val_x.to(torch.float64)
    adam_state = {k: v.clone() for k, v in model.state_dict().items()}
    objective = FullBatch(work, train_x)
    loss, gradient = objective()
    if not _finite(loss, gradient):
        # Adam's best state is finite on its evaluation data but not on the whole split.
        history.polish_stop, history.kept = "non-finite start", "adam"
        history.polish_evaluations = objective.passes
        history.polish_seconds = time.perf_counter() - start
        return
    # A turned-away L-BFGS trial point looks far worse than any point it may accept.
    lbfgs = LBFGS(objective, loss + 1e3 * (1.0 + abs(loss)), history, polish_tol)
    stepper: FisherScoring | LBFGS = lbfgs
    if method == "fisher":
        size = int((gradient != 0).sum())  # the active parameters
        rows = max(_FISHER_MIN_ROWS, _FISHER_ROWS_PER_PARAMETER * size)
        stepper = FisherScoring(objective, train_x[:rows], history)
    first_step = history.steps[-1]
    done, rejections, stop = 0, 0, "steps"
    checkpoint = (0, float(gradient.abs().max()))
    bar = tqdm(total=polish_steps, disable=not progress, desc=f"polish ({method})",
               leave=False)
    while done < polish_steps:
        if float(gradient.abs().max()) <= polish_tol:
            stop = "tolerance"
            break
        budget = min(stepper.chunk, polish_steps - done)
        before = objective.flat_parameters()
        ran, finished = stepper.run(budget, polish_tol)
        done += ran
        bar.update(ran)
        new_loss, new_gradient = objective()
        if not (_finite(new_loss, new_gradient) and new_loss <= loss):
            objective.set_flat(before)
            history.rejected_steps += 1
            history.rejected_at.append(first_step + done)
            rejections += 1
            if rejections >= _MAX_REJECTIONS:
                stop = "rejections"
                warnings.warn(
                    f"polish stopped after {done} {method} iterations: {rejections} iterates "
                    "were undone as non-finite or worse",
                    RuntimeWarning,
                    stacklevel=3,
                )
                break
            stepper.reset()
            loss, gradient = objective()
            continue
        rejections = 0
        loss, gradient = new_loss, new_gradient
        val_nll = record(history, work, first_step + done, "polish", eval64, val64)
        bar.set_postfix(val_nll=f"{val_nll:.4f}", grad=f"{float(gradient.abs().max()):.1e}")
        largest = float(gradient.abs().max())
        if stepper is not lbfgs and largest > polish_tol and (
                finished or _slow(checkpoint, done, largest)):
            stepper, history.polish_method = lbfgs, "fisher, then lbfgs"
            bar.set_description(f"polish ({history.polish_method})")
            continue
        if done - checkpoint[0] >= _FISHER_PATIENCE:
            checkpoint = (done, min(largest, checkpoint[1]))
        # The stepper stopped by itself (tolerance reached or no progress), or time is up.
        if finished or (seconds is not None and time.perf_counter() - start > seconds):
            stop = "tolerance" if largest <= polish_tol else "stalled" if finished else "budget"
            break
    if stop == "steps" and float(gradient.abs().max()) <= polish_tol:
        stop = "tolerance"
    bar.close()
    for p in objective.params:
        p.grad = None
    if work is not model:
        model.load_state_dict(work.state_dict())  # cast back to the model's dtype
    keep_better(model, val_x, history, adam_state, first_step + done)
    history.polish_iterations, history.polish_stop = done, stop
    _warn_stall(stop, float(gradient.abs().max()), polish_tol, history.kept)
    history.polish_evaluations = objective.passes
    history.polish_seconds = time.perf_counter() - start
