"""Polarity and width: decided from the low-band correlation, before the level/EQ search.  Pure.

Flipping a channel or narrowing changes no band energy the predicted mix works on (band energies
are means over channels), so these fixes are decided on their own, with the same move costs and the
same hysteresis as every other move, and explained with their predicted correlation.

* An **inverted channel**: the part correlates negatively (at or below :data:`CHECK_CORRELATION`)
  and so does its own lowest octave (at or below :data:`INVERTED_LOW_CORRELATION`: where even a wide
  source correlates positively, an inverted channel shows first); or, with no usable low band, the
  whole part at or below :data:`INVERTED_CORRELATION`.  Flip the right channel: every band's correlation
  changes sign.
* **Diffuse out-of-phase content** (correlation at or below :data:`PHASE_CORRELATION` while the low
  band is not inverted): narrow it until its correlation is :data:`NARROW_TARGET_CORRELATION`.
* **A mono source bounced hard to one side** (one channel empty): fold to mono so it sits centred
  (REAPER's balance pan cannot move it; the fader then restores its level, which the level term sees).
* **A low end that is not mono** on kick and bass (low-band correlation below 0.8): mono width.
* **A centre role that is wide** (side share above 0.3): narrow to a side share of 0.1.

Between stems (:func:`partner_polarity`, :func:`split_pair_pans`):

* **A partner mic inverted against its drum's main mic** (snare bottom against top, kick out against
  in, within a kit group): their low-band (40-350 Hz) correlation at the lag of best alignment is at or
  below :data:`PARTNER_INVERTED_CORRELATION` and as they sum (zero lag) at or below
  :data:`PARTNER_SUM_CORRELATION`: flip the partner's polarity (both channels).
* **A stereo pair delivered as two files** ("Overheads L" / "Overheads R") with both halves centred:
  pan them hard left and right.  Once panned, a half with sound on its own side only is not a part
  bounced off-centre (no fold to mono).
"""
from __future__ import annotations

import math

import numpy as np

from ..analyze.polarity import LOW_BAND_HZ, polarity_between, signal_rate_hz
from ..analyze.stem import StemAnalysis
from .model import Effect, Finding, Group, StemView
from .roles import BASS, KICK, PROFILES, NEUTRAL, SNARE, TOMS, is_bottom_mic, label, words

INVERTED_LOW_CORRELATION = -0.15
INVERTED_CORRELATION = -0.8
PHASE_CORRELATION = -0.3
#: Below this overall correlation a part is checked for an inverted channel.
CHECK_CORRELATION = -0.2
NARROW_TARGET_CORRELATION = 0.2
LOW_MONO_CORRELATION = 0.8
CENTRE_MAX_WIDTH, CENTRE_TARGET_WIDTH = 0.3, 0.1
#: A stem whose channels differ by more than this (dB) is a mono source bounced panned to one side.
ONE_SIDED_DB = 20.0
#: Bands within this many dB of the part's loudest band count as its content.
CONTENT_WITHIN_DB = 30.0


def low_band_correlation(analysis: StemAnalysis) -> float | None:
    """Correlation of the part's own lowest octave of content (energy-weighted over its bands)."""
    st = analysis.stereo
    if st is None:
        return None
    levels = [v if v is not None else -999.0 for v in analysis.spectrum.band_db]
    top = max(levels)
    chosen = []
    for b, (level, corr) in enumerate(zip(levels, st.band_correlation)):
        if corr is None or level < top - CONTENT_WITHIN_DB:
            continue
        chosen.append((b, level, corr))
        if len(chosen) == 3:
            break
    if not chosen:
        return None
    weights = np.array([10.0 ** (lv / 10.0) for _, lv, _ in chosen])
    corrs = np.array([c for _, _, c in chosen])
    return float((weights * corrs).sum() / weights.sum())


def _narrowed_correlation(correlation: float, width: float) -> float:
    """Correlation after REAPER's width scales the side signal by ``width`` (equal L/R energies)."""
    side_over_mid = (1.0 - correlation) / max(1.0 + correlation, 1e-6)
    s = side_over_mid * width * width
    return (1.0 - s) / (1.0 + s)


