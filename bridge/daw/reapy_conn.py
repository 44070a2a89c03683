"""One guarded connection to REAPER's distant API through reapy.

reapy's client has no timeouts and is not thread-safe, and ``import reapy`` itself connects (to
``localhost:2307``, a constant that cannot be changed before the first import).  So every reapy
call, the import included, runs on one daemon worker thread, and the caller waits with a deadline.

Before reapy is asked to connect, :func:`preflight` looks at REAPER's side with plain sockets, so
each way of not being there gets its own message: nothing on the web port (REAPER not running), a
``401`` (a password on the web interface, which reapy cannot send: :class:`DawAuthRequired`, not
retried), something other than REAPER answering, and a published ``server_port`` whose server
refuses or never greets (a stale server: :class:`DawStaleServer`, with how to restart it).

reapy's server inside REAPER and the HOLD (reapy 0.10 ``tools/network/server.py``)
--------------------------------------------------------------------------------------
A pass runs in a HOLD (``reapy.inside_reaper``): REAPER's main thread stays in reapy's hold loop and
serves only this connection until RELEASE.  That loop dies (and with it reapy's whole server, its
port left published) if the connection is lost while it is inside it, except in one case: when
the loss is an abortive close (RST) that arrives while REAPER is busy in a call, reapy's reply
fails with ``ConnectionResetError``, which it takes for a release.  So:

- every HOLD is preceded by a plain call (:meth:`held` pings with ``GetAppVersion``): a REAPER
  frozen by a dialog is found out *before* it can be asked to hold, where abandoning a request is
  harmless (reapy catches a failed reply outside the hold);
- a call inside the HOLD that misses its deadline gives REAPER the rest of the budget
  (``budget_s``, 3 x ``timeout_s``) to answer; if it does, the connection is intact and the
  caller can roll back on it (then RELEASE as usual), and :class:`DawTimeout` says so;
- if REAPER stays away past the budget, the socket is closed abortively (SO_LINGER 0, a RST), the
  one close reapy's server survives when REAPER comes back, and the caller gets
  :class:`DawTimeout` with ``conn.dead``.  Sending RELEASE first would kill it (reapy would read
  the RELEASE after its own synthetic one, outside the hold, and fail on it): verified against
  reapy's unmodified server in the simulator.

Import-time quirks handled (reapy.md section 1):

- the import's own connection to ``localhost`` is suppressed (its web request fails at once), then
  :func:`reapy.connect` is called with ``host``, which reapy 0.10 uses for both the web interface
  and the TCP client (an import-time URL redirect would leave the client on ``localhost``);
- ``reapy.FX.functions`` is computed once from the API at import and stays empty after a
  reconnect → rebuilt after every connect;
- the activation action doing nothing → unbounded recursion (or a hang) → caught by the deadline;
- a ``__main__`` global named ``obj`` makes reapy think it runs inside REAPER → refused up front.
"""
from __future__ import annotations

import atexit
import contextlib
import ipaddress
import weakref
import json
import queue
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections import Counter
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable

from ..errors import DawAuthRequired, DawRefused, DawStaleServer, DawTimeout, DawUnavailable
from ..settings import Connection

#: reapy 0.10 hard-wires this port into its first connection (not our default: ours is Connection.web_port).
REAPY_WEB_PORT = 2307
DEFAULTS = Connection()
CONNECT_TIMEOUT_S = 10.0
#: How long REAPER may stay away in a pass before the bridge gives up, in units of the call deadline.
BUDGET_FACTOR = 3.0
#: What ``mixbridge`` tells a producer to run when reapy's server in REAPER has stopped.
RESTART_HINT = ("run the action 'MixBridge: Start bridge server' in REAPER (it closes the stopped "
                "server and starts a new one), or restart REAPER")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- preflight: REAPER's side seen with plain sockets -------------------------------------------------

