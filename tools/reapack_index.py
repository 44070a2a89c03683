"""Write ``index.xml``, the ReaPack repository index of the in-REAPER files, from their headers.

REAPER users add the index's URL in *Extensions > ReaPack > Import repositories*, and ReaPack installs
and updates the scripts and the JSFX.  The format is the one ReaPack's own indexer (``reapack-index``)
writes: ``<index version="1">`` holding a ``<category>`` of ``<reapack>`` packages, each with one
``<version>`` (name, author, time) whose ``<source>`` elements give a file's download URL
(``main="main"`` on a script that is an action; ``file=`` for an extra file a package provides).
The packages and their versions come from each file's ReaPack header (``@version``, ``@author``,
``@description``, ``@provides``); a file with ``@noindex`` is not a package of its own.

    python tools/reapack_index.py [--base-url URL] [--check]

``--base-url`` is where the raw files of ``reaper_scripts/`` are published (default: the
``Source`` URL in ``pyproject.toml``'s ``[project.urls]`` + ``/raw/main/reaper_scripts/``).
``--check`` only says whether ``index.xml`` is up to date (exit 1 if not); the test suite runs it.
The OSC pattern file is not a ReaPack package type; ``mixbridge install-scripts`` installs it.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "reaper_scripts"
INDEX = ROOT / "index.xml"
NAME = "MixBridge"
CATEGORY = "MixBridge"
#: ReaPack package types by file ending (reapack-index's table).
TYPES = {".lua": "script", ".py": "script", ".eel": "script", ".jsfx": "effect"}
_TAG = re.compile(r"^\s*(?:--|#|//)(\s*)@(\w+)\s*(.*?)\s*$")
_BODY = re.compile(r"^\s*(?:--|#|//)(\s*)(.*?)\s*$")


def header(path: Path) -> dict[str, list[str]]:
    """The ``@tag value`` lines at the top of a file; a tag's value goes on over the following
    comment lines indented deeper than the tag (reapack-index's rule)."""
    tags: dict[str, list[str]] = {}
    current, depth = None, 0
    for line in path.read_text(encoding="utf-8").splitlines()[:80]:
        match = _TAG.match(line)
        if match:
            current, depth = match.group(2).lower(), len(match.group(1))
            tags.setdefault(current, [])
            if match.group(3):
                tags[current].append(match.group(3))
            continue
        body = _BODY.match(line)
        if current and body and not body.group(2):
            continue  # an empty comment line inside a multi-line value
        if current and body and len(body.group(1)) > depth:
            tags[current].append(body.group(2))
        else:
            current = None
    return tags


def packages() -> list[Path]:
    files = sorted(SCRIPTS.glob("*.lua")) + sorted(SCRIPTS.glob("*.py")) + sorted((SCRIPTS / "Effects").rglob("*.jsfx"))
    return [p for p in files if "noindex" not in header(p)]


def _base_url() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^Source\s*=\s*"([^"]+)"', text, re.M)
    source = match.group(1).rstrip("/") if match else "https://example.invalid/mixbridge"
    return f"{source}/raw/main/reaper_scripts/"


def _time(path: Path) -> str:
    """The file's last commit time (stable across runs), else the epoch for an uncommitted file."""
    done = subprocess.run(["git", "log", "-1", "--format=%cI", "--", str(path)], cwd=ROOT,
                          capture_output=True, text=True)
    stamp = done.stdout.strip() if done.returncode == 0 else ""
    return (stamp[:19] + "Z") if stamp else "1970-01-01T00:00:00Z"


def render(base_url: str) -> str:
    lines = ['<?xml version="1.0" encoding="utf-8"?>', f'<index version="1" name={quoteattr(NAME)}>',
             f'  <category name={quoteattr(CATEGORY)}>']
    for path in packages():
        tags = header(path)
        rel = path.relative_to(SCRIPTS).as_posix()
        kind = TYPES[path.suffix.lower()]
        desc = " ".join(tags.get("description", [path.stem]))
        lines.append(f'    <reapack name={quoteattr(path.name)} type="{kind}" desc={quoteattr(desc)}>')
        about = tags.get("about")
        if about:
            lines.append("      <metadata>")
            lines.append(f"        <description>{escape(' '.join(about))}</description>")
            lines.append("      </metadata>")
        version = tags["version"][0]
        author = " ".join(tags.get("author", [""]))
        lines.append(f'      <version name={quoteattr(version)} author={quoteattr(author)} time="{_time(path)}">')
        main = ' main="main"' if kind == "script" else ""
        lines.append(f"        <source{main}>{escape(base_url + quote(rel))}</source>")
        for provided in tags.get("provides", []):
            name = re.sub(r"^\[[^\]]*\]\s*", "", provided).strip()
            target = (path.parent / name).relative_to(SCRIPTS).as_posix()
            lines.append(f"        <source file={quoteattr(name)}>{escape(base_url + quote(target))}</source>")
        lines.append("      </version>")
        lines.append("    </reapack>")
    lines += ["  </category>", "</index>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render(args.base_url or _base_url())
    if args.check:
        current = INDEX.read_text(encoding="utf-8") if INDEX.exists() else ""
        if current != text:
            print("index.xml is out of date: run python tools/reapack_index.py", file=sys.stderr)
            return 1
        return 0
    INDEX.write_text(text, encoding="utf-8", newline="\n")
    print(f"{INDEX}: {len(packages())} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
