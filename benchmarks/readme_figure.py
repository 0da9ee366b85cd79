"""The README's figure: what each model recovers, from the science benchmark's cache.

Reads the sweep points that `benchmarks/science.py` computed (it trains nothing) and draws
the relative error of A2, the A3 and A4 diagonals and the full A3 and A4 of the unimodal
theory on the 3x3 torus against the sample count: the lattice-equivariant cubic INN with
polish at its best depth at n = 1e5 (as science.py picks it: the smallest worst ratio to
dense score matching; mean ± std over the seeds run), score matching on the same data in
the dense, translation (every orbit: what the network knows) and tied (form known) bases,
and at n = 1e5 (seed 0, depth 1) the dense cubic and the paper's
dense quadratic INN, both polished. Run from the repository root after science.py:

    python benchmarks/readme_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from science import (  # noqa: E402
    BIG,
    COLUMNS,
    COUNTS,
    MAIN,
    best_depth,
    collect,
    error_of,
    mean_error,
    stats,
)

FIGURE = Path(__file__).resolve().parent.parent / "docs" / "figures" / "activations.png"
SINGLE = (("dense cubic, polish", "tab:green", "^"), ("dense quadratic, polish", "tab:red", "v"))


def main() -> None:
    points, baselines = collect()
    best = best_depth(points, baselines)
    if best is None:
        raise SystemExit("no lattice cubic point at n = 1e5 is cached: run science.py first")
    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(15, 4.0), sharey=True, dpi=90)
    for ax, (order, kind, label) in zip(axes, COLUMNS, strict=True):
        series = [(f"INN lattice cubic, polish (depth {best})", "tab:blue", "o", "-",
                   [points.get((MAIN, best, n)) for n in COUNTS])]
        series += [(f"score matching ({basis})", colour, "s", "--",
                    [baselines.get((basis.split(",")[0], n)) for n in COUNTS])
                   for basis, colour in (("dense", "0.4"), ("translation", "tab:orange"),
                                         ("tied, form known", "tab:purple"))]
        for name, colour, marker, style, rows in series:
            values = np.array([stats(r, error_of(order, kind)) if r
                               else (np.nan, np.nan) for r in rows])
            ax.errorbar(COUNTS, 100 * values[:, 0], 100 * values[:, 1], marker=marker,
                        ls=style, capsize=3, color=colour, label=name)
        for model, colour, marker in SINGLE:
            rows = [r for r in points.get((model, 1, BIG), []) if r["seed"] == 0]
            if rows:
                ax.plot([BIG], [100 * mean_error(rows, order, kind)], marker=marker, ls="",
                        color=colour, markersize=8, label=f"INN {model} (depth 1, seed 0)")
        ax.set(xscale="log", yscale="log", xlabel="samples n", title=f"{label} error")
    axes[0].set_ylabel("relative error [%] (mean ± std over seeds)")
    handles, labels = axes[-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle("Unimodal phi^3 + phi^4 on a 3x3 torus (N = 9): which model learns which "
                 "coupling")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE)
    print(f"wrote {FIGURE}")


if __name__ == "__main__":
    main()
