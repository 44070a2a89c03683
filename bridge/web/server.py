"""The review page's HTTP server: standard library only (``http.server`` + ``ThreadingHTTPServer``,
server-sent events), so nothing is added to install and every line that faces the network is ours.

Routes, all under ``/r/<token>/`` (anything else is 404)::

    GET  /r/<token>/                    the page (static/index.html)
    GET  /r/<token>/static/<name>       app.js, app.css (a fixed list read from the package)
    GET  /r/<token>/api/state           the snapshot (JSON, ReviewState.snapshot)
    GET  /r/<token>/events              server-sent events: "state" with the snapshot on every change
    POST /r/<token>/api/action          {"action", "plan", ...}: queued for the controller (202)
    POST /r/<token>/api/render          {"plan", "ids"}: the render of that plan state (cached or queued)
    GET  /r/<token>/api/render/<key>    a render's status
    GET  /r/<token>/audio/<key>/<file>  a finished render's audio (HEAD too; byte ranges)
    GET  /r/<token>/notes               the current pass's notes (HTML)

Security (docs/review.md):

- **Exposure**: the rule of the OSC surface (:func:`bridge.control.server.allowed_hosts`): 127.0.0.1 by
  default, and then loopback clients only; any other bind needs an allow-list of client hosts
  (``--page-allow``), else ``E_SURFACE_EXPOSED``; only those hosts may connect.
- **Token**: a random token (``secrets.token_urlsafe``, 32 bytes) is part of every path; it is new on
  every start and compared in constant time.  Without it, every request is 404.
- **Host**: the ``Host`` header must name this server (an IP literal, ``localhost`` or this machine's
  name, with the bound port), so a DNS-rebinding page cannot reach it under its own name.
- **Actions**: POST only, ``Content-Type: application/json`` (a cross-site form cannot send it
  without a CORS preflight, which is never answered), an ``Origin`` equal to the page's own
  (``http://<Host>``), ``Sec-Fetch-Site`` (when sent) ``same-origin``; GET never changes anything.
- **Paths**: assets and audio are dictionary look-ups (a fixed asset list; a render's own files by
  served name after the key is checked as hex); no part of a URL is ever joined to a path.
- **Bounded**: bodies up to :data:`MAX_BODY_BYTES`, at most :data:`MAX_CONNECTIONS` connections and
  :data:`MAX_EVENT_STREAMS` event streams, a socket timeout on every request.
- Every response: ``Content-Security-Policy`` (no inline script, nothing from elsewhere),
  ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``.
"""
from __future__ import annotations

import collections
import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

from ..control.server import allowed_hosts, host_allowed, is_loopback
from ..settings import ReviewPageOptions
from .state import ActionRefused, ReviewState

log = logging.getLogger("mixbridge.review")
log.addHandler(logging.NullHandler())

DEFAULTS = ReviewPageOptions()
MAX_BODY_BYTES = 16 * 1024
MAX_CONNECTIONS = 64
MAX_EVENT_STREAMS = 8
REQUEST_TIMEOUT_S = 20.0
KEEPALIVE_S = 15.0
CHUNK_BYTES = 64 * 1024
#: The page's assets: served name -> content type (read once from the package's static/ folder).
ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}
AUDIO_TYPES = {".wav": "audio/wav"}
_KEY = re.compile(r"[0-9a-f]{24}")
_AUDIO_NAME = re.compile(r"(mix_before|mix_after|stem-\d{1,5}|source-\d{1,5})\.wav")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; media-src 'self'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: The notes are one self-contained file with inline CSS and SVG, and no scripts.
NOTES_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
             "frame-ancestors 'none'")
COUNTER_NAMES = ("requests", "not_allowed", "too_many_connections", "bad_host", "bad_token", "bad_origin",
                 "bad_method", "bad_type", "too_large", "bad_request", "not_found", "too_many_streams",
                 "ranges", "actions", "renders", "internal_errors")
REFUSED = ("not_allowed", "too_many_connections", "bad_host", "bad_token", "bad_origin", "bad_method", "bad_type",
           "too_large", "bad_request", "too_many_streams")