def preflight(host: str, web_port: int, timeout_s: float) -> int | None:
    """Check REAPER's web interface and reapy's server before reapy tries; the published port or None.

    Raises
    ------
    DawUnavailable
        Nothing answers on the web port, or not REAPER.
    DawAuthRequired
        The web interface wants a user and password (``401``).
    DawStaleServer
        ``server_port`` is published but nothing listens there, or what listens never greets.
    """
    url = f"http://{host}:{int(web_port)}/_/GET/EXTSTATE/reapy/server_port"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(url, timeout=timeout_s) as reply:
            body = reply.read(4096).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise DawAuthRequired(
                f"{host}:{web_port} answered 401 ({exc.headers.get('WWW-Authenticate', 'no realm')}): remove "
                "the user name and password from the web interface control surface (firewall port "
                f"{web_port} instead, docs/reaper-setup.md)") from None
        raise DawUnavailable(f"something other than REAPER's web interface answers on {host}:{web_port} "
                             f"(HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise DawTimeout(f"REAPER's web interface at {host}:{web_port} did not answer within "
                             f"{timeout_s:.1f} s (a modal dialog open in REAPER?)") from None
        raise DawUnavailable(f"REAPER is not running, or its web interface is not enabled on "
                             f"{host}:{web_port} ({reason}; see docs/reaper-setup.md)") from None
    if not body.startswith("EXTSTATE\treapy\tserver_port\t"):
        raise DawUnavailable(f"something other than REAPER's web interface answers on {host}:{web_port}")
    value = body.split("\t", 3)[3].strip()
    if not value:
        return None  # reapy runs the activation action itself
    try:
        port = int(json.loads(value))
    except (ValueError, TypeError):
        raise DawUnavailable(f"REAPER publishes a reapy server port that is not a number: {value!r}") from None
    probe_server(host, port, timeout_s)
    return port


def probe_server(host: str, port: int, timeout_s: float) -> None:
    """Connect to reapy's server and wait for its greeting (its ``accept`` sends the client address)."""
    remote = not is_loopback(host)
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError:
        if remote:
            raise DawUnavailable(
                f"REAPER's web interface at {host} answers, but reapy's server port {port} there refuses "
                f"connections: MixBridge's bridge server listens on REAPER's own 127.0.0.1 only; forward "
                f"both ports (ssh -L {port}:127.0.0.1:{port} -L <web port>:127.0.0.1:<web port> and use "
                f"--host 127.0.0.1), docs/reaper-setup.md") from None
        raise DawStaleServer(f"REAPER publishes reapy server port {port} but nothing listens there; "
                             + RESTART_HINT) from None
    except OSError as exc:
        raise DawUnavailable(f"cannot reach reapy's server at {host}:{port} ({exc})") from None
    try:
        sock.settimeout(timeout_s)
        try:
            head = _recv_exactly(sock, 8)
            greeting = _recv_exactly(sock, int.from_bytes(head, "little"))
        except (socket.timeout, TimeoutError):
            raise DawStaleServer(
                f"reapy's server at {host}:{port} accepts connections but did not answer within "
                f"{timeout_s:.1f} s: its loop inside REAPER has stopped (reapy 0.10 stops when a "
                f"connection is lost during a pass), or another client holds it; " + RESTART_HINT) from None
        except (ConnectionError, OSError, EOFError) as exc:
            raise DawStaleServer(f"reapy's server at {host}:{port} closed the connection ({exc}); "
                                 + RESTART_HINT) from None
        if not greeting.startswith(b"("):
            raise DawUnavailable(f"something other than reapy's server listens on {host}:{port}")
    finally:
        with contextlib.suppress(OSError):
            sock.close()  # outside any HOLD: reapy's server takes it as a disconnect


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


# --- the worker -----------------------------------------------------------------------------------

