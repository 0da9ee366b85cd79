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
# # Lecture 1: interacting theories and how to sample them
#
# This sequence of lectures follows C. Merger, A. René, K. Fischer, P. Bouss, S. Nestler,
# D. Dahmen, C. Honerkamp and M. Helias, *Learning Interacting Theories from Data*,
# Phys. Rev. X **13**, 041033 (2023), [arXiv:2304.00599](https://arxiv.org/abs/2304.00599).
# The paper turns the usual direction of statistical physics around: instead of computing
# the statistics of a *given* theory, it learns the theory, the action $S(x) = -\ln p(x)$,
# from samples.
#
# To check such a method we need data whose true action we know. This lecture builds that
# ground truth:
#
# 1. the lattice $\phi^3 + \phi^4$ action and its three presets (free, interacting, double
#    well);
# 2. exact answers for a one-dimensional ring from the transfer matrix;
# 3. Hamiltonian Monte Carlo (HMC), and the diagnostics that tell whether its samples can be
#    trusted (acceptance, autocorrelation time, effective sample size, $\hat R$);
# 4. the cumulants of the data, the statistics the network will later have to reproduce.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display
from torch.func import hessian, jacfwd

import inntheory as it
from inntheory.figures import site_ticks, use_style
from inntheory.lab.widgets import float_slider, log_slider, slider_panel
from inntheory.tables import Table

use_style()
torch.manual_seed(0)
N_SAMPLES = 8192  # samples per theory
CHAINS = 512  # parallel HMC chains: more chains, fewer sequential steps

# %% [markdown]
# ## The lattice action
#
# A configuration is a field $x \in \mathbb{R}^N$ on the $N$ sites of a periodic lattice (here
# a ring of $N = 8$ sites, $d = 1$). The action is a sum of local terms,
#
# $$
# S(x) = \sum_i \Big[ \frac{m^2}{2} x_i^2
#        + \frac{\kappa}{2} \sum_{\mu=1}^{d} (x_{i+\mu} - x_i)^2
#        + \frac{g_3}{3!} x_i^3 + \frac{g_4}{4!} x_i^4 \Big],
# $$
#
# and the data distribution is $p(x) = e^{-S(x)} / Z$. Written as a Taylor series around
# $x_0 = 0$, $S(x) = \sum_k \frac{1}{k!} A^{(k)}_{i_1 \dots i_k} x_{i_1} \cdots x_{i_k}$, its
# coefficients are
#
# * $A^{(2)} = (m^2 + 2d\kappa)\,\mathbb{1} - \kappa \sum_\mu (T_\mu + T_\mu^\top)$, with
#   $T_\mu$ the shift by one site: a pairwise (Gaussian) part that couples neighbours;
# * $A^{(3)}_{iii} = g_3$ and $A^{(4)}_{iiii} = g_4$: local three- and four-point
#   *interactions*, zero off the diagonal.
#
# These tensors are what the network is supposed to recover in the later lectures. The
# package ships three presets:

# %% tags=["nbval-check-output"]
for name, couplings in it.PRESETS.items():
    print(f"{name:12s}", ", ".join(f"{k} = {v:+.2f}" for k, v in couplings.items()))
theories = {name: it.preset(name) for name in it.PRESETS}
theory = theories["unimodal"]
print("lattice", theory.shape, "N =", theory.dim)

# %% [markdown]
# * **gaussian**: $g_3 = g_4 = 0$, a free theory, $p(x) = \mathcal{N}(0, (A^{(2)})^{-1})$;
# * **unimodal**: $g_3, g_4 > 0$ with a positive mass: one peak, skewed by the cubic term;
# * **double_well**: $m^2 < 0$ and $g_4 > 0$, $g_3 = 0$: a bimodal distribution (lecture 6).
#   The hopping term vanishes on uniform configurations $x_i = \bar x$, whose action
#   $N(\frac{m^2}{2}\bar x^2 + \frac{g_4}{4!}\bar x^4)$ has its minima at
#   $\bar x = \pm\sqrt{-6 m^2 / g_4}$; the coupling $\kappa$ keeps neighbours together, so
#   whole configurations sit in one well or the other.
#
# The single-site potential $V(x) = \frac{m^2}{2}x^2 + \frac{g_3}{3!}x^3 + \frac{g_4}{4!}x^4$
# shows the difference at a glance. Neighbours add $\kappa (x_{i+1} - x_i)^2 / 2$, which pulls
# the sites of a configuration together.

