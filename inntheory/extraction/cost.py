"""What an extraction will cost, from the network's settings alone (nothing is built)."""

from __future__ import annotations

import math

from .._checks import check_order
from ..actions.lattice import lattice_window
from .dense import dense_bytes, geometric_sum
from .diagrams import activation_degree
from .lattice import compressed_bytes

__all__ = ["extraction_cost"]

SECONDS_PER_PLACEMENT = 2e-5  # rough time per placement and activation stage
SECONDS_PER_UPDATE = 1e-9  # rough time per tensor entry written


def extraction_cost(dim: int, order: int, depth: int, activation: str, *,
                    lattice: tuple[int, ...] | None = None,
                    kernel_radius: int | None = None) -> dict[str, float]:
    """The cost of extracting the order-`order` (K >= 1) action of a `PolynomialINN` of these
    settings (the other arguments as for `PolynomialINN`).

    Without `lattice` the dense pull-back is costed (N^k entries per vertex of order k); with
    it the compressed one of a lattice-equivariant network at a uniform point (M^(k-1)
    entries, M the sites of the window min(L, 2R + 1), R = 2 depth kernel_radius).

    Returns:
        ``placements``: diagram placements per activation stage; ``updates``: tensor entries
        they write over all stages; ``bytes``: one action's coefficient tensors;
        ``peak_bytes``: the memory the pull-back needs (what `extract_action` checks);
        ``seconds``: a rough time. Floats, inf where a count overflows.
    """
    order, degree = check_order(order), activation_degree(activation)
    if lattice is None:
        legs, bytes_, peak = float(dim), 8.0 * geometric_sum(dim, order), dense_bytes(dim, order)
        logdet_entries, root = float(dim), 1.0
    else:
        window = lattice_window(tuple(lattice),
                                None if kernel_radius is None else 2 * depth * kernel_radius)
        size = math.prod(window)
        legs, root, logdet_entries = float(size), float(size), 1.0
        bytes_ = 8.0 * geometric_sum(size, order - 1)
        peak = compressed_bytes(window, order)
    logdets = float(order) if degree >= 2 else 0.0
    placements = _partitions(order, degree, 1.0) + logdets
    updates = _partitions(order, degree, legs) / root + logdets * logdet_entries
    return {
        "placements": placements,
        "updates": depth * updates,
        "bytes": bytes_,
        "peak_bytes": peak,
        "seconds": depth * (SECONDS_PER_PLACEMENT * placements + SECONDS_PER_UPDATE * updates),
    }


def _partitions(order: int, degree: int, x: float) -> float:
    """sum_{n=1}^{order} P_n(x) as a float (inf once it overflows), P_n(x) the sum over the set
    partitions of n output positions into blocks of size <= degree (the placements feeding
    B^(n)) of x^(number of blocks): P_n = x [P_{n-1} + (n-1) P_{n-2} + C(n-1, 2) P_{n-3}],
    P_0 = 1, the terms beyond the degree dropped."""
    history = [1.0, 0.0, 0.0]  # P_{n-1}, P_{n-2}, P_{n-3}
    total = 0.0
    for n in range(1, order + 1):
        value = history[0]
        if degree >= 2:
            value += (n - 1) * history[1]
        if degree >= 3:
            value += (n - 1) * (n - 2) / 2 * history[2]
        value *= x
        total += value
        if math.isinf(total):
            return math.inf
        history = [value, history[0], history[1]]
    return total
