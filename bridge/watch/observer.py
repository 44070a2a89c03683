"""The watchdog edge: filesystem events → paths in a queue.  The only module that imports watchdog.

The observer thread does nothing but put paths on a thread-safe queue: no stat, no reading, no
analysis.  Everything slow happens on the watcher's worker thread, so a burst of events can never
stall the observer (and the kernel's event buffer never overflows because we were busy).
"""
from __future__ import annotations

import queue
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .filters import classify


class _Enqueue(FileSystemEventHandler):
    """Put the path of every event that may concern a stem or the manifest on ``sink``."""

    def __init__(self, root: Path, recursive: bool, sink: "queue.Queue[Path]"):
        self.root = root
        self.recursive = recursive
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        # A rename (REAPER's temp file → final name, the manifest's .tmp → .json) has the
        # interesting name as its destination; a deletion still matters (the session shrank).
        for raw in (getattr(event, "dest_path", "") or "", event.src_path):
            if not raw:
                continue
            path = Path(raw.decode() if isinstance(raw, bytes) else raw)
            if classify(path, self.root, self.recursive) is not None:
                self.sink.put(path)


class FolderObserver:
    """A watchdog observer on ``root`` feeding ``sink`` with relevant paths.

    Parameters
    ----------
    root : Path
    recursive : bool
    sink : queue.Queue
    """

    def __init__(self, root: Path, recursive: bool, sink: "queue.Queue[Path]"):
        self.root = Path(root)
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.schedule(_Enqueue(self.root, recursive, sink), str(self.root), recursive=recursive)

    def start(self) -> None:
        self._observer.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop and join; returns whether the observer thread ended within ``timeout_s``."""
        self._observer.stop()
        self._observer.join(timeout_s)
        return not self._observer.is_alive()

    def is_alive(self) -> bool:
        return self._observer.is_alive()