# %%
grid = np.linspace(-4.0, 4.0, 401)
fig, ax = plt.subplots(figsize=(6, 3.6))
for name, th in theories.items():
    potential = th.m2 / 2 * grid**2 + th.g3 / 6 * grid**3 + th.g4 / 24 * grid**4
    ax.plot(grid, potential, label=name)
well = theories["double_well"]
bottom = well.m2 / 2 * (-6 * well.m2 / well.g4) + well.g4 / 24 * (-6 * well.m2 / well.g4) ** 2
ax.axhline(0, color="gray", lw=0.5)
ax.set(xlabel="field value $x$", ylabel="$V(x)$", ylim=(1.2 * bottom, 4.0),
       title="Single-site potential of the presets")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Exact answers for the ring: the transfer matrix
#
# On a one-dimensional ring the partition function factorises into a product of
# *transfer matrices*. Discretise the field on a fine grid $\{x_a\}$ with spacing $\Delta$ and
# set
#
# $$
# T_{ab} = \Delta\, e^{-V(x_a)/2 \,-\, \kappa (x_a - x_b)^2/2 \,-\, V(x_b)/2},
# \qquad Z = \operatorname{tr} T^N .
# $$
#
# With the eigen-decomposition $T = U \operatorname{diag}(w) U^\top$ every single-site and
# two-point quantity is a short sum: the site marginal is
# $p(x_a) = (T^N)_{aa} / (\Delta Z)$ and the connected correlator at distance $r$ is
# $\langle x_0 x_r \rangle - \langle x \rangle^2$ with
# $\langle x_0 x_r\rangle = \operatorname{tr}(X T^r X T^{N-r}) / Z$ with
# $X = \operatorname{diag}(x_a)$.
# These numbers are exact up to the grid error (tiny here), so they test the sampler.


# %%
def transfer_matrix(theory, lo=-7.0, hi=7.0, points=400):
    """Exact site marginal and correlator of a 1-D ring, from the transfer matrix."""
    x = np.linspace(lo, hi, points)
    delta = x[1] - x[0]
    v = theory.m2 / 2 * x**2 + theory.g3 / 6 * x**3 + theory.g4 / 24 * x**4
    log_t = -v[:, None] / 2 - v[None, :] / 2 - theory.kappa / 2 * (x[:, None] - x[None, :]) ** 2
    w, u = np.linalg.eigh(np.exp(log_t - log_t.max()) * delta)
    w = np.clip(w / w.max(), 0.0, None)  # T is positive definite; clip round-off
    n = theory.dim
    z = np.sum(w**n)
    density = (u**2 @ w**n) / (z * delta)
    mean = np.sum(x * density) * delta
    m = u.T @ (x[:, None] * u)
    r = np.arange(n)
    two_point = np.einsum("kl,rk,rl->r", m**2, w[None, :] ** r[:, None],
                          w[None, :] ** (n - r[:, None])) / z
    return {"x": x, "density": density, "mean": mean, "correlator": two_point - mean**2}


exact = {name: transfer_matrix(th) for name, th in theories.items()}
for name, e in exact.items():
    print(f"{name:12s} <x> = {e['mean']:+.4f}   <x^2>_c = {e['correlator'][0]:.4f}   "
          f"C(1) = {e['correlator'][1]:.4f}")
# The flip-symmetric presets have <x> = 0 exactly; the cubic term pushes the unimodal mean
# below zero (see the cumulants below).
assert abs(exact["gaussian"]["mean"]) < 1e-10 and abs(exact["double_well"]["mean"]) < 1e-10
assert exact["unimodal"]["mean"] < -0.05

