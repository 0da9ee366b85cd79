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
# # Lecture 7: your own data
#
# The earlier lectures learned lattice theories whose action we wrote down ourselves. The
# method of Merger et al., *Learning Interacting Theories from Data*, Phys. Rev. X **13**,
# 041033 (2023), [arXiv:2304.00599](https://arxiv.org/abs/2304.00599), needs nothing of the
# lattice: any array of samples $x \in \mathbb{R}^N$, one configuration per row, can be fitted,
# and the extracted action is a list of interaction tensors $A^{(k)}$ between the $N$
# variables. This lecture walks through the workflow for a file of your own:
#
# 1. write an example data file (here: samples of a small, *non-lattice* distribution);
# 2. load it with the same loader the `inntheory` command line uses;
# 3. fit an INN, extract its action, and inspect it next to score matching;
# 4. save the action to `.npz` and reload it;
# 5. the same in one line of shell.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

import inntheory as it
from inntheory.figures import use_style
from inntheory.lab.cli import load_data, recommended_samples

use_style()
N_SAMPLES = 6000
STEPS = 300
SEED = 0
torch.manual_seed(SEED)
workdir = Path(tempfile.mkdtemp(prefix="inntheory-lecture7-"))

# %% [markdown]
# ## An example data set
#
# Your data would come from an experiment or a simulation. To have something to check
# against, we make it from a known action of $N = 4$ variables that is *not* a lattice
# theory: arbitrary pairwise couplings, a local cubic term and an *all-to-all* quartic,
#
# $$
# S(x) = \tfrac12 x^\top A x + \frac{g_3}{3!} \sum_i x_i^3
#   + \frac{\lambda}{4!}\,\big(|x|^2\big)^2 ,
# $$
#
# whose quartic tensor $A^{(4)}_{ijkl} = \tfrac{\lambda}{3}(\delta_{ij}\delta_{kl} +
# \delta_{ik}\delta_{jl} + \delta_{il}\delta_{jk})$ couples every *pair* of variables
# ($A^{(4)}_{iijj} = \lambda/3$), not only each variable with itself. A `PolynomialAction` is a
# valid target for the sampler, so `it.sample` draws from it with HMC.

# %%
N, G3, LAMBDA = 4, 0.4, 0.6
a2 = torch.tensor([[1.0, 0.3, 0.0, -0.2],
                   [0.3, 1.2, 0.25, 0.0],
                   [0.0, 0.25, 0.9, 0.3],
                   [-0.2, 0.0, 0.3, 1.1]], dtype=torch.float64)  # positive definite
eye = torch.eye(N, dtype=torch.float64)
a3 = G3 * torch.einsum("ia,ja,ka->ijk", eye, eye, eye)
a4 = LAMBDA / 3 * (torch.einsum("ij,kl->ijkl", eye, eye) + torch.einsum("ik,jl->ijkl", eye, eye)
                   + torch.einsum("il,jk->ijkl", eye, eye))
truth = it.PolynomialAction({2: a2, 3: a3, 4: a4})
print("eigenvalues of A2:", np.round(torch.linalg.eigvalsh(a2).numpy(), 3))
assert float(torch.linalg.eigvalsh(a2).min()) > 0.5  # positive definite, with margin

result = it.sample(truth, N_SAMPLES, seed=SEED, device="cpu", progress=False)
np.save(workdir / "my_data.npy", result.x.numpy())
np.savetxt(workdir / "my_data.csv", result.x.numpy(), delimiter=",",
           header=",".join(f"x{i}" for i in range(N)), comments="")
print(f"wrote {N_SAMPLES} samples of N = {N} to my_data.npy and my_data.csv")

# %% [markdown]
# ## Loading: the command line's loader
#
# `inntheory.lab.cli.load_data` reads `.npy`, `.npz` (one named array) and `.csv` (an optional
# header line), and checks what it reads: a 2-D array of real numbers, one configuration per
# row, no NaN or inf (it names the bad rows). The same function serves `inntheory fit`, so a
# file that loads here fits there.

