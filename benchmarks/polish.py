"""Polish benchmark: Adam only against Adam + full-batch float64 L-BFGS (`train(polish=...)`).

On the unimodal phi^3 + phi^4 preset (m2 = 1, kappa = 0.5, g3 = 0.5, g4 = 1) on a 3 x 3 torus
(N = 9) and a 10-site ring (N = 10), n samples (HMC, seed 0; 10 % held out for validation by
`train`), the cubic INN with library-default training, once with ``polish=False`` and once
with ``polish=True`` (same seed, so the Adam stage is the same run). Per row: the NLL on
20 000 independent samples (seed 1), the relative errors of the extracted A2 (Frobenius), A3
diagonal, A4 diagonal, full A3 and full A4 against ``theory.coefficients(4)``
(`inntheory.compare`), the polish stage's seconds, L-BFGS iterations, full-batch passes and
why it stopped, and the final gradient max-abs (`TrainingHistory.grad_norm`).

``--models dense lattice`` runs every case with the dense network and with the
translation-equivariant one (``PolynomialINN(..., lattice=theory.shape)``, where this version
of the kit has it); ``--models lattice`` only the latter.

Data sets are cached in ``benchmarks/.cache/data`` (ignored by git). Run from the repository
root, on one thread:

    OMP_NUM_THREADS=1 python benchmarks/polish.py [--n 100000] [--models dense lattice]
        [--cases 0 1 2]
"""

from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path

import torch

from inntheory import PolynomialINN, compare, extract_action, load_dataset, preset, train

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "data"
CASES = (((3, 3), 2), ((10,), 2), ((10,), 3))
TEST_SAMPLES = 20_000
HEADER = ("lattice", "model", "depth", "train", "test NLL", "A2", "A3 diag", "A4 diag",
          "A3", "A4", "polish s", "iters", "passes", "stop", "grad max", "total s")


def run(shape: tuple[int, ...], depth: int, n: int, lattice: bool) -> list[list[str]]:
    """Adam-only and polished rows for one theory and depth."""
    theory = preset("unimodal", shape=shape)
    data = load_dataset(theory, n, seed=0, cache_dir=CACHE, progress=False).x
    test = load_dataset(theory, TEST_SAMPLES, seed=1, cache_dir=CACHE, progress=False).x
    truth = theory.coefficients(4)
    rows = []
    for polish in (False, True):
        torch.manual_seed(0)
        options = {"lattice": tuple(shape)} if lattice else {}
        model = PolynomialINN(theory.dim, depth, **options)
        start = time.perf_counter()
        history = train(model, data, polish=polish, progress=False, device="cpu")
        total = time.perf_counter() - start
        with torch.no_grad():
            nll = float(model.double().action(test).mean())
        comparison = compare(truth, extract_action(model, order=4))
        errors = [comparison.row(2).error, comparison.row(3).diagonal_error,
                  comparison.row(4).diagonal_error, comparison.row(3).error,
                  comparison.row(4).error]
        rows.append([
            "x".join(map(str, shape)), "lattice" if lattice else "dense", str(depth),
            "Adam + polish" if polish else "Adam", f"{nll:.5f}",
            *(f"{100 * e:.1f} %" for e in errors),
            f"{history.polish_seconds:.1f}" if polish else "-",
            str(history.polish_iterations) if polish else "-",
            str(history.polish_evaluations) if polish else "-",
            history.polish_stop or "-", f"{history.grad_norm:.1e}", f"{total:.1f}",
        ])
        print("  ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="samples per data set")
    parser.add_argument("--models", nargs="+", choices=("dense", "lattice"),
                        default=["dense"], help="networks to run (default: dense)")
    parser.add_argument("--cases", type=int, nargs="+", choices=range(len(CASES)),
                        default=list(range(len(CASES))),
                        help="which (lattice, depth) cases to run, by index: "
                        + ", ".join(f"{i}: {'x'.join(map(str, s))} depth {d}"
                                    for i, (s, d) in enumerate(CASES)) + " (default all)")
    arguments = parser.parse_args()
    kinds = [kind == "lattice" for kind in dict.fromkeys(arguments.models)]
    if True in kinds and "lattice" not in inspect.signature(PolynomialINN).parameters:
        parser.error("this version of PolynomialINN has no lattice option")
    print(f"unimodal phi^3 + phi^4, n = {arguments.n}, torch threads = "
          f"{torch.get_num_threads()}", flush=True)
    cases = [CASES[i] for i in dict.fromkeys(arguments.cases)]
    rows = [row for shape, depth in cases for lattice in kinds
            for row in run(shape, depth, arguments.n, lattice)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    print()
    print("  ".join(h.rjust(w) for h, w in zip(HEADER, widths, strict=True)))
    print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
