"""One plan track as REAPER would play it: its AI FX chain, fader, volume envelope, width and pan.  Pure.

:func:`track_settings` reads a track of the plan JSON document (schema 1 or 2; unknown fields are
ignored and listed) the way the reapy target reads it (``ReaperTarget.desired``: one value per
parameter, the last one wins), and :class:`TrackChain` applies it to ``(frames, channels)`` blocks.

Order, as a first pass of the reapy target builds it on a track (docs/render.md):

1. track polarity (``B_PHASE``, both channels; it commutes with everything below);
2. the AI FX, appended after the producer's own FX in the order the target first touches them
   (its writes are sorted band types first, then by key: "AI EQ" when the plan sets a band type,
   then "AI Comp", then "AI Polarity", the channel-polarity JSFX);
3. the fader (``D_VOL``, relative dB) times the post-FX volume envelope;
4. width (``D_WIDTH``, mid/side: ``L' = M + w*S``, ``R' = M - w*S``) then pan (``D_PAN``, balance).

Stems are bounced post-fader and post-pan with the pre-AI values, so a fader move is a gain on the
stem; pan and width are applied as if the stem had been bounced at centre and 100 % width (REAPER's
defaults; the plan does not carry the pre-AI values).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..daw import mapping
from .dynamics import CompSettings, StreamingCompressor, reaper_comp
from .envelope import VolumeEnvelope
from .eq import EqBand, StreamingEq, band_kind, reaper_band

#: ReaEQ's default band types, 1-based (reaper.md 3.2); band 5 (high pass) is disabled until a type is set.
DEFAULT_BAND_KINDS = {1: "lowshelf", 2: "peak", 3: "peak", 4: "highshelf"}
#: Bands a default ReaEQ instance has (the targets address no others).
MAX_BANDS = len(mapping.REAEQ_BANDS)
#: Q for a band the plan gives a type and frequency but no Q.
DEFAULT_Q = 0.71
FX_NAMES = {"eq": mapping.AI_EQ_NAME, "comp": mapping.AI_COMP_NAME, "polarity": mapping.AI_POLARITY_NAME}
_BAND_KEY = re.compile(r"band(\d+)_(type|freq_hz|gain_db|q)$")
_COMP_PARAMS = ("threshold_db", "ratio", "attack_ms", "release_ms", "makeup_db")


@dataclass(frozen=True, slots=True)
class TrackSettings:
    """What REAPER would hold for one track after the plan is applied (relative to the bounce).

    Attributes
    ----------
    name : str
        The plan track's name.
    gain_db : float
        Fader move.
    pan : float
        -1..1 (balance).
    width : float
        -1..1; 1 = unchanged.
    invert : bool
        Track polarity (both channels).
    invert_left, invert_right : bool
        The channel-polarity JSFX.
    eq : tuple of EqBand
    comp : CompSettings or None
    envelope_db : tuple of (time_s, value_db)
    fx_order : tuple of str
        ``"eq"``, ``"comp"``, ``"polarity"`` in chain order (only those present).
    ignored : tuple of str
        Plan entries the renderer does not model (unknown parameters, bands a ReaEQ does not have).
    manual : bool
        The track is the producer's: nothing is applied.
    """

    name: str
    gain_db: float = 0.0
    pan: float = 0.0
    width: float = 1.0
    invert: bool = False
    invert_left: bool = False
    invert_right: bool = False
    eq: tuple[EqBand, ...] = ()
    comp: CompSettings | None = None
    envelope_db: tuple[tuple[float, float], ...] = ()
    fx_order: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())
    manual: bool = False

    @property
    def is_identity(self) -> bool:
        """True when playing the track changes nothing (the stem can be copied as it is)."""
        return (self.gain_db == 0.0 and self.pan == 0.0 and self.width == 1.0 and not self.invert
                and not self.invert_left and not self.invert_right and not self.eq and self.comp is None
                and not any(v != 0.0 for _, v in self.envelope_db))

    def describe(self) -> list[str]:
        """What is applied, one short phrase each (for the CLI and the report)."""
        out = []
        if self.invert:
            out.append("polarity flipped")
        for fx in self.fx_order:
            if fx == "eq":
                out.append("EQ " + ", ".join(
                    f"{b.kind} {b.freq_hz:.0f} Hz" + ("" if b.kind in ("highpass", "lowpass", "notch", "bandpass")
                                                     else f" {b.gain_db:+.1f} dB") for b in self.eq))
            elif fx == "comp" and self.comp is not None:
                c = self.comp
                out.append(f"comp {c.threshold_db:.1f} dB {c.ratio:g}:1 {c.attack_ms:g}/{c.release_ms:g} ms"
                           + (f" make-up {c.makeup_db:+.1f} dB" if c.makeup_db else ""))
            elif fx == "polarity":
                out.append("polarity " + "+".join(ch for ch, on in (("left", self.invert_left),
                                                                    ("right", self.invert_right)) if on))
        if self.gain_db:
            out.append(f"fader {self.gain_db:+.1f} dB")
        if self.envelope_db:
            out.append(f"volume envelope ({len(self.envelope_db)} points)")
        if self.width != 1.0:
            out.append(f"width {self.width:.2f}")
        if self.pan:
            out.append(f"pan {self.pan:+.2f}")
        return out


def _write_order(key: str) -> tuple[int, str]:
    # The reapy target's order (ReaperTarget._write_track sorts by band types first, then key):
    # it decides which AI FX is added to the chain first.
    return (0 if key.endswith("_type") else 1, key)


def desired(track_plan: Mapping[str, Any]) -> dict[str, Any]:
    """Plan changes of one track -> ``{key: value}``, keyed as the targets key them; the last wins."""
    out: dict[str, Any] = {}
    for c in track_plan.get("changes", []) or []:
        if not isinstance(c, Mapping) or "target" not in c or "param" not in c:
            continue
        if c["target"] == "track" and c["param"] == "polarity":
            channel = c.get("channel", "both") or "both"
            out["track.polarity" if channel == "both" else f"polarity.{channel}"] = c.get("value")
        else:
            out[f"{c['target']}.{c['param']}"] = c.get("value")
    return out


def _number(value: Any, what: str, ignored: list[str]) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        ignored.append(f"{what}: not a number ({value!r})")
        return None
    if not math.isfinite(number):
        ignored.append(f"{what}: not finite ({value!r})")
        return None
    return number


def track_settings(track_plan: Mapping[str, Any]) -> TrackSettings:
    """Read one track of the plan JSON document into :class:`TrackSettings`.

    ``status == "manual"`` gets nothing.  Volume automation is every ``automation[]`` entry whose
    ``param`` is ``volume_db`` (all their points on the one volume envelope, as the targets write
    them).  Unknown parameters and entries are listed in ``ignored``, never raised.
    """
    name = str(track_plan.get("name", ""))
    if track_plan.get("status") == "manual":
        return TrackSettings(name, manual=True)
    wanted = desired(track_plan)
    ignored: list[str] = []
    values: dict[str, Any] = {}
    bands: dict[int, dict[str, Any]] = {}
    comp: dict[str, float] = {}
    for key, value in wanted.items():
        target, _, param = key.partition(".")
        if target == "track" and param in ("volume_db", "pan", "width"):
            number = _number(value, key, ignored)
            if number is not None:
                values[param] = number
        elif target == "track" and param == "polarity" or target == "polarity" and param in ("left", "right"):
            flag = _number(value, key, ignored)  # 1 = inverted, 0 = normal (the targets write 0/1)
            values[key] = bool(flag)
        elif target == "eq" and (m := _BAND_KEY.match(param)):
            bands.setdefault(int(m.group(1)), {})[m.group(2)] = value
        elif target == "comp" and param in _COMP_PARAMS:
            number = _number(value, key, ignored)
            if number is not None:
                comp[param] = number
        else:
            ignored.append(f"{key}: not modelled")

    eq: list[EqBand] = []
    for number in sorted(bands):
        params = bands[number]
        if not 1 <= number <= MAX_BANDS:
            ignored.append(f"eq.band{number}: a ReaEQ has bands 1-{MAX_BANDS}")
            continue
        kind_name = params.get("type") or DEFAULT_BAND_KINDS.get(number)
        kind = band_kind(kind_name) if kind_name else None
        if kind is None:
            ignored.append(f"eq.band{number}: " + (f"band type {kind_name!r} not modelled" if kind_name
                                                  else "no band type (ReaEQ's band 5 stays disabled)"))
            continue
        freq = _number(params.get("freq_hz"), f"eq.band{number}_freq_hz", ignored) if "freq_hz" in params else None
        if freq is None:
            ignored.append(f"eq.band{number}: no frequency")
            continue
        gain = _number(params.get("gain_db", 0.0), f"eq.band{number}_gain_db", ignored) or 0.0
        q = _number(params.get("q", DEFAULT_Q), f"eq.band{number}_q", ignored) or DEFAULT_Q
        eq.append(reaper_band(kind, freq, gain, q))

    points: list[tuple[float, float]] = []
    for entry in track_plan.get("automation", []) or []:
        if not isinstance(entry, Mapping):
            continue
        if entry.get("param", "volume_db") != "volume_db":
            ignored.append(f"automation {entry.get('param')!r}: not modelled")
            continue
        for p in entry.get("points", []) or []:
            try:
                t, v = float(p[0]), float(p[1])
            except (TypeError, ValueError, IndexError):
                ignored.append(f"automation point {p!r}: not (time_s, value_db)")
                continue
            if math.isfinite(t) and math.isfinite(v):
                points.append((t, v))

    order: list[str] = []
    for key in sorted(wanted, key=_write_order):
        target = key.partition(".")[0]
        present = {"eq": bool(eq), "comp": bool(comp),
                   "polarity": bool(values.get("polarity.left") or values.get("polarity.right"))}
        if target in FX_NAMES and present[target] and target not in order:
            order.append(target)
    return TrackSettings(
        name=name,
        gain_db=values.get("volume_db", 0.0),
        pan=min(1.0, max(-1.0, values.get("pan", 0.0))),
        width=min(1.0, max(-1.0, values.get("width", 1.0))),
        invert=bool(values.get("track.polarity", False)),
        invert_left=bool(values.get("polarity.left", False)),
        invert_right=bool(values.get("polarity.right", False)),
        eq=tuple(eq),
        comp=reaper_comp(**comp) if comp else None,
        envelope_db=tuple(points),
        fx_order=tuple(order),
        ignored=tuple(ignored),
    )


class TrackChain:
    """A plan track applied to a stream of blocks, with its state carried between blocks.

    Parameters
    ----------
    track : dict or TrackSettings
        One entry of the plan document's ``tracks`` (or its parsed settings).
    sample_rate : int
        Hz.
    channels : int
        1 or 2 (fold other layouts to stereo first, as :func:`bridge.pipeline.to_stereo` does).
        A mono stem plays on both sides of REAPER's stereo track at unity.
    envelope_scaling : {"fader", "amplitude"}
        The volume envelope's scaling mode (see :mod:`bridge.render.envelope`).

    Notes
    -----
    The chain has no latency: :meth:`finish` returns no frames.  Output is always stereo float64.
    """

    def __init__(self, track: Mapping[str, Any] | TrackSettings, sample_rate: int, channels: int,
                 envelope_scaling: str = "fader"):
        if channels not in (1, 2):
            raise ValueError(f"a track chain takes 1 or 2 channels, not {channels} (fold to stereo first)")
        self.settings = track if isinstance(track, TrackSettings) else track_settings(track)
        self.sample_rate = sample_rate
        self.channels = channels
        s = self.settings
        self._eq = StreamingEq(s.eq, sample_rate, 2) if s.eq and not s.manual else None
        self._comp = StreamingCompressor(s.comp, sample_rate, 2) if s.comp is not None and not s.manual else None
        self._envelope = VolumeEnvelope(s.envelope_db if not s.manual else (), sample_rate, envelope_scaling)
        self._fader = 10.0 ** (s.gain_db / 20.0)
        self._position = 0
        self._finished = False

    @property
    def position(self) -> int:
        """Frames processed so far."""
        return self._position

    @property
    def max_gain_reduction_db(self) -> float:
        return self._comp.max_gain_reduction_db if self._comp is not None else 0.0

    def process(self, block: np.ndarray) -> np.ndarray:
        """Play one block, shape ``(frames, channels)``, through the track; returns ``(frames, 2)`` float64."""
        if self._finished:
            raise RuntimeError("process() after finish()")
        x = np.asarray(block, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"expected (frames, {self.channels}), got {x.shape}")
        x = np.repeat(x, 2, axis=1) if self.channels == 1 else x.copy()
        s = self.settings
        n = len(x)
        if s.manual or n == 0:
            self._position += n
            return x
        if s.invert:
            np.negative(x, out=x)
        for fx in s.fx_order:
            if fx == "eq" and self._eq is not None:
                x = self._eq.process(x)
            elif fx == "comp" and self._comp is not None:
                x = self._comp.process(x)
            elif fx == "polarity":
                if s.invert_left:
                    np.negative(x[:, 0], out=x[:, 0])
                if s.invert_right:
                    np.negative(x[:, 1], out=x[:, 1])
        if self._envelope:
            x *= (self._fader * self._envelope.gain(self._position, n))[:, None]
        elif self._fader != 1.0:
            x *= self._fader
        if s.width != 1.0:
            mid = 0.5 * (x[:, 0] + x[:, 1])
            side = 0.5 * s.width * (x[:, 0] - x[:, 1])
            x = np.stack([mid + side, mid - side], axis=1)
        if s.pan > 0.0:
            x[:, 0] *= 1.0 - s.pan
        elif s.pan < 0.0:
            x[:, 1] *= 1.0 + s.pan
        self._position += n
        return x

    def finish(self) -> np.ndarray:
        """End of the stream: the frames still held back (none; the chain has no latency)."""
        self._finished = True
        return np.zeros((0, 2))
