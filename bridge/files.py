"""The one way MixBridge replaces a file: write a temporary name, then rename it over the old one.

A reader (or a crash) sees the old file or the new one, never half of either.  Also the other
small filesystem rules every module shares: open only regular files, never blocking
(:func:`open_regular`); whether some process still has a file open for writing
(:func:`open_for_writing`); disk full as one error (:func:`disk_full`); a bad state file moved aside
(:func:`move_aside`).  The fsync policy is
decided here, once, by what the file is:

- ``durable=True`` (the default) for what the bridge cannot rebuild: the watcher's state, tags,
  plans, notes, manifests, installed scripts.  The data is fsync'd before the rename and the
  folder after it, so a power cut keeps the new file or the old one.
- ``durable=False`` for what is rebuilt from the stems when lost or stale: the analysis cache's
  index and entries.  No fsync, because it would stall behind the gigabytes a render has just
  written; a kill still cannot tear the rename, and every cache read is checked.
"""
from __future__ import annotations

import errno
import os
import stat
import sys
import time
import uuid
from pathlib import Path

from .errors import DiskFull

#: ``errno`` values that mean "no room to write": disk full, quota exceeded.
NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``OSError`` saying the disk (or the quota) is full."""
    return isinstance(exc, OSError) and (isinstance(exc, DiskFull) or exc.errno in NO_SPACE)


def disk_full(exc: OSError, what: str | os.PathLike[str]) -> DiskFull:
    """The one error for a full disk, naming what could not be written."""
    return DiskFull(f"{what}: {exc.strerror or exc}")


def display(path: str | os.PathLike[str]) -> str:
    """A path as text that can always be printed or written as UTF-8 (undecodable bytes as ``\\xNN``)."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name decodes to (from JSON text, say)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_valid_name(path: str | os.PathLike[str]) -> bool:
    """Whether a path's text is valid Unicode (a name that is not UTF-8 decodes to lone surrogates)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class NotRegular(OSError):
    """:func:`open_regular` found a FIFO, a device, a socket or a folder where a file was expected."""


def open_regular(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for reading and return the descriptor; only a regular file is accepted.

    Opened with ``O_NONBLOCK`` (a FIFO or a device never blocks the caller), checked with ``fstat``
    on the descriptor itself (no window between a check and the open: a symlink swapped meanwhile
    is caught), then switched back to blocking reads.

    Raises
    ------
    NotRegular
        The path is not a regular file (after following symlinks).
    OSError
        As ``os.open`` raises it (missing, permission denied, a symlink loop: ``ELOOP``).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                    else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
            raise NotRegular(errno.EINVAL, f"{kind}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """Read a whole regular file of at most ``limit`` bytes (:func:`open_regular`).

    Raises
    ------
    ValueError
        The file is larger than ``limit``.
    OSError
        As :func:`open_regular`.
    """
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit} bytes")
    return data


#: ``fcntl``'s lease commands (Linux); not every Python exposes the names.
_F_SETLEASE, _F_SETSIG = 1024, 10


def open_for_writing(path: str | os.PathLike[str]) -> bool | None:
    """Whether some process has ``path`` open for writing: ``True``/``False``, or ``None`` when it
    cannot be told (not Linux, a filesystem without leases, a file owned by someone else).

    Linux refuses a read lease (``F_SETLEASE``) with ``EAGAIN`` exactly when the file is open for
    writing anywhere.  The lease is dropped at once; its break signal is set to ``SIGURG``
    (ignored by default), so a writer opening the file in that instant costs nothing.
    """
    if not sys.platform.startswith("linux"):
        return None
    import fcntl
    import signal

    try:
        fd = open_regular(path)
    except OSError:
        return None
    try:
        try:
            fcntl.fcntl(fd, _F_SETSIG, int(signal.SIGURG))
            fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
        except OSError as exc:
            return True if exc.errno == errno.EAGAIN else None
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


def move_aside(path: str | os.PathLike[str]) -> Path | None:
    """Rename a bad state file (or folder) to ``<name>.bad-<UTC timestamp>``; returns the new path
    (``None`` when it could not be moved: then it is removed, so the next start is clean)."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.bad-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.bad-{stamp}-{n}")
    try:
        os.replace(path, target)
        return target
    except OSError:
        try:
            path.unlink()
        except OSError:
            pass
        return None


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; folders cannot be opened for this on Windows.
    try:
        fd = os.open(str(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, durable: bool = True,
                 tmp: str | os.PathLike[str] | None = None) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8); returns ``path``.

    Parameters
    ----------
    durable : bool
        See the module docstring.
    tmp : path, optional
        The temporary name, when a protocol fixes it (the bounce manifest's ``.json.tmp``); by
        default a hidden, unique name beside ``path`` that the watcher ignores.

    Raises
    ------
    DiskFull
        ``E_DISK_FULL`` (``ENOSPC``/``EDQUOT``); the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp_path = Path(tmp) if tmp is not None else path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    # A name that was not UTF-8 (lone surrogates) is written as a \\udcNN escape, never an encode error.
    raw = data.encode("utf-8", "backslashreplace") if isinstance(data, str) else bytes(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp_path, "wb") as fh:
            fh.write(raw)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if is_disk_full(exc) and not isinstance(exc, DiskFull):
            raise disk_full(exc, path) from exc
        raise
    if durable:
        _fsync_folder(path.parent)
    return path
