"""Hydrogen drumkits (Debian's ``hydrogen-drumkits``): parse ``drumkit.xml``, classify instruments into
kit pieces, pick velocity layers and load samples at 48 kHz.

Two ``drumkit.xml`` dialects exist in the package: the old one (``<filename>`` directly in an
``<instrument>``) and the layered one (``<layer>`` elements with ``min``/``max`` velocity and
``gain``), with or without the ``http://www.hydrogen-music.org/drumkit`` namespace.  Both are read.
Samples are FLAC, WAV or AIFF, mono or stereo, 22.05/44.1/48 kHz, 8/16/24-bit: all read with
soundfile and resampled (polyphase) to the session rate.
"""
from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from .soundfonts import MaterialError

DRUMKIT_DIR = Path("/usr/share/hydrogen/data/drumkits")
#: Acoustic kits with at least kick, snare and hats: the ones a multi-mic recording makes sense for.
ACOUSTIC_KITS = ("ColomboAcousticDrumkit", "Millo-Drums_v.1", "Millo_MultiLayered2", "Millo_MultiLayered3",
                 "BJA_Pacific", "The Black Pearl 1.0", "rumpf_kit_z01_h2", "ForzeeStereo")

#: Physical drums of a kit (what the mics are placed around).
PIECES = ("kick", "snare", "hats", "tom1", "tom2", "floor", "ride", "crash")


@dataclass(frozen=True, slots=True)
class Layer:
    path: Path
    min_velocity: float
    max_velocity: float
    gain: float


@dataclass(frozen=True, slots=True)
class Instrument:
    """One Hydrogen instrument and what it is on a kit: ``piece`` (PIECES) and ``articulation``."""

    name: str
    piece: str | None
    articulation: str
    volume: float
    gain: float
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class Kit:
    name: str
    folder: Path
    instruments: tuple[Instrument, ...]

    def pieces(self) -> tuple[str, ...]:
        """The physical pieces this kit has samples for (in :data:`PIECES` order)."""
        have = {i.piece for i in self.instruments if i.piece}
        return tuple(p for p in PIECES if p in have)

    def find(self, piece: str, articulation: str) -> Instrument | None:
        """The instrument for a piece and articulation, falling back sensibly (open hat -> closed)."""
        fallbacks = {"open": ("open", "semi", "closed"), "semi": ("semi", "open", "closed"),
                     "pedal": ("pedal", "closed"), "closed": ("closed", "pedal"), "bell": ("bell", "bow"),
                     "bow": ("bow", "bell"), "rim": ("rim", "hit"), "hit": ("hit", "china")}
        for art in fallbacks.get(articulation, (articulation, "hit")):
            for inst in self.instruments:
                if inst.piece == piece and inst.articulation == art:
                    return inst
        for inst in self.instruments:
            if inst.piece == piece:
                return inst
        return None


_RULES: list[tuple[str, str, str]] = [
    # (regex on the lower-cased name, piece, articulation); first match wins
    (r"kick|bass ?drum|\bbd\b", "kick", "hit"),
    (r"snare.*(roll)", "", ""),
    (r"rimshot|rim shot", "snare", "rim"),
    (r"side ?stick|\bstick\b|rim click|cross ?stick", "", ""),
    (r"snare", "snare", "hit"),
    (r"(hi-?hat|\bhh\b|\bhat\b).*(pedal)|pedal hh|hh pedal", "hats", "pedal"),
    (r"(hi-?hat|\bhh\b|\bhat\b).*(semi)", "hats", "semi"),
    (r"(hi-?hat|\bhh\b|\bhat\b).*(open|opened|free|swish)|open hh", "hats", "open"),
    (r"(hi-?hat|\bhh\b|\bhat\b).*(choke)", "", ""),
    (r"hi-?hat|\bhh\b|\bhat\b", "hats", "closed"),
    (r"floor|tom ?low|low tom|tom 3|tom3", "floor", "hit"),
    (r"tom ?mid|middle tom|mid tom|tom 2|tom2", "tom2", "hit"),
    (r"tom ?hi|high tom|tom high|tom 1|tom1|^tom$|pearl tom 1", "tom1", "hit"),
    (r"ride.*(bell|cup)|crash/ride bell", "ride", "bell"),
    (r"ride", "ride", "bow"),
    (r"china|splash", "crash", "china"),
    (r"crash", "crash", "hit"),
]


