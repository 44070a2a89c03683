"""One error tree for everything that can reach a user.

Every leaf subclasses both :class:`BridgeError` and the builtin it resembles, so callers can catch
the broad kind (``OSError``) or ours.  Each class carries one stable ``code`` and the process
``exit_status`` a command ends with when that error stops it: the CLI never looks at code strings.
The human wording of each code lives in :data:`MESSAGES`, so tests compare codes or classes and the
prose can change freely.  ``docs/errors.md`` lists every code.
"""
from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit statuses (README.md, docs/errors.md)."""

    OK = 0
    SOME_FAILED = 1  # some stems could not be analysed; the rest were
    USAGE = 2  # bad command line or an unreadable side file (argparse uses 2 as well)
    NOTHING_USABLE = 3  # no stem could be analysed
    DAW_UNAVAILABLE = 4  # REAPER not reachable, stopped answering, refused a call or did not verify


#: Stable error codes and the one-line explanation a producer sees next to the stem or file name.
MESSAGES: dict[str, str] = {
    "E_BRIDGE": "MixBridge could not do that",
    "E_USAGE": "bad command line",
    "E_PATH_NOT_FOUND": "no such file or folder",
    "E_STEM_UNREADABLE": "cannot open the file (permissions, or it is a folder)",
    "E_STEM_EMPTY": "the file is empty (zero bytes or zero frames)",
    "E_NOT_AUDIO": "not an audio file (the contents are not WAV, FLAC or AIFF)",
    "E_UNSUPPORTED_FORMAT": "audio format not supported",
    "E_STEM_TRUNCATED": "the file is shorter than its header says (half-written or cut off)",
    "E_STEM_CORRUPT": "the audio data could not be decoded",
    "E_NONFINITE_SAMPLES": "the audio contains NaN or infinite samples",
    "E_STEM_TOO_SHORT": "shorter than 400 ms, the shortest span a loudness measurement needs",
    "E_STEM_MISSING": "the bounce manifest lists this stem but its file never arrived",
    "E_NO_STEMS": "no audio stems found",
    "E_MARKERS": "the markers file could not be read",
    "E_REFERENCE": "the reference track could not be used",
    "E_ROLES": "the roles file or mixbridge.toml could not be read",
    "E_PLAN": "not a MixBridge plan",
    "E_PLAN_STALE": "the stems no longer give the plan that was applied",
    "E_MANIFEST": "the bounce manifest (mixbridge-bounce.json) is malformed",
    "E_DAW_UNAVAILABLE": "REAPER could not be reached",
    "E_DAW_TIMEOUT": "REAPER stopped answering",
    "E_DAW_REFUSED": "REAPER refused a call (the pass was rolled back)",
    "E_TARGET_NOT_FOUND": "a track, FX or parameter named in the plan is not in the session",
    "E_DAW_VERIFY": "REAPER shows a different value than the bridge wrote",
    "E_DAW_AUTH": "REAPER's web interface asks for a user name and password, which reapy cannot send",
    "E_DAW_STALE_SERVER": "reapy's server inside REAPER has stopped (a stale server)",
    "E_DAW_ROLLBACK_PENDING": "a pass was cut off in REAPER; the next connection finishes its rollback",
    "E_OSC_MESSAGE": "a malformed or unexpected OSC message",
    "E_SURFACE_EXPOSED": "a control-surface or review-page server on a non-loopback address needs an allow-list of hosts",
    "E_RENDER_OUTPUT": "the rendered audio could not be written",
    "E_NOT_A_FILE": "not a regular file (a FIFO, a device or a socket)",
    "E_STEM_WRITING": "the file is still being written (its header is provisional or a writer has it open)",
    "E_STEM_NAME": "the file name is not valid UTF-8; rename it",
    "E_STEM_CHANGED": "the file changed while it was read; the pass is run again",
    "E_DISK_FULL": "the disk is full; scratch files were removed and the pass will be tried again",
    "E_STATE_FILE": "a state file was malformed and was moved aside; starting clean",
    "E_STATE_FOLDER": "the state folder (.mixbridge) cannot be used",
    "E_WATCH_LOCKED": "another watcher is already watching this folder",
}

#: code -> the one class that carries it (filled as the classes below are defined).
_CLASS_OF: dict[str, type["BridgeError"]] = {}


class BridgeError(Exception):
    """Root of every MixBridge error.

    Parameters
    ----------
    detail : str
        What exactly went wrong, for this occurrence (a path, a number).

    Notes
    -----
    ``SomeError(detail, code="E_X")`` builds the one class registered for ``E_X`` (it must be
    ``SomeError`` or a subclass of it), so a code never exists without its class.
    """

    code = "E_BRIDGE"
    exit_status = ExitStatus.USAGE

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            if cls.code in _CLASS_OF:
                raise TypeError(f"{cls.code} already belongs to {_CLASS_OF[cls.code].__name__}")
            if cls.code not in MESSAGES:
                raise TypeError(f"{cls.code} has no entry in MESSAGES")
            _CLASS_OF[cls.code] = cls

    def __new__(cls, detail: str = "", *, code: str | None = None):
        if code is not None and code != cls.code:
            target = _CLASS_OF.get(code)
            if target is None or not issubclass(target, cls):
                raise TypeError(f"{code!r} is not a code of {cls.__name__}")
            cls = target
        return super().__new__(cls)

    def __init__(self, detail: str = "", *, code: str | None = None):
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        base = MESSAGES[self.code]
        return f"{base}: {self.detail}" if self.detail else base

    def __str__(self) -> str:
        # OSError subclasses (DawUnavailable, DawTimeout, PathNotFound, ...) would otherwise format the
        # arguments given to __new__, which are none: str() must be the message for every class.
        return self.message

    def line(self) -> str:
        """The one line a command prints: ``E_CODE: message``."""
        return f"{self.code}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        """The ``{"code", "message"}`` object of the JSON contract."""
        return {"code": self.code, "message": self.message}

    def __reduce__(self):  # survives the trip back from a worker process
        return (_rebuild, (self.code, self.detail))


def _rebuild(code: str, detail: str) -> BridgeError:
    return _CLASS_OF.get(code, BridgeError)(detail)


_CLASS_OF["E_BRIDGE"] = BridgeError


class UsageError(BridgeError, ValueError):
    """The command line asks for something impossible (an amount of 2, the OSC target without a state folder)."""

    code = "E_USAGE"


# --- files and stems ------------------------------------------------------------------------------

class PathNotFound(BridgeError, FileNotFoundError):
    """A path named on the command line does not exist."""

    code = "E_PATH_NOT_FOUND"


class StemReadError(BridgeError, OSError):
    """A stem file could not be read as audio (the data did not decode)."""

    code = "E_STEM_CORRUPT"
    exit_status = ExitStatus.SOME_FAILED


class StemUnreadable(StemReadError):
    code = "E_STEM_UNREADABLE"


class StemEmpty(StemReadError):
    code = "E_STEM_EMPTY"


class NotAudio(StemReadError):
    code = "E_NOT_AUDIO"


class UnsupportedFormat(StemReadError):
    code = "E_UNSUPPORTED_FORMAT"


class StemTruncated(StemReadError):
    code = "E_STEM_TRUNCATED"


class NotAFile(StemReadError):
    """A FIFO, device or socket where a stem was expected (never opened blocking, never waited for)."""

    code = "E_NOT_A_FILE"


class StemStillWriting(StemReadError):
    """The header is provisional (sizes still zero or stale) or another process has the file open
    for writing: the watcher waits; ``analyze`` reports it like a truncated file."""

    code = "E_STEM_WRITING"


class StemNameError(StemReadError):
    """A file name that is not valid UTF-8 (shown with escapes): it could not be named in the notes."""

    code = "E_STEM_NAME"


class StemChanged(StemReadError):
    """The stem's bytes changed while it was being read (a re-render under way): the pass is re-run."""

    code = "E_STEM_CHANGED"


