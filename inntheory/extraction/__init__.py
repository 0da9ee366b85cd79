"""The exact action of a polynomial INN by the layer-to-layer pull-back (diagrammatic rules).

`extract` holds the entry points, `pullback` the algorithm, `dense` and `lattice` its two
backends, `diagrams` the catalogue of the activation step, `cost` the estimate of its cost.
"""

from .cost import extraction_cost
from .extract import action_history, extract_action

__all__ = ["action_history", "extract_action", "extraction_cost"]
