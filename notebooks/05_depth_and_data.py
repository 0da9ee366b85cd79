# ---
# jupyter:
#   jupytext:
#     formats: notebooks//0/ipynb,notebooks//0/py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lecture 5: depth and data
#
# The fourth claim of Merger et al., *Learning Interacting Theories from Data*,
# Phys. Rev. X **13**, 041033 (2023), [arXiv:2304.00599](https://arxiv.org/abs/2304.00599),
# is that *depth and data quantity jointly* improve the agreement between the learned and the
# true action. A claim about trends needs a grid: for every depth $L$ and sample count $n$,
# several seeds (each its own data set, initialisation and minibatch order), so that a trend
# can be told from the seed-to-seed scatter; and it needs baselines, so that "good" means
# something.
#
# The grid of this lecture is the one of the kit's science benchmark
# (`benchmarks/science.py`):
#
# * **Theory**: the `unimodal` couplings ($m^2 = 1$, $\kappa = 0.5$, $g_3 = 0.5$, $g_4 = 1$)
#   on a $3 \times 3$ periodic torus, $N = 9$ sites.
# * **Network**: the cubic `PolynomialINN` made *lattice-equivariant*
#   (`lattice=(3, 3)`: every linear map a periodic convolution, every bias and activation
#   coefficient shared by all sites), trained with the library defaults: Adam with early
#   stopping, then the L-BFGS **polish** to the gradient tolerance. `train` keeps whichever of
#   Adam's best state and the polished state has the lower validation NLL.
# * **Grid**: $L \in \{1, 2, 3, 4\}$, $n \in \{10^3, 10^4, 10^5\}$, seeds 0-2.
# * **Two direct baselines** on the same $n$ samples: *dense* score matching (all 714 monomials
#   of degree $\le 4$ in 9 variables fitted freely) and *tied* score matching (coefficients tied
#   over lattice translations: one per power $\sum_i x_i^k$, $k = 1..4$, and one per
#   nearest-neighbour pair, 8 in all). The tied baseline has exactly the form of the true
#   action, so it is the fair rival of an equivariant network.
#
# `it.sweep` stores every point as a small JSON file named by a hash of all its settings. The
# grid took hours of CPU time; its files are committed in `cache/sweeps`, so this notebook
# only *reads* them and runs in seconds.

# %%
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, display
from matplotlib.ticker import FuncFormatter

import inntheory as it
from inntheory.widgets import int_slider, log_slider, recompute_button, slider_panel

plt.rcParams["figure.dpi"] = 80
CACHE = "cache/sweeps"  # relative to this notebook
THEORY = it.preset("unimodal", shape=(3, 3))
DEPTHS = [1, 2, 3, 4]
COUNTS = [1_000, 10_000, 100_000]
SEEDS = [0, 1, 2]
# the network of every grid point: lattice-equivariant cubic INN, default training (polish)
NETWORK = {"activation": "cubic", "model_options": {"lattice": [3, 3]}, "cache": CACHE}
BASELINES = ("dense", "tied")
# (order, kind, label): the five errors of the science benchmark
ERRORS = [(2, "frobenius", "A2"), (3, "diagonal", "A3 diag"), (4, "diagonal", "A4 diag"),
          (3, "frobenius", "full A3"), (4, "frobenius", "full A4")]
# what the benchmark has not computed: network points (depth, n, seed), baselines (n, seed)
NOT_COMPUTED = ({(depth, n, seed) for depth in DEPTHS for n in COUNTS for seed in (1, 2)} | {
    (4, 100_000, 0)}) - {(4, 10_000, 1), (4, 10_000, 2)}
BASELINES_NOT_COMPUTED = {(n, seed) for n in COUNTS for seed in (1, 2)}

# %% [markdown]
# ## Reading the sweep
#
# With `train=False`, `it.sweep` reads what is cached and trains nothing: points that are not
# cached come back with NaN errors and are listed in `result.missing`. We read the grid twice,
# once with each baseline (the network points are the same files), and insist that exactly
# the points the benchmark has not computed (`NOT_COMPUTED`, `BASELINES_NOT_COMPUTED`) are
# missing: a change of the library's defaults changes the cache keys, and then this cell says
# so instead of silently drawing an empty grid. Means and standard deviations below are over
# the seeds present.

# %%
# NBVAL_CHECK_OUTPUT
def read(baseline, seeds=SEEDS):
    """The cached grid with one score-matching baseline; trains nothing."""
    return it.sweep(THEORY, DEPTHS, COUNTS, seeds, baseline=baseline, train=False,
                    progress=False, **NETWORK)


results = {basis: read(basis) for basis in BASELINES}
result = results["dense"]
missing = {(m["depth"], m["n"], m["seed"]) for m in result.missing if m["kind"] == "inn"}
assert missing == NOT_COMPUTED, f"cached points changed: missing {sorted(missing)}"
for basis, res in results.items():
    absent = {(m["n"], m["seed"]) for m in res.missing if m["kind"] != "inn"}
    assert absent == BASELINES_NOT_COMPUTED, f"{basis} baselines missing: {sorted(absent)}"
