"""A lattice-equivariant PolynomialINN far from the identity, shared by the lattice tests."""

from __future__ import annotations

import math

import torch

from inntheory import PolynomialINN


def lattice_model(
    shape: tuple[int, ...],
    depth: int = 2,
    activation: str = "cubic",
    standardize: bool = True,
    radius: int | None = None,
    seed: int = 0,
    odd: bool = False,
) -> PolynomialINN:
    """A float64 lattice-equivariant PolynomialINN far from the identity, 0 in its domain."""
    dim = math.prod(shape)
    for attempt in range(50):
        torch.manual_seed(seed + 1000 * attempt)
        model = PolynomialINN(dim, depth, activation=activation, standardize=standardize,
                              lattice=shape, kernel_radius=radius, odd=odd).double()
        with torch.no_grad():
            model.kernel.normal_(0.0, 0.3)
            model.kernel[(slice(None),) + (0,) * len(shape)] += 1.0
            if not odd:
                model.bias.normal_(0.0, 0.2)
            for act in model.activations:
                for parameter in act.parameters():
                    parameter.normal_(0.0, 0.3)
        if standardize:
            model.standardize_to(1.7 * torch.randn(64, dim, dtype=torch.float64) + 0.3)
        if bool(model.in_domain(torch.zeros(dim, dtype=torch.float64))):
            return model
    raise AssertionError("no model with 0 in its domain")