# %% [markdown]
# For the Gaussian preset the correlator must equal $[(A^{(2)})^{-1}]_{0r}$; a one-line check
# of the transfer matrix itself:

# %% tags=["nbval-check-output"]
covariance = torch.linalg.inv(theories["gaussian"].quadratic()).numpy()
difference = np.abs(exact["gaussian"]["correlator"] - covariance[0]).max()
print("transfer-matrix correlator equals inv(A2) to 1e-10:", difference < 1e-10)
assert difference < 1e-10

# %% [markdown]
# ## Hamiltonian Monte Carlo
#
# For higher-dimensional lattices no transfer matrix helps, and we need samples anyway:
# they are the *data* of the following lectures. `it.sample` draws from $e^{-S(x)}$ with HMC
# [Duane et al. 1987]: give the field a fictitious momentum $p \sim \mathcal{N}(0, \mathbb{1})$,
# integrate Hamilton's equations for $H(x, p) = S(x) + |p|^2/2$ with the leapfrog scheme
# (10 steps of size $\epsilon$), and accept the end point with probability
# $\min(1, e^{-\Delta H})$. The Metropolis step makes the chain exact for any $\epsilon$; the
# step size only sets the efficiency and is adapted during the burn-in towards a mean
# acceptance of 0.8. For symmetric theories ($g_3 = 0$) a global flip $x \to -x$ is proposed
# after each trajectory, so a chain can hop between the wells of the double well.
#
# Many chains run in parallel as one batch. What the sampler reports:
#
# * **acceptance**: the mean Metropolis acceptance probability;
# * **$\tau$**: the integrated autocorrelation time of the slowest observable (site means of
#   $x$ and $x^2$, and $S/N$), in units of the *kept* (thinned) draws; the burn-in measures it
#   first and sets the thinning to $\lceil\tau\rceil$, so $\tau \approx 1$ after thinning;
# * **ESS** $= n / \tau$: how many independent samples the $n$ draws are worth;
# * **$\hat R$** (split-$\hat R$): compares the spread between chains with the spread within
#   them; values near 1 (below about 1.01-1.05) mean the chains agree.

# %% tags=["nbval-ignore-output"]
samples = {}
for seed, (name, th) in enumerate(theories.items()):
    samples[name] = it.sample(th, N_SAMPLES, seed=seed, n_chains=CHAINS, burn_in=200,
                              device="cpu", progress=False)
print(f"{'theory':12s} {'accept':>7s} {'step':>6s} {'thin':>5s} {'tau':>6s} {'ESS':>7s} "
      f"{'R-hat':>7s}")
for name, result in samples.items():
    d = result.diagnostics
    print(f"{name:12s} {d['acceptance']:7.3f} {d['step_size']:6.3f} {d['thinning']:5d} "
          f"{d['tau']:6.2f} {d['ess']:7.0f} {d['rhat']:7.3f}")
    # what the text below promises: acceptance near its target 0.8, tau of order one after
    # thinning, chains that agree (R-hat below 1.05)
    assert abs(d["acceptance"] - 0.8) < 0.05 and d["tau"] < 2.0 and d["rhat"] < 1.05, d

# %% [markdown]
# ### What goes wrong without the global flip
#
# The global flip is not a detail. Run the double well with plain HMC (no flip, no thinning)
# and follow the magnetisation $M = \frac1N \sum_i x_i$ of two chains: each chain stays in
# the well it started in, because crossing the barrier means moving all $N$ sites together
# through the region where $S$ is large. The autocorrelation function $\rho(t)$ of $M$ does
# not decay within the run (the reported $\tau$ is then only a lower bound, capped by the run
# length): the chains never equilibrate between the wells, and averages over them are wrong
# whenever the chains do not happen to start half in each well. With the flip, $\rho_M(t)$
# drops to zero after one trajectory; the sampler's $\tau$ (the slowest of its observables,
# here one that the flip leaves unchanged, such as the site mean of $x^2$) is a few
# trajectories.

