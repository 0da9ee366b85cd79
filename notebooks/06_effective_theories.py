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
# # Lecture 6: effective theories
#
# The third claim of Merger et al., *Learning Interacting Theories from Data*, Phys. Rev. X
# **13**, 041033 (2023), [arXiv:2304.00599](https://arxiv.org/abs/2304.00599), concerns data
# *outside* the class the method is built for. For unimodal data the learned action
# reproduces the true one (lectures 3-5). For bimodal data it cannot: the network starts from
# a Gaussian latent and bends it with low-order polynomials. The paper reports that it then
# finds an **effective theory**, one that matches the statistics of the data up to the third
# cumulant, but not the fourth.
#
# This lecture puts that claim to the test on the double-well ring of lecture 1 and reports
# what it measures, numbers included, also where they differ from the paper.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

import inntheory as it

plt.rcParams["figure.dpi"] = 80
# No INNTHEORY_SMOKE shortcut here: a shorter training does not establish this lecture's
# findings (the check cell fails with 150 steps).
STEPS = 400  # optimiser steps per network
_ = torch.manual_seed(0)

# %% [markdown]
# ## Bimodal data
#
# The `double_well` preset has $m^2 < 0$, $g_4 > 0$ and $g_3 = 0$. A uniform configuration
# $x_i = \bar x$ costs $N(\frac{m^2}{2}\bar x^2 + \frac{g_4}{4!}\bar x^4)$, minimal at
# $\bar x = \pm\sqrt{-6m^2/g_4}$; the hopping $\kappa$ locks neighbours together, so whole
# configurations sit in one well or the other and the sampler's global flip moves them
# between the two. The symmetry $x \to -x$ makes every odd cumulant of the data vanish (up to
# noise), and the two separated peaks make $\kappa_4$ large and negative.

# %%
# NBVAL_IGNORE_OUTPUT
theory = it.preset("double_well")
data = it.load_dataset("double_well", 10240, seed=0, progress=False).x
print(theory)
print(f"{data.shape[0]} samples; fraction of configurations with positive magnetisation: "
      f"{float((data.mean(1) > 0).double().mean()):.3f}")

# %% [markdown]
# ## Two networks
#
# We train two depth-2 networks on these samples: one with the paper's quadratic activation
# $y + ay^2$, one with the monotone cubic of lecture 2. Nothing else differs.

