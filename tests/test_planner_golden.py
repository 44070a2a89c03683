"""Golden plans from band-energy fixtures (tests/planfix.py): each objective term and decision, in
milliseconds, with known answers.  Levels are as the stems play (a mono stem 3 dB above its file)."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.suggest.model import MAX_EQ_BANDS
from bridge.suggest.plan import PlanSettings, build_plan, plan_json, plan_total_db
from bridge.suggest.roles import PROFILES, infer_role
from tests.planfix import (BASS, GUITAR, KEYS, KICK, OVERHEAD, PAD, VOCAL, apply_plan, band, envelope, gain_to,
                           session, shape, stem)

N = 400  # 40 s
A = -24.0  # the lead's playback loudness in the fixtures


def _band(peaks, seed=0, **kw):
    spec = shape(peaks)
    if peaks is PAD_131:
        spec = _no_skirt_below(spec, 131.0)
    return envelope(N, seed=seed, **kw)[:, None] * spec


def _band_session(**levels):
    """A balanced five-part session; ``levels`` shifts a part's level (dB) from its target."""
    parts = {"Lead Vocal": (VOCAL, 0.0, 1), "Bass": (BASS, -4.0, 1), "Keys": (KEYS, -8.0, 2),
             "Guitar": (GUITAR, -9.0, 2), "Pad": (PAD, -12.0, 2)}
    stems = {}
    for k, (name, (peaks, offset, ch)) in enumerate(parts.items()):
        stems[name] = stem(_band(peaks, seed=k), A + offset + levels.get(name.split()[0].lower(), 0.0), channels=ch,
                           correlation=0.7)
    return stems


def _plan(stems, markers=None, roles=None, **settings):
    views, mix = session(stems, markers, roles)
    return build_plan(views, mix, PlanSettings(**settings)), views


def _moves(plan, kind=None, track=None):
    return [m for m in plan.moves if (kind is None or m.kind == kind) and (track is None or track in m.tracks)]


# --- level -------------------------------------------------------------------------------------

def test_a_balanced_session_gets_nothing():
    plan, _ = _plan(_band_session())
    assert plan.moves == (), [m.finding.message for m in plan.moves]


@pytest.mark.parametrize("offset", [-9.0, 9.0])
def test_a_part_9_db_off_goes_to_its_target_not_to_the_edge_of_the_tolerance(offset):
    plan, _ = _plan(_band_session(keys=offset))
    (move,) = _moves(plan, "fader")
    assert move.tracks == ("Keys",) and move.fader_db == pytest.approx(-offset, abs=0.6)
    (effect,) = move.effects
    assert abs(effect.after) <= 0.5 and effect.before == pytest.approx(offset, abs=0.6)


def test_a_part_within_the_tolerance_is_left_alone():
    plan, _ = _plan(_band_session(guitar=2.5))
    assert not _moves(plan, "fader")


def test_amount_scales_every_move_and_zero_keeps_the_findings():
    full, _ = _plan(_band_session(keys=9.0))
    half, _ = _plan(_band_session(keys=9.0), amount=0.5)
    none, _ = _plan(_band_session(keys=9.0), amount=0.0)
    assert _moves(half, "fader")[0].fader_db == pytest.approx(_moves(full, "fader")[0].fader_db / 2, abs=0.06)
    assert none.moves == () and all(not t.changes and not t.automation for t in none.tracks)
    assert any(f.code == "too_loud" for f in none.track("Keys").findings)


def test_the_plan_is_deterministic_byte_for_byte():
    stems = _band_session(keys=9.0, bass=-5.0)
    a, _ = _plan(stems)
    b, _ = _plan(stems)
    assert plan_json(a) == plan_json(b) and a.id == b.id


# --- masking and priorities -----------------------------------------------------------------------

def _masking_session(presence_db: float):
    """The balanced session plus a broadband synth lead at its target with a presence region
    ``presence_db`` above its other bands, right where the lead vocal's words are."""
    stems = _band_session()
    lead = shape({1000: 0.0, 2500: presence_db, 5000: 0.0, 300: -3.0}, spread_db_per_band=4.0)
    stems["Synth Lead"] = stem(envelope(N, seed=3)[:, None] * lead, A - 5.0, correlation=0.7)
    return stems