# %% tags=["nbval-check-output"]
x = load_data(workdir / "my_data.npy")
from_csv = load_data(workdir / "my_data.csv")
print("shape", x.shape, x.dtype, "| .csv equals .npy:", bool(np.allclose(x, from_csv)))
try:
    load_data(workdir / "my_data.npy.missing")
except Exception as error:  # the CLI prints this as "inntheory: error: ..."
    print(type(error).__name__ + ":", str(error).replace(str(workdir), "<workdir>"))

# %% [markdown]
# A look at the data: the marginals are skewed by the cubic term, and the pairwise scatter
# shows the couplings of $A^{(2)}$.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
for i in range(N):
    axes[0].hist(x[:, i], bins=60, density=True, histtype="step", label=f"$x_{i}$")
axes[0].set(xlabel="value", ylabel="density", title="Marginals of the example data")
axes[0].legend()
axes[1].scatter(x[:2000, 0], x[:2000, 1], s=3, alpha=0.4)
axes[1].set(xlabel="$x_0$", ylabel="$x_1$", title="Two variables, 2000 samples")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Fit, extract, inspect
#
# A depth-2 network with the cubic activation, float64, trained by maximum likelihood with
# the library's defaults: Adam, then, since `polish="auto"` finds this problem small enough,
# full-batch second-order steps (Fisher scoring) until the gradient is below `polish_tol`
# (lecture 4 shows why that matters; `polish=False` stops after Adam). Two options of
# `it.PolynomialINN` exploit symmetries your data may have: `lattice=shape` for samples on a
# periodic lattice (translation-equivariant layers, far fewer parameters) and `odd=True` for
# data symmetric under $x \to -x$ (an exactly even density). Neither applies here: these
# variables do not sit on a lattice, and the cubic term breaks $x \to -x$. The expansion
# point is $x_0 = 0$ here, so that the learned action can be compared with the true one
# written around $0$; for data without a natural origin, expand around the mean (the command
# line's default, `--point mean`). Score matching on the same samples is the reference.

# %% tags=["nbval-ignore-output"]
torch.manual_seed(SEED)
model = it.PolynomialINN(N, depth=2, activation="cubic").double()
history = it.train(model, x, steps=STEPS, seed=SEED, device="cpu", progress=False)
print(f"best validation NLL {history.best_val_nll:.4f} nats; polished: {history.polished}\n"
      f"{history.polish_iterations} iterations ({history.polish_method}), stop: "
      f"{history.polish_stop}; "
      f"max|grad| {history.grad_norm:.1e}; {history.seconds:.1f} s")

# %%
learned = it.extract_action(model, order=4, point=torch.zeros(N, dtype=torch.float64))
baseline = it.score_matching(x, order=4)
comparison = it.compare(truth, {"INN": learned, "score matching": baseline}, orders=(2, 3, 4))
display(comparison)  # a table in the notebook; print(comparison) gives it as text

# %%
figure = comparison.plot()
figure.suptitle(f"Your data: learned vs true action ({N_SAMPLES} samples, N = {N})")
plt.show()

# %% [markdown]
# The diagonal parts are learned by both. The off-diagonal quartic is the hard part here:
# the truth has pair couplings $A^{(4)}_{iijj} = \lambda/3$ for $i \ne j$ ("true offdiag").
# %%
def pair_couplings(action):
    a = action.coefficient(4)
    return np.array([float(a[i, i, j, j]) for i in range(N) for j in range(N) if i != j])


for name, action in (("true", truth), ("INN", learned), ("score matching", baseline)):
    pairs = pair_couplings(action)
    print(f"{name:15s} A4_iijj (i != j): mean {pairs.mean():.3f}, spread {pairs.std():.3f}")
