"""The one table of the ``/mixbridge/...`` OSC address space (documented in ``docs/osc.md``).

Inbound addresses are matched literally (no OSC wildcards) and every argument is checked against
its :class:`Arg`: OSC type, range, string length.  A message that fails any check is refused
before it reaches the controller, so nothing malformed can reach the DAW; nothing here names a
file, a command or code — arguments are ids, 1-based slots and numbers.

Argument kinds:

``int``
    OSC ``i`` or ``h``; also ``f``/``d`` holding a whole number (many surfaces send only floats).
``float``
    OSC ``f``, ``d``, ``i`` or ``h``; must be finite.
``str``
    OSC ``s``, UTF-8, at most :data:`MAX_STRING_BYTES` bytes.
``press``
    An optional trailing button value (``i``/``h``/``f``/``d``/``T``/``F``).  Buttons send 1 on
    press and 0 on release; a 0 (or ``F``) is a release and the message is ignored, so a
    momentary button fires once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .osc import OscMessage

PREFIX = "/mixbridge"
MAX_STRING_BYTES = 128
MAX_TRACK_SLOT = 1024
MAX_SUGGESTION_INDEX = 1024
#: Text pushed to surfaces is cut to this many bytes (names, findings, the status line).
MAX_FEEDBACK_STRING_BYTES = 160


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    kind: str  # int | float | str | press
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One address a surface may send: what it takes, which command it runs, what comes back."""

    address: str
    command: str
    args: tuple[Arg, ...]
    reply: str
    doc: str


PORT = Arg("reply_port", "int", 1, 65535)
TRACK = Arg("track", "int", 1, MAX_TRACK_SLOT)
INDEX = Arg("index", "int", 1, MAX_SUGGESTION_INDEX)
SUGGESTION_ID = Arg("suggestion_id", "str")
PRESS = Arg("press", "press")

INBOUND: tuple[Inbound, ...] = (
    Inbound(f"{PREFIX}/subscribe", "subscribe", (PORT,),
            "a full state dump, then feedback on every change",
            "Send feedback to the sender's host at reply_port (at most 16 surfaces; subscribing again is harmless)."),
    Inbound(f"{PREFIX}/unsubscribe", "unsubscribe", (PORT,), "nothing",
            "Stop feedback to the sender's host at reply_port."),
    Inbound(f"{PREFIX}/ping", "ping", (), "/mixbridge/pong",
            "Liveness check; the answer goes to the address and port the ping came from."),
    Inbound(f"{PREFIX}/dump", "dump", (PRESS,), "a full state dump to the sender",
            "Every feedback address with its current value."),
    Inbound(f"{PREFIX}/tracks/list", "list_tracks", (PRESS,), "/mixbridge/tracks/count and every track's feedback",
            "List the tracks."),
    Inbound(f"{PREFIX}/suggestions/list", "list_suggestions", (PRESS,),
            "/mixbridge/suggestion per pending suggestion, then /mixbridge/suggestions/end",
            "List every pending suggestion."),
    Inbound(f"{PREFIX}/track/suggestions/list", "list_track_suggestions", (TRACK, PRESS),
            "/mixbridge/suggestion per pending suggestion of the track, then /mixbridge/suggestions/end",
            "List the pending suggestions of one track (1-based slot)."),
    Inbound(f"{PREFIX}/accept", "accept", (SUGGESTION_ID,), "feedback + status",
            "Accept one suggestion by id (e.g. 'Kick/masking/0'); it is applied through the target."),
    Inbound(f"{PREFIX}/reject", "reject", (SUGGESTION_ID,), "feedback + status",
            "Reject one suggestion by id; if it was applied, the target takes it out again."),
    Inbound(f"{PREFIX}/accept/index", "accept_index", (TRACK, INDEX, PRESS), "feedback + status",
            "Accept the index-th suggestion (1-based, in list order) of a track slot."),
    Inbound(f"{PREFIX}/reject/index", "reject_index", (TRACK, INDEX, PRESS), "feedback + status",
            "Reject the index-th suggestion of a track slot."),
    Inbound(f"{PREFIX}/track/accept", "accept_track", (TRACK, PRESS), "feedback + status",
            "Accept every pending suggestion of a track slot."),
    Inbound(f"{PREFIX}/track/reject", "reject_track", (TRACK, PRESS), "feedback + status",
            "Reject every suggestion of a track slot (accepted ones are taken out)."),
    Inbound(f"{PREFIX}/accept/all", "accept_all", (PRESS,), "feedback + status",
            "Accept every pending suggestion."),
    Inbound(f"{PREFIX}/reject/all", "reject_all", (PRESS,), "feedback + status",
            "Reject every suggestion (the session goes back to its pre-AI values)."),
    Inbound(f"{PREFIX}/amount", "set_amount", (Arg("amount", "float", 0.0, 1.0),), "/mixbridge/amount + status",
            "Scale every move (0..1); replans from the analysis and re-applies what is accepted."),
    Inbound(f"{PREFIX}/ab", "ab", (PRESS,), "/mixbridge/ab, /mixbridge/ab/compensation_db + status",
            "Toggle pre-AI (A) / AI (B), level-matched by the plan's estimated loudness change."),
    Inbound(f"{PREFIX}/revert", "revert", (PRESS,), "feedback + status",
            "Restore every pre-AI value; accepted suggestions become pending again."),
    Inbound(f"{PREFIX}/reanalyse", "reanalyse", (PRESS,), "feedback + status",
            "Analyse the stems again now and replan (keeps the decisions by suggestion id)."),
)
BY_ADDRESS: dict[str, Inbound] = {a.address: a for a in INBOUND}

