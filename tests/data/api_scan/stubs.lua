-- Planted stand-in definitions for tests/test_reaper_api.py (see planted.lua).
local R = {}
function R.GetTrackName(tr) return true, "" end
function R.GetSetMediaTrackInfo_String(tr, parm, value, set) return true, "" end
function R.defer(fn) end
function R.GetTrackName2(tr) end                                  -- expect: GetTrackName2, which is not a REAPER API
function R.TrackFX_GetNamedConfigParm(tr, fx, parm, buf, size) end -- expect: the stand-in's TrackFX_GetNamedConfigParm takes 5
reaper = R
