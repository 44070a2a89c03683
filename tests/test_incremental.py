"""The analysis cache and the incremental pass: a re-bounce decodes only what changed, and every
incremental result equals a fresh full analysis of the same files."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bridge.cache import AnalysisCache, analysis_from_json, analysis_to_json
from bridge.pipeline import analyze_session
from bridge.synth import default_session, write_session

ROOT = Path(__file__).resolve().parents[1]
DURATION_S = 6.0
SPECS = default_session()[:5]


@pytest.fixture
def stems(tmp_path) -> Path:
    folder = tmp_path / "stems"
    write_session(folder, SPECS, duration_s=DURATION_S)
    return folder


def _cache(folder: Path) -> AnalysisCache:
    return AnalysisCache.for_stems(folder)


def _rerender(folder: Path, index: int, seed: int, duration_s: float = DURATION_S, level_db: float = -12.0):
    """Rewrite one stem with different content (same name)."""
    write_session(folder, [dataclasses.replace(SPECS[index], seed=seed, level_db=level_db)], duration_s=duration_s)


def _assert_same_analysis(a, b, label: str) -> None:
    for field in ("loudness", "levels", "faults", "spectrum", "stereo"):
        assert getattr(a, field) == getattr(b, field), f"{label}: {field} differs"
    assert np.array_equal(a.active, b.active), f"{label}: activity differs"


def assert_equals_fresh(result, folder: Path) -> None:
    """``result`` (incremental) equals a full analysis of the same files without any cache."""
    fresh = analyze_session([folder], jobs=1)
    assert [s.name for s in result.stems] == [s.name for s in fresh.stems]
    for mine, theirs in zip(result.stems, fresh.stems):
        assert (mine.error is None) == (theirs.error is None), mine.name
        if theirs.error is not None:
            assert mine.error.code == theirs.error.code
            continue
        assert mine.info == theirs.info
        _assert_same_analysis(mine.analysis, theirs.analysis, mine.name)
        assert np.array_equal(result.features[mine.name].band_power, fresh.features[mine.name].band_power)
    a, b = result.mix.summed.loudness, fresh.mix.summed.loudness
    assert a.integrated_lufs == pytest.approx(b.integrated_lufs, abs=0.01)
    assert a.lra_lu == pytest.approx(b.lra_lu, abs=0.01)
    assert result.mix.summed.levels.true_peak_dbtp == pytest.approx(fresh.mix.summed.levels.true_peak_dbtp, abs=0.01)
    assert result.mix.summed.spectrum.band_db == pytest.approx(fresh.mix.summed.spectrum.band_db, abs=0.01)
    assert result.mix.masking == fresh.mix.masking
    assert [s.section for s in result.mix.sections] == [s.section for s in fresh.mix.sections]
    for mine, theirs in zip(result.mix.sections, fresh.mix.sections):
        assert mine.stem_lufs == theirs.stem_lufs
        assert (mine.mix_lufs is None) == (theirs.mix_lufs is None)
        if mine.mix_lufs is not None:
            assert mine.mix_lufs == pytest.approx(theirs.mix_lufs, abs=0.011)
    assert result.mix.alignment == fresh.mix.alignment


def test_second_pass_with_nothing_changed_decodes_nothing(stems):
    seen = []
    first = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert sorted(first.reanalysed) == sorted(s.name for s in SPECS) and first.cached == ()
    second = analyze_session([stems], cache=_cache(stems), jobs=2, progress=seen.append)
    assert second.reanalysed == ()
    assert sorted(second.cached) == sorted(s.name for s in SPECS)
    assert sorted(r.name for r in seen) == sorted(s.name for s in SPECS)  # progress once per stem
    assert second.mix.summed.loudness == first.mix.summed.loudness
    assert_equals_fresh(second, stems)


def test_one_changed_stem_is_the_only_one_reanalysed(stems):
    analyze_session([stems], cache=_cache(stems), jobs=2)
    for attempt in range(2):  # twice: the second update starts from an incrementally updated mix
        _rerender(stems, 2, seed=700 + attempt, level_db=-10.0 - attempt)
        result = analyze_session([stems], cache=_cache(stems), jobs=2)
        assert result.reanalysed == (SPECS[2].name,)
        assert len(result.cached) == len(SPECS) - 1
        assert_equals_fresh(result, stems)


def test_the_inline_path_matches_too(stems):
    analyze_session([stems], cache=_cache(stems), jobs=1)
    _rerender(stems, 0, seed=31)
    result = analyze_session([stems], cache=_cache(stems), jobs=1)
    assert result.reanalysed == (SPECS[0].name,)
    assert_equals_fresh(result, stems)


@pytest.mark.parametrize("duration_s", [4.0, 8.0], ids=["shorter", "longer-than-the-mix"])
def test_a_stem_replaced_by_one_of_another_length(stems, duration_s):
    analyze_session([stems], cache=_cache(stems), jobs=2)
    _rerender(stems, 1, seed=77, duration_s=duration_s)
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == (SPECS[1].name,)
    assert result.stems[[s.name for s in result.stems].index(SPECS[1].name)].info.duration_s == duration_s
    assert_equals_fresh(result, stems)


def test_a_stem_removed_then_added(stems):
    analyze_session([stems], cache=_cache(stems), jobs=2)
    removed = stems / f"{SPECS[3].name}.wav"
    kept = removed.read_bytes()
    removed.unlink()
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == () and SPECS[3].name not in result.cached
    assert_equals_fresh(result, stems)
    removed.write_bytes(kept)  # back again: known content, so served from the cache
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == ()
    assert_equals_fresh(result, stems)
    extra = dataclasses.replace(SPECS[0], name="New_Perc", seed=4242, level_db=-9.5)
    write_session(stems, [extra], duration_s=DURATION_S)
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == ("New_Perc",)
    assert_equals_fresh(result, stems)


def test_a_corrupt_stem_is_an_error_and_the_others_stay_cached(stems):
    analyze_session([stems], cache=_cache(stems), jobs=2)
    bad = stems / f"{SPECS[4].name}.wav"
    bad.write_bytes(b"RIFF" + os.urandom(2000))
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == (SPECS[4].name,)
    assert [s.name for s in result.failed] == [SPECS[4].name]
    assert len(result.cached) == len(SPECS) - 1
    assert_equals_fresh(result, stems)
    # Truncated mid-data: the header reads, the samples do not.
    _rerender(stems, 4, seed=5)
    analyze_session([stems], cache=_cache(stems), jobs=2)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert [s.name for s in result.failed] == [SPECS[4].name]
    assert_equals_fresh(result, stems)


@pytest.mark.parametrize("damage", ["entry.json", "arrays.npz", "version"])
def test_a_damaged_cache_entry_is_ignored_and_rebuilt(stems, damage):
    cache = _cache(stems)
    analyze_session([stems], cache=cache, jobs=2)
    target = stems / f"{SPECS[1].name}.wav"
    sha = cache.known_hash(target)
    entry = cache.entry_dir(sha)
    if damage == "version":
        doc = json.loads((entry / "entry.json").read_text())
        doc["analysis_version"] = "someone-else"
        (entry / "entry.json").write_text(json.dumps(doc))
    else:
        raw = (entry / damage).read_bytes()
        (entry / damage).write_bytes(raw[: len(raw) // 3])
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == (SPECS[1].name,)
    assert _cache(stems).load(sha) is not None  # rebuilt whole
    assert_equals_fresh(result, stems)
    # The rebuilt entry and the groups serve the next change of that stem.
    _rerender(stems, 1, seed=3)
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == (SPECS[1].name,)
    assert_equals_fresh(result, stems)


def test_a_damaged_mix_sum_falls_back_to_a_full_sum(stems):
    cache = _cache(stems)
    analyze_session([stems], cache=cache, jobs=2)
    for f in (cache.folder / "mix").glob("group-*.f32"):
        f.write_bytes(f.read_bytes()[:1000])
    _rerender(stems, 0, seed=12)
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == (SPECS[0].name,)
    assert_equals_fresh(result, stems)


def _groups(cache: AnalysisCache) -> list[dict]:
    return json.loads((cache.folder / "mix" / "state.json").read_text())["groups"]


def test_a_group_sum_with_wrong_bytes_is_never_used(stems):
    """A group sum damaged in place (same size, a few bytes zeroed) no longer has its recorded stat:
    the mix is summed afresh, never measured from it."""
    cache = _cache(stems)
    analyze_session([stems], cache=cache, jobs=2)
    for group in _groups(cache):  # every group: whichever the re-bounce keeps is damaged
        path = cache.folder / "mix" / group["sum"]
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2:len(raw) // 2 + 4000] = bytes(4000)
        path.write_bytes(bytes(raw))
    _rerender(stems, 2, seed=99)
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == (SPECS[2].name,)
    assert_equals_fresh(result, stems)


def test_an_identical_rerender_is_a_hit(stems):
    analyze_session([stems], cache=_cache(stems), jobs=2)
    for path in sorted(stems.glob("*.wav")):
        data = path.read_bytes()
        path.unlink()  # a new inode and new times, the same bytes
        path.write_bytes(data)
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == ()
    assert_equals_fresh(result, stems)


def test_a_killed_build_leaves_nothing_that_is_used(stems):
    cache = _cache(stems)
    analyze_session([stems], cache=cache, jobs=2)
    # What a process killed mid-write leaves: a half build in tmp/ (never renamed into entries/).
    _rerender(stems, 3, seed=55)
    half = cache.new_build()
    sha = __import__("hashlib").sha256((stems / f"{SPECS[3].name}.wav").read_bytes()).hexdigest()
    (half / "audio.wav").write_bytes(b"RIFF")
    (half / "entry.json").write_text('{"schema": "mixbridge-ca')
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == (SPECS[3].name,)
    assert _cache(stems).load(sha) is not None
    assert_equals_fresh(result, stems)


def test_a_real_kill_mid_pass_leaves_a_usable_cache(stems):
    """SIGKILL a pass while it builds entries; the next pass still equals a fresh analysis."""
    code = ("import sys; from bridge.pipeline import analyze_session; from bridge.cache import AnalysisCache\n"
            "if __name__ == '__main__':\n"
            f"    analyze_session([{str(stems)!r}], cache=AnalysisCache.for_stems({str(stems)!r}), jobs=2)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    tmp = stems / ".mixbridge" / "cache" / "tmp"
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if tmp.is_dir() and any(tmp.iterdir()):
                break
            time.sleep(0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the pass and its workers
        proc.wait(timeout=10)
    cache = _cache(stems)
    for entry in (cache.folder / "entries").iterdir():  # whatever got published is whole
        assert cache.load(entry.name) is not None, entry.name
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert_equals_fresh(result, stems)
    again = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert again.reanalysed == ()


def test_a_kill_while_a_re_bounce_writes_its_groups_leaves_a_usable_cache(tmp_path):
    """SIGKILL a re-bounce while its new group sums exist only in tmp/ (not yet named by
    state.json): the state left is the last whole one, and the next pass equals a fresh analysis."""
    stems = tmp_path / "stems"
    write_session(stems, SPECS, duration_s=40.0)  # long enough to be caught mid-pass
    cache = _cache(stems)
    analyze_session([stems], cache=cache, jobs=2)
    before = (cache.folder / "mix" / "state.json").read_bytes()
    _rerender(stems, 2, seed=77, duration_s=40.0)
    code = ("from bridge.pipeline import analyze_session; from bridge.cache import AnalysisCache\n"
            "if __name__ == '__main__':\n"
            f"    analyze_session([{str(stems)!r}], cache=AnalysisCache.for_stems({str(stems)!r}), jobs=2)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    tmp = cache.folder / "tmp"
    caught = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.stat().st_size > 0 for p in tmp.glob("*/group-*.f32")):
                caught = True
                break
            time.sleep(0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert caught, "the re-bounce ended before its group sums were seen being written"
    assert (cache.folder / "mix" / "state.json").read_bytes() == before  # never a half state
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert_equals_fresh(result, stems)
    assert not any(tmp.iterdir()), "the killed pass's build folders were not swept"
    again = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert again.reanalysed == ()


def test_analysis_json_round_trip_is_exact(stems):
    result = analyze_session([stems], jobs=1)
    for stem in result.ok:
        doc = json.loads(json.dumps(analysis_to_json(stem.analysis)))
        _assert_same_analysis(analysis_from_json(doc, stem.analysis.active), stem.analysis, stem.name)


def test_eviction_keeps_the_current_session(stems):
    cache = AnalysisCache.for_stems(stems, max_bytes=1)
    analyze_session([stems], cache=cache, jobs=2)
    _rerender(stems, 0, seed=8)
    analyze_session([stems], cache=AnalysisCache.for_stems(stems, max_bytes=1), jobs=2)
    entries = {p.name for p in (cache.folder / "entries").iterdir()}
    assert len(entries) == len(SPECS)  # the replaced content went; the current five stay
    _rerender(stems, 1, seed=9)
    result = analyze_session([stems], cache=AnalysisCache.for_stems(stems, max_bytes=1), jobs=2)
    assert result.reanalysed == (SPECS[1].name,)
    assert_equals_fresh(result, stems)


# ---------------------------------------------------------------- the cheap "unchanged?" test (issue 15)
def _rewrite_all(folder: Path) -> None:
    """What REAPER's "render all stems" does: every file written again (new inode, new times)."""
    for path in sorted(folder.glob("*.wav")):
        data = path.read_bytes()
        path.unlink()
        path.write_bytes(data)


