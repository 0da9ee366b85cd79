"""Many-chain HMC and MALA for any target, in one ``(C, N)`` batch.

The burn-in adapts the step size (dual averaging) and measures the autocorrelation time ``tau``
of the :data:`OBSERVABLES`; production keeps every ``ceil(tau)``-th move. Every move, the
optional global flip ``x -> -x`` included, is a Metropolis-Hastings step, exact for any target;
a proposal with a NaN or infinite position, action or gradient is rejected.

References: Duane et al. (1987) (HMC); Roberts, Tweedie (1996) (MALA); Hoffman, Gelman,
arXiv:1111.4246 (dual averaging); Sokal (1996) (windowing); Vehtari et al., arXiv:1903.08008.
"""

from __future__ import annotations

import itertools
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ._checks import check_seed

__all__ = ["OBSERVABLES", "SampleResult", "integrated_autocorrelation_time", "sample",
           "split_rhat"]

OBSERVABLES = ("mean", "mean_square", "action_per_site")
"""The per-configuration site averages of ``x`` and ``x^2`` and ``S(x) / N``, whose
autocorrelation sets the thinning."""

_TARGET_ACCEPTANCE = {"hmc": 0.8, "mala": 0.57}
# HMC trajectory length (leapfrog steps x step size) when n_steps is None, and its most steps.
_TRAJECTORY = 1.0
_MAX_STEPS = 200
# CPU leapfrog blocks of chains hold about this many values (256 KB, cache-sized); one elsewhere.
_BLOCK_ELEMENTS = 2**15
# Production steps after which a chain that accepted none of them is called stuck.
_STUCK_ITERATIONS = 50


@dataclass
class SampleResult:
    """Samples ``x: (n, N)`` on the CPU and JSON-able ``diagnostics``: ``method``, ``n_chains``,
    ``step_size``, ``acceptance`` (mean acceptance probability in production), ``tau`` (largest
    integrated autocorrelation time over :data:`OBSERVABLES`, in thinned draws), ``ess``
    (smallest effective sample size), ``rhat`` (largest split-R-hat), ``thinning``, ``seconds``,
    per-observable values under ``observables``, ``flip``, ``flip_acceptance`` and more."""

    x: Tensor
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.x.shape[0]


def integrated_autocorrelation_time(series: Tensor, window_factor: float = 5.0) -> Tensor:
    """Integrated autocorrelation times of ``series: (T, C, K)`` (``T`` steps of ``C`` chains
    for ``K`` observables) or ``(T, C)``: ``(K,)`` or a scalar.

    The autocovariance is estimated per chain by FFT around the mean pooled over all chains (so
    chains stuck in different places show up as long correlations) and averaged over chains;
    ``tau(W) = 1 + 2 sum_{t=1}^{W} rho(t)`` with the smallest window ``W >= c tau(W)``, ``c`` the
    ``window_factor`` (Sokal). ``tau >= 1 / log10(T C)`` (ESS capped as in Stan); 1 for a
    constant observable, ``T`` when no window qualifies (too short a chain), NaN for ``T < 2``.
    """
    x = series.unsqueeze(-1) if series.ndim == 2 else series
    steps = x.shape[0]
    if steps < 2:
        tau = torch.full(x.shape[2:], math.nan, dtype=x.dtype, device=x.device)
    else:
        centred = x - x.mean(dim=(0, 1), keepdim=True)
        spectrum = torch.fft.rfft(centred, n=2 * steps, dim=0)
        acov = torch.fft.irfft(spectrum.abs().square(), n=2 * steps, dim=0)[:steps].mean(dim=1)
        var = acov[0]
        rho = acov / torch.where(var > 0, var, torch.ones_like(var))
        taus = 1 + 2 * torch.cumsum(rho[1:], dim=0)
        windows = torch.arange(1, steps, dtype=x.dtype, device=x.device)[:, None]
        ok = windows >= window_factor * taus
        first = torch.where(ok.any(dim=0), ok.int().argmax(dim=0), steps - 1)
        padded = torch.cat([taus, torch.full_like(taus[:1], float(steps))], dim=0)
        tau = padded.gather(0, first[None]).squeeze(0)
        tau = tau.clamp(min=1 / math.log10(max(steps * x.shape[1], 10)))
        tau = torch.where(var > 0, tau, torch.ones_like(tau))
    return tau[0] if series.ndim == 2 else tau


