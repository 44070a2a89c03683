"""A small Standard MIDI File writer (and reader, for checks), format 1, no dependencies.

Times are in seconds on input; the file carries one tempo (the song's), so seconds map to ticks
exactly up to the tick grid (``PPQ`` ticks per quarter note: at 120 BPM one tick is 0.52 ms).
The reader understands what the writer writes and the common rest of SMF (running status,
SysEx, meta events), enough to round-trip and to inspect other files.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

#: Ticks per quarter note.
PPQ = 960


@dataclass(frozen=True, slots=True)
class Note:
    """One note: start and length in seconds, MIDI pitch 0..127, velocity 1..127."""

    start_s: float
    length_s: float
    pitch: int
    velocity: int


@dataclass(frozen=True, slots=True)
class Control:
    """A control change at a time: ``controller`` 0..127 set to ``value`` 0..127."""

    time_s: float
    controller: int
    value: int


@dataclass(frozen=True, slots=True)
class Track:
    """One MIDI channel's part: a program (and bank), controller settings, notes.

    Attributes
    ----------
    channel : int
        0..15 (9 is the GM percussion channel).
    program : int
        GM program number 0..127 (``Choir Aahs`` is 52).
    bank : int
        Bank select (CC0); 128 selects a soundfont's percussion bank in fluidsynth.
    controls : tuple of Control
        Extra controller events; :func:`write_smf` first sets volume, pan, reverb and chorus
        sends from ``volume``, ``pan``, ``reverb_send``, ``chorus_send`` at time 0.
    """

    channel: int
    program: int
    notes: tuple[Note, ...]
    bank: int = 0
    name: str = ""
    volume: int = 100
    pan: int = 64
    reverb_send: int = 0
    chorus_send: int = 0
    controls: tuple[Control, ...] = ()


def _vlq(value: int) -> bytes:
    """A variable-length quantity (SMF's delta-time encoding)."""
    if value < 0:
        raise ValueError("negative delta time")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack(">I", len(data)) + data


def _events_to_track(events: list[tuple[int, int, bytes]], end_tick: int) -> bytes:
    # (tick, order, bytes): at one tick note-offs (order 0) come before controls (1) and note-ons (2),
    # so a repeated pitch is released before it is struck again.
    events.sort(key=lambda e: (e[0], e[1]))
    data = bytearray()
    now = 0
    for tick, _, raw in events:
        data += _vlq(tick - now) + raw
        now = tick
    data += _vlq(max(end_tick - now, 0)) + b"\xff\x2f\x00"
    return bytes(data)


def seconds_to_ticks(seconds: float, tempo_bpm: float) -> int:
    return int(round(seconds * tempo_bpm / 60.0 * PPQ))


def write_smf(path: str | Path, tracks: list[Track], tempo_bpm: float, end_s: float,
              time_signature: tuple[int, int] = (4, 4)) -> Path:
    """Write a format-1 SMF: a tempo track, then one track per :class:`Track`.

    Parameters
    ----------
    end_s : float
        Where every track ends (End of Track), seconds: leave room for release tails.
    """
    path = Path(path)
    end_tick = seconds_to_ticks(end_s, tempo_bpm)
    usec = int(round(60_000_000 / tempo_bpm))
    num, den = time_signature
    conductor = [(0, 1, b"\xff\x51\x03" + usec.to_bytes(3, "big")),
                 (0, 1, b"\xff\x58\x04" + bytes([num, den.bit_length() - 1, 24, 8]))]
    chunks = [_chunk(b"MTrk", _events_to_track(conductor, end_tick))]
    for track in tracks:
        ch = track.channel & 0x0F
        events: list[tuple[int, int, bytes]] = []
        if track.name:
            name = track.name.encode("ascii", "replace")[:127]
            events.append((0, 0, b"\xff\x03" + _vlq(len(name)) + name))
        setup = [(0, track.bank & 0x7F if track.bank < 128 else 0), (32, 0), (7, track.volume), (10, track.pan),
                 (91, track.reverb_send), (93, track.chorus_send)]
        if track.bank >= 128:
            setup[0] = (0, 0)  # percussion: fluidsynth selects bank 128 on channel 9 by itself
        for controller, value in setup:
            events.append((0, 1, bytes([0xB0 | ch, controller, max(0, min(127, value))])))
        events.append((0, 1, bytes([0xC0 | ch, track.program & 0x7F])))
        for c in track.controls:
            events.append((seconds_to_ticks(c.time_s, tempo_bpm), 1,
                           bytes([0xB0 | ch, c.controller & 0x7F, max(0, min(127, c.value))])))
        for note in track.notes:
            on = max(seconds_to_ticks(note.start_s, tempo_bpm), 0)
            off = max(seconds_to_ticks(note.start_s + note.length_s, tempo_bpm), on + 1)
            pitch = max(0, min(127, int(note.pitch)))
            events.append((on, 2, bytes([0x90 | ch, pitch, max(1, min(127, int(note.velocity)))])))
            events.append((off, 0, bytes([0x80 | ch, pitch, 0])))
        chunks.append(_chunk(b"MTrk", _events_to_track(events, end_tick)))
    header = _chunk(b"MThd", struct.pack(">HHH", 1, len(chunks), PPQ))
    path.write_bytes(header + b"".join(chunks))
    return path


# ------------------------------------------------------------------------------------------ reader


@dataclass(slots=True)
class ParsedTrack:
    """What :func:`read_smf` found in one track chunk (times in ticks)."""

    name: str = ""
    notes: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # (on, off, channel, pitch, vel)
    programs: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, channel, program)
    controls: list[tuple[int, int, int, int]] = field(default_factory=list)  # (tick, channel, cc, value)
    tempos_usec: list[tuple[int, int]] = field(default_factory=list)
    end_tick: int = 0


