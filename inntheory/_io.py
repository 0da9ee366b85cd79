"""Atomic file writes shared by every module that saves something a user made.

- :func:`atomic_write`: one file through a temporary file beside it and ``os.replace``.
- :func:`atomic_write_all`: several files as one unit (all of them or none).
- :func:`claim`: exclusive lock files beside output paths, so two processes cannot write the
  same outputs at once; it first completes any commit of those outputs a killed run left.
- :func:`name_error`: why a file could not be written under a name (too long, with the
  temporary, backup, lock and journal names derived from it), before any work.

Files get the permissions a plain ``open(path, "w")`` would give them: those of the file they
replace, else ``0o666`` less the process umask (``mkstemp`` alone would give ``0o600``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_all", "claim", "load_error", "name_error"]

_TEMPORARY_NAME_EXTRA = len(".") + 8 + len(".tmp")
"""What `tempfile.mkstemp` adds to ``.<name>``: a dot, 8 random characters, ``.tmp``."""


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The mode open(path, "w") would leave: the existing file's, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _temporary(path: Path) -> tuple[int, Path]:
    """A new temporary file beside `path` ending in path's suffix (in lower case, the one
    savers expect), with path's future mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix.lower()}"
    )
    try:
        os.fchmod(handle, _mode_for(path))
    except BaseException:
        os.close(handle)
        Path(temporary).unlink(missing_ok=True)
        raise
    return handle, Path(temporary)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for binary writing; rename it onto `path` on success.

    A crash or an exception while writing leaves any earlier file at `path` untouched and no
    temporary file behind. The file gets the permissions a plain ``open()`` would give it.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> with atomic_write(target) as stream:
        ...     _ = stream.write(b"data")
        >>> target.read_bytes()
        b'data'
    """
    path = Path(path)
    handle, temporary = _temporary(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _backup(path: Path) -> Path | None:
    """A hard link (or, where links fail, a copy) of an existing `path` beside it, else None."""
    if not path.exists():
        return None
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old")
    os.close(handle)
    backup = Path(name)
    backup.unlink()
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)
    return backup


def _journal_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.commit")


def _write_journal(journal: Path, pairs: Sequence[tuple[Path, Path]]) -> None:
    """Record (temporary, target) pairs before the first rename (created new, then synced)."""
    entries = [[str(temporary.absolute()), str(target.absolute())] for temporary, target in pairs]
    handle = os.open(journal, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with os.fdopen(handle, "w") as stream:
        json.dump(entries, stream)
        stream.flush()
        os.fsync(stream.fileno())


def _sync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


@contextlib.contextmanager
def atomic_write_all(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Write several files as one unit: every one of them, or none.

    Yields one temporary path per target (beside it, same suffix, created empty with the
    target's future permissions) for the caller to write. On success they are synced, listed
    in a journal ``.<first name>.commit`` and renamed onto the targets, the journal removed
    last. A failed rename restores the targets already replaced; a process killed between the
    renames leaves the journal, and the next :func:`claim` of these paths completes the set.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_write_all([folder / "a.txt", folder / "b.txt"]) as (a, b):
        ...     _ = a.write_text("A"), b.write_text("B")
        >>> sorted(p.name for p in folder.iterdir())
        ['a.txt', 'b.txt']
    """
    targets = [Path(path) for path in paths]
    temporaries: list[Path] = []
    backups: list[Path | None] = []
    replaced: list[Path] = []
    journal = _journal_path(targets[0])
    try:
        for target in targets:
            handle, temporary = _temporary(target)
            os.close(handle)
            temporaries.append(temporary)
        yield list(temporaries)
        for temporary in temporaries:
            _sync(temporary)
        _write_journal(journal, list(zip(temporaries, targets, strict=True)))
        try:
            for temporary, target in zip(temporaries, targets, strict=True):
                backups.append(_backup(target))
                os.replace(temporary, target)
                replaced.append(target)
        except BaseException:
            for target, backup in zip(replaced, backups, strict=False):
                if backup is None:
                    target.unlink(missing_ok=True)
                else:
                    os.replace(backup, target)
            raise
        finally:
            journal.unlink(missing_ok=True)
    finally:
        for leftover in [*temporaries, *backups]:
            if leftover is not None:
                leftover.unlink(missing_ok=True)


def _leftovers(path: Path) -> list[Path]:
    """Temporaries and backups of `path` a killed writer left beside it."""
    prefix = f".{path.name}."
    endings = (f".tmp{path.suffix.lower()}", ".old")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [path.parent / name for name in names if name.startswith(prefix) and any(
        name.endswith(ending) and len(name) == len(prefix) + 8 + len(ending)
        for ending in endings)]


