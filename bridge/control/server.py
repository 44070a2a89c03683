"""The control-surface server: ``/mixbridge/...`` OSC over UDP, for TouchOSC, Open Stage Control, a phone.

Three threads, so that nothing a surface sends can stall anything else:

- the **receiver** reads datagrams, drops what comes from a host that is not allowed, decodes and
  validates every message (:mod:`.osc`, :mod:`.addresses`) and queues the valid commands.  It never
  waits on the DAW; whatever arrives, it counts and carries on;
- the **worker** runs the commands on the :class:`~.controller.SessionController` one at a time
  (REAPER may take seconds; the queue is bounded, a full queue drops and counts);
- the **sender** flushes feedback to every surface on a fixed tick, throttled and coalesced.

Throttle (documented in ``docs/osc.md``): every :data:`FLUSH_INTERVAL_S` (25 ms) each surface gets
at most :data:`MAX_MESSAGES_PER_FLUSH` (10) messages, i.e. at most 400 messages per second per
surface, packed into bundles of at most :data:`MAX_DATAGRAM_BYTES` (1400 bytes, under an Ethernet
MTU, so nothing is fragmented).  Feedback is coalesced per surface by address: while a value waits
to be sent, a newer value for the same address replaces it (latest wins), so a burst of any size
costs a surface at most one message per address per tick.  Replies to a request (lists, pong) are
not coalesced; they queue in order behind the same throttle (at most :data:`MAX_REPLY_BACKLOG`).

Security: binds 127.0.0.1 by default, and then accepts only loopback senders.  Binding any other
address needs ``allow`` (the surfaces' hosts); then only those hosts are accepted.  Everything else
is dropped and counted in :attr:`SurfaceServer.counters`; refused messages are logged at most once
per :data:`LOG_INTERVAL_S` per kind.
"""
from __future__ import annotations

import collections
import ipaddress
import logging
import queue
import socket
import threading
import time
from typing import Any, Iterable

from ..errors import SurfaceExposed
from ..settings import SurfaceOptions
from . import addresses as a
from .osc import OscDecodeError, bundle_size, decode_packet, encode_bundle, encode_message

log = logging.getLogger("mixbridge.surface")

DEFAULT_BIND = SurfaceOptions().bind
DEFAULT_PORT = SurfaceOptions().port
#: Inbound datagrams larger than this are refused unread (no surface command comes near it).
MAX_PACKET_BYTES = 2048
FLUSH_INTERVAL_S = 0.025
MAX_MESSAGES_PER_FLUSH = 10
MAX_MESSAGES_PER_S = int(MAX_MESSAGES_PER_FLUSH / FLUSH_INTERVAL_S)
MAX_DATAGRAM_BYTES = 1400
MAX_SUBSCRIBERS = 16
MAX_REPLY_BACKLOG = 4096
#: Outboxes for one-off requesters (not subscribed) at any time.
MAX_REQUESTERS = 64
COMMAND_QUEUE_SIZE = 256
LOG_INTERVAL_S = 5.0

COUNTER_NAMES = (
    "packets", "messages", "commands", "dropped_not_allowed", "oversized", "malformed", "bad_type",
    "bundle_too_deep", "bundle_too_large", "unknown_address", "bad_arg_count", "out_of_range",
    "string_too_long", "ignored_release", "queue_full", "too_many_subscribers", "internal_errors",
    "feedback_messages", "feedback_datagrams", "send_errors",
)
REFUSED = ("dropped_not_allowed", "oversized", "malformed", "bad_type", "bundle_too_deep", "bundle_too_large",
           "unknown_address", "bad_arg_count", "out_of_range", "string_too_long", "queue_full",
           "too_many_subscribers")

Address = tuple[str, int]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _resolve(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return socket.gethostbyname(host)


def allowed_hosts(bind: str, allow: Iterable[str], what: str = "the surface server",
                  flag: str = "--allow") -> frozenset[str]:
    """The exposure rule of every MixBridge server (the OSC surface, the review page): the hosts in
    ``allow`` resolved once (empty: loopback senders only).  A non-loopback ``bind`` needs them.

    Raises
    ------
    SurfaceExposed
        ``E_SURFACE_EXPOSED`` for a non-loopback ``bind`` without ``allow``.
    """
    hosts = frozenset(_resolve(h) for h in allow)
    if not hosts and not is_loopback(bind):
        raise SurfaceExposed(f"binding {bind} exposes {what} beyond this machine; name the hosts with {flag} HOST")
    return hosts


def host_allowed(host: str, allow: frozenset[str]) -> bool:
    """Whether a sender may talk to a server with the allow-list ``allow`` (see :func:`allowed_hosts`)."""
    if allow:
        return host in allow
    return is_loopback(host)


class _Outbox:
    """What waits to go to one surface: ordered replies, then coalesced feedback (latest wins)."""

    def __init__(self) -> None:
        self.replies: collections.deque[tuple[str, tuple[Any, ...]]] = collections.deque(maxlen=MAX_REPLY_BACKLOG)
        self.latest: collections.OrderedDict[str, tuple[Any, ...]] = collections.OrderedDict()

    def take(self, n: int) -> list[tuple[str, tuple[Any, ...]]]:
        out = []
        while self.replies and len(out) < n:
            out.append(self.replies.popleft())
        while self.latest and len(out) < n:
            out.append(self.latest.popitem(last=False))
        return out

    def __bool__(self) -> bool:
        return bool(self.replies or self.latest)


class _RateLimitedLog:
    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.last: dict[str, float] = {}
        self.suppressed: collections.Counter[str] = collections.Counter()

    def warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -1e9) < self.interval_s:
            self.suppressed[kind] += 1
            return
        extra = f" ({self.suppressed.pop(kind)} more since the last report)" if self.suppressed.get(kind) else ""
        self.last[kind] = now
        log.warning("surface: refused (%s): %s%s", kind, text, extra)


