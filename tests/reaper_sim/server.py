"""Serving: the fake "inside REAPER" environment, reapy's own server, the web interface.

Process layout (one simulator process)::

    main thread   = REAPER's main thread: MainLoop runs deferred ReaScript code
                    (reapy's server loop) and queued tasks at ``hz`` ticks/s
    http thread   = REAPER's web interface (EXTSTATE GET/SET, actions); every
                    request is executed on the main thread, as in REAPER
    control thread = the test control channel (control.py)

How reapy is made to believe it runs inside REAPER (reapy.md 1, 4.1):

1. ``sys.modules["reaper_python"]`` is a module whose ``RPR_*`` attributes are
   the :class:`~tests.reaper_sim.api.ReaScriptApi` functions, plus the ``_ft``
   table ``reapy.additional_api`` indexes;
2. ``__main__.obj`` exists (``reapy.is_inside_reaper()`` checks exactly that) and
   ``__main__.RPR_defer``/``RPR_atexit`` queue code on the main loop;
3. ``import reapy`` then takes its inside-REAPER branch; afterwards
   ``additional_api``'s ctypes versions of ``ValidatePtr2`` (and the MIDI
   helpers) are replaced by the model's, and ``reapy.reascript_api`` gets a
   module ``__getattr__`` raising :class:`~tests.reaper_sim.api.UnmodelledCall`;
4. the ``__main__`` block of ``reapy/reascripts/activate_reapy_server.py`` is
   replayed with reapy's own ``Server`` class and ``run_main_loop``; the only
   change is :class:`LoopbackServer`, a subclass whose ``bind`` replaces reapy's
   hard-coded ``0.0.0.0`` with ``127.0.0.1`` (reapy's JSON protocol executes any
   importable callable, so it must never listen on the network).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
import types
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from . import api as api_module
from . import fx_layouts
from .api import ReaScriptApi, UnmodelledCall
from .control import ControlServer
from .faults import Faults, ServerKilled, die
from .pointers import format_pointer
from .project import Project

LOOPBACK = "127.0.0.1"
#: Named action the web interface runs to (re)start reapy's server; published
#: in EXTSTATE ``reapy/activate_reapy_server`` as reapy.configure_reaper() would.
ACTIVATE_ACTION = "_RSreaper_sim_activate_reapy_server"
#: A render holds the main thread for as long as it takes (slow renders in tests).
RENDER_TIMEOUT_S = 300.0
#: reapy.additional_api replaces these with ctypes calls into REAPER's C table.
_ADDITIONAL_API_SHADOWS = ("ValidatePtr2", "MIDI_GetEvt", "MIDI_GetHash", "MIDI_GetTrackHash",
                           "MIDI_InsertEvt", "MIDI_InsertTextSysexEvt", "MIDI_SetEvt")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Command-line settings of one simulator process."""

    project_path: Path
    web_port: int = 0
    server_port: int = 0
    state_out: Path | None = None
    hz: float = 30.0
    verbose: bool = False
    activation_script: Path | None = None
    #: OSC surface (osc_surface.py): UDP listen port (None = no surface, 0 = a free port),
    #: feedback destination and pattern file.
    osc_port: int | None = None
    osc_feedback: tuple[str, int] | None = None
    osc_pattern: Path | None = None
    #: Rendering (render.py): frames per written block and the pause after each block.
    render_block_frames: int = 4096
    render_block_delay_s: float = 0.0
    #: After a deferred script error, also run the script's at-exit code (the other reading of
    #: REAPER; by default it does not, leaving reapy's ``server_port`` published).
    atexit_after_error: bool = False
    #: ``user:password`` of the web interface (REAPER's "Username:password" field); None = open.
    web_password: str | None = None
    #: Address the web interface (and OSC surface) listens on, and the one reapy's server binds
    #: (replayed activation only; a user activation script binds what it binds).  Loopback only.
    bind: str = LOOPBACK
    server_bind: str | None = None
    #: Published alternatives of the FX layouts (fx_layouts.VARIANTS).
    fx_variants: frozenset[str] = frozenset()


