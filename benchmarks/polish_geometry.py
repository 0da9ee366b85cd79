"""Polish geometry: where the full-batch polish of a lattice INN starts, and what it crosses.

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
3. The same polish of a reflection-symmetric twin (`ReflectionSymmetric`: every layer built
   from (k + Rk) / 2), which has no odd directions to leave by: its polish, its best
   validation NLL against the kit's network's, and both extracted actions' errors: A2, on
   site A3 and A4 (relative) and the A3/A4 leakage (norm off site over the true on-site one).
4. The smallest entries of the Fisher matrix's diagonal (the mean squared per-sample score
   on the polish's subsample of 10^4 rows) relative to their mean, at Adam's state and after
   the polish: the parameters a damping proportional to the identity would hold back.

Run it with one and with two threads to see how much the polish depends on rounding (the
thread count, the BLAS).

    OMP_NUM_THREADS=2 python benchmarks/polish_geometry.py
"""

from __future__ import annotations

import argparse
import time

import torch

from inntheory import PolynomialINN, extract_action, preset, sample, train
from inntheory.model.linear import LatticeConvolution
from inntheory.model.polish import FullBatch, actions, mean_of, scores
from inntheory.model.stages import AffineStage

SHAPE, N_SAMPLES, HESSIAN_ROWS, CHUNK_ROWS = (8, 8), 100_000, 20_000, 4096
FISHER_ROWS, SMALLEST = 10_000, 4  # the polish's subsample at 24 parameters
ALPHAS = (-0.1, -0.06, -0.03, 0.03, 0.06, 0.1)


def reflected(kernel: torch.Tensor) -> torch.Tensor:
    """k(-r) for kernels (..., L1, L2) on the torus."""
    return torch.roll(torch.flip(kernel, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))


class ReflectionSymmetric(PolynomialINN):
    """The lattice network with every layer's kernel k used as (k + Rk) / 2: even under
    r -> -r, in training, sampling and extraction alike."""

    def _layer_stages(self, detach: bool = False) -> list:
        stages = super()._layer_stages(detach)
        for i in range(0, len(stages), 2):
            kernel = stages[i].linear.kernel
            stages[i] = AffineStage(LatticeConvolution(0.5 * (kernel + reflected(kernel))),
                                    stages[i].bias)
        return stages


def network(kind: type[PolynomialINN] = PolynomialINN) -> PolynomialINN:
    torch.manual_seed(0)
    return kind(SHAPE[0] * SHAPE[1], 2, activation="cubic", lattice=SHAPE, kernel_radius=1)


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
            changes.append(mean_of(actions(model, x)) - loss)
        objective.set_flat(theta)
        print(f"{float(value):10.3g}  {float(kernel.pow(2).sum()):12.2f}  {parity:+6.2f}  "
              + "  ".join(f"{c:+.1e}" for c in changes))


def fisher_report(label: str, model: PolynomialINN, x: torch.Tensor) -> None:
    """The smallest entries of the Fisher matrix's diagonal, mean (score^2) over the first
    FISHER_ROWS samples, relative to the mean entry (active parameters only)."""
    jacobian = scores(model, x[:FISHER_ROWS])
    names = [f"{name}[{i}]" for name, p in model.named_parameters() if p.requires_grad
             for i in range(p.numel())]
    active = jacobian.abs().amax(dim=0) > 0
    diagonal = jacobian.pow(2).mean(dim=0)[active]
    names = [name for name, keep in zip(names, active.tolist(), strict=True) if keep]
    relative = (diagonal / diagonal.mean()).tolist()
    smallest = sorted(zip(relative, names, strict=True))[:SMALLEST]
    print(f"{label:>8}: smallest Fisher diagonal entries / their mean: "
          + ", ".join(f"{name} {value:.1e}" for value, name in smallest))


def shape_report(label: str, model: PolynomialINN) -> None:
    kernel = (model.kernel * model.kernel_support).detach().double()
    asymmetry = [float((k - rk).norm() / k.norm()) for k, rk in zip(kernel, reflected(kernel),
                                                                      strict=True)]
    layers = [f"c {float(a.c.detach()):.2g}, tanh(t) {float(torch.tanh(a.t.detach())):+.4f}"
              for a in model.activations]
    print(f"{label:>8}: kernel asymmetry |k - Rk|/|k| "
          + " / ".join(f"{v:.3f}" for v in asymmetry) + "; activations " + "; ".join(layers))


def polish_report(label: str, model: PolynomialINN, data: torch.Tensor, theory) -> None:
    """Train `model` with the Fisher polish and print the polish and the action's errors."""
    history = train(model, data.float(), seed=0, progress=False, polish="fisher")
    truth, action = theory.lattice_coefficients(4), extract_action(model.double(), 4)
    errors = [abs(action.onsite(k) - truth.onsite(k)) / abs(truth.onsite(k)) for k in (2, 3, 4)]
    errors += [float(action.couplings(k).reshape(-1)[1:].norm()) / abs(truth.onsite(k))
               for k in (3, 4)]
    print(f"{label:>9} polish: {history.polish_method}, {history.polish_iterations} iterations, "
          f"{history.polish_evaluations} passes, {history.polish_seconds:.0f} s, stop "
          f"{history.polish_stop!r}, max|grad| {history.grad_norm:.1e}, kept {history.kept}; "
          f"val NLL {history.best_val_nll:.4f}; A2/A3/A4/leak3/leak4 "
          + " / ".join(f"{100 * e:.2f}" for e in errors) + " %")


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
    polish_report("kit", polished, data, theory)
    polish_report("symmetric", network(ReflectionSymmetric), data, theory)
    shape_report("Adam", adam)
    shape_report("polished", polished)
    fisher_report("Adam", adam.double(), data.double())
    fisher_report("polished", polished.double(), data.double())


if __name__ == "__main__":
    main()
