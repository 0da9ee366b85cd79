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
# # Lecture 3: the diagrammatic rules
#
# Lecture 2 trained a polynomial invertible network (INN) $f$ that maps data $x$ to a
# Gaussian latent $z = f(x) \sim \mathcal{N}(0, \mathbb{1})$. Its action
# $S(x) = -\ln p(x)$ is known in closed form, but as a *function*, not as a list of
# interactions. The central observation of Merger et al., *Learning Interacting Theories from
# Data*, Phys. Rev. X **13**, 041033 (2023), [arXiv:2304.00599](https://arxiv.org/abs/2304.00599),
# is that for a polynomial activation the Taylor coefficients
#
# $$
# S(x_0 + \delta) = \sum_k \frac{1}{k!}\,
#   A^{(k)}_{i_1 \dots i_k}\, \delta_{i_1} \cdots \delta_{i_k}
# $$
#
# can be computed **exactly**, layer by layer, with a small set of diagrammatic rules. This
# lecture
#
# 1. derives the rules and draws them (`inntheory.extraction.diagrams`),
# 2. checks the extracted coefficients against brute-force nested automatic differentiation,
# 3. follows the action through the network (`it.action_history`): a purely pairwise
#    (Gaussian) action at the latent grows three- and four-point interactions layer by layer.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from ipywidgets import Dropdown
from torch.func import hessian, jacfwd

import inntheory as it
from inntheory.extraction.diagrams import catalogue, draw_diagrams
from inntheory.figures import WIDTH, heatmap, use_style
from inntheory.lab.widgets import int_slider, slider_panel

use_style()
torch.manual_seed(0)
N = 8  # a ring of 8 sites, as in the other lectures
ORDER = 4

# %% [markdown]
# ## From one layer to the next
#
# Write $S_l$ for the action of the representation after layer $l$: the latent action is
# $S_L(z) = \tfrac12 |z|^2 + \tfrac N2 \ln 2\pi$, and the change of variables
# $u_l = f_l(u_{l-1})$ gives
#
# $$
# S_{l-1}(u) = S_l\big(f_l(u)\big) - \ln\big|\det J_{f_l}(u)\big| ,
# $$
#
# down to the data action $S_0$. A layer is an affine map $y = W_l u + b_l$ followed by an
# elementwise polynomial $\phi$: the quadratic $\phi(y) = y + a y^2$ of the paper or the
# monotone cubic $\phi(y) = y + a y^2 + c y^3$ of this package.
#
# Expand every representation around the image of the expansion point,
# $u^*_0 = x_0,\ u^*_l = f_l(u^*_{l-1})$. In shifted coordinates $e_l = u_l - u^*_l$ an
# activation is its Taylor series at $y^*$,
#
# $$
# e'_i = \phi'(y^*_i)\, e_i + \frac{1}{2!}\,\phi''(y^*_i)\, e_i^2
#   + \frac{1}{3!}\,\phi'''(y^*_i)\, e_i^3 ,
# $$
#
# **without a constant term**. Inserting it into a $k$-vertex $A^{(k)}$ of $S_l$ produces
# terms of order $n \ge k$ only, so the order-$n$ coefficient of $S_{l-1}$ needs only
# orders $\le n$ of $S_l$: truncating at $K$ after every layer is exact for every order
# $\le K$. Each term is a *diagram*: a vertex $A^{(k)}$ whose legs are
#
# * **straight** ($j_1$ of them): the leg carries a factor $\phi'$, one output index;
# * **forked in two** ($j_2$): a factor $\phi''$, two equal output indices;
# * **forked in three** ($j_3$, cubic activation only): a factor $\phi'''$, three equal indices.
#
# With $j_1 + j_2 + j_3 = k$ legs and $j_1 + 2 j_2 + 3 j_3 = n$ output indices, the diagram feeds
# $B^{(n)}$ (the coefficient of the layer below) with the weight
#
# $$
# w = \frac{n!}{k!}\,\frac{k!}{j_1!\, j_2!\, j_3!}\,
#   \Big(\frac{1}{2!}\Big)^{j_2}\Big(\frac{1}{3!}\Big)^{j_3} ,
# $$
#
# times the dressed vertex symmetrised over the $n$ output indices. The log-determinant
# $-\sum_i \ln \phi'(y^*_i + e_i)$ adds a **diagonal** $n$-vertex for every $n$: $n!$ times the
# $n$-th Taylor coefficient of $-\ln\phi'$. The affine map then contracts every leg with $W_l$.
#
# A forked leg is the whole story of the method: a *pairwise* vertex $A^{(2)}$ with one leg
# forked becomes a *three-point* interaction, with two legs forked a *four-point* one.
# `catalogue` lists the diagrams (the extraction loops over the very same list):

