"""Atomic file writes: `atomic_write` one file, `atomic_write_all` several as one unit;
`claim` holds lock files beside outputs. Files get the mode ``open(path, "w")`` would give."""

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

_NEW_FILE = os.O_CREAT | os.O_EXCL | os.O_WRONLY


def _mode_for(path: Path) -> int:
    """The mode open(path, "w") would leave: the existing file's, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0o022)  # read the umask by setting it and restoring it at once
        os.umask(mask)
        return 0o666 & ~mask


def _temporary(path: Path) -> tuple[int, Path]:
    """A new temporary file beside `path` with its suffix (lower case) and future mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=f".tmp{path.suffix.lower()}")
    try:
        os.fchmod(handle, _mode_for(path))
    except BaseException:
        os.close(handle)
        Path(temporary).unlink(missing_ok=True)
        raise
    return handle, Path(temporary)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary stream to a temporary file beside `path`, renamed onto `path` on success; a
    crash or an exception leaves any earlier file untouched and no temporary behind."""
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


@contextlib.contextmanager
def atomic_write_all(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Write several files as one unit: yields one empty temporary path per target for the
    caller to write; on success they are synced, listed in a journal ``.<first name>.commit``
    and renamed onto the targets, the journal removed last. A failed rename restores the
    targets already replaced; after a kill the next `claim` of these paths completes them."""
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
            with open(temporary, "rb") as stream:
                os.fsync(stream.fileno())
        pairs = list(zip(temporaries, targets, strict=True))
        with os.fdopen(os.open(journal, _NEW_FILE, 0o644), "w") as stream:  # before any rename
            json.dump([[str(t.absolute()), str(g.absolute())] for t, g in pairs], stream)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            for temporary, target in pairs:
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
        for leftover in filter(None, [*temporaries, *backups]):
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
    """Complete the commits killed runs left for `paths`, remove their leftovers (locks held)."""
    targets = list(paths)
    for path in paths:
        journal = _journal_path(path)
        try:
            entries = json.loads(journal.read_text())
            pairs = [(Path(temporary), Path(target)) for temporary, target in entries]
        except (OSError, ValueError, TypeError):  # none, or its run died before any rename
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
    """Why `path` cannot be written here, else None: a name (its own counting the temporary
    ``.<name>.XXXXXXXX.tmp<suffix>``) or a path longer than the file system allows."""
    path = Path(path).absolute()
    folder = path.parent
    while not os.path.isdir(folder) and folder != folder.parent:  # isdir: never raises
        folder = folder.parent
    try:
        name_max, path_max = (os.pathconf(folder, key) for key in ("PC_NAME_MAX", "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):
        name_max, path_max = 255, 4096
    extra = len("..") + 8 + len(".tmp") + len(os.fsencode(path.suffix))  # `_temporary`'s name
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


def _holder(lock: Path) -> int | None:
    """The process id in a lock file when that process is alive (-1: unknown), else None."""
    try:
        pid = int(lock.read_text())
    except (OSError, ValueError):
        pid = -1
    if pid <= 0:
        return -1  # unreadable, or being written by its owner right now
    try:
        with contextlib.suppress(PermissionError):  # alive, another user's
            os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


@contextlib.contextmanager
def claim(paths: Sequence[str | os.PathLike]) -> Iterator[None]:
    """Hold exclusive lock files ``.<name>.lock`` (holding the process id) beside `paths`,
    taking over those whose process is gone, then recover what killed runs left (see
    `atomic_write_all`). FileExistsError when another running process holds one."""
    held: list[Path] = []
    try:
        for path in map(Path, paths):
            lock = path.with_name(f".{path.name}.lock")
            lock.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(2):
                try:
                    handle = os.open(lock, _NEW_FILE, 0o644)
                except FileExistsError:
                    holder = _holder(lock)
                    if holder is None and attempt == 0:
                        lock.unlink(missing_ok=True)  # stale: its process is gone
                        continue
                    who = f"process {holder}" if holder and holder > 0 else "another process"
                    raise FileExistsError(
                        f"{path} is being written by {who} (lock file {lock}); wait for it, "
                        "or delete the lock file if no such run is active") from None
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
    """Why a file could not be read, in one line, never advising to load pickled objects
    (``allow_pickle=True``, ``weights_only=False``) as NumPy and torch do."""
    text = " ".join(str(error).split())
    if any(word in text.lower() for word in ("pickle", "weights_only", "object arrays")):
        return "it holds pickled Python objects, which are never loaded (unpickling can run code)"
    return text or type(error).__name__
