"""Where the held-out Fisher divergence of a lattice INN comes from: the learned density or
the order-4 read-out of it.

The science benchmark's held-out 3x3 theory (m2 = 0.6, kappa = 0.35, g3 = 0.5, g4 = 1.1,
MALA samples, cached in ``benchmarks/.cache/data``), the lattice cubic INN trained as the
science sweep trains it (``torch.manual_seed(seed)``, `train` defaults with ``seed``), and
translation score matching of order 4 on the same samples. Each row gives the relative
Fisher divergence E|grad S - grad S_true|^2 / E|grad S_true|^2 on the 10^4 held-out samples
of the sweep for

- the order-4 action extracted at 0 (what `compare` and the science table judge),
- the order-6 action extracted at 0 (the same orders 1-4, plus the orders 5 and 6 the
  network learned; the truth has none),
- the network's own action -log p (all orders),
- the read-out gap: the order-4 action against the network's own action, which needs no
  truth (a user computes it on validation data with
  ``fisher_divergence(extract_action(model, 4), model, x_val)``),

and where the error sits: the share of the divergence (of the network's own action, of the
baseline's) that the 10 % of held-out samples farthest from their mean carry,

for data sets of n = 1e5 (seeds 0-2) and their union (n = 3e5, initialisation seed 0): the
divergence that does not fall with n is the network's bias. Run from the repository root:

    OMP_NUM_THREADS=1 python benchmarks/readout.py [--depths 2 3] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from inntheory import (
    LatticeTheory,
    PolynomialINN,
    extract_action,
    fisher_divergence,
    load_dataset,
    score_matching,
    train,
)
from inntheory.lab.sweeps import HELDOUT_SEED, HELDOUT_SIZE

ROOT = Path(__file__).resolve().parent
DATA = ROOT / ".cache" / "data"
THEORY = LatticeTheory((3, 3), m2=0.6, kappa=0.35, g3=0.5, g4=1.1)
N = 100_000
HEADER = ("data", "n", "fit", "order 4", "order 6", "network's action", "read-out gap",
          "outer 10 % share", "train s")


def samples(seed: int, n: int = N) -> torch.Tensor:
    return load_dataset(THEORY, n, seed=seed, cache_dir=DATA, method="mala", progress=False).x


def outer_share(learned, heldout: torch.Tensor) -> float:
    """The share of E|grad S_learned - grad S_true|^2 that the 10 % of `heldout` farthest
    from their mean carry."""
    error = (learned.grad(heldout) - THEORY.grad(heldout)).pow(2).sum(1).detach()
    radius = (heldout - heldout.mean(0)).norm(dim=1)
    outer = radius > torch.quantile(radius, 0.9)
    return float(error[outer].sum() / error.sum())


def row(label: str, x: torch.Tensor, depth: int, seed: int, heldout: torch.Tensor
        ) -> tuple[str, ...]:
    """One network trained as the science sweep trains it, and its four divergences."""
    torch.manual_seed(seed)
    model = PolynomialINN(THEORY.dim, depth, activation="cubic", lattice=THEORY.shape)
    start = time.perf_counter()
    train(model, x, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    model = model.double()
    order4 = extract_action(model, 4)
    values = (fisher_divergence(order4, THEORY, heldout),
              fisher_divergence(extract_action(model, 6), THEORY, heldout),
              fisher_divergence(model, THEORY, heldout),
              fisher_divergence(order4, model, heldout))
    return (label, f"{len(x):.0e}", f"INN depth {depth}", *(f"{v:.2e}" for v in values),
            f"{outer_share(model, heldout):.2f}", f"{seconds:.0f}")


def baseline(label: str, x: torch.Tensor, heldout: torch.Tensor) -> tuple[str, ...]:
    learned = score_matching(x, 4, basis="translation", lattice=THEORY.shape)
    return (label, f"{len(x):.0e}", "score matching (translation, order 4)",
            f"{fisher_divergence(learned, THEORY, heldout):.2e}", "-", "-", "-",
            f"{outer_share(learned, heldout):.2f}", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    heldout = samples(HELDOUT_SEED, HELDOUT_SIZE)
    sets = [(f"seed {seed}", samples(seed)) for seed in args.seeds]
    if len(sets) > 1:
        union = "union of seeds " + ", ".join(map(str, args.seeds))
        sets.append((union, torch.cat([x for _, x in sets])))
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for index, (label, x) in enumerate(sets):
        seed = args.seeds[index] if index < len(args.seeds) else 0
        lines = [baseline(label, x, heldout)]
        lines += [row(label, x, depth, seed, heldout) for depth in args.depths]
        for line in lines:
            print("| " + " | ".join(line) + " |", flush=True)


if __name__ == "__main__":
    main()
