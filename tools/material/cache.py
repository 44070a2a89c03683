"""Where built material is kept, and the keys it is kept under.

``MIXBRIDGE_MATERIAL_CACHE`` overrides the default ``~/.cache/mixbridge-material``.  Keys hash
the recipe (canonical JSON) together with :func:`code_version`: the builder's own source files,
the fluidsynth and espeak-ng versions and the size of every soundfont, so a changed builder or
tool never serves stale material.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

ENV_VAR = "MIXBRIDGE_MATERIAL_CACHE"
#: Bump when the output format changes in a way the source hash would not show.
BUILDER_VERSION = "1"


def cache_root() -> Path:
    root = os.environ.get(ENV_VAR)
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "mixbridge-material"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of everything that decides the bytes the builder writes (besides the recipe)."""
    from .soundfonts import SOUNDFONTS, fluidsynth_version
    from .voice import espeak_version

    h = hashlib.sha256(BUILDER_VERSION.encode())
    here = Path(__file__).parent
    for path in sorted(here.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(fluidsynth_version().encode())
    h.update(espeak_version().encode())
    for font in SOUNDFONTS.values():
        h.update(f"{font.path}:{font.path.stat().st_size if font.path.exists() else -1}".encode())
    import numpy
    import scipy
    h.update(f"numpy {numpy.__version__} scipy {scipy.__version__}".encode())
    return h.hexdigest()[:16]


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def key_of(obj) -> str:
    return hashlib.sha256((canonical(obj) + code_version()).encode()).hexdigest()[:20]


def load_array(kind: str, key: str) -> np.ndarray | None:
    path = cache_root() / kind / f"{key}.npy"
    if not path.exists():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None


def store_array(kind: str, key: str, array: np.ndarray) -> None:
    """Write atomically (temp file + rename): a crashed build never leaves half an entry."""
    folder = cache_root() / kind
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, folder / f"{key}.npy")
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cached_array(kind: str, description, build) -> np.ndarray:
    """``build()`` once per ``description`` (any JSON-able value); later calls load it."""
    key = key_of(description)
    found = load_array(kind, key)
    if found is not None:
        return found
    array = np.ascontiguousarray(build(), dtype=np.float32)
    store_array(kind, key, array)
    return array