# %%
# NBVAL_IGNORE_OUTPUT
device = it.resolve_device("auto")
models, histories, model_samples = {}, {}, {}
for activation in ("quadratic", "cubic"):
    torch.manual_seed(1)
    model = it.PolynomialINN(theory.dim, depth=2, activation=activation).double()
    histories[activation] = it.train(model, data, steps=STEPS, lr=1e-2, seed=0,
                                      device=device, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the lost mass is reported below
        model_samples[activation] = model.sample(data.shape[0], seed=2)
    models[activation] = model
print(f"{'network':10s} {'val NLL':>8s} {'rejected steps':>15s} {'data outside':>13s} "
      f"{'latent lost':>12s}")
for activation, model in models.items():
    h = histories[activation]
    print(f"{activation:10s} {h.best_val_nll:8.3f} {h.rejected_steps:15d} "
          f"{h.outside_fraction:13.2%} {model.last_sample_invalid:12.2%}")

# %% [markdown]
# The quadratic network struggles: a monotone map with $\phi'(y) = 1 + 2ay$ linear in $y$
# cannot open a gap between two peaks, and its fold keeps cutting the data (steps that push
# data outside the domain are undone: see *rejected steps*). A large part of the latent
# Gaussian has no pre-image ("latent lost"): the model's density covers only part of the
# space. The cubic network has neither problem.
#
# ## What the networks learn instead
#
# The site marginal and the magnetisation $M = \frac1N\sum_i x_i$ of the samples drawn from
# each network, against the data:

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
bins = np.linspace(-6, 6, 90)
axes[0].hist(data.ravel().numpy(), bins=bins, density=True, color="k", alpha=0.3, label="data")
axes[1].hist(data.mean(1).numpy(), bins=bins, density=True, color="k", alpha=0.3,
             label="data")
for activation, x in model_samples.items():
    axes[0].hist(x.ravel().numpy(), bins=bins, density=True, histtype="step", lw=1.3,
                 label=f"{activation} INN")
    axes[1].hist(x.mean(1).numpy(), bins=bins, density=True, histtype="step", lw=1.3,
                 label=f"{activation} INN")
axes[0].set(xlabel="$x_i$", ylabel="density", title="Site marginal")
axes[1].set(xlabel="magnetisation $M$", ylabel="density", title="Magnetisation")
axes[0].legend(fontsize="small")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Cumulants, order by order
#
# `it.compare_cumulants` compares every distinct entry of $\kappa_1 \dots \kappa_4$ of the
# data with those of the model samples, in units of the combined standard error
# $\sigma = \sqrt{\sigma_\text{data}^2 + \sigma_\text{model}^2}$ (delete-one-block jackknife).
# For each order: the largest $|z|$, the root mean square $z$ (about 1 when the two agree)
# and a Šidák-corrected p-value for the largest deviation (the chance of one this large if
# the two sets had the same cumulants).

# %%
# NBVAL_IGNORE_OUTPUT
comparisons = {a: it.compare_cumulants(data, x, order=4) for a, x in model_samples.items()}
for activation, comparison in comparisons.items():
    print(f"{activation} INN")
    print(comparison.table())
    print()

# %%
comparisons["cubic"].plot()
plt.show()

# %% [markdown]
# The site-diagonal entries make the story concrete: the data's odd cumulants are zero up to
# noise, its $\kappa_4$ is large and negative (two peaks). The numbers below are site
# averages of the diagonal entries with their jackknife errors.

# %%
# NBVAL_IGNORE_OUTPUT
def diagonal(comparison, which, k):
    values = getattr(comparison, which)[k]
    idx = torch.arange(values.shape[0])
    return float(values[(idx,) * k].mean())


c = comparisons["cubic"]
print(f"{'k':>2s} {'data':>18s} {'cubic INN':>18s}")
for k in range(1, 5):
    print(f"{k:2d} {diagonal(c, 'data', k):+10.3f} ± {diagonal(c, 'data_error', k):5.3f} "
          f"{diagonal(c, 'samples', k):+10.3f} ± {diagonal(c, 'samples_error', k):5.3f}")

# %% [markdown]
# ## The effective action
#
# The action the cubic network implies, expanded at $x_0 = 0$ with the exact layer-to-layer
# rules (`it.extract_action`, lecture 3), is compared with the true one. The true quadratic
# part $A^{(2)} = (m^2 + 2\kappa)\mathbb 1 - \kappa(T + T^\top)$ has negative eigenvalues, the
# most negative ($m^2$) along the uniform mode $(1, \dots, 1)/\sqrt N$: the top of the barrier
# between the wells. The question is whether the network's effective action has this barrier
# too, or whether its Gaussian latent makes it unimodal.

# %%
# NBVAL_IGNORE_OUTPUT
true_action = theory.coefficients(order=4)
learned = it.extract_action(models["cubic"], order=4)
uniform = torch.full((theory.dim,), theory.dim**-0.5, dtype=torch.float64)
print(f"{'':24s} {'true':>8s} {'learned':>8s}")
for label, action in (("true", true_action), ("learned", learned)):
    values, vectors = torch.linalg.eigh(action.coefficient(2))
    if label == "true":
        true_values, true_overlap = values, float(vectors[:, 0] @ uniform)
    else:
        learned_values, learned_overlap = values, float(vectors[:, 0] @ uniform)
print(f"{'lowest A2 eigenvalue':24s} {float(true_values[0]):8.3f} {float(learned_values[0]):8.3f}")
print(f"{'|overlap with uniform|':24s} {abs(true_overlap):8.3f} {abs(learned_overlap):8.3f}")
print(f"{'highest A2 eigenvalue':24s} {float(true_values[-1]):8.3f} "
      f"{float(learned_values[-1]):8.3f}")
for k in (2, 3, 4):
    print(f"{'mean A' + str(k) + ' diagonal':24s} {float(true_action.diagonal(k).mean()):8.3f} "
          f"{float(learned.diagonal(k).mean()):8.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.plot(true_values.numpy(), "ko-", label="true $A^{(2)}$")
ax.plot(learned_values.numpy(), "s-", label="cubic INN, extracted")
ax.axhline(0, color="gray", lw=0.8)
ax.set(xlabel="eigenvalue index", ylabel="eigenvalue",
       title="Quadratic part of the action at $x_0 = 0$")
ax.legend(fontsize="small")
plt.tight_layout()
plt.show()

# %% [markdown]
# The learned quadratic part is positive semi-definite: its lowest eigenvalue, along the same
# uniform mode as the true barrier, sits near zero instead of at $m^2 < 0$. The effective
# action has no barrier at the centre, only a *flat* direction along the magnetisation,
# confined by the quartic term: a broad, single-peaked theory in place of two wells, which is
# what the magnetisation histogram above shows. Its other eigenvalues are larger than the true
# ones, and its cubic diagonal is not zero: the network broke the $x \to -x$ symmetry, and that
# is why $\kappa_3$ does not match.
#
# ## Check
#
# What this run establishes, asserted (thresholds from the Šidák p-values of
# `compare_cumulants`, which account for the number of entries compared):
#
# 1. the cubic network's samples match the data's mean and covariance: $\kappa_1$ and
#    $\kappa_2$ consistent ($p > 0.001$);
# 2. its third cumulant does **not** match ($p < 0.001$): this run disagrees with the paper's
#    "up to the third cumulant" (see the discussion below);
# 3. its fourth cumulant is far off: $p < 10^{-6}$, with the rms deviation over the 330
#    entries above 10 standard errors;
# 4. the effective action has no barrier: the lowest eigenvalue of the learned $A^{(2)}$,
#    whose eigenvector is the uniform mode (overlap above 0.9), lies above $m^2/2$;
# 5. the quadratic network (the paper's activation) loses more than a tenth of the latent mass
#    to its fold on these data.

# %%
# NBVAL_IGNORE_OUTPUT
cubic = comparisons["cubic"]
for k in range(1, 5):
    row = cubic.row(k)
    print(f"cubic kappa_{k}: max z {row.max_z:6.2f}, rms z {row.rms_z:6.2f}, p {row.p_value:.2g}")
assert cubic.row(1).p_value > 1e-3 and cubic.row(2).p_value > 1e-3
assert cubic.row(3).p_value < 1e-3
assert cubic.row(4).p_value < 1e-6 and cubic.row(4).rms_z > 10
assert abs(learned_overlap) > 0.9 and float(learned_values[0]) > theory.m2 / 2
assert models["quadratic"].last_sample_invalid > 0.1

# %% [markdown]
# ## What we learned
#
# * On bimodal data a polynomial INN learns an *effective* theory. With the monotone cubic
#   (depth 2, a few hundred steps) the mean and the covariance are reproduced; the fourth
#   cumulant is not, by tens of standard errors, and it even has the wrong sign: the model is
#   single-peaked where the data have two peaks.
# * The paper reports agreement up to the **third** cumulant. This run does not reproduce
#   that: the data's $\kappa_3$ vanishes by symmetry, but the network's samples are skewed
#   (see the diagonal table). Matching $\kappa_3$ here means learning an exactly symmetric
#   model, which nothing in the architecture or the loss enforces; a longer or deeper
#   training may get closer, and the result should be read as "measured for this setting",
#   not as a general statement.
# * The extracted action explains the failure: instead of a barrier (a negative eigenvalue
#   $m^2$ of $A^{(2)}$ along the uniform mode) the network's action is flat along that mode
#   and held by its quartic part. The Gaussian latent is bent into a broad single peak, not
#   split into two.
# * The paper's quadratic activation does worse still: its fold cuts the data and a large
#   part of the latent mass has no pre-image.
