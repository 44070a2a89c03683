"""Offline rendering of a plan: the stems as REAPER would play them with the plan applied.

Pure DSP in :mod:`.eq` (ReaEQ bands), :mod:`.dynamics` (ReaComp), :mod:`.envelope` (volume
envelopes) and :mod:`.track` (one track's chain); :mod:`.render` is the file edge
(``mixbridge render``), imported on first use so the pure modules can be used without the file
side.  See docs/render.md.
"""
from .track import TrackChain, TrackSettings, track_settings

__all__ = ["RenderOutput", "RenderedStem", "TrackChain", "TrackSettings", "read_plan", "render_plan",
           "track_settings"]
_EDGE = ("RenderOutput", "RenderedStem", "read_plan", "render_plan")


def __getattr__(name: str):
    if name in _EDGE:
        from . import render

        return getattr(render, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
