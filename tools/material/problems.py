"""The planted-problem catalogue: what each fault does to a clean stem, and what a good engineer would do.

Every problem is applied to the clean twin's stems (as written, 24-bit) and returns a
:class:`PlantedProblem` with its ground truth: the moves that fix it (``fix``), the moves a good
engineer would *not* make (``avoid``), and what was measured before and after planting.  Move
records use one small vocabulary (``type`` is fader, volume_automation, eq, highpass, polarity,
pan, compressor, rerender or role), stem names are the names in the session.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from scipy.fft import next_fast_len

from . import dsp

#: (stem id, in order of preference) each problem may land on.
ELIGIBLE: dict[str, tuple[str, ...]] = {
    "level_hot": ("keys", "guitar", "pad", "arp", "bvs", "brass", "bass"),
    "level_quiet": ("keys", "guitar", "bass", "bvs", "snare_top", "pad", "arp"),
    "lead_chorus_dip": ("lead",),
    "masking_boost": ("keys", "guitar"),
    "kick_bass_buildup": ("bass",),
    "pad_rumble": ("pad",),
    "inverted_channel": ("pad", "keys", "guitar", "arp", "bvs", "brass"),
    "dc_offset": ("guitar", "keys", "bvs", "pad", "arp", "bass"),
    "clipped": ("bass", "keys", "guitar", "snare_top"),
    "clipped_full_scale": ("keys", "guitar", "bass", "pad"),
    "over_dynamic_lead": ("lead",),
    "hard_pan": ("bass", "lead"),
    "bad_names": ("*",),
}
KINDS = tuple(ELIGIBLE)
#: Problems that change a stem's signal (``bad_names`` only renames files).
SIGNAL_KINDS = tuple(k for k in KINDS if k != "bad_names")
#: Headroom every planted stem keeps below full scale (except ``clipped``), dBFS.
PEAK_CEILING_DBFS = -0.3


@dataclass(slots=True)
class StemState:
    """A stem being prepared: its id, file name, audio ``(frames, channels)`` float32."""

    id: str
    name: str
    audio: np.ndarray
    role: str
    label: str
    changed: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlantedProblem:
    """One planted fault and its ground truth (see module docs)."""

    kind: str
    stems: tuple[str, ...]
    description: str
    params: dict
    measured: dict
    fix: tuple[dict, ...]
    avoid: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        return {"kind": self.kind, "stems": list(self.stems), "description": self.description, "params": self.params,
                "measured": self.measured, "fix": list(self.fix), "avoid": list(self.avoid)}


@dataclass(frozen=True)
class Context:
    """What problems may read: the session's sections (name, kind, start_s, end_s) and rate."""

    sections: tuple
    sample_rate: int
    lead_notes: tuple = ()


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(float(x), nd)


def _lufs(audio: np.ndarray, fs: int) -> float | None:
    return _r(dsp.integrated_lufs(audio, fs))


def _peak_dbfs(audio: np.ndarray) -> float:
    return round(dsp.db(float(np.abs(audio).max())), 2)


def _lra(audio: np.ndarray, fs: int) -> float | None:
    return _r(dsp.loudness_range_lu(audio, fs))


def _correlation(audio: np.ndarray) -> float | None:
    if audio.shape[1] < 2:
        return None
    l, r = audio[:, 0].astype(np.float64), audio[:, 1].astype(np.float64)
    den = np.sqrt((l * l).sum() * (r * r).sum())
    return _r((l * r).sum() / den, 3) if den > 0 else None


