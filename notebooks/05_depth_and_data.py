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
# true action. Lecture 4 trained single networks; a claim about trends needs a grid: for every
# depth $L$ and sample count $n$, several seeds (each a different data set, initialisation
# and minibatch order), so that a trend can be told from the seed-to-seed scatter.
#
# `it.sweep` runs such a grid: per point it takes the first $n$ samples of the seed's data
# set of the `unimodal` ring, trains a cubic `PolynomialINN` of depth $L$ with the library's
# default training (up to 1500 Adam steps, early stopping on a validation split), extracts
# the action and compares it with the true one; score matching on the same samples is the
# baseline. Every point is a small JSON file in a cache directory, named by a hash of all
# settings. The grid of this lecture, $L \in \{1, 2, 3, 4\}$, $n \in \{10^3, 10^4\}$, three
# seeds, took about ten minutes on two busy CPU cores; its files are committed in `cache/sweeps`,
# so this notebook only *reads* them and runs in seconds.

# %%
import re

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, display
from matplotlib.ticker import FuncFormatter

import inntheory as it
from inntheory.widgets import int_slider, log_slider, slider_panel

plt.rcParams["figure.dpi"] = 80
CACHE = "cache/sweeps"  # relative to this notebook
DEPTHS = [1, 2, 3, 4]
COUNTS = [1_000, 10_000]
SEEDS = [0, 1, 2]
OPTIONS = {"activation": "cubic", "order": 4, "baseline": "dense", "cache": CACHE}

# %% [markdown]
# ## Reading the sweep
#
# With `train=False`, `it.sweep` reads what is cached and trains nothing: points that are not
# cached come back with NaN errors and are listed in `result.missing`. We insist that none
# are missing (a change of the library's defaults changes the cache keys, and then this cell
# says so instead of silently training for a quarter of an hour).

# %%
# NBVAL_CHECK_OUTPUT
result = it.sweep("unimodal", DEPTHS, COUNTS, SEEDS, train=False, progress=False, **OPTIONS)
assert result.complete, f"not cached: {result.missing}"
print(f"read {len(result.records)} network points and {len(result.baselines)} baselines "
      f"from {CACHE}; missing: {len(result.missing)}, trained now: 0")


# %%
def html_table(text):
    """The fixed-width `SweepResult.table()` as an HTML table (title line as its caption),
    so that its eleven columns fit the page (1400 px window, file browser open), one line
    per cell."""
    title, *lines = text.splitlines()
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines]
    head = "".join(f"<th>{cell}</th>" for cell in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows[1:])
    return HTML(f"<table style='font-size: 12px; white-space: nowrap'><caption>{title}</caption>"
                f"<thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")


display(html_table(result.table()))

# %% [markdown]
# The table lists, per depth and sample count, the relative errors of the learned
# $A^{(2)}, A^{(3)}, A^{(4)}$ (whole tensor, "frob", and the local part $i_1 = \dots = i_k$,
# "diag"), mean ± standard deviation over the three seeds, the validation negative
# log-likelihood and the training time; the last rows are dense score matching on the same
# samples. `SweepResult.plot` draws one error as a heat map over the grid and against $n$
# for every depth, with the seed standard deviation as error bars:

# %%
figure = result.plot(order=4, kind="diagonal")
figure.suptitle("Quartic coupling: error of the local part of $A^{(4)}$", y=1.02)
plt.show()
figure = result.plot(order=2, kind="frobenius")
figure.suptitle("Pairwise coupling: error of the whole $A^{(2)}$", y=1.02)
plt.show()

