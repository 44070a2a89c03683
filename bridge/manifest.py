"""The bounce manifest: the completion signal of one stem bounce (schema in ``docs/manifest.md``).

The Lua bounce script (``reaper_scripts/MixBridge_Bounce selected tracks as stems.lua``) and the
REAPER simulator's render write it *after* every stem of the bounce is on disk, atomically
(``mixbridge-bounce.json.tmp`` then a rename), into the render folder. Whoever sees the manifest can
therefore trust that the stems it lists are complete, and map each file to its track by GUID.

Pure JSON and paths: no audio is opened here (whether a file exists is the caller's question,
:meth:`Manifest.missing` answers it).
"""
from __future__ import annotations

import json
import math
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable

from .errors import ManifestError
from .files import NotRegular, display, is_valid_name, read_regular, write_atomic

MANIFEST_NAME = "mixbridge-bounce.json"
TMP_SUFFIX = ".tmp"
SCHEMA = "mixbridge-bounce"
SCHEMA_VERSION = 1
#: ``created_at`` is UTC to the second, as ``os.date("!%Y-%m-%dT%H:%M:%SZ")`` writes it in Lua.
_CREATED_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_TOP_KEYS = {"schema", "schema_version", "bounce_id", "created_at", "project", "render_dir", "stems"}
_STEM_KEYS = {"track_guid", "track_name", "file", "sample_rate"}
#: The largest manifest read (a 10 000-stem bounce is about 2 MB); anything bigger is refused unread.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ManifestStem:
    """One rendered stem and the track it came from.

    Attributes
    ----------
    track_guid : str
        REAPER's track GUID ``{XXXXXXXX-...}`` (may be ``""`` when unknown).
    track_name : str
        The track's name at bounce time.
    file : Path
        Absolute path of the stem (the manifest stores it relative to its own folder).
    sample_rate : int
        Sample rate of the rendered file, in Hz.
    """

    track_guid: str
    track_name: str
    file: Path
    sample_rate: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """One bounce, as read from ``mixbridge-bounce.json``.

    ``render_dir`` is what the writer recorded; the stems are resolved against the folder the
    manifest actually sits in (``folder``), so a moved or synced folder still reads correctly.
    """

    bounce_id: str
    created_at: str
    project: str
    render_dir: str
    stems: tuple[ManifestStem, ...]
    folder: Path

    @property
    def created_at_utc(self) -> datetime:
        """``created_at`` as an aware UTC datetime."""
        return datetime.fromisoformat(self.created_at.replace("Z", "+00:00"))

    def missing(self) -> tuple[ManifestStem, ...]:
        """Stems whose file is not (or no longer) on disk."""
        return tuple(s for s in self.stems if not s.file.is_file())

    def stem_for_file(self, path: Path) -> ManifestStem | None:
        """The stem entry of ``path`` (compared after resolving both), or None."""
        wanted = Path(path).resolve()
        return next((s for s in self.stems if s.file.resolve() == wanted), None)


