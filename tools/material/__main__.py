"""``python -m tools.material``: build sessions, list kits, presets and the problem catalogue.

Examples
--------
    python -m tools.material build --seed 3                      # clean twin + the default problem variant
    python -m tools.material build --recipe song.json --problems other --out /tmp/song
    python -m tools.material kits
    python -m tools.material presets FluidR3_GS
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from . import problems as P
from .drumkits import available_kits, load_kit
from .session import DEFAULT_PROBLEMS, OTHER_PROBLEMS, Recipe, build_session
from .soundfonts import SOUNDFONTS, missing_tools, presets


def _problems(text: str) -> tuple[str, ...]:
    if text == "default":
        return DEFAULT_PROBLEMS
    if text == "other":
        return OTHER_PROBLEMS
    if text in ("none", ""):
        return ()
    return tuple(k.strip() for k in text.split(",") if k.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.material", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build a clean twin and (optionally) a problem variant; print their folders")
    build.add_argument("--recipe", type=Path, help="recipe JSON (fields of tools.material.Recipe)")
    build.add_argument("--seed", type=int, help="overrides the recipe's seed")
    build.add_argument("--problems", default="default",
                       help="'default', 'other', 'none' or a comma list of kinds (see the 'problems' command)")
    build.add_argument("--out", type=Path, help="also copy the sessions here (clean/ and problems/)")
    build.add_argument("--rebuild", action="store_true", help="ignore the cache")
    sub.add_parser("kits", help="Hydrogen kits and the pieces each one has")
    pre = sub.add_parser("presets", help="presets of a soundfont")
    pre.add_argument("font", choices=sorted(SOUNDFONTS))
    sub.add_parser("problems", help="the planted-problem catalogue")
    args = parser.parse_args(argv)

    if args.command == "kits":
        for name in available_kits():
            print(f"{name}: {', '.join(load_kit(name).pieces()) or '(no kit pieces)'}")
        return 0
    if args.command == "presets":
        for p in presets(str(SOUNDFONTS[args.font].path)):
            print(f"bank {p.bank:3d} program {p.program:3d}  {p.name}")
        return 0
    if args.command == "problems":
        for kind in P.KINDS:
            print(f"{kind:20s} on: {', '.join(P.ELIGIBLE[kind])}")
        return 0

    missing = missing_tools()
    if missing:
        print("missing: " + "; ".join(missing), file=sys.stderr)
        return 2
    recipe = Recipe.from_dict(json.loads(args.recipe.read_text())) if args.recipe else Recipe()
    if args.seed is not None:
        recipe = Recipe.from_dict({**recipe.to_dict(), "seed": args.seed})
    kinds = _problems(args.problems)
    clean = build_session(recipe.clean(), rebuild=args.rebuild)
    built = [("clean", clean)]
    if kinds:
        built.append(("problems", build_session(recipe.with_problems(*kinds), rebuild=args.rebuild)))
    for label, session in built:
        target = session.path
        if args.out:
            target = args.out / label
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(session.path, target)
            if label == "problems":  # keep the copy pointing at the copied twin
                truth = json.loads((target / "truth.json").read_text())
                truth["clean_twin"] = "../clean"
                (target / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
        print(f"{label}: {target}  ({len(session.stems)} stems, {session.duration_s:.1f} s, "
              f"{session.tempo_bpm:g} BPM, {session.key_name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
