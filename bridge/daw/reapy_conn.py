"""One guarded connection to REAPER's distant API through reapy.

reapy's client has no timeouts and is not thread-safe, and ``import reapy`` itself connects (to
``localhost:2307``, a constant that cannot be changed before the first import).  So every reapy
call, the import included, runs on one worker thread, and the caller waits with a deadline.  A
call that misses its deadline leaves the worker stuck in a socket read; the connection is then
declared dead, its socket closed to free the worker, and the next pass reconnects.

Import-time quirks handled (reapy.md section 1):

- nothing listening → ``DisabledDistAPIWarning`` and an empty API → ``DawUnavailable``;
- a stale ``server_port`` in REAPER's ext-state → ``ConnectionRefusedError`` escapes the import;
- another HTTP server on the port → ``json.JSONDecodeError`` escapes the import;
- the activation action doing nothing → unbounded recursion (or a hang) → caught by the deadline;
- ``reapy.FX.functions`` is computed once from the API at import and stays empty after a
  reconnect → rebuilt after every connect;
- a ``__main__`` global named ``obj`` makes reapy think it runs inside REAPER → refused up front.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import urllib.request
from collections import Counter
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable

from ..errors import DawRefused, DawTimeout, DawUnavailable
from ..settings import Connection

#: reapy 0.10 hard-wires this port into its first connection (not our default: ours is Connection.web_port).
REAPY_WEB_PORT = 2307
DEFAULTS = Connection()
CONNECT_TIMEOUT_S = 10.0


@contextlib.contextmanager
def _web_interface_at(host: str, web_port: int):
    """Point reapy's hard-wired ``http://localhost:2307/`` at ``host:web_port`` during an import."""
    original = urllib.request.urlopen
    old = f"http://localhost:{REAPY_WEB_PORT}/"
    new = f"http://{host}:{web_port}/"

    def urlopen(url, *args, **kwargs):
        if isinstance(url, str) and url.startswith(old):
            url = new + url[len(old):]
        return original(url, *args, **kwargs)

    urllib.request.urlopen = urlopen
    try:
        yield
    finally:
        urllib.request.urlopen = original