print(f"read {len(result.records)} network points and "
      f"{sum(len(r.baselines) for r in results.values())} baselines from {CACHE}; "
      f"not computed: {len(missing)} network points, "
      f"{len(BASELINES_NOT_COMPUTED)} per baseline; trained now: 0")
for n in COUNTS:
    print(f"n = {n:>6}: seeds per depth",
          [sum(r["depth"] == d and r["n"] == n for r in result.records) for d in DEPTHS])


# %% [markdown]
# ## The grid in one table
#
# Per depth and sample count: the relative errors of the learned couplings, in percent, mean
# ± standard deviation over the seeds computed (one number where only one seed is): the
# pairwise $A^{(2)}$ (whole matrix), the local parts of $A^{(3)}$ and $A^{(4)}$ (entries
# $i_1 = \dots = i_k$, "diag"), and the whole tensors $A^{(3)}$, $A^{(4)}$ ("full": these also
# count every coupling the network puts where the true action has none). Then the validation
# NLL, which state `train` kept (the polished one, or Adam's early-stopped one when that had
# the lower validation NLL), and the training time. The last rows are the two baselines.

# %%
def cell(mean, std, count):
    """'mean ± std' in percent; the mean alone for one seed, '-' for none."""
    if count == 0:
        return "-"
    return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if count > 1 else "")


def points(depth, n):
    return [r for r in result.records if r["depth"] == depth and r["n"] == n]


def html_table():
    """The grid and its baselines as one HTML table that fits a 1400 px window."""
    errors = {label: result.errors(k, kind) for k, kind, label in ERRORS}
    base = {(basis, label): results[basis].baseline_errors(k, kind)
            for basis in BASELINES for k, kind, label in ERRORS}
    nll = result.metric("val_nll")
    seconds = result.metric("train_seconds")
    head = ["model", "L", "n", "seeds", *(f"{label} %" for _, _, label in ERRORS),
            "val NLL", "kept", "train s"]
    rows = []
    for i, depth in enumerate(DEPTHS):
        for j, n in enumerate(COUNTS):
            done = points(depth, n)
            polished = sum(r["best_step"] > r["steps_run"] for r in done)
            rows.append(["INN", depth, f"{n:.0e}", f"{len(done)}/{len(SEEDS)}",
                         *(cell(errors[lab][0][i, j], errors[lab][1][i, j], len(done))
                           for _, _, lab in ERRORS),
                         f"{nll[0][i, j]:.4f}" if done else "-",
                         f"polish {polished}, Adam {len(done) - polished}" if done else "-",
                         f"{seconds[0][i, j]:.0f}" if done else "-"])
    for basis in BASELINES:
        for j, n in enumerate(COUNTS):
            count = sum(b["n"] == n for b in results[basis].baselines)
            rows.append([f"SM {basis}", "-", f"{n:.0e}", f"{count}/{len(SEEDS)}",
                         *(cell(base[basis, lab][0][j], base[basis, lab][1][j], count)
                           for _, _, lab in ERRORS), "-", "-", "-"])
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return HTML("<table style='font-size: 12px; white-space: nowrap'><caption>lattice cubic "
                "INN (polish) and score matching (SM) on the 3x3 unimodal torus: relative "
                "errors in %, mean ± std over seeds</caption>"
                f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>")


display(html_table())

# %% [markdown]
# All five errors against $n$, one line per depth (mean over the seeds computed, bars: their
# standard deviation), with both baselines:

# %%
COLOURS = {depth: f"C{depth - 1}" for depth in DEPTHS}
STYLE = {"dense": dict(color="k", ls="--", marker="s"),
         "tied": dict(color="0.45", ls=":", marker="D")}
plain = FuncFormatter(lambda value, _: f"{value:g}")  # 0.3, not 3 x 10^-1
# minor ticks: label 2, 3 and 5 times a power of ten only, so the labels do not crowd
some = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "235" else "")


def log_axes(ax):
    ax.set(xscale="log", yscale="log")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(some)


counts = np.array(COUNTS, dtype=float)
fig, axes = plt.subplots(1, len(ERRORS), figsize=(17, 3.4), layout="constrained")
for ax, (k, kind, label) in zip(axes, ERRORS, strict=True):
    mean, std = result.errors(k, kind)
    for i, depth in enumerate(DEPTHS):
        ax.errorbar(counts, 100 * mean[i], yerr=100 * std[i], marker="o", capsize=3,
                    color=COLOURS[depth], label=f"INN, L = {depth}")
    for basis in BASELINES:
        base, _ = results[basis].baseline_errors(k, kind)
        ax.plot(counts, 100 * base, label=f"SM {basis}", **STYLE[basis])
    log_axes(ax)
    ax.set(title=label, xlabel="samples $n$")