class _Task:
    """A function queued for the main thread, with its outcome."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class MainLoop:
    """REAPER's main thread: deferred ReaScript code plus queued tasks.

    Parameters
    ----------
    hz : float
        Ticks per second. REAPER runs deferred scripts at roughly 30 Hz, which
        makes every un-batched reapy call cost about 33 ms (reapy.md 2.6).
    faults : Faults
        Consulted between ticks (stalls, drops).
    stop : threading.Event
        Ends :meth:`run`.
    """

    def __init__(self, hz: float, faults: Faults, stop: threading.Event) -> None:
        self.period_s = 1.0 / hz
        self.faults = faults
        self.stop = stop
        self.thread_id = threading.get_ident()
        self._deferred: list[str] = []
        self._atexit: list[str] = []
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self.on_script_died: Callable[[], None] = lambda: None
        self.atexit_after_error = False
        #: Set by the control command ``kill_server``: the next deferred tick fails.
        self.kill_deferred = False

    # RPR_defer / RPR_atexit as REAPER provides them in __main__.
    def defer(self, code: str) -> None:
        self._deferred.append(code)

    def atexit(self, code: str) -> None:
        self._atexit.append(code)

    def call(self, fn: Callable[[], Any], timeout_s: float) -> Any:
        """Run ``fn`` on the main thread and return its result (from another thread)."""
        if threading.get_ident() == self.thread_id:
            return fn()
        task = _Task(fn)
        self._tasks.put(task)
        if not task.done.wait(timeout_s):
            raise TimeoutError("REAPER main loop is busy (stall, or a client holding it)")
        if task.error is not None:
            raise task.error
        return task.result

    def run(self) -> None:
        next_tick = time.monotonic()
        while not self.stop.is_set():
            self.faults.between_ticks()
            if self.stop.is_set():
                break
            self._run_tasks()
            self._run_deferred()
            next_tick += self.period_s
            delay = next_tick - time.monotonic()
            if delay < 0:
                next_tick = time.monotonic()  # overran: don't try to catch up
            else:
                self.stop.wait(delay)  # pacing, not synchronisation
        self._run_tasks()  # answer anything queued during shutdown

    def _run_tasks(self) -> None:
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                return
            try:
                task.result = task.fn()
            except BaseException as error:  # handed back to the waiting thread
                task.error = error
            task.done.set()

    def _run_deferred(self) -> None:
        batch, self._deferred = self._deferred, []
        for code in batch:
            try:
                if self.kill_deferred:
                    self.kill_deferred = False
                    raise ServerKilled("kill_server control command")
                exec(code, {"__name__": "__reaper_deferred__"})
            except (Exception, ServerKilled):
                # REAPER shows "Deferred script execution error" and the script's defer chain
                # ends (nothing re-defers it); REAPER lives on.  Whether REAPER then runs the
                # script's at-exit code is not documented; by default it does not (so reapy's
                # server_port stays published), --atexit-after-error models the other reading.
                sys.stderr.write("reaper_sim: deferred script error:\n" + traceback.format_exc())
                self._deferred.clear()
                if self.atexit_after_error:
                    self.run_atexit()
                self.on_script_died()
                return

    def run_atexit(self) -> None:
        hooks, self._atexit = self._atexit, []
        for code in hooks:
            try:
                exec(code, {"__name__": "__reaper_atexit__"})
            except Exception:
                sys.stderr.write("reaper_sim: at-exit error:\n" + traceback.format_exc())


def _unmodelled_attribute(name: str) -> Any:
    # Module-level __getattr__ for the server-side reapy.reascript_api.
    if name.startswith("__"):
        raise AttributeError(name)
    raise UnmodelledCall(f"RPR function {name!r} is not modelled by reaper_sim "
                         f"(modelled: see reapy.reascript_api.__all__)")


def install_fake_reaper(functions: dict[str, Callable], loop: MainLoop) -> types.ModuleType:
    """Make this process look like REAPER's embedded Python, then import reapy.

    Returns
    -------
    module
        The imported ``reapy`` package, in inside-REAPER mode.
    """
    if "reapy" in sys.modules:
        raise RuntimeError("reapy was imported before the fake REAPER environment existed")
    reaper_python = types.ModuleType("reaper_python")
    reaper_python.__doc__ = "reaper_sim's stand-in for REAPER's generated reaper_python"
    reaper_python._ft = {}
    for name, function in functions.items():
        setattr(reaper_python, "RPR_" + name, function)
    sys.modules["reaper_python"] = reaper_python
    main = sys.modules["__main__"]
    main.obj = object()
    main.RPR_defer = loop.defer
    main.RPR_atexit = loop.atexit

    import reapy  # noqa: E402  (must follow the environment set-up above)

    rpr = reapy.reascript_api
    for name in _ADDITIONAL_API_SHADOWS:
        if name in functions:
            setattr(rpr, name, functions[name])
        elif hasattr(rpr, name):
            delattr(rpr, name)
    rpr.__getattr__ = _unmodelled_attribute
    if sorted(rpr.__all__) != sorted(functions):
        raise RuntimeError("reapy.reascript_api.__all__ does not match the modelled functions")
    return reapy


class ReapyHost:
    """Runs reapy's own server inside the fake REAPER, as its activation script would.

    When reapy's server loop dies (a deferred script error, e.g. a client that vanished during a
    HOLD), nothing here closes its sockets: in REAPER they stay open too, because reapy's
    ``Deferrer`` deletes a callback only after it returns, so the failed ``run_main_loop`` (and
    through its globals the ``SERVER``) stays referenced until REAPER quits.  The listening socket
    keeps accepting connections into the kernel's backlog that nobody serves, and running the
    activation again binds the same port while the old socket still holds it, which the host
    OS decides (Linux and macOS refuse: "Address already in use").
    """

    def __init__(self, reapy: types.ModuleType, port: int, script_path: Path | None = None,
                 bind: str = LOOPBACK) -> None:
        from reapy.reascripts import activate_reapy_server
        from reapy.tools.network.server import Server

        self.script_path = script_path

        class LoopbackServer(Server):
            """reapy's Server bound to a loopback address; reapy hard-codes 0.0.0.0."""

            def bind(self, address):  # called once from Server.__init__
                _host, requested_port = address
                return super().bind((bind, requested_port))

        self.reapy = reapy
        self.script = activate_reapy_server
        self.server_class = LoopbackServer
        self.port = port
        #: Every server ever started (a dead one's sockets stay open, see the class docstring).
        self.servers: list[Any] = []
        #: Whether the deferred server loop is still being re-deferred.
        self.loop_running = False
        self.activations = 0
        self.failed_activations = 0

    @property
    def server(self) -> Any:
        return getattr(self.script, "SERVER", None)

    def activate(self) -> int:
        """Replay ``activate_reapy_server.py``'s ``__main__`` block; returns the port.

        ``get_new_reapy_server`` is inlined only to publish the port the kernel
        chose (``reapy.config.REAPY_SERVER_PORT`` is fixed at 2306); later
        activations reuse that port, as REAPER's fixed port would be reused.
        """
        if self.script_path is not None:
            port = self._activate_with_script()
        else:
            server = self.server_class(self.port)
            self.servers.append(server)
            self.port = server._socket.getsockname()[1]
            self.reapy.set_ext_state("reapy", "server_port", self.port)
            self.script.SERVER = server
            self.script.run_main_loop()
            self.reapy.at_exit(self.reapy.delete_ext_state, "reapy", "server_port")
            port = self.port
        self.activations += 1
        self.loop_running = True
        return port

    def activate_action(self) -> None:
        """The activation run as a REAPER action (web interface): a failing script is reported, not raised."""
        try:
            self.activate()
        except Exception:
            self.failed_activations += 1
            sys.stderr.write("reaper_sim: ReaScript execution error (activation):\n" + traceback.format_exc())

    def _activate_with_script(self) -> int:
        """Run a user-supplied activation ReaScript (e.g. MixBridge's loopback one) as REAPER would.

        The script runs in this process's fake-REAPER environment with its own code: it must
        define ``main(port)`` (its ``__main__`` block calls ``main()`` with reapy's fixed port);
        only the port is chosen here, because 2306 may be taken on a test machine.
        """
        import runpy

        if not self.port:
            with socket.socket() as probe:
                probe.bind((LOOPBACK, 0))
                self.port = probe.getsockname()[1]
        namespace = runpy.run_path(str(self.script_path), run_name="reaper_sim_activation")
        # run_path hands back a copy of the script's globals: follow the live ones (SERVER changes).
        self.script = _Namespace(namespace["main"].__globals__)
        namespace["main"](self.port)
        if self.server is not None:
            self.servers.append(self.server)
        return self.port

    def died(self) -> None:
        self.loop_running = False

    def state(self) -> dict[str, Any]:
        """What a test can see of reapy's server: running, listening sockets, the published port."""
        listening = [s._socket.getsockname()[1] for s in self.servers if s._socket.fileno() >= 0]
        return {"loop_running": self.loop_running, "listening_ports": listening,
                "activations": self.activations, "failed_activations": self.failed_activations,
                "connections": sum(len(s.connections) for s in self.servers if s._socket.fileno() >= 0)}

    def drop_connections(self) -> int:
        """Close every client connection (main thread only)."""
        server = self.server
        if server is None:
            return 0
        dropped = list(server.connections.items())
        for address, connection in dropped:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()
            del server.connections[address]
        return len(dropped)

    def close(self) -> None:
        """At shutdown: close every server ever started."""
        for server in self.servers:
            for connection in list(server.connections.values()):
                with contextlib.suppress(OSError):
                    connection.close()
            server.close()
        self.servers.clear()
        if self.server is not None:
            self.script.SERVER = None