# %% tags=["nbval-check-output"]
for name in ("quadratic", "cubic"):
    diagrams = catalogue(name, ORDER)
    print(f"{name} activation: {len(diagrams)} diagrams up to order {ORDER}")
for diagram in catalogue("quadratic", ORDER):
    print("  ", diagram)

# %% [markdown]
# Drawn: a vertex is a dot, a straight leg a plain line, a fork a small square labelled with
# the derivative it carries, and the log-determinant vertex an open diamond whose legs all sit
# on one unit. The quadratic activation has no $\phi'''$, so its order-4 row has one diagram
# fewer than the cubic's.

# %%
MAGNIFY = 1.8  # the catalogue is drawn small (8-10 pt labels): shown 1.8 times larger
figure = draw_diagrams("quadratic", ORDER)
figure.set_dpi(MAGNIFY * figure.dpi)
figure.suptitle("Pull-back through the quadratic activation, orders 1-4", y=1.02)
plt.show()
figure = draw_diagrams("cubic", ORDER, n=4)
figure.set_dpi(MAGNIFY * figure.dpi)
figure.suptitle("Cubic activation: the diagrams feeding $B^{(4)}$", y=1.05)
plt.show()

# %% [markdown]
# ## Exact, not approximate: a check against automatic differentiation
#
# The same coefficients can be obtained by brute force: $A^{(k)}$ is the $k$-th derivative of
# the model's action at $x_0$, which `torch.func` computes by nesting forward-mode
# derivatives around a Hessian. We take a random float64 network far from the identity (so
# that every diagram contributes), depth 3 on $N = 8$ sites, and compare order by order.
# The extraction (`it.extract_action`) is pure tensor algebra on the weights; the autodiff
# route differentiates the whole network $K$ times.


# %%
def random_network(depth, activation, seed=0, strength=0.4):
    """A float64 INN far from the identity: random W, b and activation parameters."""
    torch.manual_seed(seed)
    model = it.PolynomialINN(N, depth, activation=activation).double()
    with torch.no_grad():
        model.weight.copy_(torch.eye(N) + strength * torch.randn(depth, N, N) / N**0.5)
        model.bias.normal_(0.0, 0.2)
        for act in model.activations:
            for parameter in act.parameters():
                parameter.normal_(0.0, strength)
            if activation == "cubic":
                act.r.sub_(3.0)  # c = softplus(r) ~ 0.05 rather than ~ ln 2
        while not bool(model.in_domain(torch.zeros(N, dtype=torch.float64))):
            model.bias.mul_(0.5)  # x0 = 0 must lie in the quadratic's domain
    return model


def autodiff_coefficients(model, point):
    """A^(2..4) of model.action at `point` by nested torch.func derivatives."""
    second = hessian(model.action)
    derivatives = {2: second, 3: jacfwd(second), 4: jacfwd(jacfwd(second))}
    return {k: derivative(point).detach() for k, derivative in derivatives.items()}


def relative_difference(extracted, autodiff):
    """max |A_extracted - A_autodiff| / max |A_autodiff|, per order."""
    return {k: float((extracted.coefficient(k) - a).abs().max() / a.abs().max())
            for k, a in autodiff.items()}