def _recover(paths: Sequence[Path]) -> None:
    """Complete the commits of `paths` killed runs left (their journals), then remove the
    leftovers of killed writers beside them.

    Called with the locks of `paths` held. A journal that cannot be read was being written
    when its run died, before any rename: that commit never started.
    """
    targets = list(paths)
    for path in paths:
        journal = _journal_path(path)
        if not journal.exists():
            continue
        try:
            entries = json.loads(journal.read_text())
            pairs = [(Path(temporary), Path(target)) for temporary, target in entries]
        except (OSError, ValueError, TypeError):
            pairs = []
        for temporary, target in pairs:
            if temporary.exists():
                os.replace(temporary, target)
            targets.append(target)
        journal.unlink(missing_ok=True)
    for target in targets:
        for leftover in _leftovers(target):
            leftover.unlink(missing_ok=True)


def name_error(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be written by this module, else None: a name (or a folder name on the
    way) longer than the file system allows, counting the longest name derived from it (the
    temporary ``.<name>.XXXXXXXX.tmp<suffix>``), or a path longer than it allows.

    Example:
        >>> name_error("x" * 300 + ".npy")  # doctest: +ELLIPSIS
        'the name x...x.npy is too long: 304 bytes, ...'
        >>> name_error("samples.npy") is None
        True
    """
    path = Path(path).absolute()
    folder = path.parent
    while not os.path.isdir(folder) and folder != folder.parent:  # isdir: never raises
        folder = folder.parent
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
        path_max = os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        name_max, path_max = 255, 4096
    extra = 1 + _TEMPORARY_NAME_EXTRA + len(os.fsencode(path.suffix))
    for part in path.parts[1:]:
        size = len(os.fsencode(part))
        limit = name_max - extra if part == path.name else name_max
        if size > limit:
            shown = part if len(part) <= 40 else f"{part[:20]}...{part[-20:]}"
            added = (f" (the temporary file written beside it adds {extra})"
                     if part == path.name else "")
            return f"the name {shown} is too long: {size} bytes, at most {limit} here{added}"
    size = len(os.fsencode(str(path.parent))) + 1 + len(os.fsencode(path.name)) + extra
    if size >= path_max:
        return f"the path is too long: {size} bytes with its temporary file, at most {path_max}"
    return None


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _holder(lock: Path) -> int | None:
    """The process id in a lock file when that process is alive (or unknown), else None."""
    try:
        pid = int(lock.read_text().strip() or "0")
    except (OSError, ValueError):
        return -1
    if pid <= 0:
        return -1  # being written by its owner right now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


@contextlib.contextmanager
def claim(paths: Sequence[str | os.PathLike]) -> Iterator[None]:
    """Hold exclusive lock files ``.<name>.lock`` beside `paths` while the body runs.

    Each lock is created with ``O_CREAT | O_EXCL`` and holds the process id; a lock whose
    process no longer runs (a killed earlier run) is taken over. Once all are held, a commit
    of these paths that a killed :func:`atomic_write_all` left is completed, and temporaries
    and backups such a run left are removed. The locks are removed on exit.

    Raises:
        FileExistsError: another running process holds one of the locks (the message names
            the output, the process and the lock file).
    """
    held: list[Path] = []
    try:
        for path in map(Path, paths):
            lock = _lock_path(path)
            lock.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(2):
                try:
                    handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    holder = _holder(lock)
                    if holder is None and attempt == 0:
                        lock.unlink(missing_ok=True)  # stale: its process is gone
                        continue
                    who = f"process {holder}" if holder and holder > 0 else "another process"
                    raise FileExistsError(
                        f"{path} is being written by {who} (lock file {lock}); wait for it, "
                        "or delete the lock file if no such run is active"
                    ) from None
                with os.fdopen(handle, "w") as stream:
                    stream.write(f"{os.getpid()}\n")
                held.append(lock)
                break
        _recover([Path(path) for path in paths])
        yield
    finally:
        for lock in held:
            lock.unlink(missing_ok=True)


def load_error(error: BaseException) -> str:
    """Why a file could not be read, in one line, never advising to load it unsafely.

    NumPy and torch suggest ``allow_pickle=True`` or ``weights_only=False`` for files holding
    pickled Python objects; such files are refused here, and the message says why instead.

    Example:
        >>> load_error(ValueError("Object arrays cannot be loaded when allow_pickle=False"))
        'it holds pickled Python objects, which are never loaded (unpickling can run code)'
    """
    text = " ".join(str(error).split())
    if any(word in text.lower() for word in ("pickle", "weights_only", "object arrays")):
        return "it holds pickled Python objects, which are never loaded (unpickling can run code)"
    return text or type(error).__name__
