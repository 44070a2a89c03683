"""REAPER's built-in OSC control surface, simulated on the in-memory project.

Started by ``python -m tests.reaper_sim --osc-port P [--osc-feedback HOST:PORT]
[--osc-pattern FILE]``; the READY line then carries ``osc_port=N``.

Each rule below follows REAPER's own surface code, ``reaper-plugins/reaper_csurf/csurf_osc.cpp`` in
github justinfrankel/reaper-sdk (7.78); the function named is where to read it.

- **Pattern file** (``LoadCfgContext``).  A line whose key is not one of :data:`DEFAULT_KEYS` (the
  keys of the shipped ``Default.ReaperOSC``) is skipped.  A pattern whose flag is not one of
  ``nfbtrsi``, that does not start with ``/`` or is longer than 512 characters makes the *whole
  file* fail: REAPER then empties the configuration and falls back to its ``Default.ReaperOSC``.
  The simulator does not have that file, so it runs with no patterns and says so on stderr.
  Counts (``DEVICE_TRACK_COUNT`` ...) apply only when greater than 0 (defaults 8 tracks, 8 FX,
  16 parameters).
- **Tracks** are bank-relative and 1-based: ``tidx = bankstart + N`` (0 = master).
  ``/device/track/bank/select B`` (``ProcessStateAction``) sets ``bankstart = (B - 1) * count``,
  clamped to the last track and rounded down to a bank boundary, so a bank past the end selects
  the last bank again; ``/device/track/count N`` sets the bank size to any N >= 0.  Both resend
  the bank (``SetTrackListChange``).  Control is not range-checked; feedback covers only
  ``bankstart < tidx <= bankstart + count``.
- **Volume** (``ProcessTrackAction``, ``_VOLUME``, tracks and master alike): ``f`` is dB, ``n`` a
  fader position (slider/1000, through ``fader_scaling``'s approximate curve); so
  ``MASTER_VOLUME f/master/volume/db`` is the master in dB, both ways.  Writing a *selected*
  track moves the other selected tracks too (``allowGang``).  **Pan/pan2** ``n``: ``v * 2 - 1``
  (pan2 = width).  **Mute** and **FX_BYPASS** ``b`` (``TriggerMessage``): exactly 1 sets, exactly 0
  clears, any other value does nothing; ``t`` toggles; FX_BYPASS 1 = enabled.  Muting a selected
  track mutes the other selected tracks.
- **FX parameters** take a float only: an int argument is ignored, int -1 ends an edit.
- **Actions** ``/action i``: 41743 ("Refresh all surfaces", ``CSURF_EXT_RESET``) clears the
  last-value cache and resends everything; other actions are refused (not modelled).
- **Feedback** (``SetSurfaceVal``): every number as a 32-bit float.  REAPER keeps the last value
  sent per address and sends only what differs.  Handling an incoming message first *clears* that
  address's cache entry (``ProcessMessage``); while it is handled, a report of the same address
  with the same flag is dropped without touching the cache ("antifeedback") *unless the flag is
  ``b`` or ``t``*, whose writes are therefore echoed.  A dropped echo leaves the entry cleared, so
  the next report of that address is sent whatever its value (a later bank select, a write to a
  sibling address, a change by hand).  REAPER reports on change notifications, not by polling:
  a handler reports what it touched (``SetSurfaceVolume`` after every volume write, the pan
  after every pan write, the whole bank after a bank or count change), and a change made
  elsewhere is reported when it happens.  FX names lose their type prefix (``"VST: "`` ...).
  Messages go out in OSC bundles of at most 1024 bytes (REAPER's default max packet size).
- **Undo**: every OSC write that changes the project adds its own undo point (the names are the
  simulator's, ``"OSC: <address>"``, except REAPER's "Set track name via OSC").

Assumed, not in ``csurf_osc.cpp`` (REAPER's core is not public): that REAPER's own notifications
of a change made by the surface (``TrackFX_SetParamNormalized``, ``TrackFX_SetEnabled``) reach the
surface while the message is still being handled, so they fall under the antifeedback rule.

The surface thread receives datagrams and, about every 10 ms (REAPER's default send sleep), runs
one step on the main loop (``MainLoop.call``, like the web interface): first report what changed
elsewhere since the last step (manual edits through the control channel, reapy writes), then
handle what arrived, each message with its own reports.

Anything not modelled is refused: ignored, counted in :attr:`OscSurface.counters` and logged to
stderr (the first few of each kind).  The OSC codec here is the simulator's own, independent of
python-osc (which the bridge uses).
"""
from __future__ import annotations

