"""GPU check: train the INN on CUDA, compare CPU and GPU actions, print the speed-up.

Trains the same cubic PolynomialINN (N = 8, depth 4; seeded) on Gaussian-plus-cubic data
once on the CPU and once on CUDA with identical settings, then evaluates both trained models
and the GPU-trained one moved to the CPU on one float64 batch. Then times `sample` on CUDA
(unimodal preset, `--samples` draws) on the L x L lattices of `--sizes`, beside the CPU rows
of `benchmarks/sampling.py --scaling`. Last, times the Fisher-scoring polish on CUDA on the
L x L lattices of `--polish-sizes` (depth-2 lattice network, full kernels, `--polish-n`
samples of those draws' theory, 300 Adam steps first), beside the CPU rows of
`benchmarks/polish.py`. Exits with code 0 and the message "no CUDA device" when CUDA is
absent.

Run: python benchmarks/gpu_check.py [--n 100000] [--steps 300] [--sizes 32 64]
    [--polish-sizes 16 32] [--polish-n 100000]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import inntheory as it
from inntheory.model.training import train


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--polish-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--polish-n", type=int, default=100000)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check (exit 0)")
        return 0
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(args.n, args.dim, generator=generator)
    data = base + 0.3 * base**2 - 0.1 * base**3
    batch = data[:4096].double()

    results = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = it.PolynomialINN(args.dim, 4, "cubic")
        start = time.perf_counter()
        history = train(model, data, steps=args.steps, batch_size=1024, patience=10**6,
                        progress=False, device=device)
        seconds = time.perf_counter() - start
        assert model.weight.device.type == "cpu", "train must return the model to its device"
        results[device] = (model.double(), history, seconds)
        print(f"{device:5s}: {args.steps} steps in {seconds:7.2f} s "
              f"({seconds / args.steps * 1e3:6.2f} ms/step), best val NLL "
              f"{history.best_val_nll:.4f}, device {history.device}")

    gpu_model = results["cuda"][0]
    with torch.no_grad():
        on_cpu = gpu_model.action(batch)
        on_gpu = gpu_model.to("cuda").action(batch.cuda()).cpu()
        cpu_trained = results["cpu"][0].action(batch)
    difference = float((on_cpu - on_gpu).abs().max())
    print(f"same model, float64, CPU vs GPU action: max |difference| = {difference:.2e}")
    print(f"CPU-trained vs GPU-trained mean action: {float(cpu_trained.mean()):.4f} vs "
          f"{float(on_cpu.mean()):.4f}")
    print(f"speed-up of training (CPU time / GPU time): "
          f"{results['cpu'][2] / results['cuda'][2]:.2f}x")
    if difference > 1e-8 * float(on_cpu.abs().max()):
        print("FAIL: CPU and GPU actions disagree")
        return 1
    for size in args.sizes:
        theory = it.preset("unimodal", shape=(size, size))
        start = time.perf_counter()
        result = it.sample(theory, args.samples, device="cuda", progress=False)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        ess = float(result.diagnostics["ess"])
        print(f"sample {size}x{size} on CUDA: {args.samples} draws in {seconds:.1f} s, "
              f"ESS/s {ess / seconds:.0f}, <x> = {float(result.x.mean()):.4f}")
    for size in args.polish_sizes:
        theory = it.preset("unimodal", shape=(size, size))
        data = it.sample(theory, args.polish_n, device="cuda", progress=False).x
        torch.manual_seed(0)
        model = it.PolynomialINN(theory.dim, 2, lattice=theory.shape)
        history = train(model, data, steps=300, polish="fisher", progress=False,
                        device="cuda")
        print(f"polish {size}x{size} on CUDA (n = {args.polish_n}): "
              f"{history.polish_iterations} iterations ({history.polish_method}), "
              f"{history.polish_evaluations} passes in {history.polish_seconds:.1f} s, "
              f"stop {history.polish_stop!r}, max|grad| {history.grad_norm:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