def split_rhat(series: Tensor) -> Tensor:
    """Split-R-hat (Gelman-Rubin on chains cut in halves) of ``series: (T, C, K)``, ``T >= 4``
    (or ``(T, C)``): ``(K,)`` (or a scalar); 1 for a constant observable, inf where every
    half-chain is constant but they differ (chains that never move)."""
    x = series.unsqueeze(-1) if series.ndim == 2 else series
    half = x.shape[0] // 2
    chains = torch.cat([x[:half], x[half : 2 * half]], dim=1)
    within = chains.var(dim=0).mean(dim=0)
    between = chains.mean(dim=0).var(dim=0)
    pooled = (half - 1) / half * within + between
    rhat = torch.where(within > 0, (pooled / torch.where(within > 0, within, 1.0)).sqrt(),
                       torch.where(between > 0, math.inf, 1.0).to(within))
    return rhat[0] if series.ndim == 2 else rhat


def _mask(values: Tensor, valid: Tensor, fill: float) -> Tensor:
    """``values`` with the rows where ``valid`` is false set to ``fill``."""
    if bool(valid.all()):
        return values
    shape = valid.shape + (1,) * (values.ndim - 1)
    return torch.where(valid.reshape(shape), values, torch.full_like(values, fill))


class _Evaluator:
    """Calls a target safely on a batch: non-finite input or output means ``S = inf``. A
    `TypeError` when the target lacks ``action``, ``grad`` or an int ``dim >= 1``."""

    def __init__(self, target: Any) -> None:
        for name in ("action", "grad"):
            if not callable(getattr(target, name, None)):
                raise TypeError(f"target must have a callable .{name}(x); got "
                                f"{type(target).__name__}")
        self.target, self.dim = target, getattr(target, "dim", None)
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise TypeError(f"target must have an int .dim >= 1, got {self.dim!r}")

    def _call(self, name: str, x: Tensor, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        """``target.<name>`` at ``x`` (non-finite rows zeroed), shape-checked; finite rows."""
        finite = torch.isfinite(x).all(dim=1)
        value = torch.as_tensor(getattr(self.target, name)(_mask(x, finite, 0.0))).detach()
        if value.shape != shape:
            raise ValueError(f"target.{name} must return shape {shape}, got "
                             f"{tuple(value.shape)}")
        return value, finite

    def action(self, x: Tensor) -> Tensor:
        s, finite = self._call("action", x, (x.shape[0],))
        return _mask(s.to(x.dtype), finite & torch.isfinite(s), math.inf)

    def grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The gradient (zero where invalid) and the mask of valid rows."""
        g, finite = self._call("grad", x, tuple(x.shape))
        valid = finite & torch.isfinite(g).all(dim=1)
        return _mask(g.to(x.dtype), valid, 0.0), valid

    def both(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``S`` (inf where the action or the gradient is invalid) and the gradient."""
        s = self.action(x)
        g, valid = self.grad(x)
        return _mask(s, valid, math.inf), g


def _resolve_device(device: str | torch.device, target: Any) -> torch.device:
    if device != "auto":
        return torch.device(device)
    if isinstance(target, torch.nn.Module):
        tensor = next(itertools.chain(target.parameters(), target.buffers()), None)
        if tensor is not None:
            return tensor.device
    if isinstance(getattr(target, "device", None), torch.device):
        return target.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_options(method: str, step_size: float, target_acceptance: float | None,
                   **counts: int | None) -> float:
    """Checks the options of :func:`sample` (``None`` counts are skipped); the acceptance aim."""
    if method not in _TARGET_ACCEPTANCE:
        raise ValueError(f"method must be one of {sorted(_TARGET_ACCEPTANCE)}, got {method!r}")
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        minimum = 20 if name == "burn_in" else 1
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a positive finite number, got {step_size!r}")
    delta = _TARGET_ACCEPTANCE[method] if target_acceptance is None else float(target_acceptance)
    if not 0 < delta < 1:
        raise ValueError(f"target_acceptance must lie in (0, 1), got {delta}")
    return delta


def _observables(x: Tensor, s: Tensor) -> Tensor:
    """``(C, N), (C,) -> (C, 3)``: the :data:`OBSERVABLES`."""
    return torch.stack([x.mean(dim=1), x.square().mean(dim=1), s / x.shape[1]], dim=1)


class _Chains:
    """All chains, ``x: (C, N)``, ``s: (C,)``, ``g: (C, N)`` and ``moved: (C,)`` (accepted an
    HMC/MALA step since it was reset), and their Metropolis-Hastings moves, drawing random
    numbers from ``gen`` in a fixed order. They start from ``init`` (see :func:`sample`)."""

    def __init__(self, evaluator: _Evaluator, method: str, n_steps: int | None, flip: bool,
                 n_chains: int, gen: torch.Generator, dtype: torch.dtype,
                 init: Tensor | None) -> None:
        self.evaluator, self.method, self.n_steps, self.flip = evaluator, method, n_steps, flip
        self.gen, self.dev, self.dtype = gen, gen.device, dtype
        self.n_chains, self.dim = n_chains, evaluator.dim
        self.block = max(1, _BLOCK_ELEMENTS // self.dim) if self.dev.type == "cpu" else n_chains
        self.moved: Tensor | None = None
        if init is None:
            x = self._randn()
        else:
            x = torch.as_tensor(init, device=self.dev, dtype=dtype)
            if x.shape == (self.dim,):
                x = x.expand(n_chains, self.dim).clone()
            if x.shape != (n_chains, self.dim):
                raise ValueError(f"init must have shape ({n_chains}, {self.dim}) or "
                                 f"({self.dim},), got {tuple(x.shape)}")
        s, g = evaluator.both(x)
        valid = torch.isfinite(s)
        if not valid.any():
            raise ValueError("the target's action or gradient is not finite at any of the "
                             "initial states; pass init= with points inside the target's domain")
        self.x, self.s, self.g = x, s, g
        if not valid.all():
            source = torch.nonzero(valid).squeeze(1)
            source = source[torch.arange(n_chains, device=self.dev) % source.numel()]
            self._accept(~valid, x[source], s[source], g[source])

    def _rand(self, *shape: int) -> Tensor:
        return torch.rand(*shape, generator=self.gen, device=self.dev, dtype=self.dtype)

    def _randn(self) -> Tensor:
        return torch.randn(self.n_chains, self.dim, generator=self.gen, device=self.dev,
                           dtype=self.dtype)

    def _accept(self, accept: Tensor, x: Tensor, s: Tensor, g: Tensor) -> None:
        """Moves the chains where ``accept: (C,)`` is true to ``(x, s, g)``."""
        self.x = torch.where(accept[:, None], x, self.x)
        self.s = torch.where(accept, s, self.s)
        self.g = torch.where(accept[:, None], g, self.g)

    def leapfrog_steps(self, eps: float) -> int:
        """``n_steps``, or for ``None`` the steps of a trajectory of length ``_TRAJECTORY``."""
        automatic = min(max(1, math.ceil(_TRAJECTORY / eps)), _MAX_STEPS)
        return automatic if self.n_steps is None else self.n_steps

    def _hmc(self, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Leapfrog with the step jittered by +-20 % per chain: proposal and log ratio. The
        trajectories run per block of chains on random numbers drawn for all at once."""
        e = eps * (1 + 0.2 * (2 * self._rand(self.n_chains, 1) - 1))
        q = self._randn()
        y, gy = self.x.clone(), torch.empty_like(self.x)
        log_a, sy = torch.empty_like(self.s), torch.empty_like(self.s)
        n_steps = self.leapfrog_steps(eps)
        for rows in (slice(i, i + self.block) for i in range(0, self.n_chains, self.block)):
            sy[rows], log_a[rows] = self._leapfrog(y[rows], q[rows], gy[rows], self.s[rows],
                                                   self.g[rows], e[rows], n_steps)
        return y, sy, gy, log_a

    def _leapfrog(self, y: Tensor, q: Tensor, gy: Tensor, s: Tensor, g: Tensor, e: Tensor,
                  n_steps: int) -> tuple[Tensor, Tensor]:
        """``n_steps`` leapfrog steps, ``y``, ``q`` and the end gradient ``gy`` in place; the
        end action (inf where any step was invalid) and the log Metropolis ratio."""
        h0 = s + 0.5 * q.square().sum(dim=1)
        q.addcmul_(g, e, value=-0.5)
        valid = torch.ones(y.shape[0], dtype=torch.bool, device=y.device)
        for i in range(n_steps):
            y.addcmul_(q, e)
            grad, ok = self.evaluator.grad(y)
            valid &= ok
            q.addcmul_(grad, e, value=-1.0 if i < n_steps - 1 else -0.5)
        gy.copy_(grad)
        sy = torch.where(valid, self.evaluator.action(y), torch.full_like(s, math.inf))
        return sy, h0 - (sy + 0.5 * q.square().sum(dim=1))

    def _mala(self, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Langevin proposal and its log Metropolis-Hastings ratio."""
        noise = self._randn()
        y = self.x - 0.5 * eps**2 * self.g + eps * noise
        sy, gy = self.evaluator.both(y)
        back = self.x - y + 0.5 * eps**2 * gy
        log_q_ratio = 0.5 * noise.square().sum(dim=1) - back.square().sum(dim=1) / (2 * eps**2)
        return y, sy, gy, self.s - sy + log_q_ratio

    def step(self, eps: float) -> Tensor:
        """One MH step of every chain, in place; returns the acceptance probabilities."""
        y, sy, gy, log_a = (self._hmc if self.method == "hmc" else self._mala)(eps)
        log_a = torch.nan_to_num(log_a, nan=-math.inf, posinf=math.inf)
        prob = log_a.clamp(max=0).exp()
        accept = self._rand(self.n_chains) < prob
        self._accept(accept, y, sy, gy)
        if self.moved is not None:  # the flip alone (x -> -x) does not count as moving
            self.moved |= accept
        return prob

    def global_flip(self) -> Tensor:
        """Proposes ``-x`` with probability 1/2 per chain (always flipping would only make the
        sign alternate) and accepts it with ``min(1, exp(S(x) - S(-x)))``."""
        sy, gy = self.evaluator.both(-self.x)
        prob = torch.nan_to_num(self.s - sy, nan=-math.inf).clamp(max=0).exp()
        u = self._rand(2, self.n_chains)
        self._accept((u[0] < 0.5) & (u[1] < prob), -self.x, sy, gy)
        return prob

    def move(self, eps: float) -> tuple[Tensor, Tensor | None]:
        """:meth:`step`, then the flip when on; both acceptance probabilities."""
        prob = self.step(eps)
        return prob, (self.global_flip() if self.flip else None)


def _burn_in(chains: _Chains, step_size: float, target_acceptance: float, burn_in: int,
             bar: Any) -> tuple[float, Tensor]:
    """The step size and the pilot's observables ``(T, C, 3)``: the first half of ``burn_in``
    adapts ``log(step)`` towards ``target_acceptance`` by Nesterov dual averaging (Hoffman &
    Gelman 2014, section 3.2.1); the second half moves at the final, averaged step."""
    mu, h_bar, t0, gamma, kappa = math.log(10 * step_size), 0.0, 10.0, 0.05, 0.75
    eps, log_step_bar = step_size, math.log(step_size)
    for m in range(1, burn_in // 2 + 1):
        prob, _ = chains.move(eps)
        h_bar += ((target_acceptance - float(prob.mean())) - h_bar) / (m + t0)
        log_step = mu - math.sqrt(m) / gamma * h_bar
        eta = m ** (-kappa)
        log_step_bar = eta * log_step + (1 - eta) * log_step_bar
        eps = math.exp(log_step)
        bar.update()
    eps = math.exp(log_step_bar)
    pilot = torch.empty(burn_in - burn_in // 2, chains.n_chains, len(OBSERVABLES),
                        device=chains.dev, dtype=chains.dtype)
    for t in range(pilot.shape[0]):
        chains.move(eps)
        pilot[t] = _observables(chains.x, chains.s)
        bar.update()
    return eps, pilot


def _choose_thinning(tau: float, pilot: int, max_thinning: int) -> int:
    """``ceil(tau)`` in ``[1, max_thinning]``; warns when the pilot is shorter than ``5 tau``."""
    if tau * 5 >= pilot:
        warnings.warn(f"the pilot ({pilot} iterations) is short for the measured tau = "
                      f"{tau:.1f}; increase burn_in for a reliable thinning", RuntimeWarning,
                      stacklevel=3)
    return min(max(1, math.ceil(tau)), max_thinning)


@dataclass
class _Production:
    draws: Tensor  # (T, C, N)
    trace: Tensor  # (T, C, 3)
    acceptance: float
    flip_acceptance: float | None
    moved_chains: int  # chains that accepted at least one step
    iterations: int  # steps per chain

    @property
    def stuck_chains(self) -> int:
        """Chains that never moved, where that is telling: all of them, or any after at least
        ``_STUCK_ITERATIONS`` steps (a few rejections in a row are normal)."""
        stuck = self.trace.shape[1] - self.moved_chains
        return stuck if self.moved_chains == 0 or self.iterations >= _STUCK_ITERATIONS else 0

    def warn_stuck(self, eps: float) -> None:
        """Says plainly when chains never moved: their draws are their starting points."""
        if not (stuck := self.stuck_chains):
            return
        what = ("no chain moved" if stuck == self.trace.shape[1] else
                f"{stuck} of {self.trace.shape[1]} chains never moved in {self.iterations} steps")
        warnings.warn(f"{what}: no proposal was accepted in production (acceptance "
                      f"{self.acceptance:.2g}, step size {eps:.3g}), so those draws are the "
                      "chains' starting points, not samples of the target; their ESS is "
                      "counted as 0. The action may be too steep (huge couplings) or infinite "
                      "almost everywhere", RuntimeWarning, stacklevel=3)

    def diagnostics(self, pilot_tau: Tensor, n_samples: int) -> dict[str, Any]:
        """``tau``, ESS and split-R-hat of the trace: the worst over :data:`OBSERVABLES` and
        each one under ``observables``. A stuck chain adds nothing to the ESS."""
        tau = integrated_autocorrelation_time(self.trace)
        rhat = split_rhat(self.trace) if len(self.trace) >= 4 else torch.full_like(tau, math.nan)
        ess = n_samples / tau * (1 - self.stuck_chains / self.trace.shape[1])
        observables = {
            name: {"tau": float(tau[k]), "ess": float(ess[k]), "rhat": float(rhat[k]),
                   "pilot_tau": float(pilot_tau[k])}
            for k, name in enumerate(OBSERVABLES)
        }
        return {"tau": float(tau.max()), "ess": float(ess.min()), "rhat": float(rhat.max()),
                "pilot_tau": float(pilot_tau.max()), "observables": observables}


def _produce(chains: _Chains, eps: float, per_chain: int, thinning: int, bar: Any
             ) -> _Production:
    """``per_chain`` draws per chain, each after ``thinning`` moves."""
    shape = (per_chain, chains.n_chains)
    draws = torch.empty(*shape, chains.dim, device=chains.dev, dtype=chains.dtype)
    trace = torch.empty(*shape, len(OBSERVABLES), device=chains.dev, dtype=chains.dtype)
    accepted, flipped = torch.zeros(2, device=chains.dev, dtype=chains.dtype)
    chains.moved = torch.zeros(chains.n_chains, dtype=torch.bool, device=chains.dev)
    for t in range(per_chain):
        for _ in range(thinning):
            prob, flip_prob = chains.move(eps)
            accepted += prob.mean()
            if flip_prob is not None:
                flipped += flip_prob.mean()
            bar.update()
        draws[t] = chains.x
        trace[t] = _observables(chains.x, chains.s)
    iterations = per_chain * thinning
    return _Production(draws, trace, float(accepted) / iterations,
                       float(flipped) / iterations if chains.flip else None,
                       int(chains.moved.sum()), iterations)


def sample(target: Any, n_samples: int, *, method: str = "hmc", seed: int = 0,
           device: str | torch.device = "auto", progress: bool = True, n_chains: int = 128,
           burn_in: int = 400, n_steps: int | None = None, step_size: float = 0.1,
           target_acceptance: float | None = None, flip: bool | None = None,
           thinning: int | None = None, max_thinning: int = 100, init: Tensor | None = None,
           dtype: torch.dtype = torch.float64) -> SampleResult:
    """Draws ``n_samples`` configurations from ``exp(-S(x))`` with many parallel chains.

    Arguments:
        target: A *target* (``.dim``, ``action``, ``grad``; torch in, torch out).
        n_samples: How many samples to return, ``>= 1``.
        method: ``"hmc"`` (leapfrog, step size jittered by +-20 % per chain and iteration) or
            ``"mala"`` (Metropolis-adjusted Langevin).
        seed: Seed of the ``torch.Generator``; equal seeds give equal samples on one device.
        device: ``"auto"`` (the target's device if it has tensors, else cuda when available,
            else cpu), or any torch device.
        progress: Show a tqdm bar (never when the environment variable ``CI`` is set).
        n_chains: Chains run in parallel.
        burn_in: Iterations discarded, at least 20: the first half adapts the step size, the
            second half measures ``tau`` for the thinning.
        n_steps: Leapfrog steps per HMC trajectory (ignored by MALA); ``None`` keeps the
            trajectory length at 1 (``ceil(1 / step)`` steps, at most 200).
        step_size: Initial step size for the adaptation.
        target_acceptance: Mean acceptance aimed at; ``None``: 0.8 (HMC), 0.57 (MALA).
        flip: Add the Metropolis-accepted global flip ``x -> -x`` after every step; ``None``
            turns it on when the target has a true ``symmetric`` attribute.
        thinning: Keep every ``thinning``-th iteration; ``None`` uses ``ceil(tau)`` of the
            slowest observable from the pilot, at most ``max_thinning``.
        max_thinning: Upper bound of the automatic thinning.
        init: Starting points ``(n_chains, N)`` or ``(N,)`` (``None``: standard normal draws);
            chains starting where the action or gradient is not finite restart from valid ones.
        dtype: Floating dtype of the chains.

    Returns:
        A :class:`SampleResult` with ``x: (n_samples, N)`` on the CPU, ordered draw by draw
        across chains, and its diagnostics.
    """
    delta = _check_options(method, step_size, target_acceptance, n_samples=n_samples,
                           n_chains=n_chains, burn_in=burn_in, n_steps=n_steps,
                           max_thinning=max_thinning, thinning=thinning)
    evaluator = _Evaluator(target)
    flip = bool(flip) if flip is not None else getattr(target, "symmetric", False) is True
    dev = _resolve_device(device, target)
    gen = torch.Generator(device=dev).manual_seed(check_seed(seed))
    start = time.perf_counter()
    chains = _Chains(evaluator, method, n_steps, flip, n_chains, gen, dtype, init)
    bars: dict[str, Any] = {"leave": False}  # else tqdm's defaults (and TQDM_*)
    if not progress or os.environ.get("CI"):
        bars["disable"] = True
    with tqdm(total=burn_in, desc=f"{method} burn-in", **bars) as bar:
        eps, pilot_trace = _burn_in(chains, float(step_size), delta, burn_in, bar)
    pilot_tau = integrated_autocorrelation_time(pilot_trace)
    if thinning is None:
        thinning = _choose_thinning(float(pilot_tau.max()), len(pilot_trace), max_thinning)
    per_chain = math.ceil(n_samples / n_chains)
    with tqdm(total=per_chain * thinning, desc=f"{method} sampling", **bars) as bar:
        production = _produce(chains, eps, per_chain, thinning, bar)

    production.warn_stuck(eps)
    diagnostics: dict[str, Any] = {
        "method": method, "n_samples": n_samples, "n_chains": n_chains, "burn_in": burn_in,
        "n_steps": chains.leapfrog_steps(eps) if method == "hmc" else 1, "step_size": eps,
        "target_acceptance": delta, "acceptance": production.acceptance, "flip": flip,
        "flip_acceptance": production.flip_acceptance, "thinning": thinning,
        "moved_chains": production.moved_chains,
        **production.diagnostics(pilot_tau, n_samples),
        "seed": int(seed), "device": str(dev), "dtype": str(dtype).removeprefix("torch."),
        "seconds": time.perf_counter() - start,
    }
    return SampleResult(production.draws.reshape(-1, evaluator.dim)[:n_samples].cpu(),
                        diagnostics)