import math
import re
import select
import socket
import struct
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .fader_scaling import SCALING_FADER, scale_from_envelope_mode, scale_to_envelope_mode

LOOPBACK = "127.0.0.1"
REFRESH_ALL_ACTION = 41743
MAX_PACKET_BYTES = 1024
TICK_S = 0.01
VALID_FLAGS = "nfbtrsi"
MAX_PATTERN_CHARS = 512
#: FX name prefixes REAPER strips in FX_NAME feedback (reaper.md 1.4).
FX_NAME_PREFIXES = ("VST: ", "VSTi: ", "VST3: ", "VST3i: ", "JS: ", "DX: ", "DXi: ", "AU: ", "AUi: ")

#: Keys of REAPER's shipped Default.ReaperOSC that reaper.md 1.3 lists (settings and actions).
#: REAPER takes its list of valid keys from that file; anything else is ignored at load time.
DEFAULT_KEYS = frozenset("""
DEVICE_TRACK_COUNT DEVICE_SEND_COUNT DEVICE_RECEIVE_COUNT DEVICE_FX_COUNT DEVICE_FX_PARAM_COUNT
DEVICE_FX_INST_PARAM_COUNT DEVICE_MARKER_COUNT DEVICE_REGION_COUNT REAPER_TRACK_FOLLOWS
DEVICE_TRACK_FOLLOWS DEVICE_TRACK_BANK_FOLLOWS DEVICE_FX_FOLLOWS
TRACK_NAME TRACK_NUMBER TRACK_MUTE TRACK_SOLO TRACK_REC_ARM TRACK_MONITOR TRACK_SELECT TRACK_VOLUME
TRACK_PAN TRACK_PAN2 TRACK_PAN_MODE TRACK_VOLUME_TOUCH TRACK_PAN_TOUCH MASTER_VOLUME MASTER_PAN
TRACK_SEND_VOLUME
FX_NAME FX_NUMBER FX_BYPASS FX_PARAM_NAME FX_WETDRY FX_PARAM_VALUE FX_EQ_BAND_GAIN FX_EQ_BAND_FREQ
GOTO_MARKER GOTO_REGION REGION_NAME REGION_TIME REGION_LENGTH ACTION ACTION_SOFT ACTION_RELATIVE
DEVICE_FX_PARAM_BANK_SELECT DEVICE_TRACK_FOLLOWS_DEVICE DEVICE_TRACK_FOLLOWS_LAST_TOUCHED
DEVICE_TRACK_SELECT DEVICE_TRACK_BANK_SELECT
""".split())


# --------------------------------------------------------------------------
# Pattern files
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Pattern:
    action: str
    flag: str
    pattern: str


@dataclass
class PatternFile:
    """A loaded ``.ReaperOSC`` file: settings (``KEY VALUE``) and patterns (``KEY fPATTERN ...``)."""

    settings: dict[str, str] = field(default_factory=dict)
    patterns: list[Pattern] = field(default_factory=list)
    #: Lines REAPER skips silently (unknown keys, unreadable lines).
    rejected: list[str] = field(default_factory=list)
    #: Why REAPER refuses the whole file (then it loads Default.ReaperOSC instead), or None.
    failed: str | None = None

    def setting_int(self, key: str, default: int) -> int:
        try:
            value = int(self.settings.get(key, default))
        except ValueError:
            return default
        return value if value > 0 else default


_SETTING_WORDS = ("REAPER", "DEVICE", "LAST_TOUCHED", "FOCUSED", "MIXER")


