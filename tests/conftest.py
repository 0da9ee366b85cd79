"""Shared pytest configuration and fixtures for the inntheory test suite.

Importing this module sets ``TQDM_DISABLE=1`` (unless already set) so that tqdm progress bars
stay silent in the tests and in the nbval notebook kernels, which inherit the environment of
the pytest worker that starts them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["REPO_ROOT", "repo_root"]

os.environ.setdefault("TQDM_DISABLE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``)."""
    return REPO_ROOT
