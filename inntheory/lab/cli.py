"""The ``inntheory`` command: ``demo``, ``fit``, ``sample`` and ``compare``.

A user error ends with one line ``inntheory: error: ...`` on stderr and status 1 (2 for usage),
checked before the work where it can be; anything else is a bug and shows its traceback.
Outputs are claimed with lock files and written atomically as one unit. The library and torch
load only once the arguments and inputs have been checked.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import signal
import stat
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np

import inntheory as it

from .._io import atomic_write_all, claim, load_error, name_error
from .._memory import available_bytes

__all__ = ["CLIError", "SAMPLES_PER_PARAMETER", "build_parser", "load_data", "main",
           "recommended_samples"]

SAMPLES_PER_PARAMETER = 10
"""``fit`` warns below this many samples per trainable parameter of the network."""

_DATA_FORMATS = (".npy", ".npz", ".csv")
# fit refuses an extraction beyond these (see inntheory.extraction.extraction_cost)
_MAX_PLACEMENTS = 500_000
_MAX_EXTRACTION_SECONDS = 600.0
_SHOWN_ROWS = 5
_MAX_RANK_COLUMNS = 512  # fit checks data up to this width for an exactly degenerate direction
_DEGENERATE = 1e-10  # ... where the smallest singular value is below this share of the largest
_MAX_MESSAGE = 600  # longer error lines are elided in the middle
_QUOTED = 100  # at most this many characters of user content quoted in a message
_LIVE_CHAIN_COPIES = 16  # (n_chains, N) tensors alive at once in an HMC step, rounded up
_NPY_MAGIC = b"\x93NUMPY"
_COUPLINGS = ("m2", "kappa", "g3", "g4")

# The demo: full run (about a minute on two cores) and --quick (seconds, used by the tests).
_DEMO = {
    False: {"shape": [8], "n_samples": 10000, "depth": 2, "steps": 1500, "burn_in": 400},
    True: {"shape": [4], "n_samples": 1000, "depth": 2, "steps": 150, "burn_in": 60},
}
_DEMO_FILES = ("comparison.png", "loss.png", "summary.json", "true_action.npz",
               "learned_action.npz", "score_matching_action.npz")


class CLIError(Exception):
    """A user error, printed as one line ``inntheory: error: <message>``; `code` is the exit
    status, 1 (bad data, runtime problem) or 2 (usage)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("inntheory").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"inntheory: error: {where}{message} (see '{self.prog} --help')\n")


class _LibraryNames:
    """A library registry's keys (``ACTIVATIONS``, ``PRESETS``) as lazily imported choices."""

    def __init__(self, registry: str) -> None:
        self.registry = registry

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(getattr(it, self.registry)))

    def __contains__(self, name: object) -> bool:
        return name in getattr(it, self.registry)