def _fail(path: Path, detail: str) -> ManifestError:
    return ManifestError(f"{display(path)}: {detail}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _string(data: dict[str, Any], key: str, path: Path, where: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _fail(path, f"{where}'{key}' must be a string, got {type(value).__name__}")
    # NUL never: no file name, OS call or OSC string can carry it.  Other control characters are
    # legal in track and file names (REAPER names files after tracks); the JSON escapes them.
    if "\x00" in value:
        raise _fail(path, f"{where}'{key}' contains a NUL byte: {value!r}")
    if not is_valid_name(value):
        raise _fail(path, f"{where}'{key}' is not valid Unicode (a lone surrogate escape): {display(value)!r}")
    return value


def _relative_file(text: str, path: Path, where: str) -> PurePosixPath:
    """The stem's file name, checked to stay inside the manifest's folder."""
    if not text or text.strip() != text:
        raise _fail(path, f"{where}'file' must be a non-empty file name without surrounding spaces")
    # Windows writers may use backslashes; both spellings must stay relative and inside.
    for flavour in (PurePosixPath(text), PureWindowsPath(text)):
        if flavour.is_absolute() or flavour.drive or flavour.anchor:
            raise _fail(path, f"{where}'file' {text!r} must be relative to the manifest's folder")
        if any(part == ".." for part in flavour.parts):
            raise _fail(path, f"{where}'file' {text!r} must not leave the manifest's folder")
    return PurePosixPath(*PureWindowsPath(text).parts)


def parse_manifest(text: str, folder: Path, path: Path | None = None) -> Manifest:
    """Parse manifest JSON text; stems resolve against ``folder``.

    Raises
    ------
    ManifestError
        ``E_MANIFEST`` on anything malformed: not JSON, wrong schema or version, a missing
        or mistyped field, unknown keys, a non-positive sample rate, a file outside the folder,
        the same file twice, or no stems at all.
    """
    where_path = path if path is not None else folder / MANIFEST_NAME
    if len(text) > MAX_MANIFEST_BYTES:
        raise _fail(where_path, f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _fail(where_path, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise _fail(where_path, "nested too deeply to be a bounce manifest") from None
    if not isinstance(data, dict):
        raise _fail(where_path, "the top level must be a JSON object")
    if data.get("schema") != SCHEMA:
        raise _fail(where_path, f"'schema' must be {SCHEMA!r}, got {data.get('schema')!r}")
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise _fail(where_path, f"'schema_version' must be {SCHEMA_VERSION}, got {version!r}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _fail(where_path, f"unknown keys {sorted(unknown)}")
    bounce_id = _string(data, "bounce_id", where_path)
    if not bounce_id.strip():
        raise _fail(where_path, "'bounce_id' must not be empty")
    if len(bounce_id) > 200:
        raise _fail(where_path, "'bounce_id' is longer than 200 characters")
    created_at = _string(data, "created_at", where_path)
    if not _CREATED_AT_RE.match(created_at):
        raise _fail(where_path, f"'created_at' must be UTC like 2026-11-21T10:00:00Z, got {created_at!r}")
    try:
        datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(where_path, f"'created_at' {created_at!r} is not a real time") from None
    project = _string(data, "project", where_path)
    render_dir = _string(data, "render_dir", where_path)
    raw_stems = data.get("stems")
    if not isinstance(raw_stems, list) or not raw_stems:
        raise _fail(where_path, "'stems' must be a non-empty list")
    stems = []
    seen: set[str] = set()
    for index, item in enumerate(raw_stems):
        where = f"stems[{index}]: "
        if not isinstance(item, dict):
            raise _fail(where_path, f"{where}must be an object")
        missing = _STEM_KEYS - set(item)
        if missing:
            raise _fail(where_path, f"{where}missing {sorted(missing)}")
        if set(item) - _STEM_KEYS:
            raise _fail(where_path, f"{where}unknown keys {sorted(set(item) - _STEM_KEYS)}")
        guid = _string(item, "track_guid", where_path, where)
        name = _string(item, "track_name", where_path, where)
        relative = _relative_file(_string(item, "file", where_path, where), where_path, where)
        rate = item["sample_rate"]
        if isinstance(rate, float) and math.isfinite(rate) and rate.is_integer():
            rate = int(rate)  # a Lua writer may print 48000.0
        if type(rate) is not int or rate <= 0:
            raise _fail(where_path, f"{where}'sample_rate' must be a positive integer, got {rate!r}")
        key = str(relative).casefold()
        if key in seen:
            raise _fail(where_path, f"{where}file {str(relative)!r} is listed twice")
        seen.add(key)
        stems.append(ManifestStem(guid, name, (folder / relative).absolute(), rate))
    return Manifest(bounce_id, created_at, project, render_dir, tuple(stems), folder.absolute())


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a bounce manifest file.

    Parameters
    ----------
    path : path-like
        The ``mixbridge-bounce.json`` file; stems are resolved against its folder.

    Raises
    ------
    ManifestError
        ``E_MANIFEST``: the file cannot be read, is not UTF-8, or is malformed
        (see :func:`parse_manifest`).
    """
    path = Path(path)
    try:
        text = read_regular(path, MAX_MANIFEST_BYTES).decode("utf-8-sig")
    except NotRegular as exc:
        raise _fail(path, f"{exc.strerror}") from None
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text") from None
    except ValueError as exc:  # larger than MAX_MANIFEST_BYTES: refused without reading it all
        raise _fail(path, str(exc)) from None
    return parse_manifest(text, path.parent, path)


def new_bounce_id(now: datetime | None = None) -> str:
    """A unique bounce id such as ``20261121T100000Z-3f2a`` (UTC time, then 4 random hex digits)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def manifest_dict(stems: Iterable[ManifestStem], folder: Path, *, project: str = "",
                  bounce_id: str | None = None, created_at: datetime | None = None) -> dict[str, Any]:
    """The JSON object of a manifest for ``stems`` rendered into ``folder``."""
    now = (created_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    folder = Path(folder).absolute()
    entries = []
    for stem in stems:
        file = Path(stem.file)
        relative = file.relative_to(folder) if file.is_absolute() else file
        entries.append({"track_guid": stem.track_guid, "track_name": stem.track_name,
                        "file": relative.as_posix(), "sample_rate": int(stem.sample_rate)})
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
            "bounce_id": bounce_id or new_bounce_id(now),
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "project": project, "render_dir": str(folder), "stems": entries}


def write_manifest(folder: str | os.PathLike[str], stems: Iterable[ManifestStem], *, project: str = "",
                   bounce_id: str | None = None, created_at: datetime | None = None) -> Path:
    """Write ``mixbridge-bounce.json`` into ``folder`` atomically; returns its path.

    Call it only once every stem is complete: the manifest *is* the completion signal. It is written
    to ``mixbridge-bounce.json.tmp``, flushed to disk, then renamed over the final name, so a reader
    never sees a half-written manifest.

    Parameters
    ----------
    folder : path-like
        The render folder (the stems' folder).
    stems : iterable of ManifestStem
        ``file`` absolute inside ``folder``, or relative to it.
    """
    folder = Path(folder)
    document = manifest_dict(stems, folder, project=project, bounce_id=bounce_id, created_at=created_at)
    final = folder / MANIFEST_NAME
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    write_atomic(final, text, tmp=folder / (MANIFEST_NAME + TMP_SUFFIX))
    return final
