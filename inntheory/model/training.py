"""Maximum-likelihood training of a `PolynomialINN` on CPU or GPU.

`train` minimises the mean action (negative log-likelihood per sample, in nats) in named
steps: split and standardise the data (`_split`), an Adam stage on minibatches with early
stopping (`_fit`), an optional full-batch polish in float64 (`polish.polish`: Fisher
scoring or L-BFGS), and the choice of the kept state (`polish.keep_better`).

Adam is guarded against non-finite steps: a step whose loss or gradients are NaN/inf is
skipped, and a step after which the next batch's loss is not finite is undone (parameters
and optimiser state restored) and the learning rate halved. The polish turns away
non-finite trial points and undoes worse iterates. Rejected steps are counted in the
returned `TrainingHistory`; a rejected state is never kept.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._checks import check_seed
from ..diagnostics import goodness_of_fit
from . import polish as _polish
from .inn import PolynomialINN, _as_batch
from .polish import record as _record

__all__ = ["TrainingHistory", "resolve_device", "train"]

_TRAIN_EVAL_MAX = 10000
# The most model samples the goodness-of-fit check after training draws.
_FIT_CHECK_SAMPLES = 10000
# The range of max|x| in which it compares the data as they are (else in units of 2^k).
_FIT_CHECK_RANGE = (2.0**-60, 2.0**60)
# The singular-covariance check (n * N^2 work, skipped above this) and its eigenvalue ratio.
_DEGENERACY_CHECK_WORK = 10**9
_DEGENERACY_TOLERANCE = 1e-12
_MAX_CONSECUTIVE_REJECTIONS = 25


@dataclass
class TrainingHistory:
    """What happened in one `train` call. NLLs are mean actions in nats per sample.

    Attributes:
        steps, stage, train_nll, val_nll: per evaluation, the step (0: the initial model;
            in the polish, Adam's last step plus the polish iterations so far), the stage
            ("adam" or "polish"), the NLL on up to 10^4 training rows and on the validation
            split (the training rows when validation=0).
        best_val_nll, best_step: the validation NLL of the state the model is left in (in
            the model's dtype) and the step at which it was reached.
        rejected_steps, rejected_at: the skipped or undone Adam steps and undone polish
            iterates, and their step numbers.
        stopped_early: whether early stopping ended the Adam stage before `steps`.
        outside_fraction: the fraction of the training split outside the final domain.
        device, seconds: the device trained on ("cpu", "cuda:0") and the call's wall time.
        polished, polish_method, polish_decision: whether the polish ran, its stepper ("fisher",
            "lbfgs", "fisher, then lbfgs" after a hand-over; "" without polish) and why it
            ran or not (e.g. "fisher: predicted 40 s, within the budget of 600 s").
        polish_iterations, polish_evaluations, polish_seconds: its iterations, full-batch
            passes (its main cost) and wall time.
        polish_stop: why it ended, at its last iterate: "tolerance" (gradient <=
            polish_tol), "steps" (polish_steps reached), "stalled" (no more progress in
            float64), "budget" (polish="auto" took its budget of seconds), "rejections" (3
            undone iterates in a row), "non-finite start" (Adam's best state is outside
            the domain of a training point), "" without polish.
        polish_rejected_trials: trial points with a non-finite loss or gradient, turned away.
        grad_norm, converged: the largest |entry| of the float64 gradient of the mean
            training NLL at the state the model is left in, and grad_norm <= polish_tol.
        keep_difference, keep_se, kept: the mean over the validation split of the per-sample
            NLL difference polished - Adam (nan without polish), its standard error, and the
            state kept: "polish" unless keep_difference > 2 keep_se (> 0 below 100
            validation samples), else "adam"; "" without polish.
        goodness_of_fit: `inntheory.goodness_of_fit` of the final model against the
            validation split with min(n_val, 10^4) model samples, as its ``to_dict()`` plus
            ``"unit"`` (1, or the power of two the data were divided by when max|x| is
            beyond 2^+-60); None with fewer than 2 rows.
    """

    steps: list[int] = field(default_factory=list)
    train_nll: list[float] = field(default_factory=list)
    val_nll: list[float] = field(default_factory=list)
    best_val_nll: float = math.inf
    best_step: int = 0
    rejected_steps: int = 0
    rejected_at: list[int] = field(default_factory=list)
    stopped_early: bool = False
    outside_fraction: float = 0.0
    device: str = "cpu"
    seconds: float = 0.0
    stage: list[str] = field(default_factory=list)
    polished: bool = False
    polish_method: str = ""
    polish_decision: str = ""
    polish_iterations: int = 0
    polish_evaluations: int = 0
    polish_stop: str = ""
    polish_rejected_trials: int = 0
    grad_norm: float = math.nan
    converged: bool = False
    polish_seconds: float = 0.0
    keep_difference: float = math.nan
    keep_se: float = math.nan
    kept: str = ""
    goodness_of_fit: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The history as a JSON-able dict."""
        return asdict(self)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn "auto" into CUDA when present, else CPU; check that an explicit device exists.

    Arguments:
        device: "auto", "cpu", "cuda", "cuda:1", ... or a `torch.device`.

    Returns:
        The `torch.device`.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}: {error}") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r} requested but only {torch.cuda.device_count()} "
                "CUDA devices exist"
            )
    return device


