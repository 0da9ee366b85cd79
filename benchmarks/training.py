"""Training speed and quality: the polynomial INN (both activations) against zuko's MAF.

All models see the same data in one run: the unimodal ring (N = 8, m2 = 1, kappa = .5,
g3 = .5, g4 = 1), n = 10^4 samples split 90/10 into training and validation exactly as
`inntheory.train` splits them, plus an independent test set. Every model is trained by the
same loop shape (Adam, batch 1024, cosine-decaying learning rate, early stopping on the
validation NLL, best state kept); the INNs by `inntheory.train` itself. The table gives the
time per epoch, the whole run's wall and CPU time (on a busy machine the CPU time is the
better guide to an idle machine's wall time), the best validation NLL, the test NLL, and the
test NLL in excess of the exact one (ln Z from the transfer matrix of the ring by
quadrature), with ratios to the cubic INN.

Run: python benchmarks/training.py [--n 10000] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import zuko

import inntheory as it
from inntheory.model.training import train

BATCH, STEPS, EVAL_EVERY, PATIENCE = 1024, 1500, 50, 10


def exact_log_partition(theory: it.LatticeTheory) -> float:
    """ln Z of a 1-D periodic ring by the transfer matrix on a fine grid."""
    x = np.linspace(-8, 8, 1601)
    h = x[1] - x[0]
    site = theory.m2 / 2 * x**2 + theory.g3 / 6 * x**3 + theory.g4 / 24 * x**4
    transfer = np.exp(
        -(site[:, None] / 2 + site[None, :] / 2 + theory.kappa / 2 * (x[:, None] - x) ** 2)
    ) * h
    return float(np.log(np.sum(np.linalg.eigvalsh(transfer) ** theory.dim)))


def train_maf(flow: torch.nn.Module, train_x: torch.Tensor, val_x: torch.Tensor,
              lr: float) -> tuple[float, int]:
    """The INN's loop for a zuko flow; returns (best validation NLL, steps run)."""
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    best, best_state, stale, step = math.inf, None, 0, 0
    while step < STEPS:
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(train_x) - BATCH + 1, BATCH):
            step += 1
            cosine = 0.5 * (1 + math.cos(math.pi * (step - 1) / (STEPS - 1)))
            optimizer.param_groups[0]["lr"] = lr * (0.01 + 0.99 * cosine)
            loss = -flow().log_prob(train_x[order[start : start + BATCH]]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % EVAL_EVERY == 0:
                with torch.no_grad():
                    nll = float(-flow().log_prob(val_x).mean())
                if nll < best:
                    best, stale = nll, 0
                    best_state = {k: v.clone() for k, v in flow.state_dict().items()}
                else:
                    stale += 1
                if stale >= PATIENCE or step >= STEPS:
                    flow.load_state_dict(best_state)
                    return best, step
    flow.load_state_dict(best_state)
    return best, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    theory = it.preset("unimodal")
    data = it.sample(theory, args.n, seed=1, progress=False).x.float()
    test = it.sample(theory, 20000, seed=2, progress=False).x
    exact = theory.action(test) + exact_log_partition(theory)
    # The split inntheory.train makes with validation=0.1, seed=0.
    n_val = round(0.1 * args.n)
    order = torch.randperm(args.n, generator=torch.Generator().manual_seed(0))
    train_x, val_x = data[order[n_val:]], data[order[:n_val]]
    shift, scale = train_x.mean(0), train_x.std(0)
    epoch = len(train_x) / min(BATCH, len(train_x))

    gaussian = torch.distributions.MultivariateNormal(
        train_x.double().mean(0), torch.cov(train_x.double().T)
    )
    rows = [("gaussian fit", 8 + 8 * 9 // 2, math.nan, math.nan, math.nan,
             float(-gaussian.log_prob(val_x.double()).mean()),
             float(-gaussian.log_prob(test).mean()))]
    for activation, depth in (("cubic", 2), ("quadratic", 2), ("cubic", 4)):
        torch.manual_seed(0)
        model = it.PolynomialINN(theory.dim, depth, activation)
        start, cpu = time.perf_counter(), time.process_time()
        history = train(model, data, steps=STEPS, batch_size=BATCH, eval_every=EVAL_EVERY,
                        patience=PATIENCE, progress=False, device="cpu")
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        with torch.no_grad():
            test_nll = float(model.double().action(test).mean())
        rows.append((f"INN {activation} L={depth}", sum(p.numel() for p in model.parameters()),
                     seconds / (history.steps[-1] / epoch), seconds, cpu,
                     history.best_val_nll, test_nll))
    def standardised(x: torch.Tensor) -> torch.Tensor:
        return (x - shift) / scale

    # One MAF matched to the deepest INN's parameter count, one larger.
    for hidden in (6, 16):
        torch.manual_seed(0)
        flow = zuko.flows.MAF(theory.dim, transforms=2, hidden_features=[hidden])
        start, cpu = time.perf_counter(), time.process_time()
        best, steps = train_maf(flow, standardised(train_x), standardised(val_x), lr=3e-3)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        jacobian = float(torch.log(scale).sum())
        with torch.no_grad():
            test_nll = float(-flow().log_prob(standardised(test.float())).mean()) + jacobian
        rows.append((f"zuko MAF 2x[{hidden}]", sum(p.numel() for p in flow.parameters()),
                     seconds / (steps / epoch), seconds, cpu, best + jacobian, test_nll))

    reference = rows[1]
    print(f"unimodal ring N = 8, n = {args.n}, {args.threads} threads, batch {BATCH}; "
          f"exact test NLL {float(exact.mean()):.4f}")
    print(f"{'model':18s} {'params':>6s} {'s/epoch':>8s} {'x cubic':>8s} {'wall s':>7s} "
          f"{'CPU s':>7s} {'val NLL':>8s} {'test NLL':>9s} {'excess':>8s} {'x cubic':>8s}")
    for name, count, per_epoch, seconds, cpu, val, test_nll in rows:
        excess = test_nll - float(exact.mean())
        print(f"{name:18s} {count:6d} {per_epoch:8.3f} {per_epoch / reference[2]:8.2f} "
              f"{seconds:7.1f} {cpu:7.1f} {val:8.4f} {test_nll:9.4f} {excess:8.4f} "
              f"{excess / (reference[6] - float(exact.mean())):8.2f}")


if __name__ == "__main__":
    main()
