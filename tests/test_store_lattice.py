"""`inntheory.lab.store.cached` with `LatticeAction` results (compressed lattice actions)."""

from __future__ import annotations

import json

import torch

import inntheory as it
from inntheory.actions.lattice import LatticeAction
from inntheory.lab import store


def test_lattice_action_round_trip(tmp_path):
    theory = it.preset("unimodal", shape=(4, 4))
    calls = []

    def compute():
        calls.append(1)
        return theory.lattice_coefficients(4)

    settings = {"theory": theory.parameters, "order": 4}
    first = store.cached(settings, compute, tmp_path, name="truth")
    again = store.cached(settings, compute, tmp_path, name="truth")
    assert len(calls) == 1
    assert isinstance(first, LatticeAction) and isinstance(again, LatticeAction)
    truth = theory.lattice_coefficients(4)
    for action in (first, again):
        assert action.shape == truth.shape and action.window == truth.window
        for k in range(1, 5):
            assert torch.equal(action.couplings(k), truth.couplings(k))
    entry = json.loads(store.entry_path(settings, tmp_path, "truth").read_text())
    assert entry["kind"] == "LatticeAction"
    assert store.entry_path(settings, tmp_path, "truth").with_suffix(".npz").exists()


def test_dense_action_entry_is_not_read_as_a_lattice_action(tmp_path):
    """Both kinds use .npz: the kind in the JSON file decides which class reads it."""
    theory = it.preset("unimodal", shape=(3,))
    settings = {"dense": True}
    dense = store.cached(settings, lambda: theory.coefficients(4), tmp_path)
    assert type(dense).__name__ == "PolynomialAction"
    assert json.loads(store.entry_path(settings, tmp_path).read_text())["kind"] == (
        "PolynomialAction")