def _as_data(data: Any, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Validate training data and return it as a CPU tensor (n, dim) in `dtype`.

    Training needs a non-empty 2-D batch; the element checks (type, NaN/inf) are the model's.
    """
    if torch.is_tensor(getattr(data, "x", None)):  # an inntheory.SampleResult
        data = data.x
    shape = tuple(data.shape) if torch.is_tensor(data) or isinstance(data, np.ndarray) else None
    if shape is not None:
        if len(shape) != 2:
            raise ValueError(f"data must have shape (n, N), got {shape}")
        if shape[0] == 0:
            raise ValueError("data is empty (0 samples)")
        if shape[1] != dim:
            raise ValueError(f"data has N = {shape[1]} columns but the model has dim = {dim}")
    batch, _ = _as_batch(data, dim, "data", dtype, torch.device("cpu"))
    return batch.detach()


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class _Snapshot:
    """Parameters and Adam state before the latest accepted step, to undo it."""

    def __init__(self, params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        self.params = params
        self.optimizer = optimizer
        self.saved: tuple[list[torch.Tensor], dict] | None = None

    def take(self) -> None:
        state = {
            p: {k: v.clone() for k, v in self.optimizer.state[p].items()}
            for p in self.params
            if p in self.optimizer.state
        }
        self.saved = ([p.detach().clone() for p in self.params], state)

    def restore(self) -> bool:
        """Undo the latest step; False when there is nothing to undo."""
        if self.saved is None:
            return False
        values, state = self.saved
        with torch.no_grad():
            for p, value in zip(self.params, values, strict=True):
                p.copy_(value)
        self.optimizer.state.clear()
        for p, entries in state.items():
            self.optimizer.state[p] = entries
        self.saved = None
        return True


def train(
    model: PolynomialINN,
    data: Any,
    *,
    steps: int = 1500,
    batch_size: int = 1024,
    lr: float = 1e-2,
    final_lr_fraction: float = 0.01,
    validation: float = 0.1,
    eval_every: int = 50,
    patience: int = 20,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    polish: bool | str = "auto",
    polish_steps: int = 2000,
    polish_tol: float = 1e-5,
) -> TrainingHistory:
    """Fit `model` to `data` by maximum likelihood (minimum mean action).

    The data are split once (seeded) into training and validation parts; the standardisation
    is fixed to the training part when the model has standardize=True and none is set. Adam
    runs `steps` steps on minibatches (reshuffled every epoch) with the learning rate decaying
    as a cosine from `lr` to `lr * final_lr_fraction`; every `eval_every` steps both NLLs are
    recorded, and after `patience` evaluations without a new best validation NLL the stage
    stops. The polish then continues full-batch in float64 (a float32 model is polished as a
    float64 copy and written back) from Adam's best state (`inntheory.model.polish`): Fisher
    scoring for networks of up to 2048 trainable parameters, L-BFGS above; it records both
    NLLs every few iterations and ends when the gradient's largest absolute entry is <=
    `polish_tol`, after `polish_steps` iterations, or when it makes no more progress
    (`TrainingHistory.polish_stop`); one that ends with its gradient above 100 x `polish_tol`
    raises a RuntimeWarning. The model is left in the polished state unless its validation
    NLL is worse than Adam's best by more than two standard errors of the paired per-sample
    difference (`TrainingHistory.kept`). Finally the model's own samples are compared with
    the validation split (`inntheory.goodness_of_fit`, in `TrainingHistory.goodness_of_fit`);
    each failure is a RuntimeWarning. `model.training_info` receives a JSON-able summary.

    ``polish="auto"`` polishes when the float64 training split and one chunk's autograd graph
    take at most half of the device's free memory and the predicted time (one pass timed on
    2048 rows, scaled to the split, times the passes the method usually needs) is at most
    `inntheory.model.polish.AUTO_BUDGET` = 600 seconds, and then stops at that budget;
    `TrainingHistory.polish_decision` says what it decided and why.

    Arguments:
        model: the network; trained in place, in its dtype.
        data: (n, N) torch tensor or numpy array of samples, no NaN/inf, or an
            `inntheory.SampleResult` (its `x` is used).
        steps: the maximum number of Adam steps.
        batch_size: minibatch size (capped at the training split size).
        lr: initial learning rate.
        final_lr_fraction: the learning rate at the last step, relative to `lr`.
        validation: fraction of the data held out, in [0, 1); 0 tracks the training NLL.
        eval_every: steps between evaluations.
        patience: evaluations without improvement before stopping early.
        seed: seed of the split and of the minibatch order.
        device: "auto" (CUDA when present, else CPU), or any device `resolve_device` takes.
        progress: show a tqdm progress bar.
        polish: True, False, "auto" (see above), or the stepper to use, "fisher" or "lbfgs".
        polish_steps: the most polish iterations.
        polish_tol: the tolerance on the largest absolute entry of the gradient of the mean
            training NLL (nats per sample); also what `TrainingHistory.converged` is judged by.

    Returns:
        The `TrainingHistory`.

    Example:
        >>> data = torch.randn(500, 2) * torch.tensor([1.0, 3.0])
        >>> model = PolynomialINN(2, depth=1)
        >>> history = train(model, data, steps=100, progress=False, device="cpu")
        >>> history.best_val_nll < 5, history.polished, history.stage[-1]
        (True, True, 'polish')
    """
    start = time.perf_counter()
    _check_options(model, steps=steps, batch_size=batch_size, lr=lr,
                   final_lr_fraction=final_lr_fraction, validation=validation,
                   eval_every=eval_every, patience=patience, polish=polish,
                   polish_steps=polish_steps, polish_tol=polish_tol)
    target = resolve_device(device)
    reference = next(model.parameters())
    home, dtype = reference.device, reference.dtype
    # float64 for the polish stage and the gradient norm; the model's dtype for Adam.
    data = _as_data(data, model.dim, torch.float64)
    generator = torch.Generator().manual_seed(check_seed(seed))
    split = _split(model, data, validation, generator, dtype, target)
    batch_size = min(batch_size, split.n_train)

    model.to(target)
    history = TrainingHistory(device=str(target))
    try:
        train64 = split.train64.to(target)
        plan = _polish.plan(polish, model, train64)
        history.polished, history.polish_method = plan.run, plan.method if plan.run else ""
        history.polish_decision = plan.reason
        _fit(model, split.train_x, split.eval_x, split.val_x, history, generator, steps,
             batch_size, lr, final_lr_fraction, eval_every, patience, progress)
        if progress and polish is not False:
            tqdm.write(f"polish {'runs' if plan.run else 'skipped'} ({plan.reason})")
        if plan.run:
            _polish.polish(model, plan.method, train64, split.eval_x, split.val_x, history,
                           polish_steps, polish_tol, progress, plan.seconds)
        history.grad_norm = _polish.gradient_norm(model, train64)
        history.converged = history.grad_norm <= polish_tol
        history.outside_fraction = _outside_fraction(model, split.train_x)
    finally:
        model.to(home)
    history.goodness_of_fit = _check_fit(model, split.val_x.to(home), seed)
    history.seconds = time.perf_counter() - start
    model.training_info = _training_info(
        history, split, batch_size=batch_size, lr=lr, final_lr_fraction=final_lr_fraction,
        seed=int(seed), polish_steps=polish_steps, polish_tol=polish_tol)
    return history


def _check_options(model: Any, *, steps: int, batch_size: int, lr: float,
                   final_lr_fraction: float, validation: float, eval_every: int,
                   patience: int, polish: bool | str, polish_steps: int,
                   polish_tol: float) -> None:
    """Raise a `TypeError`/`ValueError` naming the first bad argument of `train`."""
    if not isinstance(model, PolynomialINN):
        raise TypeError(f"model must be a PolynomialINN, got {type(model).__name__}")
    for name, value in (("steps", steps), ("batch_size", batch_size),
                        ("eval_every", eval_every), ("patience", patience)):
        _check_positive_int(name, value)
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not (isinstance(final_lr_fraction, int | float) and 0 < final_lr_fraction <= 1):
        raise ValueError(f"final_lr_fraction must be in (0, 1], got {final_lr_fraction!r}")
    if not (isinstance(validation, int | float) and 0 <= validation < 1):
        raise ValueError(f"validation must be a fraction in [0, 1), got {validation!r}")
    if not (isinstance(polish, bool) or polish in ("auto", "fisher", "lbfgs")):
        raise ValueError(
            f"polish must be True, False, 'auto', 'fisher' or 'lbfgs', got {polish!r}")
    _check_positive_int("polish_steps", polish_steps)
    if not (isinstance(polish_tol, int | float) and not isinstance(polish_tol, bool)
            and math.isfinite(polish_tol) and polish_tol > 0):
        raise ValueError(f"polish_tol must be a positive finite number, got {polish_tol!r}")


@dataclass
class _Split:
    """The seeded split: the training part in float64 (`train64`) and in the model's dtype
    on the device (`train_x`), its first rows for the training NLL (`eval_x`), and the
    validation part (`val_x`, `eval_x` when there is none)."""

    train64: torch.Tensor
    train_x: torch.Tensor
    eval_x: torch.Tensor
    val_x: torch.Tensor
    n_val: int

    @property
    def n_train(self) -> int:
        return self.train_x.shape[0]


def _split(model: PolynomialINN, data: torch.Tensor, validation: float,
           generator: torch.Generator, dtype: torch.dtype, device: torch.device) -> _Split:
    """Split `data` (float64, CPU) once and fix the model's standardisation to the training
    part when it has none."""
    n = data.shape[0]
    n_val = max(1, round(validation * n)) if validation > 0 else 0
    if n - n_val < 2:
        raise ValueError(f"{n} samples leave fewer than 2 for training after the split")
    order = torch.randperm(n, generator=generator)
    train64, val_x = data[order[n_val:]], data[order[:n_val]].to(dtype)
    train_x = train64.to(dtype)
    if not bool(torch.isfinite(train_x).all()):
        raise ValueError(f"data values up to {float(data.abs().max()):.3g} overflow the model's "
                         f"dtype {str(dtype).removeprefix('torch.')}")
    _warn_degenerate(train64)
    if model.standardize and not model.is_standardized:
        _standardize(model, train_x)
    train_x = train_x.to(device)
    eval_x = train_x[:_TRAIN_EVAL_MAX]
    val_x = val_x.to(device) if n_val else eval_x
    return _Split(train64, train_x, eval_x, val_x, n_val)


@torch.no_grad()
def _non_finite_cause(model: PolynomialINN, x: torch.Tensor) -> str:
    """Why the action of `model` is not finite on some rows of x: (n, N): values that
    overflow the dtype inside the network, or points outside the model's domain."""
    z, _, inside = model._flow(x)
    overflow = ~torch.isfinite(z).all(dim=1)
    outside = ~inside & ~overflow
    parts = []
    if bool(overflow.any()):
        parts.append(f"{float(overflow.double().mean()):.2%} of it overflows "
                     f"{str(z.dtype).removeprefix('torch.')} inside the network (depth "
                     f"{model.depth}; its largest |x| is {float(x.abs().max()):.3g}): the "
                     "values grow past the largest float through the layers; use a smaller "
                     "depth or rescale the data")
    if bool(outside.any()):
        parts.append(f"{float(outside.double().mean()):.2%} of it lies outside the model's "
                     "domain")
    return "; ".join(parts) or "the log-determinant or |z|^2 overflows"



