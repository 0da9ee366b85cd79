"""Compare actions order by order, and data against model samples cumulant by cumulant.

- :func:`compare` (module `actions`): a true action against learned ones, per order k the
  relative Frobenius error, the error of the local part, the off-diagonal leakage and the
  diagonal means, as a :class:`Comparison` (table, HTML, JSON-able dict, figure).
- :func:`cumulants`, :func:`compare_cumulants` (module `cumulants`): cumulant estimates of
  samples and data against model samples in units of jackknife standard errors.
- `display`: the number formats, tables and figures both share.
"""

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
