"""Shared pytest configuration and fixtures for the inntheory test suite.

tqdm is silenced for the tests and the notebook kernels by the repository-wide
``conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["REPO_ROOT", "repo_root"]

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``)."""
    return REPO_ROOT