def _standardize(model: PolynomialINN, x: torch.Tensor) -> None:
    """Fix the model's standardisation to x: (n, N); where the mean or the variance
    overflows the dtype (|x| near the square root of its largest value), to x divided by a
    power of two and scaled back, which is exact."""
    model.standardize_to(x)
    if bool(torch.isfinite(model.scale).all() and torch.isfinite(model.shift).all()):
        return
    power = 2.0 ** math.ceil(math.log2(float(x.abs().max())))
    model.standardize_to(x / power)
    with torch.no_grad():
        model.shift.mul_(power)
        model.scale.mul_(power)


def _warn_degenerate(x: torch.Tensor) -> None:
    """Warn when the columns of x: (n, N) have an exactly degenerate direction: a column
    that repeats another exactly, or (where it is cheap) a singular correlation matrix."""
    sums = x.sum(dim=0)
    order = torch.argsort(sums)
    for i in torch.nonzero(sums[order][1:] == sums[order][:-1]).flatten().tolist():
        a, b = sorted(order[i : i + 2].tolist())
        if torch.equal(x[:, a], x[:, b]):
            _warn_singular(f"data column {b} is an exact copy of column {a}", "drop the copy")
            return
    n, dim = x.shape
    if n <= dim or n * dim * dim > _DEGENERACY_CHECK_WORK:
        return
    correlation = torch.corrcoef(x.T)
    if not bool(torch.isfinite(correlation).all()):
        return  # a constant column (refused by the standardisation) or overflow
    eigenvalues = torch.linalg.eigvalsh(correlation)
    if float(eigenvalues[0]) <= _DEGENERACY_TOLERANCE * float(eigenvalues[-1]):
        _warn_singular("the data columns are exactly linearly dependent (smallest eigenvalue "
                       f"of their correlation {float(eigenvalues[0]):.1e})",
                       "drop the dependent columns")


