"""The exact action of a polynomial INN by the layer-to-layer pull-back: entry points
(`extract`), algorithm (`pullback`), backends (`dense`, `lattice`), `diagrams`, `cost`."""

from .cost import extraction_cost
from .extract import action_history, extract_action

__all__ = ["action_history", "extract_action", "extraction_cost"]
