"""The filesystem edge for audio: find stems, check them, and stream them as float32 blocks.

This is the only module that opens audio files, for reading and (:class:`StemWriter`) for
writing.  Everything after it sees ``(frames, channels)`` float32 arrays and :class:`StemInfo` values.
"""
from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .errors import (AnalysisError, NotAFile, NotAudio, StemChanged, StemEmpty, StemNameError, StemReadError, StemStillWriting, StemTooShort,
                     StemTruncated, StemUnreadable, StemWriteError, UnsupportedFormat)
from .files import NotRegular, display, is_valid_name, open_regular

#: Quantisation steps of the integer encodings (full scale 1.0).
_QUANTUM = {"PCM_S8": 2.0 ** -7, "PCM_U8": 2.0 ** -7, "PCM_16": 2.0 ** -15, "PCM_24": 2.0 ** -23, "PCM_32": 2.0 ** -31}

#: File endings taken as stems when a folder is scanned.
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".bwf", ".rf64", ".w64", ".flac", ".aif", ".aiff", ".aifc", ".caf"})

#: Sample encodings we measure.  Lossy and companded encodings are refused on purpose: a mix stem
#: in u-law is a mistake worth telling the producer about.
SUPPORTED_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})

#: The shortest stem a loudness measurement can use: one 400 ms gating block (BS.1770-4).
MIN_DURATION_S = 0.4

#: Sample rates must put a whole number of samples in every 10 ms loudness sub-hop.
GRID_DIVISOR = 100
#: The highest sample rate and the most channels a stem may have (768 kHz; libsndfile's own cap).
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 1024
#: The most samples (frames x channels) one read block holds: 4 MB as float32.
MAX_BLOCK_SAMPLES = 1 << 20


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

    @property
    def quantum(self) -> float:
        """The encoding's quantisation step at full scale 1.0 (``2**-15`` for 16-bit), 0 for float."""
        return _QUANTUM.get(self.subtype, 0.0)


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


# ------------------------------------------------------------------------------------ containers
# Nothing a header says is trusted until the bytes agree: every container is walked chunk by chunk
# here, before libsndfile sees it, and the frame count libsndfile then reports is checked against
# what the file's bytes can hold.  libsndfile quietly clamps a data chunk that runs past the end of
# the file (a half-written render would read as a shorter, valid stem) and takes an unfinished
# FLAC's "unknown length" as 2**63 frames; both are caught here.

#: The W64 GUIDs' tails (the first four bytes are the ASCII chunk name).
_W64_TAIL = bytes.fromhex("f3acd3118cd100c04f8edb8a")
_W64_RIFF = b"riff" + bytes.fromhex("2e91cf11a5d628db04c10000")
#: A FLAC frame is at least its header (6 bytes), one constant subframe per channel and a CRC-16.
_FLAC_FRAME_OVERHEAD = 8
#: How many bytes of a file's end are walked for trailing chunks (a render's cue/LIST/iXML).
_TRAILING_WALK_MAX = 64


@dataclass(frozen=True, slots=True)
class Layout:
    """What a container's chunks say about its audio.

    Attributes
    ----------
    kind : str
        ``wav`` (RIFF/RF64/BW64), ``w64``, ``aiff``, ``caf`` or ``flac``.
    data_offset : int
        Where the audio bytes start.
    data_bytes : int or None
        The payload the header declares, checked to fit the file; ``None`` when it runs to the end
        of the file (CAF's ``-1``) or is compressed (FLAC).
    provisional : str or None
        Why the header looks like a writer has not finished it although it is readable: bytes
        after the declared payload that are not chunks (a size written once and never updated),
        an outer size smaller than the file, an unknown CAF length.  Only the watcher's
        completeness check acts on it (:func:`check_container` ``strict``).
    flac : tuple or None
        ``(total_samples, max_block_frames, channels, bits_per_sample)`` from FLAC's STREAMINFO.
    """

    kind: str
    data_offset: int
    data_bytes: int | None
    provisional: str | None = None
    flac: tuple[int, int, int, int] | None = None


