"""Maximum-likelihood training of a `PolynomialINN` on CPU or GPU.

`train` minimises the mean action (negative log-likelihood per sample, in nats) with Adam and
a cosine-decaying learning rate, keeps the state with the best validation NLL (early
stopping), and guards every step: a step whose loss or gradients are NaN/inf is skipped, and
a step after which the next batch's loss is not finite (it moved data out of the model's
domain or overflowed) is undone (parameters and optimiser state restored) and the learning
rate halved. Rejected steps are counted and listed in the returned `TrainingHistory`; a
rejected state is never kept.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .inn import PolynomialINN, _as_batch

__all__ = ["TrainingHistory", "resolve_device", "train"]

_EVAL_CHUNK = 65536
_TRAIN_EVAL_MAX = 10000
_MAX_CONSECUTIVE_REJECTIONS = 25


@dataclass
class TrainingHistory:
    """What happened in one `train` call.

    Attributes:
        steps: optimiser step count at each evaluation (0 is the initial model).
        train_nll: mean action on (a fixed subset of up to 10^4 points of) the training split
            at each evaluation, nats per sample.
        val_nll: mean action on the validation split at each evaluation (on the training
            subset when validation=0).
        best_val_nll: the best validation NLL; the model is left in that state.
        best_step: the step at which it was reached.
        rejected_steps: the number of rejected (skipped or undone) steps.
        rejected_at: the step numbers at which a rejection happened.
        stopped_early: whether early stopping ended the run before `steps`.
        outside_fraction: fraction of the training split outside the final model's domain.
        device: the device trained on, e.g. "cpu" or "cuda:0".
        seconds: wall-clock time of the call.
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


