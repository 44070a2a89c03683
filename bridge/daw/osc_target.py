"""Write a MixPlan into REAPER through its OSC control surface (reaper.md 1), and read it back.

The OSC target is the live, low-latency side: no ReaScript, no reapy, just UDP datagrams to
REAPER's OSC surface (default port 8000) and its feedback (to our port 9000).  Every address comes
from :mod:`bridge.daw.osc_addresses`; the pattern file ``reaper_scripts/MixBridge.ReaperOSC``
must be the surface's pattern config (docs/reaper-osc.md).

How a pass works
----------------
1. **Learn.**  Set the bank size (``/device/track/count``), select bank 1, trigger action 41743
   ("Refresh all surfaces", which makes REAPER resend every value) and collect feedback until it
   has been quiet for ``settle_s``.  Tracks are known by name (OSC carries no GUIDs; with duplicate
   names the first wins), with their fader in dB, pan, width, FX names, FX enabled states and FX
   parameter values.  A bank that comes back full means there may be more: the next bank is read
   the same way.  No feedback at all within ``timeout_s`` raises :class:`DawUnavailable`.
2. **Compare.**  The tags of earlier passes live in a local state file (``state_path``; OSC cannot
   write REAPER's ``P_EXT``).  A value that differs from what the bridge last wrote was changed
   by the producer: it is theirs from then on, never written again, and the track becomes hybrid
   — the same rule, keys and :class:`TrackTag` as the reapy target.
3. **Write** what OSC can, rate-limited (token bucket, ``max_msgs_per_s``): the fader in dB
   (``/track/N/volume/db``, absolute = pre-AI dB + plan delta), pan and width (``n``, ``(v+1)/2``),
   and the parameters of AI FX that already exist ("AI EQ (MixBridge)", ...) as floats 0..1 with
   the same :mod:`bridge.daw.mapping` conversions and stock ReaEQ/ReaComp indices as the reapy
   target (1-based over OSC).  Track numbers are bank-relative: the bank is selected first.
4. **Verify** by forcing another refresh and comparing the feedback with what was written; on a
   mismatch the pass's writes are sent back to their previous values and
   :class:`DawVerifyError` is raised.

What OSC cannot do goes to ``ApplyReport.pending`` with a plain reason, never dropped: inserting
an FX, ReaEQ band types, track polarity, envelopes/automation.  Each OSC write is its own undo
point in REAPER (there is no undo block over OSC).  ``ApplyReport.round_trips`` counts the OSC
messages sent.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import DawUnavailable, DawVerifyError
from ..files import write_atomic
from ..settings import LOOPBACK, Connection
from . import mapping as m
from . import osc_addresses as oa
from .base import ApplyReport
from .reconcile import (ABSENT, AUTOMATION_KEY, WHY_OVERRIDE, Pending, TrackDecision, Write, ab_master, keys_to_read,
                        reconcile_ab, reconcile_track)
from .tagging import UNTOUCHED, TrackTag

DEFAULTS = Connection()
STATE_SCHEMA = "mixbridge-osc-state"
#: Tolerances for "is this still the value we wrote" (feedback is 32-bit float).
DB_TOLERANCE = 1e-3
NORM_TOLERANCE = 1e-4
#: 1-based OSC parameter numbers of the stock plug-ins behind the AI FX (reaper.md 3; the reapy
#: target resolves the same parameters by name).  ReaComp "Wet" is the first of its two.
REACOMP_PARAMS = {"threshold_db": 1, "ratio": 2, "attack_ms": 3, "release_ms": 4, "makeup_db": 12}
EQ_KIND_OFFSET = {"freq_hz": 0, "gain_db": 1, "q": 2}
POLARITY_PARAMS = {"left": 1, "right": 2}
AI_FX = {"eq": m.AI_EQ_NAME, "comp": m.AI_COMP_NAME, "polarity": m.AI_POLARITY_NAME}
MAX_BANKS = 64
#: The master fader in a :class:`_Write` (dB over ``/master/volume/db``); its track is :data:`MASTER`.
MASTER_KEY = "master.volume_db"
#: Longest a refresh may keep streaming once it has started (a huge session at REAPER's pace).
MAX_REFRESH_S = 60.0

WHY_NO_FX = ("OSC cannot add FX: run the reapy target once (mixbridge apply --target reaper), or insert "
             "'{fx}' on the track by hand, then apply again")
WHY = {
    "eq_type": "OSC cannot set a ReaEQ band type (a named config value); use the reapy target",
    "track.polarity": "OSC has no polarity (phase) action; use the reapy target",
    "automation": "OSC cannot write envelopes or automation points; use the reapy target",
    "override": WHY_OVERRIDE,
}


class OscCapabilities:
    """What REAPER's OSC surface can do for :func:`~bridge.daw.reconcile.reconcile_track`."""

    kind = "osc"

    def refuses(self, key: str) -> str | None:
        if key == AUTOMATION_KEY:
            return WHY["automation"]
        return _why_not_osc(key)

    def missing_fx(self, key: str) -> str | None:
        return WHY_NO_FX.format(fx=AI_FX[key.split(".", 1)[0]])

    def to_raw(self, key: str, value: Any, before_raw: float | None) -> float:
        return _to_raw(key, value, before_raw)

    def to_plan(self, key: str, raw: float, before_raw: float | None) -> Any:
        return _human(key, raw, before_raw)

    def same(self, key: str, a: float, b: float) -> bool:
        return abs(a - b) <= _tolerance(key)


