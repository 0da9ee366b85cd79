"""Repository-wide pytest set-up: silent tqdm, and the run time of each lecture notebook.

Importing this module sets ``TQDM_DISABLE=1`` (unless already set) so that progress bars stay
silent in the tests and in the nbval notebook kernels, which inherit the environment of the
pytest worker that starts them.

nbval reports every cell as its own test; the lectures promise a per-notebook budget (well
under a minute each, under five minutes for the sequence on two cores), so the terminal
summary adds one line per notebook and the total. Works with pytest-xdist: reports of the
workers reach these hooks in the controlling process.
"""

from __future__ import annotations

import os
from collections import defaultdict

os.environ.setdefault("TQDM_DISABLE", "1")

_notebook_seconds: defaultdict[str, float] = defaultdict(float)


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
