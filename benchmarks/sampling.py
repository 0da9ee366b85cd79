"""Sampling benchmarks: HMC against MALA (ESS per second), and HMC cost against lattice size.

Default: for the unimodal couplings (m2 = 1, kappa = 0.5, g3 = 0.5, g4 = 1) on a 64-site chain
and an 8x8 lattice, both samplers draw the same number of samples with the same number of
chains, both with the step size adapted during burn-in (HMC towards acceptance 0.8 with its
default trajectory, MALA towards 0.57) and thinning from the pilot autocorrelation time. ESS is
the smallest over the observables mean(x), mean(x^2) and S/N; the time is the whole ``sample``
call, burn-in included.

``--scaling``: one row per L x L lattice (each in its own process, so that the peak memory is
its own): wall and CPU seconds, ESS per CPU second, step size, leapfrog steps, thinning, peak
memory, and the CPU time relative to the smallest size divided by ``(N / N_0)^(5/4)``, the
growth expected of HMC (1.0 = as expected).

Usage:
    python benchmarks/sampling.py [--samples 12800] [--chains 128] [--threads 2] [--device cpu]
    python benchmarks/sampling.py --scaling [--sizes 16 32 64] [--samples 20000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from inntheory.sampling import sample
from inntheory.theories import PRESETS, LatticeTheory, preset


def compare_methods(args: argparse.Namespace) -> None:
    header = (f"{'lattice':>8} {'method':>6} {'steps':>5} {'step':>6} {'acc':>5} {'thin':>4} "
              f"{'min ESS':>8} {'seconds':>8} {'ESS/s':>8}")
    print(header)
    print("-" * len(header))
    ratios = {}
    for shape in ((64,), (8, 8)):
        theory = preset("unimodal", shape)
        rate = {}
        for method in ("hmc", "mala"):
            d = sample(theory, args.samples, method=method, seed=args.seed, device=args.device,
                       n_chains=args.chains, progress=False).diagnostics
            rate[method] = d["ess"] / d["seconds"]
            label = "x".join(map(str, shape))
            print(f"{label:>8} {method:>6} {d['n_steps']:>5} {d['step_size']:>6.3f} "
                  f"{d['acceptance']:>5.2f} {d['thinning']:>4} {d['ess']:>8.0f} "
                  f"{d['seconds']:>8.1f} {rate[method]:>8.0f}", flush=True)
        ratios[shape] = rate["hmc"] / rate["mala"]
    print()
    for shape, ratio in ratios.items():
        label = "x".join(map(str, shape))
        print(f"HMC / MALA effective samples per second, {label}: {ratio:.2f}")


def one_size(args: argparse.Namespace) -> None:
    """One lattice size; prints a JSON row."""
    size = args.one
    theory = LatticeTheory((size, size), **PRESETS["unimodal"])
    cpu = time.process_time()
    d = sample(theory, args.samples, seed=args.seed, device=args.device, n_chains=args.chains,
               progress=False).diagnostics
    cpu = time.process_time() - cpu
    if torch.device(args.device).type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"L": size, "N": size * size, "wall": d["seconds"], "cpu": cpu,
                      "ess": d["ess"], "step": d["step_size"], "steps": d["n_steps"],
                      "thinning": d["thinning"], "tau": d["tau"], "rhat": d["rhat"],
                      "peak_gb": peak / 2**30}))


def scaling(args: argparse.Namespace) -> None:
    print(f"unimodal L x L, {args.samples} samples, {args.chains} chains, {args.threads} "
          f"thread(s), {args.device}")
    header = (f"{'lattice':>8} {'wall s':>7} {'CPU s':>7} {'ESS/s':>7} {'step':>6} "
              f"{'steps':>5} {'thin':>4} {'tau':>5} {'R-hat':>6} {'peak GB':>7} "
              f"{'/ N^(5/4)':>9}")
    print(header)
    print("-" * len(header))
    first = None
    for size in args.sizes:
        command = [sys.executable, __file__, "--one", str(size)] + [
            f"--{k}={getattr(args, k)}" for k in ("samples", "chains", "threads", "device",
                                                  "seed")]
        row = json.loads(subprocess.run(command, check=True, capture_output=True,
                                        text=True).stdout.splitlines()[-1])
        # CUDA runs asynchronously: its CPU time is not its cost, the wall time is.
        cost = row["wall"] if args.device.startswith("cuda") else row["cpu"]
        first = first or (cost, row["N"])
        ratio = cost / first[0] / (row["N"] / first[1]) ** 1.25
        print(f"{size}x{size:<5} {row['wall']:>7.1f} {row['cpu']:>7.1f} "
              f"{row['ess'] / cost:>7.0f} {row['step']:>6.3f} {row['steps']:>5} "
              f"{row['thinning']:>4} {row['tau']:>5.2f} {row['rhat']:>6.3f} "
              f"{row['peak_gb']:>7.2f} {ratio:>9.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--chains", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scaling", action="store_true", help="HMC cost against lattice size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size_mode = args.scaling or args.one is not None
    args.samples = args.samples or (20000 if size_mode else 12800)
    args.threads = args.threads or (1 if size_mode else 2)
    torch.set_num_threads(args.threads)
    if args.one is not None:
        one_size(args)
    elif args.scaling:
        scaling(args)
    else:
        compare_methods(args)


if __name__ == "__main__":
    main()