# %%
double_well = theories["double_well"]
runs = {flip: it.sample(double_well, 64 * 200, seed=7, n_chains=64, burn_in=100, thinning=1,
                        flip=flip, device="cpu", progress=False) for flip in (False, True)}


def magnetisation_series(result):
    """(draws, chains) site-averaged field; rows of `x` are ordered draw by draw."""
    chains = result.diagnostics["n_chains"]
    return result.x.mean(dim=1).reshape(-1, chains).numpy()


def autocorrelation(series, lags):
    """rho(t) of a (T, C) series, averaged over chains, around the pooled mean."""
    d = series - series.mean()
    var = np.mean(d * d)
    return np.array([np.mean(d[: len(d) - t] * d[t:]) / var for t in lags])


lags = np.arange(60)
fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
for flip, result in runs.items():
    series = magnetisation_series(result)
    label = f"flip={flip}; sampler's tau = {result.diagnostics['tau']:.1f}"
    if not flip:  # two chains that started in different wells
        up, down = np.flatnonzero(series[0] > 0)[0], np.flatnonzero(series[0] < 0)[0]
        axes[0].plot(series[:, [up, down]], lw=0.8)
    axes[1].plot(lags, autocorrelation(series, lags), label=label)
axes[0].set(xlabel="HMC trajectory", ylabel="magnetisation $M$",
            title="Double well, plain HMC: 2 chains")
axes[1].axhline(0, color="k", lw=0.5)
axes[1].set(xlabel="lag $t$ (trajectories)", ylabel=r"$\rho_M(t)$",
            title="Autocorrelation of $M$")
axes[1].legend()
plt.tight_layout()
plt.show()
# the claims above: without the flip rho_M(t) has not decayed by the end of the plot (lag 59),
# with it rho_M drops below 0.1 after one trajectory
rho = {flip: autocorrelation(magnetisation_series(result), lags) for flip, result in runs.items()}
assert rho[False][-1] > 0.5 and np.all(np.abs(rho[True][1:]) < 0.1), rho

# %% [markdown]
# ## Samples against exact answers
#
# The histogram of all sites of all samples estimates the site marginal (by translation
# invariance every site has the same one), and the sample correlator $C(r)$ estimates the
# exact one. The black lines are the transfer-matrix results.

# %%
fig, axes = plt.subplots(2, 3, figsize=(9.5, 5.2))
r = np.arange(theory.dim)
for col, (name, result) in enumerate(samples.items()):
    x = result.x.numpy()
    e = exact[name]
    axes[0, col].hist(x.ravel(), bins=80, density=True, alpha=0.6, label="HMC samples")
    axes[0, col].plot(e["x"], e["density"], "k", lw=1.2, label="exact (transfer matrix)")
    axes[0, col].set(xlim=(-4.5, 4.5), xlabel="$x_i$", ylabel="density", title=name)
    d = x - x.mean()
    sample_c = np.array([np.mean(d * np.roll(d, -k, axis=1)) for k in r])
    axes[1, col].plot(r, sample_c, "o", label="HMC samples")
    axes[1, col].plot(r, e["correlator"], "k-", lw=1, label="exact")
    axes[1, col].set(xlabel="distance $r$", ylabel=r"$C(r) = \langle x_0 x_r\rangle_c$")
    site_ticks(axes[1, col], "x")
axes[0, 0].legend(fontsize="small", loc="upper left")
axes[1, 0].legend(fontsize="small")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The data's cumulants
#
# The statistics a learned model must reproduce are the cumulants
# $\kappa_1 = \langle x \rangle$, $\kappa_2 = \langle \delta x\, \delta x \rangle$,
# $\kappa_3 = \langle \delta x\, \delta x\, \delta x \rangle$ and
# $\kappa_4 = \langle \delta x^4 \rangle - (\text{three pairings of } \kappa_2)$ with
# $\delta x = x - \langle x \rangle$. A Gaussian has $\kappa_3 = \kappa_4 = 0$; the
# interactions show up in them. `it.cumulants` returns the full tensors $(N,)^k$; here are
# their site-diagonal entries, averaged over the sites, with a standard error from 16 blocks.