class TokenBucket:
    """At most ``rate`` messages per second on average, bursts of at most ``burst``.

    ``take`` waits (paces) until a token is available; it never drops.
    """

    def __init__(self, rate: float, burst: int = 20, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = float(rate), float(burst)
        self.clock, self.sleep = clock, sleep
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            self.sleep((1.0 - self.tokens) / self.rate)  # pacing, by design
            self.stamp = self.clock()
            self.tokens = 1.0
        self.tokens -= 1.0


@dataclass
class OscFx:
    number: int  # 1-based
    name: str = ""
    enabled: bool | None = None
    params: dict[int, float] = field(default_factory=dict)  # 1-based param -> normalized


@dataclass
class OscTrack:
    number: int  # absolute, 1-based
    name: str
    volume_db: float | None = None
    pan: float | None = None
    width: float | None = None
    mute: bool | None = None
    fx: dict[int, OscFx] = field(default_factory=dict)

    def fx_named(self, name: str) -> OscFx | None:
        return next((f for _, f in sorted(self.fx.items()) if f.name == name), None)


#: The master in a :class:`_Write` (number 0: before every bank's tracks).
MASTER = OscTrack(0, "MASTER")


@dataclass
class _Write:
    track: OscTrack
    key: str
    value: Any  # plan value (None = back to pre-AI)
    raw: float  # dB for volume, -1..1 for pan/width, normalized for FX params, 0/1 for enabled
    before: float | None
    unit: str = ""


class _Receiver:
    """Feedback on one UDP socket: the latest value per address, and when anything last arrived."""

    def __init__(self, bind_host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # A full refresh is a burst; a large buffer keeps the kernel from dropping it.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.sock.bind((bind_host, port))
        except OSError:
            self.sock.close()
            raise
        self.values: dict[str, Any] = {}
        self.count = 0
        self.last_rx = 0.0
        self.cond = threading.Condition()
        self._closed = False
        self.thread = threading.Thread(target=self._run, name="osc-feedback", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from pythonosc.osc_packet import OscPacket, ParseError  # noqa: PLC0415

        self.sock.settimeout(0.1)  # so close() is noticed: recv is not interrupted by close
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                messages = OscPacket(data).messages
            except ParseError:
                continue
            with self.cond:
                for timed in messages:
                    msg = timed.message
                    self.values[msg.address] = msg.params[0] if len(msg.params) == 1 else list(msg.params)
                    self.count += 1
                self.last_rx = time.monotonic()
                self.cond.notify_all()

    def clear(self) -> None:
        with self.cond:
            self.values.clear()

    def wait_quiet(self, settle_s: float, deadline: float) -> None:
        """Until nothing has arrived for ``settle_s`` (or the deadline)."""
        with self.cond:
            while time.monotonic() < deadline:
                left = settle_s - (time.monotonic() - self.last_rx)
                if left <= 0:
                    return
                self.cond.wait(min(left, deadline - time.monotonic()))

    def wait_settled(self, since_count: int, first_deadline: float, settle_s: float) -> bool:
        """Wait for feedback after ``since_count``, then for quiet; False if none came in time."""
        with self.cond:
            while self.count <= since_count:
                left = first_deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        self.wait_quiet(settle_s, time.monotonic() + MAX_REFRESH_S)
        return True

    def snapshot(self) -> dict[str, Any]:
        with self.cond:
            return dict(self.values)

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        self.thread.join(1.0)


class OscTarget:
    """The OSC target (see the module docstring).

    Parameters
    ----------
    host, port : str, int
        Where REAPER's OSC surface listens (its "local listen port", default 8000).
    listen_port : int
        Where the bridge listens for feedback, on ``bind_host`` (REAPER's "device port", 9000).
    timeout_s : float
        How long to wait for the first feedback before deciding REAPER is not there.
    max_msgs_per_s : float
        Write rate limit (token bucket; ``burst`` messages may go back to back).
    state_path : Path
        Local tag file (OSC cannot store ``P_EXT``): always the state folder's ``osc-state.json``
        (:attr:`bridge.settings.StatePaths.osc_tags`).
    bank_size : int or None
        Tracks per bank, sent as ``/device/track/count`` on connect; None keeps REAPER's setting
        (then assumed to be 128, as in the shipped pattern file).
    settle_s : float
        Feedback is complete once nothing arrived for this long.
    """

    kind = "osc"
    capabilities = OscCapabilities()

    def __init__(self, host: str = DEFAULTS.host, port: int = DEFAULTS.osc_port, listen_port: int = DEFAULTS.osc_listen,
                 timeout_s: float = DEFAULTS.timeout_s, max_msgs_per_s: float = DEFAULTS.osc_rate, *, state_path: Path | str,
                 bank_size: int | None = 128, settle_s: float = 0.15, burst: int = 20,
                 bind_host: str = LOOPBACK) -> None:
        self.host, self.port, self.listen_port = host, int(port), int(listen_port)
        self.timeout_s = float(timeout_s)
        self.bucket = TokenBucket(max_msgs_per_s, burst)
        self.state_path = Path(state_path)
        self.bank_size = bank_size
        self.settle_s = settle_s
        self.bind_host = bind_host
        self.messages_sent = 0
        self._verified = self._unverifiable = 0
        self._rx: _Receiver | None = None
        self._bank: int | None = None
        #: The master fader in dB from the last refresh (None until one reported it).
        self.master_db: float | None = None

    # --- transport ------------------------------------------------------------------------------

    def _open(self) -> _Receiver:
        if self._rx is None:
            try:
                self._rx = _Receiver(self.bind_host, self.listen_port)
            except OSError as exc:
                raise DawUnavailable(f"cannot listen for REAPER's OSC feedback on {self.bind_host}:"
                                     f"{self.listen_port} ({exc})") from exc
            self._bank = None
        return self._rx

    def close(self) -> None:
        if self._rx is not None:
            self._rx.close()
            self._rx = None

    def _send(self, key: str, numbers: tuple[int, ...], value: Any, tag: str) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder  # noqa: PLC0415

        builder = OscMessageBuilder(oa.address(key, *numbers))
        builder.add_arg(value, tag)
        data = builder.build().dgram
        self.bucket.take()
        rx = self._open()
        try:
            rx.sock.sendto(data, (self.host, self.port))
        except OSError as exc:
            self.close()
            raise DawUnavailable(f"cannot send OSC to {self.host}:{self.port} ({exc})") from exc
        self.messages_sent += 1

    def _select_bank(self, bank: int) -> None:
        if self._bank != bank:
            self._send("device_track_bank", (), int(bank), "i")
            self._bank = bank

    @property
    def _size(self) -> int:
        return self.bank_size or 128

    def _refresh_bank(self, bank: int, first: bool) -> dict[str, Any]:
        """Select ``bank``, force a full resend, and return the settled feedback of that bank."""
        rx = self._open()
        rx.wait_quiet(self.settle_s, time.monotonic() + self.timeout_s)  # stale packets of a previous bank
        rx.clear()
        since = rx.count
        if first and self.bank_size:
            self._send("device_track_count", (), int(self.bank_size), "i")
        self._select_bank(bank)
        self._send("action", (), oa.ACTION_REFRESH_ALL, "i")
        if not rx.wait_settled(since, time.monotonic() + self.timeout_s, self.settle_s):
            self.close()
            raise DawUnavailable(
                f"no OSC feedback from REAPER within {self.timeout_s:g} s (sent to {self.host}:{self.port}, "
                f"listening on {self.bind_host}:{self.listen_port}); is REAPER running with the MixBridge "
                f"OSC surface configured (docs/reaper-osc.md)?")
        return rx.snapshot()

    def session(self, banks: set[int] | None = None) -> dict[int, OscTrack]:
        """Tracks by absolute number, from a full refresh of each bank (all banks if ``banks`` is None).

        A bank that comes back full may have a next one.  REAPER clamps a bank past the end to the
        last bank (``ProcessStateAction``), so a session of exactly N full banks answers bank N+1
        with bank N again: a bank whose feedback repeats the previous one exactly is checked with
        :meth:`_has_track` before it is counted.  The master's dB (``/master/volume/db``) comes with
        every refresh: :attr:`master_db`.
        """
        tracks: dict[int, OscTrack] = {}
        bank = 1
        first = True
        previous: tuple | None = None
        while bank <= MAX_BANKS:
            if banks is not None and bank not in banks:
                if bank > max(banks):
                    break
                bank += 1
                continue
            values = self._refresh_bank(bank, first)
            first = False
            self._note_master(values)
            found = _parse_bank(values, bank, self._size)
            signature = _bank_signature(found, bank, self._size)
            if (banks is None and previous is not None and signature == previous
                    and not self._has_track((bank - 1) * self._size + 1)):
                break  # the clamp: bank N again, not a bank N+1
            tracks.update(found)
            if banks is None and len(found) < self._size:
                break
            previous = signature
            bank += 1
        return tracks

    def _note_master(self, values: dict[str, Any]) -> None:
        master = values.get(oa.address("master_volume_db"))
        if isinstance(master, (int, float)):
            self.master_db = float(master)

    def _has_track(self, number: int) -> bool:
        """Whether absolute track ``number`` exists: one bank of ``number`` tracks from track 1
        reports exactly ``min(tracks, number)`` names.  Used only when a bank looks repeated."""
        rx = self._open()
        rx.wait_quiet(self.settle_s, time.monotonic() + self.timeout_s)
        rx.clear()
        since = rx.count
        self._send("device_track_count", (), int(number), "i")
        self._bank = None
        self._select_bank(1)
        self._send("action", (), oa.ACTION_REFRESH_ALL, "i")
        settled = rx.wait_settled(since, time.monotonic() + self.timeout_s, self.settle_s)
        values = rx.snapshot()
        self._send("device_track_count", (), int(self._size), "i")  # back to the bank size
        self._bank = None
        if not settled:
            self.close()
            raise DawUnavailable(f"no OSC feedback from REAPER within {self.timeout_s:g} s while counting tracks")
        names = [fb for fb in map(oa.parse_feedback, values) if fb is not None and fb.key == "track_name"]
        return len(names) >= number

    # --- local tags ------------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        from ..statefiles import load_json  # noqa: PLC0415 - validated; a bad file is moved aside

        def parse(data):
            if data.get("schema") != STATE_SCHEMA:
                return {}
            if type(data.get("pass", 0)) is not int:
                raise ValueError("'pass' must be an integer")
            for name in (data.get("tracks") or {}):
                self._tag(data, name)  # every tag must load (raises on a wrong shape)
            dict(data.get("bypassed") or {})
            return data

        data = load_json(self.state_path, parse) or {}
        data.setdefault("schema", STATE_SCHEMA)
        data.setdefault("schema_version", 1)
        data.setdefault("pass", 0)
        data.setdefault("tracks", {})
        data.setdefault("bypassed", {})
        return data

    def _save_state(self, data: dict[str, Any]) -> None:
        write_atomic(self.state_path, json.dumps(data, indent=1, sort_keys=True))

    @staticmethod
    def _tag(data: dict[str, Any], name: str) -> TrackTag:
        t = data["tracks"].get(name) or {}
        return TrackTag.from_ext(t.get("provenance", ""), str(t.get("pass", "")), t.get("plan", ""),
                                 json.dumps(t["state"]) if t.get("state") else "")

    @staticmethod
    def _put_tag(data: dict[str, Any], name: str, tag: TrackTag) -> None:
        data["tracks"][name] = {"provenance": tag.provenance, "pass": tag.pass_number, "plan": tag.plan_id,
                                "state": json.loads(tag.state_json())}

    def provenance(self) -> dict[str, str]:
        data = self._load_state()
        return {name: (t.get("provenance") or UNTOUCHED) for name, t in data["tracks"].items()}

    # --- values -------------------------------------------------------------------------------------

    def _current(self, track: OscTrack, key: str) -> tuple[bool, float | None]:
        """(the thing exists, its current raw value); FX keys need their AI FX on the track."""
        target, param = key.split(".", 1)
        if target == "track":
            return True, {"volume_db": track.volume_db, "pan": track.pan, "width": track.width}.get(param)
        fx = track.fx_named(AI_FX[target])
        if fx is None:
            return False, None
        return True, fx.params.get(_param_number(target, param))

    def _address(self, track: OscTrack, key: str) -> tuple[str, tuple[int, ...], Callable[[float], float]]:
        """(address key, numbers without the track, raw -> OSC value) of a writable key."""
        target, param = key.split(".", 1)
        if target == "track":
            if param == "volume_db":
                return "track_volume_db", (), float
            return ("track_pan" if param == "pan" else "track_width"), (), lambda r: (r + 1.0) / 2.0
        fx = track.fx_named(AI_FX[target])
        assert fx is not None
        return "fx_param", (fx.number, _param_number(target, param)), float

    # --- the pass -------------------------------------------------------------------------------------

    def _by_name(self, session: dict[int, OscTrack]) -> dict[str, OscTrack]:
        by_name: dict[str, OscTrack] = {}
        for t in sorted(session.values(), key=lambda t: t.number):
            by_name.setdefault(t.name, t)  # OSC carries no GUIDs: with duplicate names the first wins
        return by_name

    def _reading(self, track: OscTrack, key: str) -> Any:
        exists, current = self._current(track, key)
        return current if exists else ABSENT

    def apply(self, plan: dict[str, Any], reenable: frozenset[str] | set[str] = frozenset()) -> ApplyReport:
        started = time.perf_counter()
        sent0 = self.messages_sent
        self._verified = self._unverifiable = 0
        by_name = self._by_name(self.session())
        data = self._load_state()
        number = int(data.get("pass", 0)) + 1
        decisions: list[tuple[OscTrack, TrackDecision]] = []
        missing: list[str] = []
        for tp in plan.get("tracks", []):
            track = by_name.get(tp.get("name", ""))
            if track is None:
                if tp.get("changes") or tp.get("automation"):
                    missing.append(tp.get("name", ""))
                continue
            tag = self._tag(data, track.name)
            readings = {key: self._reading(track, key) for key in keys_to_read(tp, tag)
                        if self.capabilities.refuses(key) is None}
            decisions.append((track, reconcile_track(track.name, tp, tag, readings, self.capabilities, reenable,
                                                     ab=data.get("ab", "B"))))
        # A deferred write is B's value while the session plays A: kept in the tag, sent by the toggle to B.
        writes = [_Write(track, w.key, w.value, w.raw, w.current if isinstance(w.current, float) else None, w.unit)
                  for track, d in decisions for w in d.writes if not w.deferred]
        enables = self._reenable_bypassed(data, by_name, {d.track for _, d in decisions if d.writes})
        self._send_writes(writes + enables)
        if writes or enables:
            self._verify(writes + enables)
        changed = False
        for track, d in decisions:
            if d.touched or d.tag_changed:
                self._put_tag(data, track.name, d.finish(pass_number=number, plan_id=plan.get("id", "")))
                changed = True
        if changed or enables:
            data["pass"] = number
            self._save_state(data)
        else:
            number -= 1
        undo = (f"MixBridge: AI pass {number} over OSC — {len(writes)} writes (each its own undo point in REAPER)"
                if writes else "")
        return ApplyReport(
            self.kind, number, undo, tuple(w for _, d in decisions for w in d.writes),
            overrides=tuple(o for _, d in decisions for o in d.overrides),
            pending=tuple(p for _, d in decisions for p in d.pending),
            unchanged=tuple((d.track, k) for _, d in decisions for k in d.unchanged),
            missing_tracks=tuple(missing), provenance={d.track: d.tag.provenance for _, d in decisions},
            verified=self._verified, unverifiable=self._unverifiable,
            round_trips=self.messages_sent - sent0, seconds=time.perf_counter() - started)

    def _reenable_bypassed(self, data: dict[str, Any], by_name: dict[str, OscTrack],
                           touched: set[str]) -> list[_Write]:
        """AI FX the bridge bypassed in an OSC revert are switched on again when written to."""
        out = []
        for name, fx_names in list(data["bypassed"].items()):
            track = by_name.get(name)
            if track is None or name not in touched:
                continue
            for fx_name in fx_names:
                fx = track.fx_named(fx_name)
                if fx is not None and fx.enabled is False:
                    out.append(_Write(track, f"fx_enabled:{fx.number}", True, 1.0, 0.0))
            del data["bypassed"][name]
        return out

    def _send_one(self, w: _Write, raw: float) -> None:
        if w.key == MASTER_KEY:
            self._send("master_volume_db", (), float(raw), "f")
            return
        if w.key.startswith("fx_enabled:"):
            self._send("fx_enabled", (self._rel(w.track), int(w.key.split(":")[1])), float(raw), "f")
            return
        key, numbers, to_osc = self._address(w.track, w.key)
        self._send(key, (self._rel(w.track), *numbers), float(to_osc(raw)), "f")

    def _rel(self, track: OscTrack) -> int:
        """The track's bank-relative number, its bank selected."""
        bank, rel = oa.bank_of(track.number, self._size)
        self._select_bank(bank)
        return rel

    def _send_writes(self, writes: list[_Write]) -> None:
        for w in sorted(writes, key=lambda w: (w.track.number, w.key)):  # bank by bank (the master first)
            self._send_one(w, w.raw)

    def _verify(self, writes: list[_Write]) -> None:
        """Force a refresh of the banks written and compare feedback with what was sent."""
        banks = {oa.bank_of(w.track.number, self._size)[0] for w in writes if w.key != MASTER_KEY} or {1}
        self.master_db = None
        now = self.session(banks)
        bad = []
        for w in writes:
            track = now.get(w.track.number)
            if w.key == MASTER_KEY:
                shown = self.master_db
            elif w.key.startswith("fx_enabled:"):
                fx = track.fx.get(int(w.key.split(":")[1])) if track else None
                shown = None if fx is None or fx.enabled is None else float(fx.enabled)
            else:
                shown = self._current(track, w.key)[1] if track else None
            if shown is None:
                self._unverifiable += 1
            elif abs(shown - w.raw) <= _tolerance(w.key):
                self._verified += 1
            else:
                bad.append((w, shown))
        if bad:
            for w in writes:  # best effort: put the pass's writes back
                if w.before is not None:
                    self._send_one(w, w.before)
            w, shown = bad[0]
            raise DawVerifyError(f"track {w.track.name!r}: {w.key} shows {shown:.6g} over OSC after writing "
                                 f"{w.raw:.6g} ({len(bad)} mismatches); the pass's writes were sent back")

    # --- revert and A/B -----------------------------------------------------------------------------------

    def revert(self, only_track: str | None = None) -> ApplyReport:
        """Send the pre-AI values back and bypass the AI FX (OSC cannot remove them; noted as pending).

        The restores are the reconciliation of an empty plan; what OSC cannot restore stays in the
        tag and is listed as pending.
        """
        started = time.perf_counter()
        sent0 = self.messages_sent
        self._verified = self._unverifiable = 0
        by_name = self._by_name(self.session())
        data = self._load_state()
        empty = {"status": "ai", "changes": [], "automation": []}
        writes: list[_Write] = []
        made: list[Write] = []
        pending: list[Pending] = []
        decisions: list[TrackDecision] = []
        for name in sorted(data["tracks"]):
            if only_track is not None and name != only_track:
                continue
            track = by_name.get(name)
            tag = self._tag(data, name)
            if track is None or (not tag.written and not tag.points):
                continue
            readings = {key: self._reading(track, key) for key in tag.written if self.capabilities.refuses(key) is None}
            d = reconcile_track(name, empty, tag, readings, self.capabilities, ab=data.get("ab", "B"))
            decisions.append(d)
            made += d.writes
            writes += [_Write(track, w.key, None, w.raw, w.current if isinstance(w.current, float) else None, w.unit)
                       for w in d.writes if not w.deferred]
            pending += [Pending(name, key, w.before_raw, "OSC cannot restore this; run 'mixbridge revert --target reaper'")
                        for key, w in sorted(d.tag.written.items()) if key not in d.tag.overrides]
            kept = {k.split(".", 1)[0] for k in d.tag.overrides}
            bypassed = []
            for target, fx_name in AI_FX.items():
                fx = track.fx_named(fx_name)
                if fx is None or target in kept:
                    continue
                if fx.enabled is not False:
                    writes.append(_Write(track, f"fx_enabled:{fx.number}", False, 0.0, 1.0))
                bypassed.append(fx_name)
                pending.append(Pending(name, target, fx_name, f"OSC cannot remove FX: '{fx_name}' was bypassed; "
                                                              "run 'mixbridge revert --target reaper' to remove it"))
            if bypassed:
                data["bypassed"][name] = bypassed
            if tag.points:
                pending.append(Pending(name, AUTOMATION_KEY, len(tag.points), WHY["automation"]))
            after = d.finish()
            after.points = tag.points  # still in the session: OSC cannot delete them
            after.provenance = after.derive_provenance()
            self._put_tag(data, name, after)
        self._send_writes(writes)
        if writes:
            self._verify(writes)
        self._save_state(data)
        undo = ("MixBridge: revert AI over OSC" + (f" on {only_track}" if only_track else "")) if writes else ""
        return ApplyReport(self.kind, int(data.get("pass", 0)), undo, tuple(made),
                           overrides=tuple(o for d in decisions for o in d.overrides), pending=tuple(pending),
                           provenance={n: (t.get("provenance") or UNTOUCHED) for n, t in data["tracks"].items()},
                           verified=self._verified, round_trips=self.messages_sent - sent0,
                           seconds=time.perf_counter() - started)

    def ab_toggle(self, delta_lu: float) -> dict[str, Any]:
        """Toggle pre-AI (A) / AI (B), level-matched on the master fader in dB.

        The same rules as the reapy target (:func:`~bridge.daw.reconcile.reconcile_ab`): the track
        values the bridge owns go to their pre-AI (A) or AI (B) values and the AI FX are bypassed on
        A; a value moved by hand since the last toggle is the producer's and stays.  The master
        fader moves by ``delta_lu`` dB on A over ``/master/volume/db`` (``MASTER_VOLUME`` takes dB
        both ways, like a track's, csurf_osc.cpp) and back on B
        (:func:`~bridge.daw.reconcile.ab_master`: exactly the saved value when untouched).
        """
        session = self.session()
        data = self._load_state()
        going = "A" if data.get("ab", "B") == "B" else "B"
        writes: list[_Write] = []
        found: list[Any] = []
        seen: set[str] = set()
        for track in sorted(session.values(), key=lambda t: t.number):
            if track.name in seen:
                continue
            seen.add(track.name)
            tag = self._tag(data, track.name)
            if not tag.written:
                continue
            readings = {k: self._reading(track, k) for k in tag.written
                        if k.startswith("track.") and self.capabilities.refuses(k) is None}
            decision = reconcile_ab(track.name, tag, readings, self.capabilities, going)
            found += decision.overrides
            writes += [_Write(track, w.key, w.value, w.raw, w.current if isinstance(w.current, float) else None)
                       for w in decision.writes]
            for fx_name in AI_FX.values():
                fx = track.fx_named(fx_name)
                if fx is not None and fx.enabled is not (going == "B"):
                    writes.append(_Write(track, f"fx_enabled:{fx.number}", None, 1.0 if going == "B" else 0.0,
                                         None if fx.enabled is None else float(fx.enabled)))
            if decision.tag_changed:
                self._put_tag(data, track.name, decision.tag)
        saved = data.get("ab_master")
        compensation = round(delta_lu if going == "A" else 0.0, 2)
        if self.master_db is None:
            compensation = 0.0  # no master feedback (not the MixBridge pattern file): not level-matched
        else:
            target = ab_master(going, self.master_db, float(saved) if saved is not None else None, delta_lu,
                               lambda db, change: db + change)
            if abs(target - self.master_db) > DB_TOLERANCE / 10:
                writes.append(_Write(MASTER, MASTER_KEY, None, target, self.master_db, "dB"))
            data["ab_master"] = self.master_db if going == "A" else None
        self._send_writes(writes)
        if writes:
            self._verify(writes)
        data["ab"] = going
        data.pop("ab_saved", None)  # the track-fader compensation of older versions
        self._save_state(data)
        return {"state": going, "compensation_db": compensation,
                "overrides": [f"{o.track}:{o.key}" for o in found]}


# --- pure helpers ---------------------------------------------------------------------------------------

def _parse_bank(values: dict[str, Any], bank: int, size: int) -> dict[int, OscTrack]:
    """Feedback of one bank -> tracks by absolute number."""
    tracks: dict[int, OscTrack] = {}
    parsed = [(oa.parse_feedback(a), v) for a, v in values.items()]
    for fb, value in parsed:
        if fb is not None and fb.key == "track_name":
            n = oa.absolute_track(bank, fb.track, size)
            tracks[n] = OscTrack(n, str(value))
    for fb, value in parsed:
        if fb is None or fb.track is None:
            continue
        track = tracks.get(oa.absolute_track(bank, fb.track, size))
        if track is None or isinstance(value, (list, str)) and fb.key not in ("fx_name",):
            continue
        if fb.key == "track_volume_db":
            track.volume_db = float(value)
        elif fb.key == "track_pan":
            track.pan = float(value) * 2.0 - 1.0
        elif fb.key == "track_width":
            track.width = float(value) * 2.0 - 1.0
        elif fb.key == "track_mute":
            track.mute = float(value) > 0.5
        elif fb.key in ("fx_name", "fx_enabled", "fx_param"):
            fx = track.fx.setdefault(fb.fx, OscFx(fb.fx))
            if fb.key == "fx_name":
                fx.name = str(value)
            elif fb.key == "fx_enabled":
                fx.enabled = float(value) > 0.5
            else:
                fx.params[fb.param] = float(value)
    return tracks


def _bank_signature(found: dict[int, OscTrack], bank: int, size: int) -> tuple:
    """What one bank's feedback says, by bank-relative number (equal for the same tracks shown twice)."""
    base = (bank - 1) * size
    return tuple(sorted((n - base, t.name, t.volume_db, t.pan, t.width, t.mute,
                         tuple((k, f.name, f.enabled, tuple(sorted(f.params.items()))) for k, f in sorted(t.fx.items())))
                        for n, t in found.items()))


def _param_number(target: str, param: str) -> int:
    if target == "eq":
        band = int(param[4:param.index("_")])
        return (band - 1) * 3 + EQ_KIND_OFFSET[param[param.index("_") + 1:]] + 1
    if target == "comp":
        return REACOMP_PARAMS[param]
    return POLARITY_PARAMS[param]


def _why_not_osc(key: str) -> str | None:
    if key == "track.polarity":
        return WHY["track.polarity"]
    if key.startswith("eq.") and key.endswith("_type"):
        return WHY["eq_type"]
    target, _, param = key.partition(".")
    if target == "track" and param not in ("volume_db", "pan", "width"):
        return f"OSC target does not write {key}"
    if target not in ("track", "eq", "comp", "polarity"):
        return f"OSC target does not write {key}"
    return None


def _osc_writable(key: str) -> bool:
    return _why_not_osc(key) is None


def _tolerance(key: str) -> float:
    return DB_TOLERANCE if key in ("track.volume_db", MASTER_KEY) else NORM_TOLERANCE


def _to_raw(key: str, value: Any, before: float | None) -> float:
    if key == "track.volume_db":  # the plan's volume is relative to the pre-AI fader, in dB over OSC
        return (before if before is not None else 0.0) + float(value)
    if key.startswith("track."):
        return float(value)
    return float(m.fx_normalized(key, value))


def _human(key: str, raw: float, before: float | None) -> Any:
    if key == "track.volume_db":
        return round(raw - (before or 0.0), 2)
    if key.startswith("track."):
        return round(raw, 4)
    return m.fx_plan_value(key, raw)
