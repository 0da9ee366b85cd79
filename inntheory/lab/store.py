"""Results keyed by every setting that produced them: compute once, commit, load anywhere.

A lecture that needs more training than its time budget allows stores the result of each
setting on disk and reads it back; a button recomputes it on demand. ``cached(settings,
compute, folder)`` returns the stored result of `settings` when there is one and otherwise
calls ``compute()`` and stores what it returns.

The key is a SHA-256 hash of the settings (canonical JSON: sorted keys) and the package
version, so any change of a setting, or a new release, misses the old files instead of
silently reusing them. Each entry is a JSON file ``{name}-{hash}.json`` in `folder` holding
the settings, the version, what kind of result it is and, for JSON-able results, the value
itself. A `PolynomialINN`, `PolynomialAction` or `LatticeAction` result is written with its own
``save`` beside the JSON file (``{name}-{hash}.pt`` / ``.npz``) and read back with its ``load``
(``torch.load(..., weights_only=True)`` for networks). Every write is atomic
(`inntheory._io.atomic_write`); a file that cannot be read, or whose settings do not match the
ones asked for, is reported with a warning and recomputed.

Settings must be JSON-able (str, int, float, bool, None, and lists / dicts of them). Put in
*every* setting the result depends on, the library defaults included: `defaults` lists a
function's JSON-able keyword defaults, e.g. ``defaults(inntheory.train)``.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> cached({"n": 3}, lambda: {"square": 9}, folder)
    {'square': 9}
    >>> cached({"n": 3}, lambda: 1 / 0, folder)   # stored: compute is not called
    {'square': 9}
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

from .. import __version__
from .._io import atomic_write

__all__ = ["cached", "defaults", "entry_path", "settings_key"]

_OBJECT_SUFFIX = {"PolynomialINN": ".pt", "PolynomialAction": ".npz", "LatticeAction": ".npz"}


def _canonical(settings: Mapping[str, Any]) -> str:
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict, got {type(settings).__name__}")
    try:
        return json.dumps(dict(settings), sort_keys=True, allow_nan=False,
                          separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"settings must be JSON-able (str, int, finite float, bool, None, lists and dicts "
            f"of them): {error}"
        ) from error


def settings_key(settings: Mapping[str, Any]) -> str:
    """The 20-hex-digit hash of `settings` and the package version that names an entry."""
    text = json.dumps({"settings": json.loads(_canonical(settings)), "version": __version__},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def entry_path(settings: Mapping[str, Any], folder: str | os.PathLike, name: str = "result"
               ) -> Path:
    """The JSON file of the entry of `settings` in `folder` (whether or not it exists)."""
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"name must be a plain file-name prefix, got {name!r}")
    return Path(folder) / f"{name}-{settings_key(settings)}.json"


def defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of `function` that are JSON-able (for a complete settings dict)."""
    result = {}
    for parameter in inspect.signature(function).parameters.values():
        value = parameter.default
        if value is inspect.Parameter.empty:
            continue
        if isinstance(value, (str, bool, int, type(None))) or (
            isinstance(value, float) and math.isfinite(value)
        ):
            result[parameter.name] = value
    return result


def _object_classes() -> dict[str, Any]:
    from ..actions.dense import PolynomialAction
    from ..actions.lattice import LatticeAction
    from ..model.inn import PolynomialINN

    return {"PolynomialINN": PolynomialINN, "PolynomialAction": PolynomialAction,
            "LatticeAction": LatticeAction}


def _load(path: Path, settings: Mapping[str, Any]) -> Any:
    """The stored result at `path`; ValueError/OSError when it is unreadable or mismatched."""
    entry = json.loads(path.read_text())
    if entry.get("settings") != json.loads(_canonical(settings)):
        raise ValueError("its settings differ from the ones asked for")
    if entry.get("version") != __version__:
        raise ValueError(f"written by version {entry.get('version')}, this is {__version__}")
    kind = entry.get("kind")
    if kind == "json":
        return entry["value"]
    classes = _object_classes()
    if kind not in classes:
        raise ValueError(f"unknown kind {kind!r}")
    return classes[kind].load(path.with_suffix(_OBJECT_SUFFIX[kind]))


def _store(path: Path, settings: Mapping[str, Any], value: Any) -> None:
    entry: dict[str, Any] = {"settings": json.loads(_canonical(settings)),
                             "version": __version__}
    kind = type(value).__name__
    if kind in _OBJECT_SUFFIX and isinstance(value, _object_classes()[kind]):
        value.save(path.with_suffix(_OBJECT_SUFFIX[kind]))
        entry["kind"] = kind
    else:
        entry["kind"] = "json"
        entry["value"] = value
    try:
        text = json.dumps(entry, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"compute() must return a JSON-able value, a PolynomialINN, a PolynomialAction or "
            f"a LatticeAction, got {type(value).__name__}: {error}"
        ) from error
    with atomic_write(path) as stream:
        stream.write(text.encode() + b"\n")


def cached(
    settings: Mapping[str, Any],
    compute: Callable[[], Any],
    folder: str | os.PathLike,
    *,
    name: str = "result",
    recompute: bool = False,
) -> Any:
    """The stored result of `settings` in `folder`, computing and storing it when missing.

    Arguments:
        settings: every setting the result depends on (JSON-able dict); with the package
            version it forms the key.
        compute: called without arguments when there is no (readable) entry, or when
            `recompute` is set; returns a JSON-able value (NaN/inf not allowed), a
            `PolynomialINN`, a `PolynomialAction` or a `LatticeAction`.
        folder: the directory of the entries (created when needed).
        name: file-name prefix of the entry, e.g. the kind of result.
        recompute: call `compute` and overwrite the entry even when one exists.

    Returns:
        The result: the JSON value as read back (lists for tuples), or the loaded object.

    Raises:
        TypeError: settings or result not storable.
    """
    path = entry_path(settings, folder, name)
    if path.exists() and not recompute:
        try:
            return _load(path, settings)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            warnings.warn(f"ignoring unreadable stored result {path} ({error}); recomputing",
                          RuntimeWarning, stacklevel=2)
    value = compute()
    _store(path, settings, value)
    return _load(path, settings)
