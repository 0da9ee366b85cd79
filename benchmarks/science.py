"""The science benchmark: how well does the INN learn the action, against which targets.

Part 1, unimodal phi^3 + phi^4 preset (N = 8): both activations, depth {1, 2, 4},
n {1e3, 1e4, 1e5}, 3 seeds, library-default training; the relative errors of A2 (Frobenius),
A3 diagonal and A4 diagonal, mean ± std over seeds, next to dense score matching on the same
data. Part 2, double-well preset: cumulants 1-4 of model samples against the data in units of
their standard errors (and, where the truncated learned action is normalisable, of samples of
that action: closing the loop).

Everything runs through `inntheory.sweep` and its cache (``benchmarks/.cache``, ignored by
git), so a rerun only reads. The markdown table replaces the text between the markers of the
"## Science" section of ``benchmarks/README.md``.

Run from the repository root:

    python benchmarks/science.py                 # compute what is missing, print, record
    python benchmarks/science.py --from-cache    # only read the cache (partial grids allowed)
    python benchmarks/science.py --workers 1     # one training process
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from inntheory import PolynomialINN, extract_action, load_dataset, sweep, train
from inntheory.analysis import compare_cumulants
from inntheory.loop import close_loop, normalisable

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
README = ROOT / "README.md"
BEGIN, END = "<!-- science:begin -->", "<!-- science:end -->"

ACTIVATIONS = ("cubic", "quadratic")
DEPTHS = (1, 2, 4)
COUNTS = (1_000, 10_000, 100_000)
SEEDS = (0, 1, 2)
COLUMNS = ((2, "frobenius", "A2 (Frobenius)"), (3, "diagonal", "A3 diag"),
           (4, "diagonal", "A4 diag"))
TARGETS = {2: 0.03, 3: 0.08, 4: 0.10}
SM_FACTOR = 1.2
DW_N = 100_000
DW_DEPTH = 4
DW_LOOP_SAMPLES = 20_000


def percent(mean: float, std: float | None = None) -> str:
    if not math.isfinite(mean):
        return "not run"
    return f"{100 * mean:.1f} %" if std is None else f"{100 * mean:.1f} ± {100 * std:.1f} %"


def unimodal(workers: int, compute: bool) -> dict[str, object]:
    """Both activations over the grid; returns {activation: SweepResult}."""
    results = {}
    for activation in ACTIVATIONS:
        start = time.perf_counter()
        results[activation] = sweep(
            "unimodal", DEPTHS, COUNTS, SEEDS, activation=activation, baseline="dense",
            cache=CACHE / "sweeps", data_options={"cache_dir": str(CACHE / "data")},
            max_workers=workers, train=compute, progress=compute,
        )
        print(f"{activation}: {time.perf_counter() - start:.0f} s", flush=True)
        print(results[activation].table(), flush=True)
    return results


def unimodal_markdown(results: dict[str, object]) -> list[str]:
    header = ("| model | depth | n | " + " | ".join(c[2] for c in COLUMNS)
              + " | val NLL | steps run (mean) | train s (mean) | seeds |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    any_result = next(iter(results.values()))
    for activation, result in results.items():
        errors = [result.errors(k, kind) for k, kind, _ in COLUMNS]
        nll, seconds = result.metric("val_nll"), result.metric("train_seconds")
        steps = result.metric("steps_run")
        for i, depth in enumerate(result.depths):
            for j, n in enumerate(result.sample_counts):
                done = sum(r["depth"] == depth and r["n"] == n for r in result.records)
                cells = [percent(m[i, j], s[i, j]) for m, s in errors]
                nll_cell = f"{nll[0][i, j]:.3f} ± {nll[1][i, j]:.3f}" if done else "-"
                time_cell = f"{seconds[0][i, j]:.0f}" if done else "-"
                steps_cell = f"{steps[0][i, j]:.0f}" if done else "-"
                lines.append(f"| INN {activation} | {depth} | {n:g} | " + " | ".join(cells)
                             + f" | {nll_cell} | {steps_cell} | {time_cell} | "
                             + f"{done}/{len(SEEDS)} |")
    base = [any_result.baseline_errors(k, kind) for k, kind, _ in COLUMNS]
    for j, n in enumerate(any_result.sample_counts):
        done = sum(r["n"] == n for r in any_result.baselines)
        cells = [percent(m[j], s[j]) for m, s in base]
        lines.append(f"| score matching (dense) | - | {n:g} | " + " | ".join(cells)
                     + f" | - | - | - | {done}/{len(SEEDS)} |")
    return lines


def verdicts(results: dict[str, object]) -> list[str]:
    """The targets at n = 1e5, met or missed, with numbers."""
    j = COUNTS.index(100_000)
    best, best_score = None, math.inf
    for activation, result in results.items():
        for i, depth in enumerate(result.depths):
            means = [result.errors(k, kind)[0][i, j] for k, kind, _ in COLUMNS]
            score = max(m / TARGETS[k] for m, (k, _, _) in zip(means, COLUMNS, strict=True))
            if math.isfinite(score) and score < best_score:
                best, best_score = (activation, i, depth), score
    if best is None:
        return ["- No n = 1e5 point has finished yet: no target can be judged."]
    activation, i, depth = best
    result = results[activation]
    out = [f"- Best configuration at n = 1e5 (smallest worst error/target ratio): "
           f"{activation} activation, depth {depth}."]
    for k, kind, name in COLUMNS:
        cells = [(result_k.errors(k, kind)[0][d, j], act, result_k.depths[d])
                 for act, result_k in results.items() for d in range(len(result_k.depths))]
        value, act, d = min((c for c in cells if math.isfinite(c[0])), default=(math.nan,
                            "-", "-"))
        out.append(f"- Per-target best {name} at n = 1e5: {percent(value)} ({act}, depth {d}): "
                   f"**{'met' if value <= TARGETS[k] else 'missed'}** "
                   f"(target <= {100 * TARGETS[k]:.0f} %).")
    for k, kind, name in COLUMNS:
        mean, std = (a[i, j] for a in result.errors(k, kind))
        sm_mean = result.baseline_errors(k, kind)[0][j]
        line = (f"- {name} ({activation}, depth {depth}): {percent(mean, std)} vs target "
                f"<= {100 * TARGETS[k]:.0f} %: **{'met' if mean <= TARGETS[k] else 'missed'}**; ")
        if math.isfinite(sm_mean):
            ratio = mean / sm_mean
            line += (f"dense score matching {percent(sm_mean)}, INN / score matching = "
                     f"{ratio:.3f} vs <= {SM_FACTOR}: "
                     f"**{'met' if ratio <= SM_FACTOR else 'missed'}**.")
        else:
            line += "dense score matching not run yet."
        out.append(line)
    for k, kind, name in COLUMNS:
        mean = result.errors(k, kind)[0]
        by_n = mean[i]
        by_depth = mean[:, j]
        falls_n = bool(np.all(np.diff(by_n) < 0))
        falls_depth = bool(np.all(np.diff(by_depth) < 0))
        out.append(
            f"- {name} ({activation}): vs n at depth {depth}: "
            + ", ".join(percent(v) for v in by_n)
            + f" ({'falls' if falls_n else 'does not fall monotonically'}); vs depth "
            + f"{'/'.join(map(str, DEPTHS))} at n = 1e5: "
            + ", ".join(percent(v) for v in by_depth)
            + f" ({'falls' if falls_depth else 'does not fall monotonically'})."
        )
    return out


def defaults_tag() -> str:
    """A hash of `train`'s current defaults: a changed default means a new double-well model."""
    defaults = {name: repr(parameter.default)
                for name, parameter in inspect.signature(train).parameters.items()
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY}
    return hashlib.sha256(json.dumps(defaults, sort_keys=True).encode()).hexdigest()[:8]