class StemMissing(StemReadError):
    """A stem the bounce manifest lists never arrived."""

    code = "E_STEM_MISSING"


class DiskFull(BridgeError, OSError):
    """``ENOSPC``/``EDQUOT`` while writing scratch, cache or state files: the scratch is removed, the
    watcher keeps running and tries the pass again later."""

    code = "E_DISK_FULL"
    exit_status = ExitStatus.USAGE

    def __init__(self, detail: str = "", *, code: str | None = None):
        super().__init__(detail, code=code)
        self.errno = 28  # like the OSError it replaces


class StateFileError(BridgeError, ValueError):
    """A state file (``last-pass.json``, the journal, cache index and entries, the mix sum, tag files)
    did not validate; it is moved aside as ``<name>.bad-<timestamp>`` and the watcher starts clean."""

    code = "E_STATE_FILE"


class StateFolderError(BridgeError, OSError):
    """The state folder cannot be created or written (read-only, not a folder)."""

    code = "E_STATE_FOLDER"


class WatchLocked(BridgeError, BlockingIOError):
    """A second ``mixbridge watch`` on a folder another live watcher holds (the message names its PID)."""

    code = "E_WATCH_LOCKED"


class StemWriteError(BridgeError, OSError):
    """Rendered audio could not be written (disk full, permissions, a folder in the way)."""

    code = "E_RENDER_OUTPUT"


