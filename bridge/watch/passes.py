"""One pass, stage by stage: analyse (incrementally) → plan → map tracks → notes and files.

Everything here runs on the watcher's worker thread.  The functions are small and separately
callable so the watcher can redo the last stages alone (a queued plan that finally reached REAPER
rewrites its notes; an accepted review re-applies).
"""
from __future__ import annotations

import inspect
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..errors import BridgeError, StemReadError
from .bounce import Bounce, TrackRef, apply_track_map, map_tracks
from .state import write_atomic

log = logging.getLogger("mixbridge.watch")

#: Written beside the stems by the ``plan`` target, where a producer looks.
PLAN_BESIDE_NAME = "mixbridge-plan.json"
NOTES_BESIDE_NAME = "mixbridge-notes.html"

#: Why a move is not in REAPER, per apply state (the notes' "Moves not applied" section).
WHY_HELD = "waiting for your review: accept it on the control surface or run 'MixBridge: Accept all pending'"
WHY_QUEUED = "REAPER could not be reached; the plan is queued and will be written when it answers"


class PassInterrupted(Exception):
    """The watcher is stopping: abandon the pass (the journal shows it unfinished)."""


@dataclass
class PassOutcome:
    """Everything one pass produced (mutable: a queued apply fills ``report`` later)."""

    number: int
    bounce: Bounce
    result: Any  # SessionResult
    plan: Any  # MixPlan
    plan_doc: dict[str, Any]  # the full plan, track names/GUIDs mapped to REAPER
    tracks: dict[str, TrackRef]
    apply_state: str = "none"  # applied | queued | held | failed | none
    applied_doc: dict[str, Any] | None = None  # what went to the target (the accepted part in review mode)
    report: Any = None  # PassReport
    apply_error: str | None = None
    pending_review: tuple[dict[str, Any], ...] = ()  # suggestions held for review
    provenance: dict[str, str] = field(default_factory=dict)
    changes: Any = None  # ChangesSincePrevious
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    line: str = ""

    @property
    def findings(self) -> int:
        return sum(len(t.findings) for t in self.plan.tracks) + len(self.plan.mix_findings)

    @property
    def reanalysed(self) -> tuple[str, ...] | None:
        value = getattr(self.result, "reanalysed", None)
        cached = getattr(self.result, "cached", None)
        if value is None or cached is None or (not value and not cached):
            return None
        return tuple(value)

    @property
    def cached(self) -> tuple[str, ...] | None:
        return None if self.reanalysed is None else tuple(getattr(self.result, "cached", ()))

    @property
    def moves(self) -> int:
        """Writes the target made, else the moves the plan holds (queued or held)."""
        if self.report is not None and self.apply_state == "applied":
            return sum(1 for w in self.report.writes if not w.get("restored"))
        return sum(len(t.get("changes", [])) + len(t.get("automation", [])) for t in self.plan_doc.get("tracks", []))

    @property
    def stem_of(self) -> dict[str, str]:
        """REAPER track name → stem name (the notes speak in stem names)."""
        return {ref.track: ref.stem for ref in self.tracks.values()}


# --- analysis -------------------------------------------------------------------------------------

def _cache_for(folder: Path):
    try:
        from ..cache import AnalysisCache  # owned by the cache helper
    except ImportError:
        return None
    try:
        return AnalysisCache(folder)
    except Exception as exc:  # noqa: BLE001 - a broken cache must not stop the watcher: analyse everything
        log.warning("analysis cache unavailable (%s); analysing every stem", exc)
        return None


def analyse(bounce: Bounce, *, cache_dir: Path, jobs: int | None, progress: Callable[[Any], None]):
    """Analyse the bounce's stems (through the cache when there is one) plus its missing files.

    Files a manifest listed but that never arrived become failed stems (``E_STEM_MISSING``), so the
    notes list them with the other errors.
    """
    from ..pipeline import StemResult, analyze_session

    kwargs: dict[str, Any] = {"jobs": jobs, "progress": progress}
    if "cache" in inspect.signature(analyze_session).parameters:
        cache = _cache_for(cache_dir)
        if cache is not None:
            kwargs["cache"] = cache
    result = analyze_session(list(bounce.paths), **kwargs)
    if bounce.missing:
        missing = tuple(StemResult(p.stem, p, None, None,
                                   StemReadError(f"{p.name}: listed in the manifest, not on disk",
                                                 code="E_STEM_MISSING"))
                        for p in bounce.missing)
        result = replace(result, stems=tuple(result.stems) + missing)
    return result


