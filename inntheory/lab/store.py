"""Results keyed by every setting that produced them: compute once, commit, load anywhere.

An entry is ``{name}-{key}.json`` in a folder, keyed by a hash of the JSON-able settings and
the package version; it holds the JSON-able result, or names a `PolynomialINN` or action saved
beside it with its own ``save`` (no pickles). The settings must hold *every* setting the result
depends on, library defaults included (see `defaults`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from .._io import atomic_write
from ..actions.base import Action, load_action
from ..datasets import load_dataset
from ..model import training
from ..model.inn import PolynomialINN

__all__ = ["cached", "defaults", "entry_path", "lookup", "network_settings", "settings_key",
           "store", "stored_network"]

_STALE = (OSError, ValueError, KeyError, TypeError, RuntimeError, RecursionError)


def _plain(settings: Mapping[str, Any]) -> Any:
    """`settings` as canonical JSON gives them back; TypeError when they are not JSON-able."""
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict, got {type(settings).__name__}")
    try:
        return json.loads(json.dumps(dict(settings), sort_keys=True, allow_nan=False,
                                     separators=(",", ":")))
    except (TypeError, ValueError) as error:
        raise TypeError(f"settings must be JSON-able (str, int, finite float, bool, None, "
                        f"lists and dicts of them): {error}") from error


def settings_key(settings: Mapping[str, Any]) -> str:
    """The 20-hex-digit hash of `settings` and the package version that names an entry."""
    text = json.dumps({"settings": _plain(settings), "version": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def entry_path(settings: Mapping[str, Any], folder: str | os.PathLike, name: str = "result"
               ) -> Path:
    """The JSON file of the entry of `settings` in `folder` (whether or not it exists)."""
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"name must be a plain file-name prefix, got {name!r}")
    return Path(folder) / f"{name}-{settings_key(settings)}.json"


def defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of `function` that are JSON-able (for a complete settings dict)."""
    return {
        parameter.name: parameter.default
        for parameter in inspect.signature(function).parameters.values()
        if isinstance(parameter.default, (str, bool, int, type(None)))
        or (isinstance(parameter.default, float) and math.isfinite(parameter.default))
    }


def _load(path: Path, settings: Mapping[str, Any]) -> Any:
    """The stored result at `path`; ValueError/OSError when it is unreadable or mismatched."""
    try:
        entry = json.loads(path.read_text())
    except RecursionError:
        raise ValueError("its JSON nests too deeply") from None
    if not isinstance(entry, dict):
        raise ValueError(f"it holds a JSON {type(entry).__name__}, not an entry object")
    if entry.get("settings") != _plain(settings):
        raise ValueError("its settings differ from the ones asked for")
    if entry.get("version") != __version__:
        raise ValueError(f"written by version {str(entry.get('version'))[:40]!r}, this is "
                         f"{__version__}")
    kind = entry.get("kind")
    if kind == "json":
        if "value" not in entry:
            raise ValueError("it has no value")
        return entry["value"]
    if not isinstance(kind, str) or not kind.isidentifier():
        raise ValueError(f"unknown kind {str(kind)[:40]!r}")
    if kind == "PolynomialINN":
        return PolynomialINN.load(path.with_suffix(".pt"))
    value = load_action(path.with_suffix(".npz"))
    if type(value).__name__ != kind:
        raise ValueError(f"the entry says {kind!r} but its file holds a "
                         f"{type(value).__name__}")
    return value


def lookup(settings: Mapping[str, Any], folder: str | os.PathLike, *, name: str = "result",
           check: Callable[[Any], None] | None = None) -> tuple[bool, Any]:
    """(True, the stored result of `settings` in `folder`), or (False, None) when there is none.

    An entry unreadable, mismatched or failing `check` (which raises ValueError, KeyError or
    TypeError) counts as none, with a RuntimeWarning naming the file and the cause.
    """
    path = entry_path(settings, folder, name)
    if not path.exists():
        return False, None
    try:
        value = _load(path, settings)
        if check is not None:
            check(value)
    except _STALE as error:
        reason = str(error)
        reason = reason if len(reason) <= 200 else reason[:200] + "..."
        warnings.warn(f"ignoring unreadable stored result {path} ({reason}); recomputing",
                      RuntimeWarning, stacklevel=3)
        return False, None
    return True, value