class _Worker:
    """One daemon thread running submitted functions in order (an abandoned one never blocks exit)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="mixbridge-reapy", daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        self._jobs.put((fn, future))
        return future

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

    def stop(self) -> None:
        self._jobs.put(None)


class ReapyConnection:
    """reapy on a single worker thread, with deadlines, a budget and a round-trip counter.

    Parameters
    ----------
    host : str
        Where REAPER listens (its web interface and reapy's server); loopback unless told otherwise.
    web_port : int
        REAPER's web interface port (reapy's default 2307).
    timeout_s : float
        Deadline for each call.
    budget_s : float, optional
        How long REAPER may stay away inside a pass before the connection is given up
        (default ``BUDGET_FACTOR * timeout_s``).
    """

    def __init__(self, host: str = DEFAULTS.host, web_port: int = DEFAULTS.web_port,
                 timeout_s: float = DEFAULTS.timeout_s, budget_s: float | None = None):
        self.host = host
        self.web_port = web_port
        self.timeout_s = timeout_s
        self.budget_s = budget_s if budget_s is not None else BUDGET_FACTOR * timeout_s
        self.round_trips = 0
        self.calls: Counter[str] = Counter()
        self.reapy: Any = None
        self.rpr: Any = None
        self._worker: _Worker | None = None
        self.dead = False
        #: Inside a HOLD right now (set by :meth:`held`).
        self.in_hold = False
        #: The last call that missed its deadline came back within the budget (the link is intact).
        self.late = False

    # --- the worker -------------------------------------------------------------------------

    def _submit(self, fn: Callable[[], Any], timeout_s: float, *, what: str, hold_safe: bool = False) -> Any:
        """Run ``fn`` on the worker; on a missed deadline, wait out the budget inside a HOLD.

        ``hold_safe``: the request in flight is one reapy's server would survive losing even in
        its hold loop (so there is no budget to wait out).
        """
        if self._worker is None:
            self._worker = _Worker()
        future = self._worker.submit(fn)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            pass
        if self.in_hold and not hold_safe:
            try:
                future.result(timeout=max(0.0, self.budget_s - timeout_s))
            except FutureTimeout:
                self._abandon(abort=True)
                raise DawTimeout(f"REAPER did not answer {what} for {self.budget_s:.1f} s; the connection was "
                                 f"given up") from None
            except BaseException:
                raise
            self.late = True
            raise DawTimeout(f"REAPER answered {what} only after more than {timeout_s:.1f} s") from None
        self._abandon(abort=False)
        raise DawTimeout(f"REAPER did not answer {what} within {timeout_s:.1f} s "
                         f"(frozen by a dialog, or the bridge server script stopped)") from None

    def _client_socket(self) -> socket.socket | None:
        with contextlib.suppress(Exception):
            return self.reapy.tools.network.machines.get_selected_client()._socket
        return None

    def _abandon(self, abort: bool) -> None:
        """Give up the connection: close reapy's socket so the worker's blocked read returns.

        ``abort``: close with a RST (SO_LINGER 0), the close reapy's server survives when it
        comes back from a call inside the HOLD; otherwise an orderly close.
        """
        self.dead = True
        sock = self._client_socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                if abort:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    # --- connecting -----------------------------------------------------------------------------

    def connect(self) -> "ReapyConnection":
        """Check REAPER's side, then import or reconnect reapy against ``host``; a clear error if absent."""
        main = sys.modules.get("__main__")
        if main is not None and hasattr(main, "obj"):
            raise DawUnavailable("a global named 'obj' in __main__ makes reapy believe it runs inside REAPER")
        preflight(self.host, self.web_port, min(self.timeout_s, CONNECT_TIMEOUT_S))
        self.in_hold = self.late = False
        self._submit(self._connect_on_worker, CONNECT_TIMEOUT_S, what="the connection")
        self.dead = False
        atexit.register(_close_at_exit, weakref.ref(self))
        return self

    def _connect_on_worker(self) -> None:
        try:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                reapy = _import_reapy_offline()
                reapy.config.WEB_INTERFACE_PORT = self.web_port
                reapy.tools.network.machines.CLIENTS.pop(self.host, None)
                reapy.connect(self.host)
        except RecursionError as exc:
            raise DawUnavailable("REAPER's web interface answered, but its reapy server never started "
                                 "(is Python enabled in REAPER, and the activation action installed?)") from exc
        except ConnectionRefusedError as exc:
            raise DawStaleServer("REAPER published a reapy server port that nothing listens on; "
                                 + RESTART_HINT) from exc
        except ValueError as exc:  # json.JSONDecodeError
            raise DawUnavailable(f"something other than REAPER answers on port {self.web_port}") from exc
        except OSError as exc:
            raise DawUnavailable(f"cannot reach REAPER at {self.host}:{self.web_port}: {exc}") from exc
        except Exception as exc:  # reapy's DisabledDistAPIError (a non-local host that does not answer)
            if type(exc).__name__ != "DisabledDistAPIError":
                raise
            raise DawUnavailable(f"REAPER at {self.host}:{self.web_port} did not hand out reapy's server "
                                 "(see docs/reaper-setup.md)") from exc
        if not reapy.dist_api_is_enabled() or not hasattr(reapy.reascript_api, "CountTracks"):
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
            return self._submit(lambda: function(*args), timeout_s or self.timeout_s, what=name)
        except (DawTimeout, DawUnavailable):
            raise
        except (ConnectionError, OSError, EOFError, DisconnectedClientError) as exc:
            self._abandon(abort=False)  # the link is already gone
            raise DawUnavailable(f"the connection to REAPER was lost during {name} "
                                 f"({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})") from exc
        except DistError as exc:
            # REAPER answered, with an error (its traceback in the message): not a lost connection.
            raise DawRefused(f"{name}{args!r}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}") from exc
        # Anything else is a bug on our side and propagates as itself.

    @contextlib.contextmanager
    def held(self):
        """reapy's HOLD: REAPER serves only this connection until released (one pass, fast calls).

        A plain call first (see the module docstring), so a frozen REAPER is found out before it is
        asked to hold.
        """
        if self.dead or self.reapy is None:
            raise DawUnavailable("not connected to REAPER")
        self.call("GetAppVersion")
        ctx = self.reapy.inside_reaper()
        self.round_trips += 1
        self.late = False
        try:
            self._enter(ctx)
        except (ConnectionError, OSError, EOFError) as exc:
            self._abandon(abort=False)
            raise DawUnavailable(f"the connection to REAPER was lost entering a pass: {exc}") from exc
        try:
            yield self
        finally:
            if not self.dead:
                self.round_trips += 1
                try:
                    # RELEASE is answered outside reapy's hold loop: losing it is harmless.
                    self._submit(lambda: ctx.__exit__(None, None, None), self.timeout_s, what="RELEASE",
                                 hold_safe=True)
                except BaseException:
                    self.in_hold = False
                    raise
            self.in_hold = False

    def _enter(self, ctx: Any) -> None:
        # The HOLD request is answered from inside reapy's hold loop: treated as a call in the hold.
        self.in_hold = True
        try:
            self._submit(ctx.__enter__, self.timeout_s, what="HOLD")
        except DawTimeout:
            if self.late and not self.dead:  # the hold started late: release it before giving up
                with contextlib.suppress(Exception):
                    self._submit(lambda: ctx.__exit__(None, None, None), self.timeout_s, what="RELEASE",
                                 hold_safe=True)
            self.in_hold = False
            raise
        except BaseException:
            self.in_hold = False
            raise

    def close(self) -> None:
        """Let go of reapy's socket (an orderly close, outside any HOLD) and the worker."""
        if self.reapy is not None and not self.dead and not self.in_hold:
            sock = self._client_socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self.dead = True
        if self._worker is not None:
            self._worker.stop()
            self._worker = None


