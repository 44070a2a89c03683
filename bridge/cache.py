"""The analysis cache: per-stem results keyed by content, and the last pass's mix as group sums.

Lives in ``<stems dir>/.mixbridge/cache/`` (see ``docs/cache.md``)::

    cache/
      index.json                 path -> (size, mtime_ns, ctime_ns, inode, sha256, fingerprint, crc32)
      entries/<sha256>/          one stem's content, whatever its file name
        entry.json               schema, analysis version, StemInfo, StemAnalysis (JSON) and its digest
        arrays.npz               slim StemFeatures + the activity mask (no pickles)
      mix/
        state.json               mix rate and length; the groups: sum file, its stat, member hashes
        group-<token>.f32        float32 stereo sum of one group of stems at the mix rate
        features-<token>.npz     the summed mix's features (a no-change pass decodes nothing)
      tmp/                       entries and sums being built; renamed into place only when complete

The mix is kept as a few *group sums* (each the sum of a handful of stems), not as a copy of every
stem: a changed stem's group is summed again from its other members, which are unchanged on disk,
so the cache holds no audio of its own beyond those few sums (:func:`group_plan` sizes them).
Entries are keyed by the SHA-256 of the file's bytes, so an identical re-render (new mtime,
same bytes) is a hit; an unchanged ``stat`` skips even the hashing, and a rewritten file whose
size and sampled blocks (:func:`fingerprint`) match is served at once while its full CRC-32
(:func:`crc_file`) is checked in the background (see ``bridge.pipeline``).  Every entry names the
schema version and :data:`ANALYSIS_VERSION` (a hash of the analysis source code), so results from
other code are never used.  Anything that does not parse and check is deleted and rebuilt.
Writes go to ``tmp/`` and are renamed into place, so a process killed at any moment leaves either
a whole entry or none.  Only this module reads or writes the cache's files.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

import numpy as np

from .analyze.features import StemFeatures
from .analyze.levels import ClipStats
from .analyze.stem import FaultMeasures, LevelMeasures, LoudnessMeasures, SpectrumMeasures, StemAnalysis
from .analyze.stereo import StereoMeasures
from .files import open_regular, read_regular, write_atomic

SCHEMA = "mixbridge-cache"
#: Bumped whenever the layout or the JSON of an entry changes (3: group sums, no snapshots).
SCHEMA_VERSION = 3
#: Default bound on the cache's size on disk; least recently used entries go first.
DEFAULT_MAX_BYTES = 8 * 1024 ** 3
#: Build folders older than this are leftovers of a killed process.
STALE_TMP_S = 3600.0
#: The group sums may take this share of the session's stem bytes on disk (the entries add ~1 %).
GROUP_SUMS_SHARE = 0.30
_CHUNK = 1 << 20


def _kernel_name() -> str:
    import importlib.util

    return "numba" if importlib.util.find_spec("numba") is not None else "scipy"


def _analysis_version() -> str:
    """A hash of every source file whose code decides a cached number.

    Any edit to the analysis (or to how stems are read and summed) invalidates the cache by
    itself, with no version constant to forget.
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256(_kernel_name().encode())  # the two K-weighting kernels differ in the last digits
    for path in sorted((root / "analyze").glob("*.py")) + [root / "stems.py", root / "pipeline.py"]:
        digest.update(path.name.encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            pass
    return digest.hexdigest()[:16]


ANALYSIS_VERSION = _analysis_version()


# ---------------------------------------------------------------------------------------- codec
# StemAnalysis is a tree of frozen dataclasses holding floats, None, tuples and one bool array.
# JSON keeps floats exactly (shortest repr round-trips); tuples come back as tuples.
_NESTED: dict[type, dict[str, type]] = {
    StemAnalysis: {"loudness": LoudnessMeasures, "levels": LevelMeasures, "faults": FaultMeasures,
                   "spectrum": SpectrumMeasures, "stereo": StereoMeasures},
    FaultMeasures: {"clip": ClipStats},
}


def _encode(value):
    if is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)
                if not isinstance(getattr(value, f.name), np.ndarray)}
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _decode(cls: type, data: dict, arrays: dict[str, np.ndarray] | None = None):
    nested = _NESTED.get(cls, {})
    values = {}
    for f in fields(cls):
        if f.name in nested:
            raw = data[f.name]
            values[f.name] = None if raw is None else _decode(nested[f.name], raw)
        elif arrays is not None and f.name in arrays:
            values[f.name] = arrays[f.name]
        else:
            values[f.name] = _tuples(data[f.name])
    return cls(**values)


