"""Sweeps over network depth and data quantity, cached on disk, run on any executor.

Every grid point (depth L, sample count n, seed s) of a `sweep` is one `inntheory.lab.store`
entry, keyed by *all* its settings, the library's current defaults included: a rerun,
``sweep(..., train=False)`` or `SweepResult.from_cache` reads the entries and trains nothing.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..baselines import basis_size, score_matching
from ..comparison import compare
from ..datasets import default_cache_dir, load_dataset
from ..diagnostics import fisher_divergence
from ..extraction import extract_action
from ..model.activations import ACTIVATIONS
from ..model.inn import PolynomialINN
from ..model.training import train
from ..tables import Table, Tabular
from ..theories import LatticeTheory, preset
from . import store

__all__ = ["SweepResult", "sweep"]

KINDS = ("frobenius", "diagonal")  # relative errors per order: whole tensor, diagonal part

_SERIAL = "serial"
_BASELINES = (None, "dense", "local", "tied", "translation")
# The held-out set of every sweep, whatever its grid: HELDOUT_SIZE samples drawn with
# HELDOUT_SEED, a seed no grid point may use; each point's Fisher divergence is measured on it.
HELDOUT_SIZE = 10_000
HELDOUT_SEED = 1_000_003
# Torch's global generator initialises the network; threads of one process share it.
_INIT_LOCK = threading.Lock()
# Fields of a `TrainingHistory` copied into a point's record under their own name.
_HISTORY = ("stopped_early", "rejected_steps", "outside_fraction", "device", "polished",
            "polish_method", "polish_iterations", "polish_stop", "polish_seconds", "best_step",
            "grad_norm", "converged", "kept")


def _whole(value: Any, minimum: int) -> bool:
    """Whether `value` is an int (not a bool) >= minimum."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _grid(name: str, values: Any, minimum: int) -> tuple[int, ...]:
    """A non-empty tuple of distinct ints >= minimum, or an error naming the problem."""
    if isinstance(values, (int, np.integer)):
        values = (values,)
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints, got {values!r}") from None
    if not items:
        raise ValueError(f"{name} is empty: the sweep grid needs at least one value")
    for value in items:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must hold ints, got {value!r}")
        if value < minimum:
            label = {"depths": "depth", "sample_counts": "n", "seeds": "seed"}[name]
            raise ValueError(f"{label} must be >= {minimum}, got {int(value)} in {name}")
    out = tuple(int(value) for value in items)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has repeated values: {list(out)}")
    return out


# The options of each function the sweep calls: names the sweep sets, defaults of the rest.
_RESERVED = {"model_options": ("dim", "depth", "activation"),
             "train_options": ("seed", "progress"),
             "data_options": ("seed", "progress", "cache_dir")}
_DEFAULTS = {name: {key: value for key, value in store.defaults(function).items()
                    if key not in _RESERVED[name]}
             for name, function in (("model_options", PolynomialINN), ("train_options", train),
                                    ("data_options", load_dataset))}


def _options(name: str, options: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword arguments `options` (bar `skip`) completed with their function's defaults."""
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"{name} must be a mapping of keyword arguments, got {options!r}")
    options = {key: value for key, value in (options or {}).items() if key not in skip}
    try:
        json.dumps(options, sort_keys=True)
    except TypeError as error:
        raise TypeError(f"{name} must hold JSON-able values (they key the cache), got "
                        f"{options!r}: {error}") from error
    taken = sorted(set(options) & set(_RESERVED[name]))
    if taken:
        raise ValueError(f"{name} must not set {taken}; the sweep chooses them")
    unknown = sorted(set(options) - set(_DEFAULTS[name]))
    if unknown:
        raise ValueError(f"unknown {name} {unknown}; accepted: {sorted(_DEFAULTS[name])}")
    return {**_DEFAULTS[name], **options}


