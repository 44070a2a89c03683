"""Build hook: put the in-REAPER files into the wheel as package data (``bridge/reaper_scripts/``).

The files live at the repository's top (``reaper_scripts/``), where REAPER users, ReaPack's
``index.xml`` and the tests find them; ``mixbridge install-scripts`` reads them from the package
(installed) or from the checkout.  Everything else about the package is in ``pyproject.toml``.
"""
from pathlib import Path
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: What ships (the same set bridge.install.planned_files copies, plus the surface layouts).
SHIPPED = ("*.lua", "MixBridge_Start_bridge_server.py", "*.ReaperOSC", "Effects/MixBridge/*.jsfx",
           "surfaces/*.json", "surfaces/*.py")


class build_py_with_scripts(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's reaper_scripts/ directly
            return
        target = Path(self.build_lib) / "bridge" / "reaper_scripts"
        for pattern in SHIPPED:
            for source in sorted((ROOT / "reaper_scripts").glob(pattern)):
                dest = target / source.relative_to(ROOT / "reaper_scripts")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)


setup(cmdclass={"build_py": build_py_with_scripts})
