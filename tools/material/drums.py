"""A multi-mic drum recording simulated from a Hydrogen kit's samples and a drum score.

How each mic is derived (all distances in metres, sound at 343 m/s, 48 kHz):

1. **Dry pieces.**  Each kit piece (kick, snare, hats, toms, ride, crash) gets one mono track: its
   hits placed at their times, each the Hydrogen layer its velocity selects, scaled by velocity x
   layer gain x instrument gain x volume (Hydrogen's own rule).  An open hat is choked (30 ms fade)
   by the next closed or pedal hat.  A stereo sample contributes its mid.
2. **Geometry.**  The drummer sits at the origin facing +y; pieces and mics have fixed positions
   (:data:`PIECE_POSITIONS`, :data:`MICS`) in a 5.5 x 6.5 x 2.8 m room.  Hats are on the drummer's
   left, so the overheads are panned from the drummer's side.
3. **Direct sound.**  Every mic hears every piece: delayed by distance / 343 m/s (whole samples,
   7 mm), scaled by ``0.1 m / distance`` (inverse distance law) and by the mic's polar pattern
   toward the piece (cardioid ``0.5 (1 + cos a)``, floored at -20 dB; hypercardioid for the hats and
   snare-top mics), and low-passed off axis (first order, ``2.5 kHz + 17.5 kHz ((1 + cos a) / 2)^2``):
   this is the bleed.  A mic's own piece is on axis and close, so bleed is 15-35 dB down, duller and
   later, as in a real close-miked kit.
4. **Reflections.**  Overheads and rooms add image sources of the six room surfaces (first order
   for the overheads, up to second order for the rooms), each surface reflecting 0.45 - 0.8 of the
   pressure, summed and low-passed at 6 kHz (absorption).
5. **Late reverb.**  A seeded, decorrelated noise tail (RT60 0.75 s, highs decaying faster) of
   the summed kit feeds the room pair (reverberant field ~1.8x the direct+early energy), the
   overheads (0.3x) and, faintly, the close mics (0.02x); the tail is high-passed at 50 Hz.
6. **Mic character.**  Kick In: +4 dB at 4.5 kHz (beater), high-pass 35 Hz.  Kick Out: +4 dB at
   60 Hz (Q 1), low-pass 7 kHz; it sits 0.40 m further from the batter head, so it lags Kick In by
   about 1.2 ms.  Snare Bottom: -6 dB shelf below 200 Hz (less body), +6 dB shelf above 4 kHz (wires)
   and **polarity inverted** (it faces the top mic, as real bottom mics do before the engineer flips them).

The kit's samples are themselves recordings (close or stereo-miked by the kit's authors); the
simulation adds what a multi-mic session has and a sample kit lacks: bleed, inter-mic delays, a
genuinely stereo spaced pair, a room.  It does not recreate cymbal-to-shell resonance or the
snare wires' response to other drums.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import dsp
from .drumkits import Kit, load_sample, pick_layer
from .song import DrumHit, rng_for

SPEED_OF_SOUND_M_S = 343.0
REFERENCE_DISTANCE_M = 0.1
ROOM_M = ((-2.5, 3.0), (-1.5, 5.0), (0.0, 2.8))
#: Pressure reflection per surface: x walls, y walls, floor, ceiling.
WALL_REFLECTION = {"x": 0.6, "y": 0.6, "floor": 0.8, "ceiling": 0.45}

PIECE_POSITIONS = {
    "kick": (0.0, 0.65, 0.35), "snare": (-0.25, 0.40, 0.62), "hats": (-0.52, 0.45, 0.92),
    "tom1": (-0.12, 0.62, 0.82), "tom2": (0.18, 0.62, 0.82), "floor": (0.48, 0.35, 0.55),
    "ride": (0.58, 0.72, 1.05), "crash": (-0.42, 0.82, 1.32),
}
#: Where a mic hears its own piece from, when that differs from the piece's centre.
SOURCE_OVERRIDES = {("kick_in", "kick"): (0.0, 0.45, 0.35), ("kick_out", "kick"): (0.0, 0.85, 0.35),
                    ("snare_bottom", "snare"): (-0.25, 0.40, 0.56)}


@dataclass(frozen=True, slots=True)
class Mic:
    """One microphone: where it is, where it points, what it is for.

    Attributes
    ----------
    label : str
        ``kick_in``, ``overhead_l``, ...
    piece : str or None
        The piece it is placed on (None for overheads and rooms).
    pattern : str
        ``cardioid``, ``hypercardioid`` or ``omni``.
    reflections : int
        Image-source order (0 for close mics).
    tail : float
        Late-reverb energy relative to the mic's direct + early energy.
    """

    label: str
    position: tuple[float, float, float]
    aim: tuple[float, float, float]
    piece: str | None = None
    pattern: str = "cardioid"
    reflections: int = 0
    tail: float = 0.02
    eq: tuple[dsp.Band, ...] = ()
    invert: bool = False


def _aim(mic: tuple[float, float, float], target: tuple[float, float, float]) -> tuple[float, float, float]:
    v = np.subtract(target, mic)
    return tuple(float(x) for x in v / np.linalg.norm(v))


#: A cardioid far from its source has no proximity effect: its response falls below ~40 Hz.
DISTANT_ROLLOFF = (dsp.Band("highpass", 40.0, 0.0, 0.6),)

MICS: dict[str, Mic] = {m.label: m for m in (
    Mic("kick_in", (0.0, 0.55, 0.35), (0.0, -1.0, 0.0), "kick",
        eq=(dsp.Band("highpass", 35.0, 0.0, 0.7), dsp.Band("peak", 4500.0, 4.0, 1.0))),
    Mic("kick_out", (0.0, 1.00, 0.35), (0.0, -1.0, 0.0), "kick",
        eq=(dsp.Band("peak", 60.0, 4.0, 1.0), dsp.Band("lowpass", 7000.0, 0.0, 0.7))),
    Mic("snare_top", (-0.25, 0.56, 0.70), _aim((-0.25, 0.56, 0.70), (-0.25, 0.40, 0.62)), "snare",
        pattern="hypercardioid"),
    Mic("snare_bottom", (-0.25, 0.48, 0.48), _aim((-0.25, 0.48, 0.48), (-0.25, 0.40, 0.56)), "snare",
        eq=(dsp.Band("low_shelf", 200.0, -6.0, 0.7), dsp.Band("high_shelf", 4000.0, 6.0, 0.7)), invert=True),
    Mic("tom1", (-0.12, 0.74, 0.90), _aim((-0.12, 0.74, 0.90), PIECE_POSITIONS["tom1"]), "tom1"),
    Mic("tom2", (0.18, 0.74, 0.90), _aim((0.18, 0.74, 0.90), PIECE_POSITIONS["tom2"]), "tom2"),
    Mic("floor", (0.55, 0.47, 0.66), _aim((0.55, 0.47, 0.66), PIECE_POSITIONS["floor"]), "floor"),
    Mic("hats", (-0.58, 0.50, 1.02), _aim((-0.58, 0.50, 1.02), (-0.52, 0.45, 0.92)), "hats",
        pattern="hypercardioid"),
    Mic("overhead_l", (-0.40, 0.60, 1.75), (0.0, 0.0, -1.0), reflections=1, tail=0.3, eq=DISTANT_ROLLOFF),
    Mic("overhead_r", (0.40, 0.60, 1.75), (0.0, 0.0, -1.0), reflections=1, tail=0.3, eq=DISTANT_ROLLOFF),
    Mic("room_l", (-1.0, 3.3, 1.5), _aim((-1.0, 3.3, 1.5), (0.0, 0.6, 0.8)), reflections=2, tail=1.8,
        eq=DISTANT_ROLLOFF),
    Mic("room_r", (1.0, 3.3, 1.5), _aim((1.0, 3.3, 1.5), (0.0, 0.6, 0.8)), reflections=2, tail=1.8,
        eq=DISTANT_ROLLOFF),
)}

#: Stems a session can ask for, and the mics that make each (stereo pairs are one stem).
MIC_STEMS = {"kick_in": ("kick_in",), "kick_out": ("kick_out",), "snare_top": ("snare_top",),
             "snare_bottom": ("snare_bottom",), "tom1": ("tom1",), "tom2": ("tom2",), "floor_tom": ("floor",),
             "hats": ("hats",), "overheads": ("overhead_l", "overhead_r"), "room": ("room_l", "room_r")}


def _polar(pattern: str, cos_angle: float) -> float:
    if pattern == "omni":
        return 1.0
    if pattern == "hypercardioid":
        g = 0.25 + 0.75 * cos_angle
    else:
        g = 0.5 + 0.5 * cos_angle
    return max(abs(g), 0.1)


def _images(src, order: int):
    """Image sources of a shoebox room up to ``order`` reflections: (position, pressure factor)."""
    out = [(tuple(src), 1.0, 0)]
    if order <= 0:
        return out
    axes = {0: "x", 1: "y", 2: None}
    frontier = [(tuple(src), 1.0, ())]
    for _ in range(order):
        nxt = []
        for pos, gain, walls in frontier:
            for axis in range(3):
                for side in range(2):
                    if walls and walls[-1] == (axis, side):
                        continue
                    bound = ROOM_M[axis][side]
                    p = list(pos)
                    p[axis] = 2 * bound - p[axis]
                    name = axes[axis] or ("floor" if side == 0 else "ceiling")
                    g = gain * WALL_REFLECTION[name]
                    nxt.append((tuple(p), g, walls + ((axis, side),)))
        out += [(p, g, len(w)) for p, g, w in nxt]
        frontier = nxt
    return out


@dataclass(frozen=True)
class DrumRecording:
    """The simulated session: one array per mic stem (mono for close mics, stereo for pairs)."""

    stems: dict[str, np.ndarray]
    dry: dict[str, np.ndarray]
    delays_ms: dict[str, dict[str, float]] = field(default_factory=dict)


def dry_pieces(kit: Kit, hits: tuple[DrumHit, ...], frames: int, fs: int, seed: int) -> dict[str, np.ndarray]:
    """One mono float32 track per piece the score uses (see module docs, step 1)."""
    rng = rng_for(seed, "kit-layers", kit.name)
    tracks: dict[str, np.ndarray] = {}
    by_piece: dict[str, list[DrumHit]] = {}
    for h in hits:
        by_piece.setdefault(h.piece, []).append(h)
    for piece, piece_hits in by_piece.items():
        out = np.zeros(frames, dtype=np.float32)
        piece_hits.sort(key=lambda h: h.time_s)
        used = False
        for k, h in enumerate(piece_hits):
            inst = kit.find(piece, h.articulation)
            if inst is None:
                continue
            layer = pick_layer(inst, h.velocity, rng)
            sample = load_sample(layer.path, fs)
            start = int(round(h.time_s * fs))
            if start >= frames:
                continue
            seg = sample[: frames - start] * np.float32(h.velocity * layer.gain * inst.gain * inst.volume)
            if piece == "hats" and inst.articulation in ("open", "semi"):
                later = [x for x in piece_hits[k + 1:] if x.articulation in ("closed", "pedal")]
                if later:
                    stop = int(round(later[0].time_s * fs)) - start
                    if 0 < stop < len(seg):
                        fade = min(int(0.03 * fs), len(seg) - stop)
                        seg = seg.copy()
                        seg[stop:stop + fade] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
                        seg[stop + fade:] = 0.0
            out[start:start + len(seg)] += seg
            used = True
        if used:
            tracks[piece] = out
    return tracks


def _dull(dry: dict[str, np.ndarray], piece: str, cutoff_hz: float, fs: int, memo: dict) -> np.ndarray:
    """The dry piece through the off-axis low-pass, cutoff rounded to a sixth of an octave (shared by mics)."""
    step = round(6.0 * np.log2(cutoff_hz / 1000.0))
    key = (piece, step)
    if key not in memo:
        memo[key] = dsp.one_pole_lowpass(dry[piece][:, None], 1000.0 * 2.0 ** (step / 6.0), fs)[:, 0]
    return memo[key]


def _mic_signal(mic: Mic, dry: dict[str, np.ndarray], fs: int, memo: dict) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Direct (with bleed) and early-reflection signals of one mic, mono, plus per-piece delays (ms)."""
    frames = len(next(iter(dry.values())))
    direct = np.zeros(frames, dtype=np.float32)
    early = np.zeros(frames, dtype=np.float32)
    aim = np.asarray(mic.aim)
    delays = {}
    for piece, track in dry.items():
        src = SOURCE_OVERRIDES.get((mic.label, piece), PIECE_POSITIONS[piece])
        taps: dict[int, float] = {}
        for k, (pos, reflect, order) in enumerate(_images(src, mic.reflections)):
            vec = np.subtract(pos, mic.position)
            dist = max(float(np.linalg.norm(vec)), 0.02)
            cos_a = float(np.dot(vec / dist, aim))
            gain = reflect * REFERENCE_DISTANCE_M / dist * _polar(mic.pattern, cos_a)
            lag = int(round(dist / SPEED_OF_SOUND_M_S * fs))
            if order == 0:
                delays[piece] = round(1000.0 * dist / SPEED_OF_SOUND_M_S, 3)
                sig = track
                if piece != mic.piece:
                    sig = _dull(dry, piece, 2500.0 + 17500.0 * ((1.0 + cos_a) / 2.0) ** 2, fs, memo)
                direct[lag:] += np.float32(gain) * sig[: frames - lag]
            else:
                taps[lag] = taps.get(lag, 0.0) + gain
        if taps:
            ir = np.zeros(max(taps) + 1, dtype=np.float32)
            for lag, g in taps.items():
                ir[lag] = g
            early += dsp.convolve(track[:, None], ir[:, None])[:, 0]
    if mic.reflections:
        early = dsp.one_pole_lowpass(early[:, None], 6000.0, fs)[:, 0]
    return direct, early, delays


