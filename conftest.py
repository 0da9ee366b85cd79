"""Repository-wide pytest set-up: silent tqdm, a thread budget, and each lecture's run time.

Importing this module sets ``TQDM_DISABLE=1`` (unless already set) so that progress bars stay
silent in the tests and in the nbval notebook kernels, which inherit the environment of the
pytest worker that starts them.

Thread budget: two pytest-xdist workers whose notebook kernels each let torch and BLAS use
every core oversubscribe the machine (on 2 cores the lecture sequence took 298 s instead of
64 s). `pytest_configure` therefore gives every worker, and through the inherited environment
every kernel it starts, ``max(1, cores // workers)`` threads: it sets ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` unless the caller set them, and calls
``torch.set_num_threads`` in the worker itself. It runs in the controlling process before the
workers are started, and again in each worker. An explicit ``OMP_NUM_THREADS=...`` in the
environment wins (the other two variables then follow it).

nbval reports every cell as its own test; the lectures promise a per-notebook budget (at most
30 s each and 150 s for the sequence under the README's test command on two cores), so the
terminal summary adds one line per notebook and the total. Works with pytest-xdist: reports
of the workers reach these hooks in the controlling process.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict

os.environ.setdefault("TQDM_DISABLE", "1")

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_notebook_seconds: defaultdict[str, float] = defaultdict(float)


def _cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _workers(config) -> int:
    """How many pytest processes run tests at once (pytest-xdist workers, else 1)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return max(1, int(workerinput.get("workercount", 1)))
    numprocesses = getattr(config.option, "numprocesses", None)
    if numprocesses in (None, 0) or getattr(config.option, "dist", "no") == "no":
        return 1
    if numprocesses in ("auto", "logical"):
        return _cores()
    return max(1, int(numprocesses))


def pytest_configure(config) -> None:
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, _cores() // _workers(config)))
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, threads)
    if "torch" in sys.modules:  # already imported (a plugin, or this is a worker)
        sys.modules["torch"].set_num_threads(int(threads))


def pytest_report_header(config) -> str:
    return f"threads per worker and kernel: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if not _notebook_seconds:
        return
    terminalreporter.section("lecture notebook durations (setup + cells + teardown)")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    total = sum(_notebook_seconds.values())
    terminalreporter.write_line(f"{total:7.1f} s  all {len(_notebook_seconds)} notebooks")