def test_a_part_that_covers_the_lead_in_its_presence_band_is_cut_there():
    plan, _ = _plan(_masking_session(6.0))
    cuts = [m for m in _moves(plan, "eq") if m.code == "masking"]
    assert cuts and all(m.tracks == ("Synth Lead",) for m in cuts), [m.finding.message for m in plan.moves]
    best = max(cuts, key=lambda m: m.gain)
    assert 1000 <= best.band.freq_hz <= 12000 and best.band.gain_db <= -3.0
    assert best.finding.evidence["masked"] == "Lead Vocal"
    assert best.effects[0].after < best.effects[0].before, "the predicted overlap goes down"
    assert not _moves(plan, "eq", "Lead Vocal"), "the lead is never carved for a lower part"


def test_a_conflict_a_cut_cannot_solve_without_gutting_the_masker_is_a_finding_not_a_cut():
    # All of the synth's energy in the lead's presence band: a cut that clears it would take the part.
    plan, _ = _plan(_masking_session(14.0))
    assert not [m for m in plan.moves if m.code == "masking"]
    assert any(f.code == "masking" and f.evidence.get("masker") == "Synth Lead"
               for f in plan.track("Lead Vocal").findings)


def test_mild_overlaps_of_a_balanced_mix_need_nothing():
    plan, _ = _plan(_masking_session(0.0))
    assert not [m for m in plan.moves if m.code == "masking"], [m.finding.message for m in plan.moves]


def test_a_higher_priority_part_is_never_cut_so_a_lower_one_comes_through():
    # The same spectra with the roles swapped: the presence-heavy part is now the lead vocal.
    plan, _ = _plan(_masking_session(6.0), roles={"Synth Lead": "lead_vocal", "Lead Vocal": "synth_lead"})
    for move in plan.moves:
        if move.code == "masking":
            assert "Synth Lead" not in move.tracks, move.finding.message


# --- groups ---------------------------------------------------------------------------------------

def _kit(n=N):
    kick = _band(KICK, seed=11, pulse=5, depth_db=15)
    snare = _band({200: 0, 2500: 2, 5000: 0}, seed=12, pulse=10, depth_db=15)
    cymbals = _band(OVERHEAD, seed=13)
    return {"Kick In": stem(kick + 0.02 * snare, A - 6), "Snare Top": stem(snare + 0.02 * kick, A - 7),
            "OH L": stem(cymbals + 0.3 * kick + 0.4 * snare, A - 9), "OH R": stem(cymbals * 1.1 + 0.3 * kick + 0.35 * snare, A - 9)}


def test_the_mics_of_a_kit_are_one_source_and_never_carved_against_each_other():
    stems = {**_band_session(), **_kit()}
    plan, _ = _plan(stems)
    (kit,) = [g for g in plan.groups if "OH L" in g.members]
    assert {"Kick In", "Snare Top", "OH L", "OH R"} <= set(kit.members)
    for move in plan.moves:
        if move.code == "masking":
            ev = move.finding.evidence
            assert not ({ev["masked"], ev["cut"]} <= set(kit.members)), move.finding.message
    # Nothing lower in priority is cut so an overhead comes through.
    for move in plan.moves:
        if move.code == "masking":
            assert move.finding.evidence["masked"] != "OH L" and "Drums" not in move.finding.evidence["masked"] or \
                PROFILES[infer_role(move.tracks[0])].priority < 2


def test_a_roles_file_group_overrides_detection():
    stems = {**_band_session(), **_kit()}
    views, mix = session(stems)
    plan = build_plan(views, mix, PlanSettings(groups={"Overheads": ("OH L", "OH R"), "Kick": ("Kick In",)}))
    names = {g.name: g.members for g in plan.groups}
    assert names.get("Overheads") == ("OH L", "OH R") and "Kick" not in names  # a group of one is no group
    assert all("Kick In" not in g.members for g in plan.groups)


# --- sections, tails and markers -------------------------------------------------------------------

#: A pad whose lowest note is C3 (131 Hz): nothing of it below, as a 100 ms spectrum shows a note.
PAD_131 = {131: 0, 262: 2, 523: 0, 1047: -6}