def stereo_decision(view: StemView, pair_side: str | None = None) -> tuple[str, dict, Finding, tuple[Effect, ...], float] | None:
    """(kind, content, finding, effects, confidence) for one stem's polarity/width move, or ``None``.

    ``kind`` is ``"polarity"`` (content ``{"channel": "right"}``) or ``"width"`` (``{"width": w}``).
    ``pair_side`` is the side the stem's name gives it when it is one half of a split stereo pair
    (:func:`split_pairs`): sound on that side only is where it belongs, not a part bounced off-centre.
    """
    a = view.analysis
    if a is None or a.stereo is None or a.faults.silent:
        return None
    st = a.stereo
    if st.correlation is None and st.balance_db is not None and abs(st.balance_db) >= ONE_SIDED_DB:
        side = "left" if st.balance_db < 0 else "right"
        if side == pair_side:
            return None
        msg = (f"{view.name} has sound in its {side} channel only ({abs(st.balance_db):.0f} dB more than the other): "
               f"a mono source bounced panned hard {side}. Fold the track to mono (width 0) so it sits centred")
        evidence = {"balance_db": st.balance_db, "pan": st.pan}
        effects = (Effect(f"{view.name} pan", "pan", round(st.pan or 0.0, 2), 0.0, ""),)
        return "width", {"width": 0.0}, Finding("hard_pan", "warning", msg, evidence), effects, 0.8
    if st.correlation is None:
        return None
    corr = st.correlation
    low = low_band_correlation(a)
    balanced = abs(st.balance_db or 0.0) < 6.0
    evidence = {"correlation": round(corr, 3), "low_band_correlation": None if low is None else round(low, 3),
                "correlation_low_150hz": st.correlation_low, "width": st.width, "mono_loss_db": st.mono_loss_db,
                "balance_db": st.balance_db}
    inverted = balanced and corr <= CHECK_CORRELATION and (
        (low is not None and low <= INVERTED_LOW_CORRELATION) or (low is None and corr <= INVERTED_CORRELATION))
    if inverted:
        after = -corr
        msg = (f"{view.name}: L/R correlation {corr:+.2f}, its lowest octave {low if low is not None else corr:+.2f} "
               f"— one channel is polarity-inverted (a wide part still correlates in its low end); "
               f"folded to mono it loses {abs(st.mono_loss_db or 0.0):.0f} dB. Flip the right channel's polarity")
        effects = (Effect(f"{view.name} L/R correlation", "correlation", round(corr, 2), round(after, 2), "correlation"),)
        return "polarity", {"channel": "right"}, Finding("phase", "problem", msg, evidence), effects, 0.9
    if corr <= PHASE_CORRELATION:
        side_over_mid = (1.0 - corr) / max(1.0 + corr, 1e-6)
        target_ratio = (1.0 - NARROW_TARGET_CORRELATION) / (1.0 + NARROW_TARGET_CORRELATION)
        width = round(min(1.0, math.sqrt(target_ratio / side_over_mid)), 2)
        after = _narrowed_correlation(corr, width)
        msg = (f"{view.name}: L/R correlation {corr:+.2f} while its lowest octave is "
               f"{'not measurable' if low is None else f'{low:+.2f}'} — diffuse out-of-phase content, not an inverted "
               f"channel; it cancels in mono. Narrow to {width * 100:.0f}% width")
        effects = (Effect(f"{view.name} L/R correlation", "correlation", round(corr, 2), round(after, 2), "correlation"),)
        return "width", {"width": width}, Finding("phase", "warning", msg, evidence), effects, 0.6
    if view.role == NEUTRAL or view.manual:
        return None
    if view.role in (BASS, KICK) and st.correlation_low is not None and st.correlation_low < LOW_MONO_CORRELATION:
        msg = (f"{view.name}: low-end correlation {st.correlation_low:.2f}; keep the low end mono — "
               f"set the track to mono width")
        effects = (Effect(f"{view.name} low-end correlation", "correlation", round(st.correlation_low, 2), 1.0, "correlation"),)
        return "width", {"width": 0.0}, Finding("low_end_width", "warning", msg, evidence), effects, 0.7
    profile = PROFILES.get(view.role, PROFILES[NEUTRAL])
    if profile.centre and st.width is not None and st.width > CENTRE_MAX_WIDTH:
        side, mid = st.width, 1.0 - st.width
        w = round(math.sqrt(CENTRE_TARGET_WIDTH * mid / ((1.0 - CENTRE_TARGET_WIDTH) * side)), 2)
        msg = (f"{view.name}: width {st.width:.2f} is wide for a {label(view.role)}, which usually sits centred; "
               f"narrow to {w * 100:.0f}% width")
        effects = (Effect(f"{view.name} side share", "width", round(st.width, 2), CENTRE_TARGET_WIDTH, ""),)
        return "width", {"width": w}, Finding("width", "warning", msg, evidence), effects, 0.5
    return None


