"""The filesystem edge for audio: find stems, check them, and stream them as float32 blocks.

This is the only module that opens audio files, for reading and (:class:`StemWriter`) for
writing.  Everything after it sees ``(frames, channels)`` float32 arrays and :class:`StemInfo` values.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .errors import (AnalysisError, NotAudio, StemEmpty, StemReadError, StemTooShort, StemTruncated, StemUnreadable,
                     StemWriteError, UnsupportedFormat)

#: File endings taken as stems when a folder is scanned.
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".bwf", ".rf64", ".w64", ".flac", ".aif", ".aiff", ".aifc"})

#: Sample encodings we measure.  Lossy and companded encodings are refused on purpose: a mix stem
#: in u-law is a mistake worth telling the producer about.
SUPPORTED_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})

#: The shortest stem a loudness measurement can use: one 400 ms gating block (BS.1770-4).
MIN_DURATION_S = 0.4

#: Sample rates must put a whole number of samples in every 10 ms loudness sub-hop.
GRID_DIVISOR = 100


@dataclass(frozen=True, slots=True)
class StemInfo:
    """What the header of a checked stem says.

    Attributes
    ----------
    path : Path
    name : str
        The file name without its extension; REAPER's ``$track`` render pattern makes this the
        track name.
    sample_rate : int
        Hz.
    channels : int
    frames : int
        Samples per channel.
    format : str
        libsndfile container name, e.g. ``"WAV"``.
    subtype : str
        libsndfile encoding name, e.g. ``"PCM_24"``.
    """

    path: Path
    name: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def is_float(self) -> bool:
        return self.subtype in ("FLOAT", "DOUBLE")


def find_stems(paths: Iterable[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of candidate stem paths.

    Files named explicitly are kept whatever their ending (so a wrong one gets a clear error);
    folders contribute only files with an audio ending, skipping hidden files.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            for child in sorted(path.glob(pattern)):
                if (child.is_file() and child.suffix.lower() in AUDIO_EXTENSIONS
                        and not child.name.startswith(".")
                        and ".mixbridge" not in child.parts):
                    found[child] = None
        else:
            found[path] = None
    return list(found)


def _declared_payload(path: Path, head: bytes, size_bytes: int) -> tuple[str, int, int] | None:
    """Find the audio payload a RIFF/RF64/AIFF header declares.

    Returns ``(kind, data_offset, declared_bytes)`` or ``None`` when the container is not one we
    walk (FLAC, W64).  libsndfile quietly clamps a data chunk that runs past the end of the file,
    so a half-written render would read as a shorter, valid stem; walking the chunks catches it.
    """
    kind = head[:4]
    if kind in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        little, pos, ds64_data = True, 12, None
    elif kind == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        little, pos, ds64_data = False, 12, None
    else:
        return None
    with open(path, "rb") as fh:
        while pos + 8 <= size_bytes:
            fh.seek(pos)
            chunk = fh.read(16 if kind != b"FORM" else 8)
            cid = chunk[:4]
            (csize,) = struct.unpack("<I" if little else ">I", chunk[4:8])
            if cid == b"ds64" and len(chunk) >= 16:
                fh.seek(pos + 8)
                ds64 = fh.read(24)
                if len(ds64) == 24:
                    ds64_data = struct.unpack("<QQQ", ds64)[1]
            if cid == b"data" and little:
                (riff_size,) = struct.unpack("<I", head[4:8])
                if csize == 0 and size_bytes > pos + 8 and kind == b"RIFF" and riff_size != size_bytes - 8:
                    # A renderer that has not finalised the header yet: sizes still zero.
                    return ("truncated", pos + 8, -1)
                if csize == 0xFFFFFFFF:
                    if ds64_data is None:
                        return ("truncated", pos + 8, -1)
                    csize = ds64_data
                return ("wav", pos + 8, csize)
            if cid == b"SSND" and not little:
                # SSND starts with offset and block size (8 bytes) before the frames.
                return ("aiff", pos + 8, csize)
            pos += 8 + csize + (csize & 1)
    return ("truncated", size_bytes, -1)


def check_container(path: Path) -> None:
    """Cheap checks before libsndfile sees the file: existence, permissions, size, magic, length.

    Raises
    ------
    StemReadError
        With code ``E_STEM_UNREADABLE``, ``E_STEM_EMPTY``, ``E_NOT_AUDIO`` or ``E_STEM_TRUNCATED``.
    """
    try:
        size_bytes = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(64)
    except FileNotFoundError as exc:
        raise StemUnreadable(f"{path}: no such file") from exc
    except PermissionError as exc:
        raise StemUnreadable(f"{path}: permission denied") from exc
    except IsADirectoryError as exc:
        raise StemUnreadable(f"{path}: is a folder") from exc
    except OSError as exc:
        raise StemUnreadable(f"{path}: {exc.strerror or exc}") from exc
    if size_bytes == 0:
        raise StemEmpty(f"{path}: 0 bytes")
    known_magic = head[:4] in (b"RIFF", b"RF64", b"BW64", b"FORM", b"fLaC", b"riff")
    if not known_magic:
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            raise NotAudio(f"{path}: contents are not a WAV, FLAC or AIFF file")
        raise UnsupportedFormat(f"{path}: '{path.suffix or 'no ending'}' is not WAV, FLAC or AIFF")
    payload = _declared_payload(path, head, size_bytes)
    if payload is not None:
        kind, offset, declared = payload
        available = size_bytes - offset
        if kind == "truncated" or declared > available:
            raise StemTruncated(
                f"{path}: header declares {declared if declared >= 0 else 'an unknown number of'} "
                f"bytes of audio, the file holds {max(available, 0)}")


def open_stem(path: str | os.PathLike) -> StemInfo:
    """Check a stem file and read its header.

    Raises
    ------
    StemReadError
        Unreadable, empty, not audio, unsupported encoding or rate, truncated.
    AnalysisError
        ``E_STEM_TOO_SHORT`` when it holds less than 400 ms.
    """
    import soundfile as sf  # here, not at import: finding stems needs no codec

    path = Path(path)
    check_container(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise StemReadError(f"{path}: {exc}") from exc
    if info.subtype not in SUPPORTED_SUBTYPES:
        raise UnsupportedFormat(f"{path}: {info.format}/{info.subtype} encoding")
    if info.samplerate % GRID_DIVISOR or info.samplerate < 8000:
        raise UnsupportedFormat(f"{path}: sample rate {info.samplerate} Hz")
    if info.frames == 0:
        raise StemEmpty(f"{path}: no audio frames")
    stem = StemInfo(path=path, name=path.stem, sample_rate=int(info.samplerate),
                    channels=int(info.channels), frames=int(info.frames),
                    format=info.format, subtype=info.subtype)
    if stem.duration_s < MIN_DURATION_S:
        raise StemTooShort(f"{path}: {stem.duration_s * 1000:.0f} ms")
    return stem


def read_blocks(stem: StemInfo, block_frames: int | None = None, dtype: str = "float32") -> Iterator[np.ndarray]:
    """Stream a checked stem as float32 blocks shaped ``(frames, channels)``.

    ``dtype="int32"`` gives the samples as left-justified 32-bit integers instead (libsndfile's
    integer view: a 24-bit sample ``v`` reads as ``v << 8``); times ``2**-31`` that is exactly the
    float32 block, which the analysis cache uses to snapshot a stem losslessly while it is read.

    Blocks are one second long by default (the measured sweet spot between call overhead and
    memory), so every block holds a whole number of 100 ms analysis frames; only the last is short.
    Float stems are checked for NaN/Inf here, so nothing downstream sees them.

    Raises
    ------
    StemReadError
        ``E_STEM_TRUNCATED`` when fewer frames arrive than the header declared,
        ``E_STEM_CORRUPT`` when libsndfile fails mid-stream.
    AnalysisError
        ``E_NONFINITE_SAMPLES``.
    """
    import soundfile as sf

    block_frames = block_frames or stem.sample_rate
    seen = 0
    try:
        with sf.SoundFile(str(stem.path)) as fh:
            buffer = np.empty((block_frames, stem.channels), dtype=dtype)
            while True:
                got = fh.read(block_frames, dtype=dtype, always_2d=True, out=buffer)
                n = len(got)
                if n == 0:
                    break
                if stem.is_float and dtype.startswith("float") and not np.isfinite(got).all():
                    bad_at = seen + int(np.argmin(np.isfinite(got).all(axis=1)))
                    raise AnalysisError(f"{stem.path}: first at {bad_at / stem.sample_rate:.3f} s")
                seen += n
                yield got
                if n < block_frames:
                    break
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise StemReadError(f"{stem.path}: {exc} after {seen} frames") from exc
    except PermissionError as exc:
        raise StemUnreadable(f"{stem.path}: permission denied") from exc
    if seen < stem.frames:
        raise StemTruncated(f"{stem.path}: {seen} of {stem.frames} frames readable")


#: Encodings :class:`StemWriter` writes: 32-bit float (the default; never clips) or 24-bit PCM.
WRITE_SUBTYPES = ("FLOAT", "PCM_24")


class StemWriter:
    """Write one WAV file block by block: a context manager, the writing side of :func:`read_blocks`.

    The audio goes into a hidden ``.<name>.part`` file beside ``path`` (so a folder scan or a
    watcher never sees a half-written stem) and is renamed to ``path`` when the context closes
    cleanly; on an exception the partial file is removed.

    Parameters
    ----------
    path : path
        The final ``.wav`` path.
    sample_rate : int
        Hz.
    channels : int
    subtype : {"FLOAT", "PCM_24"}
        PCM_24 clips at full scale.

    Raises
    ------
    StemWriteError
        ``E_RENDER_OUTPUT`` when the file cannot be created or written.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int, subtype: str = "FLOAT"):
        if subtype not in WRITE_SUBTYPES:
            raise ValueError(f"subtype must be one of {WRITE_SUBTYPES}, not {subtype!r}")
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.subtype = subtype
        self.frames = 0
        self._partial = self.path.with_name(f".{self.path.name}.part")
        self._fh = None  # soundfile.SoundFile while open

    def __enter__(self) -> "StemWriter":
        import soundfile as sf

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = sf.SoundFile(str(self._partial), "w", samplerate=self.sample_rate, channels=self.channels,
                                    subtype=self.subtype, format="WAV")
        except (OSError, sf.LibsndfileError, RuntimeError) as exc:
            raise StemWriteError(f"{self.path}: {exc}") from exc
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``(frames, channels)`` float samples."""
        if self._fh is None:
            raise RuntimeError("StemWriter.write outside its context")
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"{self.path}: expected (frames, {self.channels}), got {block.shape}")
        import soundfile as sf

        try:
            self._fh.write(block.astype(np.float32, copy=False))
        except (OSError, sf.LibsndfileError, RuntimeError) as exc:
            raise StemWriteError(f"{self.path}: {exc} after {self.frames} frames") from exc
        self.frames += len(block)

    def __exit__(self, exc_type, exc, tb) -> None:
        import soundfile as sf

        fh, self._fh = self._fh, None
        try:
            if fh is not None:
                fh.close()
            if exc_type is None:
                os.replace(self._partial, self.path)
        except (OSError, sf.LibsndfileError, RuntimeError) as err:
            self._partial.unlink(missing_ok=True)
            if exc_type is None:
                raise StemWriteError(f"{self.path}: {err}") from err
        finally:
            if exc_type is not None:
                self._partial.unlink(missing_ok=True)


def flac_writer(path: Path, sample_rate: int, channels: int, subtype: str):
    """A FLAC file open for writing left-justified int32 blocks (the analysis cache's snapshots).

    Compression level 0, the fastest: about 0.3 s per 4-minute stereo 24-bit stem here, and
    decoding it back costs about twice a WAV's decode.  Returns a file object with ``write`` and
    ``close``.
    """
    import soundfile as sf

    return sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels, subtype=subtype,
                        format="FLAC", compression_level=0.0)
