"""End-to-end cases whose results must not change when the package is reorganised.

`python tests/regression/cases.py` writes `reference.npz` beside this file from the code
checked out now; `tests/test_regression.py` recomputes every case and compares. Each case is
a function returning {name: array}; keep them small (seconds on one core).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import inntheory as it

REFERENCE = Path(__file__).with_name("reference.npz")


def _arrays(prefix: str, tensors: dict) -> dict[str, np.ndarray]:
    return {f"{prefix}/{key}": torch.as_tensor(value).detach().cpu().numpy()
            for key, value in tensors.items()}


def _action_arrays(prefix: str, action) -> dict[str, np.ndarray]:
    out = {f"{prefix}/constant": np.asarray(action.constant)}
    for k in range(1, action.order + 1):
        if hasattr(action, "couplings"):
            out[f"{prefix}/C{k}"] = action.couplings(k).cpu().numpy()
        else:
            out[f"{prefix}/A{k}"] = action.coefficient(k).cpu().numpy()
    return out


def sampling_ring() -> dict[str, np.ndarray]:
    result = it.sample(it.preset("unimodal"), 300, seed=0, progress=False)
    return {"sampling_ring/x": result.x.numpy()}


def sampling_square_mala() -> dict[str, np.ndarray]:
    theory = it.LatticeTheory((3, 3), m2=0.6, kappa=0.3, g3=0.4, g4=1.0)
    result = it.sample(theory, 200, method="mala", seed=1, progress=False, n_chains=16)
    return {"sampling_square_mala/x": result.x.numpy()}


def _train_and_extract(name: str, model, data, polish) -> dict[str, np.ndarray]:
    torch.manual_seed(0)
    history = it.train(model, data, steps=120, eval_every=20, progress=False, polish=polish,
                       polish_steps=15, device="cpu")
    out = _arrays(f"{name}/state", dict(model.state_dict()))
    out[f"{name}/val_nll"] = np.asarray(history.val_nll)
    out.update(_action_arrays(f"{name}/action", it.extract_action(model, order=4)))
    return out


def _data(dim_shape, n, seed):
    """Skewed, correlated data from a seeded generator: independent of the sampler, so a
    change of the sampler's stream leaves the training cases alone."""
    theory = it.LatticeTheory(dim_shape, m2=0.6, kappa=0.3, g3=0.4, g4=1.0)
    generator = torch.Generator().manual_seed(seed)
    g = torch.randn(n, theory.dim, generator=generator, dtype=torch.float64)
    g = g + 0.3 * g.roll(1, dims=1)
    return theory, g - 0.25 * g**2 + 0.25


def dense_cubic() -> dict[str, np.ndarray]:
    _, data = _data((4,), 600, 2)
    torch.manual_seed(0)
    model = it.PolynomialINN(4, depth=2)
    out = _train_and_extract("dense_cubic", model, data, polish="lbfgs")
    history = it.action_history(model, order=3)
    for i, action in enumerate(history):
        out.update(_action_arrays(f"dense_cubic/history{i}", action))
    return out


def dense_quadratic() -> dict[str, np.ndarray]:
    _, data = _data((3,), 500, 3)
    torch.manual_seed(1)
    model = it.PolynomialINN(3, depth=1, activation="quadratic")
    return _train_and_extract("dense_quadratic", model, data, polish=False)


def lattice_cubic() -> dict[str, np.ndarray]:
    _, data = _data((3, 3), 600, 4)
    torch.manual_seed(2)
    model = it.PolynomialINN(9, depth=2, lattice=(3, 3), kernel_radius=1)
    out = _train_and_extract("lattice_cubic", model, data, polish="lbfgs")
    out.update(_action_arrays("lattice_cubic/dense",
                              it.extract_action(model, order=3, compressed=False)))
    return out


def lattice_odd() -> dict[str, np.ndarray]:
    _, data = _data((5,), 500, 5)
    torch.manual_seed(3)
    model = it.PolynomialINN(5, depth=2, lattice=(5,), odd=True)
    return _train_and_extract("lattice_odd", model, data, polish=False)


def baselines() -> dict[str, np.ndarray]:
    theory, data = _data((3, 3), 800, 6)
    out = _action_arrays("baselines/dense", it.score_matching(data, order=4))
    out.update(_action_arrays("baselines/tied",
                              it.score_matching(data, order=4, basis="tied", lattice=(3, 3))))
    out.update(_action_arrays("baselines/truth", theory.lattice_coefficients(4)))
    return out


CASES = [sampling_ring, sampling_square_mala, dense_cubic, dense_quadratic, lattice_cubic,
         lattice_odd, baselines]


def compute_all() -> dict[str, np.ndarray]:
    torch.set_num_threads(1)
    results: dict[str, np.ndarray] = {}
    for case in CASES:
        results.update(case())
    return results


if __name__ == "__main__":
    np.savez_compressed(REFERENCE, **compute_all())
    print(f"wrote {REFERENCE}")
