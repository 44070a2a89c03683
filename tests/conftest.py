"""Shared test helpers: the one way to wait for a condition, and checks that nothing is left running.

- :func:`wait_until` is the only wait in the suite: it polls a condition until a deadline and fails
  saying what it waited for.  Nothing sleeps to synchronise.
- Every test is checked for leaks (``_no_leaks``, autouse): threads it started that are still running
  after it ended (daemon or not; a short grace for threads already told to stop), and child processes
  left alive.  A leak fails the test that caused it.
- :func:`watch_settings` builds a :class:`~bridge.settings.Settings` from flat keywords, the way the
  watcher tests write their fast timings.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from bridge.settings import Connection, Settings, SurfaceOptions, WatchTimings

#: How long a thread or process that was told to stop may take to go away after its test.
LEAK_GRACE_S = 5.0
#: Threads that live for the whole test session by design.
_LONG_LIVED = ("pydevd",)


def wait_until(condition: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition",
               interval_s: float = 0.01) -> Any:
    """Poll ``condition()`` until it is truthy; return its value, or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)  # polling inside a deadline loop, not synchronisation


def watch_settings(folder: Path | None, **flat: Any) -> Settings:
    """``Settings`` from flat keywords: each goes to the group that has a field of that name."""
    groups: dict[str, dict[str, Any]] = {"connection": {}, "timings": {}, "surface": {}}
    top: dict[str, Any] = {}
    names = {g: {f.name for f in dataclasses.fields(cls)}
             for g, cls in (("connection", Connection), ("timings", WatchTimings), ("surface", SurfaceOptions))}
    for key, value in flat.items():
        group = next((g for g, fields in names.items() if key in fields), None)
        (groups[group] if group else top)[key] = value
    return Settings(folder, connection=Connection(**groups["connection"]), timings=WatchTimings(**groups["timings"]),
                    surface=SurfaceOptions(**groups["surface"]), **top)


def _children() -> set[int]:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the test extra
        return set()
    return {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE}


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive() and not t.name.startswith(_LONG_LIVED)}


@pytest.fixture(autouse=True)
def _no_leaks(request):
    """Fail a test that leaves threads or child processes running (see the module docstring)."""
    threads, children = _threads(), _children()
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    deadline = time.monotonic() + LEAK_GRACE_S
    while True:
        new_threads = sorted(_threads() - threads, key=lambda t: t.name)
        new_children = _children() - children - _forkserver_pids()
        if not new_threads and not new_children:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)  # polling inside a deadline loop
    pytest.fail(f"the test left running: threads {sorted(t.name for t in new_threads)}, "
                f"processes {sorted(new_children)}", pytrace=False)


def _forkserver_pids() -> set[int]:
    """multiprocessing's forkserver and resource tracker live for the whole interpreter by design
    (they make later pools fast); only they are exempt."""
    from multiprocessing import forkserver, resource_tracker

    pids = {getattr(forkserver._forkserver, "_forkserver_pid", None),  # noqa: SLF001 - no public accessor
            getattr(resource_tracker._resource_tracker, "_pid", None)}  # noqa: SLF001
    return {p for p in pids if p}


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_leaks: the test hands a running process to a later one on purpose")
