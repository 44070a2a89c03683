"""The import rule: pure layers never reach the edges, reconciliation is pure, and no module of
``bridge/`` imports itself back through another (no import cycles).  A folder that should exist and
does not is a failure, not a skip."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bridge"
PURE = ["analyze", "suggest", "notes"]
FORBIDDEN = ("reapy", "pythonosc", "watchdog", "soundfile", "bridge.daw", "bridge.control", "bridge.watch",
             "bridge.stems", "bridge.pipeline", "bridge.session")
#: Pure modules outside the pure folders: what to write is decided without I/O.
PURE_MODULES = ["daw/reconcile.py", "daw/tagging.py", "daw/mapping.py", "settings.py", "model.py", "plandoc.py"]
PURE_MODULE_FORBIDDEN = ("reapy", "pythonosc", "watchdog", "soundfile", "socket", "urllib", "bridge.daw.reapy_target",
                         "bridge.daw.osc_target", "bridge.daw.reapy_conn", "bridge.control", "bridge.watch",
                         "bridge.pipeline", "bridge.session", "bridge.stems")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    package = "bridge." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts[:-1])
    type_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module or "")
    return found


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_nothing_from_the_edges(layer):
    folder = PACKAGE / layer
    assert folder.is_dir(), f"bridge/{layer} is missing"
    offenders = []
    for path in sorted(folder.rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not offenders, "pure code reaches an edge:\n" + "\n".join(offenders)


def test_only_the_stem_reader_opens_audio_files():
    users = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if "soundfile" in {n.split(".")[0] for n in _imports(p)})
    assert set(users) <= {"stems.py", "synth.py"}, users


def test_daw_code_is_the_only_importer_of_reapy():
    users = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if "reapy" in {n.split(".")[0] for n in _imports(p)})
    assert all(u.startswith("daw/") for u in users), users


def test_bridge_server_script_compiles():
    import py_compile
    script = PACKAGE.parent / "reaper_scripts" / "MixBridge_Start_bridge_server.py"
    py_compile.compile(str(script), doraise=True)


def test_control_surfaces_reach_the_daw_only_through_a_target():
    """bridge/control never imports reapy or a concrete DAW target: the target is handed in."""
    folder = PACKAGE / "control"
    assert folder.is_dir(), "bridge/control is missing"
    offenders = [f"{p.relative_to(PACKAGE)} imports {n}" for p in sorted(folder.rglob("*.py")) for n in _imports(p)
                 if n.split(".")[0] == "reapy" or n.startswith(("bridge.daw.reapy", "bridge.daw.osc_target"))]
    assert not offenders, offenders


def test_the_watcher_is_the_only_importer_of_watchdog():
    users = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if "watchdog" in {n.split(".")[0] for n in _imports(p)})
    assert all(u.startswith("watch/") for u in users), users


def test_importing_the_watch_package_does_not_import_watchdog():
    import subprocess
    import sys

    code = "import sys, bridge.watch, bridge.cli; print('watchdog' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_analysis_workers_never_import_scipy_signal():
    # scipy.signal pulls in scipy.stats, optimize, interpolate ...: about a second of import and
    # tens of MB in the fork server and in every worker (issue 15's memory target).
    import subprocess
    import sys

    from bridge.forkserver import PRELOAD

    code = ("import sys\n" + "".join(f"import {m}\n" for m in PRELOAD)
            + "print(sorted(m for m in sys.modules if m.startswith('scipy.signal')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", PURE_MODULES)
def test_reconciliation_and_the_shared_records_are_pure(module):
    path = PACKAGE / module
    assert path.is_file(), f"bridge/{module} is missing"
    offenders = [n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in PURE_MODULE_FORBIDDEN)]
    assert not offenders, f"bridge/{module} imports {offenders}"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles_in_bridge():
    """Every import counts (module level and inside functions; not ``if TYPE_CHECKING``), and importing
    ``a.b.c`` imports the packages ``a.b`` first; a module importing its own package is no edge."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py") if "reaper_scripts" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        own = {".".join(name.split(".")[:k]) for k in range(1, len(name.split(".")) + 1)}
        edges = set()
        for target in _imports(path):
            parts = target.split(".")
            for k in range(2, len(parts) + 1):
                prefix = ".".join(parts[:k])
                if prefix in modules and prefix not in own:
                    edges.add(prefix)
        graph[name] = edges
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_connection_defaults_exist_in_one_place():
    """Ports and hosts default only in bridge/settings.py; every other default refers to it."""
    literals = {2307, 8000, 9000, 9100, "127.0.0.1"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "settings.py" or "reaper_scripts" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for default in node.args.defaults + node.args.kw_defaults:
                    if isinstance(default, ast.Constant) and default.value in literals:
                        offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}(... = {default.value!r})")
    assert not offenders, "connection defaults outside bridge/settings.py:\n" + "\n".join(offenders)
