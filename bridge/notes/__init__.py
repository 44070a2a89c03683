"""Feedback notes: what was analysed, what the AI changed and why, as Markdown and HTML twins.

The names below load on first use (PEP 562): a command that only needs a word from
:mod:`bridge.notes.texts` (the console's ``plural``) does not import the renderer, and through it
the planner and scipy, before its worker pool has started.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "PROVENANCES": "model", "AppliedChange": "model", "ChangesSincePrevious": "model", "LevelChange": "model",
    "MoveChange": "model", "NotesInput": "model", "Override": "model", "PendingMove": "model", "PlanItem": "model",
    "compare_bounces": "model", "render_html": "render", "render_markdown": "render", "write_notes": "render",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