def _close_at_exit(ref: "weakref.ref[ReapyConnection]") -> None:
    """At interpreter exit: let go of reapy's socket while Python can still do it cleanly (inside a
    HOLD abortively, the close reapy's server has a chance to survive)."""
    conn = ref()
    if conn is not None and not conn.dead and conn.in_hold:
        conn._abandon(abort=True)
        return
    reapy = sys.modules.get("reapy")
    with contextlib.suppress(Exception):  # reapy's client (its socket outlives our objects)
        reapy.tools.network.machines.get_selected_client()._socket.close()


def _import_reapy_offline() -> Any:
    """``import reapy`` without its import-time connection to ``localhost:2307`` (made to fail at once)."""
    if "reapy" in sys.modules:
        return sys.modules["reapy"]
    original = urllib.request.urlopen
    hardwired = f"http://localhost:{REAPY_WEB_PORT}/"

    def urlopen(url, *args, **kwargs):
        if isinstance(url, str) and url.startswith(hardwired):
            raise urllib.error.URLError("reapy's import-time connection is made later, to --host")
        return original(url, *args, **kwargs)

    urllib.request.urlopen = urlopen
    try:
        import reapy  # noqa: PLC0415 - lazy on purpose: only DAW code imports reapy
    finally:
        urllib.request.urlopen = original
    return reapy