def _no_skirt_below(spec: np.ndarray, hz: float, db_per_band: float = 30.0) -> np.ndarray:
    b = band(hz)
    out = spec.copy()
    out[:b] = spec[b] * 10.0 ** (-db_per_band * (b - np.arange(b)) / 10.0)
    return out


MARKERS = [("Verse 1", 0.0, 10.0), ("Chorus 1", 10.0, 20.0), ("Verse 2", 20.0, 30.0), ("Chorus 2", 30.0, 38.0),
           ("Outro", 38.0, 40.0)]


def test_a_vocal_down_in_both_choruses_is_raised_there_and_nowhere_else():
    stems = _band_session()
    dip = {(10.0, 20.0): -8.0, (30.0, 38.0): -8.0}
    # The vocal stops at 38 s; only its release tail (-30 dB) reaches into the outro.
    steady = envelope(N, on=[(0.0, 38.0)], seed=20)
    g = gain_to(steady[:, None] * shape(VOCAL), A, channels=1)  # the verses at the lead's target
    v = envelope(N, on=[(0.0, 38.0)], gain_db=dip, seed=20)
    v[380:384] = 10 ** (-3.0) * np.linspace(1, 0.1, 4)
    stems["Lead Vocal"] = stem(g * v[:, None] * shape(VOCAL), None, channels=1)
    plan, _ = _plan(stems, markers=MARKERS)
    (auto,) = _moves(plan, "automation", "Lead Vocal")
    gains = {g.name: g.gain_db for g in auto.sections}
    assert set(gains) == {"Chorus 1", "Chorus 2"}, gains
    assert all(6.0 <= g <= 10.0 for g in gains.values()), gains
    assert not _moves(plan, "fader", "Guitar") and not _moves(plan, "fader", "Keys"), "the band is not moved for it"


def test_a_section_with_only_a_release_tail_is_not_judged():
    stems = _band_session()
    v = envelope(N, on=[(0.0, 38.0)], seed=21)
    v[380:386] = 10 ** (-2.5) * np.linspace(1, 0.05, 6)
    stems["Lead Vocal"] = stem(v[:, None] * shape(VOCAL), A - 3.0103, channels=1)
    plan, _ = _plan(stems, markers=MARKERS)
    assert not _moves(plan, "automation"), [m.finding.message for m in plan.moves]


# --- corners and kinds ---------------------------------------------------------------------------------

def test_the_high_pass_corner_comes_from_the_lowest_sustained_partial_not_the_rumble():
    stems = _band_session()
    pad = _band(PAD_131, seed=30)
    rumble = np.outer(envelope(N, seed=31), shape({25: 3, 31.5: 0}, spread_db_per_band=14))
    stems["Pad"] = stem(pad + rumble, A - 12.0, correlation=0.6)
    plan, _ = _plan(stems)
    (hp,) = _moves(plan, "highpass", "Pad")
    assert 45.0 <= hp.band.freq_hz <= 111.0, hp.band
    assert hp.effects[0].after < hp.effects[0].before - 10.0


def test_kick_and_bass_are_carved_where_the_others_fundamental_lives():
    stems = _band_session()
    kick = _band(KICK, seed=40, pulse=5, depth_db=14)
    # The bass's notes at 100-250 Hz, with a boom right on the kick's fundamental.
    bass = envelope(N, seed=41)[:, None] * (shape({100: 4, 160: 2, 250: -2}) + shape({63: 3}, spread_db_per_band=12))
    stems["Kick"] = stem(kick, A - 5.0)
    stems["Bass"] = stem(bass, A - 4.0, channels=1)
    plan, _ = _plan(stems)
    cuts = [m for m in plan.moves if m.code == "masking" and set(m.tracks) <= {"Kick", "Bass"}]
    for m in cuts:
        assert 50.0 < m.band.freq_hz <= 130.0, m.band  # never at 40 Hz
    assert cuts, "the build-up on the kick's fundamental gets a cut"
    bass_cuts = [m for m in cuts if m.tracks == ("Bass",)]
    assert bass_cuts and 56.0 <= bass_cuts[0].band.freq_hz <= 80.0, "the bass gives way at the kick's fundamental"


