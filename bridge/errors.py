"""One error tree for everything that can reach a user.

Every leaf subclasses both :class:`BridgeError` and the builtin it resembles, so callers can catch
the broad kind (``OSError``) or ours.  Each error carries a stable ``code``; the human wording lives
in :data:`MESSAGES`, so tests compare codes and the prose can change freely.
"""
from __future__ import annotations

#: Stable error codes and the one-line explanation a producer sees next to the stem name.
MESSAGES: dict[str, str] = {
    "E_STEM_UNREADABLE": "cannot open the file (permissions or it vanished)",
    "E_STEM_EMPTY": "the file is empty (zero bytes or zero frames)",
    "E_NOT_AUDIO": "not an audio file (the contents are not WAV, FLAC or AIFF)",
    "E_UNSUPPORTED_FORMAT": "audio format not supported",
    "E_STEM_TRUNCATED": "the file is shorter than its header says (half-written or cut off)",
    "E_STEM_CORRUPT": "the audio data could not be decoded",
    "E_NONFINITE_SAMPLES": "the audio contains NaN or infinite samples",
    "E_STEM_TOO_SHORT": "shorter than 400 ms, the shortest span a loudness measurement needs",
    "E_NO_STEMS": "no audio stems found",
    "E_MARKERS": "the markers file could not be read",
    "E_REFERENCE": "the reference track could not be used",
    "E_ROLES": "the roles file could not be read",
    "E_PLAN": "the plan file could not be read",
    "E_DAW_UNAVAILABLE": "REAPER could not be reached",
    "E_DAW_TIMEOUT": "REAPER stopped answering",
    "E_TARGET_NOT_FOUND": "a track, FX or parameter named in the plan is not in the session",
    "E_DAW_VERIFY": "REAPER shows a different value than the bridge wrote",
    "E_OSC_MESSAGE": "a malformed or unexpected OSC message",
    "E_SURFACE_EXPOSED": "a control-surface server on a non-loopback address needs --allow with the surface hosts",
    "E_MANIFEST": "the bounce manifest (mixbridge-bounce.json) is malformed",
    "E_STEM_MISSING": "the bounce manifest lists this stem but its file never arrived",
    "E_RENDER_OUTPUT": "the rendered audio could not be written",
}


class BridgeError(Exception):
    """Root of every MixBridge error.

    Parameters
    ----------
    code : str
        A key of :data:`MESSAGES`; stable across releases.
    detail : str
        What exactly went wrong, for this occurrence (a path, a number).
    """

    code = "E_BRIDGE"

    def __init__(self, detail: str = "", *, code: str | None = None):
        if code is not None:
            self.code = code
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        base = MESSAGES.get(self.code, self.code)
        return f"{base}: {self.detail}" if self.detail else base

    def as_dict(self) -> dict[str, str]:
        """The ``{"code", "message"}`` object of the JSON contract."""
        return {"code": self.code, "message": self.message}


class StemReadError(BridgeError, OSError):
    """A stem file could not be read as audio."""

    code = "E_STEM_CORRUPT"


class StemWriteError(BridgeError, OSError):
    """Rendered audio could not be written (disk full, permissions, a folder in the way)."""

    code = "E_RENDER_OUTPUT"


class AnalysisError(BridgeError, ValueError):
    """Audio was read but cannot be measured (NaN samples, too short)."""

    code = "E_NONFINITE_SAMPLES"


class InputFileError(BridgeError, ValueError):
    """A side file (markers, roles, plan, reference) is malformed."""

    code = "E_MARKERS"


class DawUnavailable(BridgeError, ConnectionError):
    """REAPER is not running, not reachable, or went away mid-pass."""

    code = "E_DAW_UNAVAILABLE"


class DawTimeout(BridgeError, TimeoutError):
    """REAPER accepted a call but did not answer within the deadline."""

    code = "E_DAW_TIMEOUT"


class TargetNotFound(BridgeError, LookupError):
    """A track, FX or parameter descriptor did not resolve in the session."""

    code = "E_TARGET_NOT_FOUND"


class DawVerifyError(BridgeError, ValueError):
    """A value read back from REAPER does not match what was written (the pass is rolled back)."""

    code = "E_DAW_VERIFY"