def store(settings: Mapping[str, Any], value: Any, folder: str | os.PathLike, *,
          name: str = "result") -> Any:
    """Store `value` as the result of `settings` in `folder` atomically; returns it as read
    back. TypeError (nothing written) when the settings or the value cannot be stored."""
    path = entry_path(settings, folder, name)
    entry = {"settings": _plain(settings), "version": __version__, "kind": "json", "value": value}
    if isinstance(value, (PolynomialINN, Action)):
        network = isinstance(value, PolynomialINN)
        value.save(path.with_suffix(".pt" if network else ".npz"))
        entry["kind"] = "PolynomialINN" if network else type(value).__name__
        del entry["value"]
    try:
        text = json.dumps(entry, indent=1, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise TypeError(f"compute() must return a JSON-able value, a PolynomialINN or an "
                        f"action, got {type(value).__name__}: {error}") from error
    with atomic_write(path) as stream:
        stream.write(text.encode() + b"\n")
    return _load(path, settings)


def cached(settings: Mapping[str, Any], compute: Callable[[], Any], folder: str | os.PathLike,
           *, name: str = "result", recompute: bool = False,
           check: Callable[[Any], None] | None = None) -> Any:
    """The stored result of `settings` in `folder`, computing and storing it when missing.

    Arguments:
        settings: every setting the result depends on (a JSON-able dict).
        compute: called without arguments when there is no valid entry or `recompute` is
            set; returns a JSON-able value, a `PolynomialINN` or an action.
        folder: the directory of the entries (created when needed).
        name: file-name prefix of the entry, e.g. the kind of result.
        recompute: call `compute` and overwrite the entry even when one exists.
        check: validates a stored value (see `lookup`).

    Returns:
        The JSON value as read back (lists for tuples), or the loaded object (see `store`).
    """
    if not recompute:
        found, value = lookup(settings, folder, name=name, check=check)
        if found:
            return value
    return store(settings, compute(), folder, name=name)


def network_settings(theory: Any, n_data: int, *, network: Mapping[str, Any] | None = None,
                     train: Mapping[str, Any] | None = None,
                     data: Mapping[str, Any] | None = None, dtype: str = "float64",
                     init_seed: int = 0, **extra: Any) -> dict[str, Any]:
    """Everything that determines a trained network: the settings of its `stored_network`.

    Arguments:
        theory: the `LatticeTheory` whose samples it learns (its `parameters` are stored).
        n_data: the size of the data set drawn with `load_dataset`.
        network, train, data: arguments of `PolynomialINN` (dim defaults to ``theory.dim``),
            `train` and `load_dataset`, completed with their JSON-able defaults of today.
        dtype: "float64" or "float32", the network's parameters.
        init_seed: the torch seed set before the network is built.
        **extra: further JSON-able facts the network depends on (e.g. the training subset).
    """
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return {
        "theory": theory.parameters,
        "n_data": n_data,
        "data": defaults(load_dataset) | dict(data or {}),
        "network": defaults(PolynomialINN) | {"dim": theory.dim} | dict(network or {}),
        "dtype": dtype,
        "init_seed": init_seed,
        "train": defaults(training.train) | dict(train or {}),
        **extra,
    }


def stored_network(settings: Mapping[str, Any], data: Any, folder: str | os.PathLike, *,
                   name: str = "network", recompute: bool = False) -> PolynomialINN:
    """The network of `settings` (made by `network_settings`) from the store in `folder`,
    trained and stored when missing.

    The network is ``PolynomialINN(**settings["network"])`` in ``settings["dtype"]``, built
    after ``torch.manual_seed(settings["init_seed"])`` and trained by ``train(model, data,
    **settings["train"])``; ``training_info["curve"]`` holds its training curve. `data` is the
    samples (n, N), or a function without arguments that returns them when needed; `name`
    and `recompute` are as for `cached`.
    """
    def compute() -> PolynomialINN:
        torch.manual_seed(settings["init_seed"])
        model = PolynomialINN(**settings["network"]).to(getattr(torch, settings["dtype"]))
        samples = data() if callable(data) else data
        history = training.train(model, samples, **settings["train"])
        model.training_info["curve"] = {"step": history.steps, "stage": history.stage,
                                        "train_nll": history.train_nll, "val_nll": history.val_nll}
        return model

    return cached(settings, compute, folder, name=name, recompute=recompute)