# --- between stems: the mics of one drum, the two halves of a stereo pair ------------------------------

#: A partner mic (snare bottom against its top, kick out against in) is polarity-inverted when their
#: low-band correlation at the lag of best alignment is at or below this ...
PARTNER_INVERTED_CORRELATION = -0.5
#: ... and, as they sum on the bus (zero lag, nothing re-aligns them), at or below this: flipping it
#: then makes the drum's body add instead of cancel.
PARTNER_SUM_CORRELATION = -0.2
#: Drum roles whose mics come in partners on one drum.
_PARTNER_ROLES = (KICK, SNARE, TOMS)
#: Words naming the partner mic of a drum (the one that is compared with the main mic, and flipped).
PARTNER_WORDS = frozenset({"out", "outside", "front", "reso", "sub", "ext"})
#: A stem counts as centred when it is mono, or stereo with channels this alike (correlation) ...
CENTRED_CORRELATION = 0.98
#: ... and balanced within this many dB.
CENTRED_BALANCE_DB = 1.5
#: Roles that stay centred even when delivered as an L/R pair (the low end is mono).
_KEEP_CENTRED = (BASS, KICK)


def _is_partner_mic(view: StemView) -> bool:
    return is_bottom_mic(view.name) or bool(set(words(view.name)) & PARTNER_WORDS)


def partner_polarity(views: list[StemView], groups: list[Group]) -> list[tuple[str, Finding, tuple[Effect, ...], float]]:
    """Partner mics of one drum that are polarity-inverted against its main mic.

    Within a source group (a kit), the mics of one drum role (kick, snare, toms) are compared: the
    main mic (not named bottom/out/front/sub; the loudest if several) against each other one, on
    their low-band signals (:func:`bridge.analyze.polarity.polarity_between`).  A partner whose
    correlation at the lag of best alignment is at or below :data:`PARTNER_INVERTED_CORRELATION`
    and at zero lag at or below :data:`PARTNER_SUM_CORRELATION` gets its polarity flipped (both
    channels).  Returns ``(stem name, finding, effects, confidence)`` per flip.
    """
    by_name = {v.name: v for v in views}
    out = []
    for g in groups:
        members = [by_name[n] for n in g.members if n in by_name]
        for role in _PARTNER_ROLES:
            mics = [v for v in members if v.role == role and v.low_signal is not None and v.analysis is not None
                    and not v.analysis.faults.silent]
            if len(mics) < 2:
                continue
            mains = [v for v in mics if not _is_partner_mic(v)] or []
            if not mains:
                continue
            main = max(mains, key=lambda v: (v.analysis.loudness.integrated_lufs or -999.0, v.name))
            for v in mics:
                if v is main or v.sample_rate != main.sample_rate:
                    continue
                m = polarity_between(main.low_signal, v.low_signal, signal_rate_hz(v.sample_rate))
                if m is None or m.correlation > PARTNER_INVERTED_CORRELATION or m.zero_lag > PARTNER_SUM_CORRELATION:
                    continue
                lo, hi = LOW_BAND_HZ
                # How the pair's body sums on the bus now and flipped (their own levels, zero lag).
                ratio = 10.0 ** (m.energy_ratio_db / 10.0)
                cross = 2.0 * m.zero_lag * math.sqrt(ratio)
                now = 1.0 + ratio + cross
                flipped = 1.0 + ratio - cross
                gain = 10.0 * math.log10(max(flipped, 1e-12) / max(now, 1e-12))
                msg = (f"{v.name} against {main.name} ({label(role)} mics of one drum): {lo:.0f}-{hi:.0f} Hz "
                       f"correlation {m.correlation:+.2f} at the best alignment ({m.lag_ms:+.1f} ms), "
                       f"{m.zero_lag:+.2f} as they sum — {v.name} is polarity-inverted against {main.name}. "
                       f"Flip its polarity (both channels): the drum's body then adds instead of cancelling "
                       f"(+{gain:.1f} dB at {lo:.0f}-{hi:.0f} Hz summed)")
                evidence = {"against": main.name, "correlation": round(m.correlation, 3), "lag_ms": round(m.lag_ms, 2),
                            "zero_lag_correlation": round(m.zero_lag, 3), "best_positive": round(m.best_positive, 3),
                            "energy_ratio_db": round(m.energy_ratio_db, 2), "band_hz": [lo, hi],
                            "summed_gain_db": round(gain, 2)}
                effects = (Effect(f"{v.name} vs {main.name} {lo:.0f}-{hi:.0f} Hz correlation", "correlation",
                                  round(m.zero_lag, 2), round(-m.zero_lag, 2), "correlation"),)
                out.append((v.name, Finding("mic_polarity", "problem", msg, evidence), effects, 0.9))
    return out


