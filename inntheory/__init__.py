"""inntheory: learn interacting theories from data.

A teaching and exploration kit for the method of Merger et al., "Learning Interacting
Theories from Data", Phys. Rev. X 13, 041033 (2023), arXiv:2304.00599: sample lattice
theories, fit a polynomial invertible network, extract its action exactly with the
layer-to-layer diagrammatic rules, and compare it with the true one.

The public names are importable from the package directly; their modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "PolynomialAction": "action",
    "LatticeAction": "lattice_action",
    "load_action": "lattice_action",
    "LatticeTheory": "theories",
    "preset": "theories",
    "PRESETS": "theories",
    "sample": "sampling",
    "SampleResult": "sampling",
    "load_dataset": "datasets",
    "make_activation": "activations",
    "ACTIVATIONS": "activations",
    "PolynomialINN": "inn",
    "train": "training",
    "TrainingHistory": "training",
    "resolve_device": "training",
    "extract_action": "extraction",
    "action_history": "extraction",
    "compare": "analysis",
    "Comparison": "analysis",
    "cumulants": "analysis",
    "compare_cumulants": "analysis",
    "CumulantComparison": "analysis",
    "normalisable": "loop",
    "close_loop": "loop",
    "score_matching": "baselines",
    "sweep": "sweeps",
    "SweepResult": "sweeps",
    "cached": "store",
}

_SUBMODULES = frozenset(set(_PUBLIC.values()) | {"activations", "diagrams", "widgets", "cli"})

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'inntheory' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
