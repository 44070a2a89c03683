"""General MIDI programs mapped to MixBridge roles (``bridge.suggest.roles``) and finer labels, by family.

The role is always one of MixBridge's roles; the label is finer (``piano``, ``strings``, ``arp``)
and is what a learned recogniser may want as its class.  Voice programs are vocal *proxies*.
"""
from __future__ import annotations

from bridge.suggest import roles as R

#: (first program, last program, role, label) — GM Level 1 families, some split by sound.
FAMILIES: tuple[tuple[int, int, str, str], ...] = (
    (0, 7, R.KEYS, "piano"),            # acoustic/electric pianos, harpsichord, clavinet
    (8, 15, R.KEYS, "mallets"),         # celesta, glockenspiel, music box, vibraphone, marimba, ...
    (16, 23, R.KEYS, "organ"),
    (24, 31, R.GUITAR, "guitar"),
    (32, 39, R.BASS, "bass"),
    (40, 44, R.PAD, "strings"),         # violin .. tremolo strings
    (45, 45, R.KEYS, "pluck"),          # pizzicato strings
    (46, 46, R.KEYS, "pluck"),          # harp
    (47, 47, R.DRUMS, "percussion"),    # timpani
    (48, 51, R.PAD, "strings"),         # string ensembles, synth strings
    (52, 54, R.BACKING_VOCAL, "voice_proxy"),  # choir aahs, voice oohs, synth voice
    (55, 55, R.FX, "stab"),             # orchestra hit
    (56, 60, R.SYNTH_LEAD, "brass_solo"),  # trumpet, trombone, tuba, muted trumpet, french horn
    (61, 63, R.KEYS, "brass"),          # brass section, synth brass
    (64, 71, R.SYNTH_LEAD, "reed"),
    (72, 79, R.SYNTH_LEAD, "pipe"),
    (80, 87, R.SYNTH_LEAD, "synth_lead"),
    (88, 95, R.PAD, "pad"),
    (96, 103, R.FX, "texture"),
    (104, 107, R.GUITAR, "pluck"),      # sitar, banjo, shamisen, koto
    (108, 108, R.KEYS, "mallets"),      # kalimba
    (109, 111, R.SYNTH_LEAD, "reed"),   # bagpipe, fiddle, shanai
    (112, 118, R.DRUMS, "percussion"),
    (119, 119, R.FX, "riser"),          # reverse cymbal
    (120, 127, R.FX, "sfx"),
)


def gm_role(program: int) -> tuple[str, str]:
    """``(role, label)`` of a GM program 0..127.

    Examples
    --------
    >>> gm_role(0), gm_role(33), gm_role(89)
    (('keys', 'piano'), ('bass', 'bass'), ('pad', 'pad'))
    """
    for first, last, role, label in FAMILIES:
        if first <= program <= last:
            return role, label
    raise ValueError(f"GM program {program} is outside 0..127")