# %% tags=["nbval-ignore-output"]
def diagonal_cumulants(x):
    kappa = it.cumulants(x, order=4)
    idx = torch.arange(x.shape[1])
    return np.array([float(kappa[k][(idx,) * k].mean()) for k in range(1, 5)])


z, rows = {}, []
for name, result in samples.items():
    blocks = np.array([diagonal_cumulants(b) for b in torch.tensor_split(result.x, 16)])
    value = diagonal_cumulants(result.x)
    error = blocks.std(axis=0, ddof=1) / np.sqrt(len(blocks))
    rows.append([name, *(f"{v:+.3f} ± {s:.3f}" for v, s in zip(value, error, strict=True))])
    z[name] = value / error  # each cumulant in units of its standard error
display(Table(["theory", *(f"κ{k} (i…i)" for k in range(1, 5))], rows,
              "Site-diagonal cumulants, mean over sites ± block standard error"))
# the text below, in standard errors: Gaussian kappa_3, kappa_4 zero within 4; unimodal
# kappa_3, kappa_4 negative by more than 4; double well kappa_3 zero within 4, kappa_4
# negative by more than 20
assert np.all(np.abs(z["gaussian"][2:]) < 4) and np.all(z["unimodal"][2:] < -4), z
assert abs(z["double_well"][2]) < 4 and z["double_well"][3] < -20, z

# %% [markdown]
# The Gaussian preset has $\kappa_3 \approx \kappa_4 \approx 0$ within errors; the unimodal
# theory is skewed ($\kappa_3 < 0$, the cubic term with $g_3 > 0$ penalises large positive
# values) and slightly flatter than a Gaussian ($\kappa_4 < 0$); the double well has no skew
# but a large negative $\kappa_4$: the signature of two separated peaks.
#
# ## Try it: couplings and sample count
#
# Move the sliders to change the couplings of the ring ($\kappa = 0.5$) and the number of
# samples. A new position runs a short HMC run (128 chains, well under a second) and redraws
# the site marginal against the exact transfer-matrix density; a position seen before comes
# back from the panel's cache at once. With $m^2 < 0$ and $g_3 \neq 0$ there is no flip
# symmetry to exploit; watch $\hat R$ when the wells become deep.

# %%
def render(m2, g3, g4, n_samples):
    th = it.LatticeTheory((8,), m2=m2, kappa=0.5, g3=g3, g4=g4)
    with warnings.catch_warnings():
        # a short pilot warns about long autocorrelations (deep wells, no flip symmetry);
        # the summary reports tau and R-hat instead
        warnings.simplefilter("ignore", RuntimeWarning)
        result = it.sample(th, n_samples, seed=0, n_chains=128, burn_in=200, device="cpu",
                           progress=False)
    e = transfer_matrix(th)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.hist(result.x.numpy().ravel(), bins=60, density=True, alpha=0.6,
            label=f"HMC, {n_samples} samples")
    ax.plot(e["x"], e["density"], "k", lw=1.2, label="exact (transfer matrix)")
    ax.set(xlim=(-5, 5), xlabel="$x_i$", ylabel="density",
           title=f"Site marginal: $m^2$ = {m2:g}, $g_3$ = {g3:g}, $g_4$ = {g4:g}")
    ax.legend(fontsize="small")
    plt.tight_layout()
    d = result.diagnostics
    x = result.x.numpy()
    return (f"acceptance {d['acceptance']:.2f}, thinning {d['thinning']}, "
            f"tau {d['tau']:.2f}, R-hat {d['rhat']:.3f}; "
            f"sample &lt;x&gt; = {x.mean():+.3f} vs exact {e['mean']:+.3f}; "
            f"sample &lt;x&sup2;&gt;<sub>c</sub> = {x.var():.3f} vs exact "
            f"{e['correlator'][0]:.3f}")