def _as_arguments(value: Any) -> Any:
    """A model option read back from JSON: lists (JSON's only sequence) become tuples."""
    if isinstance(value, list):
        return tuple(_as_arguments(item) for item in value)
    if isinstance(value, dict):
        return {key: _as_arguments(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class _Plan:
    """Validated sweep settings shared by every grid point."""

    theory: LatticeTheory
    depths: tuple[int, ...]
    sample_counts: tuple[int, ...]
    seeds: tuple[int, ...]
    activation: str
    order: int
    model_options: dict[str, Any]
    train_options: dict[str, Any]
    data_options: dict[str, Any]
    baseline: str | None
    cache: Path

    @property
    def common(self) -> dict[str, Any]:
        """The settings every key contains (the store adds the package version)."""
        data = {k: v for k, v in self.data_options.items() if k != "cache_dir"}
        return {"theory": self.theory.parameters, "order": self.order, "data": data,
                "heldout": {"n": HELDOUT_SIZE, "seed": HELDOUT_SEED}}

    def inn_settings(self, depth: int, n: int, seed: int) -> dict[str, Any]:
        return {"kind": "inn", **self.common, "depth": depth, "n": n, "seed": seed,
                "activation": self.activation, "model_options": self.model_options,
                "train_options": self.train_options}

    def baseline_settings(self, n: int, seed: int) -> dict[str, Any]:
        return {"kind": "score_matching", **self.common, "basis": self.baseline, "n": n,
                "seed": seed}

    def settings(self) -> dict[str, Any]:
        """The sweep-wide settings, JSON-able."""
        return {**self.common, "version": __version__, "activation": self.activation,
                "model_options": self.model_options, "train_options": self.train_options,
                "baseline": self.baseline, "cache": str(self.cache)}


def _plan(theory: LatticeTheory | str, depths: Iterable[int], sample_counts: Iterable[int],
          seeds: Iterable[int], activation: str, order: int,
          model_options: Mapping[str, Any] | None, train_options: Mapping[str, Any] | None,
          data_options: Mapping[str, Any] | None, n_data: int | None, baseline: str | None,
          cache: str | os.PathLike | None) -> tuple[_Plan, int]:
    """Validate everything a sweep needs; returns the plan and the data-set size."""
    theory = preset(theory) if isinstance(theory, str) else theory
    if not isinstance(theory, LatticeTheory):
        raise TypeError(f"theory must be a LatticeTheory or a preset name, got {theory!r}")
    depths = _grid("depths", depths, 1)
    sample_counts = _grid("sample_counts", sample_counts, 1)
    seeds = _grid("seeds", seeds, 0)
    if HELDOUT_SEED in seeds:
        raise ValueError(f"seed {HELDOUT_SEED} draws the sweep's held-out set; use another")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    if not _whole(order, 2):
        raise ValueError(f"order must be an int >= 2, got {order!r}")
    # Model options are keyed as JSON gives them back (tuples as lists).
    model_options = json.loads(json.dumps(_options("model_options", model_options)))
    try:  # the values, checked by the model itself (its initial noise drawn off the record)
        with torch.random.fork_rng(devices=[]):
            PolynomialINN(theory.dim, depths[0], activation=activation,
                          **_as_arguments(model_options))
    except (TypeError, ValueError) as error:
        raise type(error)(f"model_options rejected by PolynomialINN: {error}") from error
    train_options = _options("train_options", train_options)
    cache_dir = data_options.get("cache_dir") if isinstance(data_options, Mapping) else None
    data_options = _options("data_options", data_options, skip=("cache_dir",))
    if cache_dir is not None:
        data_options["cache_dir"] = str(Path(cache_dir).expanduser())
    n_data = max(sample_counts) if n_data is None else n_data
    if not _whole(n_data, 1):
        raise ValueError(f"n_data must be an int >= 1, got {n_data!r}")
    if max(sample_counts) > n_data:
        raise ValueError(f"n = {max(sample_counts)} is larger than the data set ({n_data} "
                         "samples); raise n_data or drop that sample count")
    if baseline not in _BASELINES:
        raise ValueError(f"baseline must be one of {_BASELINES}, got {baseline!r}")
    size = basis_size(theory.dim, order, baseline, tuple(theory.shape)) if baseline else 0
    if min(sample_counts) < size:
        raise ValueError(f"n = {min(sample_counts)} is below the {size} monomials of the "
                         f"{baseline} score-matching baseline; drop the baseline or that "
                         "sample count")
    directory = Path(cache).expanduser() if cache is not None else default_cache_dir() / "sweeps"
    return _Plan(theory, depths, sample_counts, seeds, activation, order, model_options,
                 train_options, data_options, baseline, directory), n_data


def _run_inn(settings: dict[str, Any], theory: LatticeTheory, data: torch.Tensor
             ) -> tuple[Any, dict[str, Any]]:
    """Train and extract one grid point: the learned action and the point's record."""
    seed = settings["seed"]
    with _INIT_LOCK:
        torch.manual_seed(seed)
        model = PolynomialINN(theory.dim, settings["depth"], activation=settings["activation"],
                              **_as_arguments(settings["model_options"]))
    history = train(model, data, seed=seed, progress=False, **settings["train_options"])
    start = time.perf_counter()
    learned = extract_action(model, order=settings["order"])
    return learned, {"depth": settings["depth"], "n": settings["n"], "seed": seed,
                     "val_nll": history.best_val_nll, "train_seconds": history.seconds,
                     "extract_seconds": time.perf_counter() - start,
                     "steps_run": model.training_info["steps_run"],
                     **{name: getattr(history, name) for name in _HISTORY},
                     **_keep_and_fit(history)}


def _keep_and_fit(history: Any) -> dict[str, Any]:
    """The keep rule's numbers (None without polish) and the goodness-of-fit verdict."""
    fit = history.goodness_of_fit or {"ok": None, "warnings": []}
    return {"keep_difference": _finite_or_none(history.keep_difference),
            "keep_se": _finite_or_none(history.keep_se), "fit_ok": fit["ok"],
            "fit_warnings": list(fit["warnings"])}


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _run_baseline(settings: dict[str, Any], theory: LatticeTheory, data: torch.Tensor
                  ) -> tuple[Any, dict[str, Any]]:
    """Score matching on one (n, seed): the learned action and its record."""
    start = time.perf_counter()
    lattice = {"lattice": theory.shape} if settings["basis"] in ("tied", "translation") else {}
    learned = score_matching(data, order=settings["order"], basis=settings["basis"], **lattice)
    return learned, {"n": settings["n"], "seed": settings["seed"], "basis": settings["basis"],
                     "seconds": time.perf_counter() - start}


def _run(task: tuple[dict[str, Any], torch.Tensor, torch.Tensor]) -> dict[str, Any]:
    """What every executor runs: a cache entry from settings, training and held-out data."""
    settings, data, heldout = task
    theory = LatticeTheory(**{**settings["theory"], "shape": tuple(settings["theory"]["shape"])})
    runner = _run_inn if settings["kind"] == "inn" else _run_baseline
    learned, record = runner(settings, theory, data)
    comparison = compare(theory.coefficients(settings["order"]), learned)
    record["errors"] = {str(row.order): {"frobenius": row.error, "diagonal": row.diagonal_error,
                                         "leakage": row.leakage,
                                         "relative": row.relative and row.diagonal_relative}
                        for row in comparison.rows}
    record["fisher_divergence"] = fisher_divergence(learned, theory, heldout)
    return {"settings": settings, "record": record}


def _name(settings: Mapping[str, Any]) -> str:
    """The file-name prefix of a point's store entry."""
    if settings["kind"] == "inn":
        return (f"inn-{settings['activation']}-L{settings['depth']}-n{settings['n']}"
                f"-s{settings['seed']}")
    return f"sm-{settings['basis']}-n{settings['n']}-s{settings['seed']}"


def _label(point: Mapping[str, Any]) -> str:
    if point["kind"] == "inn":
        return f"(depth {point['depth']}, n {point['n']}, seed {point['seed']})"
    return f"(baseline, n {point['n']}, seed {point['seed']})"


def _checker(settings: Mapping[str, Any]) -> Any:
    """A check of a stored record: the fields `SweepResult` reads, for this point."""
    inn = settings["kind"] == "inn"

    def number(value: Any, name: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"its {name} is not a number")

    def check(record: Any) -> None:
        if not isinstance(record, dict):
            raise ValueError(f"its record is a JSON {type(record).__name__}, not an object")
        for name in ("n", "seed") + (("depth",) if inn else ()):
            if record.get(name) != settings[name]:
                raise ValueError(f"its record has no {name} {settings[name]}")
        errors = record.get("errors")
        if not isinstance(errors, dict):
            raise ValueError("its record has no errors per order")
        for k in range(1, settings["order"] + 1):
            row = errors.get(str(k))
            if not isinstance(row, dict):
                raise ValueError(f"its record has no errors of order {k}")
            for kind in KINDS:
                number(row.get(kind), f"{kind} error of order {k}")
        number(record.get("fisher_divergence"), "fisher_divergence")
        for name in ("val_nll", "train_seconds") if inn else ():
            number(record.get(name), name)

    return check


def _format(mean: float, std: float) -> str:
    return "-" if not math.isfinite(mean) else f"{mean:.3g} ± {std:.2g}"


@dataclass(repr=False)  # shown as its table (Tabular)
class SweepResult(Tabular):
    """The measured grid of a :func:`sweep`.

    Attributes:
        settings: the sweep-wide settings (of the keys, baseline, cache folder, version).
        depths, sample_counts, seeds: the grid axes.
        records: one dict per computed or cached point: ``depth``, ``n``, ``seed``,
            ``errors`` (order as a string -> "frobenius", "diagonal", "leakage", "relative"),
            ``val_nll`` (best validation NLL, nats per sample), ``train_seconds``,
            ``extract_seconds``, ``steps_run`` (Adam steps), ``fisher_divergence`` (on the
            held-out set), the `TrainingHistory` fields stopped_early, rejected_steps,
            outside_fraction, device, polished, polish_method, polish_iterations,
            polish_stop, polish_seconds, best_step, grad_norm, converged, kept,
            ``keep_difference`` and ``keep_se`` (None without polish), ``fit_ok`` and
            ``fit_warnings`` (`goodness_of_fit`'s verdict), and ``baseline`` (the baseline
            record of the same n and seed).
        baselines: one dict per (n, seed) of the score-matching baseline: ``n``, ``seed``,
            ``basis``, ``errors``, ``fisher_divergence``, ``seconds``.
        missing: the grid points (dicts with ``kind``, ``depth``, ``n``, ``seed``) neither
            cached nor computed (only with ``train=False``); their errors are NaN.
    """

    settings: dict[str, Any]
    depths: tuple[int, ...]
    sample_counts: tuple[int, ...]
    seeds: tuple[int, ...]
    records: list[dict[str, Any]] = field(default_factory=list)
    baselines: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_cache(cls, theory: LatticeTheory | str, depths: Iterable[int],
                   sample_counts: Iterable[int], seeds: Iterable[int] = (0,), *,
                   strict: bool = False, **options: Any) -> SweepResult:
        """``sweep(..., train=False)``: read from the cache only, sample and train nothing.

        `options` are the keyword arguments of `sweep` that key the cache; with `strict`, a
        grid point not cached is a FileNotFoundError listing them (instead of NaN errors).
        """
        result = sweep(theory, depths, sample_counts, seeds, train=False, progress=False,
                       **options)
        if strict and result.missing:
            names = ", ".join(_label(point) for point in result.missing[:8])
            more = "" if len(result.missing) <= 8 else f" and {len(result.missing) - 8} more"
            raise FileNotFoundError(f"{len(result.missing)} sweep points are not cached in "
                                    f"{result.settings['cache']}: {names}{more}")
        return result

    @property
    def complete(self) -> bool:
        """Whether every grid point (and baseline) has a record."""
        return not self.missing

    def _over_seeds(self, rows: list[dict[str, Any]], value: Any,
                    keys: tuple[str, ...] = ("depth", "n", "seed")
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sample std (ddof 1; 0 for one seed) over the seeds of ``value(row)``, on
        the grid axes named by `keys`; NaN where no seed is cached."""
        axes = {"depth": self.depths, "n": self.sample_counts, "seed": self.seeds}
        values = np.full([len(axes[key]) for key in keys], np.nan)
        for row in rows:
            values[tuple(axes[key].index(row[key]) for key in keys)] = value(row)
        finite = np.isfinite(values)
        count = finite.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(finite, values, 0.0).sum(axis=-1) / count
            square = np.where(finite, (values - mean[..., None]) ** 2, 0.0).sum(axis=-1)
            std = np.where(count > 1, np.sqrt(square / np.maximum(count - 1, 1)), 0.0)
        return mean, np.where(count > 0, std, np.nan)

    def _error(self, order: int, kind: str) -> Any:
        """The error of `order` and `kind` in a record, after checking both."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if isinstance(order, bool) or not isinstance(order, int):
            raise TypeError(f"order must be an int, got {order!r}")
        if not 1 <= order <= self.settings["order"]:
            raise ValueError(f"order must be in 1..{self.settings['order']}, got {order}")
        return lambda row: row["errors"][str(order)][kind]

    def errors(self, order: int = 4, kind: str = "diagonal") -> tuple[np.ndarray, np.ndarray]:
        """Relative error of the learned A^(order) over the grid: (mean, std) over the seeds
        present (std 0 for one), each (len(depths), len(sample_counts)), NaN where nothing is
        cached; `kind` is "frobenius" (whole tensor) or "diagonal" (i1 = ... = ik)."""
        return self._over_seeds(self.records, self._error(order, kind))

    def baseline_errors(self, order: int = 4, kind: str = "diagonal"
                        ) -> tuple[np.ndarray, np.ndarray]:
        """As `errors`, of the score-matching baseline: (len(sample_counts),) each, or NaN."""
        return self._over_seeds(self.baselines, self._error(order, kind), ("n", "seed"))

    def metric(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A scalar record field (e.g. "val_nll", "train_seconds") over the grid: (mean, std)
        over seeds, each (len(depths), len(sample_counts))."""
        if self.records and name not in self.records[0]:
            raise ValueError(f"records have no field {name!r}; fields: {sorted(self.records[0])}")
        return self._over_seeds(self.records, lambda row: float(row[name]))

    def _table(self) -> Table:
        """Per (depth, n): errors of orders 2..K, Fisher divergence, validation NLL, time."""
        columns = [(k, kind) for k in range(2, self.settings["order"] + 1) for kind in KINDS]
        names = [f"A{k} {'frob' if kind == 'frobenius' else 'diag'}" for k, kind in columns]
        header = ["depth", "n", "seeds"] + names + ["Fisher div", "val NLL", "train s"]
        stats = ([self.errors(*column) for column in columns]
                 + [self.metric("fisher_divergence"), self.metric("val_nll")])
        seconds = self.metric("train_seconds")[0]
        rows = []
        for (i, depth), (j, n) in product(enumerate(self.depths), enumerate(self.sample_counts)):
            done = sum(r["depth"] == depth and r["n"] == n for r in self.records)
            rows.append([str(depth), str(n), f"{done}/{len(self.seeds)}"]
                        + [_format(mean[i, j], std[i, j]) for mean, std in stats]
                        + [f"{seconds[i, j]:.1f}" if done else "-"])
        if self.settings["baseline"]:
            fisher = self._over_seeds(self.baselines, lambda row: row["fisher_divergence"],
                                      ("n", "seed"))
            stats = [self.baseline_errors(*column) for column in columns] + [fisher]
            for j, n in enumerate(self.sample_counts):
                done = sum(r["n"] == n for r in self.baselines)
                rows.append([f"SM {self.settings['baseline']}", str(n),
                             f"{done}/{len(self.seeds)}"]
                            + [_format(mean[j], std[j]) for mean, std in stats] + ["-", "-"])
        title = (f"sweep of {self.settings['theory']} ({self.settings['activation']} "
                 f"activation): relative errors, mean ± std over seeds")
        if self.missing:
            title += f"; {len(self.missing)} points not cached"
        return Table(header, rows, title, index=3)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-able containers."""
        return {"settings": self.settings, "depths": list(self.depths),
                "sample_counts": list(self.sample_counts), "seeds": list(self.seeds),
                "records": self.records, "baselines": self.baselines, "missing": self.missing}

    def plot(self, order: int = 4, kind: str = "diagonal", fig: Any = None) -> Any:
        """Heat map of `errors` over depth x n (mean ± std annotated), and error against n
        (log-log, seed std as error bars) per depth and for the baseline; drawn into `fig`
        (cleared; a new Figure when None), which is returned."""
        import matplotlib.pyplot as plt

        mean, std = self.errors(order, kind)
        fig = plt.figure(figsize=(11, 4.2)) if fig is None else fig
        fig.clear()
        heat, lines = fig.subplots(1, 2)
        image = heat.imshow(mean, cmap="viridis", aspect="auto", origin="lower")
        fig.colorbar(image, ax=heat, label="relative error")
        top = np.nanmax(mean) if np.isfinite(mean).any() else 1.0
        for (i, j), value in np.ndenumerate(mean):
            heat.text(j, i, _format(value, std[i, j]).replace(" ± ", "\n± "), ha="center",
                      va="center", fontsize=8, color="black" if value > 0.6 * top else "white")
        heat.set_xticks(range(len(self.sample_counts)), [f"{n:g}" for n in self.sample_counts])
        heat.set_yticks(range(len(self.depths)), [str(d) for d in self.depths])
        heat.set(xlabel="training samples n", ylabel="depth L",
                 title=f"relative {kind} error of $A^{{({order})}}$")
        counts = np.array(self.sample_counts, dtype=float)
        for i, depth in enumerate(self.depths):
            lines.errorbar(counts, mean[i], yerr=std[i], marker="o", capsize=3,
                           label=f"INN, L = {depth}")
        if self.settings["baseline"]:
            base_mean, base_std = self.baseline_errors(order, kind)
            lines.errorbar(counts, base_mean, yerr=base_std, color="black", linestyle="--",
                           marker="s", capsize=3,
                           label=f"score matching ({self.settings['baseline']})")
        lines.set(xscale="log", yscale="log", xlabel="training samples n", ylabel="relative error",
                  title=f"$A^{{({order})}}$ {kind} error vs data (±1 std over seeds)")
        lines.legend(fontsize=8)
        fig.tight_layout()
        return fig


def _submit_all(executor: Any, tasks: Sequence[tuple[dict[str, Any], torch.Tensor, torch.Tensor]],
                max_workers: int | None) -> Iterable[dict[str, Any]]:
    """Run the tasks on `executor` ("serial", None or an Executor), yielding results as they
    finish; an owned process pool is shut down (pending tasks cancelled) on the way out."""
    if executor == _SERIAL:
        yield from map(_run, tasks)
        return
    owned = executor is None
    if owned:
        executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=min(max_workers or os.cpu_count() or 1, len(tasks)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=torch.set_num_threads, initargs=(1,))
    futures = {executor.submit(_run, task): task[0] for task in tasks}
    try:
        for future in concurrent.futures.as_completed(futures):
            try:
                yield future.result()
            except Exception as error:
                raise RuntimeError(f"sweep point {_label(futures[future])} failed: {error}"
                                   ) from error
    finally:
        for future in futures:
            future.cancel()
        if owned:
            executor.shutdown(wait=True, cancel_futures=True)


def _compute(plan: _Plan, todo: list[dict[str, Any]], n_data: int, executor: Any,
             max_workers: int | None, progress: bool) -> dict[str, dict[str, Any]]:
    """Compute the points `todo` on the executor and store each; {store key: record}."""
    sizes = {seed: n_data for seed in {s["seed"] for s in todo}} | {HELDOUT_SEED: HELDOUT_SIZE}
    data = {seed: torch.as_tensor(load_dataset(plan.theory, n, seed=seed, progress=progress,
                                               **plan.data_options).x)
            for seed, n in sorted(sizes.items())}
    heldout = data.pop(HELDOUT_SEED)
    # Largest n first: the long trainings start early and the pool ends evenly.
    todo = sorted(todo, key=lambda s: (-s["n"], -s.get("depth", 0)))
    tasks = [(s, data[s["seed"]][: s["n"]].clone(), heldout) for s in todo]
    found = {}
    with tqdm(total=len(tasks), desc="sweep", disable=not progress) as bar:
        for entry in _submit_all(executor, tasks, max_workers):
            settings = entry["settings"]
            found[store.settings_key(settings)] = store.store(
                settings, entry["record"], plan.cache, name=_name(settings))
            bar.update()
    return found


def sweep(theory: LatticeTheory | str, depths: Iterable[int], sample_counts: Iterable[int],
          seeds: Iterable[int] = (0,), *, activation: str = "cubic", order: int = 4,
          model_options: Mapping[str, Any] | None = None,
          train_options: Mapping[str, Any] | None = None, baseline: str | None = None,
          n_data: int | None = None, data_options: Mapping[str, Any] | None = None,
          executor: concurrent.futures.Executor | str | None = None,
          max_workers: int | None = None, cache: str | os.PathLike | None = None,
          train: bool = True, progress: bool = True) -> SweepResult:
    """Train, extract and compare over a grid of depths, sample counts and seeds.

    For every (depth, n, seed): the first n samples of ``load_dataset(theory, n_data,
    seed=seed)``, a `PolynomialINN(N, depth, activation, **model_options)` initialised after
    ``torch.manual_seed(seed)`` and trained by `train(model, data, seed=seed,
    **train_options)`, its action from `extract_action(model, order)` compared with
    ``theory.coefficients(order)`` by `compare` and by its Fisher divergence on `HELDOUT_SIZE`
    samples of seed `HELDOUT_SEED` (no grid seed). Cached points are read, not recomputed. The
    options (JSON-able) are completed with their function's current defaults and key the cache.

    Arguments:
        theory: the true theory, or a preset name.
        depths: network depths L >= 1.
        sample_counts: training-set sizes n >= 1 (the INN holds out its validation part).
        seeds: seeds >= 0; each picks a data set, the initialisation and the minibatches.
        activation: a name in `inntheory.ACTIVATIONS`.
        order: highest coefficient order K >= 2 compared.
        model_options: keyword arguments of `PolynomialINN` other than dim, depth and
            activation, e.g. ``{"lattice": (3, 3), "kernel_radius": 1}``; keyed as JSON
            (tuples as lists), passed back with every list as a tuple.
        train_options: keyword arguments of `train` other than seed and progress.
        baseline: None, or a `score_matching` basis also fitted to the same n samples once
            per n and seed: "dense", "local", or on ``theory.shape`` "tied" (neighbours) or
            "translation" (every orbit on the whole lattice).
        n_data: size of each seed's data set; max(sample_counts) when None. Not part of the
            key: the first n draws are the same for any n_data.
        data_options: keyword arguments of `load_dataset`; all but cache_dir key the cache.
        executor: None (a local pool of spawned processes with one torch thread each: a
            script calling `sweep` needs the ``if __name__ == "__main__":`` guard), "serial"
            (in this process), or any ``concurrent.futures.Executor`` (e.g. of dask) whose
            workers have inntheory installed; only the calling process writes cache files.
        max_workers: processes of the local pool (executor None); os.cpu_count() when None.
        cache: folder of the per-point files; ``default_cache_dir() / "sweeps"`` when None.
        train: False reads only the cache (points not cached: NaN, `SweepResult.missing`).
        progress: show progress bars (data sets and grid points).

    Raises:
        ValueError, TypeError: a bad argument, checked before any sampling or training.
        RuntimeError: a grid point failed (points finished before it stay cached).
    """
    plan, n_data = _plan(theory, depths, sample_counts, seeds, activation, order,
                         model_options, train_options, data_options, n_data, baseline, cache)
    if not (executor is None or executor == _SERIAL
            or isinstance(executor, concurrent.futures.Executor)):
        raise TypeError(f"executor must be None, {_SERIAL!r} or a concurrent.futures.Executor, "
                        f"got {executor!r}")
    if max_workers is not None and not _whole(max_workers, 1):
        raise ValueError(f"max_workers must be None or an int >= 1, got {max_workers!r}")
    points = [plan.inn_settings(d, n, s) for d in plan.depths for n in plan.sample_counts
              for s in plan.seeds]
    if plan.baseline:
        points += [plan.baseline_settings(n, s) for n in plan.sample_counts for s in plan.seeds]
    stored = {store.settings_key(s): store.lookup(s, plan.cache, name=_name(s),
                                                  check=_checker(s)) for s in points}
    found = {key: record for key, (hit, record) in stored.items() if hit}
    todo = [s for s in points if store.settings_key(s) not in found]
    if todo and train:
        found.update(_compute(plan, todo, n_data, executor, max_workers, progress))
    missing = [] if train else [{"kind": s["kind"], "depth": s.get("depth"), "n": s["n"],
                                 "seed": s["seed"]} for s in todo]
    done = [(s, found[store.settings_key(s)]) for s in points if store.settings_key(s) in found]
    baselines = [record for s, record in done if s["kind"] != "inn"]
    by_point = {(b["n"], b["seed"]): {"baseline": b} for b in baselines}
    records = [{**record, **by_point.get((s["n"], s["seed"]), {})}
               for s, record in done if s["kind"] == "inn"]
    return SweepResult(plan.settings(), plan.depths, plan.sample_counts, plan.seeds,
                       records, baselines, missing)
