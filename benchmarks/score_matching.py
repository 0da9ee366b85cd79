"""Score-matching baseline: wall time of `score_matching` against a direct assembly, one run.

The direct route builds the (n, M, N) gradient-feature tensor d T_j / d x_i with
`torch.func.jacfwd` in row chunks and forms G = E[grad T grad T^T] by a matrix product, the
cost n N M^2. `score_matching` assembles G from the moment matrix of the monomials of degree
< K (n F^2 with F = C(N + K - 1, K - 1)). Both solve the same equations, so the table also
prints the largest difference of the coefficients. Data: standard normal, float64. The time
of `cumulants(x, order=4)` and `compare_cumulants` on the same data is printed below, then
the translation basis (every monomial within a radius, tied over translations) on lattices:
the number of orbits, the time to enumerate them and the time of the whole fit.

Usage:
    python benchmarks/score_matching.py [--dim 8] [--samples 100000] [--order 4]
        [--direct 2000] [--threads 2] [--lattice-samples 10000]
"""

from __future__ import annotations

import argparse
import time

import torch

from inntheory import _orbits
from inntheory.baselines import _basis, _to_tensors, score_matching
from inntheory.comparison import compare_cumulants, cumulants


def direct(x: torch.Tensor, order: int, basis: str) -> dict[int, torch.Tensor]:
    """theta = G^-1 h from the explicit gradient features (jacfwd) and Laplacians."""
    dim = x.shape[1]
    monomials = _basis(dim, order, basis)
    # each monomial as `order` indices into (x, 1), padded with the constant
    index = torch.tensor([m + (dim,) * (order - len(m)) for m in monomials])

    def features(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([v, v.new_ones(1)])[index].prod(-1)

    def laplacian(v: torch.Tensor) -> torch.Tensor:
        total = v.new_zeros(len(monomials))
        for e in torch.eye(dim, dtype=v.dtype):

            def slope(u: torch.Tensor, e: torch.Tensor = e) -> torch.Tensor:
                return torch.func.jvp(features, (u,), (e,))[1]

            total = total + torch.func.jvp(slope, (v,), (e,))[1]
        return total

    jacobian = torch.vmap(torch.func.jacfwd(features))
    gram = x.new_zeros(len(monomials), len(monomials))
    rhs = x.new_zeros(len(monomials))
    for rows in torch.split(x, 2000):
        grads = jacobian(rows)  # (c, M, N)
        gram += torch.einsum("cai,cbi->ab", grads, grads)
        rhs += torch.vmap(laplacian)(rows).sum(0)
    theta = torch.linalg.solve(gram / len(x), rhs / len(x))
    return _to_tensors(monomials, theta, x.shape[1], order)


def translation_rows(samples: int, order: int) -> None:
    """Orbit count, enumeration and fit time of the translation basis on a few lattices."""
    print(f"translation basis, K = {order}, {samples} standard-normal samples")
    header = f"{'lattice':>8} {'radius':>6} {'orbits':>6} {'enumerate s':>11} {'fit s':>7}"
    print(header)
    print("-" * len(header))
    generator = torch.Generator().manual_seed(1)
    for shape, radius in (((3, 3), None), ((8, 8), 1), ((8, 8), 2), ((16, 16), 1)):
        dim = shape[0] * shape[1]
        x = torch.randn(samples, dim, dtype=torch.float64, generator=generator)
        start = time.perf_counter()
        size = len(_orbits.orbits(shape, order, radius))
        enumerate_s = time.perf_counter() - start
        start = time.perf_counter()
        score_matching(x, order=order, basis="translation", lattice=shape, radius=radius)
        fit_s = time.perf_counter() - start
        name = "x".join(map(str, shape))
        print(f"{name:>8} {radius!s:>6} {size:>6} {enumerate_s:>11.3f} {fit_s:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--order", type=int, default=4)
    parser.add_argument("--direct", type=int, default=2000, help="rows for the direct route")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lattice-samples", type=int, default=10_000,
                        help="rows for the translation-basis rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.samples, args.dim, dtype=torch.float64, generator=generator)

    print(
        f"N = {args.dim}, K = {args.order}, float64; direct route on the first {args.direct} rows"
    )
    header = f"{'basis':>6} {'monomials':>9} {'n':>7} {'score_matching s':>16} "
    header += f"{'direct s':>9} {'ratio':>6} {'max |diff|':>10}"
    print(header)
    print("-" * len(header))
    for basis in ("dense", "local"):
        start = time.perf_counter()
        fit = score_matching(x, order=args.order, basis=basis)
        full = time.perf_counter() - start
        size = fit.metadata["n_monomials"]
        print(f"{basis:>6} {size:>9} {args.samples:>7} {full:>16.2f} {'':>9} {'':>6} {'':>10}")
        small = x[: args.direct]
        start = time.perf_counter()
        fit = score_matching(small, order=args.order, basis=basis)
        fast = time.perf_counter() - start
        start = time.perf_counter()
        reference = direct(small, args.order, basis)
        slow = time.perf_counter() - start
        diff = max(
            float((fit.coefficient(k) - reference[k]).abs().max())
            for k in range(1, args.order + 1)
        )
        print(
            f"{basis:>6} {size:>9} {args.direct:>7} {fast:>16.2f} {slow:>9.2f} "
            f"{slow / fast:>6.1f} {diff:>10.1e}"
        )
    start = time.perf_counter()
    cumulants(x, order=4)
    middle = time.perf_counter()
    compare_cumulants(x, x.flip(0), order=4)
    end = time.perf_counter()
    print(f"cumulants(order=4): {middle - start:.2f} s; compare_cumulants: {end - middle:.2f} s")
    translation_rows(args.lattice_samples, args.order)


if __name__ == "__main__":
    main()