class _Namespace:
    """Attribute view of a script's live globals (so ``.SERVER`` follows the script)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        object.__setattr__(self, "_ns", namespace)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._ns[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._ns[name] = value


def _escape_extstate(value: str) -> str:
    # The web interface escapes the value so the tab-separated line stays intact.
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


#: csurf_www.cpp ``ProcessCommand``: ``char want[1024]; lstrcpyn(want, in, min(sizeof(want), inlen+1))``
#: keeps at most 1023 bytes of each ``;``-separated command, still URL-encoded.
WEB_COMMAND_BYTES = 1023
#: ``o->AppendFormatted(512, "EXTSTATE\t%s\t%s\t", ...)``: the reply line's head is cut at 512 chars.
EXTSTATE_HEAD_CHARS = 512


def url_decode(text: str) -> str:
    """WDL's ``WebServerBaseClass::url_decode``: ``+`` is a space, ``%XX`` a byte, a bad escape stays."""
    raw = text.encode("latin-1", errors="replace")  # http.server hands the request line over as latin-1
    out = bytearray()
    i = 0
    while i < len(raw):
        pair = raw[i + 1:i + 3]
        if raw[i] == ord("+"):
            out.append(ord(" "))
            i += 1
        elif raw[i] == ord("%") and len(pair) == 2 and pair[:1] != b"%" \
                and all(c in b"0123456789abcdefABCDEF" for c in pair):
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", errors="replace")