class SurfaceServer:
    """Serve the ``/mixbridge`` address space to control surfaces.

    Parameters
    ----------
    controller : SessionController
        The session the surfaces review.
    bind : str
        Address to listen on; loopback by default.  Anything else needs ``allow``.
    port : int
        UDP port (0 picks a free one; see :attr:`address`).
    allow : iterable of str
        Hosts allowed to send (IP literals or names, resolved once at construction).  Empty:
        loopback senders only, and only with a loopback ``bind``.

    Raises
    ------
    SurfaceExposed
        ``E_SURFACE_EXPOSED`` for a non-loopback ``bind`` without ``allow``.
    """

    def __init__(self, controller: Any, bind: str = DEFAULT_BIND, port: int = DEFAULT_PORT,
                 allow: Iterable[str] = ()):
        self.controller = controller
        self.bind = bind
        self.port = port
        self.allow = allowed_hosts(bind, allow)
        self._counters: collections.Counter[str] = collections.Counter({k: 0 for k in COUNTER_NAMES})
        self._counter_lock = threading.Lock()
        self._out_lock = threading.Lock()
        self._subscribers: dict[Address, _Outbox] = {}
        self._requesters: dict[Address, _Outbox] = {}
        self._jobs: queue.Queue = queue.Queue(maxsize=COMMAND_QUEUE_SIZE)
        self._amount_lock = threading.Lock()
        self._pending_amount: tuple[float, Address] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock: socket.socket | None = None
        self._log = _RateLimitedLog(LOG_INTERVAL_S)

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> "SurfaceServer":
        family = socket.AF_INET6 if ":" in self.bind else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((self.bind, self.port))
        sock.settimeout(0.1)
        self._sock = sock
        self.controller.add_listener(self._broadcast)
        for name, fn in (("receiver", self._receive_loop), ("worker", self._work_loop),
                         ("sender", self._send_loop)):
            t = threading.Thread(target=fn, name=f"mixbridge-surface-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    @property
    def address(self) -> Address:
        """The (host, port) actually bound."""
        assert self._sock is not None, "start() first"
        host, port = self._sock.getsockname()[:2]
        return host, port

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the threads and close the socket; a command stuck on the DAW is abandoned."""
        self._stop.set()
        try:
            self._jobs.put_nowait(None)
        except queue.Full:
            pass
        for t in self._threads:
            t.join(timeout_s)
        self._threads.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "SurfaceServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def counters(self) -> dict[str, int]:
        """A snapshot of every counter (see :data:`COUNTER_NAMES`); ``refused`` is their sum."""
        with self._counter_lock:
            out = dict(self._counters)
        out["refused"] = sum(out[k] for k in REFUSED)
        return out

    def subscribers(self) -> list[Address]:
        with self._out_lock:
            return list(self._subscribers)

    def _count(self, kind: str, n: int = 1) -> None:
        with self._counter_lock:
            self._counters[kind] += n

    def _refuse(self, kind: str, text: str) -> None:
        self._count(kind)
        self._log.warn(kind, text)

    # --- receiving --------------------------------------------------------------------------------------

    def _allowed(self, host: str) -> bool:
        return host_allowed(host, self.allow)

    def _receive_loop(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            try:
                data, source = sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue  # e.g. ICMP port unreachable from an earlier send; not fatal
            try:
                self._handle_packet(data, (source[0], source[1]))
            except Exception as exc:  # noqa: BLE001 - nothing a surface sends may stop the loop
                self._count("internal_errors")
                log.exception("surface: internal error on a packet: %s", exc)

    def _handle_packet(self, data: bytes, source: Address) -> None:
        self._count("packets")
        if not self._allowed(source[0]):
            self._refuse("dropped_not_allowed", f"packet from {source[0]} (not in the allow list)")
            return
        if len(data) > MAX_PACKET_BYTES:
            self._refuse("oversized", f"{len(data)}-byte packet from {source[0]} (limit {MAX_PACKET_BYTES})")
            return
        try:
            messages = decode_packet(data)
        except OscDecodeError as exc:
            self._refuse(exc.kind, f"packet from {source[0]}: {exc}")
            return
        for message in messages:
            self._count("messages")
            try:
                checked = a.validate(message)
            except a.ValidationError as exc:
                self._refuse(exc.kind, f"from {source[0]}: {exc}")
                continue
            if checked is None:
                self._count("ignored_release")
                continue
            entry, values = checked
            self._dispatch(entry.command, values, source)

    def _dispatch(self, command: str, values: tuple[Any, ...], source: Address) -> None:
        if command == "ping":
            self._reply(source, [(f"{a.PREFIX}/pong", ())])
            return
        if command == "unsubscribe":
            with self._out_lock:
                self._subscribers.pop((source[0], values[0]), None)
            return
        if command == "subscribe":
            dest = (source[0], values[0])
            with self._out_lock:
                if dest not in self._subscribers and len(self._subscribers) >= MAX_SUBSCRIBERS:
                    self._refuse("too_many_subscribers", f"{dest} (limit {MAX_SUBSCRIBERS})")
                    return
                self._subscribers.setdefault(dest, _Outbox())
            self._queue(("dump_to", (), dest))
            return
        if command == "set_amount":
            # A fader sends dozens of values a second; only the newest matters, and replanning
            # takes a while: keep one pending amount and queue a single job for it.
            with self._amount_lock:
                queued = self._pending_amount is not None
                self._pending_amount = (values[0], source)
            if not queued:
                self._queue(("amount", (), source))
            return
        self._queue((command, values, source))

    def _queue(self, job: tuple[str, tuple[Any, ...], Address]) -> None:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._refuse("queue_full", f"{job[0]} from {job[2][0]} dropped: {COMMAND_QUEUE_SIZE} commands waiting")

    # --- working ------------------------------------------------------------------------------------------

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            job = self._jobs.get()
            if job is None:
                return
            command, values, source = job
            try:
                if command == "dump_to":
                    replies = self.controller.run("dump")
                    with self._out_lock:
                        box = self._subscribers.get(source)
                        if box is not None:
                            for addr, args in replies:
                                box.latest[addr] = args
                    continue
                if command == "amount":
                    with self._amount_lock:
                        pending, self._pending_amount = self._pending_amount, None
                    if pending is None:
                        continue
                    command, values = "set_amount", (pending[0],)
                self._count("commands")
                replies = self.controller.run(command, values)
                if replies:
                    self._reply(source, replies)
            except Exception as exc:  # noqa: BLE001 - the controller already guards; belt and braces
                self._count("internal_errors")
                log.exception("surface: command %s failed: %s", command, exc)

    # --- sending --------------------------------------------------------------------------------------------

    def _reply(self, dest: Address, messages: list[tuple[str, tuple[Any, ...]]]) -> None:
        with self._out_lock:
            box = self._subscribers.get(dest) or self._requesters.get(dest)
            if box is None:
                if len(self._requesters) >= MAX_REQUESTERS:
                    self._requesters.pop(next(iter(self._requesters)))
                box = self._requesters[dest] = _Outbox()
            box.replies.extend(messages)

    def _broadcast(self, changes: list[tuple[str, tuple[Any, ...]]]) -> None:
        with self._out_lock:
            for box in self._subscribers.values():
                for addr, args in changes:
                    box.latest[addr] = args

    def _send_loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            next_tick += FLUSH_INTERVAL_S
            now = time.monotonic()
            if next_tick < now:  # fell behind (a suspended process): do not burst to catch up
                next_tick = now + FLUSH_INTERVAL_S
            with self._out_lock:
                batches = []
                for dest, box in list(self._subscribers.items()) + list(self._requesters.items()):
                    if box:
                        batches.append((dest, box.take(MAX_MESSAGES_PER_FLUSH)))
                for dest in [d for d, box in self._requesters.items() if not box]:
                    del self._requesters[dest]
            for dest, messages in batches:
                self._send(dest, messages)
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def _send(self, dest: Address, messages: list[tuple[str, tuple[Any, ...]]]) -> None:
        encoded = [encode_message(addr, args) for addr, args in messages]
        datagrams: list[bytes] = []
        group: list[bytes] = []
        for m in encoded:
            if group and bundle_size([len(x) for x in group + [m]]) > MAX_DATAGRAM_BYTES:
                datagrams.append(group[0] if len(group) == 1 else encode_bundle(group))
                group = []
            group.append(m)
        if group:
            datagrams.append(group[0] if len(group) == 1 else encode_bundle(group))
        sock = self._sock
        for d in datagrams:
            try:
                sock.sendto(d, dest)
            except OSError as exc:
                self._count("send_errors")
                self._log.warn("send_error", f"to {dest}: {exc}")
                continue
            self._count("feedback_datagrams")
        self._count("feedback_messages", len(encoded))