axes[0].set_ylabel("relative error (%)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize="small")
plt.show()

# %% [markdown]
# What the grid says:
#
# * TODO: written from the final grid.
#
# ## Explore the grid, seed by seed
#
# Pick a depth, a sample count and an error; the figure shows every seed as its own dot
# (the scatter behind the table's ± numbers) against $n$ at that depth (left) and against
# depth at that $n$ (right), beside both baselines, and redraws from the cache. The button
# trains **one more seed** of the selected point and adds it to the cache (only when pressed:
# at $n = 10^3$ under a minute on two cores, at $n = 10^5$ several minutes to an hour, see the
# table's training times).

# %%
LABELS = [label for _, _, label in ERRORS]
BY_LABEL = {label: (k, kind) for k, kind, label in ERRORS}


def seed_errors(k, kind, depth=None, n=None):
    """[(depth, n, seed, error)] of the network points matching depth and n."""
    return [(r["depth"], r["n"], r["seed"], r["errors"][str(k)][kind]) for r in result.records
            if (depth is None or r["depth"] == depth) and (n is None or r["n"] == n)]


def render(depth, n, error):
    k, kind = BY_LABEL[error]
    mean, _ = result.errors(k, kind)
    i, j = DEPTHS.index(depth), COUNTS.index(n)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    along_n, along_depth = seed_errors(k, kind, depth=depth), seed_errors(k, kind, n=n)
    left.scatter([p[1] for p in along_n], [100 * p[3] for p in along_n], s=25, alpha=0.7,
                 color=COLOURS[depth], label="INN, one seed")
    right.scatter([p[0] for p in along_depth], [100 * p[3] for p in along_depth], s=25,
                  alpha=0.7, color=[COLOURS[p[0]] for p in along_depth])
    left.plot(counts, 100 * mean[i], "-", color=COLOURS[depth], label="INN, mean of seeds")
    right.plot(DEPTHS, 100 * mean[:, j], "-", color="0.6")
    summary = []
    for basis in BASELINES:
        base, _ = results[basis].baseline_errors(k, kind)
        left.plot(counts, 100 * base, label=f"SM {basis}", **STYLE[basis])
        right.axhline(100 * base[j], color=STYLE[basis]["color"], ls=STYLE[basis]["ls"])
        summary.append(f"{basis} SM {100 * base[j]:.1f} %")
    left.plot(n, 100 * mean[i, j], "o", ms=13, mfc="none", mec="red", label="selected")
    right.plot(depth, 100 * mean[i, j], "o", ms=13, mfc="none", mec="red")
    for ax in (left, right):
        log_axes(ax)
        ax.set_ylabel(f"{error} error (%)")
    right.set(xscale="linear", xticks=DEPTHS, xlabel="depth $L$", title=f"against depth, n = {n}")
    left.set(xlabel="samples $n$", title=f"against data, depth L = {depth}")
    left.xaxis.set_major_formatter(plain)
    fig.legend(loc="outside right center", fontsize="small")
    here = sorted(seed_errors(k, kind, depth=depth, n=n), key=lambda p: p[2])
    if not here:
        return (f"depth {depth}, n = {n}: not computed (press the button to train a seed); "
                + ", ".join(summary))
    seeds = ", ".join(f"seed {p[2]}: {100 * p[3]:.1f} %" for p in here)
    return (f"depth {depth}, n = {n}, {error} error: mean {100 * mean[i, j]:.1f} % ({seeds}); "
            + ", ".join(summary))


controls = {
    "depth": int_slider("depth", 2, min(DEPTHS), max(DEPTHS)),
    "n": log_slider("samples n", 100_000, COUNTS),
    "error": widgets.Dropdown(options=LABELS, value="A4 diag", description="error",
                              layout=widgets.Layout(width="max-content")),
}

# %%
panel = slider_panel(render, controls)
display(panel)


# %%
def train_new_seed(values):
    """Train the selected (depth, n) with the first seed not cached there, fit both baselines
    to that seed's data, and read the grid again with that seed included."""
    global result
    depth, n = values["depth"], values["n"]
    seed = 0
    while it.sweep(THEORY, [depth], [n], [seed], train=False, progress=False,
                   **NETWORK).complete:
        seed += 1
    for basis in BASELINES:  # the network is trained once; the second call reads it
        it.sweep(THEORY, [depth], [n], [seed], baseline=basis, executor="serial",
                 progress=False, **NETWORK)
    seeds = sorted(set(result.seeds) | {seed})
    results.update({basis: read(basis, seeds) for basis in BASELINES})
    result = results["dense"]


display(recompute_button("train one more seed", train_new_seed, panel,
                         tooltip="train the selected (depth, n) with the next seed: under a "
                                 "minute at n = 1e3, minutes or more at n = 1e5"))

# %% [markdown]
# ## Check
#
# TODO

# %% [markdown]
# ## What we learned
#
# TODO
