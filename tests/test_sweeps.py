"""Tests of inntheory.lab.sweeps: grid validation, results, the on-disk cache and the executors."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

import inntheory.lab.sweeps as sweeps
from inntheory.baselines import score_matching
from inntheory.comparison import compare
from inntheory.datasets import load_dataset
from inntheory.diagnostics import fisher_divergence
from inntheory.extraction import extract_action
from inntheory.lab.sweeps import SweepResult, sweep
from inntheory.model.inn import PolynomialINN
from inntheory.model.training import train
from inntheory.theories import preset

matplotlib.use("Agg")

THEORY = preset("unimodal", shape=(4,))
DEPTHS = (1, 2)
COUNTS = (150, 300)
SEEDS = (0, 1)
TRAIN = {"steps": 20, "eval_every": 10}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sweeps")
    return {"cache": root / "sweeps", "data": root / "data"}


def options(folders: dict[str, Path], **extra) -> dict:
    return {"train_options": TRAIN, "baseline": "dense", "cache": folders["cache"],
            "data_options": {"cache_dir": folders["data"]}, "progress": False, **extra}


@pytest.fixture(scope="module")
def result(folders) -> SweepResult:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return sweep(THEORY, DEPTHS, COUNTS, SEEDS, executor="serial", **options(folders))
    finally:
        torch.set_num_threads(previous)


def data(folders, seed: int, n: int) -> torch.Tensor:
    return load_dataset(THEORY, max(COUNTS), seed=seed, cache_dir=folders["data"],
                        progress=False).x[:n]


class Forbidden:
    """Stands in for functions that must not run."""

    def __call__(self, *args, **kwargs):
        raise AssertionError("this sweep should not have sampled or trained")


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"depths": ()}, ValueError, "depths is empty"),
        ({"sample_counts": []}, ValueError, "sample_counts is empty"),
        ({"seeds": ()}, ValueError, "seeds is empty"),
        ({"depths": (1, 0)}, ValueError, "depth must be >= 1"),
        ({"sample_counts": (0, 10)}, ValueError, "n must be >= 1"),
        ({"sample_counts": (10, 500), "n_data": 300}, ValueError, "larger than the data set"),
        ({"activation": "tanh"}, ValueError, "unknown activation 'tanh'"),
        ({"baseline": "sparse"}, ValueError, "baseline must be"),
        ({"sample_counts": (50,)}, ValueError, "below the 69 monomials"),
        ({"sample_counts": (4,), "baseline": "tied"}, ValueError,
         "below the 5 monomials of the tied"),
        ({"order": 1}, ValueError, "order must be an int >= 2"),
        ({"train_options": {"seed": 3}}, ValueError, "must not set"),
        ({"train_options": {"epochs": 3}}, ValueError, "unknown train_options"),
        ({"data_options": {"n_chains": 3}}, ValueError, "unknown data_options"),
        ({"model_options": {"width": 3}}, ValueError, r"unknown model_options \['width'\]"),
        ({"model_options": {"depth": 3}}, ValueError, "model_options must not set"),
        ({"model_options": {"standardize": "yes"}}, TypeError,
         "model_options rejected by PolynomialINN: standardize must be a bool"),
        ({"model_options": [("standardize", False)]}, TypeError, "must be a mapping"),
        ({"train_options": {"device": torch.device("cpu")}}, TypeError, "JSON-able"),
        ({"executor": object()}, TypeError, "executor must be"),
        ({"depths": (1.5,)}, TypeError, "depths must hold ints"),
        ({"theory": "no such preset"}, ValueError, "unknown preset"),
        ({"seeds": (0, sweeps.HELDOUT_SEED)}, ValueError, "draws the sweep's held-out set"),
    ],
)
def test_bad_settings_fail_before_any_work(tmp_path, monkeypatch, change, error, message):
    monkeypatch.setattr(sweeps, "load_dataset", Forbidden())
    monkeypatch.setattr(sweeps, "train", Forbidden())
    arguments = {"theory": THEORY, "depths": DEPTHS, "sample_counts": COUNTS, "seeds": SEEDS,
                 "baseline": "dense", "cache": tmp_path / "cache", "executor": "serial",
                 "progress": False, **change}
    with pytest.raises(error, match=message):
        sweep(**arguments)
    assert not (tmp_path / "cache").exists()


def test_records_are_the_direct_computation(result, folders):
    assert len(result.records) == len(DEPTHS) * len(COUNTS) * len(SEEDS)
    record = next(r for r in result.records if (r["depth"], r["n"], r["seed"]) == (2, 300, 1))
    torch.manual_seed(1)
    model = PolynomialINN(THEORY.dim, 2, activation="cubic")
    history = train(model, data(folders, seed=1, n=300), seed=1, progress=False, **TRAIN)
    comparison = compare(THEORY.coefficients(4), extract_action(model, order=4))
    for k in (1, 2, 3, 4):
        row = comparison.row(k)
        assert record["errors"][str(k)]["frobenius"] == pytest.approx(row.error, rel=1e-9)
        assert record["errors"][str(k)]["diagonal"] == pytest.approx(row.diagonal_error,
                                                                      rel=1e-9)
    assert record["val_nll"] == pytest.approx(history.best_val_nll, rel=1e-9)
    assert record["steps_run"] == TRAIN["steps"]
    heldout = load_dataset(THEORY, sweeps.HELDOUT_SIZE, seed=sweeps.HELDOUT_SEED,
                           cache_dir=folders["data"], progress=False).x
    expected = fisher_divergence(extract_action(model, order=4), THEORY, heldout)
    assert record["fisher_divergence"] == pytest.approx(expected, rel=1e-9)
    assert result.settings["heldout"] == {"n": sweeps.HELDOUT_SIZE, "seed": sweeps.HELDOUT_SEED}


def test_baseline_is_score_matching_on_the_same_data(result, folders):
    assert len(result.baselines) == len(COUNTS) * len(SEEDS)
    learned = score_matching(data(folders, seed=0, n=150), order=4, basis="dense")
    expected = compare(THEORY.coefficients(4), learned).row(3).diagonal_error
    entry = next(b for b in result.baselines if (b["n"], b["seed"]) == (150, 0))
    assert entry["errors"]["3"]["diagonal"] == pytest.approx(expected, rel=1e-9)
    record = next(r for r in result.records if (r["depth"], r["n"], r["seed"]) == (1, 150, 0))
    assert record["baseline"] == entry


@pytest.mark.parametrize("basis", ["tied", "translation"])
def test_lattice_baselines_are_lattice_score_matching(folders, tmp_path, basis):
    """baseline="tied" fits the form-known nearest-neighbour basis, "translation" every
    monomial of the whole lattice tied over translations (the INN's knowledge)."""
    tied = sweep(THEORY, (1,), (150,), (0,), executor="serial",
                 **options(folders, baseline=basis, cache=tmp_path))
    learned = score_matching(data(folders, seed=0, n=150), order=4, basis=basis,
                             lattice=THEORY.shape)
    comparison = compare(THEORY.coefficients(4), learned)
    (entry,) = tied.baselines
    assert entry["basis"] == basis
    for k in (2, 3, 4):
        assert entry["errors"][str(k)]["frobenius"] == pytest.approx(comparison.row(k).error,
                                                                      rel=1e-9)
    assert len(list(tmp_path.glob(f"sm-{basis}-n150-s0-*.json"))) == 1
    assert "Fisher div" in str(tied)


def test_errors_are_mean_and_std_over_seeds(result):
    mean, std = result.errors(order=4, kind="frobenius")
    assert mean.shape == std.shape == (len(DEPTHS), len(COUNTS))
    for i, depth in enumerate(DEPTHS):
        for j, n in enumerate(COUNTS):
            values = [r["errors"]["4"]["frobenius"] for r in result.records
                      if r["depth"] == depth and r["n"] == n]
            assert mean[i, j] == pytest.approx(np.mean(values))
            assert std[i, j] == pytest.approx(np.std(values, ddof=1))
    base_mean, _ = result.baseline_errors(order=2, kind="diagonal")
    assert base_mean.shape == (len(COUNTS),)
    with pytest.raises(ValueError, match="kind must be one of"):
        result.errors(order=4, kind="offdiagonal")
    with pytest.raises(ValueError, match="order must be in 1..4"):
        result.errors(order=5)


def test_rerun_reads_the_cache_and_trains_nothing(result, folders, monkeypatch):
    files = sorted(p.name for p in folders["cache"].glob("*.json"))
    assert len(files) == len(result.records) + len(result.baselines)
    monkeypatch.setattr(sweeps, "load_dataset", Forbidden())
    monkeypatch.setattr(sweeps, "train", Forbidden())
    again = sweep(THEORY, DEPTHS, COUNTS, SEEDS, executor="serial", **options(folders))
    assert again.records == result.records
    cached = SweepResult.from_cache(THEORY, DEPTHS, COUNTS, SEEDS, strict=True,
                                    **{k: v for k, v in options(folders).items()
                                       if k != "progress"})
    assert cached.complete and cached.to_dict() == again.to_dict()


def test_missing_points_are_nan_or_an_error(result, folders):
    keyed = {k: v for k, v in options(folders).items() if k != "progress"}
    partial = SweepResult.from_cache(THEORY, (1, 3), COUNTS, SEEDS, **keyed)
    assert len(partial.missing) == len(COUNTS) * len(SEEDS)
    mean, _ = partial.errors(order=2, kind="frobenius")
    assert np.isfinite(mean[0]).all() and np.isnan(mean[1]).all()
    assert "points not cached" in partial.table()
    # Any changed setting is another key: nothing of it is cached.
    other = {**keyed, "train_options": {**TRAIN, "lr": 0.02}}
    with pytest.raises(FileNotFoundError, match=r"8 sweep points are not cached.*depth 1"):
        SweepResult.from_cache(THEORY, DEPTHS, COUNTS, SEEDS, strict=True, **other)


def test_key_holds_the_effective_training_options(result, folders):
    """Spelling out a default of `train` is the same setting; changing it is another."""
    default_lr = inspect.signature(train).parameters["lr"].default
    keyed = {k: v for k, v in options(folders).items() if k != "progress"}
    same = {**keyed, "train_options": {**TRAIN, "lr": default_lr}}
    assert SweepResult.from_cache(THEORY, DEPTHS, COUNTS, SEEDS, **same).complete
    assert result.settings["train_options"]["lr"] == default_lr


def test_corrupt_cache_file_is_recomputed(result, folders, tmp_path):
    cache = tmp_path / "copy"
    shutil.copytree(folders["cache"], cache)
    victim = next(cache.glob("inn-cubic-L1-n150-s0-*.json"))
    victim.write_text("{not json")
    with pytest.warns(RuntimeWarning, match="ignoring unreadable stored result"):
        again = sweep(THEORY, DEPTHS, COUNTS, SEEDS, executor="serial",
                      **options(folders, cache=cache))
    assert json.loads(victim.read_text())["value"]["depth"] == 1
    key = ("depth", "n", "seed", "errors", "val_nll")
    assert [{k: r[k] for k in key} for r in again.records] == [
        {k: r[k] for k in key} for r in result.records
    ]


def test_dataset_prefix_does_not_depend_on_its_size(folders):
    """Why the cache key leaves out the data-set size: the first n samples are the same."""
    small = load_dataset(THEORY, 150, seed=0, cache_dir=folders["data"], progress=False).x
    assert torch.equal(small, data(folders, seed=0, n=150))


def test_process_pool_gives_the_serial_results(result, folders, tmp_path):
    pooled = sweep(THEORY, (1,), (150,), SEEDS, executor=None, max_workers=1,
                   **options(folders, cache=tmp_path, baseline=None))
    serial = [r for r in result.records if r["depth"] == 1 and r["n"] == 150]
    for got, want in zip(pooled.records, serial, strict=True):
        assert got["seed"] == want["seed"]
        assert got["errors"]["4"]["frobenius"] == pytest.approx(
            want["errors"]["4"]["frobenius"], rel=1e-5)


def test_dask_executor_gives_the_serial_results(result, folders, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            remote = sweep(THEORY, (2,), (300,), SEEDS, executor=client.get_executor(),
                           **options(folders, cache=tmp_path, baseline=None))
    serial = [r for r in result.records if r["depth"] == 2 and r["n"] == 300]
    for got, want in zip(remote.records, serial, strict=True):
        assert got["errors"]["3"]["diagonal"] == pytest.approx(
            want["errors"]["3"]["diagonal"], rel=1e-5)


def test_table_dict_and_plot(result):
    text = str(result)
    assert "A4 diag" in text and "SM dense" in text
    mean, std = result.errors(order=2, kind="frobenius")
    assert f"{mean[0, 0]:.3g} ± {std[0, 0]:.2g}" in text
    assert json.loads(json.dumps(result.to_dict()))["depths"] == list(DEPTHS)
    fig = result.plot(order=4, kind="diagonal")
    heat, lines = fig.axes[:2]
    assert "A^{(4)}" in heat.get_title() and lines.get_xscale() == "log"
    assert len(heat.texts) == len(DEPTHS) * len(COUNTS)
    assert len(lines.get_legend().get_texts()) == len(DEPTHS) + 1


def test_model_options_key_the_cache_and_reach_the_network(result, folders, monkeypatch):
    built = []

    class Recording(PolynomialINN):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    keyed = {k: v for k, v in options(folders).items() if k != "progress"}
    # Spelling out today's default is the same key as leaving it out.
    default = PolynomialINN(2, 1).standardize
    same = {**keyed, "model_options": {"standardize": default}}
    assert SweepResult.from_cache(THEORY, DEPTHS, COUNTS, SEEDS, **same).complete
    accepted = {name for name, parameter in inspect.signature(PolynomialINN).parameters.items()
                if parameter.default is not inspect.Parameter.empty} - {"activation"}
    assert set(result.settings["model_options"]) == accepted
    assert result.settings["model_options"]["standardize"] == default
    # Another value is another key for the network (the baseline does not depend on it),
    # and training builds that network.
    other = {**keyed, "model_options": {"standardize": not default}}
    assert SweepResult.from_cache(THEORY, (1,), (150,), (0,), **other).missing == [
        {"kind": "inn", "depth": 1, "n": 150, "seed": 0}]
    monkeypatch.setattr(sweeps, "PolynomialINN", Recording)
    trained = sweep(THEORY, (1,), (150,), (0,), executor="serial", progress=False,
                    **{**other, "baseline": None})
    # One network is built to check the options before any work, one is trained.
    assert [model.standardize for model in built] == [not default] * 2
    assert not built[-1].is_standardized  # train() standardises only when asked to
    record = trained.records[0]
    cached = next(r for r in result.records if (r["depth"], r["n"], r["seed"]) == (1, 150, 0))
    assert record["errors"] != cached["errors"]
    files = {p.name for p in folders["cache"].glob("inn-cubic-L1-n150-s0-*.json")}
    assert len(files) == 2
    entries = [json.loads((folders["cache"] / name).read_text()) for name in files]
    assert sorted(e["settings"]["model_options"]["standardize"] for e in entries) == [
        False, True]


def test_lattice_model_option_reaches_the_network_as_a_tuple(folders, tmp_path, monkeypatch):
    built = []

    class Recording(PolynomialINN):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(sweeps, "PolynomialINN", Recording)
    result = sweep(THEORY, (1,), (150,), (0,), executor="serial",
                   model_options={"lattice": THEORY.shape},
                   **options(folders, cache=tmp_path, baseline=None))
    assert built[-1].lattice == THEORY.shape and isinstance(built[-1].lattice, tuple)
    assert result.settings["model_options"]["lattice"] == list(THEORY.shape)
    (path,) = tmp_path.glob("inn-*.json")
    assert json.loads(path.read_text())["settings"]["model_options"]["lattice"] == [4]
    # The same option as a list is the same key: read, not retrained.
    monkeypatch.setattr(sweeps, "train", Forbidden())
    again = sweep(THEORY, (1,), (150,), (0,), executor="serial", model_options={"lattice": [4]},
                  **options(folders, cache=tmp_path, baseline=None))
    assert again.records == result.records
    with pytest.raises(ValueError, match="model_options rejected by PolynomialINN"):
        sweep(THEORY, (1,), (150,), (0,), executor="serial", model_options={"lattice": (3,)},
              **options(folders, cache=tmp_path, baseline=None))


def test_model_options_lists_are_passed_back_as_tuples():
    # JSON keys hold lists; PolynomialINN's lattice shapes are tuples.
    assert sweeps._as_arguments([3, 3]) == (3, 3)
    assert sweeps._as_arguments({"lattice": [3, 3], "kernel_radius": 1, "odd": False}) == {
        "lattice": (3, 3), "kernel_radius": 1, "odd": False}
    assert sweeps._as_arguments([[1, 2], 3]) == ((1, 2), 3)


def test_records_carry_the_polish_stage(result):
    record = result.records[0]
    assert record["polished"] is True  # "auto" polishes these small sets
    assert record["polish_iterations"] > 0 and record["polish_seconds"] > 0
    assert np.isfinite(record["grad_norm"]) and isinstance(record["converged"], bool)
    assert result.settings["train_options"]["polish"] == "auto"
    assert record["polish_method"].startswith("fisher") and record["kept"] in {"polish", "adam"}
    assert np.isfinite(record["keep_difference"]) and record["keep_se"] > 0
    # 15 validation samples: below 100 the lower mean wins (train's keep rule).
    assert (record["kept"] == "polish") == (record["keep_difference"] <= 0)
    assert isinstance(record["fit_ok"], bool) and isinstance(record["fit_warnings"], list)