# the text below: the converged network and score matching both find the pair couplings,
# their mean within half of the true lambda/3, and the network's spread is below the mean
true_pairs = LAMBDA / 3
assert abs(pair_couplings(learned).mean() - true_pairs) < 0.5 * true_pairs
assert pair_couplings(learned).std() < pair_couplings(learned).mean()
assert abs(pair_couplings(baseline).mean() - true_pairs) < 0.5 * true_pairs

# %% [markdown]
# Both find them, their mean within half of $\lambda/3$. For the network this is not
# obvious: with elementwise activations every quartic vertex a layer creates sits on one unit
# (a fork, a log-determinant vertex) or, through a forked pairwise vertex of the layer above,
# on a pair of units, and the affine maps then dress it with rank-one factors
# $W_{ui} W_{uj} \cdots$. An isotropic $(|x|^2)^2$ needs many such terms in balance, and
# the likelihood is nearly flat along that balance: it takes training to convergence (the
# polish stage) to get there. Try `polish=False` in the training cell: Adam alone stops
# where the loss curve looks flat, and the pair couplings are then far from $\lambda/3$.
# Score matching, with a free parameter for every monomial, finds them directly, if noisily.
# This is the cross-check to run on your own data: where the network and the direct estimate
# disagree, the network's structure (or its training) is the suspect, not the data.

# %% [markdown]
# ## Save and reload
#
# `PolynomialAction.save` writes one `.npz` file: the arrays `A1 .. AK`, the expansion point,
# the constant and JSON metadata (what produced it, with which settings). Anything that reads
# `.npz` can use it: `numpy.load("action.npz")["A4"]` is the quartic tensor.

# %% tags=["nbval-check-output"]
path = learned.save(workdir / "action.npz")
reloaded = it.PolynomialAction.load(path)
with np.load(path) as archive:
    print("arrays in action.npz:", sorted(archive.files))
print("metadata:", {k: reloaded.metadata[k] for k in ("source", "activation", "depth")})

# %% [markdown]
# ## The same from the shell
#
# The command line does all of the above in one call, with the network saved beside the
# action (`action.model.pt`):
#
# ```bash
# inntheory fit my_data.npy --depth 2 --order 4 --out action.npz
# ```
#
# It uses the same loader, a float64 network, `--seed 0`, up to `--steps 2000` Adam steps
# (we used 300 here to keep the lecture short) and `it.train`'s polish stage, and expands
# around the data mean by
# default; add `--point zero` for exactly the expansion of this lecture. With fewer than 10
# samples per trainable parameter of the network it warns ("thin data") and still fits: this
# lecture's network has 56 parameters, so it would warn below 560 samples. Two saved actions
# are compared with
#
# ```bash
# inntheory compare true.npz action.npz
# ```
#
# ## Check
#
# The saved action reloads and equals the extracted one (every coefficient, the expansion
# point and the constant), and the `.csv` copy of the data loads to the same array.

# %% tags=["nbval-check-output"]
assert reloaded.order == learned.order
for k in range(1, learned.order + 1):
    assert torch.equal(reloaded.coefficient(k), learned.coefficient(k)), k
assert torch.equal(reloaded.point, learned.point)
assert reloaded.constant == learned.constant
assert np.allclose(x, from_csv, rtol=1e-12, atol=0)
parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
assert parameters == 56 and recommended_samples(parameters) == 560
print("reloaded action == extracted action")

# %% [markdown]
# ## What we learned
#
# * Any `(n, N)` array of samples can be fitted: `load_data` reads `.npy`, `.npz` and `.csv`
#   and rejects malformed data with a clear message.
# * Fit, extract and compare are three calls; score matching on the same samples tells how
#   much the data themselves allow, and flags what the network's structure or training
#   misses (here an all-to-all quartic coupling, found once training has converged).
# * `lattice=` and `odd=True` build a lattice's or a sign symmetry's structure into the
#   network when your data have it; `polish` (on by default where it fits) trains to
#   convergence.
# * The action travels as an `.npz` file of coefficient tensors and reloads exactly;
#   `inntheory fit` and `inntheory compare` do the same from the shell.
