"""The README's figure: what each activation recovers, from the science benchmark's cache.

Reads the sweeps that `benchmarks/science.py` computed (it trains nothing) and draws the
relative error of A2, the A3 diagonal and the A4 diagonal against the sample count, for the
paper's quadratic activation and the monotone cubic (each at its best depth at n = 1e5),
beside dense score matching on the same data. Run from the repository root after science.py:

    python benchmarks/readme_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from science import ACTIVATIONS, CACHE, COLUMNS, COUNTS, DEPTHS, SEEDS  # noqa: E402

from inntheory import sweep  # noqa: E402

FIGURE = Path(__file__).resolve().parent.parent / "docs" / "figures" / "activations.png"


def main() -> None:
    results = {
        activation: sweep(
            "unimodal", DEPTHS, COUNTS, SEEDS, activation=activation, baseline="dense",
            cache=CACHE / "sweeps", data_options={"cache_dir": str(CACHE / "data")},
            train=False, progress=False,
        )
        for activation in ACTIVATIONS
    }
    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(11, 3.4), sharey=True, dpi=90)
    for ax, (order, kind, label) in zip(axes, COLUMNS, strict=True):
        for activation, colour in zip(ACTIVATIONS, ("tab:blue", "tab:red"), strict=True):
            mean, std = results[activation].errors(order, kind)
            best = int(np.nanargmin(mean[:, -1]))
            ax.errorbar(COUNTS, 100 * mean[best], 100 * std[best], marker="o", capsize=3,
                        color=colour, label=f"INN {activation} (depth {DEPTHS[best]})")
        mean, std = results[ACTIVATIONS[0]].baseline_errors(order, kind)
        ax.errorbar(COUNTS, 100 * mean, 100 * std, marker="s", ls="--", capsize=3,
                    color="0.4", label="score matching (dense)")
        ax.set(xscale="log", yscale="log", xlabel="samples n", title=f"{label} error")
    axes[0].set_ylabel("relative error [%] (mean ± std, 3 seeds)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle("Unimodal phi^3 + phi^4 ring (N = 8): which activation learns which coupling")
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE)
    print(f"wrote {FIGURE}")


if __name__ == "__main__":
    main()