def _warn_singular(what: str, remedy: str) -> None:
    warnings.warn(f"{what}: the data covariance is singular, an exactly degenerate direction "
                  "along which the likelihood is unbounded; the fitted network and its action "
                  f"are meaningless; {remedy}", RuntimeWarning, stacklevel=5)


class _Scaled:
    """A model whose samples are divided by `unit` (for `goodness_of_fit`)."""

    def __init__(self, model: PolynomialINN, unit: float) -> None:
        self.model, self.unit, self.lattice = model, unit, model.lattice

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return self.model.sample(n, seed=seed) / self.unit

    @property
    def last_sample_invalid(self) -> float:
        return getattr(self.model, "last_sample_invalid", 0.0)


def _check_fit(model: PolynomialINN, val_x: torch.Tensor, seed: int) -> dict[str, Any] | None:
    """`goodness_of_fit` of the model against val_x: (n_val, N) with min(n_val,
    `_FIT_CHECK_SAMPLES`) model samples, as a dict; each failure is warned about. Data whose
    fourth powers would overflow or underflow float64 are compared in units of a power of
    two (exact), which the warnings name."""
    if val_x.shape[0] < 2:
        return None
    largest = float(val_x.abs().max())
    unit = 1.0
    if largest > 0 and not _FIT_CHECK_RANGE[0] < largest < _FIT_CHECK_RANGE[1]:
        unit = 2.0 ** round(math.log2(largest))
    n_samples = min(val_x.shape[0], _FIT_CHECK_SAMPLES)
    report = goodness_of_fit(_Scaled(model, unit) if unit != 1.0 else model,
                             val_x.double() / unit, n_samples=n_samples, seed=seed)
    units = f" (in units of 2^{round(math.log2(unit))})" if unit != 1.0 else ""
    for sentence in report.warnings:
        warnings.warn(f"goodness of fit{units}: {sentence}", RuntimeWarning, stacklevel=3)
    return {**report.to_dict(), "unit": unit}


