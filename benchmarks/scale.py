"""Scale benchmark: L x L lattices, order 4, a lattice-equivariant INN with local kernels.

For each L: HMC sampling of the unimodal phi^3 + phi^4 theory (`inntheory.sample`), training
of a depth-2 cubic `PolynomialINN(lattice=(L, L), kernel_radius=1)` with `train`'s defaults
(Adam, then `polish="auto"`, which polishes where its predicted time fits the budget
`inntheory.model.polish.AUTO_BUDGET`, and says why or why not), the compressed order-4
extraction (`extract_action`, a `LatticeAction` on the window min(L, 2R + 1), R = 4), its
on-site A3/A4 errors against the truth and its leakage (the norm of the couplings the true
theory does not have, relative to the on-site one: for A3 and A4 everything off site), the
same numbers for translation-tied score matching (`score_matching(basis="tied")`) on the same
samples, and the dense extraction beside the compressed one while it fits (N <= 64), as the
time ratio with the largest difference. Each size runs in its own process, so the peak
resident memory (ru_maxrss, read before the dense extraction) is that size's: sampling,
training, compressed extraction and tied score matching together.

    python benchmarks/scale.py --sizes 4 8 --n 100000
    python benchmarks/scale.py --sizes 64 --n 20000 \
        --record notebooks/cache/lecture8/scale-64x64.json   # read by lecture 8

The second table says where the training time goes: the Adam stage, the polish decision, its
stepper, iterations, full-batch passes, seconds per pass and the final largest gradient entry.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from inntheory import PolynomialINN, extract_action, preset, sample, score_matching, train

DENSE_MAX_SITES = 64


def _errors(action, truth) -> dict[str, float]:
    """On-site relative errors of A2/A3/A4 and leakage of A3/A4 (off-site over on-site)."""
    result = {}
    for k in (2, 3, 4):
        true, learned = truth.onsite(k), action.onsite(k)
        result[f"a{k}"] = abs(learned - true) / abs(true)
    for k in (3, 4):
        couplings = action.couplings(k).reshape(-1)
        result[f"leak{k}"] = float(couplings[1:].norm()) / abs(truth.onsite(k))
    return result


def one(size: int, n: int, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    shape = (size, size)
    theory = preset("unimodal", shape=shape)
    truth = theory.lattice_coefficients(4)
    row: dict = {"L": size, "N": size * size, "n": n}
    start = time.perf_counter()
    data = sample(theory, n, seed=seed, progress=False).x
    row["sample_s"] = time.perf_counter() - start
    model = PolynomialINN(size * size, 2, activation="cubic", lattice=shape, kernel_radius=1)
    start = time.perf_counter()
    history = train(model, data.float(), steps=steps, seed=seed, progress=False)
    row["train_s"] = time.perf_counter() - start
    row.update(adam_s=row["train_s"] - history.polish_seconds, polish=history.polish_method,
               decision=history.polish_decision, iterations=history.polish_iterations,
               passes=history.polish_evaluations, polish_s=history.polish_seconds,
               stop=history.polish_stop, grad=history.grad_norm)
    model = model.double()
    start = time.perf_counter()
    action = extract_action(model, 4)
    row["extract_s"] = time.perf_counter() - start
    row["window"] = list(action.window)
    row.update({f"inn_{key}": value for key, value in _errors(action, truth).items()})
    start = time.perf_counter()
    tied = score_matching(data, 4, basis="tied", lattice=shape, radius=1)
    row["tied_s"] = time.perf_counter() - start
    row.update({f"tied_{key}": value for key, value in _errors(tied, truth).items()})
    row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if size * size <= DENSE_MAX_SITES:
        start = time.perf_counter()
        dense = extract_action(model, 4, compressed=False)
        row["dense_s"] = time.perf_counter() - start
        row["dense_maxdiff"] = max(
            float((dense.coefficient(k) - action.coefficient(k)).abs().max()) for k in (1, 2, 3, 4)
        )
    return row


def report(rows: list[dict], n: int, steps: int) -> None:
    """Print the two tables of `rows` (one dict per size, as `one` returns them)."""
    header = (f"{'L':>3} {'N':>5} {'sample s':>9} {'train s':>8} {'extract s':>9} "
              f"{'window':>7} {'peak MB':>8} | {'INN A3':>7} {'A4':>6} {'leak3':>6} "
              f"{'leak4':>6} | {'tied A3':>7} {'A4':>6} {'tied s':>6} | {'dense/compr':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = (f"{r['dense_s'] / r['extract_s']:.2g}x ({r['dense_maxdiff']:.0e})"
                 if "dense_s" in r else "-")
        print(f"{r['L']:>3} {r['N']:>5} {r['sample_s']:>9.1f} {r['train_s']:>8.1f} "
              f"{r['extract_s']:>9.3f} {'x'.join(map(str, r['window'])):>7} "
              f"{r['peak_mb']:>8.0f} | {100 * r['inn_a3']:>6.1f}% {100 * r['inn_a4']:>5.1f}% "
              f"{100 * r['inn_leak3']:>5.1f}% {100 * r['inn_leak4']:>5.1f}% | "
              f"{100 * r['tied_a3']:>6.1f}% {100 * r['tied_a4']:>5.1f}% {r['tied_s']:>6.1f} | "
              f"{ratio:>11}")
    print(f"\nn = {n} samples, {steps} Adam steps, order 4, depth 2 cubic, "
          f"kernel_radius 1; one process per size\n")
    header = (f"{'L':>3} {'adam s':>7} {'polish':>18} {'iters':>5} {'passes':>6} "
              f"{'polish s':>8} {'s/pass':>7} {'stop':>9} {'max|grad|':>9}  decision")
    print(header)
    print("-" * len(header))
    for r in rows:
        ran = r["passes"] > 0
        per_pass = f"{r['polish_s'] / r['passes']:.2f}" if ran else "-"
        print(f"{r['L']:>3} {r['adam_s']:>7.1f} {r['polish'] if ran else 'none':>18} "
              f"{r['iterations']:>5} {r['passes']:>6} {r['polish_s']:>8.1f} {per_pass:>7} "
              f"{r['stop'] or '-':>9} {r['grad']:>9.1e}  {r['decision']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--n", type=int, default=100_000, help="samples per lattice")
    parser.add_argument("--steps", type=int, default=1500, help="Adam steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", help="also write the rows to this JSON file")
    parser.add_argument("--from-record", help="print the tables of a file --record wrote")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.n, args.steps, args.seed)))
        return
    if args.from_record:
        with open(args.from_record) as stream:
            saved = json.load(stream)
        report(saved["rows"], saved["n"], saved["steps"])
        return
    rows = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--one", str(size), "--n", str(args.n),
                   "--steps", str(args.steps), "--seed", str(args.seed)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    if args.record:
        with open(args.record, "w") as stream:
            json.dump({"command": " ".join(sys.argv[1:]), "n": args.n, "steps": args.steps,
                       "seed": args.seed, "rows": rows}, stream, indent=1)
    report(rows, args.n, args.steps)


if __name__ == "__main__":
    main()