def record(kit: Kit, hits: tuple[DrumHit, ...], length_s: float, stems: tuple[str, ...], seed: int,
           fs: int = 48000, rt60_s: float = 0.75) -> DrumRecording:
    """Simulate the multi-mic recording of a drum score on a kit (module docs, steps 1-6).

    Parameters
    ----------
    stems : tuple of str
        Keys of :data:`MIC_STEMS` (``"overheads"`` and ``"room"`` are stereo pairs).

    Returns
    -------
    DrumRecording
        Raw mic signals at their physical relative levels (the session sets each preamp gain).
    """
    frames = int(round(length_s * fs))
    dry = dry_pieces(kit, hits, frames, fs, seed)
    if not dry:
        raise ValueError(f"kit {kit.name} has none of the pieces the score plays")
    kit_sum = np.sum([t for t in dry.values()], axis=0, dtype=np.float32)[:, None]
    tails: dict[tuple[str, int], np.ndarray] = {}

    def tail(group: str, channel: int) -> np.ndarray:
        # One seeded tail per mic group (rooms, overheads, close mics) and channel: decorrelated.
        if (group, channel) not in tails:
            ir = dsp.reverb_ir(fs, rt60_s, int(rng_for(seed, "room-tail", group).integers(2 ** 31)), channels=2,
                               predelay_ms=18.0, damping=0.55)
            for c in range(2):
                tails[(group, c)] = dsp.convolve(kit_sum, ir[:, [c]])[:, 0]
        return tails[(group, channel)]

    memo: dict = {}
    out: dict[str, np.ndarray] = {}
    delays: dict[str, dict[str, float]] = {}
    for stem in stems:
        channels = []
        for k, label in enumerate(MIC_STEMS[stem]):
            mic = MICS[label]
            if mic.piece and mic.piece not in dry:
                break
            direct, early, delays[label] = _mic_signal(mic, dry, fs, memo)
            sig = direct + early
            energy = float(np.mean(sig.astype(np.float64) ** 2))
            t = tail(stem if stem in ("overheads", "room") else "close", k)
            tail_energy = float(np.mean(t.astype(np.float64) ** 2)) or 1.0
            sig = sig + np.float32(np.sqrt(mic.tail * energy / tail_energy)) * t
            sig = dsp.apply_eq(sig[:, None], mic.eq, fs)
            if mic.invert:
                sig = -sig
            channels.append(sig[:, 0] if sig.ndim == 2 else sig)
        else:
            out[stem] = np.stack(channels, axis=1).astype(np.float32)
    return DrumRecording(out, dry, delays)
