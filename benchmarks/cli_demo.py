"""Run time of ``inntheory demo`` (the full run and ``--quick``) through the real command.

Each run is a fresh ``python -m inntheory demo --device cpu --quiet`` process in a temporary
folder, so imports (torch, matplotlib) are included. The table gives its wall time, the CPU
time of the process (user + system; on a busy machine the better guide to an idle machine's
wall time), the phases from the run's ``summary.json``, the INN's and score matching's
relative A^(2) and A^(4) errors, and the load average around the runs.

Run: python benchmarks/cli_demo.py [--threads 2]
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
from pathlib import Path


def run_demo(quick: bool, threads: int) -> dict:
    """One demo process: wall and CPU seconds plus its summary.json."""
    folder = Path(tempfile.mkdtemp(prefix="cli-demo-"))
    command = [sys.executable, "-m", "inntheory", "demo", "--device", "cpu", "--quiet",
               "--out", str(folder / "out")] + (["--quick"] if quick else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads((folder / "out" / "summary.json").read_text())
    return {"wall": wall, "cpu": cpu, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="OMP threads of the run")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = [("--quick", run_demo(True, args.threads)), ("full", run_demo(False, args.threads))]
    load_after = os.getloadavg()[0]
    header = (f"{'run':>8} {'wall s':>7} {'CPU s':>7} {'sample':>7} {'train':>7} "
              f"{'extract':>7} {'score m':>7} {'steps':>6} {'INN A2':>7} {'INN A4':>7} "
              f"{'SM A2':>7} {'SM A4':>7}")
    print(header)
    print("-" * len(header))
    for name, row in rows:
        summary = row["summary"]
        seconds, errors = summary["seconds"], summary["errors"]
        steps = summary["diagnostics"]["training"]["steps"][-1]
        print(f"{name:>8} {row['wall']:7.1f} {row['cpu']:7.1f} {seconds['sample']:7.1f} "
              f"{seconds['train']:7.1f} {seconds['extract']:7.2f} "
              f"{seconds['score_matching']:7.2f} {steps:6d} "
              f"{errors['INN']['2']:7.3f} {errors['INN']['4']:7.3f} "
              f"{errors['score matching']['2']:7.3f} {errors['score matching']['4']:7.3f}")
    print(f"\nload average (1 min) before / after: {load_before:.1f} / {load_after:.1f}; "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={args.threads}")


if __name__ == "__main__":
    main()