# %% [markdown]
# What the grid says:
#
# * **Data** help at every depth and every order: ten times more samples cut the error of
#   $A^{(2)}$ by a factor of about 2 to 4 and that of the quartic diagonal by 2 to 6 (the
#   larger factors for the deeper networks).
# * **Depth** helps only once there are enough data. At $n = 10^3$ the deeper networks are
#   *worse* (more parameters fitted to the same few samples); at $n = 10^4$ the quartic
#   error falls gently with depth, by less than the seed scatter of the shallow networks.
#   "Jointly", in the paper's word: depth pays when the data can feed it.
# * The network is more accurate than dense score matching for $A^{(2)}$ and $A^{(4)}$ at
#   both sample counts, and comparable on the $A^{(3)}$ diagonal at $10^4$; the baseline fits
#   all 494 monomial coefficients freely and needs more samples.
#
# ## Explore the grid
#
# Move the sliders to pick a depth, a sample count and an order; the figure and the summary
# redraw from the cache at once. The button below trains **one more seed** of the selected
# point (only when pressed: about a minute on two cores) and adds it to the cache.

# %%
ORDER_KIND = {2: "frobenius", 3: "diagonal", 4: "diagonal"}


def render(depth, n, order):
    kind = ORDER_KIND[order]
    mean, std = result.errors(order, kind)
    base_mean, base_std = result.baseline_errors(order, kind)
    i, j = result.depths.index(depth), result.sample_counts.index(n)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    counts = np.array(result.sample_counts, dtype=float)
    left.errorbar(counts, mean[i], yerr=std[i], marker="o", capsize=3, label=f"INN, L = {depth}")
    left.errorbar(counts, base_mean, yerr=base_std, marker="s", ls="--", color="k", capsize=3,
                  label="score matching")
    left.plot(counts[j], mean[i, j], "o", ms=12, mfc="none", mec="red", label="selected")
    left.set(xscale="log", yscale="log", xlabel="training samples $n$",
             ylabel="relative error", title=f"$A^{{({order})}}$ ({kind}) against data")
    left.legend(fontsize="small")
    right.errorbar(result.depths, mean[:, j], yerr=std[:, j], marker="o", capsize=3,
                   label=f"INN, n = {n}")
    right.axhline(base_mean[j], color="k", ls="--", label="score matching")
    right.plot(depth, mean[i, j], "o", ms=12, mfc="none", mec="red", label="selected")
    right.set(xticks=result.depths, yscale="log", xlabel="depth $L$", ylabel="relative error",
              title=f"$A^{{({order})}}$ ({kind}) against depth")
    right.legend(fontsize="small")
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 0.3, not 3 x 10^-1
    # minor ticks: label 2, 3 and 5 times a power of ten only, so the labels do not crowd
    some = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "235" else "")
    for ax in (left, right):
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(some)
    left.xaxis.set_major_formatter(plain)
    plt.tight_layout()
    seeds = sum(r["depth"] == depth and r["n"] == n for r in result.records)
    return (f"depth {depth}, n = {n}: relative {kind} error of A{order} = "
            f"{mean[i, j]:.3f} ± {std[i, j]:.3f} over {seeds} seeds "
            f"(score matching {base_mean[j]:.3f} ± {base_std[j]:.3f})")


controls = {
    "depth": int_slider("depth", 2, min(DEPTHS), max(DEPTHS)),
    "n": log_slider("samples n", 10_000, COUNTS),
    "order": int_slider("order", 4, 2, 4),
}

# %%
panel = slider_panel(render, controls)
display(panel)

# %%
button = widgets.Button(description="train one more seed", button_style="warning",
                        tooltip="train the selected (depth, n) with a new seed (about a minute)",
                        layout=widgets.Layout(width="max-content"))
log = widgets.Output()


def train_new_seed(_):
    """Train the selected point with the first seed not yet cached, then redraw."""
    global result
    depth, n = controls["depth"].value, controls["n"].value
    seed = 0
    while it.sweep("unimodal", [depth], [n], [seed], train=False, progress=False,
                   **OPTIONS).complete:
        seed += 1
    with log:
        print(f"training depth {depth}, n = {n}, seed {seed} ...")
    it.sweep("unimodal", [depth], [n], [seed], executor="serial", progress=False, **OPTIONS)
    seeds = sorted(set(result.seeds) | {seed})
    result = it.sweep("unimodal", DEPTHS, COUNTS, seeds, train=False, progress=False, **OPTIONS)
    with log:
        print(f"done: seed {seed} cached; the summary now averages over the seeds present")
    panel.redraw(forget=True)