class AnalysisError(BridgeError, ValueError):
    """Audio was read but cannot be measured (NaN samples)."""

    code = "E_NONFINITE_SAMPLES"
    exit_status = ExitStatus.SOME_FAILED


class StemTooShort(AnalysisError):
    code = "E_STEM_TOO_SHORT"


class NoStems(BridgeError, LookupError):
    """Nothing to analyse under the given paths."""

    code = "E_NO_STEMS"
    exit_status = ExitStatus.NOTHING_USABLE


# --- side files ------------------------------------------------------------------------------------

class InputFileError(BridgeError, ValueError):
    """A side file (markers, roles, plan, reference, manifest) is malformed; see the subclasses."""


class MarkersError(InputFileError):
    code = "E_MARKERS"


class RolesError(InputFileError):
    code = "E_ROLES"


class PlanFileError(InputFileError):
    code = "E_PLAN"


class PlanStale(InputFileError):
    """``apply --notes``: the stems no longer give the plan that was applied."""

    code = "E_PLAN_STALE"


class ReferenceTrackError(InputFileError):
    code = "E_REFERENCE"


class ManifestError(InputFileError):
    code = "E_MANIFEST"


# --- the DAW ---------------------------------------------------------------------------------------

class DawError(BridgeError):
    """Anything REAPER-side that stopped a pass (the pass was rolled back where it had begun)."""

    exit_status = ExitStatus.DAW_UNAVAILABLE


class DawUnavailable(DawError, ConnectionError):
    """REAPER is not running, not reachable, or went away mid-pass: the only error a watcher queues and retries."""

    code = "E_DAW_UNAVAILABLE"


class DawTimeout(DawError, TimeoutError):
    """REAPER accepted a call but did not answer within the deadline (also queued and retried)."""

    code = "E_DAW_TIMEOUT"


class DawRefused(DawError, RuntimeError):
    """REAPER answered a call with an error (reapy's ``DistError``): not a connection problem."""

    code = "E_DAW_REFUSED"


class TargetNotFound(DawError, LookupError):
    """A track, FX or parameter descriptor did not resolve in the session."""

    code = "E_TARGET_NOT_FOUND"


class DawVerifyError(DawError, ValueError):
    """A value read back from REAPER does not match what was written (the pass is rolled back)."""

    code = "E_DAW_VERIFY"


class DawAuthRequired(DawError, PermissionError):
    """The web interface answered 401: a setting to change, not a moment to wait out (never retried)."""

    code = "E_DAW_AUTH"


class DawStaleServer(DawUnavailable):
    """REAPER publishes reapy's server port, but the server there does not answer: its loop died."""

    code = "E_DAW_STALE_SERVER"


class RollbackPending(DawUnavailable):
    """REAPER went away mid-pass and stayed away: the journal in the project says what is left.

    ``tracks`` maps each track the pass touched or meant to touch to ``applied`` (fully written),
    ``rollback`` (partly written: the next connection restores it) or ``untouched``.
    """

    code = "E_DAW_ROLLBACK_PENDING"

    def __new__(cls, detail: str = "", *, code: str | None = None, tracks: dict[str, str] | None = None):
        return super().__new__(cls, detail, code=code)

    def __init__(self, detail: str = "", *, code: str | None = None, tracks: dict[str, str] | None = None):
        super().__init__(detail, code=code)
        self.tracks = dict(tracks or {})


#: Errors that mean "REAPER is not there right now": a watcher queues the plan and retries.
UNREACHABLE = (DawUnavailable, DawTimeout)


# --- not errors --------------------------------------------------------------------------------------

class PassInterrupted(Exception):
    """The owner is stopping (Ctrl-C, the watcher's stop): the pass is abandoned, nothing half-written
    (a watcher re-runs it on the next start).  Not a :class:`BridgeError`: no one did anything wrong."""


# --- surfaces --------------------------------------------------------------------------------------

class OscMessageError(BridgeError, ValueError):
    code = "E_OSC_MESSAGE"


class SurfaceExposed(BridgeError, PermissionError):
    code = "E_SURFACE_EXPOSED"