def make_plan(result, folder: Path, *, reference: Path | None, amount: float, pattern, manifest_map):
    """Plan the analysis with the folder's roles config and map the tracks to REAPER."""
    from ..config import RoleConfig, read_config
    from ..pipeline import plan_session
    from ..suggest.plan import plan_dict

    try:
        roles = RoleConfig().merged(read_config(folder))
    except BridgeError as exc:
        log.warning("roles config ignored: %s", exc)
        roles = RoleConfig()
    plan = plan_session(result, roles, amount=amount, reference_path=reference)
    tracks = map_tracks([s.path for s in result.stems], manifest_map, pattern)
    doc = apply_track_map(plan_dict(plan), tracks)
    return plan, doc, tracks


# --- notes and files ------------------------------------------------------------------------------

def _notes_param(key: str) -> str:
    """``eq.band2_gain_db`` → ``band2_gain_db``: the notes name parameters as the plan does."""
    head, _, tail = key.partition(".")
    return tail if head in ("track", "eq", "comp") and tail else key


def notes_input(outcome: PassOutcome, title: str = ""):
    from ..notes.model import AppliedChange, NotesInput, Override, PendingMove

    stem_of = outcome.stem_of
    report = outcome.report
    applied, overrides, pending = [], [], []
    if report is not None and outcome.apply_state == "applied":
        for w in report.writes:
            if "value" in w and not w.get("restored") and w["value"] is not None:
                applied.append(AppliedChange(stem_of.get(w["track"], w["track"]), _notes_param(w["param"]), w["value"]))
        for o in report.overrides:
            overrides.append(Override(stem_of.get(o["track"], o["track"]), _notes_param(o["param"]),
                                      o.get("from"), o.get("to")))
        for p in report.pending:
            pending.append(PendingMove(stem_of.get(p["track"], p["track"]), _notes_param(p["param"]),
                                       p.get("value"), p.get("why", "")))
        for name in report.missing_tracks:
            pending.append(PendingMove(stem_of.get(name, name), "track", None, "no track of that name or GUID in "
                                       "the REAPER project", "E_TARGET_NOT_FOUND"))
    held = {(p["track"], p["suggestion"]) for p in outcome.pending_review}
    if outcome.apply_state in ("queued", "held", "failed") or held:
        why = {"queued": WHY_QUEUED, "held": WHY_HELD}.get(outcome.apply_state, outcome.apply_error or "not applied")
        code = "E_DAW_UNAVAILABLE" if outcome.apply_state == "queued" else ""
        for tp in outcome.plan_doc.get("tracks", []):
            stem = tp.get("stem", tp["name"])
            for c in tp.get("changes", []):
                if outcome.apply_state in ("queued", "failed") or (tp["name"], c.get("suggestion")) in held:
                    reason = why if outcome.apply_state in ("queued", "failed") else WHY_HELD
                    pending.append(PendingMove(stem, c.get("param", ""), c.get("value"), reason,
                                               code if outcome.apply_state == "queued" else "", c.get("unit", "")))
    provenance = {}
    known = {s.name for s in outcome.result.stems}
    for track, tag in (outcome.provenance or {}).items():
        stem = stem_of.get(track, track)
        if stem in known and tag in ("ai", "hybrid", "manual", "untouched"):
            provenance[stem] = tag
    return NotesInput(outcome.result, outcome.plan, applied=tuple(applied), overrides=tuple(overrides),
                      changes_since_previous=outcome.changes, pending=tuple(pending), provenance=provenance,
                      title=title)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def filled_plan_doc(outcome: PassOutcome) -> dict[str, Any]:
    """The plan document with the later stages' fields filled (``docs/plan-json.md``)."""
    doc = dict(outcome.plan_doc)
    report = outcome.report
    if report is not None and outcome.apply_state == "applied":
        doc["applied"] = {"pass": getattr(report, "pass_number", 0), "undo": report.undo_name,
                          "writes": _jsonable(report.writes)}
        doc["overrides"] = _jsonable(report.overrides)
        doc["pending"] = _jsonable(report.pending)
    else:
        doc["applied"] = None
        doc["pending"] = [dict(p, why=WHY_HELD) for p in outcome.pending_review]
    doc["changes_since_previous"] = None if outcome.changes is None else _jsonable(asdict(outcome.changes))
    return doc