# Outbound (feedback).  ``N`` is the 1-based track slot (plan order).
FEEDBACK: tuple[tuple[str, str, str], ...] = (
    (f"{PREFIX}/tracks/count", "i", "number of tracks"),
    (f"{PREFIX}/track/N/name", "s", "track name"),
    (f"{PREFIX}/track/N/provenance", "s", "ai | manual | hybrid | '' (the target has no tag yet)"),
    (f"{PREFIX}/track/N/lufs", "f", "integrated loudness, LUFS; -70.0 = silent or not measured"),
    (f"{PREFIX}/track/N/finding", "s", "the most severe finding's message ('' if none)"),
    (f"{PREFIX}/track/N/pending", "i", "number of pending suggestions"),
    (f"{PREFIX}/pending", "i", "pending suggestions in total"),
    (f"{PREFIX}/ab", "s", "A (pre-AI) | B (AI)"),
    (f"{PREFIX}/ab/compensation_db", "f", "master level match while on A, dB"),
    (f"{PREFIX}/amount", "f", "0..1"),
    (f"{PREFIX}/status", "s", "text line for the last action (errors start with their code, E_...)"),
    (f"{PREFIX}/suggestion", "siisss", "reply to a list: id, track slot, index, code, state, summary"),
    (f"{PREFIX}/suggestions/end", "i", "end of a list: how many were listed"),
    (f"{PREFIX}/pong", "", "reply to /mixbridge/ping"),
)
#: LUFS shown for a track without a measurement (the BS.1770 absolute gate).
NO_LUFS = -70.0


class ValidationError(ValueError):
    """A message the table refuses; ``kind`` is the counter it goes to."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


def validate(message: OscMessage) -> tuple[Inbound, tuple[Any, ...]] | None:
    """The entry and the checked argument values of ``message``.

    Returns ``None`` for a button release (a trailing press value of 0), which is not an error.

    Raises
    ------
    ValidationError
        ``unknown_address``, ``bad_arg_count``, ``bad_type``, ``out_of_range`` or ``string_too_long``.
    """
    entry = BY_ADDRESS.get(message.address)
    if entry is None:
        raise ValidationError("unknown_address", f"unknown address {message.address[:64]!r}")
    specs = entry.args
    required = [a for a in specs if a.kind != "press"]
    n = len(message.args)
    if not len(required) <= n <= len(specs):
        raise ValidationError("bad_arg_count", f"{entry.address} takes {len(required)}"
                              + (f"..{len(specs)}" if len(specs) != len(required) else "") + f" arguments, got {n}")
    values: list[Any] = []
    for spec, t, value in zip(specs, message.types, message.args):
        if spec.kind == "press":
            if t not in "ihfdTF":
                raise ValidationError("bad_type", f"{entry.address}: {spec.name} must be a number, got {t!r}")
            if t in "fd" and not math.isfinite(value):
                raise ValidationError("out_of_range", f"{entry.address}: {spec.name} is not finite")
            if not value:
                return None
            continue
        if spec.kind == "int":
            if t in "ih":
                v = int(value)
            elif t in "fd" and math.isfinite(value) and float(value).is_integer():
                v = int(value)
            else:
                raise ValidationError("bad_type", f"{entry.address}: {spec.name} must be an int, got {t!r}")
        elif spec.kind == "float":
            if t not in "ihfd":
                raise ValidationError("bad_type", f"{entry.address}: {spec.name} must be a float, got {t!r}")
            v = float(value)
            if not math.isfinite(v):
                raise ValidationError("out_of_range", f"{entry.address}: {spec.name} is not finite")
        else:
            if t != "s":
                raise ValidationError("bad_type", f"{entry.address}: {spec.name} must be a string, got {t!r}")
            if len(value.encode("utf-8")) > MAX_STRING_BYTES:
                raise ValidationError("string_too_long", f"{entry.address}: {spec.name} longer than "
                                      f"{MAX_STRING_BYTES} bytes")
            if not value or any(ord(ch) < 32 for ch in value):
                raise ValidationError("out_of_range", f"{entry.address}: {spec.name} is empty or has control characters")
            v = value
        if spec.low is not None and v < spec.low or spec.high is not None and v > spec.high:
            raise ValidationError("out_of_range", f"{entry.address}: {spec.name}={v!r} outside "
                                  f"{spec.low:g}..{spec.high:g}")
        values.append(v)
    return entry, tuple(values)
