"""Source groups: stems that are parts of one source.  Pure.

A multi-mic drum kit (kick in/out, snare top/bottom, toms, overheads, rooms), a double, an L/R
pair, stems sharing a name stem ("Gtr L" / "Gtr R", "Bass DI" / "Bass Amp", "BV 1" / "BV 2") are
one source: the planner makes no masking moves between them, judges their sum as what masks or is
masked, and gives the group one level target (the combination of its distinct roles).  Balance
within the group is left to the producer.

Groups come from, in order:

1. the roles file's ``[groups]`` table (source ``"roles file"``/``"config"``): stems named there are
   taken out of automatic grouping;
2. names: the same name once position, mic and take words are removed ("L", "R", "In", "Out",
   "Top", "Bottom", "Close", "DI", "Amp", "Dbl", numbers, ...), among compatible roles;
3. a multi-mic kit: when overhead or room mics are present, every stem of a kit role (kick, snare,
   toms, overheads, room) joins the kit; hats/percussion and unnamed stems join when their band
   envelopes follow the kit's (bleed);
4. bleed between other stems of the same role (a double played with the part).

Bleed is measured as the median over shared bands of the correlation between two stems' per-frame
log band energies (frames where either is active): a mic that hears the same source rises and falls
with it in every band; two instruments that merely play together do not.
"""
from __future__ import annotations

import re

import numpy as np

from .model import Group, StemView
from .roles import (BACKING_VOCAL, DRUM_KIT, DRUMS, HATS, KICK, LEAD_VOCAL, NEUTRAL, OVERHEADS, ROOM, SNARE, TOMS,
                    words)

#: Words that name a mic, side, take or position, not the source.
POSITION_WORDS = frozenset({
    "l", "r", "left", "right", "lt", "rt", "lft", "rgt", "in", "out", "inside", "outside", "top", "bottom", "bot",
    "btm", "up", "down", "under", "over", "close", "far", "near", "di", "amp", "mic", "mics", "dbl", "double",
    "doubled", "main", "alt", "take", "tk", "a", "b", "c", "d", "mono", "st", "stereo", "wide", "dry", "wet",
    "front", "back", "rear", "hi", "lo", "high", "low", "sub", "pair", "ch", "chan", "comp", "print",
})
#: Bleed: median band-envelope correlation at or above which two stems hear one source.
BLEED_CORRELATION = 0.6
#: ... measured over at least this many bands where both carry energy.
BLEED_MIN_BANDS = 4
#: Roles that may share a name group: equal roles, kit roles, or a lead vocal with its doubles.
_VOCALS = (LEAD_VOCAL, BACKING_VOCAL)
_KIT_MICS = (KICK, SNARE, TOMS, OVERHEADS, ROOM)


def name_stem(name: str) -> str:
    """The source part of a stem name: lower-case words without position/mic/take words and numbers."""
    kept = [w for w in words(name) if w not in POSITION_WORDS and not re.fullmatch(r"\d+", w)]
    return " ".join(kept)


def _compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    if a in DRUM_KIT and b in DRUM_KIT:
        return True
    if a in _VOCALS and b in _VOCALS:
        return True
    return NEUTRAL in (a, b)


def band_envelope_correlation(a: StemView, b: StemView) -> tuple[float | None, int]:
    """Median over shared bands of the correlation of per-frame log band energies, and the band count.

    Frames where either stem is active count; bands where both hold energy within 40 dB of their
    own loudest band.
    """
    if a.band_power is None or b.band_power is None or a.analysis is None or b.analysis is None:
        return None, 0
    n = min(len(a.band_power), len(b.band_power), len(a.analysis.active), len(b.analysis.active))
    if n < 20:
        return None, 0
    frames = a.analysis.active[:n] | b.analysis.active[:n]
    if frames.sum() < 20:
        return None, 0
    ea = np.asarray(a.band_power[:n][frames], dtype=np.float64)
    eb = np.asarray(b.band_power[:n][frames], dtype=np.float64)
    ma, mb = ea.mean(axis=0), eb.mean(axis=0)
    shared = (ma > ma.max() * 1e-4) & (mb > mb.max() * 1e-4)
    if shared.sum() < BLEED_MIN_BANDS:
        return None, int(shared.sum())
    la = 10.0 * np.log10(np.maximum(ea[:, shared], 1e-20))
    lb = 10.0 * np.log10(np.maximum(eb[:, shared], 1e-20))
    la -= la.mean(axis=0)
    lb -= lb.mean(axis=0)
    den = np.sqrt((la * la).sum(axis=0) * (lb * lb).sum(axis=0))
    corr = np.where(den > 0, (la * lb).sum(axis=0) / np.maximum(den, 1e-30), 0.0)
    return float(np.median(corr)), int(shared.sum())