def _outside_fraction(model: PolynomialINN, x: torch.Tensor) -> float:
    """The fraction of the rows of x: (n, N) outside the model's domain."""
    inside = torch.cat([model.in_domain(c) for c in x.split(_polish.EVAL_CHUNK)])
    return 1.0 - float(inside.double().mean())


def _training_info(history: TrainingHistory, split: _Split, **settings: Any) -> dict[str, Any]:
    """The JSON-able summary `train` leaves in `model.training_info`: the split, the Adam
    steps run, `settings`, and every field of the history but the per-evaluation lists."""
    record = {key: value for key, value in history.to_dict().items()
              if key not in ("steps", "train_nll", "val_nll", "rejected_at", "stage")}
    record["polish"] = record.pop("polished")
    steps_run = max(s for s, g in zip(history.steps, history.stage, strict=True) if g == "adam")
    return {"n_train": split.n_train, "n_val": split.n_val, "steps_run": steps_run,
            **settings, **record}


class _EarlyStopping:
    """Adam's best state by validation NLL, and the evaluations since it was found."""

    def __init__(self, model: PolynomialINN, history: TrainingHistory, patience: int) -> None:
        self.model, self.history, self.patience = model, history, patience
        self.state = {k: v.clone() for k, v in model.state_dict().items()}
        self.stale = 0

    def update(self, step: int, val_nll: float) -> bool:
        """Keep the model's state when `val_nll` is a new best; whether patience ran out."""
        if val_nll < self.history.best_val_nll:
            self.history.best_val_nll, self.history.best_step, self.stale = val_nll, step, 0
            self.state = {k: v.clone() for k, v in self.model.state_dict().items()}
        else:
            self.stale += 1
        return self.stale >= self.patience


