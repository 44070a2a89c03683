"""``mixbridge install-scripts``: copy the in-REAPER files into REAPER's resource path.

The files come from the package (a wheel carries them as package data under
``bridge/reaper_scripts/``) or, in a source checkout, from the repository's ``reaper_scripts/``.
A resource path that does not exist yet (REAPER installed but never started) is created.

What goes where (docs/scripts.md)::

    reaper_scripts/*.lua, MixBridge_Start_bridge_server.py  -> <resource>/Scripts/MixBridge/
    reaper_scripts/Effects/MixBridge/*.jsfx                 -> <resource>/Effects/MixBridge/
    reaper_scripts/*.ReaperOSC                              -> <resource>/OSC/

A file already there is handled so that nothing a producer edited is lost:

* same content as ours: left alone (``unchanged``);
* exactly what a previous install put there (its SHA-256 is in ``Scripts/MixBridge/.mixbridge-installed.json``):
  replaced (``updated``);
* anything else (edited by hand, or not ours): backed up to ``<name>.bak-<UTC time>`` first, then replaced
  (``updated``, with the backup named) — unless ``force``, which replaces it without a backup.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Mapping

from .errors import PathNotFound
from .files import write_atomic

def _source_dir() -> Path:
    """The package data of an installed wheel, else the source checkout's ``reaper_scripts/``."""
    packaged = Path(__file__).resolve().parent / "reaper_scripts"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "reaper_scripts"


#: Where the files come from.
SOURCE_DIR = _source_dir()
RECORD = PurePosixPath("Scripts/MixBridge/.mixbridge-installed.json")
#: ReaPack's header tag for a file that is no action of its own (a library).
NOINDEX = "@noindex"


@dataclass(frozen=True, slots=True)
class InstallStep:
    """One file: where from, where to (relative to the resource path), what happened."""

    source: Path
    dest: PurePosixPath
    action: str  # "created" (the resource path itself) | "copied" | "updated" | "unchanged"
    backup: PurePosixPath | None = None


def default_resource_path(platform: str | None = None, env: Mapping[str, str] | None = None,
                          home: Path | None = None) -> Path:
    """REAPER's default resource path on this OS (a portable install has its own: pass it instead).

    Linux ``$XDG_CONFIG_HOME/REAPER`` (``~/.config/REAPER``), macOS ``~/Library/Application Support/REAPER``,
    Windows ``%APPDATA%\\REAPER``.
    """
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = home or Path.home()
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        return Path(appdata) / "REAPER" if appdata else home / "AppData" / "Roaming" / "REAPER"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "REAPER"
    config = env.get("XDG_CONFIG_HOME")
    return (Path(config) if config else home / ".config") / "REAPER"


def planned_files(source_dir: Path = SOURCE_DIR) -> list[tuple[Path, PurePosixPath]]:
    """(source file, destination relative to the resource path), in a stable order."""
    scripts = sorted(source_dir.glob("*.lua")) + sorted(source_dir.glob("MixBridge_Start_bridge_server.py"))
    plan = [(p, PurePosixPath("Scripts/MixBridge") / p.name) for p in scripts]
    plan += [(p, PurePosixPath("Effects/MixBridge") / p.name)
             for p in sorted((source_dir / "Effects" / "MixBridge").glob("*.jsfx"))]
    plan += [(p, PurePosixPath("OSC") / p.name) for p in sorted(source_dir.glob("*.ReaperOSC"))]
    return plan


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_record(resource: Path) -> dict[str, str]:
    try:
        data = json.loads((resource / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.get("files", {}).items()} if isinstance(data, dict) else {}


def install_scripts(resource: Path, *, dry_run: bool = False, force: bool = False,
                    source_dir: Path = SOURCE_DIR, now: datetime | None = None) -> list[InstallStep]:
    """Copy the MixBridge files into ``resource``; returns what was (or, dry run, would be) done.

    A ``resource`` that does not exist is created (first step ``created``).

    Raises
    ------
    PathNotFound
        ``E_PATH_NOT_FOUND``: ``resource`` is a file, or the package holds no scripts.
    """
    resource = Path(resource)
    files = planned_files(source_dir)
    if not files:
        raise PathNotFound(f"no MixBridge scripts in {source_dir} (a broken install: reinstall mixbridge)")
    if resource.exists() and not resource.is_dir():
        raise PathNotFound(f"REAPER resource path {resource} is a file, not a folder")
    steps = []
    if not resource.is_dir():
        steps.append(InstallStep(resource, PurePosixPath("."), "created"))
        if not dry_run:
            resource.mkdir(parents=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    record = _read_record(resource)
    for source, dest in files:
        target = resource / dest
        wanted = _sha256(source)
        backup = None
        if not target.exists():
            action = "copied"
        elif _sha256(target) == wanted:
            steps.append(InstallStep(source, dest, "unchanged"))
            record[str(dest)] = wanted
            continue
        else:
            action = "updated"
            if record.get(str(dest)) != _sha256(target) and not force:
                backup = dest.with_name(f"{dest.name}.bak-{stamp}")
        if not dry_run:
            if backup is not None:
                shutil.copy2(target, resource / backup)
            write_atomic(target, source.read_bytes())
        record[str(dest)] = wanted
        steps.append(InstallStep(source, dest, action, backup))
    if not dry_run:
        write_atomic(resource / RECORD, json.dumps({"files": dict(sorted(record.items()))}, indent=1) + "\n")
    return steps


def actions_to_add(source_dir: Path = SOURCE_DIR) -> list[str]:
    """The scripts to load as actions (every script but the ``@noindex`` libraries), by file name."""
    out = []
    for source, dest in planned_files(source_dir):
        if dest.parts[0] != "Scripts":
            continue
        head = source.read_text(encoding="utf-8", errors="replace")[:2000]
        if NOINDEX not in head:
            out.append(source.name)
    return out