def _peer(host: str) -> str:
    """An IPv4-mapped IPv6 peer (``::ffff:10.0.0.2``) as its IPv4 address."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped) if mapped is not None else str(ip)


class _Refused(Exception):
    def __init__(self, status: int, counter: str, message: str):
        super().__init__(message)
        self.status, self.counter = status, counter


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 32

    def __init__(self, address: tuple[str, int], app: "ReviewServer"):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def verify_request(self, request, client_address) -> bool:
        app = self.app
        app.count("requests")
        if not host_allowed(_peer(client_address[0]), app.allow):
            app.count("not_allowed")
            return False
        if not self._slots.acquire(blocking=False):
            app.count("too_many_connections")
            return False
        with self._open_lock:
            self._open.add(request)
        return True

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        """A browser dropping a connection (a media element cancelling a range request) is routine."""
        import sys  # noqa: PLC0415

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("review page: %s from %s", type(exc).__name__, client_address[0])
            return
        self.app.count("internal_errors")
        log.error("review page: internal error on a request from %s", client_address[0], exc_info=exc)

    def close_connections(self) -> None:
        """End every open connection (idle keep-alive ones and event streams) at stop."""
        with self._open_lock:
            for sock in list(self._open):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class ReviewServer:
    """Serve the review page of one :class:`~bridge.web.state.ReviewState`; see the module docstring.

    Parameters
    ----------
    state : ReviewState
    bind : str
        Loopback by default; anything else needs ``allow``.
    port : int
        TCP port (0 picks a free one; see :attr:`url`).
    allow : iterable of str
        Client hosts allowed to connect (IP literals or names, resolved once).

    Raises
    ------
    SurfaceExposed
        ``E_SURFACE_EXPOSED`` for a non-loopback ``bind`` without ``allow``.
    """

    def __init__(self, state: ReviewState, bind: str = DEFAULTS.bind, port: int = DEFAULTS.port,
                 allow: Iterable[str] = ()):
        self.state = state
        self.bind = bind
        self.port = port
        self.allow = allowed_hosts(bind, allow, what="the review page", flag="--page-allow")
        self.token = secrets.token_urlsafe(32)
        self.assets = {name: resources.files(__package__).joinpath("static", name).read_bytes() for name in ASSETS}
        self._counters: collections.Counter[str] = collections.Counter({k: 0 for k in COUNTER_NAMES})
        self._counter_lock = threading.Lock()
        self._streams = threading.BoundedSemaphore(MAX_EVENT_STREAMS)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._names = self._own_names()

    # --- life cycle ------------------------------------------------------------------------------------

    def start(self) -> "ReviewServer":
        self._httpd = _HTTPServer((self.bind, self.port), self)
        self.state.start()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="mixbridge-review-http", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.state.stop(timeout_s)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> "ReviewServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        assert self._httpd is not None, "start() first"
        host, port = self._httpd.server_address[:2]
        return host, port

    @property
    def url(self) -> str:
        """The page's address with its token (what to open; the notes link to it)."""
        host, port = self.address
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/r/{self.token}/"

    @property
    def counters(self) -> dict[str, int]:
        with self._counter_lock:
            out = dict(self._counters)
        out["refused"] = sum(out[k] for k in REFUSED)
        return out

    def count(self, name: str) -> None:
        with self._counter_lock:
            self._counters[name] += 1

    # --- checks ------------------------------------------------------------------------------------------

    def _own_names(self) -> frozenset[str]:
        names = {"localhost", "127.0.0.1", "::1"}
        if not is_loopback(self.bind):
            names |= {self.bind, socket.gethostname().lower(), socket.getfqdn().lower(),
                      socket.gethostname().lower() + ".local"}
        return frozenset(n for n in names if n and n not in ("0.0.0.0", "::"))

    def check_host(self, header: str | None) -> str:
        """The ``Host`` header if it names this server with its port; else refused (421)."""
        if not header or len(header) > 255:
            raise _Refused(400, "bad_host", "no Host header")
        port = self.address[1]
        try:
            parts = urlsplit("//" + header)
            name, given = (parts.hostname or "").lower(), parts.port
        except ValueError as exc:
            raise _Refused(400, "bad_host", "malformed Host header") from exc
        literal = True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            literal = False
        if given != port or not (name in self._names or (literal and not is_loopback(self.bind))):
            raise _Refused(421, "bad_host", f"this server does not answer to {header!r}")
        return header

    def check_token(self, token: str) -> None:
        if not hmac.compare_digest(token.encode("utf-8", "replace"), self.token.encode()):
            raise _Refused(404, "bad_token", "not found")

    @staticmethod
    def check_origin(handler: BaseHTTPRequestHandler, host: str) -> None:
        """An action must come from the page itself (see the module docstring)."""
        origin = handler.headers.get("Origin")
        if origin != f"http://{host}":
            raise _Refused(403, "bad_origin", "actions are accepted from the review page only")
        site = handler.headers.get("Sec-Fetch-Site")
        if site is not None and site != "same-origin":
            raise _Refused(403, "bad_origin", "actions are accepted from the review page only")
        ctype = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _Refused(415, "bad_type", "actions are JSON (Content-Type: application/json)")

    @staticmethod
    def read_json(handler: BaseHTTPRequestHandler) -> dict[str, Any]:
        length = handler.headers.get("Content-Length")
        if length is None or handler.headers.get("Transfer-Encoding"):
            raise _Refused(411, "bad_request", "a body needs Content-Length")
        try:
            n = int(length)
        except ValueError as exc:
            raise _Refused(400, "bad_request", "bad Content-Length") from exc
        if not 0 <= n <= MAX_BODY_BYTES:
            raise _Refused(413, "too_large", f"bodies are at most {MAX_BODY_BYTES} bytes")
        body = handler.rfile.read(n)
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Refused(400, "bad_request", "the body is not JSON") from exc
        if not isinstance(data, dict):
            raise _Refused(400, "bad_request", "the body must be a JSON object")
        return data

    # --- dispatch -------------------------------------------------------------------------------------------

    def handle(self, h: "_Handler", method: str) -> None:
        try:
            host = self.check_host(h.headers.get("Host"))
            path = h.path.split("?", 1)[0].split("#", 1)[0]  # no URL parsing: "//x" is no host here
            parts = path.split("/")
            if len(parts) < 3 or parts[0] != "" or parts[1] != "r":
                raise _Refused(404, "bad_token", "not found")
            self.check_token(parts[2])
            rest = parts[3:]
            if not rest:  # /r/<token> -> /r/<token>/
                h.respond(308, b"", "text/plain", {"Location": f"/r/{self.token}/"})
                return
            self._route(h, method, host, rest)
        except _Refused as exc:
            self.count(exc.counter)
            h.respond(exc.status, (json.dumps({"error": str(exc)}) + "\n").encode(), "application/json")
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        except Exception:  # noqa: BLE001 - a request must never take the server down
            self.count("internal_errors")
            log.exception("review page: internal error on %s %s", method, h.path)
            try:
                h.respond(500, b'{"error": "internal error"}\n', "application/json")
            except OSError:
                h.close_connection = True

    def _route(self, h: "_Handler", method: str, host: str, rest: list[str]) -> None:
        route = "/".join(rest)
        reads = method in ("GET", "HEAD")
        if route in ("", "index.html"):
            self._only(reads)
            h.respond(200, self.assets["index.html"], ASSETS["index.html"], head=method == "HEAD")
        elif len(rest) == 2 and rest[0] == "static":
            self._only(reads)
            if rest[1] not in ASSETS or rest[1] == "index.html":
                raise _Refused(404, "not_found", "no such asset")
            h.respond(200, self.assets[rest[1]], ASSETS[rest[1]], head=method == "HEAD",
                      extra={"Cache-Control": "no-cache"})
        elif route == "api/state":
            self._only(reads)
            h.respond_json(200, self.state.snapshot(), head=method == "HEAD")
        elif route == "events":
            self._only(method == "GET")
            self._events(h)
        elif route in ("api/action", "api/render"):
            self._only(method == "POST", "POST")
            self.check_origin(h, host)
            payload = self.read_json(h)
            try:
                if route == "api/action":
                    self.count("actions")
                    h.respond_json(202, self.state.act(payload))
                else:
                    self.count("renders")
                    h.respond_json(200, self.state.render(payload))
            except ActionRefused as exc:
                raise _Refused(exc.status, "bad_request", str(exc)) from exc
        elif len(rest) == 3 and rest[:2] == ["api", "render"]:
            self._only(reads)
            found = self.state.render_status(rest[2]) if _KEY.fullmatch(rest[2]) else None
            if found is None:
                raise _Refused(404, "not_found", "no such render")
            h.respond_json(200, found, head=method == "HEAD")
        elif len(rest) == 3 and rest[0] == "audio":
            self._only(reads)
            self._audio(h, rest[1], rest[2], head=method == "HEAD")
        elif route == "notes":
            self._only(reads)
            html = self.state.notes() if self.state.notes is not None else None
            if html is None:
                raise _Refused(404, "not_found", "no notes yet")
            h.respond(200, html.encode("utf-8"), "text/html; charset=utf-8", head=method == "HEAD",
                      extra={"Content-Security-Policy": NOTES_CSP})
        else:
            raise _Refused(404, "not_found", "not found")

    @staticmethod
    def _only(allowed: bool, methods: str = "GET, HEAD") -> None:
        if not allowed:
            raise _Refused(405, "bad_method", f"use {methods}")

    # --- audio -----------------------------------------------------------------------------------------------

    def _audio(self, h: "_Handler", key: str, name: str, head: bool) -> None:
        renders = self.state.renders
        path: Path | None = None
        if renders is not None and _KEY.fullmatch(key) and _AUDIO_NAME.fullmatch(name):
            path = renders.file(key, name)
        if path is None:
            raise _Refused(404, "not_found", "no such audio")
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below; the render's own file, found by look-up
        except OSError as exc:
            raise _Refused(404, "not_found", "no such audio") from exc
        with fh:
            size = fh.seek(0, 2)
            start, end, status = 0, size - 1, 200
            wanted = h.headers.get("Range")
            if wanted:
                match = _RANGE.fullmatch(wanted.strip())
                if match is None or (not match.group(1) and not match.group(2)):
                    h.respond(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                    return
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                else:  # the last N bytes
                    start = max(0, size - int(match.group(2)))
                if start >= size or end < start:
                    h.respond(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                    return
                status = 206
                self.count("ranges")
            length = end - start + 1
            headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            h.start(status, AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"), length, headers)
            if head:
                return
            fh.seek(start)
            left = length
            while left > 0:
                chunk = fh.read(min(CHUNK_BYTES, left))
                if not chunk:
                    break
                h.wfile.write(chunk)
                left -= len(chunk)

    # --- events ----------------------------------------------------------------------------------------------

    def _events(self, h: "_Handler") -> None:
        if not self._streams.acquire(blocking=False):
            raise _Refused(503, "too_many_streams", f"at most {MAX_EVENT_STREAMS} pages at once")
        try:
            h.close_connection = True
            h.send_response(200)
            h.security_headers()
            h.send_header("Content-Type", "text/event-stream; charset=utf-8")
            h.send_header("Cache-Control", "no-store")
            h.send_header("X-Accel-Buffering", "no")
            h.end_headers()
            state = self.state
            sent = -1
            while not state.stopping:
                version = state.version
                if version != sent:
                    data = json.dumps(state.snapshot(), separators=(",", ":"), allow_nan=False)
                    h.wfile.write(f"event: state\nid: {version}\ndata: {data}\n\n".encode("utf-8"))
                    h.wfile.flush()
                    sent = version
                if state.wait_newer(sent, KEEPALIVE_S) == sent and not state.stopping:
                    h.wfile.write(b": keep-alive\n\n")
                    h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            pass
        finally:
            self._streams.release()


class _Handler(BaseHTTPRequestHandler):
    server_version = "MixBridge"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S

    @property
    def app(self) -> ReviewServer:
        return self.server.app  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("review page: %s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self.app.handle(self, "GET")

    def do_HEAD(self) -> None:
        self.app.handle(self, "HEAD")

    def do_POST(self) -> None:
        self.app.handle(self, "POST")

    def _refuse_method(self) -> None:
        self.app.count("bad_method")
        self.respond(405, b'{"error": "method not allowed"}\n', "application/json", {"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method

    def security_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")

    def start(self, status: int, ctype: str, length: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.security_headers()
        headers = {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store", **(extra or {})}
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def respond(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None,
                head: bool = False) -> None:
        if status >= 400 and self.command == "POST":
            self.close_connection = True  # an unread body must not be taken for the next request
        self.start(status, ctype, len(body), extra)
        if not head:
            self.wfile.write(body)

    def respond_json(self, status: int, data: Any, head: bool = False) -> None:
        self.respond(status, (json.dumps(data, allow_nan=False) + "\n").encode("utf-8"), "application/json",
                     head=head)


def serve_review_page(session: Any, controller: Any, options: ReviewPageOptions, *, stems: Path | None = None,
                      renders_dir: Path | None = None) -> ReviewServer:
    """Start the review page for ``session`` reviewed through ``controller`` (the watcher's and
    ``mixbridge review``'s one way to do it): renders from ``stems`` into ``renders_dir`` (a temporary
    folder when there is no state folder), the current pass's notes at ``notes``.

    Raises
    ------
    SurfaceExposed
        ``E_SURFACE_EXPOSED``: a non-loopback bind without an allow-list.
    OSError
        The port cannot be bound.
    """
    from .audio import RenderCache  # noqa: PLC0415

    renders = None
    if stems is not None:
        if renders_dir is None:
            import tempfile  # noqa: PLC0415

            renders_dir = Path(tempfile.mkdtemp(prefix="mixbridge-renders-"))
        renders = RenderCache(renders_dir, Path(stems))
    notes = _NotesPage(session)
    state = ReviewState(session, controller, renders, notes=notes)
    server = ReviewServer(state, bind=options.bind, port=options.port, allow=options.allow)
    server.start()
    notes.review_url = server.url
    return server


class _NotesPage:
    """The last pass's notes as HTML, rendered once per record, linking back to the page."""

    def __init__(self, session: Any):
        self.session = session
        self.review_url = ""
        self._lock = threading.Lock()
        self._cached: tuple[Any, str] | None = None

    def __call__(self) -> str | None:
        record = self.session.last
        if record is None:
            return None
        with self._lock:
            if self._cached is None or self._cached[0] is not record:
                from ..notes.render import render_html  # noqa: PLC0415
                from ..session import notes_input  # noqa: PLC0415

                self._cached = (record, render_html(notes_input(record, title=f"pass {record.number}",
                                                                review_url=self.review_url)))
            return self._cached[1]