controls = {
    "m2": float_slider("m2", 1.0, -1.5, 2.0, 0.25),
    "g3": float_slider("g3", 0.5, 0.0, 2.0, 0.25),
    "g4": float_slider("g4", 1.0, 0.25, 4.0, 0.25),
    "n_samples": log_slider("samples", 2048, [512, 1024, 2048, 4096, 8192]),
}

# %%
slider_panel(render, controls)

# %% [markdown]
# ## Check
#
# The scientific claims of this lecture, asserted so that the notebook test fails when they
# break:
#
# 1. the preset's exact coefficients equal the derivatives of its action at $0$ by nested
#    automatic differentiation (to round-off);
# 2. the Gaussian sampler's covariance equals $(A^{(2)})^{-1}$ entry by entry within 4
#    standard errors. For Gaussian data the sample covariance has variance
#    $(C_{ii}C_{jj} + C_{ij}^2)/n_\text{eff}$, with $n_\text{eff}$ the sampler's smallest ESS;
# 3. for the interacting presets the sampled $\langle x\rangle$ and $\langle x^2\rangle$
#    agree with the transfer matrix within 4 standard errors (block errors over 16 blocks).

# %% tags=["nbval-ignore-output"]
for name, th in theories.items():
    coefficients = th.coefficients(order=4)
    zero = torch.zeros(th.dim, dtype=torch.float64)
    autodiff = {2: hessian(th.action)(zero), 3: jacfwd(hessian(th.action))(zero),
                4: jacfwd(jacfwd(hessian(th.action)))(zero)}
    error = max(float((coefficients.coefficient(k) - autodiff[k]).abs().max()) for k in autodiff)
    print(f"{name:12s} max |A_k - autodiff|, k = 2..4: {error:.1e}")
    assert error < 1e-10

gauss = samples["gaussian"]
exact_cov = torch.linalg.inv(theories["gaussian"].quadratic())
sample_cov = torch.cov(gauss.x.T, correction=0)
n_eff = gauss.diagnostics["ess"]
std_err = ((exact_cov.diag()[:, None] * exact_cov.diag()[None, :] + exact_cov**2) / n_eff).sqrt()
z = ((sample_cov - exact_cov) / std_err).abs()
print(f"gaussian: max |C_sample - inv(A2)| / SE over {theory.dim ** 2} entries = "
      f"{float(z.max()):.2f} (n_eff = {n_eff:.0f})")
assert float(z.max()) < 4.0

for name in ("unimodal", "double_well"):
    x = samples[name].x.numpy()
    per_config = np.stack([x.mean(axis=1), (x**2).mean(axis=1)], axis=1)
    blocks = np.array([b.mean(axis=0) for b in np.array_split(per_config, 16)])
    error = blocks.std(axis=0, ddof=1) / np.sqrt(len(blocks))
    e = exact[name]
    truth = np.array([e["mean"], e["correlator"][0] + e["mean"] ** 2])
    z = np.abs(per_config.mean(axis=0) - truth) / error
    print(f"{name}: <x>, <x^2> off the transfer matrix by {z[0]:.2f}, {z[1]:.2f} SE")
    assert np.all(z < 4.0)

# %% [markdown]
# ## What we learned
#
# * The lattice $\phi^3 + \phi^4$ action is a polynomial whose Taylor coefficients are known
#   exactly: a neighbour-coupling $A^{(2)}$ and local $A^{(3)}$, $A^{(4)}$. Those are the
#   targets for the learned actions of the next lectures.
# * On a ring the transfer matrix gives exact marginals and correlators; HMC reproduces them
#   within its statistical errors.
# * HMC's diagnostics are part of the result: acceptance near the target, $\tau$ of order one
#   after thinning, $\hat R \approx 1$. For the double well the global flip is what makes the
#   chains mix.
# * Interactions show up in the cumulants: skew ($\kappa_3$) for the cubic term, a negative
#   $\kappa_4$ for the double well. Lecture 2 trains a network on these samples.
