"""Packaging: the wheel carries the in-REAPER files, a non-editable install can run ``install-scripts``,
the licence is an SPDX string, and ``index.xml`` is a ReaPack index of the scripts as they are."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import reapack_index  # noqa: E402


def test_index_xml_is_a_reapack_index_of_the_scripts_as_they_are():
    assert reapack_index.main(["--check"]) == 0, "index.xml is stale: run python tools/reapack_index.py"
    root = ET.parse(REPO / "index.xml").getroot()
    assert root.tag == "index" and root.get("version") == "1" and root.get("name") == "MixBridge"
    (category,) = root.findall("category")
    packages = {p.get("name"): p for p in category.findall("reapack")}
    expected = {p.name for p in reapack_index.packages()}
    assert set(packages) == expected and "MixBridge_request.lua" not in packages, "the @noindex library is no package"
    assert {"MixBridge_Toggle AB.lua", "MixBridge_Start_bridge_server.py", "channel_polarity.jsfx"} <= expected
    for path in reapack_index.packages():
        pkg = packages[path.name]
        tags = reapack_index.header(path)
        assert pkg.get("type") == ("effect" if path.suffix == ".jsfx" else "script")
        (version,) = pkg.findall("version")
        assert version.get("name") == tags["version"][0] and re.fullmatch(r"\d+(\.\d+)+", version.get("name"))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", version.get("time"))
        sources = version.findall("source")
        assert sources[0].text.endswith(path.relative_to(reapack_index.SCRIPTS).as_posix().replace(" ", "%20"))
        assert (sources[0].get("main") == "main") == (path.suffix != ".jsfx"), "scripts are actions, effects not"
        for extra in sources[1:]:
            assert (path.parent / extra.get("file")).is_file(), extra.get("file")


def test_the_licence_is_an_spdx_string():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license = "MIT"$', text, re.M) and "license = {" not in text


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_runs_install_scripts(tmp_path):
    """Build the wheel (as pip would), install it without the source tree, install the scripts."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(REPO)], capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and "No matching distribution" in built.stderr + built.stdout:
        pytest.skip("no package index reachable to fetch the build backend")  # reported by make test
    assert built.returncode == 0, built.stdout + built.stderr
    assert "Deprecat" not in built.stdout + built.stderr, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("mixbridge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("bridge/reaper_scripts/MixBridge_Toggle AB.lua", "bridge/reaper_scripts/MixBridge.ReaperOSC",
                    "bridge/reaper_scripts/Effects/MixBridge/channel_polarity.jsfx",
                    "bridge/reaper_scripts/MixBridge_Start_bridge_server.py",
                    "bridge/reaper_scripts/surfaces/mixbridge.json", "bridge/web/static/index.html",
                    "bridge/web/static/app.js", "bridge/web/static/app.css"):
        assert shipped in names, shipped
    packages = {Path(n).parent.as_posix() for n in names if n.endswith("/__init__.py")}
    source_packages = {p.parent.relative_to(REPO).as_posix() for p in (REPO / "bridge").rglob("__init__.py")}
    assert packages == source_packages, "every package of bridge/ is in the wheel"
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with zipfile.ZipFile(wheel) as z:  # what pip does with a pure wheel: unpack it into site-packages
        z.extractall(site)
    # The dependencies (numpy, scipy, ...) from this interpreter, after the fresh site-packages, so
    # `bridge` itself can only come from the wheel (a path in a .pth file is appended, not processed).
    ours = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(ours + "\n")
    where = subprocess.run([str(python), "-c", "import bridge; print(bridge.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(site), f"bridge came from {where}, not the wheel"
    page = subprocess.run([str(python), "-c", "from importlib import resources; from bridge.web.server import ASSETS; "
                           "print(sum(len(resources.files('bridge.web').joinpath('static', n).read_bytes()) > 500 "
                           "for n in ASSETS))"], cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert page.stdout.strip() == "3", page.stdout + page.stderr  # the review page loads from the wheel
    resource = tmp_path / "fresh" / "REAPER"
    done = subprocess.run([str(python), "-m", "bridge", "install-scripts", "--resource-path", str(resource)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (resource / "Scripts" / "MixBridge" / "MixBridge_Toggle AB.lua").is_file()
    assert (resource / "OSC" / "MixBridge.ReaperOSC").is_file()
    assert "MixBridge_Start_bridge_server.py" in done.stdout.split("Next, in REAPER")[1]