@dataclass(slots=True)
class ParsedMidi:
    format: int
    ppq: int
    tracks: list[ParsedTrack]

    def tick_seconds(self, tick: int) -> float:
        """Seconds at ``tick`` through the tempo map (120 BPM until the first tempo event)."""
        tempos = sorted(t for tr in self.tracks for t in tr.tempos_usec)
        seconds, last_tick, usec = 0.0, 0, 500_000
        for at, value in tempos:
            if at >= tick:
                break
            seconds += (at - last_tick) * usec / 1e6 / self.ppq
            last_tick, usec = at, value
        return seconds + (tick - last_tick) * usec / 1e6 / self.ppq


def _read_vlq(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos
    raise ValueError("variable-length quantity longer than 4 bytes")


def _parse_track(data: bytes) -> ParsedTrack:
    track = ParsedTrack()
    pos, tick, status = 0, 0, 0
    open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
    while pos < len(data):
        delta, pos = _read_vlq(data, pos)
        tick += delta
        byte = data[pos]
        if byte & 0x80:
            status = byte
            pos += 1
        elif not status:
            raise ValueError("running status with no status byte")
        if status == 0xFF:
            kind = data[pos]
            length, pos = _read_vlq(data, pos + 1)
            payload = data[pos:pos + length]
            pos += length
            if kind == 0x03:
                track.name = payload.decode("ascii", "replace")
            elif kind == 0x51:
                track.tempos_usec.append((tick, int.from_bytes(payload, "big")))
            elif kind == 0x2F:
                track.end_tick = tick
                break
            status = 0
            continue
        if status in (0xF0, 0xF7):
            length, pos = _read_vlq(data, pos)
            pos += length
            status = 0
            continue
        kind, ch = status & 0xF0, status & 0x0F
        size = 1 if kind in (0xC0, 0xD0) else 2
        args = data[pos:pos + size]
        pos += size
        if kind == 0x90 and args[1] > 0:
            open_notes.setdefault((ch, args[0]), []).append((tick, args[1]))
        elif kind == 0x80 or (kind == 0x90 and args[1] == 0):
            stack = open_notes.get((ch, args[0]))
            if stack:
                on, vel = stack.pop(0)
                track.notes.append((on, tick, ch, args[0], vel))
        elif kind == 0xC0:
            track.programs.append((tick, ch, args[0]))
        elif kind == 0xB0:
            track.controls.append((tick, ch, args[0], args[1]))
    track.notes.sort()
    return track


def read_smf(path: str | Path) -> ParsedMidi:
    """Parse a Standard MIDI File (formats 0 and 1, PPQ time division)."""
    data = Path(path).read_bytes()
    if data[:4] != b"MThd":
        raise ValueError("not a Standard MIDI File (no MThd)")
    length = struct.unpack(">I", data[4:8])[0]
    fmt, count, division = struct.unpack(">HHH", data[8:14])
    if division & 0x8000:
        raise ValueError("SMPTE time division is not supported")
    pos = 8 + length
    tracks = []
    while pos < len(data) and len(tracks) < count:
        kind, size = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        pos += 8 + size
        if kind == b"MTrk":
            tracks.append(_parse_track(body))
    return ParsedMidi(fmt, division, tracks)
