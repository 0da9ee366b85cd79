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
    "PolynomialAction": "actions.dense",
    "LatticeAction": "actions.lattice",
    "load_action": "actions.base",
    "LatticeTheory": "theories",
    "preset": "theories",
    "PRESETS": "theories",
    "sample": "sampling",
    "SampleResult": "sampling",
    "load_dataset": "datasets",
    "make_activation": "model.activations",
    "ACTIVATIONS": "model.activations",
    "PolynomialINN": "model.inn",
    "train": "model.training",
    "TrainingHistory": "model.training",
    "resolve_device": "model.training",
    "extract_action": "extraction.extract",
    "action_history": "extraction.extract",
    "compare": "comparison",
    "Comparison": "comparison",
    "cumulants": "comparison",
    "compare_cumulants": "comparison",
    "CumulantComparison": "comparison",
    "normalisable": "loop",
    "close_loop": "loop",
    "score_matching": "baselines",
    "goodness_of_fit": "diagnostics",
    "GoodnessOfFit": "diagnostics",
    "fisher_divergence": "diagnostics",
    "sweep": "lab.sweeps",
    "SweepResult": "lab.sweeps",
    "cached": "lab.store",
    "stored_network": "lab.store",
    "network_settings": "lab.store",
}

_SUBMODULES = {
    "actions": "actions",
    "model": "model",
    "extraction": "extraction",
    "lab": "lab",
    "theories": "theories",
    "sampling": "sampling",
    "datasets": "datasets",
    "comparison": "comparison",
    "baselines": "baselines",
    "loop": "loop",
    "diagnostics": "diagnostics",
    "activations": "model.activations",
    "diagrams": "extraction.diagrams",
    "store": "lab.store",
    "sweeps": "lab.sweeps",
    "widgets": "lab.widgets",
    "cli": "lab.cli",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{_SUBMODULES[name]}", __name__)
    else:
        raise AttributeError(f"module 'inntheory' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
