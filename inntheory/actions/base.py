"""The action protocol: S(x0 + d) = A^(0) + sum_{k=1}^{K} (1/k!) A^(k)_{i1..ik} d_i1 ... d_ik,
A^(k) symmetric of shape (N,)*k (METHOD.md). A representation stores each A^(k) in its own form,
`tensor(k)`, one stored entry standing for `multiplicity` dense entries (1 dense; N for a
`LatticeAction`), so ||A^(k)|| = sqrt(multiplicity) ||tensor(k)||.

Files are `.npz` archives; a `format` array names the representation (none: dense).
`load_action` reads any format a subclass registered by setting the class attribute `format`.
"""

from __future__ import annotations

import abc
import functools
import json
import math
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .. import _checks as checks
from .._io import atomic_write, load_error

__all__ = ["FORMATS", "Action", "configurations", "load_action", "real_tensor"]

FORMATS: dict[str, type[Action]] = {}
"""The registered action file formats: format tag -> class (its `load` reads the file)."""

DENSE_FORMAT = "inntheory.PolynomialAction"
SYMMETRY_RTOL = 1e-8


def quote(text: Any) -> str:
    """repr(text), cut to about 100 characters for an error message."""
    shown = repr(text)
    return shown if len(shown) <= 100 else f"{shown[:100]}... ({len(shown)} characters)"


def real_tensor(value: Any, name: str) -> torch.Tensor:
    """`value` as a finite real tensor (integers become the default float dtype); TypeError
    for anything but real numbers, ValueError for NaN or inf entries."""
    try:
        tensor = value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} must be an array of real numbers") from error
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or inf entries")
    return tensor


def common_dtype(tensors: Mapping[Any, torch.Tensor]) -> tuple[torch.dtype, torch.device]:
    """The promoted dtype of `tensors` (at least the default dtype) and the first one's device."""
    dtypes = (tensor.dtype for tensor in tensors.values())
    return (functools.reduce(torch.promote_types, dtypes, torch.get_default_dtype()),
            next(iter(tensors.values())).device)


def real_array(array: np.ndarray, name: str) -> np.ndarray:
    """An array read from a file as float64 when it holds real numbers, else ValueError."""
    if array.dtype == np.bool_ or array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def configurations(
    x: Any, dim: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, bool]:
    """(n, dim) or (dim,) -> ((n, dim) in `dtype` on `device`, whether x was one configuration);
    ValueError naming a wrong shape or NaN/inf entries."""
    x = torch.as_tensor(x, device=device)
    if not x.is_floating_point():
        x = x.to(dtype)
    single = x.dim() == 1
    if single:
        x = x.unsqueeze(0)
    if x.dim() != 2 or x.shape[1] != dim:
        shape = tuple(x.shape[1:]) if single else tuple(x.shape)
        raise ValueError(f"x must have shape (n, {dim}) or ({dim},), got {shape}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf entries")
    return x.to(dtype), single


def check_order(k: Any, highest: int) -> int:
    """An order 1 <= k <= highest as an int, or ValueError."""
    k = checks.check_order(k)
    if k > highest:
        raise ValueError(f"this action has orders up to {highest}; A^({k}) is not known")
    return k


def check_orders(keys: Any, what: str, symbol: str) -> list[int]:
    """The sorted keys of a non-empty {order k >= 1: tensor} mapping, or ValueError."""
    if not isinstance(keys, Mapping) or not keys:
        raise ValueError(f"{what}s must be a non-empty mapping {{order k >= 1: {symbol}}}")
    for k in keys:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"{what} orders must be integers >= 1, got {k!r}")
    return sorted(int(k) for k in keys)


