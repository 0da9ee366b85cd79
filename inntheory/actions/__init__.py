"""Polynomial actions: the dense representation and the compressed lattice one."""
