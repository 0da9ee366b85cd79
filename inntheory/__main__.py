"""``python -m inntheory``: the ``inntheory`` command line (see :mod:`inntheory.lab.cli`)."""

from __future__ import annotations

import sys

from .lab.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