class _LatticeShape(argparse.Action):
    """``L`` or ``L1 L2``: a periodic lattice of one or two axes (more is a usage error)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if len(values) > 2:
            parser.error(f"{option_string} takes L or L1 L2 (a lattice of one or two axes), "
                         f"got {len(values)} sizes")
        setattr(namespace, self.dest, values)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


@contextlib.contextmanager
def _user_error(prefix: str = "", code: int = 1,
                errors: type[Exception] | tuple[type[Exception], ...] = ValueError
                ) -> Iterator[None]:
    """`errors` raised by the body (the library's refusals) as a CLIError of one line."""
    try:
        yield
    except errors as error:
        raise CLIError(prefix + _one_line(error), code) from error


def _checked(convert: Callable[[str], Any], valid: Callable[[Any], bool], wording: str,
             invalid: str | None = None) -> Callable[[str], Any]:
    """An argparse type: `convert(text)` where `valid`, else a usage error "expected ..."."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"expected {invalid or wording}, got {text}")
        return value

    return parse


_positive_int = _checked(int, lambda value: value >= 1, "a positive integer")
_non_negative_int = _checked(int, lambda value: value >= 0, "an integer >= 0")
_seed = _checked(int, lambda value: 0 <= value < 2**63, "an integer seed",
                 f"a seed from 0 to 2^63 - 1 = {2**63 - 1}")
_finite_float = _checked(float, math.isfinite, "a number", "a finite number")


# -- data ---------------------------------------------------------------------------------------
def recommended_samples(parameters: int) -> int:
    """The rows `fit` wants: `SAMPLES_PER_PARAMETER` per trainable parameter of the network."""
    return SAMPLES_PER_PARAMETER * parameters


def _short(text: object, limit: int = _QUOTED) -> str:
    """User content (a name read from a file, a value) for a message, its middle elided."""
    text = str(text)
    if len(text) > limit:
        text = f"{text[:limit // 2]}...{text[-(limit // 2):]} ({len(text)} characters)"
    return text


def _listed(items: Sequence[object]) -> str:
    """The first few `items` (names, row or column indices) for a message."""
    shown = ", ".join(_short(item, 40) for item in items[:_SHOWN_ROWS])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOWN_ROWS else "")


def _count(value: float) -> str:
    """A count or estimate for a message: 3 digits, or "more than 1e308" past the float range."""
    return f"{value:.3g}" if math.isfinite(value) else "more than 1e308"


def _check_memory(needed: float, problem: str, remedy: str = "", device: Any = None) -> None:
    """Refuse work of `needed` bytes, more than half the memory available (on `device`)."""
    available = available_bytes(device)
    if needed > available // 2:
        raise CLIError(f"{problem} {_count(needed / 2**30)} GiB, more than half the available "
                       f"memory ({available / 2**30:.3g} GiB){remedy}")


def _check_npy_header(stream: BinaryIO, size: int, what: str) -> None:
    """Refuse, from the header of the .npy `stream` of `size` bytes alone, a declared shape
    those bytes cannot hold or values (with their float64 copy) beyond half the memory."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(stream)
        readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
        if version not in readers:
            raise CLIError(f"cannot read {what}: unsupported .npy format version {version}")
        shape, _, dtype = readers[version](stream)
    except ValueError as error:
        raise CLIError(f"cannot read {what}: {_short(_one_line(error))}") from error
    if dtype.hasobject:
        raise CLIError(f"cannot read {what}: {load_error(ValueError('object arrays'))}")
    count = math.prod(shape)
    declared, held = count * dtype.itemsize, size - stream.tell()
    described = f"declares shape {tuple(shape)} of {dtype} ({declared / 2**30:.3g} GiB)"
    if declared > held:
        raise CLIError(f"cannot read {what}: its header {described} but it holds {held} bytes "
                       "of data; the file is truncated or damaged")
    _check_memory(declared + 8 * count,
                  f"cannot read {what}: it {described}; with its float64 copy that needs")


def _from_npy(path: Path) -> np.ndarray:
    with path.open("rb") as stream:
        if stream.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise CLIError(f"cannot read {path}: not a .npy file (no NumPy header)")
        stream.seek(0)
        _check_npy_header(stream, path.stat().st_size, str(path))
    return np.load(path, allow_pickle=False)


def _from_npz(path: Path, array: str | None) -> np.ndarray:
    with zipfile.ZipFile(path) as archive:
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        names = list(members)
        if array is None and len(names) != 1:
            raise CLIError(f"{path} holds {len(names)} arrays ({_listed(names) or 'none'}); "
                           "choose one with --array")
        array = names[0] if array is None else array
        if array not in names:
            raise CLIError(f"{path} has no array {_short(array)!r}; it holds: {_listed(names)}")
        with archive.open(members[array]) as stream:
            _check_npy_header(stream, members[array].file_size,
                              f"{path} (array {_short(array)!r})")
    with np.load(path, allow_pickle=False) as arrays:
        return arrays[array]


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _from_csv(path: Path) -> np.ndarray:
    skip = 0
    with path.open(encoding="utf-8-sig") as stream:  # -sig: a byte-order mark is not data
        for number, line in enumerate(stream, start=1):
            content = line.split("#", 1)[0].strip()
            if content:
                # a header has no numeric field (``1.5,abc`` is data with a NaN field)
                if not any(_is_number(field) for field in content.split(",")):
                    skip = number
                break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty file is reported below as "no rows"
        return np.genfromtxt(
            path, delimiter=",", skip_header=skip, dtype=np.float64, comments="#", ndmin=2,
            encoding="utf-8-sig",
        )


def _check_regular_file(path: Path, what: str) -> None:
    """Refuse a `path` that is missing or not a regular file (a folder, FIFO or device)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except OSError as error:
        raise CLIError(f"cannot read {path}: {error.strerror or type(error).__name__}"
                       ) from error
    if stat.S_ISDIR(mode):
        raise CLIError(f"{path} is a folder, not a {what}")
    if not stat.S_ISREG(mode):
        raise CLIError(f"{path} is not a regular file (a FIFO, socket or device); give a {what}")


def load_data(path: str | Path, array: str | None = None) -> np.ndarray:
    """Read samples x: (n, N), one configuration per row, as float64, and check them.

    `path` is a ``.npy`` file, a ``.npz`` archive (its array `array`, or its only array) or a
    ``.csv`` file (comma-separated; a first line without any numeric field is a header; empty
    or non-numeric fields count as NaN). CLIError when the file cannot be read or its data
    are not finite real rows.
    """
    path = Path(path)
    _check_regular_file(path, "data file")
    suffix = path.suffix.lower()
    if suffix not in _DATA_FORMATS:
        raise CLIError(f"{path}: unknown data format {suffix or '(none)'!r}; use .npy, .npz "
                       "or .csv")
    if array is not None and suffix != ".npz":
        raise CLIError(f"--array applies to .npz archives, but {path} is {suffix}", code=2)
    readers = {".npy": _from_npy, ".npz": lambda path: _from_npz(path, array), ".csv": _from_csv}
    try:
        raw = readers[suffix](path)
    except (OSError, ValueError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as error:
        raise CLIError(f"cannot read {path}: {load_error(error)}") from error
    if raw.dtype.kind not in "iuf":  # signed, unsigned integers or floats
        raise CLIError(f"{path}: the data must be real numbers, got dtype {raw.dtype}")
    if raw.ndim != 2:
        raise CLIError(f"{path}: the data must be 2-D, one configuration per row (n, N), got "
                       f"shape {raw.shape}; flatten each configuration, e.g. "
                       "x.reshape(len(x), -1)")
    if raw.shape[0] == 0 or raw.shape[1] == 0:
        raise CLIError(f"{path}: no data (shape {raw.shape})")
    with np.errstate(over="ignore"):
        x = raw.astype(np.float64)
    overflowed = np.flatnonzero((np.isfinite(raw) & ~np.isfinite(x)).any(axis=1))
    if overflowed.size:
        raise CLIError(f"{path}: {overflowed.size} of {x.shape[0]} rows hold values beyond the "
                       f"float64 range (|x| > {np.finfo(np.float64).max:.4g}, overflow when "
                       f"converting from {raw.dtype}), 0-based row indices "
                       f"{_listed(overflowed.tolist())}; rescale the data")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        why = " (empty or non-numeric fields read as NaN)" if suffix == ".csv" else ""
        raise CLIError(f"{path}: {bad.size} of {x.shape[0]} rows contain NaN or inf{why}, "
                       f"0-based row indices {_listed(bad.tolist())}; remove or repair them")
    return x


def _output(text: str, what: str, suffixes: Sequence[str], *, default: str | None = None,
            append_always: bool = False) -> Path:
    """The file named by option `what` (``--out``): not empty, not a folder, ending in one of
    `suffixes` (lower case, matched in any case). `default` is appended to a name without a
    suffix (to any other name when `append_always`), so that the checks see the real file."""
    if not text.strip():
        raise CLIError(f"{what} is empty; give a file name")
    path = Path(text)
    if text.endswith(("/", os.sep)) or not path.name:
        raise CLIError(f"{what} {text} is a folder; give a file name")
    _check_name(path)
    if path.is_dir():
        raise CLIError(f"{what} {text} is a folder; give a file name")
    appended = append_always or not path.suffix
    if default is not None and path.suffix.lower() not in suffixes and appended:
        path = path.with_name(path.name + default)
    if path.suffix.lower() not in suffixes:
        listed = ", ".join(suffixes[:-1]) + (" or " if len(suffixes) > 1 else "") + suffixes[-1]
        raise CLIError(f"{what} must end in {listed}, got {_short(path.name)!r}")
    _check_name(path)
    return path


def _check_name(path: Path) -> None:
    """Refuse a name too long for the file system, with the names derived from it."""
    problem = name_error(path)
    if problem is not None:
        raise CLIError(f"cannot write {_short(path)}: {problem}")


def _check_writable(path: Path) -> None:
    """Refuse `path` unless the nearest existing folder above it accepts a new file (a probe
    is created there: permission bits alone do not tell for root or a read-only mount)."""
    _check_name(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise CLIError(f"cannot write {path}: {folder} is not a folder")
    try:  # an unnamed file where the system has them: a signal leaves nothing behind
        with tempfile.TemporaryFile(dir=folder, prefix=".inntheory-probe-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise CLIError(f"cannot write {path}: the folder {folder} is not writable ({reason})"
                       ) from error


def _check_outputs(paths: Sequence[Path], force: bool, inputs: Sequence[Path] = ()) -> None:
    """Every output is writable, none is one of `inputs`, and none exists (a dangling
    symbolic link included) unless `force`."""
    for path in paths:
        if path.is_dir():
            raise CLIError(f"output {path} is a directory")
        _check_writable(path)
        for source in inputs:
            if path.absolute() == source.absolute() or (
                path.exists() and source.exists() and path.samefile(source)
            ):
                raise CLIError(f"output {path} is the input {source}; it would be replaced, "
                               "give another --out")
    for path in paths:
        if path.is_symlink() and not path.exists() and not force:
            raise CLIError(f"output {path} exists (a symbolic link to a missing "
                           f"{_short(os.readlink(path))}); pass --force to overwrite it")
        if path.exists() and not force:
            raise CLIError(f"output {path} exists; pass --force to overwrite it")


@contextlib.contextmanager
def _claimed(paths: Sequence[Path], force: bool, inputs: Sequence[Path] = ()
             ) -> Iterator[None]:
    """Check the outputs (`_check_outputs`, again once locked) and hold their lock files."""
    _check_outputs(paths, True, inputs)
    with contextlib.ExitStack() as stack:
        with _user_error(errors=FileExistsError):
            stack.enter_context(claim(paths))
        _check_outputs(paths, force, inputs)
        yield


@contextlib.contextmanager
def _writing(paths: Sequence[Path], lost: str = "", names: str = "") -> Iterator[list[Path]]:
    """`atomic_write_all(paths)`, a failure (a full disk, a file that cannot be replaced) as
    one line naming the files (or `names`)."""
    try:
        with atomic_write_all(paths) as temporaries:
            yield temporaries
    except OSError as error:
        names = names or " and ".join(str(path) for path in paths)
        earlier = "any earlier files are" if len(paths) > 1 else "any earlier file is"
        raise CLIError(f"cannot write {names} ({_one_line(error)}); none was written, "
                       f"{earlier} unchanged{lost}") from error


def _device(name: str) -> Any:
    with _user_error():
        return it.resolve_device(name)


def _json_safe(value: Any) -> Any:
    """Nested dicts/lists with non-finite floats as None and numpy/torch scalars as Python."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- fit -----------------------------------------------------------------------------------------
def _build_model(dim: int, args: argparse.Namespace) -> Any:
    """The float64 network `fit` trains on N = `dim` columns, seeded by --seed."""
    import torch

    lattice = tuple(args.lattice) if args.lattice else None
    if lattice is not None and math.prod(lattice) != dim:
        raise CLIError(f"--lattice {' x '.join(map(str, lattice))} has {math.prod(lattice)} "
                       f"sites but the data have N = {dim} columns")
    torch.manual_seed(args.seed)
    with _user_error():
        return it.PolynomialINN(dim, args.depth, activation=args.activation, lattice=lattice,
                                kernel_radius=args.kernel_radius, odd=args.odd).double()


def _train_and_extract(model: Any, x: np.ndarray, point: np.ndarray, *, order: int,
                       steps: int, polish: bool | str, args: argparse.Namespace, device: Any
                       ) -> tuple[Any, Any, dict[str, float]]:
    """Train `model` on x: (n, N) (with --seed and --quiet) and extract its action at `point`:
    (N,); returns the TrainingHistory, the action and the seconds of both stages."""
    import torch

    start = time.perf_counter()
    with _user_error("training failed: "):
        history = it.train(model, x, steps=steps, seed=args.seed, device=device,
                           progress=not args.quiet, polish=polish)
    trained = time.perf_counter()
    with _user_error("cannot extract the action: ", errors=(ValueError, MemoryError)):
        action = it.extract_action(model, order=order, point=torch.from_numpy(point))
    return history, action, {"train": trained - start, "extract": time.perf_counter() - trained}


def _check_extraction_cost(dim: int, args: argparse.Namespace, device: Any,
                           compressed: bool) -> None:
    """Refuse an extraction (`compressed` for a lattice model) too costly in time or memory."""
    order, depth, activation = args.order, args.depth, args.activation
    cost = it.extraction.extraction_cost(
        dim, order, depth, activation, lattice=tuple(args.lattice) if compressed else None,
        kernel_radius=args.kernel_radius if compressed else None,
    )
    if cost["placements"] > _MAX_PLACEMENTS or cost["seconds"] > _MAX_EXTRACTION_SECONDS:
        raise CLIError(f"extracting order {order} (N = {dim}, depth {depth}, {activation}) would "
                       f"place {_count(cost['placements'])} diagram terms per layer and take "
                       f"roughly {_count(cost['seconds'])} s (it grows about 5x per order); the "
                       f"limits are {_MAX_PLACEMENTS:.0e} placements and "
                       f"{_MAX_EXTRACTION_SECONDS:.0f} s; lower --order")
    _check_memory(cost["peak_bytes"], f"cannot extract the action: order {order} for N = {dim} "
                  "needs about", "; lower the order", device)


def _check_spread(x: np.ndarray, path: str) -> None:
    """Refuse columns whose spread is too small or large to standardise in float64."""
    with np.errstate(all="ignore"):
        spread, variance = np.ptp(x, axis=0), np.square(x.std(axis=0))
    tiny = np.flatnonzero((spread > 0) & ~(variance >= np.finfo(np.float64).tiny))
    huge = np.flatnonzero(~np.isfinite(variance))
    for columns, what, cause in ((tiny, "small", "underflows to 0"),
                                 (huge, "large", "overflows")):
        if columns.size:
            raise CLIError(f"{path}: the values of columns {_listed(columns.tolist())} are too "
                           f"{what} for float64 arithmetic (spread {spread[columns[0]]:.3g}; the "
                           f"square of the standard deviation {cause}); rescale the data")


def _check_degenerate(x: np.ndarray, path: str) -> None:
    """Refuse data whose centred rows satisfy an exact linear relation (no density in R^N),
    checked for N <= 512 on the distinct rows among 4 N + 1000 spread over the data."""
    n, dim = x.shape
    if dim < 2 or dim > _MAX_RANK_COLUMNS:
        return
    spread = np.linspace(0, n - 1, min(n, 4 * dim + 1000)).astype(int)
    rows = np.unique(x[spread], axis=0)  # repeated rows would only hide directions
    std = rows.std(axis=0)
    if len(rows) <= dim or not (std > 0).all():
        return  # too few distinct rows to tell, or a constant column (refused when training)
    z = (rows - rows.mean(axis=0)) / std
    singular = np.linalg.svd(z, compute_uv=False)
    if singular[-1] > _DEGENERATE * singular[0]:
        return
    null = np.abs(np.linalg.svd(z, full_matrices=False)[2][-1])
    columns = np.flatnonzero(null > 0.1 * null.max())
    raise CLIError(f"{path}: the data are exactly degenerate: a linear combination of columns "
                   f"{_listed(columns.tolist())} is the same in every row (e.g. a column copied "
                   "or the sum of others), so they have no density to fit and the action would "
                   "be meaningless; remove the redundant column(s)")


def _fit(args: argparse.Namespace) -> int:
    out = _output(args.out, "--out", (".npz",), default=".npz", append_always=True)
    model_path = out.with_suffix(".model.pt")
    with _claimed([out, model_path], args.force, inputs=[Path(args.data)]):
        x = load_data(args.data, args.array)
        _check_spread(x, args.data)
        device = _device(args.device)
        compressed = args.lattice is not None and args.point in ("mean", "zero")
        _check_extraction_cost(x.shape[1], args, device, compressed)
        _check_degenerate(x, args.data)
        if args.point == "zero":
            point = np.zeros(x.shape[1])
        elif compressed:  # a translation-invariant model is expanded at a uniform point
            point = np.full(x.shape[1], x.mean())
        else:
            point = x.mean(axis=0)
        return _fit_checked(args, x, point, device, out, model_path)


def _fit_checked(args: argparse.Namespace, x: np.ndarray, point: np.ndarray, device: Any,
                 out: Path, model_path: Path) -> int:
    n, dim = x.shape
    model = _build_model(dim, args)
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n < recommended_samples(parameters):
        warnings.warn(f"thin data: {n} rows for a network of {parameters} trainable parameters "
                      f"(fewer than {SAMPLES_PER_PARAMETER} per parameter, "
                      f"{recommended_samples(parameters)}); expect noisy couplings, or use a "
                      "smaller --depth or a lattice-equivariant network (--lattice)",
                      RuntimeWarning, stacklevel=2)
    history, action, timings = _train_and_extract(
        model, x, point, order=args.order, steps=args.steps, args=args, device=device,
        polish=False if args.no_polish else "auto")
    settings = {"depth": args.depth, "order": args.order, "activation": args.activation,
                "lattice": list(args.lattice) if args.lattice else None,
                "kernel_radius": args.kernel_radius, "odd": args.odd, "polish": not args.no_polish,
                "point": args.point, "steps": args.steps, "seed": args.seed, "device": str(device)}
    action.metadata.update(source="inntheory fit",
                           data={"path": str(args.data), "array": args.array, "n": n, "dim": dim},
                           settings=settings, training=_json_safe(history.to_dict()),
                           model_file=model_path.name, seconds=timings)
    names = f"{out} and {model_path}"
    with _writing([model_path, out], names=names) as (model_file, action_file):
        model.save(model_file)
        action.save(action_file)
    print(f"trained: best validation NLL {history.best_val_nll:.4f} nats at step "
          f"{history.best_step} of {history.steps[-1]}; {history.outside_fraction:.2%} of the "
          f"training data outside the model's domain; {timings['train']:.1f} s on {device}")
    polish = (f"; polish: {history.polish_iterations} {history.polish_method} iterations, max "
              f"|gradient| {history.grad_norm:.2g} ({history.polish_stop})" if history.polished
              else f"; no polish ({history.polish_decision})")
    print(f"network: {parameters} trainable parameters{polish}")
    fit = history.goodness_of_fit
    if fit is not None:
        print("goodness of fit: " + ("ok" if fit["ok"] else f"FAILED: {fit['warnings'][0]}"))
    print(f"{'k':>2}  {'||A^(k)||':>11}  {'mean A^(k)_i..i':>15}")
    for k in range(1, action.order + 1):
        norm = action.norm(k)  # free of overflow and underflow (data scaled by 1e150)
        print(f"{k:>2}  {norm:>11.4g}  {float(action.diagonal(k).mean()):>15.4g}")
    print(f"wrote {out} and {model_path}")
    return 0


# -- sample, compare, demo ------------------------------------------------------------------------
def _theory(args: argparse.Namespace) -> Any:
    if args.preset is None and (args.m2 is None or args.kappa is None):
        missing = [f"--{name}" for name in ("m2", "kappa") if getattr(args, name) is None]
        raise CLIError("give a PRESET or the couplings --m2 and --kappa (and optionally --g3, "
                       f"--g4); missing: {', '.join(missing)}", code=2)
    couplings = dict(it.PRESETS[args.preset]) if args.preset else {}
    couplings.update({name: getattr(args, name) for name in _COUPLINGS
                      if getattr(args, name) is not None})
    with _user_error(code=2):
        return it.LatticeTheory(tuple(args.shape), **couplings)


def _save_samples(x: np.ndarray, path: Path) -> None:
    """Write x: (n, N) to `path` (.npy, .npz with array x, or .csv with a header x0,x1,...)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, x)
    elif suffix == ".npz":
        np.savez(path, x=x)
    else:
        header = ",".join(f"x{i}" for i in range(x.shape[1]))
        np.savetxt(path, x, delimiter=",", header=header, comments="")


def _sample(args: argparse.Namespace) -> int:
    out = _output(args.out, "--out", _DATA_FORMATS)
    _check_outputs([out], True)
    theory = _theory(args)
    with _claimed([out], args.force):
        device = _device(args.device)
        chains = int(inspect.signature(it.sample).parameters["n_chains"].default)
        _check_memory(8 * theory.dim * (args.n + _LIVE_CHAIN_COPIES * chains),
                      f"sampling {args.n} configurations of N = {theory.dim} sites (the "
                      f"samples, {args.n} x {theory.dim} float64, and {chains} chains) needs "
                      "about", "; lower --n or --shape")
        result = it.sample(theory, args.n, seed=args.seed, device=device,
                           progress=not args.quiet, n_chains=chains)
        with _writing([out], "; the samples drawn are lost") as (temporary,):
            _save_samples(result.x.numpy(), temporary)
    d = result.diagnostics
    print(f"{args.n} samples of {theory.parameters} ({d['method']}): acceptance "
          f"{d['acceptance']:.2f}, tau {d['tau']:.2f}, smallest ESS {d['ess']:.0f}, largest "
          f"R-hat {d['rhat']:.3f}, {d['seconds']:.1f} s")
    unknown = [name for name, key in (("tau", "tau"), ("ESS", "ess"), ("R-hat", "rhat"))
               if not math.isfinite(d[key])]
    if unknown:
        print(f"note: {', '.join(unknown)} cannot be estimated from {math.ceil(args.n / chains)} "
              f"draw(s) per chain ({args.n} samples over {chains} chains): tau and ESS need at "
              f"least 2 per chain, R-hat 4; use --n {4 * chains} or more to measure them")
    print(f"wrote {out}")
    return 0


def _load_action(path: str) -> Any:
    """A saved action: a compressed `LatticeAction` when the file is one, else dense."""
    _check_regular_file(Path(path), "saved action (.npz)")
    with _user_error(errors=(FileNotFoundError, ValueError)):
        return it.load_action(path)


def _compare(args: argparse.Namespace) -> int:
    plot, inputs = None, [Path(args.true), Path(args.learned)]
    if args.plot is not None:
        plot = _output(args.plot, "--plot", (".png",), default=".png")
        _check_outputs([plot], args.force, inputs)
    true, learned = _load_action(args.true), _load_action(args.learned)
    order = min(true.order, learned.order) if args.order is None else args.order
    with _user_error():
        comparison = it.compare(true, {Path(args.learned).stem: learned}, range(1, order + 1))
    print(comparison)
    if plot is not None:
        with _claimed([plot], args.force, inputs), _writing([plot]) as (temporary,):
            _save_figure(comparison.plot(), temporary)
        print(f"wrote {plot}")
    return 0


def _save_figure(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        figure.savefig(path, format="png", dpi=110)
    finally:
        plt.close(figure)


def _loss_figure(history: Any) -> Any:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(history.steps, history.train_nll, label="training")
    ax.plot(history.steps, history.val_nll, label="validation")
    ax.axvline(history.best_step, color="k", ls=":", lw=1, label="best (kept)")
    ax.set(title="INN training: negative log-likelihood", xlabel="optimiser step",
           ylabel="NLL (nats per sample)")
    ax.legend()
    return figure


def _demo(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if not args.out.strip():
        raise CLIError("--out is empty; give a folder name")
    out = Path(args.out)
    _check_name(out / _DEMO_FILES[0])
    if out.exists() and not out.is_dir():
        raise CLIError(f"output {out} exists and is not a folder")
    with _claimed([out / name for name in _DEMO_FILES], args.force):
        return _demo_claimed(args, out, start)


def _demo_claimed(args: argparse.Namespace, out: Path, start: float) -> int:
    setup = dict(_DEMO[args.quick])
    device = _device(args.device)
    import matplotlib

    matplotlib.use("Agg")
    import torch

    theory = it.preset("unimodal", tuple(setup["shape"]))
    sampling = time.perf_counter()
    drawn = it.sample(theory, setup["n_samples"], seed=args.seed, device=device,
                      progress=not args.quiet, burn_in=setup["burn_in"])
    x = drawn.x.numpy()
    sampled = time.perf_counter()
    torch.manual_seed(args.seed)
    model = it.PolynomialINN(theory.dim, setup["depth"], lattice=theory.shape).double()
    history, learned, timings = _train_and_extract(
        model, x, np.zeros(theory.dim), order=4, steps=setup["steps"], polish="auto", args=args,
        device=device)
    before_baseline = time.perf_counter()
    baseline = it.score_matching(torch.from_numpy(x), order=4, basis="dense")
    timings = {"sample": sampled - sampling, **timings,
               "score_matching": time.perf_counter() - before_baseline}

    true = theory.coefficients(4)
    comparison = it.compare(true, {"INN": learned, "score matching": baseline})
    polish = (f", then {history.polish_iterations} {history.polish_method} iterations (max "
              f"|gradient| {history.grad_norm:.2g})" if history.polished else "")
    print(f"unimodal preset {theory.parameters}, {setup['n_samples']} samples; "
          f"lattice-equivariant cubic INN of depth {setup['depth']} trained by Adam{polish}; "
          f"best validation NLL {history.best_val_nll:.4f}")
    print(comparison)

    timings["total"] = time.perf_counter() - start
    summary = {
        "settings": {"preset": "unimodal", "quick": args.quick, "seed": args.seed,
                     **setup, "order": 4, "activation": "cubic", "lattice": True,
                     "point": "zero"},
        "errors": {model: {str(r.order): r.error for r in comparison.rows if r.model == model}
                   for model in comparison.models},
        "comparison": comparison.to_dict(),
        "diagnostics": {"sampling": drawn.diagnostics, "training": history.to_dict()},
        "seconds": timings, "device": str(device), "torch_threads": torch.get_num_threads(),
    }
    paths = [out / name for name in _DEMO_FILES]
    with _writing(paths, names=f"the files of the demo in {out}/") as temporaries:
        files = dict(zip(_DEMO_FILES, temporaries, strict=True))
        _save_figure(comparison.plot(), files["comparison.png"])
        _save_figure(_loss_figure(history), files["loss.png"])
        for name, action in (("true_action.npz", true), ("learned_action.npz", learned),
                             ("score_matching_action.npz", baseline)):
            action.save(files[name])
        files["summary.json"].write_text(json.dumps(_json_safe(summary), indent=2) + "\n")
    print(f"wrote {', '.join(_DEMO_FILES)} to {out}/ in {timings['total']:.1f} s")
    return 0


# -- parser --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``inntheory`` command."""
    parser = _Parser(prog="inntheory", description="Learn interacting theories from data with "
                     "polynomial invertible networks.")
    parser.add_argument("--version", action="version", version=f"inntheory {it.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=description)

    demo = command("demo", "sample, train, extract and compare on the unimodal preset",
                   "Sample the unimodal preset, train a lattice-equivariant cubic INN and "
                   "compare its action and the score-matching baseline's with the true one.")
    demo.add_argument("--out", default="inntheory-demo", help="output folder")
    demo.add_argument("--quick", action="store_true", help="a small run that takes seconds")

    fit = command("fit", "train an INN on your samples and extract its action",
                  "Train a polynomial INN on DATA (one configuration per row) and write the "
                  "extracted action (.npz) and the trained model (.model.pt beside it).")
    fit.add_argument("data", metavar="DATA", help="samples (n, N): .npy, .npz or .csv")
    fit.add_argument("--array", help="array name inside a .npz (default: its only array)")
    fit.add_argument("--depth", type=_positive_int, default=3, help="layers (default 3)")
    fit.add_argument("--order", type=_positive_int, default=4,
                     help="highest order K of the extracted action (default 4)")
    fit.add_argument("--activation", choices=_LibraryNames("ACTIVATIONS"), default="cubic",
                     metavar="NAME", help="polynomial activation: %(choices)s (default cubic)")
    fit.add_argument("--point", choices=("mean", "zero"), default="mean",
                     help="expansion point: the data mean (default; with --lattice its mean over "
                     "sites, a uniform point) or 0")
    fit.add_argument("--steps", type=_positive_int, default=2000,
                     help="Adam steps (default 2000); unless --no-polish, the float64 polish "
                     "that follows runs up to polish_steps more iterations (see train)")
    fit.add_argument("--lattice", type=_positive_int, nargs="+", metavar="L",
                     action=_LatticeShape, help="a convolutional network on this periodic "
                     "lattice, L or L1 L2 with L1 x L2 = N (sites in row-major order)")
    fit.add_argument("--kernel-radius", type=_non_negative_int, metavar="R", help="with "
                     "--lattice: kernel radius (couplings then reach 2 x depth x R sites)")
    fit.add_argument("--odd", action="store_true", help="a Z2-odd network (no biases, "
                     "activation y + c y^3, cubic only): a density even under x -> -x")
    fit.add_argument("--no-polish", action="store_true",
                     help="Adam only: skip the float64 polish (train(polish='auto'))")
    fit.add_argument("--out", default="action.npz", help="action file (default action.npz)")

    sampler = command("sample", "draw configurations of a lattice theory",
                      "Draw configurations of a periodic phi^3 + phi^4 lattice theory: a "
                      "PRESET, or couplings (overriding a preset's).")
    sampler.add_argument("preset", nargs="?", choices=_LibraryNames("PRESETS"),
                         metavar="PRESET", help="one of %(choices)s")
    sampler.add_argument("--n", type=_positive_int, default=10000, help="samples (default 10000)")
    sampler.add_argument("--shape", type=_positive_int, nargs="+", default=[8],
                         action=_LatticeShape, help="lattice, L or L1 L2 (default 8)")
    for name in _COUPLINGS:
        sampler.add_argument(f"--{name}", type=_finite_float, help=f"coupling {name}")
    sampler.add_argument("--out", default="samples.npy",
                         help="output .npy, .npz (array x) or .csv (default samples.npy)")

    comparer = command("compare", "compare two saved actions order by order",
                       "Compare a LEARNED action with a TRUE one (.npz files) order by order.")
    comparer.add_argument("true", metavar="TRUE", help="reference action (.npz)")
    comparer.add_argument("learned", metavar="LEARNED", help="action to measure (.npz)")
    comparer.add_argument("--order", type=_positive_int,
                          help="highest order compared (default: the lower of the two)")
    comparer.add_argument("--plot", metavar="FILE.png", help="also write the comparison "
                          "figure (.png appended to a name without a suffix)")
    for sub in (demo, fit, sampler, comparer):
        sub.add_argument("--force", action="store_true", help="overwrite existing outputs")
        sub.add_argument("--quiet", action="store_true", help="no progress bars")
        if sub is not comparer:
            sub.add_argument("--seed", type=_seed, default=0, help="0 to 2^63 - 1 (default 0)")
            sub.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                             help="auto: CUDA when available, else CPU")
    return parser


_COMMANDS = {"demo": _demo, "fit": _fit, "sample": _sample, "compare": _compare}


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that lock files and temporaries are removed."""


def _terminate(signum: int, frame: Any) -> NoReturn:
    raise _Terminated(signum)


def _error_line(error: object) -> str:
    """One line, a very long one (quoting user content) elided in the middle."""
    text = _one_line(error)
    if len(text) > _MAX_MESSAGE:
        half = _MAX_MESSAGE // 2
        text = f"{text[:half]} [... {len(text) - 2 * half} characters ...] {text[-half:]}"
    return f"inntheory: error: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``inntheory`` on `argv` (default ``sys.argv[1:]``); status 0, 1 (error) or 2 (usage)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *_, **__: print(
            f"inntheory: warning: {_one_line(message)}", file=sys.stderr)
        try:
            return _COMMANDS[args.command](args)
        except CLIError as error:
            print(_error_line(error), file=sys.stderr)
            return error.code
        except KeyboardInterrupt:
            print("inntheory: error: interrupted", file=sys.stderr)
            return 130
        except _Terminated:
            print("inntheory: error: terminated (SIGTERM); outputs not yet in place were not "
                  "written", file=sys.stderr)
            return 128 + signal.SIGTERM
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)
