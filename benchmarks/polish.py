"""Polish benchmark: Adam alone against Adam + the full-batch float64 polish, by stepper.

For each case and seed (`--seeds`, default 0: the data set, the initialisation and the
minibatches), one data set, one network and one Adam stage (library defaults of `train`),
then the polish with each stepper of `train(polish=...)`: "lbfgs" (L-BFGS with a
strong-Wolfe line search) and "fisher" (damped Fisher scoring with per-sample scores, handing
over to L-BFGS when it stalls). Per row: the polish's seconds, iterations, full-batch passes
and why it stopped, the final largest gradient entry, the seconds of one full-batch pass
(loss and gradient, float64, timed once at Adam's state) and the share of the polish time
the passes take (the rest: per-sample scores, the P x P solves, validation records), and the
errors of the extracted action against the truth. Cases:

- ``3x3``: the unimodal preset (m2 = 1, kappa = 0.5, g3 = 0.5, g4 = 1) on a 3 x 3 torus, HMC,
  depth-2 lattice network; errors A2 (Frobenius), A3/A4 diagonal, full A3/A4.
- ``8x8``, ``16x16``: held-out couplings (m2 = 0.6, kappa = 0.35, g3 = 0.5, g4 = 1.1), MALA,
  depth-2 lattice network (8x8: kernel_radius = 1; 16x16: full kernels); errors on site
  A3/A4 and the leakage (norm of the A3/A4 couplings off site, relative to the true on-site
  one).

Data sets are cached in ``benchmarks/.cache/data``. Run from the repository root:

    OMP_NUM_THREADS=1 python benchmarks/polish.py --cases 3x3 8x8 [--lbfgs-steps 2000]
    OMP_NUM_THREADS=2 python benchmarks/polish.py --cases 16x16 --steppers fisher
    OMP_NUM_THREADS=1 python benchmarks/polish.py --cases 8x8 --steppers fisher --seeds 1 2
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

from inntheory import (
    LatticeTheory,
    PolynomialINN,
    compare,
    extract_action,
    load_dataset,
    preset,
    train,
)
from inntheory.model.polish import FullBatch

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "data"
HELD_OUT = {"m2": 0.6, "kappa": 0.35, "g3": 0.5, "g4": 1.1}
CASES = {
    "3x3": (lambda: preset("unimodal", shape=(3, 3)), 100_000, "hmc", {}),
    "8x8": (lambda: LatticeTheory((8, 8), **HELD_OUT), 50_000, "mala", {"kernel_radius": 1}),
    "16x16": (lambda: LatticeTheory((16, 16), **HELD_OUT), 100_000, "mala", {}),
}
HEADER = ("case", "seed", "P", "training", "polish s", "iters", "passes", "stop", "max|grad|",
          "pass s", "passes %", "errors", "total s")


def errors(theory, model) -> str:
    """The case's errors of the model's extracted action, in %."""
    if theory.dim <= 9:
        row = compare(theory.coefficients(4), extract_action(model, order=4)).row
        values = [row(2).error, row(3).diagonal_error, row(4).diagonal_error, row(3).error,
                  row(4).error]
        return " / ".join(f"{100 * v:.1f}" for v in values) + " (A2/A3d/A4d/A3/A4)"
    truth, action = theory.lattice_coefficients(4), extract_action(model, order=4)
    values = [abs(action.onsite(k) - truth.onsite(k)) / abs(truth.onsite(k)) for k in (3, 4)]
    values += [float(action.couplings(k).reshape(-1)[1:].norm()) / abs(truth.onsite(k))
               for k in (3, 4)]
    return " / ".join(f"{100 * v:.1f}" for v in values) + " (A3/A4/leak3/leak4)"


def pass_seconds(model: PolynomialINN, x: torch.Tensor) -> float:
    """One full-batch float64 pass (loss and gradient) over x, the second of two timed."""
    objective = FullBatch(copy.deepcopy(model).double(), x)
    objective()
    objective.cached = None
    start = time.perf_counter()
    objective()
    return time.perf_counter() - start


def run(name: str, steppers: list[str], lbfgs_steps: int, seed: int) -> list[list[str]]:
    """The case's rows: Adam alone, then Adam + each stepper; `seed` seeds the data set, the
    initialisation and the minibatches."""
    make, n, method, options = CASES[name]
    theory = make()
    data = load_dataset(theory, n, method=method, seed=seed, cache_dir=CACHE,
                        progress=False).x
    torch.manual_seed(seed)
    model = PolynomialINN(theory.dim, 2, lattice=theory.shape, **options)
    start = time.perf_counter()
    history = train(model, data, seed=seed, polish=False, progress=False, device="cpu")
    adam_seconds = time.perf_counter() - start
    size = sum(p.numel() for p in model.parameters() if p.requires_grad)
    x = torch.as_tensor(data[: model.training_info["n_train"]], dtype=torch.float64)
    one_pass = pass_seconds(model, x)
    rows = [[name, str(seed), str(size), "Adam", "-", "-", "-", "-", f"{history.grad_norm:.1e}",
             f"{one_pass:.2f}", "-", errors(theory, model), f"{adam_seconds:.0f}"]]
    print("  ".join(rows[-1]), flush=True)
    for stepper in steppers:
        torch.manual_seed(seed)
        polished = PolynomialINN(theory.dim, 2, lattice=theory.shape, **options)
        steps = lbfgs_steps if stepper == "lbfgs" else 2000
        start = time.perf_counter()
        history = train(polished, data, seed=seed, polish=stepper, polish_steps=steps,
                        progress=False, device="cpu")
        total = time.perf_counter() - start
        share = history.polish_evaluations * one_pass / max(history.polish_seconds, 1e-9)
        rows.append([
            name, str(seed), str(size), f"Adam + {history.polish_method}",
            f"{history.polish_seconds:.0f}", str(history.polish_iterations),
            str(history.polish_evaluations), history.polish_stop,
            f"{history.grad_norm:.1e}", f"{one_pass:.2f}", f"{100 * min(share, 1):.0f}",
            errors(theory, polished), f"{total:.0f}",
        ])
        print("  ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=["3x3", "8x8"])
    parser.add_argument("--steppers", nargs="+", choices=("lbfgs", "fisher"),
                        default=["lbfgs", "fisher"])
    parser.add_argument("--lbfgs-steps", type=int, default=2000,
                        help="the most L-BFGS iterations (polish_steps of the lbfgs rows)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="seeds of the data set, initialisation and minibatches")
    arguments = parser.parse_args()
    print(f"torch threads = {torch.get_num_threads()}", flush=True)
    rows = [row for case in arguments.cases for seed in arguments.seeds
            for row in run(case, arguments.steppers, arguments.lbfgs_steps, seed)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    print()
    print("  ".join(h.rjust(w) for h, w in zip(HEADER, widths, strict=True)))
    print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