def report_doc(outcome: PassOutcome, target_kind: str) -> dict[str, Any]:
    stems = []
    for s in outcome.result.stems:
        ref = outcome.tracks.get(s.name)
        entry = {"name": s.name, "file": str(s.path), "track": ref.track if ref else s.name,
                 "guid": ref.guid if ref else "", "ok": s.error is None}
        if s.info is not None:
            entry.update(sample_rate=s.info.sample_rate, channels=s.info.channels, frames=s.info.frames)
        if s.error is not None:
            entry["error"] = s.error.as_dict()
        stems.append(entry)
    b = outcome.bounce
    return {
        "schema": "mixbridge-pass-report", "schema_version": 1, "pass": outcome.number,
        "bounce": {"id": b.id, "reason": b.reason, "manifest": str(b.manifest) if b.manifest else None,
                   "missing": [str(p) for p in b.missing], "fingerprints": b.fingerprints},
        "stems": stems,
        "reanalysed": list(outcome.reanalysed) if outcome.reanalysed is not None else None,
        "cached": list(outcome.cached) if outcome.cached is not None else None,
        "timings": _jsonable(outcome.result.timings),
        "plan_id": outcome.plan.id, "analysis_id": outcome.plan.analysis_id,
        "findings": outcome.findings, "moves": outcome.moves,
        "target": target_kind, "apply": outcome.apply_state, "apply_error": outcome.apply_error,
        "target_report": None if outcome.report is None else _jsonable(outcome.report.as_dict()),
        "pending_review": list(outcome.pending_review),
        "provenance": dict(outcome.provenance),
        "seconds": round(outcome.seconds, 3),
    }


def write_notes_atomic(notes, html_path: Path) -> tuple[Path, Path]:
    """:func:`bridge.notes.write_notes`, but to temporary names renamed into place (never half a file)."""
    from ..notes.render import write_notes

    tmp = html_path.with_name(f".{html_path.stem}.writing.html")
    md_tmp, html_tmp = write_notes(notes, tmp)
    md_path = html_path.with_suffix(".md")
    for src, dst in ((md_tmp, md_path), (html_tmp, html_path)):
        write_atomic(dst, Path(src).read_bytes())
        Path(src).unlink(missing_ok=True)
    return md_path, html_path


def write_pass_files(outcome: PassOutcome, pass_dir: Path, target_kind: str, beside: Path | None,
                     journal=None) -> dict[str, str]:
    """Write ``plan.json``, ``notes.html``/``.md``, ``report.json`` (and the copies beside the stems).

    Each write is journalled as it lands.
    """
    files: dict[str, str] = {}

    def note(kind: str, path: Path) -> None:
        files[kind] = str(path)
        if journal is not None:
            journal.write("file_written", **{"pass": outcome.number, "kind": kind, "path": str(path)})

    doc = filled_plan_doc(outcome)
    plan_text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    note("plan", write_atomic(pass_dir / "plan.json", plan_text))
    notes = notes_input(outcome, title=f"pass {outcome.number}")
    md, html = write_notes_atomic(notes, pass_dir / "notes.html")
    note("notes_md", md)
    note("notes", html)
    if beside is not None:
        note("plan_beside", write_atomic(beside / PLAN_BESIDE_NAME, plan_text))
        _, html_b = write_notes_atomic(notes, beside / NOTES_BESIDE_NAME)
        note("notes_beside", html_b)
    note("report", write_atomic(pass_dir / "report.json",
                                json.dumps(report_doc(outcome, target_kind), indent=1, default=str) + "\n"))
    outcome.files = files
    return files
