"""Shared pytest configuration and fixtures for the inntheory test suite.

tqdm is silenced for the tests and the notebook kernels by the repository-wide
``conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

__all__ = ["REPO_ROOT", "one_thread", "repo_root"]

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``)."""
    return REPO_ROOT


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: small tensors gain nothing from more, the cores
    pytest-xdist uses are not oversubscribed, and results do not depend on the thread count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