class WebInterface(ThreadingHTTPServer):
    """REAPER's web interface (``csurf_www.cpp``), reduced to the commands the project uses.

    As REAPER's: only the part of the request before ``?`` is the command list (WDL's
    ``get_request_file``); commands are separated by ``;``; each is cut to
    :data:`WEB_COMMAND_BYTES` bytes *before* it is URL-decoded; ``SET/EXTSTATE/s/k/v`` decodes each
    part with :func:`url_decode` (``+`` is a space), ``GET/EXTSTATE/s/k`` decodes nothing; a reply's
    ``EXTSTATE\ts\tk\t`` head is cut at :data:`EXTSTATE_HEAD_CHARS`, its value is not cut.  With a
    user and password set (``--web-password user:pass``) every request without that Basic
    authorization gets ``401 Unauthorized`` and ``WWW-Authenticate: Basic realm="reaper_www"``.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, sim: Sim, password: str | None = None, bind: str = LOOPBACK) -> None:
        self.sim = sim
        self.password = password
        self.unauthorized = 0
        super().__init__((bind, port), _WebHandler)


class _WebHandler(BaseHTTPRequestHandler):
    server: WebInterface
    server_version = "reaper_sim"

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if self.server.password and not self._authorized():
            self.server.unauthorized += 1
            self._reply(401, "", {"WWW-Authenticate": 'Basic realm="reaper_www"'})
            return
        path = self.path.split("?", 1)[0]  # get_request_file(): the query string is not a command
        if not path.startswith("/_/"):
            self._reply(404, "reaper_sim serves only /_/ commands\n")
            return
        lines = []
        try:
            for command in filter(None, path[3:].split(";")):
                lines.append(self.server.sim.web_command(command[:WEB_COMMAND_BYTES]))
        except UnmodelledCall as error:
            self._reply(404, f"{error}\n")
            return
        except TimeoutError as error:
            self._reply(503, f"{error}\n")
            return
        self._reply(200, "".join(lines))

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header[:5].lower() == "basic":
            return False
        try:
            given = base64.b64decode(header[5:].strip(), validate=False).decode("utf-8", errors="replace")
        except (ValueError, binascii.Error):
            return False
        return given == self.server.password

    def _reply(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (e.g. reapy's 0.5 s timeout during a stall)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.sim.config.verbose:
            sys.stderr.write("reaper_sim web: " + format % args + "\n")


class Sim:
    """One simulated REAPER: model, API, reapy server, web interface, control channel."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        for address in (config.bind, config.server_bind or config.bind):
            if not ipaddress.ip_address(address).is_loopback:
                raise ValueError(f"{address} is not a loopback address: the simulator never listens on a network")
        fx_layouts.use_variants(config.fx_variants)
        self.stop = threading.Event()
        self.project = Project.from_json(json.loads(config.project_path.read_text()))
        self.faults = Faults(self._drop_connections, self.stop)
        self.api = ReaScriptApi(self.project, api_module.resource_path_for(os.getpid()),
                                before_call=lambda name, args: self.faults.before_rpr_call(name))
        self.loop = MainLoop(config.hz, self.faults, self.stop)
        self.loop.atexit_after_error = config.atexit_after_error
        self.functions = self.api.functions()
        self.reapy = install_fake_reaper(self.functions, self.loop)
        self.reapy_host = ReapyHost(self.reapy, config.server_port, config.activation_script,
                                    config.server_bind or config.bind)
        self.loop.on_script_died = self._on_script_died
        # What reapy.configure_reaper() writes to reaper-extstate.ini.
        self.api.ext_state[("reapy", "activate_reapy_server")] = json.dumps(ACTIVATE_ACTION)
        self.api.renderer.block_frames = config.render_block_frames
        self.api.renderer.block_delay_s = config.render_block_delay_s
        self.web = WebInterface(config.web_port, self, config.web_password, config.bind)
        self.control = ControlServer(LOOPBACK, self)
        self.osc = None
        if config.osc_port is not None:
            from .osc_surface import OscSurface
            self.osc = OscSurface(self, config.osc_port, config.osc_feedback, config.osc_pattern)

    # -- lifecycle ----------------------------------------------------------

    def run(self) -> int:
        """Serve until shutdown; returns the process exit status."""
        server_port = self.reapy_host.activate()
        # Startup's own SetExtState is not a client call.
        self.api.call_counts.clear()
        self.api.call_log.clear()
        # Short poll intervals keep shutdown fast; the servers otherwise idle in select().
        threading.Thread(target=self.web.serve_forever, args=(0.05,), name="web",
                         daemon=True).start()
        threading.Thread(target=self.control.serve_forever, args=(0.05,), name="control",
                         daemon=True).start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        osc_field = ""
        if self.osc is not None:
            self.osc.start()
            osc_field = f" osc_port={self.osc.port}"
        print(f"READY web_port={self.web.server_address[1]} server_port={server_port} "
              f"control_port={self.control.server_address[1]} pid={os.getpid()}{osc_field}", flush=True)
        try:
            self.loop.run()
        finally:
            for service in (self.web, self.control):
                service.shutdown()
                service.server_close()
            self.reapy_host.close()
            if self.osc is not None:
                self.osc.close()
            if self.config.state_out is not None:
                self.write_state(self.config.state_out)
        return 0

    def write_state(self, path: Path) -> None:
        path.write_text(json.dumps(self.dump(), indent=2, allow_nan=True))

    def _on_script_died(self) -> None:
        # reapy's server loop raised (e.g. a client vanished mid-HOLD).  REAPER keeps running;
        # the server's sockets stay open and unserved (ReapyHost's docstring).
        self.reapy_host.died()
        published = self.api.ext_state.get(("reapy", "server_port"), "")
        sys.stderr.write(f"reaper_sim: reapy's server loop is dead; its port stays open, unserved; "
                         f"server_port is {published or 'cleared'}\n")

    def _drop_connections(self) -> int:
        return self.reapy_host.drop_connections()

    # -- web interface (runs the work on the main thread) -------------------

    def web_command(self, want: str) -> str:
        """One ``/_/`` command as ``ProcessCommand`` reads it (already cut to 1023 bytes, still encoded).

        ``GET/EXTSTATE/s/k``, ``SET/EXTSTATE/s/k/v``, ``SET/EXTSTATEPERSIST/s/k/v``, or an action
        (a number or a ``_named`` command id).
        """
        timeout_s = 10.0
        if want.startswith("GET/EXTSTATE/"):
            section, sep, key = want[len("GET/EXTSTATE/"):].partition("/")
            if not sep:
                return ""
            value = self.loop.call(lambda: self.api.ext_state.get((section, key), ""), timeout_s)
            head = f"EXTSTATE\t{section}\t{key}\t"[:EXTSTATE_HEAD_CHARS]
            return f"{head}{_escape_extstate(value)}\n"
        for prefix in ("SET/EXTSTATE/", "SET/EXTSTATEPERSIST/"):
            if want.startswith(prefix):
                section, sep, rest = want[len(prefix):].partition("/")
                key, sep2, value = rest.partition("/")
                if not (sep and sep2):
                    return ""  # REAPER sets nothing without all three parts
                section, key, value = url_decode(section), url_decode(key), url_decode(value)
                self.loop.call(lambda: self.api.ext_state.__setitem__((section, key), value), timeout_s)
                return ""
        if want == ACTIVATE_ACTION:
            # REAPER runs the action on its main thread before answering, which
            # is what keeps reapy's activation recursion from storming.
            self.loop.call(self.reapy_host.activate_action, timeout_s)
            return ""
        if want.isdigit() or want in self.api.named_commands:
            # An action (render, the bounce script): run on the main thread, answered when done.
            self.loop.call(lambda: self.api.run_named_action(want), RENDER_TIMEOUT_S)
            return ""
        raise UnmodelledCall(f"web interface command {want!r} is not modelled")

    # -- control channel commands (called from the control thread) ----------

    def dump(self) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            state = self.project.to_json()
            state["ext_state"] = [{"section": s, "key": k, "value": v}
                                  for (s, k), v in sorted(self.api.ext_state.items())]
            state["armed_faults"] = self.faults.armed()
            return state
        return self.loop.call(build, timeout_s=5.0)

    def calls(self, reset: bool = False) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            result = {"counts": dict(self.api.call_counts), "log": list(self.api.call_log)}
            if reset:
                self.api.call_counts.clear()
                self.api.call_log.clear()
            return result
        return self.loop.call(build, timeout_s=5.0)

    def manual_edit(self, edit: Callable[[], str], undo_name: str | None) -> str:
        """Apply a "by hand" edit on the main thread and record its undo point."""
        def apply() -> str:
            before = self.project.snapshot()
            description = edit()
            name = undo_name or f"Manual edit: {description}"
            self.project.undo.record(name, -1, before, self.project.state)
            return name
        return self.loop.call(apply, timeout_s=5.0)

    def set_track_value(self, track: int | str, key: str, value: float,
                        undo_name: str | None = None) -> str:
        def edit() -> str:
            target = self.project.find_track(track)
            pointer = format_pointer("MediaTrack*", target.address)
            if not self.functions["SetMediaTrackInfo_Value"].body(self.api, target, key, value):
                raise ValueError(f"{key} is read-only")
            return f"{key} of {pointer} = {value}"
        # The body is called directly so manual edits do not count as RPR calls.
        return self.manual_edit(edit, undo_name)

    def edit_envelope_point(self, track: int | str, index: int, envelope: str = "<VOLENV2",
                            time_s: float | None = None, value: float | None = None, delete: bool = False,
                            undo_name: str | None = None) -> str:
        """Move, change or delete point ``index`` (0-based, in time order) of a track envelope by hand
        (``value`` is the stored value, as ``GetEnvelopePoint`` returns it)."""
        def edit() -> str:
            target = self.project.find_track(track)
            env = target.envelopes.get(envelope)
            if env is None or not 0 <= index < len(env.points):
                raise IndexError(f"track {target.name!r} has no point {index} on {envelope}")
            point = env.points[index]
            if delete:
                env.points.pop(index)
                return f"deleted {envelope} point {index}"
            if time_s is not None:
                point.time_s = float(time_s)
            if value is not None:
                point.value = float(value)
            env.sort_points()
            return f"{envelope} point {index} = ({point.time_s}, {point.value})"
        return self.manual_edit(edit, undo_name)

    def set_fx_param(self, track: int | str, fx: int | str, param: int | str,
                     normalized: float | None = None, raw: float | None = None,
                     undo_name: str | None = None) -> str:
        if (normalized is None) == (raw is None):
            raise ValueError("give exactly one of normalized or raw")

        def edit() -> str:
            target = self.project.find_track(track)
            instance = self._find_fx(target, fx)
            index = instance.param_index(param)
            if normalized is not None:
                instance.set_normalized(index, normalized)
            else:
                instance.set_raw(index, raw)
            return f"{instance.display_name} param {index}"
        return self.manual_edit(edit, undo_name)

    @staticmethod
    def _find_fx(track: Any, ref: int | str) -> Any:
        if isinstance(ref, int):
            if not 0 <= ref < len(track.fxs):
                raise IndexError(f"track has no FX {ref}")
            return track.fxs[ref]
        for instance in track.fxs:
            if ref in (instance.display_name, instance.plugin.name, instance.renamed):
                return instance
        raise KeyError(f"track has no FX named {ref!r}")

    def drop(self) -> int:
        return self.faults.request_drop(timeout_s=5.0)

    def load(self, data: dict[str, Any]) -> None:
        """Replace the project (``load``): a fresh project state, undo history and counters, pointers
        never reused.  Ext state, reapy's server and the faults are left as they are."""
        def swap() -> None:
            self.project.replace_with(Project.from_json(data, allocate=self.project.allocate))
        self.loop.call(swap, timeout_s=5.0)

    def activate(self) -> dict[str, Any]:
        """The producer runs the reapy activation action in REAPER (the user script, if any)."""
        self.loop.call(self.reapy_host.activate_action, timeout_s=5.0)
        return self.reapy_state()

    def kill_server(self) -> None:
        """reapy's server loop dies at its next tick, as after an error escaping reapy's code."""
        self.loop.kill_deferred = True

    def reapy_state(self) -> dict[str, Any]:
        """reapy's server as REAPER holds it, and the published ``reapy/server_port`` (no main thread needed)."""
        state = self.reapy_host.state()
        state["server_port"] = self.api.ext_state.get(("reapy", "server_port"), "")
        return state

    def bounce(self) -> dict[str, Any]:
        """Run the bounce script's model (render.py) on the main thread; its outcome."""
        return self.loop.call(self.api.renderer.bounce, timeout_s=RENDER_TIMEOUT_S)

    def die_now(self, exit_code: int) -> None:
        die(exit_code, "control channel")

    def shutdown(self) -> None:
        self.stop.set()


