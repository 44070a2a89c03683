"""Every REAPER OSC address the bridge uses, in one table, and pure helpers around it.

Nothing else in the bridge spells a REAPER OSC address: the OSC target formats and parses through
here, and ``tests/test_osc_patterns.py`` checks this table against the shipped pattern file
``reaper_scripts/MixBridge.ReaperOSC`` (same action name, same flag, same pattern).

Facts from REAPER's own surface code (``reaper-plugins/reaper_csurf/csurf_osc.cpp`` in the REAPER
SDK; docs/reaper-osc.md lists each with its evidence):

- ``@`` is REAPER's wildcard; track, FX and parameter numbers in it are **1-based**.  The track
  number is **relative to the current bank**: ``/track/1/...`` is the first track of the bank
  (``tidx = bankstart + N``; 0 would be the master).
- ``FX_PARAM_VALUE`` needs a *float* argument; an int is ignored (int -1 ends a parameter edit).
- ``FX_BYPASS`` is really "enabled": 1.0 = active, 0.0 = bypassed.
- ``TRACK_VOLUME f .../volume/db`` is dB in and dB out; the ``n`` volume is an opaque fader curve.
- ``TRACK_PAN2`` with ``n`` is the width (``v * 2 - 1``); there is no ``TRACK_WIDTH`` action.
- ``MASTER_VOLUME f .../master/volume/db`` is the master fader in dB, both ways: REAPER handles
  ``MASTER_`` keys in the same code as tracks (the shipped ``Default.ReaperOSC`` lists only the
  ``n`` and ``s`` forms, but any flag is accepted for a valid key).
- All feedback numbers are 32-bit floats; REAPER sends each address only when its value changes
  and resends everything after action 41743.  It does not echo the address it is handling, except
  for ``b``/``t`` flags (mute, FX bypass), which it does echo; a dropped echo leaves that address's
  last-sent value cleared, so its next report is sent whatever the value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: Directions: the bridge sends it, REAPER sends it back as feedback, or both.
SEND, FEEDBACK, BOTH = "send", "feedback", "both"

#: "Control surface: Refresh all surfaces": clears REAPER's last-value cache, so it resends all.
ACTION_REFRESH_ALL = 41743


@dataclass(frozen=True, slots=True)
class OscAddress:
    """One REAPER OSC address.

    Parameters
    ----------
    key : str
        The bridge's own name for it.
    action : str
        REAPER's action name (a key of the shipped ``Default.ReaperOSC``).
    flag : str
        REAPER's flag letter: ``n`` normalized float, ``f`` raw float, ``b`` 0/1, ``s`` string,
        ``i`` integer, ``t`` trigger.
    pattern : str
        The pattern with REAPER's ``@`` wildcards, as written in the pattern file.
    meaning : str
        What the value is, with its unit and range.
    direction : str
        ``send``, ``feedback`` or ``both``.
    """

    key: str
    action: str
    flag: str
    pattern: str
    meaning: str
    direction: str

    @property
    def wildcards(self) -> int:
        return self.pattern.count("@")

    def format(self, *numbers: int) -> str:
        """The concrete address: each ``@`` replaced by the next 1-based number."""
        if len(numbers) != self.wildcards:
            raise ValueError(f"{self.pattern} takes {self.wildcards} numbers, got {len(numbers)}")
        parts = self.pattern.split("@")
        out = parts[0]
        for number, tail in zip(numbers, parts[1:]):
            if int(number) < 1:
                raise ValueError(f"{self.pattern}: OSC numbers are 1-based, got {number}")
            out += str(int(number)) + tail
        return out


_TABLE = (
    OscAddress("track_name", "TRACK_NAME", "s", "/track/@/name",
               "track name (REAPER reports an unnamed track as 'Track N')", FEEDBACK),
    OscAddress("track_volume_db", "TRACK_VOLUME", "f", "/track/@/volume/db",
               "track fader in dB, absolute (dB in, dB out)", BOTH),
    OscAddress("track_pan", "TRACK_PAN", "n", "/track/@/pan",
               "pan, 0..1 = (pan + 1) / 2 (0.5 = centre)", BOTH),
    OscAddress("track_width", "TRACK_PAN2", "n", "/track/@/pan2",
               "width in balance/stereo-pan mode, 0..1 = (width + 1) / 2 (1.0 = 100 %)", BOTH),
    OscAddress("track_mute", "TRACK_MUTE", "b", "/track/@/mute", "mute, 1 = muted", BOTH),
    OscAddress("fx_name", "FX_NAME", "s", "/track/@/fx/@/name",
               "FX name as shown in the chain (renamed name if renamed; type prefix stripped)", FEEDBACK),
    OscAddress("fx_enabled", "FX_BYPASS", "b", "/track/@/fx/@/bypass",
               "FX *enabled*: 1 = active, 0 = bypassed (the name says the opposite)", BOTH),
    OscAddress("fx_param", "FX_PARAM_VALUE", "n", "/track/@/fx/@/fxparam/@/value",
               "FX parameter, normalized 0..1; must be sent as a float", BOTH),
    OscAddress("master_volume_db", "MASTER_VOLUME", "f", "/master/volume/db",
               "master fader in dB, absolute (dB in, dB out)", BOTH),
    OscAddress("action", "ACTION", "i", "/action", "run REAPER action by command id", SEND),
    OscAddress("device_track_count", "DEVICE_TRACK_COUNT", "i", "/device/track/count",
               "tracks per bank (feedback covers only the current bank)", SEND),
    OscAddress("device_track_bank", "DEVICE_TRACK_BANK_SELECT", "i", "/device/track/bank/select",
               "select track bank N (1-based): /track/1 becomes track (N-1)*count+1", SEND),
)

#: key -> address; the one table.
ADDRESSES: dict[str, OscAddress] = {a.key: a for a in _TABLE}


def address(key: str, *numbers: int) -> str:
    """Concrete address for ``key`` (see :data:`ADDRESSES`), e.g. ``address("fx_param", 3, 1, 2)``."""
    return ADDRESSES[key].format(*numbers)


def bank_of(track_number: int, bank_size: int) -> tuple[int, int]:
    """(1-based bank, 1-based bank-relative track) of an absolute 1-based track number."""
    if track_number < 1 or bank_size < 1:
        raise ValueError("track numbers and bank sizes start at 1")
    bank = (track_number - 1) // bank_size + 1
    return bank, track_number - (bank - 1) * bank_size


def absolute_track(bank: int, relative: int, bank_size: int) -> int:
    """Absolute 1-based track number of bank-relative ``relative`` in 1-based ``bank``."""
    return (bank - 1) * bank_size + relative


@dataclass(frozen=True, slots=True)
class Feedback:
    """A parsed feedback address: which table entry, and its 1-based numbers (track is bank-relative)."""

    key: str
    track: int | None = None
    fx: int | None = None
    param: int | None = None


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace("@", "([1-9][0-9]*)") + "$")


_FEEDBACK_RES = tuple((a.key, _compile(a.pattern)) for a in _TABLE if a.direction in (FEEDBACK, BOTH))


def parse_feedback(addr: str) -> Feedback | None:
    """Which feedback address this is, or None for anything the bridge does not use."""
    for key, regex in _FEEDBACK_RES:
        match = regex.match(addr)
        if match:
            numbers = [int(g) for g in match.groups()]
            return Feedback(key, *numbers) if numbers else Feedback(key)
    return None
