"""Every public name of the kit is importable from `inntheory` directly."""

from __future__ import annotations

import importlib

import pytest

import inntheory


@pytest.mark.parametrize("name", inntheory.__all__)
def test_public_name_resolves_to_its_module_attribute(name):
    value = getattr(inntheory, name)
    module = importlib.import_module(f"inntheory.{inntheory._PUBLIC[name]}")
    assert value is getattr(module, name)
    assert name in module.__all__


def test_submodules_are_reachable_as_attributes_and_unknown_names_are_errors():
    diagrams = importlib.import_module("inntheory.extraction.diagrams")
    assert inntheory.diagrams.catalogue is diagrams.catalogue
    assert inntheory.diagnostics.goodness_of_fit is inntheory.goodness_of_fit
    assert {"goodness_of_fit", "GoodnessOfFit", "fisher_divergence"} <= set(inntheory.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        inntheory.nonexistent  # noqa: B018
