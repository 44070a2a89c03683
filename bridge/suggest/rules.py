"""The rules: each a small pure function from the session's measurements to suggestions.

Every rule returns :class:`~bridge.suggest.model.Suggestion` objects with a reason code, the
evidence behind them and a confidence.  Thresholds live at the top of this module and are
explained, with sources, in docs/suggestions.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..analyze.session import MixAnalysis
from ..analyze.spectrum import BAND_CENTERS_HZ
from ..analyze.stem import StemAnalysis
from .model import CompSettings, EqBand, Finding, Suggestion
from .roles import BASS, KICK, LABELS, LEAD_VOCAL, NEUTRAL, PROFILES, RoleProfile

# --- thresholds ---------------------------------------------------------------------------------
#: No fader move within this many LU of the target: smaller differences are taste, not error.
GAIN_DEADBAND_LU = 3.0
#: Beyond this the stem is flagged too loud / too quiet.
GAIN_FLAG_LU = 6.0
#: The largest single fader move the plan makes.
MAX_GAIN_MOVE_DB = 12.0
#: Typical level of the lead vocal below the full mix's integrated loudness, LU (used when the
#: anchor is the mix: it turns vocal-relative offsets into mix-relative ones).
VOCAL_BELOW_MIX_LU = 4.0

#: Masking: act on conflicts at least this severe and this frequent.
MASKING_MIN_OVERLAP_DB = 8.0
MASKING_MIN_TIME = 0.4
#: The cut is half the overlap, between these limits, dB.
MASKING_CUT_MIN_DB, MASKING_CUT_MAX_DB = 1.5, 6.0
#: At most this many masking cuts per track, and one (its worst conflict) per protected part.
MASKING_MAX_CUTS = 2

#: High-pass: energy below 30 Hz, or below half the useful range, above this share (dB re total)
#: counts as rumble; a DC offset above this level too.
RUMBLE_MIN_DB = -35.0
DC_MIN_DBFS = -60.0
#: Bass-range parts legitimately reach low; only a much larger sub-30 Hz share is flagged for them.
BASS_RUMBLE_MIN_DB = -20.0

#: Compression: suggest when LRA exceeds the role's ceiling by this much, or crest by this much.
LRA_MARGIN_LU = 1.5
CREST_MARGIN_DB = 2.0

#: Stereo: correlation at or below this is a phase problem; below the second, a flipped channel.
PHASE_CORRELATION = -0.3
FLIPPED_CORRELATION = -0.8
#: The low end counts as "not mono" below this low-band correlation.
LOW_MONO_CORRELATION = 0.8
#: Width index (side share) above which a centre role is too wide, and the target it is set to.
CENTRE_MAX_WIDTH, CENTRE_TARGET_WIDTH = 0.3, 0.1

#: Peaks above this true peak (with no clipping) are hot; the fix leaves this much headroom.
HOT_TRUE_PEAK_DBTP = -1.0

#: Section levels: a section departing from the stem's usual mix-relative level by this much.
SECTION_DEVIATION_LU = 4.0
SECTION_MAX_MOVE_DB = 10.0
SECTION_RAMP_S = 0.05


@dataclass(frozen=True, slots=True)
class StemView:
    """One stem as the rules see it."""

    name: str
    role: str
    analysis: StemAnalysis | None
    error: tuple[str, str] | None = None
    manual: bool = False
    section_lufs: tuple[tuple[str, float, float, float | None, float | None], ...] = ()
    # (section name, start_s, end_s, stem LUFS, mix LUFS)


@dataclass(frozen=True, slots=True)
class Anchor:
    """What stem levels are balanced against."""

    kind: str  # "lead_vocal" | "mix"
    stem: str | None
    lufs: float


@dataclass(frozen=True, slots=True)
class RuleSettings:
    role_offsets: dict[str, float] = field(default_factory=dict)
    max_gain_move_db: float = MAX_GAIN_MOVE_DB

    def profile(self, role: str) -> RoleProfile:
        base = PROFILES.get(role, PROFILES[NEUTRAL])
        if role in self.role_offsets:
            from dataclasses import replace
            return replace(base, offset_lu=float(self.role_offsets[role]))
        return base


@dataclass(frozen=True, slots=True)
class Context:
    stems: tuple[StemView, ...]
    mix: MixAnalysis
    anchor: Anchor | None
    settings: RuleSettings = RuleSettings()

    def analysed(self) -> list[StemView]:
        return [s for s in self.stems if s.analysis is not None and not s.analysis.faults.silent]


def _r(value: float, ndigits: int = 1) -> float:
    return round(float(value), ndigits)


def _severity(magnitude: float, warn: float, problem: float) -> str:
    return "problem" if magnitude >= problem else "warning" if magnitude >= warn else "info"


# --- anchor -------------------------------------------------------------------------------------

def choose_anchor(stems: list[StemView], mix_lufs: float | None, settings: RuleSettings) -> Anchor | None:
    """The lead vocal when there is an audible one (the loudest if several), else the summed mix.

    With the mix as anchor, the anchor level is chosen so that the stems, moved to their targets,
    would sum (incoherently) to the same loudness as now: re-planning after applying the moves
    then finds nothing more to move.
    """
    vocals = [s for s in stems if s.role == LEAD_VOCAL and s.analysis is not None
              and s.analysis.loudness.integrated_lufs is not None]
    if vocals:
        best = max(vocals, key=lambda s: (s.analysis.loudness.integrated_lufs, s.name))
        return Anchor("lead_vocal", best.name, best.analysis.loudness.integrated_lufs)
    audible = [s for s in stems if s.analysis is not None and s.analysis.loudness.integrated_lufs is not None]
    if not audible or mix_lufs is None:
        return None
    now = 10.0 * math.log10(sum(10.0 ** (s.analysis.loudness.integrated_lufs / 10.0) for s in audible))
    offsets = [settings.profile(s.role).offset_lu - VOCAL_BELOW_MIX_LU for s in audible]
    level = now - 10.0 * math.log10(sum(10.0 ** (o / 10.0) for o in offsets))
    return Anchor("mix", None, level + VOCAL_BELOW_MIX_LU)


def target_lufs(ctx: Context, stem: StemView) -> float | None:
    if ctx.anchor is None:
        return None
    profile = ctx.settings.profile(stem.role)
    if ctx.anchor.kind == "lead_vocal":
        return ctx.anchor.lufs + profile.offset_lu
    return ctx.anchor.lufs - VOCAL_BELOW_MIX_LU + profile.offset_lu


# --- rules --------------------------------------------------------------------------------------

def planned_gains(ctx: Context) -> dict[str, float]:
    """The fader moves gain staging will propose (0 inside the deadband), by stem name.

    Masking is judged at these balanced levels: an engineer sets levels before reaching for EQ,
    and a conflict that a fader move already resolves needs no cut.
    """
    gains = {}
    for stem in ctx.analysed():
        target = target_lufs(ctx, stem)
        measured = stem.analysis.loudness.integrated_lufs
        if target is None or measured is None or stem.role == NEUTRAL:
            continue
        ideal = target - measured
        if abs(ideal) >= GAIN_DEADBAND_LU:
            gains[stem.name] = max(-ctx.settings.max_gain_move_db, min(ctx.settings.max_gain_move_db, ideal))
    return gains


def gain_staging(ctx: Context) -> list[Suggestion]:
    """Balance each stem's integrated loudness against the anchor plus its role offset.

    After Perez-Gonzalez & Reiss (2009) and Mansbridge et al. (2012): equal loudness as the
    baseline, with role offsets.  Moves within the deadband are left alone; moves are capped.
    """
    out = []
    for stem in ctx.analysed():
        if ctx.anchor is not None and ctx.anchor.kind == "lead_vocal" and stem.name == ctx.anchor.stem:
            continue
        target = target_lufs(ctx, stem)
        measured = stem.analysis.loudness.integrated_lufs
        if target is None or measured is None:
            continue
        ideal = target - measured
        if abs(ideal) < GAIN_DEADBAND_LU:
            continue
        code = "too_loud" if ideal < 0 else "too_quiet"
        move = max(-ctx.settings.max_gain_move_db, min(ctx.settings.max_gain_move_db, ideal))
        anchor = f"the lead vocal ({ctx.anchor.stem})" if ctx.anchor.kind == "lead_vocal" else "the mix"
        finding = Finding(
            code, _severity(abs(ideal), GAIN_FLAG_LU, 9.0),
            f"{stem.name} sits {abs(ideal):.1f} LU {'above' if ideal < 0 else 'below'} its target "
            f"({target:.1f} LUFS: {anchor} {ctx.settings.profile(stem.role).offset_lu:+.0f} LU for a "
            f"{LABELS.get(stem.role, stem.role)})",
            {"integrated_lufs": _r(measured, 2), "target_lufs": _r(target, 2), "ideal_gain_db": _r(ideal, 2),
             "anchor": ctx.anchor.kind, "anchor_lufs": _r(ctx.anchor.lufs, 2),
             "capped": abs(ideal) > ctx.settings.max_gain_move_db})
        confidence = 0.5 + min(0.4, abs(ideal) / 30.0)
        role_specific = stem.role != NEUTRAL
        out.append(Suggestion(stem.name, code, finding, _r(confidence, 2),
                              volume_db=_r(move, 1) if role_specific else None))
    return out


def masking(ctx: Context) -> list[Suggestion]:
    """For each significant masking conflict, cut the lower-priority stem at the conflict band.

    Hafezi & Reiss (2015) and Ronan et al. (2018) reduce masking with EQ on the masker.  Here the
    cut goes on the lower-priority stem of the pair (role priorities: lead vocal > bass/kick > ...),
    on the masker when priorities tie, and only where it protects the part that matters more.
    Conflicts are judged at the balanced levels (after the proposed fader moves) and after the
    proposed high-passes; conflicts between important parts are handled first, and each track
    gets at most two cuts and two protecting cuts.
    """
    by_name = {s.name: s for s in ctx.stems}
    gains = planned_gains(ctx)
    corners = {s.track: s.eq[0].freq_hz for s in high_pass(ctx) if s.eq}
    candidates = []
    for pair in ctx.mix.masking:
        masked, masker = by_name.get(pair.masked), by_name.get(pair.masker)
        if masked is None or masker is None:
            continue
        p_masked = ctx.settings.profile(masked.role).priority
        p_masker = ctx.settings.profile(masker.role).priority
        # The part that matters more is protected; the overlap is judged at the balanced levels
        # (raising the masker deepens it).
        if p_masked >= p_masker:
            cut, kept, measured = masker, masked, pair.overlap_db
        elif pair.mutual and pair.reverse_overlap_db is not None:
            cut, kept, measured = masked, masker, pair.reverse_overlap_db
        else:
            continue  # the more important part is on top: that is the balance working
        overlap = measured + gains.get(cut.name, 0.0) - gains.get(kept.name, 0.0)
        if overlap < MASKING_MIN_OVERLAP_DB or pair.time_fraction < MASKING_MIN_TIME:
            continue
        if corners.get(cut.name, 0.0) >= pair.band_high_hz:
            continue  # the high-pass this stem gets already clears the conflict
        importance = ctx.settings.profile(kept.role).priority + ctx.settings.profile(cut.role).priority
        candidates.append((-importance, -overlap * pair.time_fraction, kept.name, cut.name, pair, cut, kept,
                           overlap, measured))
    candidates.sort(key=lambda c: c[:4])
    cuts: dict[str, list[EqBand]] = {}
    protected: dict[str, int] = {}
    out = []
    for *_, pair, cut, kept, overlap, measured in candidates:
        label = f"{kept.name} vs {cut.name}, {pair.band_low_hz:.0f}–{pair.band_high_hz:.0f} Hz, " \
                f"{overlap:.0f} dB overlap, {pair.time_fraction * 100:.0f}% of the time"
        evidence = {"protected": kept.name, "cut": cut.name, "band_low_hz": pair.band_low_hz,
                    "band_high_hz": pair.band_high_hz, "overlap_db": _r(overlap, 2),
                    "measured_overlap_db": measured, "time_fraction": pair.time_fraction,
                    "mutual": pair.mutual}
        if cut.role == NEUTRAL or kept.role == NEUTRAL:
            out.append(Suggestion(kept.name, "masking", Finding("masking", "info", label, evidence), 0.3))
            continue
        existing = cuts.setdefault(cut.name, [])
        near = any(abs(math.log2(b.freq_hz / pair.centre_hz)) < 0.5 for b in existing)
        if len(existing) >= MASKING_MAX_CUTS or near or protected.get(kept.name, 0) >= MASKING_MAX_CUTS:
            continue
        protected[kept.name] = protected.get(kept.name, 0) + 1
        gain = -min(MASKING_CUT_MAX_DB, max(MASKING_CUT_MIN_DB, overlap / 2.0))
        width_hz = max(pair.band_high_hz - pair.band_low_hz, 1.0)
        q = min(4.0, max(0.7, pair.centre_hz / width_hz))
        band = EqBand("peak", _nice_hz(pair.centre_hz), _r(gain, 1), _r(q, 2))
        existing.append(band)
        finding = Finding("masking", _severity(overlap * pair.time_fraction, 3.0, 6.0),
                          f"{label}: cut {cut.name} {abs(gain):.1f} dB at {band.freq_hz:.0f} Hz "
                          f"(Q {band.q:.1f}) so {kept.name} comes through", evidence)
        confidence = 0.4 + min(0.5, pair.time_fraction * overlap / 20.0)
        out.append(Suggestion(cut.name, "masking", finding, _r(confidence, 2), eq=(band,)))
    return out


def _nice_hz(freq: float) -> float:
    """Round a frequency to 2-3 significant figures, as an engineer would dial it."""
    if freq < 100:
        return float(round(freq))
    if freq < 1000:
        return float(round(freq / 5.0) * 5)
    return float(round(freq / 50.0) * 50)


def _low_excess_db(analysis: StemAnalysis) -> float | None:
    """Energy below half the useful range, relative to the whole stem, dB."""
    spec = analysis.spectrum
    if spec.useful_low_hz is None:
        return None
    levels = np.array([10 ** (v / 10) if v is not None else 0.0 for v in spec.band_db])
    total = levels.sum()
    below = levels[BAND_CENTERS_HZ < spec.useful_low_hz / 2].sum()
    if total <= 0 or below <= 0:
        return None
    return 10 * math.log10(below / total)


def high_pass(ctx: Context) -> list[Suggestion]:
    """High-pass stems that are not bass-range and carry energy below their useful range.

    Instrument rules as in De Man & Reiss (2013): everything but kick/bass-type sources may be
    high-passed.  The corner is 0.7 x the lowest useful band, kept inside the role's range.
    """
    out = []
    for stem in ctx.analysed():
        a = stem.analysis
        rumble = a.spectrum.rumble_db
        dc = a.faults.dc_offset_dbfs
        low = _low_excess_db(a)
        reasons = []
        if rumble is not None and rumble > RUMBLE_MIN_DB:
            reasons.append(f"{rumble:.0f} dB of its energy below 30 Hz")
        if low is not None and low > RUMBLE_MIN_DB:
            reasons.append(f"{low:.0f} dB below half its useful range")
        if dc is not None and dc > DC_MIN_DBFS:
            reasons.append(f"a DC offset of {dc:.0f} dBFS")
        if not reasons:
            continue
        evidence = {"rumble_db": rumble, "low_excess_db": _r(low, 1) if low is not None else None,
                    "dc_offset_dbfs": dc, "useful_low_hz": a.spectrum.useful_low_hz}
        profile = ctx.settings.profile(stem.role)
        if profile.highpass_hz is None:
            if (rumble or -99.0) <= BASS_RUMBLE_MIN_DB and (dc or -999.0) <= DC_MIN_DBFS:
                continue  # a bass part's own lows, not rumble
            message = f"{stem.name} has " + " and ".join(reasons) + \
                      ("; as a bass-range part it is not high-passed — check the source"
                       if stem.role != NEUTRAL else "; unknown role, so no filter is suggested")
            out.append(Suggestion(stem.name, "low_rumble", Finding("low_rumble", "warning", message, evidence), 0.4))
            continue
        lo, hi = profile.highpass_hz
        useful = a.spectrum.useful_low_hz or lo / 0.7
        corner = min(hi, max(lo, 0.7 * useful))
        corner = float(round(corner / 5.0) * 5)
        band = EqBand("highpass", corner, 0.0, 0.71)
        message = f"{stem.name} has " + " and ".join(reasons) + f": high-pass at {corner:.0f} Hz"
        out.append(Suggestion(stem.name, "low_rumble", Finding("low_rumble", "warning", message, evidence),
                              0.8 if (rumble or -99) > -20 or (dc or -999) > -40 else 0.6, eq=(band,)))
    return out


def compression(ctx: Context) -> list[Suggestion]:
    """Compressor starting points from the stem's dynamics and role.

    After Giannoulis, Massberg & Reiss (2013) and Ma et al. (2015): parameters from the level
    distribution and crest factor.  Threshold at the 75th percentile of the active 100 ms RMS
    (the loudest quarter is compressed); ratio from how far LRA (or crest) exceeds the role's
    ceiling; slower attack for percussive material; make-up restores the expected level loss.
    """
    out = []
    for stem in ctx.analysed():
        profile = ctx.settings.profile(stem.role)
        if stem.role == NEUTRAL or (profile.lra_max_lu is None and profile.crest_max_db is None):
            continue
        a = stem.analysis
        lra, crest = a.loudness.lra_lu, a.levels.crest_db
        p = a.levels.rms_percentiles_dbfs
        if None in p:
            continue
        ratio = None
        why = ""
        if profile.lra_max_lu is not None and lra is not None and lra > profile.lra_max_lu + LRA_MARGIN_LU:
            ratio = min(6.0, max(1.5, lra / profile.lra_max_lu))
            why = f"LRA {lra:.1f} LU against {profile.lra_max_lu:.0f} LU for a {LABELS.get(stem.role, stem.role)}"
        elif profile.crest_max_db is not None and crest is not None and crest > profile.crest_max_db + CREST_MARGIN_DB:
            ratio = min(4.0, max(1.5, 1.0 + (crest - profile.crest_max_db) / 6.0))
            why = f"crest factor {crest:.1f} dB against {profile.crest_max_db:.0f} dB for a {LABELS.get(stem.role, stem.role)}"
        if ratio is None:
            continue
        p10, p50, p75, p90, p95 = p
        threshold = p75
        attack = profile.attack_ms + (10.0 if (crest or 0) > 18.0 else -5.0 if (crest or 99) < 10.0 else 0.0)
        attack = max(1.0, attack)
        # Expected gain reduction where the level exceeds the threshold, averaged over active time.
        excess = [max(0.0, lvl - threshold) for lvl in (p75, p90, p95)]
        reduction = (1.0 - 1.0 / ratio) * (0.15 * excess[1] + 0.1 * excess[2] + 0.05 * max(0.0, p95 - threshold))
        makeup = round(max(0.0, reduction) * 2) / 2
        comp = CompSettings(_r(threshold, 1), _r(ratio, 1), _r(attack, 0), _r(profile.release_ms, 0), makeup)
        finding = Finding("dynamics", "info",
                          f"{stem.name}: {why}; start at {comp.ratio:.1f}:1 from {comp.threshold_db:.1f} dB, "
                          f"{comp.attack_ms:.0f} ms attack, {comp.release_ms:.0f} ms release",
                          {"lra_lu": lra, "crest_db": crest, "plr_db": a.levels.plr_db,
                           "rms_p50_dbfs": p50, "rms_p75_dbfs": p75, "rms_p95_dbfs": p95})
        out.append(Suggestion(stem.name, "dynamics", finding, 0.5, comp=comp))
    return out


def stereo(ctx: Context) -> list[Suggestion]:
    """Phase problems, a low end that is not mono, and widths that do not fit the role."""
    out = []
    for stem in ctx.analysed():
        st = stem.analysis.stereo
        if st is None or st.correlation is None:
            continue
        evidence = {"correlation": st.correlation, "correlation_low": st.correlation_low,
                    "width": st.width, "mono_loss_db": st.mono_loss_db, "balance_db": st.balance_db}
        if st.correlation <= PHASE_CORRELATION:
            if st.correlation <= FLIPPED_CORRELATION and abs(st.balance_db or 0.0) < 6.0:
                msg = (f"{stem.name}: L/R correlation {st.correlation:.2f} — one channel is polarity-inverted; "
                       f"folded to mono it loses {abs(st.mono_loss_db or 0):.0f} dB. Flip the right channel's polarity")
                out.append(Suggestion(stem.name, "phase", Finding("phase", "problem", msg, evidence), 0.9,
                                      polarity={"channel": "right"}))
            else:
                msg = (f"{stem.name}: L/R correlation {st.correlation:.2f} — out-of-phase content that "
                       f"cancels in mono; narrow it to half width")
                out.append(Suggestion(stem.name, "phase", Finding("phase", "warning", msg, evidence), 0.6, width=0.5))
            continue
        role = stem.role
        if role in (BASS, KICK) and st.correlation_low is not None and st.correlation_low < LOW_MONO_CORRELATION:
            msg = (f"{stem.name}: low-end correlation {st.correlation_low:.2f}; keep the low end mono — "
                   f"set the track to mono width")
            out.append(Suggestion(stem.name, "low_end_width", Finding("low_end_width", "warning", msg, evidence),
                                  0.7, width=0.0))
            continue
        if ctx.settings.profile(role).centre and st.width is not None and st.width > CENTRE_MAX_WIDTH:
            # REAPER's width scales the side signal: choose w so the side share becomes the target.
            side, mid = st.width, 1.0 - st.width
            w = math.sqrt(CENTRE_TARGET_WIDTH * mid / ((1.0 - CENTRE_TARGET_WIDTH) * side))
            msg = (f"{stem.name}: width {st.width:.2f} is wide for a {LABELS.get(role, role)}, which usually sits "
                   f"centred; narrow to {w * 100:.0f}% width")
            out.append(Suggestion(stem.name, "width", Finding("width", "warning", msg, evidence), 0.5, width=_r(w, 2)))
    return out


def clipping(ctx: Context) -> list[Suggestion]:
    """Clipping baked into a file cannot be undone by gain; merely hot peaks get headroom."""
    out = []
    for stem in ctx.analysed():
        a = stem.analysis
        clip = a.faults.clip
        tp = a.levels.true_peak_dbtp
        evidence = {"clip_runs": clip.runs, "worst_clip_run_samples": clip.worst_run_samples,
                    "true_peak_dbtp": tp, "sample_peak_dbfs": a.levels.sample_peak_dbfs}
        if clip.runs:
            msg = (f"{stem.name} is clipped in the file: {clip.runs} flat-topped runs, the longest "
                   f"{clip.worst_run_samples} samples. Gain cannot undo this — re-record or re-bounce it with "
                   f"headroom (or as 32-bit float)")
            out.append(Suggestion(stem.name, "clipping", Finding("clipping", "problem", msg, evidence), 0.95))
        elif tp is not None and tp > HOT_TRUE_PEAK_DBTP:
            gain = _r(HOT_TRUE_PEAK_DBTP - tp - 0.5, 1)
            msg = f"{stem.name} peaks at {tp:+.1f} dBTP without clipping: pull it down {abs(gain):.1f} dB for headroom"
            out.append(Suggestion(stem.name, "hot_peaks", Finding("hot_peaks", "warning", msg, evidence), 0.7,
                                  volume_db=gain))
    return out


def section_levels(ctx: Context) -> list[Suggestion]:
    """Volume automation where a steady-role stem departs from its usual level against the mix.

    The arrangement is allowed for by measuring each section's stem level relative to the mix in
    that section: a chorus where everything gets louder is not a problem, a vocal that drops
    8 dB against the band in every chorus is.  The usual level is the upper median of the
    per-section values (a part buried in half the song is the common failure, not a part too
    loud in half of it).
    """
    out = []
    for stem in ctx.analysed():
        if not ctx.settings.profile(stem.role).steady or stem.role == NEUTRAL:
            continue
        present = [(name, s, e, lufs - mix) for name, s, e, lufs, mix in stem.section_lufs
                   if lufs is not None and mix is not None and lufs > -70.0]
        if len(present) < 2:
            continue
        relative = sorted(r for *_, r in present)
        usual = relative[len(relative) // 2]
        flagged = [(name, s, e, usual - r) for name, s, e, r in present if abs(r - usual) >= SECTION_DEVIATION_LU]
        if not flagged:
            continue
        points: list[tuple[float, float]] = []
        for name, start, end, correction in flagged:
            g = _r(max(-SECTION_MAX_MOVE_DB, min(SECTION_MAX_MOVE_DB, correction)), 1)
            seg = [(max(0.0, start - SECTION_RAMP_S), 0.0), (start + SECTION_RAMP_S, g),
                   (end - SECTION_RAMP_S, g), (end + SECTION_RAMP_S, 0.0)]
            if points and points[-1][0] >= seg[0][0] - 1e-6:
                points = points[:-1] + seg[1:]  # back-to-back sections: no dip in between
            else:
                points.extend(seg)
        points = [(_r(t, 3), v) for t, v in points]
        names = sorted({name for name, *_ in flagged})
        msg = (f"{stem.name} departs from its usual level against the mix in "
               + ", ".join(f"{n} ({-c:+.1f} LU)" for n, _, _, c in flagged)
               + ": volume automation brings it back")
        evidence = {"usual_relative_lu": _r(usual, 2),
                    "sections": [{"name": n, "start_s": _r(s, 2), "end_s": _r(e, 2), "deviation_lu": _r(-c, 2)}
                                 for n, s, e, c in flagged],
                    "section_names": names}
        out.append(Suggestion(stem.name, "section_level", Finding("section_level", "warning", msg, evidence), 0.6,
                              automation=tuple(points)))
    return out


def silence_and_errors(ctx: Context) -> list[Suggestion]:
    """A silent stem gets a note and no moves; an unreadable one its error code."""
    out = []
    for stem in ctx.stems:
        if stem.error is not None:
            code, message = stem.error
            out.append(Suggestion(stem.name, "unreadable",
                                  Finding("unreadable", "problem", f"{stem.name} was not analysed: {message}",
                                          {"error_code": code}), 1.0))
        elif stem.analysis is not None and stem.analysis.faults.silent:
            out.append(Suggestion(stem.name, "silent",
                                  Finding("silent", "info", f"{stem.name} is silent (nothing reaches -70 LUFS): "
                                          "muted at render, or an empty track", {}), 1.0))
    return out


RULES = (silence_and_errors, gain_staging, clipping, high_pass, masking, compression, stereo, section_levels)