class ReapyConnection:
    """reapy on a single worker thread, with deadlines and a round-trip counter.

    Parameters
    ----------
    host : str
        Where REAPER's web interface listens; loopback unless told otherwise.
    web_port : int
        REAPER's web interface port (reapy's default 2307).
    timeout_s : float
        Deadline for each call.
    """

    def __init__(self, host: str = DEFAULTS.host, web_port: int = DEFAULTS.web_port,
                 timeout_s: float = DEFAULTS.timeout_s):
        self.host = host
        self.web_port = web_port
        self.timeout_s = timeout_s
        self.round_trips = 0
        self.calls: Counter[str] = Counter()
        self.reapy: Any = None
        self.rpr: Any = None
        self._worker: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.dead = False

    # --- the worker -------------------------------------------------------------------------

    def _submit(self, fn: Callable[[], Any], timeout_s: float) -> Any:
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mixbridge-reapy")
        future: Future = self._worker.submit(fn)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            self._abandon()
            raise DawTimeout(f"REAPER did not answer within {timeout_s:.1f} s "
                             f"(frozen by a dialog, or the bridge server script stopped)") from None

    def _abandon(self) -> None:
        """Give up on a stuck worker: close reapy's socket so its blocked read returns."""
        self.dead = True
        with contextlib.suppress(Exception):
            client = self.reapy.tools.network.machines.get_selected_client()
            client._socket.shutdown(2)
            client._socket.close()
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None

    # --- connecting -----------------------------------------------------------------------------

    def connect(self) -> "ReapyConnection":
        """Import or reconnect reapy against REAPER's web interface; raise a clear error if absent."""
        main = sys.modules.get("__main__")
        if main is not None and hasattr(main, "obj"):
            raise DawUnavailable("a global named 'obj' in __main__ makes reapy believe it runs inside REAPER")
        self._submit(self._connect_on_worker, CONNECT_TIMEOUT_S)
        self.dead = False
        return self

    def _connect_on_worker(self) -> None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if self.reapy is None and "reapy" not in sys.modules:
                    with _web_interface_at(self.host, self.web_port):
                        import reapy  # noqa: PLC0415 - lazy on purpose: only DAW code imports reapy
                else:
                    import reapy  # noqa: PLC0415
                    reapy.config.WEB_INTERFACE_PORT = self.web_port
                    with _web_interface_at(self.host, self.web_port):
                        reapy.reconnect()
                reapy.config.WEB_INTERFACE_PORT = self.web_port
        except RecursionError as exc:
            raise DawUnavailable("REAPER's web interface answered, but its reapy server never started "
                                 "(is Python enabled in REAPER, and the activation action installed?)") from exc
        except ConnectionRefusedError as exc:
            raise DawUnavailable("REAPER published a reapy server port that nothing listens on (a stale "
                                 "server_port): run 'MixBridge: Start bridge server' in REAPER again") from exc
        except ValueError as exc:  # json.JSONDecodeError
            raise DawUnavailable(f"something other than REAPER answers on port {self.web_port}") from exc
        except OSError as exc:
            raise DawUnavailable(f"cannot reach REAPER's web interface at {self.host}:{self.web_port}: {exc}") from exc
        disabled = [w for w in caught if "DisabledDistAPI" in type(w.message).__name__]
        if disabled or not reapy.dist_api_is_enabled() or not hasattr(reapy.reascript_api, "CountTracks"):
            raise DawUnavailable(
                f"REAPER is not running, or its web interface on port {self.web_port} or the reapy server "
                f"is not enabled (see docs/reaper-setup.md)")
        self._rebuild_fx_functions(reapy)
        self.reapy = reapy
        self.rpr = reapy.reascript_api

    @staticmethod
    def _rebuild_fx_functions(reapy: Any) -> None:
        """``reapy.FX.functions`` is computed from the API at import; refresh it after connecting."""
        functions = {"TrackFX_": {}, "TakeFX_": {}}
        for name in dir(reapy.reascript_api):
            for prefix in functions:
                if name.startswith(prefix):
                    functions[prefix][name[len(prefix):]] = getattr(reapy.reascript_api, name)
        with contextlib.suppress(AttributeError):
            reapy.FX.functions = functions

    # --- calling ----------------------------------------------------------------------------------

    def call(self, name: str, *args: Any, timeout_s: float | None = None) -> Any:
        """Call ``RPR_<name>(*args)`` in REAPER, on the worker, with a deadline."""
        if self.dead or self.rpr is None:
            raise DawUnavailable("not connected to REAPER")
        function = getattr(self.rpr, name, None)
        if function is None:
            raise DawUnavailable(f"REAPER's API has no {name} (REAPER too old, or not REAPER)")
        self.round_trips += 1
        self.calls[name] += 1
        from reapy.errors import DisconnectedClientError, DistError  # noqa: PLC0415 - loaded by connect()

        try:
            return self._submit(lambda: function(*args), timeout_s or self.timeout_s)
        except (DawTimeout, DawUnavailable):
            raise
        except (ConnectionError, OSError, EOFError, DisconnectedClientError) as exc:
            self._abandon()
            raise DawUnavailable(f"the connection to REAPER was lost during {name}: {exc}") from exc
        except DistError as exc:
            # REAPER answered, with an error (its traceback in the message): not a lost connection.
            raise DawRefused(f"{name}{args!r}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}") from exc
        # Anything else is a bug on our side and propagates as itself.

    @contextlib.contextmanager
    def held(self):
        """reapy's HOLD: REAPER serves only this connection until released (one pass, fast calls)."""
        if self.dead or self.reapy is None:
            raise DawUnavailable("not connected to REAPER")
        ctx = self.reapy.inside_reaper()
        self.round_trips += 1
        self._submit(ctx.__enter__, self.timeout_s)
        try:
            yield self
        finally:
            if not self.dead:
                with contextlib.suppress(Exception):
                    self.round_trips += 1
                    self._submit(lambda: ctx.__exit__(None, None, None), self.timeout_s)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None