def _check_declared_sizes(path: Path) -> None:
    """ValueError for a member whose header declares more bytes than it holds, or pickles
    (read from the headers, before any array is built)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(stream)
            if dtype.hasobject:
                raise ValueError(f"member {quote(info.filename)} holds pickled Python objects "
                                 "(never loaded)")
            declared = math.prod(shape) * dtype.itemsize
            if declared > info.file_size:
                raise ValueError(f"member {quote(info.filename)} declares shape {quote(shape)} "
                                 f"({declared} bytes) but holds {info.file_size} bytes")


def _read(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """The format tag (dense when the file has none) and the other arrays of an action file,
    read safely (no pickles, sizes checked before reading); FileNotFoundError, or ValueError
    naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no action file at {path}")
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("it is not an .npz archive")
        _check_declared_sizes(path)
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, SyntaxError) as error:
        raise ValueError(f"{path} is not a readable action file: {load_error(error)}"
                         ) from error
    not_arrays = sorted(name for name, value in arrays.items()
                        if not isinstance(value, np.ndarray))
    if not_arrays:  # members of a zip that are not .npy files, e.g. a torch archive
        raise ValueError(
            f"{path} is not an action file: it holds non-array members "
            f"({', '.join(quote(n) for n in not_arrays[:3])}"
            f"{', ...' if len(not_arrays) > 3 else ''}); a model file (.model.pt) is read "
            "with PolynomialINN.load"
        )
    tag = arrays.pop("format", np.array(DENSE_FORMAT))
    if tag.shape != () or tag.dtype.kind != "U":
        raise ValueError(f"{path} is not a valid action file: format must be a string, got "
                         f"dtype {tag.dtype} and shape {tag.shape}")
    return str(tag), arrays


