"""Polynomial actions: the protocol (`base`), the dense representation and the compressed
lattice one. Importing the package registers both file formats with `base.load_action`."""

from . import dense, lattice

__all__ = ["dense", "lattice"]