def analysis_to_json(analysis: StemAnalysis) -> dict:
    """A :class:`StemAnalysis` as JSON-able data; the ``active`` array is stored beside it."""
    return _encode(analysis)


def analysis_from_json(data: dict, active: np.ndarray) -> StemAnalysis:
    return _decode(StemAnalysis, data, {"active": active.astype(bool)})


# ---------------------------------------------------------------------------------------- files
def stat_key(path: Path) -> list[int]:
    """What must not change for a file's recorded hash to still hold.

    ctime is in too: no tool can set it back, so a rewrite that restores size and mtime still
    misses the fast path and gets hashed.
    """
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def hash_file(path: Path) -> str:
    """SHA-256 of a file's bytes (hashlib releases the GIL, so threads hash in parallel).

    Only a regular file is opened, never blocking (a FIFO raises :class:`~bridge.files.NotRegular`).
    """
    with os.fdopen(open_regular(path), "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _read_chunks(path: Path):
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with os.fdopen(open_regular(path), "rb", buffering=0) as fh:
        while got := fh.readinto(buffer):
            yield view[:got]


def hash_and_crc(path: Path) -> tuple[str, int]:
    """SHA-256 (the content key) and CRC-32 (:func:`crc_file`) of a file, in one read."""
    digest, crc = hashlib.sha256(), 0
    for chunk in _read_chunks(path):
        digest.update(chunk)
        crc = zlib.crc32(chunk, crc)
    return digest.hexdigest(), crc


def crc_file(path: Path) -> int:
    """CRC-32 of every byte of a file: how a provisional "unchanged" (:func:`fingerprint`) is confirmed.

    Not a content key: it only has to tell the bytes recorded with a SHA-256 from other bytes of
    the same size, header, tail and sampled blocks.  It catches every change of up to 32
    consecutive bits and any other with probability 1 - 2**-32, at about 3.4 times SHA-256's speed
    here (zlib releases the GIL: threads check in parallel).
    """
    crc = 0
    for chunk in _read_chunks(path):
        crc = zlib.crc32(chunk, crc)
    return crc


#: The sampled-block fingerprint: the first 64 KiB (every header), the last 16 KiB (trailing
#: chunks) and this many 4 KiB blocks spread evenly between them.
FINGERPRINT_BLOCKS = 32
_HEAD, _TAIL, _BLOCK = 64 * 1024, 16 * 1024, 4 * 1024


def fingerprint(path: Path) -> str:
    """A cheap "did this file change?" digest: size, header, tail and a few sampled blocks.

    About 200 KiB are read whatever the file's size.  Equal fingerprints do not prove equal
    bytes (a change between the sampled blocks is missed), so a match is only provisional: the
    pass checks the full SHA-256 before it trusts it.  A differing fingerprint does prove a change.
    """
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        if size <= _HEAD + _TAIL + FINGERPRINT_BLOCKS * _BLOCK:
            digest.update(fh.read())
            return digest.hexdigest()
        digest.update(fh.read(_HEAD))
        span = size - _HEAD - _TAIL - _BLOCK
        for k in range(FINGERPRINT_BLOCKS):
            fh.seek(_HEAD + span * k // (FINGERPRINT_BLOCKS - 1))
            digest.update(fh.read(_BLOCK))
        fh.seek(size - _TAIL)
        digest.update(fh.read(_TAIL))
    return digest.hexdigest()


def _write_json_atomic(path: Path, doc: dict) -> None:
    # Rebuildable from the stems: bridge.files' non-durable policy (no fsync behind a render's writes).
    write_atomic(path, json.dumps(doc, separators=(",", ":")), durable=False)


#: The largest cache JSON file read (an entry is a few hundred kB; the index ~200 B per stem).
MAX_JSON_BYTES = 64 * 1024 * 1024


def _read_json(path: Path) -> dict | None:
    """A cache JSON document, or ``None`` for anything that is not a regular file of valid JSON."""
    try:
        doc = json.loads(read_regular(path, MAX_JSON_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _digest_json(value) -> str:
    """SHA-256 of a JSON value in one canonical spelling (an entry's analysis is checked against it)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _loadz(path: Path) -> dict[str, np.ndarray]:
    # allow_pickle=False: an .npz can only ever give back plain arrays.
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _is_sha(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _dir_bytes(path: Path) -> int:
    total = 0
    try:
        for child in os.scandir(path):
            try:
                total += child.stat(follow_symlinks=False).st_size
            except OSError:
                pass
    except OSError:
        pass
    return total


def _remove_tree(path: Path) -> None:
    """Remove a folder so that no reader ever sees it half deleted: rename away, then delete."""
    try:
        doomed = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.del")
        os.rename(path, doomed)
    except OSError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


# ---------------------------------------------------------------------------------------- values
@dataclass(frozen=True, slots=True)
class CachedStem:
    """One cache entry, loaded and checked.

    Attributes
    ----------
    sha256 : str
    header : dict
        The StemInfo fields that do not depend on where the file lives
        (``sample_rate``, ``channels``, ``frames``, ``format``, ``subtype``).
    analysis : StemAnalysis
    features : StemFeatures
        Slim (see :meth:`StemFeatures.slim`).
    """

    sha256: str
    header: dict
    analysis: StemAnalysis
    features: StemFeatures


@dataclass(frozen=True, slots=True)
class GroupSum:
    """One group sum: a float32 stereo file holding the sum of ``members`` at the mix rate.

    ``members`` lists content hashes with repetition (two identical stems are both in the sum).
    ``stat`` is the file's :func:`stat_key` once it is in ``mix/`` (``None`` while it is being
    built): checked before and after it is read, so a sum rewritten, zeroed or replaced in any
    way (its ctime moves) is never used -- the trust the stems' own stat fast path has.
    """

    path: Path
    members: tuple[str, ...]
    stat: list[int] | None = None


@dataclass(frozen=True, slots=True)
class MixState:
    """The last pass's mix: its rate and length, its groups, and the features of their sum."""

    mix_rate: int
    mix_frames: int
    groups: tuple[GroupSum, ...]
    features: StemFeatures

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(m for g in self.groups for m in g.members)


def group_plan(n_stems: int, stem_bytes: int, mix_frames: int) -> tuple[int, int]:
    """``(stems per group, most groups)`` for a session: the group sums stay within
    :data:`GROUP_SUMS_SHARE` of the stems' bytes, whatever the material.

    A full pass aims at one group fewer than the most, so the next re-bounce can put its changed
    stem in a group of its own (re-bouncing that stem again then decodes only that stem).
    """
    sum_bytes = max(1, mix_frames * 2 * 4)
    most = max(1, int(GROUP_SUMS_SHARE * stem_bytes // sum_bytes))
    aim = max(1, most - 1)
    return max(1, -(-n_stems // aim)), most


HEADER_FIELDS = ("sample_rate", "channels", "frames", "format", "subtype")


class AnalysisCache:
    """Per-stem analysis results keyed by content, plus the last mix sum.  See the module docs.

    Parameters
    ----------
    folder : path
        The cache folder, normally ``<stems dir>/.mixbridge/cache`` (:meth:`for_stems`).
    max_bytes : int
        Size bound; :meth:`evict` drops least recently used entries beyond it.
    """

    def __init__(self, folder: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.entries = self.folder / "entries"
        self.tmp = self.folder / "tmp"
        self.mix_dir = self.folder / "mix"
        for d in (self.entries, self.tmp, self.mix_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, list] | None = None
        self._index_dirty = False
        #: Entries already read and checked by this object, with the stat of their files then: a
        #: long-lived cache (the watcher's) does not parse 24 entries again on every re-bounce.
        self._loaded: dict[str, tuple[list, CachedStem]] = {}

    @classmethod
    def for_stems(cls, stems_dir: str | os.PathLike, **kwargs) -> "AnalysisCache":
        return cls(Path(stems_dir) / ".mixbridge" / "cache", **kwargs)

    # ------------------------------------------------------------------ path -> hash fast path
    def _load_index(self) -> dict[str, list]:
        if self._index is None:
            doc = _read_json(self.folder / "index.json") or {}
            ok = doc.get("schema") == SCHEMA and doc.get("schema_version") == SCHEMA_VERSION
            files = doc.get("files") if ok and isinstance(doc.get("files"), dict) else {}
            # Every record checked for shape and types; a bad one is dropped (that stem is hashed again).
            self._index = {k: v for k, v in files.items()
                           if isinstance(v, list) and len(v) == 7 and all(type(x) is int and x >= 0 for x in v[:4])
                           and isinstance(v[4], str) and _is_sha(v[4]) and isinstance(v[5], str) and _is_sha(v[5])
                           and type(v[6]) is int and 0 <= v[6] < 2 ** 32}
        return self._index

    def known_hash(self, path: Path) -> str | None:
        """The content hash of ``path`` if its stat is unchanged since it was last hashed."""
        record = self._load_index().get(str(Path(path).resolve()))
        if record is None:
            return None
        try:
            current = stat_key(path)
        except OSError:
            return None
        return record[4] if record[:4] == current else None

    def probable_hash(self, path: Path) -> tuple[str, str, int] | None:
        """``(sha256, fingerprint, crc32)`` recorded for ``path`` when its stat moved but size and
        :func:`fingerprint` agree.

        Provisional: the caller must confirm it with :func:`crc_file` before trusting the result.
        """
        record = self._load_index().get(str(Path(path).resolve()))
        if record is None:
            return None
        try:
            if os.stat(path).st_size != record[0] or fingerprint(Path(path)) != record[5]:
                return None
        except OSError:
            return None
        return record[4], record[5], record[6]

    def remember(self, path: Path, stat: list[int], sha256: str, print_: str, crc32: int) -> None:
        self._load_index()[str(Path(path).resolve())] = list(stat) + [sha256, print_, crc32]
        self._index_dirty = True

    def forget(self, path: Path) -> None:
        if self._load_index().pop(str(Path(path).resolve()), None) is not None:
            self._index_dirty = True

    def save_index(self) -> None:
        if not self._index_dirty:
            return
        index = self._load_index()
        live = {k: v for k, v in index.items() if (self.entries / v[4]).is_dir()}
        _write_json_atomic(self.folder / "index.json",
                           {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "files": live})
        self._index_dirty = False

    # ------------------------------------------------------------------ entries
    def entry_dir(self, sha256: str) -> Path:
        return self.entries / sha256

    def load(self, sha256: str) -> CachedStem | None:
        """The entry for a content hash, or ``None``; a bad entry is deleted so it gets rebuilt."""
        folder = self.entry_dir(sha256)
        try:
            stats = [stat_key(folder / "entry.json"), stat_key(folder / "arrays.npz")]
        except OSError:
            stats = None
        if stats is None and not folder.is_dir():
            self._loaded.pop(sha256, None)
            return None
        memo = self._loaded.get(sha256)
        if memo is not None and stats is not None and memo[0] == stats:
            entry = memo[1]  # the very files checked before (ctime moves on any write to them)
        else:
            try:
                entry = self._read_entry(folder, sha256) if stats is not None else None
            except Exception:  # anything malformed, truncated or foreign: never used, rebuilt
                entry = None
            if entry is None:
                self._loaded.pop(sha256, None)
                _remove_tree(folder)
                return None
            self._loaded[sha256] = (stats, entry)
        try:
            os.utime(folder)  # least-recently-used order for eviction
        except OSError:
            pass
        return entry

    def _read_entry(self, folder: Path, sha256: str) -> CachedStem | None:
        doc = _read_json(folder / "entry.json")
        if (doc is None or doc.get("schema") != SCHEMA or doc.get("schema_version") != SCHEMA_VERSION
                or doc.get("analysis_version") != ANALYSIS_VERSION or doc.get("sha256") != sha256):
            return None
        header = doc["header"]
        if set(header) != set(HEADER_FIELDS) or not all(type(header[k]) is int for k in ("sample_rate", "channels", "frames")):
            return None
        # Both halves of the entry are checked against the digests written with them: an entry
        # altered in place (a hand edit, a bad sector) is rebuilt, never served.
        if (doc.get("analysis_sha256") != _digest_json(doc["analysis"])
                or doc.get("arrays_sha256") != hash_file(folder / "arrays.npz")):
            return None
        arrays = _loadz(folder / "arrays.npz")
        active = arrays.pop("active")
        features = StemFeatures.from_arrays(arrays)
        analysis = analysis_from_json(doc["analysis"], active)
        frames = features.n_frames
        bands = features.band_power.shape[1] if features.band_power.ndim == 2 else -1
        if (features.sample_rate != header["sample_rate"] or features.channels != header["channels"]
                or len(active) != frames or features.subhop_power.shape[1:] != (features.channels,)
                or bands <= 0 or len(analysis.spectrum.band_db) != bands):
            return None
        return CachedStem(sha256, header, analysis, features)

    def new_build(self) -> Path:
        """A private folder to build one entry in (see :meth:`commit`)."""
        folder = self.tmp / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        folder.mkdir(parents=True)
        return folder

    def commit(self, build: Path, sha256: str, header: dict, analysis: StemAnalysis, features: StemFeatures,
               size: int) -> bool:
        """Write an entry in the private folder ``build`` (:meth:`new_build`) and publish it.

        The JSON goes last, and the folder appears under ``entries/`` by one rename: a reader sees
        the whole entry or nothing.  Returns False when another writer published it first.
        """
        arrays = features.to_arrays()
        arrays["active"] = np.asarray(analysis.active, dtype=bool)
        _savez(build / "arrays.npz", arrays)
        analysis_doc = analysis_to_json(analysis)
        doc = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "analysis_version": ANALYSIS_VERSION,
               "sha256": sha256, "size": size, "header": {k: header[k] for k in HEADER_FIELDS}, "analysis": analysis_doc,
               "analysis_sha256": _digest_json(analysis_doc), "arrays_sha256": hash_file(build / "arrays.npz"),
               "created_at": time.time()}
        with open(build / "entry.json", "w", encoding="utf-8") as fh:
            json.dump(doc, fh, separators=(",", ":"))
        target = self.entry_dir(sha256)
        try:
            os.rename(build, target)
            return True
        except OSError:  # already there (a concurrent writer): keep theirs
            shutil.rmtree(build, ignore_errors=True)
            return False

    def discard(self, build: Path) -> None:
        shutil.rmtree(build, ignore_errors=True)

    def clean_tmp(self, older_than_s: float = STALE_TMP_S) -> None:
        """Remove build folders left by killed processes: those whose builder (named in the folder's
        name) is gone, at once; one of a live builder is never touched, however old it looks (a wall
        clock that jumps forward must not delete a build under way); other names after ``older_than_s``."""
        now = time.time()
        try:
            children = list(self.tmp.iterdir()) + [p for p in self.folder.rglob(".*.del")]
        except OSError:
            return
        for child in children:
            try:
                owner = child.name.split("-", 1)[0]
                if owner.isdigit():
                    stale = not _pid_alive(int(owner))
                else:
                    stale = now - child.stat().st_mtime > older_than_s or child.name.endswith(".del")
                if stale:
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
            except OSError:
                pass

    # ------------------------------------------------------------------ the mix
    def load_mix_state(self, mix_rate: int, mix_frames: int) -> MixState | None:
        """The last mix, if it was summed at this rate and length and its files check out.

        ``state.json`` is validated field by field; every group file must have the recorded
        :func:`stat_key` (size, mtime, ctime, inode: any write moves the ctime) and the features
        file its recorded SHA-256 (a no-change pass uses the features as they are).  The stat is
        checked again around every read (:func:`bridge.pipeline._mix_groups`), so a sum zeroed or
        altered at the same size is never trusted: the pass sums the mix afresh.
        """
        doc = _read_json(self.mix_dir / "state.json")
        try:
            if (doc is None or doc.get("schema") != SCHEMA or doc.get("schema_version") != SCHEMA_VERSION
                    or doc.get("analysis_version") != ANALYSIS_VERSION or doc.get("mix_rate") != mix_rate
                    or doc.get("mix_frames") != mix_frames or doc.get("channels") != 2):
                return None
            features_name, features_sha = doc.get("features"), doc.get("features_sha256")
            raw_groups = doc.get("groups")
            if (not isinstance(features_name, str) or not isinstance(features_sha, str) or not _is_sha(features_sha)
                    or not isinstance(raw_groups, list) or not raw_groups):
                return None
            groups = []
            for raw in raw_groups:
                name, members, stat = raw.get("sum"), raw.get("members"), raw.get("stat")
                if (not isinstance(name, str) or not isinstance(members, list) or not members
                        or not all(isinstance(m, str) and _is_sha(m) for m in members)
                        or not isinstance(stat, list) or len(stat) != 4
                        or not all(type(x) is int and x >= 0 for x in stat) or not stat[0] <= mix_frames * 8):
                    return None
                path = self.mix_dir / name
                if path.parent != self.mix_dir or stat_key(path) != stat:
                    return None
                groups.append(GroupSum(path, tuple(members), stat))
            features_path = self.mix_dir / features_name
            if features_path.parent != self.mix_dir or hash_file(features_path) != features_sha:
                return None
            features = StemFeatures.from_arrays(_loadz(features_path))
            if features.sample_rate != mix_rate or features.channels != 2:
                return None
            return MixState(mix_rate, mix_frames, tuple(groups), features)
        except Exception:
            return None

    def new_sum_path(self) -> Path:
        """A fresh name for a group sum being written (in ``mix/``; only ``state.json`` makes it live)."""
        return self.mix_dir / f"group-{uuid.uuid4().hex[:12]}.f32"

    def adopt_sum(self, group: GroupSum) -> GroupSum:
        """Move a group sum built elsewhere in the cache (a pass's scratch in ``tmp/``) into ``mix/``;
        the group with its new path and its stat there."""
        target = self.new_sum_path()
        os.rename(group.path, target)
        return GroupSum(target, group.members, stat_key(target))

    def save_mix_state(self, mix_rate: int, mix_frames: int, groups: list[GroupSum], features: StemFeatures) -> None:
        """Record the mix just summed: its groups (files already in ``mix/``) and the features of their
        sum; files of older states are deleted after the switch."""
        features_name = f"features-{uuid.uuid4().hex[:12]}.npz"
        _savez(self.mix_dir / features_name, features.to_arrays())
        _write_json_atomic(self.mix_dir / "state.json", {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "analysis_version": ANALYSIS_VERSION,
            "mix_rate": mix_rate, "mix_frames": mix_frames, "channels": 2,
            "groups": [{"sum": g.path.name, "members": sorted(g.members), "stat": list(g.stat)} for g in groups],
            "features": features_name, "features_sha256": hash_file(self.mix_dir / features_name)})
        self._prune_mix(keep={g.path.name for g in groups} | {features_name})

    def drop_mix_state(self, keep: set[str] = frozenset()) -> None:
        try:
            (self.mix_dir / "state.json").unlink()
        except OSError:
            pass
        self._prune_mix(keep=set(keep))

    def _prune_mix(self, keep: set[str]) -> None:
        for child in self.mix_dir.iterdir():
            if child.name != "state.json" and child.name not in keep and not child.name.startswith("."):
                try:
                    child.unlink()
                except OSError:
                    pass

    # ------------------------------------------------------------------ size bound
    def evict(self, keep: set[str] = frozenset()) -> list[str]:
        """Drop least recently used entries (never those in ``keep``) until under ``max_bytes``.

        Returns the hashes removed.
        """
        sized = []
        total = sum(_dir_bytes(p) for p in (self.mix_dir,))
        for child in self.entries.iterdir():
            if not child.is_dir():
                continue
            size = _dir_bytes(child)
            total += size
            try:
                sized.append((child.stat().st_mtime, child.name, size))
            except OSError:
                pass
        removed = []
        for _, name, size in sorted(sized):
            if total <= self.max_bytes:
                break
            if name in keep:
                continue
            _remove_tree(self.entries / name)
            total -= size
            removed.append(name)
        return removed


def members_delta(old: tuple[str, ...], new: list[str]) -> tuple[list[str], list[str]]:
    """(to add, to subtract), as multisets, turning the ``old`` mix members into ``new``."""
    before, after = Counter(old), Counter(new)
    return list((after - before).elements()), list((before - after).elements())
