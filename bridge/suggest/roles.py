"""Stem roles, inferred from names like ``Lead_Vocal_Main``, ``Bass_DI_Clean`` or ``OH L``.

A role decides a stem's target level against the mix's anchor, its masking priority, whether it
may be high-passed, how much short-term dynamics it may have before a compressor helps, its
expected stereo image and whether it should keep a steady place against the band across sections.
A name that says nothing (``Audio 07``) gets the neutral role: findings, but no role-specific
moves.  The role that a name suggests is recorded with ``role_source`` ``"inferred"``; a roles
file or config says ``"roles file"`` / ``"config"``.  A learned, heard role may be added later
with its own source and a probability (``StemView.role_probability``); nothing here guesses one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

KICK, SNARE, TOMS, HATS, OVERHEADS, ROOM, DRUMS = "kick", "snare", "toms", "hats", "overheads", "room", "drums"
BASS, LEAD_VOCAL, BACKING_VOCAL = "bass", "lead_vocal", "backing_vocal"
GUITAR, KEYS, PAD, SYNTH, HORNS = "guitar", "keys", "pad", "synth", "horns"
SYNTH_LEAD, LEAD_INSTRUMENT, FX, NEUTRAL = "synth_lead", "lead_instrument", "fx", "neutral"
ROLES = (KICK, SNARE, TOMS, HATS, OVERHEADS, ROOM, DRUMS, BASS, LEAD_VOCAL, BACKING_VOCAL, GUITAR, KEYS, PAD,
         SYNTH, HORNS, SYNTH_LEAD, LEAD_INSTRUMENT, FX, NEUTRAL)
#: Roles that are parts of one acoustic drum kit (grouped together when the kit was miked as one).
DRUM_KIT = (KICK, SNARE, TOMS, HATS, OVERHEADS, ROOM, DRUMS)


@dataclass(frozen=True, slots=True)
class RoleProfile:
    """What a role implies for the planner.  Levels are integrated-loudness offsets in LU.

    Attributes
    ----------
    offset_lu : float
        Target loudness relative to the lead vocal (0 for the vocal itself).
    priority : int
        Masking priority, 1 (least) .. 10 (lead vocal): a part is protected only from parts of
        lower priority (equal priorities protect each other, as kick and bass do).
    highpass : bool
        May get a high-pass (its corner always comes from its own content).  Bass-range parts
        may too, but only against rumble far below their lowest partial.
    bass_range : bool
        Its body lives below 120 Hz (kick, bass, toms): rumble is judged more leniently.
    spread_max_lu : float or None
        Within-section short-term dynamics (P95 - P10 of momentary loudness, LU) beyond which a
        compressor is worth considering; ``None``: never compressed by the planner.
    attack_ms, release_ms : float
        Compressor starting times for the role.
    centre : bool
        Expected near mono and centred (kick, snare, bass, lead vocal).
    steady : bool
        Expected to keep a steady place against the band across sections (section automation).
    """

    offset_lu: float
    priority: int
    highpass: bool
    bass_range: bool
    spread_max_lu: float | None
    attack_ms: float
    release_ms: float
    centre: bool
    steady: bool


#: Role table.  Offsets are common pop/rock starting balances against the lead vocal (ours; they
#: are configurable in ``[role_offsets]``); priorities follow how engineers protect parts: the
#: lead vocal, then kick and bass, snare, other leads, harmonic beds, overheads/rooms/FX last.
PROFILES: dict[str, RoleProfile] = {
    LEAD_VOCAL: RoleProfile(0.0, 10, True, False, 14.0, 10.0, 100.0, True, True),
    KICK: RoleProfile(-3.0, 8, True, True, None, 25.0, 60.0, True, False),
    BASS: RoleProfile(-3.0, 8, True, True, 12.0, 15.0, 150.0, True, True),
    SNARE: RoleProfile(-4.0, 7, True, False, None, 20.0, 80.0, True, False),
    SYNTH_LEAD: RoleProfile(-5.0, 6, True, False, 14.0, 10.0, 100.0, False, False),
    LEAD_INSTRUMENT: RoleProfile(-5.0, 6, True, False, 14.0, 15.0, 120.0, False, False),
    BACKING_VOCAL: RoleProfile(-7.0, 5, True, False, 14.0, 10.0, 120.0, False, True),
    TOMS: RoleProfile(-6.0, 5, True, True, None, 20.0, 80.0, False, False),
    GUITAR: RoleProfile(-6.0, 4, True, False, 15.0, 15.0, 120.0, False, False),
    KEYS: RoleProfile(-7.0, 4, True, False, 15.0, 20.0, 150.0, False, False),
    SYNTH: RoleProfile(-8.0, 4, True, False, None, 10.0, 100.0, False, False),
    HORNS: RoleProfile(-7.0, 4, True, False, 15.0, 15.0, 120.0, False, False),
    PAD: RoleProfile(-10.0, 3, True, False, None, 30.0, 300.0, False, False),
    HATS: RoleProfile(-14.0, 3, True, False, None, 5.0, 60.0, False, False),
    DRUMS: RoleProfile(-6.0, 5, True, False, None, 30.0, 100.0, False, False),
    OVERHEADS: RoleProfile(-9.0, 2, True, False, None, 30.0, 100.0, False, False),
    ROOM: RoleProfile(-13.0, 1, True, False, None, 30.0, 100.0, False, False),
    FX: RoleProfile(-14.0, 1, True, False, None, 10.0, 200.0, False, False),
    NEUTRAL: RoleProfile(-6.0, 3, False, False, None, 15.0, 120.0, False, False),
}

#: How a role reads in a sentence ("... -6 LU for a guitar part").
LABELS = {KICK: "kick", SNARE: "snare", TOMS: "tom", HATS: "hats/cymbals/percussion part",
          OVERHEADS: "overhead pair", ROOM: "room mic", DRUMS: "drum bus", BASS: "bass",
          LEAD_VOCAL: "lead vocal", BACKING_VOCAL: "backing vocal/double", GUITAR: "guitar part",
          KEYS: "keys part", PAD: "pad/texture", SYNTH: "synth part (arp, sequence, pluck, stab)",
          HORNS: "horn/wind part", SYNTH_LEAD: "synth lead", LEAD_INSTRUMENT: "lead instrument",
          FX: "FX part", NEUTRAL: "part of unknown role"}

# Keyword table, checked in order: the first role with a matching word wins.  Order matters:
# "bass drum" is a kick, "synth bass" a bass, "synth pad" a pad, "vocal double" a backing vocal,
# "synth arp" a synth part (not a lead), "lead synth" a synth lead, "gtr solo" a lead instrument.
_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    (KICK, ("kick", "kik", "bd", "bassdrum", "kck", "kickin", "kickout")),
    (SNARE, ("snare", "snr", "sd", "rimshot", "rim", "clap", "snaretop", "snarebottom")),
    (TOMS, ("tom", "toms", "tom1", "tom2", "tom3", "floortom", "racktom", "hitom", "lotom", "midtom")),
    (OVERHEADS, ("oh", "ohs", "overhead", "overheads", "ohl", "ohr")),
    (ROOM, ("room", "rooms", "amb", "ambience", "roommic", "trash")),
    (HATS, ("hat", "hats", "hihat", "hh", "cymbal", "cymbals", "cym", "ride", "crash", "china", "splash",
            "shaker", "tamb", "tambourine", "perc", "percussion", "conga", "congas", "bongo", "bongos",
            "cowbell", "cabasa", "triangle", "woodblock", "timbale", "timbales", "clave", "claves")),
    (DRUMS, ("drums", "drum", "kit", "drumbus", "drm", "drumkit")),
    (BACKING_VOCAL, ("bv", "bvs", "bgv", "bgvs", "backing", "backings", "bkg", "harmony", "harmonies", "harm",
                     "choir", "double", "dbl", "doubles", "adlib", "adlibs", "chorus_vox", "backs", "bg", "oohs",
                     "aahs", "gang")),
    (LEAD_VOCAL, ("vocal", "vocals", "vox", "voc", "vx", "lv", "leadvox", "singer", "voice", "leadvocal")),
    (BASS, ("bass", "sub", "808", "bs", "subbass", "bassdi", "basssynth", "synthbass", "contrabass",
            "upright", "bassamp")),
    (PAD, ("pad", "pads", "strings", "string", "str", "violin", "violins", "viola", "violas", "cello", "cellos",
           "celli", "orch", "orchestra", "ensemble", "texture", "textures", "drone", "swell", "bed")),
    (LEAD_INSTRUMENT, ("solo", "leadgtr", "leadguitar", "gtrlead", "guitarlead", "gtrsolo")),
    (GUITAR, ("gtr", "guitar", "guitars", "gt", "egtr", "agtr", "acoustic", "electric", "riff", "banjo",
              "mandolin", "ukulele", "uke", "sitar", "dobro", "pedalsteel")),
    (KEYS, ("keys", "key", "piano", "pno", "rhodes", "wurli", "wurlitzer", "organ", "ep", "clav", "keyboard",
            "keyboards", "harpsichord", "celesta", "vibes", "vibraphone", "marimba", "glock", "glockenspiel",
            "xylophone", "bells", "harp", "accordion", "mallets", "clavinet", "hammond", "b3")),
    (HORNS, ("horn", "horns", "brass", "sax", "saxophone", "trumpet", "trumpets", "tpt", "trombone", "tbn",
             "flute", "flutes", "clarinet", "oboe", "bassoon", "woodwind", "woodwinds", "winds", "tuba", "harmonica")),
    (SYNTH_LEAD, ("leadsynth", "synthlead", "lead")),
    (SYNTH, ("synth", "synths", "syn", "arp", "arps", "arpeggio", "pluck", "plucks", "seq", "sequence",
             "sequencer", "stab", "stabs", "saw", "chiptune", "bleep")),
    (FX, ("fx", "sfx", "riser", "risers", "impact", "sweep", "noise", "reverse", "verb", "reverb", "delay",
          "atmo", "atmos", "whoosh", "uplifter", "downlifter", "foley")),
]

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")


def words(name: str) -> list[str]:
    """Lower-case words of a stem name: split on separators, camelCase and digit boundaries."""
    spaced = _CAMEL.sub(" ", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def infer_role(name: str) -> str:
    """The role a stem name suggests, or :data:`NEUTRAL`.

    Examples
    --------
    >>> infer_role("Lead_Vocal_Main"), infer_role("Bass_DI_Clean"), infer_role("Bass Drum In")
    ('lead_vocal', 'bass', 'kick')
    >>> infer_role("Synth Arp"), infer_role("Lead Synth"), infer_role("Gtr Solo")
    ('synth', 'synth_lead', 'lead_instrument')
    """
    tokens = words(name)
    joined = "".join(tokens)
    pairs = {a + b for a, b in zip(tokens, tokens[1:])}
    # "Lead" qualifies the instrument it sits next to: a lead vocal is a vocal, a lead guitar a
    # lead instrument, a lead synth a synth lead; only a bare "lead" is taken as a synth lead.
    if "lead" in tokens:
        rest = [t for t in tokens if t != "lead"]
        qualified = infer_role(" ".join(rest)) if rest else NEUTRAL
        if qualified in (LEAD_VOCAL, BACKING_VOCAL, BASS, KICK, SNARE, TOMS, PAD, FX):
            return qualified
        if qualified in (GUITAR, KEYS, HORNS):
            return LEAD_INSTRUMENT
        return SYNTH_LEAD
    for role, keys in _KEYWORDS:
        for key in keys:
            if key in tokens or key in pairs:
                return role
    # Whole-name fallbacks for glued names such as "leadvocal" or "overheadsL".
    for role, keys in _KEYWORDS:
        if any(len(key) >= 4 and key in joined for key in keys):
            return role
    return NEUTRAL


def label(role: str) -> str:
    """A role as it reads in a sentence."""
    return LABELS.get(role, role.replace("_", " "))
