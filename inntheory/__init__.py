"""inntheory: learn interacting theories from data.

A teaching kit for Merger et al., Phys. Rev. X 13, 041033 (2023), arXiv:2304.00599: sample
lattice theories, fit a polynomial invertible network, extract its action exactly with the
diagrammatic rules, and compare it with the true one. Public names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_MODULE_NAMES = {
    "actions.dense": ("PolynomialAction",),
    "actions.lattice": ("LatticeAction",),
    "actions.base": ("load_action",),
    "theories": ("LatticeTheory", "preset", "PRESETS"),
    "sampling": ("sample", "SampleResult"),
    "datasets": ("load_dataset",),
    "model.activations": ("make_activation", "ACTIVATIONS"),
    "model.inn": ("PolynomialINN",),
    "model.training": ("train", "TrainingHistory", "resolve_device"),
    "extraction.extract": ("extract_action", "action_history"),
    "comparison": ("compare", "Comparison", "cumulants", "compare_cumulants",
                   "CumulantComparison"),
    "loop": ("normalisable", "close_loop"),
    "baselines": ("score_matching",),
    "diagnostics": ("goodness_of_fit", "GoodnessOfFit", "fisher_divergence"),
    "lab.sweeps": ("sweep", "SweepResult"),
    "lab.store": ("cached", "stored_network", "network_settings"),
}
_PUBLIC = {name: module for module, names in _MODULE_NAMES.items() for name in names}

_SUBMODULES = {name: name for name in ("actions", "model", "extraction", "lab", "theories",
                                       "sampling", "datasets", "comparison", "baselines", "loop",
                                       "diagnostics")}
_SUBMODULES |= {"activations": "model.activations", "diagrams": "extraction.diagrams",
                "store": "lab.store", "sweeps": "lab.sweeps", "widgets": "lab.widgets",
                "cli": "lab.cli"}

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
