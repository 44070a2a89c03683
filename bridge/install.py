"""``mixbridge install-scripts``: copy the in-REAPER files into REAPER's resource path.

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

#: Where the files come from: the repository's (or sdist's) reaper_scripts/ folder.
SOURCE_DIR = Path(__file__).resolve().parents[1] / "reaper_scripts"
RECORD = PurePosixPath("Scripts/MixBridge/.mixbridge-installed.json")


@dataclass(frozen=True, slots=True)
class InstallStep:
    """One file: where from, where to (relative to the resource path), what happened."""

    source: Path
    dest: PurePosixPath
    action: str  # "copied" | "updated" | "unchanged"
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

    Raises
    ------
    FileNotFoundError
        ``resource`` or ``source_dir`` does not exist (a typo must not create a fake REAPER folder).
    """
    resource = Path(resource)
    if not resource.is_dir():
        raise FileNotFoundError(f"REAPER resource path {resource} does not exist")
    files = planned_files(source_dir)
    if not files:
        raise FileNotFoundError(f"no MixBridge scripts found in {source_dir}")
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    record = _read_record(resource)
    steps = []
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
            target.parent.mkdir(parents=True, exist_ok=True)
            if backup is not None:
                shutil.copy2(target, resource / backup)
            tmp = target.with_name(target.name + ".mixbridge-tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        record[str(dest)] = wanted
        steps.append(InstallStep(source, dest, action, backup))
    if not dry_run:
        (resource / RECORD).parent.mkdir(parents=True, exist_ok=True)
        (resource / RECORD).write_text(json.dumps({"files": dict(sorted(record.items()))}, indent=1) + "\n",
                                       encoding="utf-8")
    return steps