def _minibatches(n: int, batch_size: int, generator: torch.Generator,
                 device: torch.device) -> Iterator[torch.Tensor]:
    """Row indices of consecutive minibatches, reshuffled whenever a batch would run past
    the end of the permutation."""
    permutation, cursor = None, n
    while True:
        if cursor + batch_size > n:
            permutation = torch.randperm(n, generator=generator).to(device)
            cursor = 0
        yield permutation[cursor : cursor + batch_size]
        cursor += batch_size


def _cosine_lr(lr: float, final_lr_fraction: float, step: int, steps: int) -> float:
    """The learning rate of `step` (1-based) of `steps`: a cosine from lr to
    lr * final_lr_fraction."""
    cosine = 0.5 * (1 + math.cos(math.pi * ((step - 1) / max(steps - 1, 1))))
    return lr * (final_lr_fraction + (1 - final_lr_fraction) * cosine)


def _fit(
    model: PolynomialINN,
    train_x: torch.Tensor,
    eval_x: torch.Tensor,
    val_x: torch.Tensor,
    history: TrainingHistory,
    generator: torch.Generator,
    steps: int,
    batch_size: int,
    lr: float,
    final_lr_fraction: float,
    eval_every: int,
    patience: int,
    progress: bool,
) -> None:
    """The Adam stage of `train`: leaves the model in its best validation state."""
    initial = _polish.mean_of(_polish.actions(model, train_x))
    if not math.isfinite(initial):
        raise ValueError("the initial model gives a non-finite NLL on the training data: "
                         + _non_finite_cause(model, train_x))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, foreach=True)
    snapshot = _Snapshot(params, optimizer)
    best = _EarlyStopping(model, history, patience)
    backoff, consecutive = 1.0, 0
    batches = _minibatches(train_x.shape[0], batch_size, generator, train_x.device)

    best.update(0, _record(history, model, 0, "adam", eval_x, val_x))
    bar = tqdm(total=steps, disable=not progress, desc="training", leave=False)
    step = 0
    while step < steps:
        batch = train_x[next(batches)]
        step += 1
        bar.update()
        optimizer.zero_grad(set_to_none=False)
        loss = model._action(batch).mean()
        loss.backward()
        # The gradient norm is finite exactly when every gradient entry is (overflow aside).
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if bool(torch.isfinite(loss + norm)):
            consecutive = 0
            snapshot.take()
            for group in optimizer.param_groups:
                group["lr"] = backoff * _cosine_lr(lr, final_lr_fraction, step, steps)
            optimizer.step()
        else:
            # A non-finite loss here means the previous step broke the model on this batch:
            # undo it and take smaller steps; otherwise (or with nothing to undo) skip.
            if not bool(torch.isfinite(loss)) and snapshot.restore():
                backoff *= 0.5
            history.rejected_steps += 1
            history.rejected_at.append(step)
            consecutive += 1
            if consecutive >= _MAX_CONSECUTIVE_REJECTIONS:
                warnings.warn(
                    f"training stopped at step {step}: {consecutive} consecutive steps were "
                    "rejected as non-finite",
                    RuntimeWarning,
                    stacklevel=3,
                )
                break
        if step % eval_every == 0 or step == steps:
            if best.update(step, _record(history, model, step, "adam", eval_x, val_x)):
                history.stopped_early = step < steps
                break
            bar.set_postfix(val_nll=f"{history.val_nll[-1]:.4f}")
    bar.close()
    if not history.steps or history.steps[-1] != step:
        best.update(step, _record(history, model, step, "adam", eval_x, val_x))
    model.load_state_dict(best.state)
