"""``mixbridge demo``: the main job on its embedded default, with no REAPER.

It plays the producer's side of the loop with files instead of REAPER:

1. synthesise a ten-stem session with planted mix problems (the "tracks" of a project);
2. start the watcher on an empty render folder with the ``plan`` target;
3. bounce: copy every track's audio into the render folder, then write the bounce manifest last,
   exactly as the bounce ReaScript does (``reaper_scripts/MixBridge_Bounce selected tracks as stems.lua``);
4. wait for the pass: analysis, plan, notes beside the stems, and the AI pass rendered offline
   (processed stems and two level-matched mixes, before and after, that the notes play);
5. the producer fixes one track (Keys, 9 dB too hot) and re-bounces only that track: the second pass
   re-analyses that one stem, takes the rest from the cache, and the notes say what changed.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from pathlib import Path
from typing import TextIO

#: The track the producer fixes between the two bounces, and how.
FIXED_TRACK = "Keys"
#: Generous deadline for one pass on a slow shared machine (a pass takes a few seconds).
PASS_TIMEOUT_S = 120.0


def _bounce(sources: dict[str, Path], render_dir: Path, names: list[str]) -> Path:
    """Copy the named tracks' audio into ``render_dir``, then the manifest (the completion signal)."""
    from .manifest import ManifestStem, write_manifest
    from .stems import open_stem

    stems = []
    for name in names:
        target = render_dir / sources[name].name
        shutil.copyfile(sources[name], target)
        stems.append(ManifestStem(track_guid="", track_name=name, file=target,
                                  sample_rate=open_stem(target).sample_rate))
    return write_manifest(render_dir, stems, project="MixBridge demo.rpp")


def _changes_lines(outcome) -> list[str]:
    changes = outcome.changes
    if changes is None:
        return []
    lines = []
    for c in changes.level_changes:
        lines.append(f"  {c.track}: {c.change_lu:+.1f} LU since the last bounce")
    for item in changes.findings_dropped:
        lines.append(f"  resolved: {item.track}: {item.message}")
    for item in changes.findings_added:
        lines.append(f"  new: {item.track}: {item.message}")
    for item in changes.suggestions_dropped:
        lines.append(f"  suggestion dropped: {item.track} ({item.code})")
    def shown(value) -> str:
        return "not planned" if value is None else f"{len(value)} points" if isinstance(value, tuple) else f"{value:g}" \
            if isinstance(value, (int, float)) else str(value)

    for move in changes.moves_changed:
        lines.append(f"  move changed: {move.track} {move.param}: {shown(move.before)} → {shown(move.after)}")
    return lines


def run_demo(folder: Path | None, seconds: float, jobs: int | None, out: TextIO) -> int:
    """Run the demo; returns the process exit status (0 when both passes ran)."""
    from .console import Console
    from .settings import Settings, WatchTimings
    from .synth import default_session, write_session
    from .watch import Watcher

    started = time.monotonic()
    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="mixbridge-demo-"))
    project = root / "project audio"
    render_dir = root / "MixBridge stems"
    render_dir.mkdir(parents=True, exist_ok=True)
    specs = default_session()
    print(f"1. Synthesising a {len(specs)}-track session with planted mix problems in {project} ...", file=out)
    paths = write_session(project, specs, duration_s=seconds)
    sources = {spec.name: path for spec, path in zip(specs, paths)}

    settings = Settings(render_dir, target="plan", jobs=jobs, timings=WatchTimings(settle_s=1.0, poll_s=0.1),
                        render=True)
    watcher = Watcher(settings, console=Console(out))
    watcher.start()
    try:
        print(f"2. Bouncing all {len(specs)} tracks into {render_dir} ...", file=out)
        _bounce(sources, render_dir, list(sources))
        if not watcher.wait_for(lambda: len(watcher.passes) >= 1, PASS_TIMEOUT_S):
            print("mixbridge demo: the first pass did not finish in time", file=out)
            return 1
        first = watcher.passes[0]
        print(f"   plan:  {render_dir / 'mixbridge-plan.json'} (id {first.plan.id})", file=out)
        print(f"   notes: {render_dir / 'mixbridge-notes.html'}", file=out)
        if first.render is not None:
            print(f"   hear it: {first.render.before_path} and {first.render.after_path} "
                  f"(level-matched; the notes have an A/B player)", file=out)
        for t in first.plan.tracks:
            if t.findings:
                print(f"   {t.name}: " + "; ".join(f.message for f in t.findings[:2]), file=out)

        print(f"3. The producer turns {FIXED_TRACK} down 9 dB and re-bounces that one track ...", file=out)
        spec = next(s for s in specs if s.name == FIXED_TRACK)
        fixed = dataclasses.replace(spec, problems=tuple(p for p in spec.problems if p != "too_hot"))
        write_session(project, [fixed], duration_s=seconds)
        _bounce(sources, render_dir, [FIXED_TRACK])
        if not watcher.wait_for(lambda: len(watcher.passes) >= 2, PASS_TIMEOUT_S):
            print("mixbridge demo: the second pass did not finish in time", file=out)
            return 1
        second = watcher.passes[1]
        print(f"   re-analysed: {', '.join(second.reanalysed or ()) or 'nothing'}; "
              f"from the cache: {len(second.cached or ())} stems", file=out)
        for line in _changes_lines(second):
            print(line, file=out)
    finally:
        watcher.stop()
    print(f"\nDone in {time.monotonic() - started:.0f} s. Everything is in {root}:", file=out)
    print(f"  {render_dir / 'mixbridge-plan.json'}   the plan (docs/plan-json.md)", file=out)
    print(f"  {render_dir / 'mixbridge-notes.html'}  the notes (Markdown twin beside it)", file=out)
    print(f"  {render_dir / '.mixbridge'}/            cache, journal, every pass", file=out)
    return 0
