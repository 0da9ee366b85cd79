"""Polish geometry: what the full-batch polish of a lattice INN crawls along, and why.

The 8x8 row of the scale benchmark (unimodal theory, HMC, n = 10^5, seed 0; depth-2 lattice
cubic network, kernel_radius 1, `train`'s defaults otherwise). Adam runs alone
(`train(polish=False)`), then:

1. The exact Hessian of the mean action at Adam's state on the first 2 x 10^4 samples
   (reverse-over-reverse autograd over the active parameters): its lowest eigenvalues, for
   each eigenvector its share on the kernels and its parity under the lattice reflection
   r -> -r of both kernels (+1 even, -1 odd), and the change of the mean action over all
   samples along it, at steps alpha.
2. The same network and seed with the Fisher polish (`train(polish="fisher")`): its stepper,
   iterations, passes, stop and final max|grad|; the reflection asymmetry |k - Rk| / |k| of
   both kernels before and after; and each layer's activation y + a y^2 + c y^3 with
   a = s sqrt(3 c) tanh(t): c and tanh(t), where |tanh(t)| -> 1 is the bound of the
   monotone family (phi' >= 1 - s^2) and the gradient in t vanishes.

    OMP_NUM_THREADS=2 python benchmarks/polish_geometry.py
"""

from __future__ import annotations

import argparse
import time

import torch

from inntheory import PolynomialINN, preset, sample, train
from inntheory.model.polish import FullBatch, mean_action

SHAPE, N_SAMPLES, HESSIAN_ROWS, CHUNK_ROWS = (8, 8), 100_000, 20_000, 4096
ALPHAS = (-0.1, -0.06, -0.03, 0.03, 0.06, 0.1)


def network() -> PolynomialINN:
    torch.manual_seed(0)
    return PolynomialINN(SHAPE[0] * SHAPE[1], 2, activation="cubic", lattice=SHAPE,
                         kernel_radius=1)


def reflected(kernel: torch.Tensor) -> torch.Tensor:
    """k(-r) for kernels (depth, L1, L2) on the torus."""
    return torch.roll(torch.flip(kernel, dims=(1, 2)), shifts=(1, 1), dims=(1, 2))


def hessian(model: PolynomialINN, x: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """The mean action's Hessian over x: (m, N) in the active entries of the flat parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    indices = active.nonzero().squeeze(1)
    result = torch.zeros(len(indices), len(active), dtype=x.dtype)
    for chunk in x.split(CHUNK_ROWS):
        with torch.enable_grad():
            grads = torch.autograd.grad(model._action(chunk).sum(), params, create_graph=True)
            flat = torch.cat([g.reshape(-1) for g in grads])
            for row, index in enumerate(indices):
                second = torch.autograd.grad(flat[index], params, retain_graph=True,
                                             allow_unused=True)
                result[row] += torch.cat([(s if s is not None else torch.zeros_like(p)).reshape(-1)
                                          for s, p in zip(second, params, strict=True)])
    return result[:, active] / x.shape[0]


def saddle_report(model: PolynomialINN, x: torch.Tensor) -> None:
    objective = FullBatch(model, x)
    loss, gradient = objective()
    active = gradient != 0
    start = time.perf_counter()
    values, vectors = torch.linalg.eigh(hessian(model, x[:HESSIAN_ROWS], active))
    print(f"Adam's state: mean action {loss:.7f}, max|grad| {float(gradient.abs().max()):.1e}, "
          f"{int(active.sum())} active parameters; Hessian on {HESSIAN_ROWS} rows in "
          f"{time.perf_counter() - start:.0f} s; largest eigenvalue {float(values[-1]):.3g}")
    theta, kernel_size = objective.flat_parameters(), model.kernel.numel()
    header = "eigenvalue  kernel share  parity  " + "  ".join(f"{a:+.2f}" for a in ALPHAS)
    print(header + "   (mean action change along the eigenvector at step alpha)")
    for value, vector in zip(values[:4], vectors.T[:4], strict=True):
        full = torch.zeros_like(theta)
        full[active] = vector
        kernel = full[:kernel_size].view_as(model.kernel)
        parity = float((kernel * reflected(kernel)).sum() / kernel.pow(2).sum())
        changes = []
        for alpha in ALPHAS:
            objective.set_flat(theta + alpha * full)
            changes.append(mean_action(model, x) - loss)
        objective.set_flat(theta)
        print(f"{float(value):10.3g}  {float(kernel.pow(2).sum()):12.2f}  {parity:+6.2f}  "
              + "  ".join(f"{c:+.1e}" for c in changes))


def shape_report(label: str, model: PolynomialINN) -> None:
    kernel = (model.kernel * model.kernel_support).detach().double()
    asymmetry = [float((k - rk).norm() / k.norm()) for k, rk in zip(kernel, reflected(kernel),
                                                                      strict=True)]
    layers = [f"c {float(a.c.detach()):.2g}, tanh(t) {float(torch.tanh(a.t.detach())):+.4f}"
              for a in model.activations]
    print(f"{label:>8}: kernel asymmetry |k - Rk|/|k| "
          + " / ".join(f"{v:.3f}" for v in asymmetry) + "; activations " + "; ".join(layers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    print(f"torch threads = {torch.get_num_threads()}")
    theory = preset("unimodal", shape=SHAPE)
    torch.manual_seed(0)
    data = sample(theory, N_SAMPLES, seed=0, progress=False).x
    adam = network()
    train(adam, data.float(), seed=0, progress=False, polish=False)
    saddle_report(adam.double(), data.double())
    polished = network()
    history = train(polished, data.float(), seed=0, progress=False, polish="fisher")
    print(f"polish: {history.polish_method}, {history.polish_iterations} iterations, "
          f"{history.polish_evaluations} passes, {history.polish_seconds:.0f} s, stop "
          f"{history.polish_stop!r}, max|grad| {history.grad_norm:.1e}, kept {history.kept}")
    shape_report("Adam", adam)
    shape_report("polished", polished)


if __name__ == "__main__":
    main()