@torch.no_grad()
def _mean_action(model: PolynomialINN, x: torch.Tensor) -> float:
    """Mean action over x: (n, N), in chunks; inf when any point is outside the domain."""
    total = sum(float(model._action(chunk).sum()) for chunk in x.split(_EVAL_CHUNK))
    return total / x.shape[0]


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
) -> TrainingHistory:
    """Fit `model` to `data` by maximum likelihood (minimum mean action).

    The data are split once (seeded) into training and validation parts; the standardisation
    is fixed to the training part when the model has standardize=True and none is set. Adam
    runs `steps` steps on minibatches (reshuffled every epoch) with the learning rate decaying
    as a cosine from `lr` to `lr * final_lr_fraction`. Every `eval_every` steps the training
    and validation NLL are recorded; after `patience` evaluations without a new best
    validation NLL training stops, and the model is left in its best state. See the module
    docstring for the guard against non-finite steps. The data move to the device once; the
    model goes back to its original device at the end. `model.training_info` receives a
    JSON-able summary of the run (saved by `model.save`).

    Arguments:
        model: the network; trained in place, in its dtype.
        data: (n, N) torch tensor or numpy array of samples, no NaN/inf, or an
            `inntheory.SampleResult` (its `x` is used).
        steps: the maximum number of optimiser steps.
        batch_size: minibatch size (capped at the training split size).
        lr: initial learning rate.
        final_lr_fraction: the learning rate at the last step, relative to `lr`.
        validation: fraction of the data held out, in [0, 1); 0 tracks the training NLL.
        eval_every: steps between evaluations.
        patience: evaluations without improvement before stopping early.
        seed: seed of the split and of the minibatch order.
        device: "auto" (CUDA when present, else CPU), or any device `resolve_device` takes.
        progress: show a tqdm progress bar.

    Returns:
        The `TrainingHistory`.

    Example:
        >>> data = torch.randn(500, 2) * torch.tensor([1.0, 3.0])
        >>> model = PolynomialINN(2, depth=1)
        >>> history = train(model, data, steps=100, progress=False, device="cpu")
        >>> history.best_val_nll < 5
        True
    """
    start = time.perf_counter()
    if not isinstance(model, PolynomialINN):
        raise TypeError(f"model must be a PolynomialINN, got {type(model).__name__}")
    steps = _check_positive_int("steps", steps)
    batch_size = _check_positive_int("batch_size", batch_size)
    eval_every = _check_positive_int("eval_every", eval_every)
    patience = _check_positive_int("patience", patience)
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not (isinstance(final_lr_fraction, int | float) and 0 < final_lr_fraction <= 1):
        raise ValueError(f"final_lr_fraction must be in (0, 1], got {final_lr_fraction!r}")
    if not (isinstance(validation, int | float) and 0 <= validation < 1):
        raise ValueError(f"validation must be a fraction in [0, 1), got {validation!r}")
    target = resolve_device(device)
    home = model.weight.device
    data = _as_data(data, model.dim, model.weight.dtype)

    generator = torch.Generator().manual_seed(int(seed))
    n = data.shape[0]
    n_val = max(1, round(validation * n)) if validation > 0 else 0
    if n - n_val < 2:
        raise ValueError(f"{n} samples leave fewer than 2 for training after the split")
    order = torch.randperm(n, generator=generator)
    train_x, val_x = data[order[n_val:]], data[order[:n_val]]
    if model.standardize and not model.is_standardized:
        model.standardize_to(train_x)
    train_x = train_x.to(target)
    eval_x = train_x[:_TRAIN_EVAL_MAX]
    val_x = val_x.to(target) if n_val else eval_x
    n_train = train_x.shape[0]
    batch_size = min(batch_size, n_train)

    model.to(target)
    history = TrainingHistory(device=str(target))
    try:
        _fit(model, train_x, eval_x, val_x, history, generator, steps, batch_size, lr,
             final_lr_fraction, eval_every, patience, progress)
        history.outside_fraction = 1.0 - float(
            torch.cat([model.in_domain(c) for c in train_x.split(_EVAL_CHUNK)]).double().mean()
        )
    finally:
        model.to(home)
    history.seconds = time.perf_counter() - start
    model.training_info = {
        "n_train": n_train,
        "n_val": n_val,
        "steps_run": history.steps[-1] if history.steps else 0,
        "best_step": history.best_step,
        "best_val_nll": history.best_val_nll,
        "rejected_steps": history.rejected_steps,
        "stopped_early": history.stopped_early,
        "outside_fraction": history.outside_fraction,
        "batch_size": batch_size,
        "lr": lr,
        "final_lr_fraction": final_lr_fraction,
        "seed": int(seed),
        "device": history.device,
        "seconds": history.seconds,
    }
    return history


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
    """The optimisation loop of `train` (arguments already validated, all on one device)."""
    initial = _mean_action(model, train_x)
    if not math.isfinite(initial):
        outside = 1.0 - float(model.in_domain(train_x).double().mean())
        raise ValueError(
            f"the initial model gives a non-finite NLL on the training data ({outside:.2%} "
            "of it lies outside the model's domain)"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, foreach=True)
    snapshot = _Snapshot(params, optimizer)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    backoff, stale, consecutive = 1.0, 0, 0
    n_train = train_x.shape[0]
    permutation, cursor = None, n_train

    def evaluate(step: int) -> bool:
        """Record the NLLs at `step`; return whether patience ran out."""
        nonlocal best_state, stale
        val_nll = _mean_action(model, val_x)
        history.steps.append(step)
        history.train_nll.append(_mean_action(model, eval_x))
        history.val_nll.append(val_nll)
        if val_nll < history.best_val_nll:
            history.best_val_nll, history.best_step, stale = val_nll, step, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        return stale >= patience

    evaluate(0)
    bar = tqdm(total=steps, disable=not progress, desc="training", leave=False)
    step = 0
    while step < steps:
        if cursor + batch_size > n_train:
            permutation = torch.randperm(n_train, generator=generator).to(train_x.device)
            cursor = 0
        batch = train_x[permutation[cursor : cursor + batch_size]]
        cursor += batch_size
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
            progress_fraction = (step - 1) / max(steps - 1, 1)
            cosine = 0.5 * (1 + math.cos(math.pi * progress_fraction))
            for group in optimizer.param_groups:
                group["lr"] = lr * backoff * (final_lr_fraction + (1 - final_lr_fraction) * cosine)
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
            if evaluate(step):
                history.stopped_early = step < steps
                break
            bar.set_postfix(val_nll=f"{history.val_nll[-1]:.4f}")
    bar.close()
    if not history.steps or history.steps[-1] != step:
        evaluate(step)
    model.load_state_dict(best_state)
