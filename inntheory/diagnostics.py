"""Does a fitted model reproduce its data? :func:`goodness_of_fit` compares the model's own
samples with data; :func:`fisher_divergence` is the data-weighted error of a gradient."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._checks import check_samples as _as_samples
from .comparison import compare_cumulants

__all__ = ["GoodnessOfFit", "Statistic", "fisher_divergence", "goodness_of_fit", "site_cumulants"]

_N_SIGMA = 5.0
_MASS_LIMIT = 1e-3
_INVALID_LIMIT = 1e-3
_FALSE_ALARM = 1e-4


@dataclass(frozen=True)
class Statistic:
    """One statistic, e.g. "kappa_2" (pooled single-site) or "nn covariance", in the model's
    samples and the data; ``sigma`` the combined jackknife standard error
    ``sqrt(se_data^2 + se_model^2)``, ``tolerance`` the largest accepted ``|model - data|``."""

    name: str
    model: float
    data: float
    sigma: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return abs(self.model - self.data) <= self.tolerance

    def sentence(self, where: str = "") -> str:
        """The failure in words (``where``: e.g. " at site 3")."""
        change = f" ({(self.model - self.data) / abs(self.data):+.0%})" if self.data != 0 else ""
        z = abs(self.model - self.data) / self.sigma if self.sigma > 0 else math.inf
        return (f"{self.name}{where} of the model is {self.model:.4g} against the data's "
                f"{self.data:.4g} +- {self.sigma:.2g}{change}: off by {z:.0f} sigma, beyond "
                f"the tolerance {self.tolerance:.2g}")


@dataclass
class GoodnessOfFit:
    """The result of :func:`goodness_of_fit`.

    Attributes:
        statistics: pooled single-site kappa_1..kappa_4, then the nearest-neighbour
            covariance (lattice only).
        sites: {k: (site, ratio)}, the site of largest |model - data| / tolerance per order.
        data_range: max |x - mean| over every entry of the data (mean per site).
        beyond_fraction, beyond_limit: the share of model samples with some entry beyond
            `data_range`, and the share above which that fails.
        invalid_fraction: the share of latent draws without a pre-image while sampling.
        n_model, n_data, rtol: the sizes of the two sets and the relative tolerance.
        warnings: one plain sentence per failure; empty when the fit passes.
    """

    statistics: list[Statistic]
    sites: dict[int, tuple[int, float]]
    data_range: float
    beyond_fraction: float
    beyond_limit: float
    invalid_fraction: float
    n_model: int
    n_data: int
    rtol: float
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def statistic(self, name: str) -> Statistic:
        """The statistic called `name` (e.g. "kappa_2")."""
        for item in self.statistics:
            if item.name == name:
                return item
        raise KeyError(f"no statistic {name!r}; have {[s.name for s in self.statistics]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {**asdict(self), "sites": {str(k): list(v) for k, v in self.sites.items()},
                "ok": self.ok}

    def __str__(self) -> str:
        lines = [f"Goodness of fit: {self.n_model} model samples against {self.n_data} data "
                 f"(sigma: jackknife; tolerance max({_N_SIGMA:g} sigma, {self.rtol:g} scale))",
                 f"{'statistic':<16}{'model':>11}{'data':>11}{'sigma':>10}{'tolerance':>10}  ok"]
        for s in self.statistics:
            lines.append(f"{s.name:<16}{s.model:>11.4g}{s.data:>11.4g}{s.sigma:>10.2g}"
                         f"{s.tolerance:>10.2g}  {'yes' if s.ok else 'NO'}")
        k, (site, ratio) = max(self.sites.items(), key=lambda item: item[1][1])
        lines.append(f"worst site: kappa_{k} at site {site}, {ratio:.2f} x tolerance")
        lines.append(f"beyond the data range (|x - mean| > {self.data_range:.3g}): "
                     f"{self.beyond_fraction:.3%} (limit {self.beyond_limit:.3%})")
        lines.extend(f"WARNING: {w}" for w in self.warnings)
        lines.append("ok" if self.ok else "FAILED")
        return "\n".join(lines)


def _neighbour_pairs(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """(x_i, x_{i + e_mu}) for every site and axis, grouped by configuration: (n d N, 2)."""
    field_ = x.reshape(x.shape[0], *shape)
    partners = [torch.roll(field_, -1, dims=1 + axis).reshape(x.shape) for axis in
                range(len(shape))]
    return torch.stack([torch.stack([x, p], dim=-1) for p in partners], dim=1).reshape(-1, 2)


def _statistics(data: Tensor, samples: Tensor, shape: tuple[int, ...] | None,
                rtol: float) -> tuple[list[Statistic], float]:
    """The pooled kappa_1..4, then the nearest-neighbour covariance (with a lattice); and the
    pooled site standard deviation ``sigma_data``."""
    pooled = compare_cumulants(data.reshape(-1, 1), samples.reshape(-1, 1), order=4)
    scale = float(pooled.data[2].flatten()[0]) ** 0.5
    entries = [(f"kappa_{k}", pooled, k, 0) for k in range(1, 5)]  # name, cumulants, k, entry
    if shape is not None:
        pairs = compare_cumulants(_neighbour_pairs(data, shape),
                                  _neighbour_pairs(samples, shape), order=2)
        entries.append(("nn covariance", pairs, 2, 1))  # entry (0, 1) of kappa_2
    result = []
    for name, c, k, i in entries:
        model, value = (float(t[k].flatten()[i]) for t in (c.samples, c.data))
        sigma = float((c.data_error[k].flatten()[i] ** 2
                       + c.samples_error[k].flatten()[i] ** 2).sqrt())
        result.append(Statistic(name, model, value, sigma, max(_N_SIGMA * sigma, rtol * scale**k)))
    return result, scale


def _raw_to_cumulants(m: Tensor) -> Tensor:
    """Cumulants kappa_1..4 of one variable from its raw moments m[..., 0..3] = E[y^1..4]."""
    m1, m2, m3, m4 = m.unbind(-1)
    return torch.stack([m1, m2 - m1**2, m3 - 3 * m1 * m2 + 2 * m1**3,
                        m4 - 4 * m1 * m3 - 3 * m2**2 + 12 * m2 * m1**2 - 6 * m1**4], dim=-1)


def site_cumulants(x: Tensor, n_blocks: int = 20) -> tuple[Tensor, Tensor]:
    """kappa_1..4 of every site of ``x: (n, N)`` and their delete-one-block jackknife errors,
    (N, 4) each: :func:`inntheory.comparison.compare_cumulants` of each column, all at once."""
    shift = x.mean(0)
    blocks = torch.tensor_split(x - shift, min(n_blocks, x.shape[0]))
    sums = torch.stack([torch.stack([(b**j).sum(0) for j in range(1, 5)], -1) for b in blocks])
    counts = torch.tensor([b.shape[0] for b in blocks], dtype=x.dtype)
    total = sums.sum(0)
    estimate = _raw_to_cumulants(total / x.shape[0])
    leave_out = _raw_to_cumulants((total - sums) / (x.shape[0] - counts)[:, None, None])
    m = len(blocks)
    error = ((m - 1) / m * ((leave_out - leave_out.mean(0)) ** 2).sum(0)).sqrt()
    estimate[:, 0] += shift
    return estimate, error


def _sites(data: Tensor, samples: Tensor, scale: float, rtol: float
           ) -> tuple[dict[int, tuple[int, float]], list[str]]:
    """Per order the worst site (|diff| / tolerance) and a sentence for each failing order."""
    kappa_data, error_data = site_cumulants(data)
    kappa_model, error_model = site_cumulants(samples)
    sigma = (error_data**2 + error_model**2).sqrt()
    powers = torch.arange(1, 5, dtype=data.dtype)
    tolerance = torch.maximum(_N_SIGMA * sigma, rtol * scale**powers)
    ratio = (kappa_model - kappa_data).abs() / tolerance
    worst: dict[int, tuple[int, float]] = {}
    failures = []
    for k in range(1, 5):
        site = int(ratio[:, k - 1].argmax())
        worst[k] = (site, float(ratio[site, k - 1]))
        if worst[k][1] > 1:
            values = (float(t[site, k - 1]) for t in (kappa_model, kappa_data, sigma, tolerance))
            failures.append(Statistic(f"kappa_{k}", *values).sentence(f" at site {site}"))
    return worst, failures


def goodness_of_fit(model: Any, data: Any, n_samples: int | None = None, seed: int = 0, *,
                    lattice: Any = None, rtol: float = 0.05) -> GoodnessOfFit:
    """Compare a model's own samples with (validation) data: the single-site cumulants
    kappa_1..kappa_4 (pooled and site by site), the nearest-neighbour covariance when a lattice
    is known, and the share of model samples beyond the data's range.

    A statistic fails when the model is off by more than max(5 sigma, rtol * sigma_data^k),
    sigma the combined jackknife standard error and sigma_data^2 the pooled site variance. The
    range check fails when more than 0.1 % of the model samples leave the data's range and more
    than a model equal to the data puts there with probability 1e-4 (`_chance_count`).

    Arguments:
        model: anything with ``sample(n, seed=...) -> (n, N)`` (a `PolynomialINN`), and
            optionally ``lattice`` and ``last_sample_invalid`` (the share of latent draws
            without a pre-image).
        data: (n_data, N), ideally held out from training.
        n_samples, seed: how many model samples to draw (None: n_data), with which seed.
        lattice: the lattice shape for the neighbour covariance; None: the model's ``lattice``
            (no neighbour check when neither is known).
        rtol: the relative tolerance (above).

    Returns:
        A :class:`GoodnessOfFit`: ``.ok``, ``.warnings`` (sentences), ``str()`` a table.
    """
    x = _as_samples(data, "data")
    n_data, dim = x.shape
    n_model = n_data if n_samples is None else n_samples
    if isinstance(n_model, bool) or not isinstance(n_model, (int, np.integer)) or n_model < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    rtol = float(rtol)
    if not rtol >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")
    shape = lattice if lattice is not None else getattr(model, "lattice", None)
    if shape is not None:
        shape = tuple(int(n) for n in shape)
        if math.prod(shape) != dim:
            raise ValueError(f"lattice {shape} does not fit the data: N = {dim} sites")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "[0-9]+ of [0-9]+ latent draws", RuntimeWarning)
        y = _as_samples(model.sample(int(n_model), seed=seed), "model samples")
    if y.shape[1] != dim:
        raise ValueError(f"the model draws N = {y.shape[1]} sites but the data have N = {dim}")
    invalid = float(getattr(model, "last_sample_invalid", 0.0))
    statistics, scale = _statistics(x, y, shape, rtol)
    sites, site_failures = _sites(x, y, scale, rtol)
    mean = x.mean(0)
    data_range = float((x - mean).abs().max())
    beyond = float(((y - mean).abs() > data_range).any(1).double().mean())
    beyond_limit = max(_MASS_LIMIT, _chance_count(y.shape[0], n_data) / y.shape[0])
    found: list[str] = []
    if beyond > beyond_limit:
        found.append(f"the model puts {beyond:.2%} of its mass beyond |x - mean| = "
                     f"{data_range:.3g}, where the data have none; site variance "
                     f"{statistics[1].model:.3g} vs {statistics[1].data:.3g}")
    found.extend(s.sentence() for s in statistics if not s.ok)
    found.extend(site_failures)
    if invalid > _INVALID_LIMIT:
        found.append(f"{invalid:.2%} of the model's latent draws have no pre-image: its "
                     "density misses that mass outside its domain")
    return GoodnessOfFit(statistics, sites, data_range, beyond, beyond_limit, invalid,
                         y.shape[0], n_data, rtol, found)


def _chance_count(n_model: int, n_data: int) -> int:
    """The most model samples beyond the data's extreme that a model equal to the data gives
    with probability >= 1e-4: P(the k largest of n_model + n_data exchangeable values all
    come from the model) = prod_{j<k} (n_model - j) / (n_model + n_data - j)."""
    probability, k = 1.0, 0
    while probability >= _FALSE_ALARM and k < n_model:
        probability *= (n_model - k) / (n_model + n_data - k)
        k += 1
    return k - 1 if probability < _FALSE_ALARM else n_model


def fisher_divergence(learned: Any, true: Any, data: Any) -> float:
    """Relative Fisher divergence E_data |grad S_l - grad S_t|^2 / E_data |grad S_t|^2 (a
    float >= 0) of two actions with ``grad(x: (n, N)) -> (n, N)`` (actions, a `LatticeTheory`,
    a `PolynomialINN`), judged on ``data: (n, N)`` (held-out samples of the true distribution).

    Zero exactly when S_learned - S_true is constant on the data's support; inf when the
    learned gradient is not finite at some sample (outside a model's domain).
    """
    x = _as_samples(data, "data")
    reference = torch.as_tensor(true.grad(x)).detach().to("cpu", torch.float64)
    estimate = torch.as_tensor(learned.grad(x)).detach().to("cpu", torch.float64)
    for name, value in (("true", reference), ("learned", estimate)):
        if value.shape != x.shape:
            raise ValueError(f"the {name} gradient has shape {tuple(value.shape)}, "
                             f"expected {tuple(x.shape)}")
    if not torch.isfinite(reference).all():
        raise ValueError("the true gradient is not finite at some sample")
    if not torch.isfinite(estimate).all():
        return math.inf
    norm = float(reference.pow(2).sum(1).mean())
    if norm == 0.0:
        raise ValueError("the true gradient vanishes on the data; the ratio is undefined")
    return float((estimate - reference).pow(2).sum(1).mean()) / norm