def cumulant_row(label: str, comparison: object) -> str:
    z = [comparison.row(k).max_z for k in (1, 2, 3, 4)]
    relative = [comparison.row(k).max_abs_diff / float(comparison.data[k].abs().max())
                for k in (2, 4)]
    within = all(comparison.within(k, 3.0) for k in (1, 2, 3))
    fourth = "mismatch (> 3 SE)" if z[3] > 3 else "no mismatch (<= 3 SE)"
    return (f"| {label} | " + " | ".join(f"{v:.1f}" for v in z) + " | "
            + " | ".join(percent(v) for v in relative)
            + f" | {'yes' if within else 'no'} | {fourth} |")


def double_well(compute: bool) -> tuple[list[str], list[str]]:
    """INN samples (and the closed loop) against the double-well data, per activation.

    Returns the table lines and the verdict lines.
    """
    header = ("| samples from | k=1 max z | k=2 max z | k=3 max z | k=4 max z | "
              "k=2 max diff / max kappa2 | k=4 max diff / max kappa4 | 1-3 within 3 SE | "
              "4th order |")
    lines = [header, "|" + "---|" * 9]
    verdict = []
    data = None
    for activation in ACTIVATIONS:
        name = f"INN {activation}, depth {DW_DEPTH}"
        path = CACHE / "models" / (f"double_well-{activation}-L{DW_DEPTH}-n{DW_N}-s0-"
                                   f"{defaults_tag()}.pt")
        if not path.exists() and not compute:
            lines.append(f"| {name} | not run | | | | | | | |")
            continue
        if data is None:
            data = load_dataset("double_well", DW_N, seed=0, cache_dir=CACHE / "data",
                                progress=compute).x
        if path.exists():
            model = PolynomialINN.load(path)
        else:
            torch.manual_seed(0)
            model = PolynomialINN(data.shape[1], DW_DEPTH, activation=activation)
            train(model, data, seed=0, progress=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save(path)
        comparison = compare_cumulants(data, model.sample(DW_N, seed=1))
        lines.append(cumulant_row(f"{name}: model samples", comparison))
        z = [comparison.row(k).max_z for k in (1, 2, 3, 4)]
        met = all(v <= 3 for v in z[:3])
        verdict.append(
            f"- Double well, {name} samples: cumulants 1-3 within 3 SE "
            f"**{'met' if met else 'missed'}** (max z {z[0]:.1f}, {z[1]:.1f}, {z[2]:.1f}); "
            f"4th-order mismatch {z[3]:.1f} SE."
        )
        learned = extract_action(model, order=4)
        ok, minimum = normalisable(learned)
        if ok:
            loop = close_loop(learned, data, n_samples=DW_LOOP_SAMPLES, seed=1,
                              sample_options={"flip": True})
            label = f"{name}: truncated action A1..A4, MCMC ({DW_LOOP_SAMPLES:g} samples)"
            lines.append(cumulant_row(label, loop))
        else:
            lines.append(f"| {name}: truncated action A1..A4 | not normalisable (top form "
                         f"minimum {minimum:.3g}) | | | | | | | |")
    return lines, verdict


def record(text: str) -> None:
    """Replace the Science section's body between the markers (append the section if new)."""
    block = f"{BEGIN}\n{text}\n{END}"
    current = README.read_text() if README.exists() else "# Benchmarks\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        current = head + block + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n## Science\n\n" + block + "\n"
    README.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="training processes")
    parser.add_argument("--from-cache", action="store_true", help="read the cache only")
    parser.add_argument("--no-record", action="store_true", help="do not edit README.md")
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    compute = not args.from_cache
    start = time.perf_counter()
    results = unimodal(args.workers, compute)
    # Small tensors: one thread is faster than two contending ones (as in the sweep workers).
    torch.set_num_threads(1)
    dw, dw_verdict = double_well(compute)
    elapsed = time.perf_counter() - start
    done = sum(len(r.records) for r in results.values())
    trained = sum(record["train_seconds"] for r in results.values() for record in r.records)
    total = len(ACTIVATIONS) * len(DEPTHS) * len(COUNTS) * len(SEEDS)
    defaults = {name: parameter.default
                for name, parameter in inspect.signature(train).parameters.items()}
    status = ("" if done == total else
              f"\n**Partial grid: {done} of {total} trainings finished; "
              "'not run' cells had not finished when this was recorded.**\n")
    text = "\n".join([
        "Command: `python benchmarks/science.py` (cache in `benchmarks/.cache`; "
        "`--from-cache` re-renders from it). Unimodal preset (N = 8, m2 = 1, kappa = 0.5, "
        "g3 = 0.5, g4 = 1), library-default training (`train` defaults: up to "
        f"{defaults['steps']} Adam steps, batch {defaults['batch_size']}, lr {defaults['lr']}, "
        f"early stopping after {defaults['patience']} evaluations without a better NLL on a "
        f"{100 * defaults['validation']:.0f} % validation split), seeds 0-2 (each seed "
        "its own data set, initialisation and minibatches), relative errors mean ± std over "
        "seeds. Score matching uses the same n samples. Training times are wall seconds "
        "per point, one torch thread per worker process, on 2 CPU cores shared with other "
        "jobs when this grid ran, so they are inflated; the "
        f"{total} trainings sum to {trained / 60:.0f} min of training time. This invocation "
        f"took {elapsed / 60:.0f} min (cached points cost nothing).",
        status,
        *unimodal_markdown(results),
        "",
        "Targets (unimodal at n = 1e5; double well):",
        "",
        *verdicts(results),
        *dw_verdict,
        "",
        f"Double-well preset (m2 = -1, kappa = 0.25, g4 = 1; n = {DW_N:g}, seed 0, depth "
        f"{DW_DEPTH}, library-default training): max over distinct entries of |kappa_data - "
        "kappa_model| / SE (jackknife over 20 blocks per set, combined). Target: cumulants "
        "1-3 within 3 SE, the 4th-order mismatch shown. The relative columns give the size "
        "of the largest mismatch against the largest entry of the data's cumulant.",
        "",
        *dw,
    ])
    print(text)
    if not args.no_record:
        record(text)


if __name__ == "__main__":
    main()
