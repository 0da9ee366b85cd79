"""Diagrammatic action extraction against nested autodiff: time, peak memory, agreement.

For each N, a random float64 `PolynomialINN` (depth 4, standardisation set) is expanded at
x0 = 0 to order 4 twice, in one run:

- `extract_action(model, 4)` (the layer-to-layer pull-back of `inntheory.extraction`);
- `torch.func.jacfwd(jacfwd(hessian(model.action)))(x0)`, nested autodiff (for N > 32 its
  outermost jacfwd runs as a loop of jvps, else its memory, ~N^5, exhausts the machine).

Each method runs in a fresh worker process. Printed per N: wall time of each (best of up to
`--repeats` calls, as many as fit in ~2 s, so slow autodiff runs once), the speed-up, the peak
resident memory added by the first call (Linux VmHWM minus the RSS before it, from
/proc/self/status, else ru_maxrss; CPU torch tensors are invisible to tracemalloc), and the
maximum relative difference max|A4_diagrams - A4_autodiff| / max|A4_autodiff|.

Usage:
    python benchmarks/extraction.py [--sizes 8 16 32 48] [--depth 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from torch.func import hessian, jacfwd, jvp

from inntheory import PolynomialINN, extract_action

LOOP_ABOVE = 32


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _peak_rss_kib() -> int:
    high = _status_kib("VmHWM")
    return high if high is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker(method: str, dim: int, depth: int, repeats: int, out: Path) -> None:
    """Run one method in this fresh process; print time and peak added RSS as JSON."""
    model = random_model(dim, depth)
    x0 = torch.zeros(dim, dtype=torch.float64)
    run = partial(extract_action, model, 4) if method == "diagrams" else partial(
        autodiff, model, x0)
    start_rss = _status_kib("VmRSS") or _peak_rss_kib()
    start = time.perf_counter()
    result = run()  # first call: peak memory (and time, if it is slow)
    times = [time.perf_counter() - start]
    peak_mib = (_peak_rss_kib() - start_rss) / 1024
    while sum(times) < 2.0 and len(times) < repeats + 1:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    a4 = result.coefficient(4) if method == "diagrams" else result
    torch.save(a4, out)
    print(json.dumps({"time": min(times), "peak_mib": peak_mib}))


def random_model(dim: int, depth: int, seed: int = 0) -> PolynomialINN:
    """A float64 cubic network away from the identity, standardised to random data."""
    torch.manual_seed(seed)
    model = PolynomialINN(dim, depth, activation="cubic").double()
    with torch.no_grad():
        model.weight.add_(0.3 * torch.randn(depth, dim, dim, dtype=torch.float64) / dim**0.5)
        model.bias.normal_(0.0, 0.2)
        for act in model.activations:
            for parameter in act.parameters():
                parameter.normal_(0.0, 0.3)
    model.standardize_to(torch.randn(256, dim, dtype=torch.float64) * 1.5 + 0.2)
    return model


def autodiff(model: PolynomialINN, x0: torch.Tensor) -> torch.Tensor:
    """A^(4) at x0 by nested autodiff: jacfwd(jacfwd(hessian(S))), (N,)*4.

    For N > LOOP_ABOVE the outermost jacfwd (a vmap over N tangents, whose memory grows
    like N^5: 3.3 GiB at N = 32) runs as a loop of single jvps, one slice A4[..., i] each.
    """
    third = jacfwd(hessian(model.action))
    if x0.shape[0] <= LOOP_ABOVE:
        return jacfwd(third)(x0).detach()
    basis = torch.eye(x0.shape[0], dtype=x0.dtype)
    return torch.stack([jvp(third, (x0,), (e,))[1].detach() for e in basis], dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 48])
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--worker", choices=["diagrams", "autodiff"], help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        worker(args.worker, args.dim, args.depth, args.repeats, args.out)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64, "
          f"depth {args.depth}, order 4, cubic activation, standardised; "
          "each method in a fresh process")
    header = (f"{'N':>4} {'autodiff s':>11} {'diagrams s':>11} {'speed-up':>9} "
              f"{'autodiff MiB':>13} {'diagrams MiB':>13} {'max rel diff':>13}")
    print(header)
    print("-" * len(header))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))}
    threads = ["--threads", str(args.threads)] if args.threads else []
    with tempfile.TemporaryDirectory() as folder:
        for dim in args.sizes:
            measured, tensors = {}, {}
            for method in ("autodiff", "diagrams"):
                out = Path(folder) / f"{method}{dim}.pt"
                completed = subprocess.run(
                    [sys.executable, __file__, "--worker", method, "--dim", str(dim),
                     "--depth", str(args.depth), "--repeats", str(args.repeats),
                     "--out", str(out), *threads],
                    capture_output=True, text=True, check=True, env=environment,
                )
                measured[method] = json.loads(completed.stdout.strip().splitlines()[-1])
                tensors[method] = torch.load(out)
            a4 = tensors["autodiff"]
            difference = float((tensors["diagrams"] - a4).abs().max() / a4.abs().max())
            t_auto, t_diag = measured["autodiff"]["time"], measured["diagrams"]["time"]
            print(f"{dim:>4} {t_auto:>11.3f} {t_diag:>11.4f} {t_auto / t_diag:>8.1f}x "
                  f"{measured['autodiff']['peak_mib']:>13.0f} "
                  f"{measured['diagrams']['peak_mib']:>13.0f} {difference:>13.1e}", flush=True)


if __name__ == "__main__":
    main()
