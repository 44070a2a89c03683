"""Stem roles, inferred from names like ``Lead_Vocal_Main`` or ``Bass_DI_Clean``.

A role decides which moves a stem can get, its level relative to the mix's anchor, its masking
priority, its high-pass range, its compression style and its expected width.  Unknown names get
the neutral role: findings, but no role-specific moves.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

KICK, SNARE, HATS, DRUMS = "kick", "snare", "hats", "drums"
BASS, LEAD_VOCAL, BACKING_VOCAL = "bass", "lead_vocal", "backing_vocal"
GUITAR, KEYS, PAD, SYNTH_LEAD, FX, NEUTRAL = "guitar", "keys", "pad", "synth_lead", "fx", "neutral"
ROLES = (KICK, SNARE, HATS, DRUMS, BASS, LEAD_VOCAL, BACKING_VOCAL, GUITAR, KEYS, PAD, SYNTH_LEAD, FX, NEUTRAL)


@dataclass(frozen=True, slots=True)
class RoleProfile:
    """What a role implies for the rules.  Levels are integrated-loudness offsets in LU.

    Attributes
    ----------
    offset_lu : float
        Target loudness relative to the lead vocal (0 for the vocal itself).
    priority : int
        Masking priority; the lower-priority stem of a conflict gets the cut.
    highpass_hz : tuple of float or None
        Allowed high-pass corner range; ``None`` for bass-range roles (never high-passed).
    lra_max_lu, crest_max_db : float or None
        Dynamics beyond which a compressor starting point is suggested (``None``: not judged).
    attack_ms, release_ms : float
        Compressor starting times for the role.
    centre : bool
        Expected near mono and centred (kick, snare, bass, lead vocal).
    steady : bool
        Expected to keep a steady level against the mix across sections.
    """

    offset_lu: float
    priority: int
    highpass_hz: tuple[float, float] | None
    lra_max_lu: float | None
    crest_max_db: float | None
    attack_ms: float
    release_ms: float
    centre: bool
    steady: bool


#: Role table.  Offsets are common pop/rock starting balances against the lead vocal; they are
#: configurable (``[tool.mixbridge.role_offsets]``) and documented in docs/suggestions.md.
PROFILES: dict[str, RoleProfile] = {
    LEAD_VOCAL: RoleProfile(0.0, 10, (70.0, 120.0), 6.0, None, 10.0, 100.0, True, True),
    BASS: RoleProfile(-3.0, 8, None, 5.0, None, 15.0, 150.0, True, True),
    KICK: RoleProfile(-3.0, 8, None, None, 22.0, 25.0, 60.0, True, False),
    SNARE: RoleProfile(-4.0, 7, (50.0, 100.0), None, 24.0, 20.0, 80.0, True, False),
    SYNTH_LEAD: RoleProfile(-5.0, 6, (40.0, 120.0), 7.0, None, 10.0, 100.0, False, False),
    BACKING_VOCAL: RoleProfile(-7.0, 5, (90.0, 160.0), 6.0, None, 10.0, 120.0, False, True),
    DRUMS: RoleProfile(-8.0, 5, (30.0, 60.0), None, 24.0, 30.0, 100.0, False, False),
    GUITAR: RoleProfile(-6.0, 4, (70.0, 120.0), 8.0, None, 15.0, 120.0, False, False),
    KEYS: RoleProfile(-7.0, 4, (30.0, 80.0), 9.0, None, 20.0, 150.0, False, False),
    PAD: RoleProfile(-10.0, 3, (30.0, 100.0), None, None, 30.0, 300.0, False, False),
    HATS: RoleProfile(-14.0, 3, (150.0, 400.0), None, None, 5.0, 60.0, False, False),
    FX: RoleProfile(-14.0, 2, (30.0, 120.0), None, None, 10.0, 200.0, False, False),
    NEUTRAL: RoleProfile(-6.0, 3, None, None, None, 15.0, 120.0, False, False),
}

#: How a role reads in a sentence ("... -6 LU for a guitar part").
LABELS = {KICK: "kick", SNARE: "snare", HATS: "hats/cymbals part", DRUMS: "drum bus/overheads",
          BASS: "bass", LEAD_VOCAL: "lead vocal", BACKING_VOCAL: "backing vocal", GUITAR: "guitar part",
          KEYS: "keys part", PAD: "pad", SYNTH_LEAD: "synth lead", FX: "FX part", NEUTRAL: "part of unknown role"}

# Keyword table, checked in order: the first role with a matching word wins.  Order matters:
# "bass drum" is a kick, "synth pad" a pad, "vocal double" a backing vocal.
_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    (KICK, ("kick", "kik", "bd", "bassdrum", "kck")),
    (SNARE, ("snare", "snr", "sd", "rimshot", "rim", "clap")),
    (HATS, ("hat", "hats", "hihat", "hh", "cymbal", "cymbals", "cym", "ride", "crash", "shaker", "tamb",
            "tambourine", "perc", "percussion")),
    (DRUMS, ("oh", "overhead", "overheads", "ohs", "room", "rooms", "drums", "drum", "kit", "tom", "toms",
             "drumbus", "drm")),
    (BACKING_VOCAL, ("bv", "bvs", "bgv", "bgvs", "backing", "backings", "bkg", "harmony", "harmonies", "harm",
                     "choir", "double", "dbl", "adlib", "adlibs", "chorus_vox", "backs", "bg")),
    (LEAD_VOCAL, ("vocal", "vocals", "vox", "voc", "vx", "lv", "leadvox", "singer", "voice")),
    (BASS, ("bass", "sub", "808", "bs", "subbass", "bassdi")),
    (PAD, ("pad", "pads", "strings", "string", "str", "violin", "violins", "viola", "cello", "celli",
           "orch", "orchestra", "ensemble")),
    (GUITAR, ("gtr", "guitar", "guitars", "gt", "egtr", "agtr", "acoustic", "electric", "riff")),
    (KEYS, ("keys", "key", "piano", "pno", "rhodes", "wurli", "wurlitzer", "organ", "ep", "clav", "keyboard",
            "keyboards")),
    (SYNTH_LEAD, ("synth", "syn", "lead", "arp", "pluck", "saw", "seq")),
    (FX, ("fx", "sfx", "riser", "risers", "impact", "sweep", "noise", "reverse", "verb", "reverb", "delay",
          "atmo", "atmos", "whoosh", "uplifter", "downlifter")),
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
    """
    tokens = words(name)
    joined = "".join(tokens)
    pairs = {a + b for a, b in zip(tokens, tokens[1:])}
    for role, keys in _KEYWORDS:
        for key in keys:
            if key in tokens or key in pairs:
                return role
    # Whole-name fallbacks for glued names such as "leadvocal" or "overheadsL".
    for role, keys in _KEYWORDS:
        if any(len(key) >= 4 and key in joined for key in keys):
            return role
    return NEUTRAL