def classify(name: str) -> tuple[str | None, str]:
    """``(piece, articulation)`` for a Hydrogen instrument name (``(None, "")`` when it is not a kit piece).

    Examples
    --------
    >>> classify("Kick (Tama Superstar 22\\")"), classify("Sabian Hat Pedal"), classify("Pearl Tom Floor")
    (('kick', 'hit'), ('hats', 'pedal'), ('floor', 'hit'))
    """
    lowered = re.sub(r"^[a-g]#?\d+ - ", "", name.lower())  # rumpf's "c3 - bass drum 1"
    for pattern, piece, articulation in _RULES:
        if re.search(pattern, lowered):
            return (piece or None, articulation)
    return None, ""


def _text(el, tag: str, ns: str, default: str = "") -> str:
    found = el.find(ns + tag)
    return found.text.strip() if found is not None and found.text else default


def _float(el, tag: str, ns: str, default: float) -> float:
    try:
        return float(_text(el, tag, ns, str(default)))
    except ValueError:
        return default


def available_kits() -> tuple[str, ...]:
    """Every kit folder with a ``drumkit.xml`` under :data:`DRUMKIT_DIR`."""
    if not DRUMKIT_DIR.is_dir():
        return ()
    return tuple(sorted(p.parent.name for p in DRUMKIT_DIR.glob("*/drumkit.xml")))


@functools.lru_cache(maxsize=None)
def load_kit(name_or_folder: str) -> Kit:
    """Parse a kit's ``drumkit.xml`` (by kit folder name or path)."""
    folder = Path(name_or_folder)
    if not folder.is_absolute():
        folder = DRUMKIT_DIR / name_or_folder
    xml = folder / "drumkit.xml"
    if not xml.exists():
        raise MaterialError(f"no drumkit.xml in {folder} (apt: hydrogen-drumkits)")
    root = ET.parse(xml).getroot()
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    instruments = []
    # Several kits name their toms by position only ("Tom", "Floor Tom"): order them after parsing.
    for el in root.iter(ns + "instrument"):
        name = _text(el, "name", ns)
        layers = []
        for layer in el.iter(ns + "layer"):
            fname = _text(layer, "filename", ns)
            if fname:
                layers.append(Layer(folder / fname, _float(layer, "min", ns, 0.0), _float(layer, "max", ns, 1.0),
                                    _float(layer, "gain", ns, 1.0)))
        direct = el.find(ns + "filename")
        if not layers and direct is not None and direct.text:
            layers.append(Layer(folder / direct.text.strip(), 0.0, 1.0, 1.0))
        layers = [l for l in layers if l.path.exists()]
        if not layers:
            continue
        piece, art = classify(name)
        instruments.append(Instrument(name, piece, art, _float(el, "volume", ns, 1.0), _float(el, "gain", ns, 1.0),
                                      tuple(sorted(layers, key=lambda l: (l.min_velocity, l.path.name)))))
    # Keep the first instrument per (piece, articulation): extra "tomhi2" etc. would double up mics.
    seen: set[tuple[str, str]] = set()
    kept = []
    for inst in instruments:
        key = (inst.piece, inst.articulation)
        if inst.piece and key in seen:
            inst = Instrument(inst.name, None, "", inst.volume, inst.gain, inst.layers)
        seen.add(key)
        kept.append(inst)
    return Kit(_text(root, "name", ns, folder.name), folder, tuple(kept))


def pick_layer(instrument: Instrument, velocity: float, rng: np.random.Generator) -> Layer:
    """Hydrogen's rule: the layer whose [min, max] holds the velocity; round robin (seeded) among ties."""
    inside = [l for l in instrument.layers if l.min_velocity - 1e-6 <= velocity <= l.max_velocity + 1e-6]
    if not inside:
        inside = [min(instrument.layers, key=lambda l: min(abs(l.min_velocity - velocity), abs(l.max_velocity - velocity)))]
    return inside[int(rng.integers(len(inside)))] if len(inside) > 1 else inside[0]


@functools.lru_cache(maxsize=512)
def load_sample(path: Path, sample_rate: int = 48000) -> np.ndarray:
    """A drum sample as mono float32 at ``sample_rate`` (channels averaged; resampled polyphase).

    The average of a stereo sample is its mid: the kits' stereo files are either dual-mono or a
    mix of the sampling mics, and the simulated mics need one source signal per piece.
    """
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise MaterialError(f"cannot read drum sample {path}: {exc}") from exc
    mono = data.mean(axis=1)
    if rate != sample_rate:
        ratio = Fraction(sample_rate, rate).limit_denominator(1000)
        mono = signal.resample_poly(mono, ratio.numerator, ratio.denominator).astype(np.float32)
    # Fade out the last 5 ms: some samples end abruptly.
    fade = min(len(mono), int(0.005 * sample_rate))
    mono = mono.copy()
    mono[len(mono) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    mono.setflags(write=False)
    return mono
