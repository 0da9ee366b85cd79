"""The exact action of a polynomial INN by the layer-to-layer pull-back (diagrammatic rules)."""

from .dense import action_history, extract_action

__all__ = ["action_history", "extract_action"]