class _Walk:
    """Reads a container's chunk headers through one descriptor, each read bounded."""

    def __init__(self, fh, size_bytes: int, path: Path):
        self.fh = fh
        self.size = size_bytes
        self.path = path

    def read(self, offset: int, n: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(n)

    def truncated(self, declared: int | None, available: int) -> StemTruncated:
        what = f"{declared}" if declared is not None and declared >= 0 else "an unknown number of"
        return StemTruncated(f"{self.path}: header declares {what} bytes of audio, the file holds {max(available, 0)}")

    def payload(self, declared: int, available: int) -> None:
        """A declared payload must be there: none declared while audio follows is a header never
        finalised, more than the file holds is a cut-off file."""
        if declared <= 0 and available > 0:
            raise self.unfinished(f"header declares 0 bytes of audio, {available} follow")
        if declared > available:
            raise self.truncated(declared, available)

    @staticmethod
    def not_chunks(declared: int, available: int) -> str:
        return f"{available - declared} bytes after the declared {declared} bytes of audio are not chunks"

    def unfinished(self, detail: str) -> StemTruncated:
        # A header a writer has not finalised yet (sizes still the placeholders): E_STEM_TRUNCATED,
        # the code of a render that stopped half-way, which is what it is if it stays like this.
        return StemTruncated(f"{self.path}: {detail} (the header was never finalised: still being written?)")


def _printable(cid: bytes) -> bool:
    return len(cid) == 4 and all(0x20 <= b <= 0x7E for b in cid)


def _trailing_ok(walk: _Walk, pos: int, little: bool, pad: bool, wide: bool = False) -> bool:
    """Whether the bytes from ``pos`` to the end are whole, well-formed chunks (or nothing)."""
    for _ in range(_TRAILING_WALK_MAX):
        if pos >= walk.size or (pad and pos == walk.size - 1):
            return True
        head = walk.read(pos, 12 if wide else 8)
        if len(head) < (12 if wide else 8) or not _printable(head[:4]):
            return False
        if wide:
            (size,) = struct.unpack(">q", head[4:12])
            header = 12
        else:
            (size,) = struct.unpack("<I" if little else ">I", head[4:8])
            header = 8
        if size < 0 or pos + header + size > walk.size + 1:
            return False
        pos += header + size + (size & 1 if pad else 0)
    return False


def _walk_riff(walk: _Walk, head: bytes) -> Layout:
    kind = head[:4]
    (riff_size,) = struct.unpack("<I", head[4:8])
    pos, ds64_data = 12, None
    for _ in range(4096):  # bounded: a file of empty chunks cannot loop us
        if pos + 8 > walk.size:
            break
        chunk = walk.read(pos, 8)
        cid, (csize,) = chunk[:4], struct.unpack("<I", chunk[4:8])
        if cid == b"ds64":
            ds64 = walk.read(pos + 8, 24)
            if len(ds64) == 24:
                riff64, ds64_data, _samples = struct.unpack("<QQQ", ds64)
        if cid == b"data":
            offset = pos + 8
            available = walk.size - offset
            if csize == 0xFFFFFFFF:
                if ds64_data is None or kind == b"RIFF":
                    raise walk.unfinished("data size is the 0xFFFFFFFF placeholder")
                csize = ds64_data
            walk.payload(csize, available)
            provisional = None
            if not _trailing_ok(walk, offset + csize + (csize & 1), True, True) and not _trailing_ok(
                    walk, offset + csize, True, True):
                provisional = walk.not_chunks(csize, available)
            elif kind == b"RIFF" and riff_size + 8 < walk.size - 1:
                provisional = f"the RIFF size ({riff_size + 8}) is smaller than the file ({walk.size})"
            return Layout("wav", offset, csize, provisional)
        pos += 8 + csize + (csize & 1)
    raise walk.truncated(None, walk.size - pos)


def _walk_w64(walk: _Walk, head: bytes) -> Layout:
    (riff_size,) = struct.unpack("<Q", head[16:24])
    pos = 40
    for _ in range(4096):
        if pos + 24 > walk.size:
            break
        chunk = walk.read(pos, 24)
        cid, (csize,) = chunk[:16], struct.unpack("<Q", chunk[16:24])
        if csize < 24:
            raise walk.unfinished(f"a chunk size of {csize} bytes")
        if cid == b"data" + _W64_TAIL:
            offset = pos + 24
            declared, available = csize - 24, walk.size - offset
            walk.payload(declared, available)
            provisional = None
            end = offset + declared
            end += -end % 8
            if end < walk.size and not _trailing_ok_w64(walk, end):
                provisional = walk.not_chunks(declared, available)
            elif riff_size < walk.size - 7:
                provisional = f"the riff size ({riff_size}) is smaller than the file ({walk.size})"
            return Layout("w64", offset, declared, provisional)
        pos += csize + (-csize % 8)
    raise walk.truncated(None, walk.size - pos)


def _trailing_ok_w64(walk: _Walk, pos: int) -> bool:
    for _ in range(_TRAILING_WALK_MAX):
        if pos >= walk.size:
            return True
        chunk = walk.read(pos, 24)
        if len(chunk) < 24 or not _printable(chunk[:4]):
            return False
        (csize,) = struct.unpack("<Q", chunk[16:24])
        if csize < 24 or pos + csize > walk.size + 7:
            return False
        pos += csize + (-csize % 8)
    return False


def _walk_aiff(walk: _Walk, head: bytes) -> Layout:
    (form_size,) = struct.unpack(">I", head[4:8])
    pos, comm = 12, None
    for _ in range(4096):
        if pos + 8 > walk.size:
            break
        chunk = walk.read(pos, 16)
        cid, (csize,) = chunk[:4], struct.unpack(">I", chunk[4:8])
        if cid == b"COMM" and len(chunk) >= 16:
            # numChannels, numSampleFrames, sampleSize: what the frames must fit into.
            comm = struct.unpack(">hIh", chunk[8:16])
        if cid == b"SSND":
            if len(chunk) < 16:
                break
            (skip,) = struct.unpack(">I", chunk[8:12])
            offset = pos + 16 + skip
            declared, available = max(csize - 8 - skip, 0), walk.size - offset
            walk.payload(declared, available)
            if comm is not None and head[8:12] == b"AIFF" and comm[0] > 0 and comm[2] > 0:
                promised = comm[1] * comm[0] * ((comm[2] + 7) // 8)  # COMM's frames, in bytes
                if promised > declared:
                    raise walk.truncated(promised, declared)
            provisional = None
            end = pos + 8 + csize
            if not _trailing_ok(walk, end + (csize & 1), False, True) and not _trailing_ok(walk, end, False, True):
                provisional = walk.not_chunks(declared, available)
            elif form_size + 8 < walk.size - 1:
                provisional = f"the FORM size ({form_size + 8}) is smaller than the file ({walk.size})"
            return Layout("aiff", offset, declared, provisional)
        pos += 8 + csize + (csize & 1)
    raise walk.truncated(None, walk.size - pos)


def _walk_caf(walk: _Walk, head: bytes) -> Layout:
    pos = 8
    for _ in range(4096):
        if pos + 12 > walk.size:
            break
        chunk = walk.read(pos, 12)
        cid, (csize,) = chunk[:4], struct.unpack(">q", chunk[4:12])
        if cid == b"data":
            offset = pos + 12 + 4  # the payload starts with a 4-byte edit count
            available = walk.size - offset
            if csize == -1:
                # "To the end of the file": legal in a finished file, and what a writer leaves
                # until it closes.  Readable; the watcher waits for the writer to let go.
                return Layout("caf", offset, None, "the data size is -1 (unknown until the writer closes)")
            declared = csize - 4
            walk.payload(declared, available)
            provisional = None
            if not _trailing_ok(walk, offset + declared, False, False, wide=True):
                provisional = walk.not_chunks(declared, available)
            return Layout("caf", offset, declared, provisional)
        if csize < 0:
            raise walk.unfinished(f"chunk {cid!r} has size {csize}")
        pos += 12 + csize
    raise walk.truncated(None, walk.size - pos)


def _walk_flac(walk: _Walk, head: bytes) -> Layout:
    pos, streaminfo = 4, None
    for _ in range(1024):
        block = walk.read(pos, 4)
        if len(block) < 4:
            raise walk.truncated(None, walk.size - pos)
        last, btype, length = block[0] & 0x80, block[0] & 0x7F, int.from_bytes(block[1:4], "big")
        if btype == 0 and length >= 34:
            streaminfo = walk.read(pos + 4, 34)
        pos += 4 + length
        if pos > walk.size:
            raise walk.truncated(None, walk.size - (pos - length))
        if last:
            break
    if streaminfo is None or len(streaminfo) < 34:
        raise NotAudio(f"{walk.path}: a FLAC without its STREAMINFO block")
    max_block = int.from_bytes(streaminfo[2:4], "big")
    packed = int.from_bytes(streaminfo[10:18], "big")
    channels = ((packed >> 41) & 0x7) + 1
    bits = ((packed >> 36) & 0x1F) + 1
    total = packed & ((1 << 36) - 1)
    if total == 0:
        if walk.size > pos:
            raise walk.unfinished("the FLAC header does not say how many samples it holds")
        raise StemEmpty(f"{walk.path}: no audio frames")
    return Layout("flac", pos, None, None, (total, max(max_block, 16), channels, bits))


def read_layout(path: Path) -> Layout | None:
    """Walk ``path``'s container (see :class:`Layout`); ``None`` for magic we do not know.

    Raises
    ------
    StemReadError
        ``E_STEM_UNREADABLE`` (missing, permissions, a FIFO or device, a symlink loop),
        ``E_STEM_EMPTY``, ``E_STEM_TRUNCATED`` (declared payload beyond the end, or a header that was
        never finalised), ``E_NOT_AUDIO``.
    """
    try:
        fd = open_regular(path)
    except NotRegular as exc:
        raise NotAFile(f"{display(path)}: {exc.strerror}") from None
    except FileNotFoundError as exc:
        raise StemUnreadable(f"{display(path)}: no such file") from exc
    except PermissionError as exc:
        raise StemUnreadable(f"{display(path)}: permission denied") from exc
    except OSError as exc:
        reason = "a symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise StemUnreadable(f"{display(path)}: {reason}") from exc
    try:
        with os.fdopen(fd, "rb") as fh:
            size_bytes = os.fstat(fh.fileno()).st_size
            head = fh.read(64)
            if size_bytes == 0:
                raise StemEmpty(f"{display(path)}: 0 bytes")
            walk = _Walk(fh, size_bytes, path)
            magic = head[:4]
            if magic in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
                return _walk_riff(walk, head)
            if head[:16] == _W64_RIFF and head[24:28] == b"wave":
                return _walk_w64(walk, head)
            if magic == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                return _walk_aiff(walk, head)
            if magic == b"caff":
                return _walk_caf(walk, head)
            if magic == b"fLaC":
                return _walk_flac(walk, head)
            return None
    except OSError as exc:
        if isinstance(exc, StemReadError):
            raise
        raise StemUnreadable(f"{display(path)}: {exc.strerror or exc}") from exc


def check_container(path: Path, strict: bool = False) -> Layout:
    """Cheap checks before libsndfile sees the file: a regular file, size, magic, chunk sizes.

    With ``strict`` (the watcher's "is the writer done?"), a readable header that still looks
    provisional (:attr:`Layout.provisional`) raises ``E_STEM_WRITING``.

    Raises
    ------
    StemReadError
        With code ``E_STEM_UNREADABLE``, ``E_STEM_EMPTY``, ``E_NOT_AUDIO``, ``E_UNSUPPORTED_FORMAT``,
        ``E_STEM_TRUNCATED`` or (``strict``) ``E_STEM_WRITING``.
    """
    layout = read_layout(path)
    if layout is None:
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            raise NotAudio(f"{display(path)}: contents are not a WAV, W64, CAF, FLAC or AIFF file")
        raise UnsupportedFormat(f"{display(path)}: '{path.suffix or 'no ending'}' is not WAV, FLAC or AIFF")
    if strict and layout.provisional:
        raise StemStillWriting(f"{display(path)}: {layout.provisional}")
    return layout


#: Bytes per sample of the encodings we measure.
_SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def frames_bound(layout: Layout, channels: int, subtype: str, size_bytes: int) -> int:
    """The most frames the file's bytes can hold: what a header's frame count is checked against.

    Uncompressed: the declared payload (or the rest of the file) over the frame size.  FLAC:
    every frame takes at least a header, a constant subframe per channel and a CRC, and holds at
    most STREAMINFO's largest block, so ``ceil(bytes / smallest frame) * largest block``.
    """
    if layout.kind == "flac":
        _, max_block, fchannels, bits = layout.flac
        smallest = _FLAC_FRAME_OVERHEAD + (max(fchannels, channels) * (8 + bits)) // 8
        audio = max(size_bytes - layout.data_offset, 0)
        return -(-audio // smallest) * max_block
    payload = layout.data_bytes if layout.data_bytes is not None else max(size_bytes - layout.data_offset, 0)
    return payload // max(channels * _SAMPLE_BYTES.get(subtype, 1), 1)


def open_stem(path: str | os.PathLike, strict: bool = False) -> StemInfo:
    """Check a stem file and read its header.

    Parameters
    ----------
    strict : bool
        The watcher's completeness check: a provisional header is ``E_STEM_WRITING``.

    Raises
    ------
    StemReadError
        Unreadable, empty, not audio, unsupported encoding or rate, truncated (also: a frame count
        the file's bytes cannot hold), a name that is not UTF-8.
    AnalysisError
        ``E_STEM_TOO_SHORT`` when it holds less than 400 ms.
    """
    import soundfile as sf  # here, not at import: finding stems needs no codec

    path = Path(path)
    if not is_valid_name(path):
        raise StemNameError(f"{display(path)}")
    layout = check_container(path, strict=strict)
    try:
        fd = open_regular(path)
    except OSError as exc:
        raise StemUnreadable(f"{display(path)}: {exc.strerror or exc}") from exc
    try:
        size_bytes = os.fstat(fd).st_size
        with sf.SoundFile(fd, closefd=False) as snd:
            info = snd.samplerate, snd.channels, snd.frames, snd.format, snd.subtype
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise StemReadError(f"{display(path)}: {exc}") from exc
    except OSError as exc:
        raise StemUnreadable(f"{display(path)}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    rate, channels, frames, fmt, subtype = info
    if subtype not in SUPPORTED_SUBTYPES:
        raise UnsupportedFormat(f"{display(path)}: {fmt}/{subtype} encoding")
    if rate % GRID_DIVISOR or rate < 8000 or rate > MAX_SAMPLE_RATE:
        raise UnsupportedFormat(f"{display(path)}: sample rate {rate} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise UnsupportedFormat(f"{display(path)}: {channels} channels (at most {MAX_CHANNELS})")
    if frames == 0:
        raise StemEmpty(f"{display(path)}: no audio frames")
    bound = frames_bound(layout, channels, subtype, size_bytes)
    if frames > bound:
        raise StemTruncated(f"{display(path)}: header declares {frames} frames, the file's "
                            f"{size_bytes} bytes can hold at most {bound}")
    stem = StemInfo(path=path, name=path.stem, sample_rate=int(rate), channels=int(channels), frames=int(frames),
                    format=fmt, subtype=subtype)
    if stem.duration_s < MIN_DURATION_S:
        raise StemTooShort(f"{display(path)}: {stem.duration_s * 1000:.0f} ms")
    return stem


def block_frames_for(stem: StemInfo) -> int:
    """Frames per read block: one second, fewer for many channels at high rates (whole 100 ms frames).

    A block holds at most :data:`MAX_BLOCK_SAMPLES` samples (one 100 ms frame at the least), so the
    memory a read needs stays flat in channel count too; results do not depend on the block size.
    """
    hop = stem.sample_rate // 10
    if stem.sample_rate * stem.channels <= MAX_BLOCK_SAMPLES:
        return stem.sample_rate
    return max(hop, MAX_BLOCK_SAMPLES // stem.channels // hop * hop)


def _file_state(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_size, st.st_mtime_ns


def read_blocks(stem: StemInfo, block_frames: int | None = None, dtype: str = "float32") -> Iterator[np.ndarray]:
    """Stream a checked stem as float32 blocks shaped ``(frames, channels)``.

    ``dtype="int32"`` gives the samples as left-justified 32-bit integers instead (libsndfile's
    integer view: a 24-bit sample ``v`` reads as ``v << 8``); times ``2**-31`` that is exactly the
    float32 block (a lossless integer view of the stem, should a caller need one).

    Blocks are one second long by default (the measured sweet spot between call overhead and
    memory; fewer frames for many channels, :func:`block_frames_for`), so every block holds a whole
    number of 100 ms analysis frames; only the last is short.  Float stems are checked for NaN/Inf
    here, so nothing downstream sees them.  The file is opened once, as a regular file, never
    blocking (:func:`bridge.files.open_regular`); if its size or modification time moves while it
    is read, the read ends with ``E_STEM_CHANGED`` (a renamed-over file keeps being read whole:
    the descriptor holds the old one).

    Raises
    ------
    StemReadError
        ``E_STEM_TRUNCATED`` when fewer frames arrive than the header declared,
        ``E_STEM_CORRUPT`` when libsndfile fails mid-stream, ``E_STEM_CHANGED`` (above),
        ``E_STEM_UNREADABLE`` when it cannot be opened (any more).
    AnalysisError
        ``E_NONFINITE_SAMPLES``.
    """
    import soundfile as sf

    block_frames = block_frames or block_frames_for(stem)
    seen = 0
    where = display(stem.path)
    try:
        fd = open_regular(stem.path)
    except NotRegular as exc:
        raise NotAFile(f"{where}: {exc.strerror}") from None
    except PermissionError as exc:
        raise StemUnreadable(f"{where}: permission denied") from exc
    except OSError as exc:
        raise StemUnreadable(f"{where}: {exc.strerror or exc}") from exc
    before = _file_state(fd)

    def changed() -> bool:
        try:
            return _file_state(fd) != before
        except OSError:
            return True

    try:
        with sf.SoundFile(fd, closefd=False) as fh:
            if fh.frames != stem.frames or fh.channels != stem.channels or fh.samplerate != stem.sample_rate:
                raise StemChanged(f"{where}: the header changed since it was checked")
            buffer = np.empty((block_frames, stem.channels), dtype=dtype)
            while True:
                got = fh.read(block_frames, dtype=dtype, always_2d=True, out=buffer)
                n = len(got)
                if n == 0:
                    break
                if stem.is_float and dtype.startswith("float") and not np.isfinite(got).all():
                    bad_at = seen + int(np.argmin(np.isfinite(got).all(axis=1)))
                    raise AnalysisError(f"{where}: first at {bad_at / stem.sample_rate:.3f} s")
                seen += n
                yield got
                if n < block_frames:
                    break
        if changed():
            raise StemChanged(f"{where}: changed after {seen} of {stem.frames} frames")
    except (sf.LibsndfileError, RuntimeError) as exc:
        if changed():
            raise StemChanged(f"{where}: changed after {seen} of {stem.frames} frames") from exc
        raise StemReadError(f"{where}: {exc} after {seen} frames") from exc
    except PermissionError as exc:
        raise StemUnreadable(f"{where}: permission denied") from exc
    finally:
        os.close(fd)
    if seen < stem.frames:
        if changed():
            raise StemChanged(f"{where}: changed after {seen} of {stem.frames} frames")
        raise StemTruncated(f"{where}: {seen} of {stem.frames} frames readable")


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