def metadata_from(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Pop and parse the `metadata` JSON string of an archive ({} when absent)."""
    if "metadata" not in arrays:
        return {}
    text = arrays.pop("metadata")
    if text.shape != () or text.dtype.kind != "U":
        raise ValueError(f"metadata must be a JSON string, got an array of dtype "
                         f"{text.dtype} and shape {text.shape}")
    try:
        metadata = json.loads(str(text))
    except RecursionError:
        raise ValueError("metadata nests too deeply to be read") from None
    except ValueError as error:
        raise ValueError(f"metadata is not valid JSON ({error})") from error
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    return metadata


def load_action(path: str | os.PathLike) -> Action:
    """Read any saved action as the class registered for its format tag (a file without a
    tag as a dense `PolynomialAction`); FileNotFoundError, or ValueError naming the file and
    the problem."""
    tag, arrays = _read(path)
    if tag not in FORMATS:
        raise ValueError(f"{path} has the unknown action format {quote(tag)}; known: "
                         f"{', '.join(sorted(FORMATS))}")
    return FORMATS[tag]._parse(arrays, Path(path))


def numbered(arrays: dict[str, np.ndarray], letter: str, word: str) -> dict[int, torch.Tensor]:
    """{k: float64 tensor} of the arrays named `letter` k (A1, A2, ...); ValueError for a name
    with a leading zero or k = 0, or for none."""
    found = {}
    for name in sorted(arrays):
        if name[:1] != letter or not name[1:].isdigit():
            continue
        if not re.fullmatch("[1-9][0-9]*", name[1:]):
            raise ValueError(f"array {quote(name)} is not a {word} name; the orders are named "
                             f"{letter}1, {letter}2, ... (no leading zeros, no {letter}0)")
        found[int(name[1:])] = torch.from_numpy(real_array(arrays[name], name))
    if not found:
        raise ValueError(f"it holds no {word} arrays {letter}1, {letter}2, ...")
    return found


def scalar(arrays: dict[str, np.ndarray], name: str) -> float:
    """The single real number stored as `name` (0 when absent), or ValueError."""
    value = arrays.get(name, np.float64(0.0))
    if np.shape(value) != ():
        raise ValueError(f"{name} must be a single number, got shape {np.shape(value)}")
    return float(real_array(value, name))


class Action(abc.ABC):
    """A polynomial action S(x0 + d) = A0 + sum_k (1/k!) A^(k) d...d (module docstring).

    A subclass stores the tensors in its own form, implements the abstract members and
    registers its file format by setting `format`. Every action is a target for
    `inntheory.sample` (`dim`, `action`, `grad` on batches (n, N)).

    Attributes:
        constant: A^(0), the value of S at the point (normalisation; never compared).
        metadata: JSON-able facts about where the action came from.
    """

    format: ClassVar[str] = ""
    constant: float
    metadata: dict[str, Any]
    _tensors: dict[int, torch.Tensor]  # the stored tensors, {order: tensor}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.format:
            FORMATS[cls.format] = cls

    def _set_constant(self, constant: Any, metadata: Mapping[str, Any] | None) -> None:
        if not math.isfinite(float(constant)):
            raise ValueError("constant must be finite")
        self.constant = float(constant)
        self.metadata = dict(metadata or {})

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Number of degrees of freedom N."""

    @property
    @abc.abstractmethod
    def point(self) -> torch.Tensor:
        """The expansion point x0, (N,)."""

    @property
    @abc.abstractmethod
    def multiplicity(self) -> int:
        """Entries of the dense A^(k) that one stored entry stands for."""

    def items(self) -> list[tuple[int, torch.Tensor]]:
        """(k, stored tensor of order k) for the stored orders, ascending."""
        return sorted(self._tensors.items())

    @abc.abstractmethod
    def tensor(self, k: int) -> torch.Tensor:
        """The stored tensor of order k (zeros for an absent order <= K)."""

    @abc.abstractmethod
    def coefficient(self, k: int) -> torch.Tensor:
        """The dense symmetric tensor A^(k), shape (N,)*k."""

    @abc.abstractmethod
    def diagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        """The entries of a stored tensor (of this layout) on the diagonal i1 = .. = ik."""

    @abc.abstractmethod
    def offdiagonal_entries(self, stored: torch.Tensor) -> torch.Tensor:
        """A stored tensor (of this layout) with its diagonal entries set to zero."""

    @abc.abstractmethod
    def to_dense(self) -> Any:
        """The same action as a dense `PolynomialAction`."""

    @abc.abstractmethod
    def _with(self, tensors: dict[int, torch.Tensor], constant: float = 0.0,
              metadata: Mapping[str, Any] | None = None) -> Action:
        """An action of this layout and point holding the stored `tensors` (not checked)."""

    @abc.abstractmethod
    def fields(self, d: torch.Tensor) -> dict[int, torch.Tensor]:
        """G_k = A^(k) d...d with one leg left open, (n, N) per stored order, for d: (n, N):
        dS/dx = sum_k G_k / (k-1)! and S = A0 + sum_k d . G_k / k!."""

    @abc.abstractmethod
    def spectrum(self) -> torch.Tensor:
        """The eigenvalues of the dense A^(2), (N,)."""

    @abc.abstractmethod
    def arrays(self) -> dict[str, Any]:
        """The arrays `save` writes besides `metadata` (and `format` for tagged formats)."""

    @classmethod
    @abc.abstractmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Action:
        """The action held by the arrays of a file (`metadata` included, `format` removed);
        ValueError or TypeError naming what is wrong."""

    @classmethod
    def _parse(cls, arrays: dict[str, np.ndarray], path: Path) -> Action:
        try:
            return cls.from_arrays(dict(arrays))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path} is not a valid action file: {error}") from error

    def aligned(self, others: Sequence[Action]) -> list[Action] | None:
        """This action and `others` in one common stored layout (same `tensor(k)` shapes and
        meaning), or None when there is none but the dense one. The default: none."""
        return None

    @property
    def orders(self) -> tuple[int, ...]:
        """Orders with a stored tensor, ascending."""
        return tuple(k for k, _ in self.items())

    @property
    def order(self) -> int:
        """Highest order K present."""
        return max(self.orders)

    @property
    def dtype(self) -> torch.dtype:
        return self.items()[0][1].dtype

    @property
    def device(self) -> torch.device:
        return self.items()[0][1].device

    def diagonal(self, k: int) -> torch.Tensor:
        """The local part A^(k)_{i..i}, shape (N,)."""
        return self.diagonal_entries(self.tensor(k)).expand(self.dim).clone()

    def homogeneous(self, k: int) -> Action:
        """The order-k part alone, A^(k) (same point and layout, constant 0)."""
        return self._with({k: self.tensor(k)})

    def truncate(self, order: int) -> Action:
        """The same action with the orders above `order` dropped."""
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        kept = {k: t for k, t in self.items() if k <= order}
        return self._with(kept or {1: torch.zeros_like(self.tensor(1))}, self.constant,
                          self.metadata)

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> Action:
        """A copy on another device and/or in another floating dtype."""
        return self._with({k: t.to(device=device, dtype=dtype) for k, t in self.items()},
                          self.constant, self.metadata)

    def stored_norm(self, stored: torch.Tensor) -> float:
        """sqrt(multiplicity) * ||stored||: the Frobenius norm of the dense tensor that `stored`
        (of this layout) stands for; may overflow, unlike `dense_norm`."""
        return math.sqrt(self.multiplicity) * float(torch.linalg.vector_norm(stored))

    def dense_norm(self, stored: torch.Tensor) -> float:
        """`stored_norm` free of overflow and underflow: max|T| * stored_norm(T / max|T|)."""
        scale = float(stored.abs().max()) if stored.numel() else 0.0
        if scale == 0.0 or not math.isfinite(scale):
            return scale
        return scale * self.stored_norm(stored / scale)

    def norm(self, k: int) -> float:
        """||A^(k)||, the Frobenius norm of the dense tensor (free of overflow)."""
        return self.dense_norm(self.tensor(k))

    def diagonal_norm(self, k: int) -> float:
        """||diag A^(k)|| over the local entries i1 = .. = ik (free of overflow)."""
        return self.dense_norm(self.diagonal_entries(self.tensor(k)))

    def offdiagonal_norm(self, k: int) -> float:
        """||offdiag A^(k)||, everything but the local entries (free of overflow)."""
        return self.dense_norm(self.offdiagonal_entries(self.tensor(k)))

    def _deviations(self, x: Any) -> tuple[torch.Tensor, bool]:
        x, single = configurations(x, self.dim, self.dtype, self.device)
        return x - self.point, single

    def action(self, x: Any) -> torch.Tensor:
        """S(x) for a batch x: (n, N) -> (n,) (or a scalar for x: (N,))."""
        d, single = self._deviations(x)
        value = torch.full(d.shape[:1], self.constant, dtype=self.dtype, device=self.device)
        for k, field in self.fields(d).items():
            value = value + (d * field).sum(dim=1) / math.factorial(k)
        return value[0] if single else value

    def __call__(self, x: Any) -> torch.Tensor:
        return self.action(x)

    def grad(self, x: Any) -> torch.Tensor:
        """dS/dx for a batch: (n, N) -> (n, N) (or (N,) for x: (N,))."""
        d, single = self._deviations(x)
        gradient = torch.zeros_like(d)
        for k, field in self.fields(d).items():
            gradient = gradient + field / math.factorial(k - 1)
        return gradient[0] if single else gradient

    def _numbered(self, letter: str) -> dict[str, Any]:
        """The stored tensors as float64 arrays named `letter` k."""
        return {f"{letter}{k}": t.detach().cpu().double().numpy() for k, t in self.items()}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the action to an `.npz` file atomically (`arrays()`, `metadata` as a JSON
        string, and `format` unless dense); returns the path (`.npz` appended when missing)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        try:
            metadata = json.dumps(self.metadata)
        except TypeError as error:
            raise ValueError(f"metadata must be JSON-serialisable: {error}") from error
        arrays = self.arrays()
        arrays["metadata"] = np.array(metadata)
        if self.format != DENSE_FORMAT:
            arrays["format"] = np.array(self.format)
        with atomic_write(path) as stream:
            np.savez(stream, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Action:
        """Read an action of this class written by `save` (no pickles are loaded);
        FileNotFoundError, or ValueError naming the file and the problem."""
        tag, arrays = _read(path)
        if tag != cls.format:
            raise ValueError(f"{path} is not a {cls.__name__} file (format {quote(tag)}); "
                             "read it with inntheory.load_action")
        return cls._parse(arrays, Path(path))

    def __repr__(self) -> str:
        source = self.metadata.get("source")
        origin = f", source={source!r}" if source else ""
        return f"{type(self).__name__}({self._describe()}{origin})"

    def _describe(self) -> str:
        return f"dim={self.dim}, orders={self.orders}"