def test_identical_bytes_rewritten_are_hits_without_decoding(stems):
    first = analyze_session([stems], cache=_cache(stems), jobs=2)
    _rewrite_all(stems)
    cache = _cache(stems)
    for path in sorted(stems.glob("*.wav")):
        assert cache.known_hash(path) is None  # the stat moved: no fast path
        assert cache.probable_hash(path) is not None  # size and sampled blocks agree
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == ()
    assert result.mix.summed.loudness == first.mix.summed.loudness
    # The full hashes confirmed the provisional matches: the new stats are recorded.
    assert all(_cache(stems).known_hash(p) is not None for p in stems.glob("*.wav"))


def test_one_sample_changed_in_the_middle_is_a_miss(stems):
    """The sampled blocks do not cover the changed sample; the full hash beside the pass does."""
    from bridge.cache import fingerprint

    analyze_session([stems], cache=_cache(stems), jobs=2)
    _rewrite_all(stems)
    target = stems / f"{SPECS[2].name}.wav"
    before = fingerprint(target)
    raw = bytearray(target.read_bytes())
    # A byte between the sampled blocks, inside a sample of the data chunk.
    middle = len(raw) // 2 + 1000
    raw[middle] ^= 0x40
    target.write_bytes(bytes(raw))
    assert fingerprint(target) == before  # the cheap test alone would call it unchanged
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == (SPECS[2].name,)
    assert_equals_fresh(result, stems)


