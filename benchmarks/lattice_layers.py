"""Cost of lattice-equivariant layers: forward + backward of the training loss, dense vs lattice.

Part 1 times one forward + backward of the mean action (what a full-batch training step
costs) of a depth-`--depth` cubic `PolynomialINN` on an (n, N) float64 batch, dense against
lattice-equivariant (periodic convolution, full kernel), on square lattices L x L.
Part 2 times the lattice convolution's forward map alone (forward + backward), its dense
matmul with `matrix()` against the FFT route, which sets the switch in
`inntheory.model.linear.LatticeConvolution.forward`. Each entry is the best of `--repeats` runs.

Usage:
    python benchmarks/lattice_layers.py [--samples 100000] [--depth 2] [--repeats 3]
        [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from inntheory import PolynomialINN
from inntheory.model.linear import LatticeConvolution


def _best_time(step, repeats: int, device: torch.device) -> float:
    """The fastest of `repeats` timed calls of step() (after one warm-up call)."""
    step()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def _model_step(model: PolynomialINN, x: torch.Tensor):
    def step() -> None:
        model.zero_grad(set_to_none=True)
        model._action(x).mean().backward()

    return step


def _layer_step(layer: LatticeConvolution, u: torch.Tensor, fourier: bool):
    def step() -> None:
        layer.kernel.grad = None
        if fourier:
            y = layer._fourier(u, lambda spectrum, u_hat: spectrum * u_hat)
        else:
            y = u @ layer.matrix().T
        y.square().sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)

    print(f"forward + backward of the mean action, n = {args.samples}, depth {args.depth}, "
          f"float64, {args.threads} thread(s), {device}")
    header = f"{'lattice':>8} {'N':>5} {'dense s':>9} {'lattice s':>10} {'lattice/dense':>14}"
    print(header)
    print("-" * len(header))
    for side in (3, 8, 16):
        dim = side * side
        x = torch.randn(args.samples, dim, dtype=torch.float64, device=device)
        times = []
        for lattice in (None, (side, side)):
            model = PolynomialINN(dim, args.depth, lattice=lattice).to(device, torch.float64)
            times.append(_best_time(_model_step(model, x), args.repeats, device))
        print(f"{f'{side}x{side}':>8} {dim:>5} {times[0]:>9.3f} {times[1]:>10.3f} "
              f"{times[1] / times[0]:>14.2f}")

    rows = max(args.samples // 10, 1)
    print(f"\nlattice convolution forward map alone (forward + backward), n = {rows}")
    header = f"{'lattice':>8} {'N':>5} {'matmul s':>9} {'FFT s':>9} {'FFT/matmul':>11}"
    print(header)
    print("-" * len(header))
    for side in (8, 16, 32):
        dim = side * side
        u = torch.randn(rows, dim, dtype=torch.float64, device=device)
        kernel = torch.randn(side, side, dtype=torch.float64, device=device, requires_grad=True)
        layer = LatticeConvolution(kernel)
        matmul = _best_time(_layer_step(layer, u, False), args.repeats, device)
        fourier = _best_time(_layer_step(layer, u, True), args.repeats, device)
        print(f"{f'{side}x{side}':>8} {dim:>5} {matmul:>9.4f} {fourier:>9.4f} "
              f"{fourier / matmul:>11.2f}")


if __name__ == "__main__":
    main()