def _band_share_db(audio: np.ndarray, fs: int, low_hz: float | None, high_hz: float) -> float | None:
    """Energy in [low_hz, high_hz) relative to the whole stem's energy, dB (FFT of the mono sum)."""
    mono = audio.mean(axis=1).astype(np.float64)
    n = next_fast_len(len(mono))
    spec = np.abs(np.fft.rfft(mono, n)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    sel = (freqs < high_hz) & (freqs >= (low_hz or 0.0))
    total = spec.sum()
    return _r(10 * np.log10(spec[sel].sum() / total)) if total > 0 and spec[sel].sum() > 0 else None


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` samples (cumulative sums: linear time), same length."""
    width = max(int(width), 1)
    csum = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    half = width // 2
    lo = np.clip(np.arange(len(x)) - half, 0, len(x))
    hi = np.clip(np.arange(len(x)) - half + width, 0, len(x))
    return (csum[hi] - csum[lo]) / width


def _fits(audio: np.ndarray, gain_db: float) -> bool:
    return _peak_dbfs(audio) + gain_db <= PEAK_CEILING_DBFS


def _ceiling(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """Keep a stem under :data:`PEAK_CEILING_DBFS`; returns the audio and the trim applied (dB, <= 0)."""
    peak = _peak_dbfs(audio)
    if peak <= PEAK_CEILING_DBFS:
        return audio, 0.0
    trim = PEAK_CEILING_DBFS - peak
    return (audio * np.float32(dsp.undb(trim))).astype(np.float32), round(trim, 2)


# ------------------------------------------------------------------------------------ the catalogue


def level(stems, target: StemState, ctx: Context, rng, amount_db: float | None, hot: bool) -> PlantedProblem:
    amount = amount_db if amount_db is not None else float(np.round(rng.uniform(8.0, 10.0) * 2) / 2)
    gain = abs(amount) if hot else -abs(amount)
    before = _lufs(target.audio, ctx.sample_rate)
    target.audio = (target.audio * np.float32(dsp.undb(gain))).astype(np.float32)
    target.audio, trim = _ceiling(target.audio)
    after = _lufs(target.audio, ctx.sample_rate)
    kind = "level_hot" if hot else "level_quiet"
    return PlantedProblem(
        kind, (target.name,), f"{target.name} is {abs(gain + trim):.1f} dB too {'loud' if hot else 'quiet'}",
        {"gain_db": round(gain + trim, 2)}, {"integrated_lufs_before": before, "integrated_lufs_after": after},
        ({"type": "fader", "stem": target.name, "gain_db": round(-(gain + trim), 2), "tolerance_db": 3.0},))


def lead_chorus_dip(stems, target: StemState, ctx: Context, rng, amount_db: float | None) -> PlantedProblem:
    amount = abs(amount_db) if amount_db is not None else 8.0
    fs = ctx.sample_rate
    gain = np.ones(len(target.audio), dtype=np.float32)
    ramp = int(0.05 * fs)
    choruses = [s for s in ctx.sections if s.kind == "chorus"]
    low = dsp.undb(-amount)
    for s in choruses:
        a, b = int(round(s.start_s * fs)), min(int(round(s.end_s * fs)), len(gain))
        gain[a:b] = low
        gain[max(a - ramp, 0):a] = np.linspace(1.0, low, a - max(a - ramp, 0))
        gain[b:b + ramp] = np.linspace(low, 1.0, len(gain[b:b + ramp]))
    before = {s.name: _r(dsp.window_lufs(target.audio, fs, s.start_s, s.end_s)) for s in ctx.sections}
    target.audio = (target.audio * gain[:, None]).astype(np.float32)
    after = {s.name: _r(dsp.window_lufs(target.audio, fs, s.start_s, s.end_s)) for s in ctx.sections}
    names = [s.name for s in choruses]
    others = [s.name for s in ctx.sections if s.kind != "chorus" and after.get(s.name) is not None]
    return PlantedProblem(
        "lead_chorus_dip", (target.name,), f"{target.name} drops {amount:.0f} dB in both choruses",
        {"gain_db": -amount, "sections": names, "ramp_ms": 50},
        {"section_lufs_before": before, "section_lufs_after": after},
        ({"type": "volume_automation", "stem": target.name, "sections": names, "gain_db": amount, "tolerance_db": 2.0},),
        ({"type": "volume_automation", "stem": target.name, "sections": others,
          "reason": "the verses and bridge are at the right level; only the choruses dipped"},))


MASK_FREQ_HZ, MASK_Q = 2000.0, 0.9


def masking_boost(stems, target: StemState, ctx: Context, rng, amount_db: float | None) -> PlantedProblem:
    amount = abs(amount_db) if amount_db is not None else 9.0
    lead = stems.get("lead")
    before_lufs = _lufs(target.audio, ctx.sample_rate)
    before_band = _band_share_db(target.audio, ctx.sample_rate, 1000.0, 3000.0)
    target.audio = dsp.apply_eq(target.audio, [dsp.Band("peak", MASK_FREQ_HZ, amount, MASK_Q)], ctx.sample_rate)
    target.audio, trim = _ceiling(target.audio)
    lead_name = lead.name if lead else "the lead"
    return PlantedProblem(
        "masking_boost", (target.name,),
        f"{target.name} boosted {amount:.0f} dB at 2 kHz, over {lead_name}'s 1-3 kHz presence",
        {"band": "peak", "freq_hz": MASK_FREQ_HZ, "gain_db": amount, "q": MASK_Q, "trim_db": trim,
         "masked_stem": lead_name, "range_hz": [1000.0, 3000.0]},
        {"integrated_lufs_before": before_lufs, "integrated_lufs_after": _lufs(target.audio, ctx.sample_rate),
         "share_1k_3k_db_before": before_band, "share_1k_3k_db_after": _band_share_db(target.audio, ctx.sample_rate, 1000.0, 3000.0)},
        ({"type": "eq", "stem": target.name, "band": "peak", "freq_hz": MASK_FREQ_HZ, "gain_db": -amount, "q": MASK_Q,
          "freq_range_hz": [1000.0, 3000.0]},),
        ({"type": "eq", "stem": lead_name, "reason": "the lead is the higher-priority part; cut the part that masks it"},))


def kick_bass_buildup(stems, target: StemState, ctx: Context, rng, amount_db: float | None) -> PlantedProblem:
    amount = abs(amount_db) if amount_db is not None else 8.0
    fs = ctx.sample_rate
    kicks = [s for k, s in stems.items() if k in ("kick_in", "kick_out")]
    touched, measured, fixes = [], {}, []
    plan = [(target, 80.0, amount)] + [(k, 65.0, amount - 2.0) for k in kicks]
    for stem, freq, gain in plan:
        measured[stem.name] = {"share_60_100_db_before": _band_share_db(stem.audio, fs, 60.0, 100.0),
                               "integrated_lufs_before": _lufs(stem.audio, fs)}
        stem.audio = dsp.apply_eq(stem.audio, [dsp.Band("peak", freq, gain, 1.2)], fs)
        stem.audio, trim = _ceiling(stem.audio)
        measured[stem.name].update({"share_60_100_db_after": _band_share_db(stem.audio, fs, 60.0, 100.0),
                                    "integrated_lufs_after": _lufs(stem.audio, fs), "trim_db": trim})
        touched.append(stem)
        fixes.append({"type": "eq", "stem": stem.name, "band": "peak", "freq_hz": freq, "gain_db": -gain, "q": 1.2,
                      "freq_range_hz": [60.0, 100.0]})
    return PlantedProblem(
        "kick_bass_buildup", tuple(s.name for s in touched),
        "bass (+%.0f dB at 80 Hz) and kick (+%.0f dB at 65 Hz) pile up at 60-100 Hz" % (amount, amount - 2),
        {"bass": {"freq_hz": 80.0, "gain_db": amount, "q": 1.2}, "kick": {"freq_hz": 65.0, "gain_db": amount - 2, "q": 1.2},
         "overlap_band_hz": [60.0, 100.0]},
        measured, tuple(fixes),
        ({"type": "eq", "freq_range_hz": [20.0, 50.0], "reason": "the build-up is at 60-100 Hz, not below 50 Hz"},))


def pad_rumble(stems, target: StemState, ctx: Context, rng, amount_db: float | None, lowest_note_hz: float | None = None) -> PlantedProblem:
    """Low-frequency rumble (stand/HVAC-like: noise 15-40 Hz plus a 24 Hz component) under a pad."""
    level_db = amount_db if amount_db is not None else -8.0  # rumble energy relative to the pad's
    fs = ctx.sample_rate
    n = len(target.audio)
    from scipy import signal
    noise = rng.standard_normal(n)
    rumble = signal.sosfilt(signal.butter(4, [15.0, 40.0], "bandpass", fs=fs, output="sos"), noise)
    rumble += 0.7 * np.sqrt(2) * np.std(rumble) * np.sin(2 * np.pi * 24.0 * np.arange(n) / fs + rng.uniform(0, 6.28))
    rumble = signal.sosfilt(signal.butter(4, 45.0, "low", fs=fs, output="sos"), rumble)
    pad_rms = float(np.sqrt(np.mean(target.audio.astype(np.float64) ** 2)))
    rumble *= pad_rms * dsp.undb(level_db) / max(float(np.std(rumble)), 1e-12)
    before = _band_share_db(target.audio, fs, None, 40.0)
    stereo = np.repeat(rumble[:, None], target.audio.shape[1], axis=1).astype(np.float32)
    target.audio = (target.audio + stereo).astype(np.float32)
    target.audio, trim = _ceiling(target.audio)
    lowest = lowest_note_hz or 130.8
    corner_high = round(lowest * 0.85, 1)
    return PlantedProblem(
        "pad_rumble", (target.name,), f"rumble below 40 Hz under {target.name} (lowest note {lowest:.0f} Hz)",
        {"rumble_band_hz": [15.0, 40.0], "tone_hz": 24.0, "level_db": level_db, "lowest_note_hz": round(lowest, 1)},
        {"share_below_40_db_before": before, "share_below_40_db_after": _band_share_db(target.audio, fs, None, 40.0),
         "integrated_lufs_after": _lufs(target.audio, fs)},
        ({"type": "highpass", "stem": target.name, "corner_hz": round(min(max(lowest * 0.6, 50.0), corner_high), 1),
          "corner_range_hz": [45.0, corner_high]},),
        ({"type": "highpass", "stem": target.name, "corner_range_hz": [0.0, 40.0],
          "reason": "a corner at or under 40 Hz leaves the rumble"},
         {"type": "highpass", "stem": target.name, "corner_range_hz": [corner_high, 20000.0],
          "reason": f"a corner at or over {corner_high:.0f} Hz thins the pad's lowest note ({lowest:.0f} Hz)"}))


def inverted_channel(stems, target: StemState, ctx: Context, rng, amount_db: float | None) -> PlantedProblem:
    before = _correlation(target.audio)
    target.audio = (target.audio * np.array([1.0, -1.0], dtype=np.float32)).astype(np.float32)
    after = _correlation(target.audio)
    return PlantedProblem(
        "inverted_channel", (target.name,), f"{target.name}'s right channel is polarity-inverted",
        {"channel": "right"}, {"correlation_before": before, "correlation_after": after},
        ({"type": "polarity", "stem": target.name, "channel": "right"},),
        ({"type": "width", "stem": target.name, "reason": "narrowing hides an inverted channel instead of fixing it"},))


def dc_offset(stems, target: StemState, ctx: Context, rng, amount_db: float | None) -> PlantedProblem:
    offset_dbfs = amount_db if amount_db is not None else -30.0
    offset = dsp.undb(offset_dbfs)
    target.audio = (target.audio + np.float32(offset)).astype(np.float32)
    target.audio, trim = _ceiling(target.audio)
    return PlantedProblem(
        "dc_offset", (target.name,), f"{target.name} carries a DC offset of {offset_dbfs:.0f} dBFS",
        {"offset": round(offset, 5), "offset_dbfs": offset_dbfs},
        {"mean_per_channel": [round(float(m), 5) for m in target.audio.mean(axis=0)]},
        ({"type": "highpass", "stem": target.name, "corner_hz": 20.0, "reason": "remove the DC offset"},))


def _clip(audio: np.ndarray, drive_db: float, ceiling: float) -> tuple[np.ndarray, float]:
    """Scale so the peaks land ``drive_db`` over ``ceiling`` and clamp there; returns audio and the gain."""
    gain = ceiling * dsp.undb(drive_db) / max(float(np.abs(audio).max()), 1e-12)
    return np.clip(audio * np.float32(gain), -ceiling, ceiling).astype(np.float32), gain


#: 24-bit full scale: the largest value soundfile writes without wrapping is (2^23 - 1) / 2^23.
FULL_SCALE_24 = float(np.float32((2 ** 23 - 1) / 2 ** 23))


def clipped(stems, target: StemState, ctx: Context, rng, amount_db: float | None) -> PlantedProblem:
    """Clipped in a plug-in and turned down afterwards: flat tops ``drive`` dB into the clip, same loudness.

    The stem keeps its place in the balance, so the only fault is the clipping itself; its flat runs
    sit at the stem's own (lower) peak rather than at full scale.
    """
    drive = abs(amount_db) if amount_db is not None else 6.0
    fs = ctx.sample_rate
    before = _lufs(target.audio, fs)
    clipped_audio, _ = _clip(target.audio, drive, 1.0)
    after = dsp.integrated_lufs(clipped_audio, fs)
    back = dsp.undb(before - after) if before is not None and after is not None else 1.0
    # Snap the ceiling to a 24-bit code so every clipped sample is one identical value in the file.
    level = np.round(float(back) * 2 ** 23) / 2 ** 23
    target.audio = (np.clip(clipped_audio, -1.0, 1.0) * np.float32(level)).astype(np.float32)
    at_ceiling = int((np.abs(target.audio) >= np.float32(level) * np.float32(0.99999)).sum())
    return PlantedProblem(
        "clipped", (target.name,), f"{target.name} was clipped {drive:.0f} dB into a plug-in ceiling and turned down",
        {"drive_db": drive, "ceiling_dbfs": round(dsp.db(level), 2)},
        {"samples_at_ceiling": at_ceiling, "integrated_lufs_before": before,
         "integrated_lufs_after": _lufs(target.audio, fs), "peak_dbfs_after": _peak_dbfs(target.audio)},
        ({"type": "rerender", "stem": target.name, "reason": "clipped before the bounce; no mix move restores the peaks"},),
        ({"type": "fader", "stem": target.name, "reason": "its level is right; only the clipping is wrong"},))


def clipped_full_scale(stems, target: StemState, ctx: Context, rng, amount_db: float | None) -> PlantedProblem:
    """A bounce driven into 0 dBFS: peaks ``drive`` dB over full scale clamp at the 24-bit ceiling; it is louder too."""
    drive = abs(amount_db) if amount_db is not None else 3.0
    fs = ctx.sample_rate
    before = _lufs(target.audio, fs)
    target.audio, gain = _clip(target.audio, drive, FULL_SCALE_24)
    after = _lufs(target.audio, fs)
    change = None if before is None or after is None else round(after - before, 2)
    return PlantedProblem(
        "clipped_full_scale", (target.name,), f"{target.name} was bounced {drive:.0f} dB into full scale",
        {"drive_db": drive, "ceiling": FULL_SCALE_24, "gain_db": round(dsp.db(gain), 2)},
        {"samples_at_ceiling": int((np.abs(target.audio) >= FULL_SCALE_24).sum()), "integrated_lufs_before": before,
         "integrated_lufs_after": after, "level_change_db": change},
        ({"type": "rerender", "stem": target.name, "reason": "clipped at the source; a fader cannot restore the peaks"},
         {"type": "fader", "stem": target.name, "gain_db": None if change is None else -change, "tolerance_db": 3.0,
          "reason": "until it is re-rendered, back to its place in the balance"}))


def over_dynamic_lead(stems, target: StemState, ctx: Context, rng, amount_db: float | None) -> PlantedProblem:
    """Phrase-to-phrase level swings (+/- ``amount`` dB) and within-phrase expansion, as an uneven take."""
    spread = abs(amount_db) if amount_db is not None else 6.0
    fs = ctx.sample_rate
    before_lra = _lra(target.audio, fs)
    before = _lufs(target.audio, fs)
    notes = sorted(ctx.lead_notes, key=lambda n: n.start_s)
    phrases, current = [], []
    for n in notes:
        if current and n.start_s - (current[-1].start_s + current[-1].length_s) > 0.35:
            phrases.append(current)
            current = []
        current.append(n)
    if current:
        phrases.append(current)
    gain_db = np.zeros(len(target.audio))
    offsets = []
    for k, ph in enumerate(phrases):
        g = (spread if k % 2 == 0 else -spread) * float(rng.uniform(0.6, 1.0))
        a = int(ph[0].start_s * fs)
        b = min(int((ph[-1].start_s + ph[-1].length_s + 0.3) * fs), len(gain_db))
        gain_db[a:b] = g
        offsets.append(round(g, 2))
    gain_db = _moving_average(gain_db, int(0.03 * fs))
    # Expansion inside phrases: louder notes louder still (1:1.5 above the stem's median level).
    env = np.sqrt(_moving_average(target.audio[:, 0].astype(np.float64) ** 2, int(0.05 * fs)))
    env_db = 20 * np.log10(np.maximum(env, 1e-6))
    active = env_db > env_db.max() - 40
    median = float(np.median(env_db[active])) if active.any() else 0.0
    gain_db += np.where(active, np.clip(env_db - median, -12, 12) * 0.5, 0.0)
    target.audio = (target.audio * (10 ** (gain_db / 20.0))[:, None]).astype(np.float32)
    # Keep the take's overall loudness where it was, so this is a dynamics fault, not a level fault.
    after = _lufs(target.audio, fs)
    if after is not None and before is not None:
        target.audio = (target.audio * np.float32(dsp.undb(before - after))).astype(np.float32)
    target.audio, trim = _ceiling(target.audio)
    after_lra = _lra(target.audio, fs)
    return PlantedProblem(
        "over_dynamic_lead", (target.name,), f"{target.name} swings +/-{spread:.0f} dB between phrases (LRA {before_lra} -> {after_lra} LU)",
        {"phrase_offsets_db": offsets, "expansion_ratio": 1.5, "trim_db": trim},
        {"lra_lu_before": before_lra, "lra_lu_after": after_lra, "integrated_lufs_after": _lufs(target.audio, fs)},
        ({"type": "compressor", "stem": target.name, "ratio": 4.0, "ratio_range": [2.5, 6.0], "attack_ms": 10.0,
          "release_ms": 120.0, "target_lra_lu": before_lra},))


def hard_pan(stems, target: StemState, ctx: Context, rng, amount_db: float | None) -> PlantedProblem:
    """A mono source bounced from a track panned hard left: a stereo file with an empty right channel."""
    mono = target.audio[:, :1]
    target.audio = np.concatenate([mono, np.zeros_like(mono)], axis=1).astype(np.float32)
    return PlantedProblem(
        "hard_pan", (target.name,), f"{target.name} is panned hard left; it belongs in the centre",
        {"pan": -1.0, "channels_before": 1, "channels_after": 2},
        {"right_channel_peak": float(np.abs(target.audio[:, 1]).max())},
        ({"type": "pan", "stem": target.name, "pan": 0.0, "reason": "a centred part (bass/lead) bounced panned hard left"},))


BAD_NAMES = ("Audio 03", "Track 7", "Bounce 2", "Audio 11", "Track 12", "Stem_05")


def bad_names(stems, target, ctx: Context, rng, amount_db: float | None, infer_role: Callable[[str], str]) -> PlantedProblem:
    """Three stems get names that say nothing; the arp (if any) gets the misleading "Synth Arp"."""
    candidates = [s for k, s in stems.items() if k in ("keys", "guitar", "pad", "bass", "bvs", "snare_top", "hats")]
    picked = [candidates[i] for i in sorted(rng.choice(len(candidates), size=min(3, len(candidates)), replace=False))]
    names = list(BAD_NAMES)
    rng.shuffle(names)
    renamed, fixes = {}, []
    taken = {s.name for s in stems.values()}
    for stem, new in zip(picked, names):
        renamed[stem.name] = new
    if "arp" in stems:
        renamed[stems["arp"].name] = "Synth Arp"
    by_old = {s.name: s for s in stems.values()}
    for old, new in renamed.items():
        if new in taken:
            continue
        stem = by_old[old]
        stem.name = new  # the audio is untouched: the file is copied under its new name
        fixes.append({"type": "role", "stem": new, "role": stem.role, "label": stem.label, "was_named": old,
                      "name_suggests": infer_role(new)})
    return PlantedProblem(
        "bad_names", tuple(f["stem"] for f in fixes), "stems whose names say nothing, and a misleading 'Synth Arp'",
        {"renamed": renamed}, {}, tuple(fixes),
        tuple({"type": "fader", "stem": f["stem"], "reason": f"treating it as {f['name_suggests']} (from the name) misplaces it"}
              for f in fixes if f["name_suggests"] not in (f["role"], "neutral")))