def detect_groups(stems: list[StemView], configured: dict[str, tuple[str, ...]] | None = None,
                  configured_source: str = "roles file") -> list[Group]:
    """Source groups of a session (groups of two or more; lone stems are not listed).

    Parameters
    ----------
    stems : list of StemView
    configured : dict, optional
        Group name -> member names from the roles file; members are taken out of automatic grouping
        (a group of one keeps a stem alone).
    configured_source : str
        Recorded as the configured groups' source.
    """
    present = {s.name for s in stems}
    groups: list[Group] = []
    taken: set[str] = set()
    for gname, members in sorted((configured or {}).items()):
        chosen = tuple(m for m in members if m in present)
        taken.update(members)
        if len(chosen) >= 2:
            groups.append(Group(gname, chosen, configured_source))
    free = [s for s in stems if s.name not in taken and s.analysis is not None and not s.analysis.faults.silent]

    # A multi-mic kit: overheads or rooms present.
    kit_mics = [s for s in free if s.role in _KIT_MICS]
    has_ambient = any(s.role in (OVERHEADS, ROOM) for s in free)
    kit: list[StemView] = []
    evidence: dict[str, float] = {}
    if has_ambient and len(kit_mics) >= 2:
        kit = list(kit_mics)
        ambient = [s for s in kit if s.role in (OVERHEADS, ROOM)]
        for s in free:
            if s in kit or s.role not in (HATS, DRUMS, NEUTRAL):
                continue
            scores = [band_envelope_correlation(s, a) for a in ambient]
            best = max((c for c, n in scores if c is not None and n >= BLEED_MIN_BANDS), default=None)
            if best is not None and best >= BLEED_CORRELATION:
                kit.append(s)
                evidence[s.name] = round(best, 2)
    else:
        # No ambient mics: close mics that bleed into each other are still one kit.
        drums = [s for s in free if s.role in DRUM_KIT]
        linked = set()
        for i, a in enumerate(drums):
            for b in drums[i + 1:]:
                c, n = band_envelope_correlation(a, b)
                if c is not None and n >= BLEED_MIN_BANDS and c >= BLEED_CORRELATION + 0.1:
                    linked.update((a.name, b.name))
                    evidence[f"{a.name}|{b.name}"] = round(c, 2)
        kit = [s for s in drums if s.name in linked]
    if len(kit) >= 2:
        names = tuple(s.name for s in stems if s in kit)
        groups.append(Group("Drums" if "Drums" not in {g.name for g in groups} else "Drum kit", names,
                            "bleed" if not has_ambient else "names", {"bleed_correlation": evidence}))
        taken.update(names)

    # Name stems among compatible roles.
    by_stem: dict[str, list[StemView]] = {}
    for s in free:
        if s.name in taken:
            continue
        key = name_stem(s.name)
        if key:
            by_stem.setdefault(key, []).append(s)
    for key in sorted(by_stem):
        members = by_stem[key]
        if len(members) < 2:
            continue
        roles = [m.role for m in members]
        if not all(_compatible(a, b) for a in roles for b in roles):
            continue
        names = tuple(m.name for m in stems if m in members)
        groups.append(Group(_title(key, names), names, "names", {"name_stem": key}))
        taken.update(names)

    # Doubles by bleed: same role, envelopes that move together.
    rest = [s for s in free if s.name not in taken and s.role not in (NEUTRAL,) + DRUM_KIT]
    used: set[str] = set()
    for i, a in enumerate(rest):
        if a.name in used:
            continue
        mates = [a]
        for b in rest[i + 1:]:
            if b.name in used or not _compatible(a.role, b.role) or NEUTRAL in (a.role, b.role):
                continue
            c, n = band_envelope_correlation(a, b)
            if c is not None and n >= BLEED_MIN_BANDS and c >= 0.85:
                mates.append(b)
        if len(mates) >= 2:
            names = tuple(m.name for m in stems if m in mates)
            used.update(names)
            groups.append(Group(_title(name_stem(a.name) or a.name, names), names, "bleed", {}))
    return groups


def _title(key: str, names: tuple[str, ...]) -> str:
    return " ".join(w.capitalize() for w in key.split()) or names[0]
