"""Point a stock reapy client at a simulator (client-side helper).

Use it in the process that plays the bridge, never in the simulator process::

    from tests.reaper_sim.client import connect_reapy
    reapy = connect_reapy(web_port)          # before anything else imports reapy
    RPR = reapy.reascript_api

reapy quirks this works around (reapy.md 1, 2.1):

* reapy connects during ``import reapy``, to ``localhost:2307``, a module
  constant that cannot be changed before that first import. So the first import
  runs with ``urllib.request.urlopen`` temporarily rewriting
  ``http://localhost:2307/`` to the simulator's web port; nothing ever touches
  2307, even if a real REAPER (or another simulator) owns it. Afterwards
  ``reapy.config.WEB_INTERFACE_PORT`` is set to the simulator's port so
  ``reapy.reconnect()`` keeps working without the shim.
* If reapy was already imported (and failed, or points elsewhere), the port is
  set and ``reapy.reconnect()`` called; ``reapy.FX.functions``, computed once at
  import from whatever ``reascript_api`` held then, is rebuilt so FX methods
  work.
* A ``__main__`` global named ``obj`` makes reapy think it runs inside REAPER;
  that is refused up front with a clear error.
* reapy's client has no timeouts: a stalled simulator blocks the caller
  forever. Callers that may meet a stall must impose their own deadline (run
  the client in a subprocess, or the call in a thread they can abandon).

The server port needs no handling: the client reads it from the simulator's
``EXTSTATE reapy/server_port`` like it would from REAPER.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
import urllib.request
import warnings
from typing import Any, Callable, Iterator

#: reapy.config.WEB_INTERFACE_PORT, fixed at 2307 in reapy 0.10.
REAPY_DEFAULT_WEB_PORT = 2307


class SimConnectionError(ConnectionError):
    """reapy could not reach the simulator's distant API."""


@contextlib.contextmanager
def redirect_reapy_web_interface(web_port: int) -> Iterator[None]:
    """Rewrite reapy's hard-wired ``http://localhost:2307/`` URLs to the simulator."""
    original = urllib.request.urlopen
    old_prefix = f"http://localhost:{REAPY_DEFAULT_WEB_PORT}/"
    new_prefix = f"http://127.0.0.1:{web_port}/"

    def urlopen(url, *args, **kwargs):
        if isinstance(url, str) and url.startswith(old_prefix):
            url = new_prefix + url[len(old_prefix):]
        return original(url, *args, **kwargs)

    urllib.request.urlopen = urlopen
    try:
        yield
    finally:
        urllib.request.urlopen = original


def rebuild_fx_functions(reapy: types.ModuleType) -> None:
    """Refresh ``reapy.FX.functions`` from the current ``reapy.reascript_api``."""
    rpr = reapy.reascript_api
    reapy.FX.functions = {
        prefix: {name[len(prefix):]: getattr(rpr, name)
                 for name in getattr(rpr, "__all__", []) if name.startswith(prefix)}
        for prefix in ("TrackFX_", "TakeFX_")
    }


def connect_reapy(web_port: int) -> types.ModuleType:
    """Import (or re-point) reapy so that it talks to the simulator on ``web_port``.

    Returns
    -------
    module
        The ``reapy`` package, connected.

    Raises
    ------
    SimConnectionError
        The simulator did not answer (not running, or stalled).
    RuntimeError
        ``__main__`` has a global ``obj``, which would make reapy believe it
        runs inside REAPER.
    """
    if hasattr(sys.modules["__main__"], "obj"):
        raise RuntimeError("__main__ defines 'obj': reapy would think it runs inside REAPER")
    from_scratch = "reapy" not in sys.modules
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if from_scratch:
            with redirect_reapy_web_interface(web_port):
                import reapy
        else:
            import reapy
        reapy.config.WEB_INTERFACE_PORT = web_port
        if not from_scratch:
            reapy.reconnect()
            rebuild_fx_functions(reapy)
    if not reapy.dist_api_is_enabled():
        detail = "; ".join(str(w.message) for w in caught) or "no answer"
        raise SimConnectionError(f"reapy could not reach the simulator on web port "
                                 f"{web_port}: {detail}")
    return reapy


def call_with_deadline(fn: Callable[[], Any], timeout_s: float) -> tuple[str, Any]:
    """Run a reapy call with a deadline reapy itself lacks.

    The call runs in a daemon thread that is abandoned on timeout; reapy's one
    socket is then in an unknown state, so the caller must ``reapy.reconnect()``
    (or exit) before using reapy again.

    Returns
    -------
    tuple
        ``("ok", value)``, ``("error", exception)`` or ``("timeout", None)``.
    """
    outcome: list[tuple[str, Any]] = []

    def target() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as error:  # reported to the caller, not swallowed
            outcome.append(("error", error))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout_s)
    return outcome[0] if outcome else ("timeout", None)