def test_a_change_in_a_sampled_block_is_a_miss_at_once(stems):
    analyze_session([stems], cache=_cache(stems), jobs=2)
    target = stems / f"{SPECS[1].name}.wav"
    raw = bytearray(target.read_bytes())
    raw[-100] ^= 0x01  # inside the sampled tail
    target.write_bytes(bytes(raw))
    assert _cache(stems).probable_hash(target) is None
    result = analyze_session([stems], cache=_cache(stems), jobs=2)
    assert result.reanalysed == (SPECS[1].name,)
    assert_equals_fresh(result, stems)


def test_the_cache_stays_under_35_percent_of_the_session(tmp_path):
    """Group sums + features on 24 stems of 24-bit PCM (REAPER's default render), through a full
    pass and re-bounces of two different stems (each adds a group of its own for a while).

    The group sums are sized from the stems' bytes (bridge.cache.GROUP_SUMS_SHARE), so the bound
    holds whatever the material; no entry holds any audio.
    """
    folder = tmp_path / "long"
    specs = [dataclasses.replace(default_session()[k % 10], name=f"{k:02d}_{default_session()[k % 10].name}",
                                 seed=300 + k) for k in range(24)]
    write_session(folder, specs, duration_s=8.0)
    session_bytes = sum(p.stat().st_size for p in folder.glob("*.wav"))
    cache = _cache(folder)
    for step, changed in enumerate([None, 5, 17, 5]):
        if changed is not None:
            write_session(folder, [dataclasses.replace(specs[changed], seed=900 + step)], duration_s=8.0)
        result = analyze_session([folder], cache=cache, jobs=2)
        if changed is not None:
            assert result.reanalysed == (specs[changed].name,)
        cache_bytes = sum(p.stat().st_size for p in cache.folder.rglob("*") if p.is_file())
        assert cache_bytes <= 0.35 * session_bytes, f"step {step}: cache {cache_bytes / session_bytes:.1%} of the session"
    assert_equals_fresh(result, folder)
    for entry in (cache.folder / "entries").iterdir():
        assert sorted(p.name for p in entry.iterdir()) == ["arrays.npz", "entry.json"]


