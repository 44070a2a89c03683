"""Realistic multitrack test sessions from recorded material Debian ships (see docs/material.md).

Pitched parts are rendered by fluidsynth from the packaged soundfonts, drums are simulated multi-mic
recordings of the packaged Hydrogen kits, the lead vocal is a proxy (vocoded espeak-ng or a GM voice
program).  ``build_session(Recipe(...))`` writes 48 kHz / 24-bit stems plus ``truth.json``.
"""
from .labelled import LabelledStem, Processing, PartSpec, DrumSpec, render_drum_stem, render_labelled_part
from .problems import KINDS as PROBLEM_KINDS
from .session import (DEFAULT_PROBLEMS, OTHER_PROBLEMS, Problem, Recipe, SectionTruth, Session, StemTruth,
                      build_session, build_twins, load_session)
from .soundfonts import MaterialError, missing_tools

__all__ = ["build_session", "build_twins", "load_session", "Recipe", "Problem", "Session", "StemTruth",
           "SectionTruth", "DEFAULT_PROBLEMS", "OTHER_PROBLEMS", "PROBLEM_KINDS", "render_labelled_part",
           "render_drum_stem", "PartSpec", "DrumSpec", "Processing", "LabelledStem", "MaterialError", "missing_tools"]
