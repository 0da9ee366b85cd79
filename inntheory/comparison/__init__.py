"""Compare actions order by order (:func:`compare`, module `actions`) and data against model
samples cumulant by cumulant (:func:`compare_cumulants`, module `cumulants`)."""

from .actions import Comparison, ComparisonRow, CompressedComparison, compare
from .cumulants import CumulantComparison, CumulantRow, compare_cumulants, cumulants

__all__ = [
    "Comparison",
    "ComparisonRow",
    "CompressedComparison",
    "CumulantComparison",
    "CumulantRow",
    "compare",
    "compare_cumulants",
    "cumulants",
]