model = random_network(depth=3, activation="cubic")
x0 = torch.zeros(N, dtype=torch.float64)
start = time.perf_counter()
extracted = it.extract_action(model, order=ORDER, point=x0)
extract_seconds = time.perf_counter() - start
start = time.perf_counter()
autodiff = autodiff_coefficients(model, x0)
autodiff_seconds = time.perf_counter() - start

# %% tags=["nbval-ignore-output"]
for k, diff in relative_difference(extracted, autodiff).items():
    print(f"A^({k}): max relative difference extracted vs autodiff = {diff:.1e}")
print(f"extraction {1e3 * extract_seconds:.0f} ms, "
      f"nested autodiff {1e3 * autodiff_seconds:.0f} ms")
# the text below: agreement to round-off (float64: 1e-12 leaves a factor 1000 of margin), and
# the extraction much cheaper (measured: about 100 times; asserted: 10 times)
assert max(relative_difference(extracted, autodiff).values()) < 1e-12
assert 10 * extract_seconds < autodiff_seconds

# %% [markdown]
# The two agree to round-off (about $10^{-15}$): the diagrams are not an approximation of the
# action, they *are* its Taylor coefficients. The extraction is also much cheaper here; for
# large $N$ both routes cost about $L N^{K+1}$ operations, and the benchmark in
# `benchmarks/README.md` measures the ratio honestly.
#
# ## How interactions build up, layer by layer
#
# `it.action_history` returns the expansion of every representation: the latent (only
# $A^{(1)} = z^*$ and $A^{(2)} = \mathbb{1}$, a free theory), then the action after each layer
# pulled back, down to the data. We follow the Frobenius norms $\|A^{(k)}\|$, and two
# pictures per stage: the pairwise coupling $A^{(2)}_{ij}$ and the four-point coupling
# $A^{(4)}_{iijj}$ between pairs of units.

# %%
history = it.action_history(model, order=ORDER, point=x0)
labels = [entry.metadata["label"] for entry in history]
norms = np.array([[float(entry.coefficient(k).norm()) for k in range(2, ORDER + 1)]
                  for entry in history])
print(f"{'stage':>14s}" + "".join(f"{'||A' + str(k) + '||':>10s}" for k in range(2, ORDER + 1)))
for label, row in zip(labels, norms, strict=True):
    print(f"{label:>14s}" + "".join(f"{value:10.3g}" for value in row))
# the text below: no interactions at the latent (exactly), then ||A3|| and ||A4|| grow with
# every layer pulled back
assert np.all(norms[0, 1:] == 0) and np.all(np.diff(norms[:, 1:], axis=0) > 0), norms

# %%
fig, axes = plt.subplots(2, len(history), figsize=(WIDTH, 5.8), layout="constrained")
pairs = [entry.coefficient(4).diagonal(dim1=0, dim2=1).diagonal(dim1=0, dim2=1)
         for entry in history]  # A4_{iijj}
for col, entry in enumerate(history):
    heatmap(axes[0, col], entry.coefficient(2).numpy(), label="$A^{(2)}_{ij}$")
    axes[0, col].set_title(labels[col])
    heatmap(axes[1, col], pairs[col].numpy(), label="$A^{(4)}_{iijj}$")
    for ax in axes[:, col]:
        ax.set(xlabel="unit $j$", ylabel="unit $i$")
fig.suptitle("Pairwise (top) and four-point (bottom) couplings of each representation, "
             "latent left, data right")
plt.show()

