"""Planted REAPER calls for tests/test_reaper_api.py: every line marked ``expect:`` must be reported
(the text after it is part of the message); no other line may be.  Not imported, only parsed."""

RPR = None  # stands for reapy.reascript_api
SET_VALUE = "SetMediaTrackInfo_Value"
MISSPELT = "SetMediaTrackInfoValue"


class Conn:
    def call(self, name, *args):  # a dispatcher: forwards its parameter
        return getattr(RPR, name)(*args)


class Target:
    FORMAT = "TrackFX_GetFormattedParamValue"

    def __init__(self, conn):
        self.conn = conn

    def _c(self, name, *args):  # a second dispatcher, forwarding to the first
        return self.conn.call(name, *args)

    def good(self, tr):
        self._c("CountTracks", 0)
        self._c(
            "GetSetMediaTrackInfo_String",
            tr,
            "P_EXT:mixbridge/provenance",
            "",
            False,
        )[3]
        self._c(SET_VALUE, tr, "D_VOL", 1.0)
        self._c(self.FORMAT, tr, 0, 1, "", 64)[4]
        name = "Undo_BeginBlock2" if tr else "CountTracks"  # both take one argument
        self._c(name, 0)
        ok, *rest = self._c("TrackFX_GetNamedConfigParm", tr, 0, "renamed_name", "", 256)
        rest[3]
        for fn in ("TrackFX_GetCount", "CountTrackEnvelopes"):
            self._c(fn, tr)
        RPR.GetTrack(0, 0)
        RPR.InsertEnvelopePoint(tr, 0.0, 1.0, 0, 0.0, False, True)
        retval, track, fx, buf, size = RPR.TrackFX_GetFXName(tr, 0, "", 256)
        return hasattr(RPR, "TrackFX_GetParamNormalized")

    def bad(self, tr):
        self._c("TrackFX_SetParamNormalised", tr, 0, 1, 0.5)  # expect: is not a REAPER API function
        self._c(MISSPELT, tr, "D_VOL", 1.0)  # expect: SetMediaTrackInfoValue is not a REAPER API function
        self._c("GetTrackName", tr)  # expect: takes 3 arguments from Python, given 1
        self.conn.call("TrackFX_GetParamName",  # expect: takes 5 arguments from Python, given 4
                       tr, 0, 1,
                       "")
        self._c("GetSetMediaTrackInfo_String", tr, "GUID", "", False)[2]  # expect: [2] is not a return value
        self._c("CountTracks", 0)[0]  # expect: is not a return value or output slot
        RPR.TrackFX_GetFXNames(tr, 0, "", 256)  # expect: TrackFX_GetFXNames is not a REAPER API function
        RPR.InsertEnvelopePoint(tr, 0.0, 1.0, 0, 0.0, False)  # expect: takes 7 arguments from Python, given 6
        which = "GetMasterTrack" if tr else "GetMasterTrak"
        self._c(which, 0)  # expect: GetMasterTrak is not a REAPER API function
        a, b = RPR.GetTrackName(tr, "", 64)  # expect: unpacks 2 values from GetTrackName
        self._c(f"TrackFX_{tr}", tr)  # expect: UNRESOLVED
        return getattr(RPR, "CountTrack")  # expect: CountTrack is not a REAPER API function
