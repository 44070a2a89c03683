"""Feedback notes: what was analysed, what the AI changed and why, as Markdown and HTML twins."""
from .model import (PROVENANCES, AppliedChange, ChangesSincePrevious, LevelChange, MoveChange, NotesInput, Override,
                    PendingMove, PlanItem, compare_bounces)
from .render import render_html, render_markdown, write_notes

__all__ = [
    "PROVENANCES", "AppliedChange", "ChangesSincePrevious", "LevelChange", "MoveChange", "NotesInput", "Override", "PendingMove",
    "PlanItem", "compare_bounces", "render_html", "render_markdown", "write_notes",
]