def centred(view: StemView) -> bool:
    """Mono, or stereo with both channels alike and balanced: the part plays in the middle."""
    a = view.analysis
    if a is None:
        return False
    st = a.stereo
    if st is None or (view.subhop_power is not None and view.subhop_power.shape[1] == 1):
        return True
    return (st.correlation is not None and st.correlation >= CENTRED_CORRELATION
            and st.balance_db is not None and abs(st.balance_db) <= CENTRED_BALANCE_DB)


def split_pairs(views: list[StemView]) -> list[tuple[StemView, StemView]]:
    """``(left, right)`` halves of stereo pairs delivered as two files: one name stem ("Overheads",
    "Acoustic Gtr"), one side word each ("L"/"R", "Left"/"Right"), compatible roles."""
    from .groups import _compatible, name_stem
    from .predict import side_of
    keyed: dict[str, dict[str, list[StemView]]] = {}
    for v in views:
        side = side_of(v.name)
        if side is None or v.analysis is None or v.analysis.faults.silent:
            continue
        keyed.setdefault(name_stem(v.name), {}).setdefault(side, []).append(v)
    out = []
    for key in sorted(keyed):
        sides = keyed[key]
        lefts, rights = sides.get("left", []), sides.get("right", [])
        if key and len(lefts) == 1 and len(rights) == 1 and _compatible(lefts[0].role, rights[0].role):
            out.append((lefts[0], rights[0]))
    return out


def split_pair_pans(views: list[StemView]) -> list[tuple[str, float, Finding, tuple[Effect, ...], float]]:
    """Pan both halves of a split stereo pair to their sides when both play centred.

    Returns ``(stem name, pan, finding, effects, confidence)`` per half (pan -1 hard left, +1 hard
    right, REAPER's ``D_PAN``).  A pair of a low-end role (bass, kick) stays centred.
    """
    out = []
    for left, right in split_pairs(views):
        if left.role in _KEEP_CENTRED or right.role in _KEEP_CENTRED or not (centred(left) and centred(right)):
            continue
        diff = None
        a, b = left.analysis.loudness.integrated_lufs, right.analysis.loudness.integrated_lufs
        if a is not None and b is not None:
            diff = round(b - a, 1)
        for view, pan, side in ((left, -1.0, "left"), (right, 1.0, "right")):
            other = right if view is left else left
            msg = (f"{view.name} and {other.name} are the two sides of one stereo pair, delivered as separate files, "
                   f"and both play in the centre (mono or identical channels), so the pair's image collapses: "
                   f"pan {view.name} hard {side}"
                   + (f" (the halves differ by {abs(diff):.1f} LU)" if diff is not None else ""))
            evidence = {"pair": [left.name, right.name], "side": side, "pan": pan, "level_difference_lu": diff}
            effects = (Effect(f"{view.name} pan", "pan", 0.0, pan, ""),)
            out.append((view.name, pan, Finding("split_pair", "warning", msg, evidence), effects, 0.8))
    return out