button.on_click(train_new_seed)
display(widgets.VBox([button, log]))

# %% [markdown]
# ## Check
#
# What the cached grid must show, with the seed scatter taken into account: the standard error
# of a mean over three seeds is $s / \sqrt{3}$, and a difference counts when it exceeds twice
# the combined standard error $\sqrt{s_1^2/3 + s_2^2/3}$.
#
# 1. **Error falls with data**: at every depth, the mean error of $A^{(2)}$ (Frobenius) and of
#    the $A^{(4)}$ diagonal is smaller at $n = 10^4$ than at $10^3$; for $A^{(2)}$ by more than
#    two combined standard errors.
# 2. **Depth needs data**: at $n = 10^3$ the deepest network's $A^{(2)}$ error is larger than
#    the shallowest's by more than two combined standard errors. (No claim that depth lowers
#    the error at $n = 10^4$: the measured decrease of the quartic error is within the seed
#    scatter.)

# %%
def significant(lower, lower_std, higher, higher_std):
    """higher - lower > 2 combined standard errors of the two seed means."""
    return higher - lower > 2 * np.sqrt((lower_std**2 + higher_std**2) / len(SEEDS))


a2, a2_std = result.errors(2, "frobenius")
a4, a4_std = result.errors(4, "diagonal")
for i, depth in enumerate(DEPTHS):
    print(f"L = {depth}: A2 frob {a2[i, 0]:.3f} -> {a2[i, 1]:.3f}, "
          f"A4 diag {a4[i, 0]:.3f} -> {a4[i, 1]:.3f} (n = 1e3 -> 1e4)")
    assert a4[i, 1] < a4[i, 0]
    assert significant(a2[i, 1], a2_std[i, 1], a2[i, 0], a2_std[i, 0])
print(f"n = 1e3: A2 frob L = 1 {a2[0, 0]:.3f} ± {a2_std[0, 0]:.3f}, "
      f"L = 4 {a2[-1, 0]:.3f} ± {a2_std[-1, 0]:.3f}")
assert significant(a2[0, 0], a2_std[0, 0], a2[-1, 0], a2_std[-1, 0])

# the numbers of "What the grid says": ten times more data cut the A2 error by a factor 2 to 4
# and the quartic diagonal's by 2 to 6, at every depth; the network beats dense score matching
# for A2 and the A4 diagonal at both sample counts
sm2, _ = result.baseline_errors(2, "frobenius")
sm4, _ = result.baseline_errors(4, "diagonal")
print("gain from 10x data, A2:", np.round(a2[:, 0] / a2[:, 1], 2),
      "A4 diag:", np.round(a4[:, 0] / a4[:, 1], 2))
assert np.all((a2[:, 0] / a2[:, 1] > 2) & (a2[:, 0] / a2[:, 1] < 4))
assert np.all((a4[:, 0] / a4[:, 1] > 2) & (a4[:, 0] / a4[:, 1] < 6))
assert np.all(a2 < sm2) and np.all(a4 < sm4)

# %% [markdown]
# ## What we learned
#
# * A sweep over depth, data and seeds turns "it works" into measured trends with error bars;
#   `it.sweep` caches every point, so a lecture (or a paper figure) redraws from the cache and
#   new points add to it.
# * More data lower the errors at every depth and every order.
# * Depth is not free: with $10^3$ samples deeper networks are worse; with $10^4$ they are as
#   good or slightly better for the quartic. Depth and data work jointly.
# * Lecture 6 leaves the unimodal world: for a double well the network learns an *effective*
#   theory.