def test_the_group_sums_add_up_to_the_stems(stems):
    """What the cache keeps is exactly the float32 sum of the stems it names, group by group."""
    import soundfile as sf

    cache = _cache(stems)
    analyze_session([stems], cache=cache, jobs=2)
    _rerender(stems, 1, seed=71)
    analyze_session([stems], cache=cache, jobs=2)
    by_hash = {cache.known_hash(p): p for p in stems.glob("*.wav")}
    groups = _groups(cache)
    assert sorted(m for g in groups for m in g["members"]) == sorted(by_hash)
    for group in groups:
        stored = np.fromfile(cache.folder / "mix" / group["sum"], np.float32).reshape(-1, 2)
        expected = np.zeros_like(stored)
        for sha in group["members"]:
            audio, _ = sf.read(str(by_hash[sha]), dtype="float32", always_2d=True)
            expected[: len(audio)] += audio if audio.shape[1] == 2 else np.repeat(audio, 2, axis=1)
        assert np.allclose(stored, expected, atol=1e-6, rtol=0), group["sum"]


def test_many_re_bounces_do_not_drift(stems):
    """Each re-bounce sums its groups afresh from the stems: after many, the mix still equals a
    fresh analysis as closely as one fresh pass equals another (float32 summation order only)."""
    cache = _cache(stems)
    memo: dict = {}
    analyze_session([stems], cache=cache, jobs=2, masking_memo=memo)
    for step in range(12):
        _rerender(stems, step % len(SPECS), seed=500 + step, level_db=-10.0 - step % 4)
        result = analyze_session([stems], cache=cache, jobs=2, masking_memo=memo)
        assert result.reanalysed == (SPECS[step % len(SPECS)].name,)
    fresh = analyze_session([stems], jobs=1)
    a, b = result.mix.summed.loudness, fresh.mix.summed.loudness
    assert abs(a.integrated_lufs - b.integrated_lufs) < 1e-4
    assert abs(a.lra_lu - b.lra_lu) < 1e-4
    assert abs(result.mix.summed.levels.true_peak_dbtp - fresh.mix.summed.levels.true_peak_dbtp) < 1e-3
    assert_equals_fresh(result, stems)


def test_a_float_stem_is_served_and_summed_like_any_other(tmp_path):
    import soundfile as sf

    folder = tmp_path / "float"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for k in range(2):
        sf.write(str(folder / f"s{k}.wav"), (rng.standard_normal((3 * 48000, 2)) * 0.1).astype(np.float32), 48000,
                 subtype="FLOAT")
    analyze_session([folder], cache=_cache(folder), jobs=1)
    target = folder / "s0.wav"
    sf.write(str(target), (rng.standard_normal((3 * 48000, 2)) * 0.2).astype(np.float32), 48000, subtype="FLOAT")
    result = analyze_session([folder], cache=_cache(folder), jobs=1)
    assert result.reanalysed == ("s0",)
    assert_equals_fresh(result, folder)


def test_masking_memo_is_the_callers(stems):
    memo: dict = {}
    analyze_session([stems], cache=_cache(stems), jobs=1, masking_memo=memo)
    filled = len(memo)
    assert filled > 0
    _rerender(stems, 0, seed=61)
    result = analyze_session([stems], cache=_cache(stems), jobs=1, masking_memo=memo)
    assert len(memo) == filled + (len(SPECS) - 1)  # only the changed stem's pairs are new
    assert_equals_fresh(result, stems)