def _is_setting(key: str, word: str) -> bool:
    # LoadCfgContext: the first word after a DEVICE_/REAPER_ key may be a value, not a pattern.
    if not key.startswith(("DEVICE_", "REAPER_")):
        return False
    if key.endswith("_COUNT"):
        return word.lstrip("-").isdigit()
    if key.endswith("_ROTARY_CENTER"):
        try:
            float(word)
        except ValueError:
            return False
        return True
    if key.endswith("_FOLLOWS"):
        return word in _SETTING_WORDS
    return key.endswith("_EQ") and word == "INSERT"


def load_pattern_file(text: str) -> PatternFile:
    """Parse a pattern file the way REAPER's ``LoadCfgContext`` accepts it (see the module docstring)."""
    out = PatternFile()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if len(words) < 2 or words[0].startswith("#"):
            continue
        key, rest = words[0], words[1:]
        if key not in DEFAULT_KEYS:
            out.rejected.append(f"line {number}: unknown action {key!r}")
            continue
        if _is_setting(key, rest[0]):
            out.settings[key] = rest[0]
            rest = rest[1:]
        for word in rest:
            flag, pattern = word[:1], word[1:]
            if flag not in VALID_FLAGS or not pattern.startswith("/") or len(pattern) > MAX_PATTERN_CHARS:
                # REAPER stops at the first bad pattern and drops the whole configuration.
                return PatternFile(rejected=out.rejected, failed=f"line {number}: bad pattern {word!r}")
            out.patterns.append(Pattern(key, flag, pattern))
    return out


# --------------------------------------------------------------------------
# OSC 1.0 codec (own implementation: a second opinion next to python-osc and liblo)
# --------------------------------------------------------------------------

def _pad(data: bytes) -> bytes:
    return data + b"\0" * (4 - len(data) % 4)