# %% [markdown]
# At the latent the four-point coupling is exactly zero. One layer down it is concentrated
# on the diagonal: the forks of the pairwise vertex and the log-determinant vertices sit on
# single units of the layer, and its affine map (here not far from the identity) spreads them
# only a little. Every further layer forks the pairwise couplings it receives, which are no
# longer diagonal, and mixes units again: the four-point couplings spread over pairs of units
# and grow. The same happens to $A^{(3)}$.
#
# ## Try it: depth and activation
#
# The slider builds a random network of the chosen depth (same construction, seed 0) and
# plots the norms of $A^{(2)}, A^{(3)}, A^{(4)}$ of every representation. With the quadratic
# activation there is no $\phi'''$: the four-point couplings come from forking pairwise
# vertices twice and from the log-determinant alone.


# %%
def render(depth, activation):
    net = random_network(depth, activation)
    entries = it.action_history(net, order=ORDER)
    values = np.array([[float(e.coefficient(k).norm()) for k in range(2, ORDER + 1)]
                       for e in entries])
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for k in range(2, ORDER + 1):  # exact zeros (A3, A4 at the latent) have no place on a log axis
        ax.semilogy(range(len(entries)), np.where(values[:, k - 2] > 0, values[:, k - 2], np.nan),
                    "o-", label=f"$\\|A^{{({k})}}\\|$")
    ax.text(0.02, 0.45, "latent: $A^{(3)} = A^{(4)} = 0$", transform=ax.transAxes)
    ax.set_xticks(range(len(entries)), [e.metadata["label"] for e in entries], rotation=20)
    ax.set(xlabel="representation (latent -> data)",
           ylabel="Frobenius norm", title=f"Interactions layer by layer: {activation}, "
           f"depth {depth}")
    ax.legend()
    plt.tight_layout()
    return (f"depth {depth}, {activation}: at the data ||A2|| = {values[-1, 0]:.3g}, "
            f"||A3|| = {values[-1, 1]:.3g}, ||A4|| = {values[-1, 2]:.3g}")


controls = {
    "depth": int_slider("depth", 3, 1, 6),
    "activation": Dropdown(options=["cubic", "quadratic"], value="cubic",
                           description="activation"),
}

# %%
slider_panel(render, controls)

# %% [markdown]
# ## Check
#
# 1. For random float64 networks of both activations (depth 3), every extracted $A^{(k)}$,
#    $k = 2, 3, 4$, equals the nested-autodiff derivative to $10^{-10}$ relative.
# 2. The history starts at a free theory ($A^{(2)} = \mathbb{1}$, $A^{(3)} = A^{(4)} = 0$ at the
#    latent) and ends at the extracted data action.

# %% tags=["nbval-ignore-output"]
for activation in ("cubic", "quadratic"):
    net = random_network(3, activation, seed=1)
    diffs = relative_difference(it.extract_action(net, order=ORDER, point=x0),
                                autodiff_coefficients(net, x0))
    print(activation, {k: f"{d:.1e}" for k, d in diffs.items()})
    assert max(diffs.values()) < 1e-10

latent, data_action = history[0], history[-1]
assert torch.equal(latent.coefficient(2), torch.eye(N, dtype=torch.float64))
assert float(latent.coefficient(3).abs().max()) == 0.0
assert float(latent.coefficient(4).abs().max()) == 0.0
for k in range(1, ORDER + 1):
    assert torch.allclose(data_action.coefficient(k), extracted.coefficient(k), rtol=0,
                          atol=1e-12)
print("history: free latent, data entry == extract_action")

# %% [markdown]
# ## What we learned
#
# * Through a polynomial activation, the action of one layer pulls back to the next by a
#   finite list of diagrams: straight legs ($\phi'$), forked legs ($\phi''$, $\phi'''$) and
#   diagonal log-determinant vertices, with exact combinatorial weights.
# * Because a shifted layer has no constant term, truncating at order $K$ is exact: the
#   extracted coefficients equal nested autodiff to round-off, at a fraction of the cost.
# * Interactions are *built* by the network: the latent is free (pairwise only); each
#   nonlinearity forks pairwise vertices into three- and four-point ones, and the affine maps
#   spread them over the units. Lecture 4 applies this to trained networks and compares with
#   the true action.
