"""Samples of lattice theories, generated once by :func:`~inntheory.sampling.sample` on the CPU
and cached as ``.npz`` files of plain arrays and JSON, named by a hash of all that determines
them; a file that cannot be read or does not match raises a ``ValueError`` (never replaced)."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from ._io import atomic_write, load_error
from .sampling import SampleResult, sample
from .theories import LatticeTheory, preset

__all__ = ["cache_path", "default_cache_dir", "load_dataset"]


def default_cache_dir() -> Path:
    """``$INNTHEORY_CACHE`` when set, else ``~/.cache/inntheory``."""
    env = os.environ.get("INNTHEORY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "inntheory"


def _theory(name_or_theory: str | LatticeTheory) -> LatticeTheory:
    if isinstance(name_or_theory, str):
        return preset(name_or_theory)
    if not isinstance(name_or_theory, LatticeTheory):
        raise TypeError("name_or_theory must be a preset name or a LatticeTheory, got "
                        f"{type(name_or_theory).__name__}")
    return name_or_theory


def cache_path(name_or_theory: str | LatticeTheory, n_samples: int, *, seed: int = 0,
               cache_dir: str | os.PathLike | None = None, method: str = "hmc") -> Path:
    """Where :func:`load_dataset` keeps this data set:
    ``<cache_dir>/lattice-<shape>-n<n>-seed<seed>-<method>-<hash>.npz``, the hash (12 hex
    digits of SHA-256) taken over the JSON of parameters, ``n``, seed, method and format."""
    theory = _theory(name_or_theory)
    request = {"format": 1, "parameters": theory.parameters, "n_samples": n_samples,
               "seed": seed, "method": method}
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:12]
    shape = "x".join(map(str, theory.shape))
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return directory / f"lattice-{shape}-n{n_samples}-seed{seed}-{method}-{digest}.npz"


def _read(path: Path, theory: LatticeTheory, n_samples: int, seed: int, method: str
          ) -> SampleResult:
    try:
        with np.load(path, allow_pickle=False) as archive:
            x = archive["x"].copy()
            found = (json.loads(str(archive["parameters"])), x.shape[0], int(archive["seed"]),
                     str(archive["method"]))
            diagnostics = json.loads(str(archive["diagnostics"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"cache file {path} is unreadable or corrupt ({load_error(error)}); "
                         "delete it to regenerate the data set") from error
    expected = (theory.parameters, n_samples, seed, method)
    if found != expected or x.shape != (n_samples, theory.dim):
        raise ValueError(f"cache file {path} holds a different data set (parameters, n, seed, "
                         f"method = {found}, expected {expected}); delete it to regenerate")
    diagnostics.update(cached=True, path=str(path))
    return SampleResult(torch.from_numpy(x), diagnostics)


def load_dataset(name_or_theory: str | LatticeTheory, n_samples: int, *, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, method: str = "hmc",
                 progress: bool = True) -> SampleResult:
    """Samples of a lattice theory, from the cache or freshly generated and then cached.

    Arguments:
        name_or_theory: A key of :data:`~inntheory.theories.PRESETS` or a ``LatticeTheory``.
        n_samples: Number of configurations, ``>= 1``.
        seed, method, progress: As in :func:`~inntheory.sampling.sample` (``"hmc"``/``"mala"``).
        cache_dir: Folder of the cache; :func:`default_cache_dir` when ``None``.

    Returns:
        A :class:`~inntheory.sampling.SampleResult`, ``x: (n_samples, N)`` float64 on the CPU,
        its ``diagnostics`` plus ``cached`` (whether it came from the file) and ``path``.
    """
    theory = _theory(name_or_theory)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    if method not in ("hmc", "mala"):
        raise ValueError(f"method must be 'hmc' or 'mala', got {method!r}")
    path = cache_path(theory, n_samples, seed=seed, cache_dir=cache_dir, method=method)
    if path.exists():
        return _read(path, theory, n_samples, seed, method)
    result = sample(theory, n_samples, method=method, seed=seed, device="cpu", progress=progress)
    with atomic_write(path) as stream:
        np.savez(stream, x=result.x.numpy(), parameters=np.array(json.dumps(theory.parameters)),
                 seed=np.int64(seed), method=np.array(method),
                 diagnostics=np.array(json.dumps(result.diagnostics)))
    result.diagnostics.update(cached=False, path=str(path))
    return result