def _read_string(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\0", at)
    text = data[at:end].decode("utf-8")
    return text, at + ((end - at) // 4 + 1) * 4


def decode_packet(data: bytes, depth: int = 0) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Messages in a packet (bundles flattened) as ``(address, [(tag, value), ...])``.

    Raises ``ValueError`` (or ``IndexError``/``struct.error``) on a malformed packet.
    """
    if depth > 4:
        raise ValueError("bundles nested too deeply")
    if data.startswith(b"#bundle\0"):
        out, at = [], 16
        while at < len(data):
            (size,) = struct.unpack_from(">i", data, at)
            if size <= 0 or at + 4 + size > len(data):
                raise ValueError("bad bundle element size")
            out += decode_packet(data[at + 4:at + 4 + size], depth + 1)
            at += 4 + size
        return out
    address, at = _read_string(data, 0)
    if not address.startswith("/"):
        raise ValueError("address does not start with '/'")
    if at >= len(data):
        return [(address, [])]
    tags, at = _read_string(data, at)
    if not tags.startswith(","):
        raise ValueError("type tag string does not start with ','")
    args: list[tuple[str, Any]] = []
    for tag in tags[1:]:
        if tag == "i":
            args.append((tag, struct.unpack_from(">i", data, at)[0]))
            at += 4
        elif tag == "f":
            args.append((tag, struct.unpack_from(">f", data, at)[0]))
            at += 4
        elif tag == "h":
            args.append((tag, struct.unpack_from(">q", data, at)[0]))
            at += 8
        elif tag == "d":
            args.append((tag, struct.unpack_from(">d", data, at)[0]))
            at += 8
        elif tag == "s":
            text, at = _read_string(data, at)
            args.append((tag, text))
        elif tag in "TF":
            args.append((tag, tag == "T"))
        elif tag == "N":
            args.append((tag, None))
        else:
            raise ValueError(f"type tag {tag!r} not modelled")
    if at > len(data):
        raise ValueError("arguments run past the packet")
    return [(address, args)]


def encode_message(address: str, args: list[tuple[str, Any]]) -> bytes:
    out = _pad(address.encode()) + _pad(("," + "".join(t for t, _ in args)).encode())
    for tag, value in args:
        if tag == "f":
            out += struct.pack(">f", value)
        elif tag == "i":
            out += struct.pack(">i", value)
        elif tag == "s":
            out += _pad(value.encode("utf-8"))
        else:
            raise ValueError(tag)
    return out


def bundles(messages: list[bytes], limit: int = MAX_PACKET_BYTES) -> list[bytes]:
    """Pack messages into bundles of at most ``limit`` bytes (a bigger message goes alone)."""
    head = b"#bundle\0" + struct.pack(">Q", 1)  # timetag 1 = immediately
    packets, current = [], b""
    for message in messages:
        element = struct.pack(">i", len(message)) + message
        if current and len(head) + len(current) + len(element) > limit:
            packets.append(head + current)
            current = b""
        current += element
    if current:
        packets.append(head + current)
    return packets


# --------------------------------------------------------------------------
# The surface
# --------------------------------------------------------------------------

def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace("@", "([^/]+)") + "$")


def _vol_to_db(vol: float) -> float:
    # REAPER's VAL2DB floors at -150 dB.
    return -150.0 if vol < 3e-8 else max(-150.0, 20.0 * math.log10(vol))


def _fx_feedback_name(fx: Any) -> str:
    name = fx.display_name
    for prefix in FX_NAME_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


@dataclass(frozen=True, slots=True)
class _Report:
    """One feedback address as REAPER would report it: which action and flag, whose, and the value."""

    action: str
    flag: str
    owner: int  # id() of the track (or master) it belongs to
    value: tuple[str, Any]


class OscSurface:
    """One OSC control surface of the simulated REAPER (see the module docstring)."""

    def __init__(self, sim: Any, port: int, feedback: tuple[str, int] | None, pattern_path: Path | None) -> None:
        self.sim = sim
        self.project = sim.project
        self.feedback = feedback
        text = pattern_path.read_text() if pattern_path is not None else ""
        self.config = load_pattern_file(text)
        self.counters: Counter[str] = Counter()
        self._logged: Counter[str] = Counter()
        for line in self.config.rejected:
            self._log(f"pattern file: {line} (ignored, as REAPER does)")
        if self.config.failed:
            self._log(f"pattern file rejected as a whole: {self.config.failed}; REAPER would load its "
                      f"Default.ReaperOSC instead (not modelled: no patterns are active)")
        self.bank_size = self.config.setting_int("DEVICE_TRACK_COUNT", 8)
        self.fx_count = self.config.setting_int("DEVICE_FX_COUNT", 8)
        self.param_count = self.config.setting_int("DEVICE_FX_PARAM_COUNT", 16)
        self.bank_start = 0
        #: REAPER's m_lastvals: the last value sent per address (absent = cleared).
        self.last: dict[str, tuple[str, Any]] = {}
        #: What each address showed at the last report, to see changes (REAPER is told of them).
        self._known: dict[str, tuple[str, Any]] = {}
        #: Reports a handler asks for whatever changed: (action, owner id); or everything.
        self._rereport: set[tuple[str, int]] = set()
        self._rereport_all = False
        self._inbound = [(p, _wildcard_regex(p.pattern)) for p in self.config.patterns]
        self._outbound = [p for p in self.config.patterns if p.flag in "nbtfs"]
        for p in self._outbound:
            if (p.action, p.flag) not in _FEEDBACK or not (p.pattern.startswith("/track/@/")
                                                          or (p.action.startswith("MASTER_") and "@" not in p.pattern)):
                self._log(f"pattern {p.flag}{p.pattern} ({p.action}): feedback not modelled")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((getattr(sim.config, 'bind', LOOPBACK), port))
        self.port = self.sock.getsockname()[1]
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="osc-surface", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(0.5)  # it may sit in a MainLoop.call the stopped loop never runs
        self.sock.close()
        summary = ", ".join(f"{k}={v}" for k, v in sorted(self.counters.items()))
        sys.stderr.write(f"reaper_sim osc: counters {summary}\n")

    def _log(self, text: str, kind: str = "") -> None:
        # Rate-limited: the first 20 of each kind.
        self._logged[kind or text] += 1
        if self._logged[kind or text] <= 20:
            sys.stderr.write(f"reaper_sim osc: {text}\n")
            sys.stderr.flush()

    def _run(self) -> None:
        while not self.sim.stop.is_set():
            datagrams = []
            try:
                ready, _, _ = select.select([self.sock], [], [], TICK_S)
                while ready and len(datagrams) < 2000:
                    datagrams.append(self.sock.recv(65536))
                    ready, _, _ = select.select([self.sock], [], [], 0)
            except OSError:
                return
            try:
                out = self.sim.loop.call(lambda: self.step(datagrams), timeout_s=5.0)
            except TimeoutError:
                self.counters["ticks_missed_main_loop_busy"] += 1
                continue
            if self.feedback is not None and out:
                for packet in bundles(out):
                    try:
                        self.sock.sendto(packet, self.feedback)
                        self.counters["packets_sent"] += 1
                    except OSError as error:
                        self.counters["send_errors"] += 1
                        self._log(f"feedback send failed: {error}", "send")

    # -- one step on the main thread ----------------------------------------

    def step(self, datagrams: list[bytes]) -> list[bytes]:
        """Report what changed elsewhere since the last step, then handle each message with its reports."""
        # Changes by hand or through reapy happened before these messages arrived: REAPER was
        # told of them at the time, so they go out first.
        out: list[bytes] = self._report(None)
        for data in datagrams:
            try:
                messages = decode_packet(data)
            except (ValueError, IndexError, struct.error, UnicodeDecodeError) as error:
                self._refuse("malformed packet", repr(data[:40]), str(error))
                continue
            for address, args in messages:
                self.counters["received"] += 1
                flag = self._handle(address, args)
                # What the handler changed or re-reported is reported while REAPER is still
                # handling the message (m_curedit = address, m_curflag = flag).
                out += self._report(None if flag is None else (address, flag))
        return out if self.feedback is not None else []

    def _report(self, curedit: tuple[str, str] | None) -> list[bytes]:
        """SetSurfaceVal for every address whose value changed or that a handler re-reported."""
        out = []
        rereport, everything = self._rereport, self._rereport_all
        self._rereport, self._rereport_all = set(), False
        for address, report in self._feedback_values().items():
            changed = self._known.get(address) != report.value
            self._known[address] = report.value
            if not (changed or everything or (report.action, report.owner) in rereport):
                continue
            if self.feedback is None:
                continue  # osc_send_inactive(): nothing is sent or cached
            if curedit is not None and address == curedit[0] and report.flag == curedit[1] \
                    and report.flag not in "tb":
                self.counters["echo_suppressed"] += 1  # antifeedback: the cache is left as it is
                continue
            if self.last.get(address) == report.value:
                continue
            self.last[address] = report.value
            out.append(encode_message(address, [report.value]))
            self.counters["feedback_messages"] += 1
        return out

    def rereport(self, actions: tuple[str, ...], owner: Any) -> None:
        """A handler reports these actions of ``owner`` whether or not they changed."""
        self._rereport.update((action, id(owner)) for action in actions)

    def rereport_all(self) -> None:
        """``SetTrackListChange``: every address of the bank is reported again."""
        self._rereport_all = True

    def _refuse(self, reason: str, address: str, detail: str = "") -> None:
        self.counters["refused"] += 1
        self.counters["refused: " + reason] += 1
        self._log(f"refused {address} ({reason}{': ' + detail if detail else ''})", reason)

    def _handle(self, address: str, args: list[tuple[str, Any]]) -> str | None:
        """Run one message; returns the flag of the pattern it matched (None if none matched)."""
        for pattern, regex in self._inbound:
            match = regex.match(address)
            if not match:
                continue
            # ProcessMessage: a matched address's last value is cleared before it is handled.
            self.last.pop(address, None)
            try:
                wildcards = [int(g) for g in match.groups()]
            except ValueError:
                self._refuse("wildcard not a single number (lists are not modelled)", address)
                return pattern.flag
            handler = _HANDLERS.get((pattern.action, pattern.flag))
            if handler is None or (wildcards and not pattern.pattern.startswith("/track/@/")):
                self._refuse("pattern not modelled", address, f"{pattern.action} {pattern.flag}")
                return pattern.flag
            try:
                handler(self, address, wildcards, args)
            except _Refused as refused:
                self._refuse(str(refused), address)
                return pattern.flag
            self.counters["applied"] += 1
            return pattern.flag
        self._refuse("no active pattern matches", address)
        return None

    # -- helpers for handlers -----------------------------------------------

    def track(self, relative: int) -> Any:
        index = self.bank_start + relative
        if index == 0:
            return self.project.master
        if not 1 <= index <= len(self.project.tracks):
            raise _Refused(f"no track {index}")
        return self.project.tracks[index - 1]

    def change(self, name: str, mutate: Callable[[], bool]) -> None:
        """Run ``mutate``; if it changed the project, record one undo point for it."""
        before = self.project.snapshot()
        if mutate():
            self.project.undo.record(name, -1, before, self.project.state)
            self.counters["undo_points"] += 1

    # -- feedback -----------------------------------------------------------

    def _feedback_values(self) -> dict[str, _Report]:
        values: dict[str, _Report] = {}
        tracks = self.project.tracks
        last = min(len(tracks), self.bank_start + self.bank_size)
        for p in self._outbound:
            fn = _FEEDBACK.get((p.action, p.flag))
            if fn is None:
                continue
            if p.action.startswith("MASTER_") and "@" not in p.pattern:
                master = self.project.master
                values[p.pattern] = _Report(p.action, p.flag, id(master), fn(self, master, None, None))
                continue
            if not p.pattern.startswith("/track/@/"):
                continue
            parts = p.pattern.split("@")
            for index in range(self.bank_start + 1, last + 1):
                track = tracks[index - 1]
                relative = index - self.bank_start
                if len(parts) == 2:
                    values[f"{parts[0]}{relative}{parts[1]}"] = _Report(p.action, p.flag, id(track),
                                                                        fn(self, track, None, None))
                    continue
                for f, fx in enumerate(track.fxs[:self.fx_count], 1):
                    if len(parts) == 3:
                        values[f"{parts[0]}{relative}{parts[1]}{f}{parts[2]}"] = _Report(
                            p.action, p.flag, id(track), fn(self, track, fx, None))
                        continue
                    for k in range(1, min(len(fx.params_raw), self.param_count) + 1):
                        addr = f"{parts[0]}{relative}{parts[1]}{f}{parts[2]}{k}{parts[3]}"
                        values[addr] = _Report(p.action, p.flag, id(track), fn(self, track, fx, k - 1))
        return values


class _Refused(Exception):
    pass


def _float_arg(args: list[tuple[str, Any]]) -> float:
    # GetFloatArg: a float or an int, for n/f/b/t/r flags.
    if len(args) != 1 or args[0][0] not in "if":
        raise _Refused("expects one numeric argument")
    return float(args[0][1])


def _trigger(args: list[tuple[str, Any]], flag: str) -> int:
    """TriggerMessage: ``b`` 1.0 -> 1, 0.0 -> -1, anything else 0; ``t`` no argument or 1.0 -> 1."""
    if flag == "t":
        if not args:
            return 1
        return 1 if _float_arg(args) == 1.0 else 0
    value = _float_arg(args)
    return 1 if value == 1.0 else -1 if value == 0.0 else 0


def _f32(value: float) -> tuple[str, float]:
    return ("f", struct.unpack(">f", struct.pack(">f", value))[0])


# -- inbound handlers ---------------------------------------------------------

def _set_volume(surface: OscSurface, address: str, wc: list[int], args: list, flag: str) -> None:
    v = _float_arg(args)
    gain = 10.0 ** (v / 20.0) if flag == "f" else scale_from_envelope_mode(SCALING_FADER, v * 1000.0)
    track = surface.track(wc[0]) if wc else surface.project.master

    def mutate() -> bool:
        old = track.vol
        if old == gain:
            return False
        track.vol = gain
        if track.selected and not track.is_master:  # allowGang: selected tracks move together
            ratio = gain / old if old > 0 else None
            for other in surface.project.tracks:
                if other is not track and other.selected and ratio is not None:
                    other.vol *= ratio
        return True
    surface.change(f"OSC: {address}", mutate)
    surface.rereport(("TRACK_VOLUME", "MASTER_VOLUME"), track)  # SetSurfaceVolume(tr, v), always


def _set_pan(surface: OscSurface, address: str, wc: list[int], args: list, attr: str) -> None:
    value = min(1.0, max(-1.0, _float_arg(args) * 2.0 - 1.0))
    track = surface.track(wc[0])

    def mutate() -> bool:
        old = getattr(track, attr)
        if old == value:
            return False
        setattr(track, attr, value)
        if track.selected:
            for other in surface.project.tracks:
                if other is not track and other.selected:
                    setattr(other, attr, min(1.0, max(-1.0, getattr(other, attr) + value - old)))
        return True
    surface.change(f"OSC: {address}", mutate)
    surface.rereport(("TRACK_PAN", "TRACK_PAN2"), track)  # Extended(CSURF_EXT_SETPAN_EX_IMPL), always


def _set_mute(flag: str):
    def handler(surface: OscSurface, address: str, wc: list[int], args: list) -> None:
        track = surface.track(wc[0])
        t = _trigger(args, flag)
        if not t or (flag != "t" and track.mute == (t > 0)):
            return  # nothing to do, nothing reported
        state = not track.mute

        def mutate() -> bool:
            track.mute = state
            if track.selected:  # CSurf_OnMuteChangeEx(..., allowgang=true)
                for other in surface.project.tracks:
                    if other.selected:
                        other.mute = state
            return True
        surface.change(f"OSC: {address}", mutate)
    return handler


def _set_fx_enabled(flag: str):
    def handler(surface: OscSurface, address: str, wc: list[int], args: list) -> None:
        fx = _fx(surface, wc)
        t = _trigger(args, flag)
        if not t or (flag != "t" and fx.enabled == (t > 0)):
            return

        def mutate() -> bool:
            fx.enabled = not fx.enabled
            return True
        surface.change(f"OSC: {address}", mutate)
    return handler


def _fx(surface: OscSurface, wc: list[int]) -> Any:
    track = surface.track(wc[0])
    if not 1 <= wc[1] <= len(track.fxs):
        raise _Refused(f"track has no FX {wc[1]}")
    return track.fxs[wc[1] - 1]


def _set_fx_param(surface: OscSurface, address: str, wc: list[int], args: list) -> None:
    if len(args) != 1:
        raise _Refused("expects one argument (several values per message are not modelled)")
    tag, value = args[0]
    if tag == "i":
        if value == -1:
            surface.counters["fx_param_end_edit"] += 1  # TrackFX_EndParamEdit: nothing to model
            return
        raise _Refused("FX parameter needs a float argument; REAPER ignores an int")
    if tag != "f":
        raise _Refused("FX parameter needs a float argument")
    fx = _fx(surface, wc)
    index = wc[2] - 1
    if not 0 <= index < len(fx.params_raw):
        raise _Refused(f"FX has no parameter {wc[2]}")

    def mutate() -> bool:
        old = fx.params_raw[index]
        fx.set_normalized(index, min(1.0, max(0.0, float(value))))
        return fx.params_raw[index] != old
    surface.change(f"OSC: {address}", mutate)


def _set_track_name(surface: OscSurface, address: str, wc: list[int], args: list) -> None:
    if len(args) != 1 or args[0][0] != "s":
        raise _Refused("expects one string")
    track = surface.track(wc[0])

    def mutate() -> bool:
        if track.name == args[0][1]:
            return False
        track.name = args[0][1]
        return True
    surface.change("Set track name via OSC", mutate)


def _int_args(args: list) -> list[int]:
    if not args or any(tag not in "if" for tag, _ in args):
        raise _Refused("expects integer arguments")
    return [int(v) for _, v in args]


def _action(surface: OscSurface, address: str, wc: list[int], args: list) -> None:
    for command in _int_args(args):  # several ints run in order
        if command == REFRESH_ALL_ACTION:
            surface.last.clear()  # CSURF_EXT_RESET: m_lastvals.DeleteAll(), then SetTrackListChange
            surface.rereport_all()
            surface.counters["refresh_all"] += 1
        else:
            raise _Refused(f"action {command} not modelled")


def _track_count(surface: OscSurface, address: str, wc: list[int], args: list) -> None:
    (count,) = _int_args(args)[:1]
    if count >= 0:  # ProcessStateAction: any ival >= 0, 0 included
        surface.bank_size = count
        surface.rereport_all()


def _bank_select(surface: OscSurface, address: str, wc: list[int], args: list) -> None:
    (bank,) = _int_args(args)[:1]
    if bank < 0 or not surface.bank_size:
        return
    count = len(surface.project.tracks)
    start = (bank - 1) * surface.bank_size
    if start < 0:
        start = 0
    elif start >= count:
        start = max(0, count - 1)  # past the end: the last bank again
    surface.bank_start = start - start % surface.bank_size
    surface.rereport_all()


_HANDLERS: dict[tuple[str, str], Callable] = {
    ("TRACK_VOLUME", "f"): lambda s, a, wc, args: _set_volume(s, a, wc, args, "f"),
    ("TRACK_VOLUME", "n"): lambda s, a, wc, args: _set_volume(s, a, wc, args, "n"),
    ("MASTER_VOLUME", "f"): lambda s, a, wc, args: _set_volume(s, a, [], args, "f"),
    ("MASTER_VOLUME", "n"): lambda s, a, wc, args: _set_volume(s, a, [], args, "n"),
    ("TRACK_PAN", "n"): lambda s, a, wc, args: _set_pan(s, a, wc, args, "pan"),
    ("TRACK_PAN2", "n"): lambda s, a, wc, args: _set_pan(s, a, wc, args, "width"),
    ("TRACK_MUTE", "b"): _set_mute("b"),
    ("TRACK_MUTE", "t"): _set_mute("t"),
    ("FX_BYPASS", "b"): _set_fx_enabled("b"),
    ("FX_BYPASS", "t"): _set_fx_enabled("t"),
    ("FX_PARAM_VALUE", "n"): _set_fx_param,
    ("TRACK_NAME", "s"): _set_track_name,
    ("ACTION", "i"): _action,
    ("DEVICE_TRACK_COUNT", "i"): _track_count,
    ("DEVICE_TRACK_BANK_SELECT", "i"): _bank_select,
}

# -- feedback values ------------------------------------------------------------

def _volume_db(t: Any) -> tuple[str, float]:
    return _f32(_vol_to_db(t.vol))


def _volume_fader(t: Any) -> tuple[str, float]:
    return _f32(scale_to_envelope_mode(SCALING_FADER, t.vol) / 1000.0)


_FEEDBACK: dict[tuple[str, str], Callable[[OscSurface, Any, Any, int | None], tuple[str, Any]]] = {
    ("TRACK_NAME", "s"): lambda s, t, fx, k: (
        "s", t.name or f"Track {s.project.tracks.index(t) + 1}"),
    ("TRACK_VOLUME", "f"): lambda s, t, fx, k: _volume_db(t),
    ("TRACK_VOLUME", "n"): lambda s, t, fx, k: _volume_fader(t),
    # SetSurfaceVolumeImpl: the master's MASTER_VOLUME patterns get the same db/fader/string values.
    ("MASTER_VOLUME", "f"): lambda s, t, fx, k: _volume_db(t),
    ("MASTER_VOLUME", "n"): lambda s, t, fx, k: _volume_fader(t),
    ("TRACK_PAN", "n"): lambda s, t, fx, k: _f32(0.5 * (t.pan + 1.0)),
    ("TRACK_PAN2", "n"): lambda s, t, fx, k: _f32(0.5 * (t.width + 1.0)),
    ("TRACK_MUTE", "b"): lambda s, t, fx, k: _f32(1.0 if t.mute else 0.0),
    ("TRACK_MUTE", "t"): lambda s, t, fx, k: _f32(1.0 if t.mute else 0.0),
    ("FX_NAME", "s"): lambda s, t, fx, k: ("s", _fx_feedback_name(fx)),
    ("FX_BYPASS", "b"): lambda s, t, fx, k: _f32(1.0 if fx.enabled else 0.0),
    ("FX_BYPASS", "t"): lambda s, t, fx, k: _f32(1.0 if fx.enabled else 0.0),
    ("FX_PARAM_VALUE", "n"): lambda s, t, fx, k: _f32(fx.get_normalized(k)),
}
