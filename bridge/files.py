"""The one way MixBridge replaces a file: write a temporary name, then rename it over the old one.

A reader (or a crash) sees the old file or the new one, never half of either.  The fsync policy is
decided here, once, by what the file is:

- ``durable=True`` (the default) for what the bridge cannot rebuild: the watcher's state, tags,
  plans, notes, manifests, installed scripts.  The data is fsync'd before the rename and the
  folder after it, so a power cut keeps the new file or the old one.
- ``durable=False`` for what is rebuilt from the stems when lost or stale: the analysis cache's
  index and entries.  No fsync, because it would stall behind the gigabytes a render has just
  written; a kill still cannot tear the rename, and every cache read is checked.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path


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
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = Path(tmp) if tmp is not None else path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        with open(tmp_path, "wb") as fh:
            fh.write(raw)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_folder(path.parent)
    return path