@pytest.mark.parametrize("low, high, kind", [(-0.9, -0.3, "polarity"), (0.6, -0.8, "width")])
def test_an_inverted_channel_is_flipped_and_diffuse_anti_phase_content_is_narrowed(low, high, kind):
    stems = _band_session()
    corr = np.where(np.arange(len(shape(PAD))) <= band(200), low, high)
    stems["Pad"] = stem(_band(PAD, seed=50), A - 12.0, correlation=corr)
    plan, _ = _plan(stems)
    moves = [m for m in plan.moves if "Pad" in m.tracks and m.kind in ("polarity", "width")]
    assert [m.kind for m in moves] == [kind], [m.finding.message for m in moves]
    assert moves[0].effects[0].after > 0.0


def test_a_compressor_hears_the_signal_after_the_plans_eq():
    def vocal(rumble_db):
        # Phrases 2 s loud, 2 s quiet (12 dB apart): dynamics beyond the role.
        e = envelope(N, seed=60) * np.where((np.arange(N) // 20) % 2, 1.0, 10 ** -1.2)
        spec = shape(VOCAL)
        if rumble_db is not None:
            spec = spec + shape({25: rumble_db}, spread_db_per_band=14)
        return stem(e[:, None] * spec, A, channels=1)
    with_rumble, _ = _plan({**_band_session(), "Lead Vocal": vocal(10.0)})
    clean, _ = _plan({**_band_session(), "Lead Vocal": vocal(None)})
    (c1,) = _moves(with_rumble, "comp", "Lead Vocal")
    (c0,) = _moves(clean, "comp", "Lead Vocal")
    assert _moves(with_rumble, "highpass", "Lead Vocal"), "the rumble gets a high-pass"
    # The threshold comes from the filtered signal: the rumble the high-pass removes does not raise it.
    assert c1.comp.threshold_db == pytest.approx(c0.comp.threshold_db, abs=1.0)
    assert 2.0 <= c0.comp.ratio <= 6.0


def test_parts_with_ordinary_dynamics_get_no_compressor():
    plan, _ = _plan(_band_session(keys=9.0, bass=-6.0))
    assert not _moves(plan, "comp")


@pytest.mark.parametrize("name, role", [("Synth Arp", "synth"), ("Seq 2", "synth"), ("Pluck", "synth"),
                                        ("Stab", "synth"), ("Texture", "pad"), ("Room L", "room"),
                                        ("Tom 2", "toms"), ("BV 3", "backing_vocal"), ("Vox Dbl", "backing_vocal"),
                                        ("Lead Synth", "synth_lead"), ("Audio 07", "neutral")])
def test_role_names(name, role):
    assert infer_role(name) == role


def test_a_synth_arp_is_placed_as_an_arp_not_pushed_up_like_a_lead():
    stems = _band_session()
    stems["Synth Arp"] = stem(_band({1000: 0, 2000: 2, 4000: 0}, seed=70, pulse=2, depth_db=6), A - 12.0)
    plan, _ = _plan(stems)
    assert not _moves(plan, "fader", "Synth Arp"), [m.finding.message for m in plan.moves]
    assert plan.track("Synth Arp").role == "synth" and plan.track("Synth Arp").role_probability is None


def test_an_unnamed_part_gets_no_level_move():
    stems = _band_session()
    stems["Audio 07"] = stem(_band(KEYS, seed=71), A - 1.0)
    plan, _ = _plan(stems)
    track = plan.track("Audio 07")
    assert track.role == "neutral" and track.role_source == "inferred"
    assert not _moves(plan, "fader", "Audio 07") and not _moves(plan, "automation", "Audio 07")
    assert any(f.code == "too_loud" for f in track.findings)


def test_never_more_than_five_reaeq_bands_on_a_track():
    stems = _band_session()
    # A part loud everywhere the others live: many conflicts, one track.
    everything = _band({100: 0, 250: 2, 500: 2, 1000: 2, 2000: 2, 4000: 2, 8000: 0}, seed=80)
    rumble = np.outer(envelope(N, seed=81), shape({25: 6}, spread_db_per_band=14))
    stems["Keys"] = stem(everything + rumble, A + 2.0)
    plan, _ = _plan(stems)
    for t in plan.tracks:
        bands = {c.param.split("_")[0] for c in t.changes if c.target == "eq"}
        assert len(bands) <= MAX_EQ_BANDS, (t.name, bands)


# --- the fixed point, on fixtures ---------------------------------------------------------------------

def test_following_a_plan_on_fixtures_leaves_nothing_to_do():
    stems = _masking_session(6.0)
    stems["Keys"] = stem(_band(KEYS, seed=90), A - 8.0 + 9.0, correlation=0.7)
    pad = _band(PAD_131, seed=91) + np.outer(envelope(N, seed=92), shape({25: 3}, spread_db_per_band=14))
    stems["Pad"] = stem(pad, A - 12.0, correlation=0.6)
    first, views = _plan(stems)
    assert len(first.moves) >= 3
    second, _ = _plan(apply_plan(first, stems, views))
    assert plan_total_db(second) <= 0.15 * plan_total_db(first), [m.finding.message for m in second.moves]


# --- uneven parts: levelled, not ridden ------------------------------------------------------------

def _uneven_vocal(gains):
    steady = envelope(N, on=[(0.0, 38.0)], seed=70)
    g = gain_to(steady[:, None] * shape(VOCAL), A, channels=1)
    v = envelope(N, on=[(0.0, 38.0)], gain_db=gains, seed=70)
    return stem(g * v[:, None] * shape(VOCAL), None, channels=1)


def test_a_vocal_whose_repeated_sections_disagree_is_levelled_by_a_compressor_not_ridden():
    # Verse 1 at its place, verse 2 8 dB under it; chorus 1 8 dB under, chorus 2 3 dB over: the band
    # plays the repeats alike, so the swings are the performance's.
    swings = {(10.0, 20.0): -8.0, (20.0, 30.0): -8.0, (30.0, 38.0): 3.0}
    stems = {**_band_session(), "Lead Vocal": _uneven_vocal(swings)}
    plan, views = _plan(stems, markers=MARKERS)
    (comp,) = _moves(plan, "comp", "Lead Vocal")
    assert not _moves(plan, "automation", "Lead Vocal"), [m.finding.message for m in plan.moves]
    ev = comp.finding.evidence
    assert ev["swing_lu"] > 8.0 and ev["swing_kind"] in ("verse", "chorus"), ev
    swing = next(e for e in comp.effects if e.metric == "swing_lu")
    assert swing.after <= 4.0 - 1.0 + 1e-6, swing  # under the limit with the compressor's margin
    # Followed (by the planner's own prediction), the next pass asks for no second compressor and no ride.
    again, _ = _plan(apply_plan(plan, stems, views), markers=MARKERS)
    assert not _moves(again, "comp", "Lead Vocal") and not _moves(again, "automation", "Lead Vocal"), \
        [m.finding.message for m in again.moves]


def test_a_compressor_never_stops_short_of_its_target():
    # Phrases 2 s loud, 2 s 14 dB quieter: the usual thresholds sit above the quiet phrases, so only a
    # levelling threshold brings the spread under the ceiling with margin.
    e = envelope(N, seed=71) * np.where((np.arange(N) // 20) % 2, 1.0, 10 ** -1.4)
    stems = {**_band_session(), "Lead Vocal": stem(e[:, None] * shape(VOCAL), A, channels=1)}
    plan, views = _plan(stems)
    (comp,) = _moves(plan, "comp", "Lead Vocal")
    spread = next(e for e in comp.effects if e.metric == "spread_lu")
    assert spread.after <= PROFILES["lead_vocal"].spread_max_lu - 1.0 + 1e-6, comp.finding.message
    again, _ = _plan(apply_plan(plan, stems, views))
    assert not _moves(again, "comp", "Lead Vocal"), [m.finding.message for m in again.moves]
    # The level the compressor takes beyond ReaComp's +6 dB make-up comes back on the fader, and its
    # explanation says so (it is not a level fault of the part).
    (fader,) = _moves(plan, "fader", "Lead Vocal")
    assert "compressor takes" in fader.finding.message, fader.finding.message


# --- between stems: partner mics and split pairs -----------------------------------------------------

def _hits(t, every_s, freq_hz, tau_s, delay_s=0.0):
    """Decaying tone bursts (a drum's body) every ``every_s``, arriving ``delay_s`` late."""
    x = (t - delay_s) % every_s
    return np.where(t >= delay_s, np.exp(-x / tau_s) * np.sin(2 * np.pi * freq_hz * x), 0.0)


def test_an_inverted_snare_bottom_is_flipped_and_a_delayed_kick_out_is_not():
    from dataclasses import replace

    from bridge.analyze.polarity import signal_rate_hz
    stems = {**_band_session(), **_kit()}
    snare = _band({200: 0, 2500: 2, 5000: 0}, seed=12, pulse=10, depth_db=15)
    kick = _band(KICK, seed=11, pulse=5, depth_db=15)
    stems["Snare Bottom"] = stem(0.3 * snare + 0.02 * kick, A - 16)
    stems["Kick Out"] = stem(kick * 1.2 + 0.01 * snare, A - 6)
    rate = signal_rate_hz(48000)
    t = np.arange(int(N * 0.1 * rate)) / rate
    rng = np.random.default_rng(72)
    body = _hits(t, 1.0, 185.0, 0.08)
    thump = _hits(t, 0.5, 58.0, 0.1)
    low = {"Snare Top": body + 0.05 * thump, "Snare Bottom": -0.4 * _hits(t, 1.0, 185.0, 0.08, 0.0006) + 0.02 * thump,
           "Kick In": thump + 0.05 * body, "Kick Out": 0.9 * _hits(t, 0.5, 58.0, 0.1, 0.0012) + 0.02 * body}
    views, mix = session(stems)
    views = [replace(v, low_signal=(low[v.name] + 0.01 * rng.standard_normal(len(t))).astype(np.float16))
             if v.name in low else v for v in views]
    plan = build_plan(views, mix, PlanSettings())
    flips = _moves(plan, "polarity")
    assert [m.tracks for m in flips] == [("Snare Bottom",)], [m.finding.message for m in flips]
    (flip,) = flips
    assert flip.polarity == "both" and flip.code == "mic_polarity"
    ev = flip.finding.evidence
    assert ev["against"] == "Snare Top" and ev["correlation"] < -0.8 and ev["zero_lag_correlation"] < -0.2, ev
    assert 0.3 <= ev["lag_ms"] <= 0.9, ev
    assert "-0." in flip.finding.message and "Flip its polarity" in flip.finding.message
    # Flipped, the pair correlates positively: nothing is asked again.
    low["Snare Bottom"] = -low["Snare Bottom"]
    views = [replace(v, low_signal=low[v.name].astype(np.float16)) if v.name in low else v for v in views]
    assert not _moves(build_plan(views, mix, PlanSettings()), "polarity")


def test_the_halves_of_a_split_pair_are_panned_apart_and_left_there():
    stems = _band_session()
    gtr = _band(GUITAR, seed=80)
    stems.pop("Guitar")
    stems["Gtr L"] = stem(gtr, A - 12.0, channels=1)
    stems["Gtr R"] = stem(gtr * 1.1, A - 12.0, channels=1)
    plan, _ = _plan(stems)
    pans = {m.tracks[0]: m.pan for m in _moves(plan, "pan")}
    assert pans == {"Gtr L": -1.0, "Gtr R": 1.0}, [m.finding.message for m in plan.moves]
    change = next(c for c in plan.track("Gtr R").changes if c.param == "pan")
    assert (change.target, change.value) == ("track", 1.0)
    # Once panned (each half a stereo file with sound on its own side), nothing more: no pan, no fold.
    stems["Gtr L"] = stem(gtr, A - 12.0, correlation=0.0, balance=0.0)
    stems["Gtr R"] = stem(gtr * 1.1, A - 12.0, correlation=0.0, balance=1e9)
    again, _ = _plan(stems)
    assert not [m for m in again.moves if set(m.tracks) & {"Gtr L", "Gtr R"}], [m.finding.message for m in again.moves]
